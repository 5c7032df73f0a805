"""``zen``: Zen-score (Lin et al., 2021)."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from rankzc.proxies.context import ProxyContext, find_layers, relu_calls
from rankzc.proxies.registry import proxy

#: Size of the input perturbation, as in the reference.
ZEN_MIXUP_GAMMA = 1e-2


def pre_pool_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The feature map before global pooling.

    ``model.forward_before_global_avg_pool(x)`` when the model defines it, otherwise the
    output of the last ReLU (module or functional) whose output has ``ndim >= 3`` (a
    feature map; in the GCN-NAS network the last block's output), otherwise the
    model's output.
    """
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


@proxy("zen", higher_is_better=True, needs_data=False)
def zen(ctx: ProxyContext) -> float:
    r"""Zen-score with BatchNorm rescaling.

    On a copy of the model with layer weights drawn from :math:`N(0, 1)`, zero biases and
    BatchNorm affine 1/0, in train mode: Gaussian inputs :math:`x, \epsilon` of the batch's
    shape, :math:`\Delta = \operatorname{mean}_n \sum |f(x) - f(x + \gamma\epsilon)|`
    (:math:`f` = features before global pooling, :func:`pre_pool_features`,
    :math:`\gamma = 10^{-2}`), and
    :math:`\text{zen} = \log \Delta + \sum_{BN} \log \sqrt{\operatorname{mean}(\sigma^2_{running})}`
    after both forward passes. Draws are seeded with the context's seed.
    """
    net = copy.deepcopy(ctx.model)
    gen = ctx.generator(offset=1)
    device = ctx.inputs.device
    dtype = ctx.inputs.dtype if ctx.inputs.is_floating_point() else torch.float32
    with torch.no_grad():
        for _, layer in find_layers(net):
            w = torch.randn(layer.weight.shape, generator=gen, dtype=layer.weight.dtype)
            layer.weight.copy_(w.to(device))
            bias = getattr(layer, "bias", None)
            if isinstance(bias, torch.Tensor):
                bias.zero_()
        bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        for bn in bns:
            if bn.affine:
                bn.weight.fill_(1.0)
                bn.bias.zero_()
        shape = tuple(ctx.inputs.shape)
        x = torch.randn(shape, generator=gen, dtype=dtype).to(device)
        eps = torch.randn(shape, generator=gen, dtype=dtype).to(device)
        net.train()
        out = pre_pool_features(net, x)
        out_mix = pre_pool_features(net, x + ZEN_MIXUP_GAMMA * eps)
        delta = (out - out_mix).abs().double()
        delta = delta.reshape(delta.shape[0], -1).sum(1).mean()
        score = math.log(float(delta))
        for bn in bns:
            if bn.running_var is not None:
                score += 0.5 * math.log(float(bn.running_var.double().mean()))
    return score
