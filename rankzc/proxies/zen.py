"""``zen``: Zen-score (Lin et al., 2021)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call

from rankzc.errors import RankzcError
from rankzc.models.sampling import randn
from rankzc.proxies.context import ProxyContext, find_layers, relu_calls
from rankzc.proxies.registry import proxy

#: Size of the input perturbation, as in the reference.
ZEN_MIXUP_GAMMA = 1e-2

#: Blocks whose output the study's zen reads, by depth, where it is not the last block:
#: at depth 10 its hook sat on block 9 (its ``l9``).
ZEN_STUDY_BLOCKS = {10: 9}

#: Layers whose affine parameters zen resets and whose running variance it counts
#: (the reference resets and counts ``nn.BatchNorm2d`` only, not ``BatchNorm1d``).
ZEN_BN_TYPES = (nn.BatchNorm2d,)


def zen_blocks(model: nn.Module, rule: str = "study") -> int | None:
    """How many blocks of a GCN-NAS network zen's features pass through.

    ``rule="study"`` (default): as the study, block 9 at depth 10 and the last block at
    depths 4, 6 and 8; ``"last"``: always the last block. ``None`` for other models.
    """
    from rankzc.models.network import GCNNASNet

    if rule not in ("study", "last"):
        raise RankzcError(f"zen_block: must be 'study' or 'last', got {rule!r}")
    if not isinstance(model, GCNNASNet):
        return None
    depth = len(model.blocks)
    return ZEN_STUDY_BLOCKS.get(depth, depth) if rule == "study" else depth


def pre_pool_features(model: nn.Module, x: torch.Tensor, rule: str = "study") -> torch.Tensor:
    """The feature map zen compares.

    For the GCN-NAS network, the output of block :func:`zen_blocks` (persons folded into
    the batch axis), taken by a forward hook while the whole network runs, as the study
    did (so every BatchNorm's running statistics see the input, the blocks after the
    hooked one included). Otherwise ``model.forward_before_global_avg_pool(x)`` when
    the model defines it, else the output of the last ReLU (module or functional) whose
    output has ``ndim >= 3`` (a feature map), else the model's output.
    """
    blocks = zen_blocks(model, rule)
    if blocks is not None:
        kept: list[torch.Tensor] = []
        handle = model.blocks[blocks - 1].register_forward_hook(
            lambda _module, _inp, out: kept.append(out)
        )
        try:
            model(x)
        finally:
            handle.remove()
        return kept[-1]
    method = getattr(model, "forward_before_global_avg_pool", None)
    if callable(method):
        return method(x)
    last: list[torch.Tensor] = []

    def keep(out: torch.Tensor) -> None:
        if out.ndim >= 3:
            last[:] = [out]

    with relu_calls(keep):
        out = model(x)
    return last[0] if last else out


class _Features(nn.Module):
    """``forward(x)``: :func:`pre_pool_features` of ``model`` (a module, so that
    :func:`torch.func.functional_call` can run it with other parameters)."""

    def __init__(self, model: nn.Module, rule: str) -> None:
        super().__init__()
        self.model = model
        self.rule = rule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pre_pool_features(self.model, x, self.rule)


@proxy(
    "zen",
    higher_is_better=True,
    needs_data=False,
    labels=False,
    gradients=False,
    paper="Lin et al., Zen-NAS, ICCV 2021",
)
def zen(ctx: ProxyContext) -> float:
    r"""Zen-score with BatchNorm rescaling.

    On the model with layer weights drawn from :math:`N(0, 1)`, zero biases and
    BatchNorm2d affine 1/0, in train mode (the model's own modules run with these
    parameters and copies of its buffers, :func:`torch.func.functional_call`: the model
    is not changed and not copied): Gaussian inputs :math:`x, \epsilon` of the
    batch's shape, :math:`\Delta = \operatorname{mean}_r \sum |f(x) - f(x + \gamma\epsilon)|`
    over the rows :math:`r` of the features :math:`f` (:func:`pre_pool_features`;
    :math:`\gamma = 10^{-2}`), and
    :math:`\text{zen} = \log \Delta + \sum_{BN} \log \sqrt{\operatorname{mean}(\sigma^2_{running})}`
    after both forward passes, summed over the BatchNorm2d layers only (as the study:
    the GCN-NAS network's input BatchNorm1d is neither reset nor counted). For the
    GCN-NAS network, the features are those the study read: after block 9 of 10 at
    depth 10, after the last block otherwise (option ``zen_block="last"``: always the
    last block). Draws are seeded with the context's seed. Option ``zen_batch``: the
    number of Gaussian samples (default: the minibatch's size). The study's settings
    record 4: on 50 study architectures zen on 4 samples differs from the study's
    recorded zen (20 samples) by 0.03 +- 0.18 (mean +- sd) against a spread of 12.2
    across architectures (Spearman 0.996), at a fifth of the cost.
    """
    rule = ctx.options.get("zen_block", "study")
    model = ctx.model
    gen = ctx.generator(offset=1)
    device = ctx.inputs.device
    dtype = ctx.inputs.dtype if ctx.inputs.is_floating_point() else torch.float32
    with torch.no_grad():
        # the reset weights, by tensor (a tied weight takes its last layer's draw, as
        # copying the model and overwriting each layer's weight would)
        new: dict[int, torch.Tensor] = {}
        for _, layer in find_layers(model):
            w = randn(layer.weight.shape, generator=gen, dtype=layer.weight.dtype)
            new[id(layer.weight)] = w.to(device)
            bias = getattr(layer, "bias", None)
            if isinstance(bias, torch.Tensor):
                new[id(bias)] = torch.zeros_like(bias)
        bns = [(n, m) for n, m in model.named_modules() if isinstance(m, ZEN_BN_TYPES)]
        for _, bn in bns:
            if bn.affine:
                new[id(bn.weight)] = torch.ones_like(bn.weight)
                new[id(bn.bias)] = torch.zeros_like(bn.bias)
        # the model's own modules with these parameters and copies of its buffers (which
        # the train-mode forwards update): the model itself is not touched
        state = {
            f"model.{name}": new.get(id(p), p.detach()) for name, p in model.named_parameters()
        }
        buffers = {name: new.get(id(b), b.detach()).clone() for name, b in model.named_buffers()}
        state.update({f"model.{name}": b for name, b in buffers.items()})
        shape = tuple(ctx.inputs.shape)
        batch = ctx.options.get("zen_batch")
        if batch is not None:
            if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
                raise RankzcError(f"option zen_batch: an integer >= 1, got {batch!r}")
            shape = (batch, *shape[1:])
        x = randn(shape, generator=gen, dtype=dtype).to(device)
        eps = randn(shape, generator=gen, dtype=dtype).to(device)
        model.train()
        features = _Features(model, rule)
        out = functional_call(features, state, (x,), strict=False)
        out_mix = functional_call(features, state, (x + ZEN_MIXUP_GAMMA * eps,), strict=False)
        delta = (out - out_mix).abs().double()
        delta = delta.reshape(delta.shape[0], -1).sum(1).mean()
        score = math.log(float(delta))
        for name, _bn in bns:
            running_var = buffers.get(f"{name}.running_var" if name else "running_var")
            if running_var is not None:
                score += 0.5 * math.log(float(running_var.double().mean()))
    return score
