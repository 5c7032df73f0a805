"""``synflow``: iterative synaptic flow (Tanaka et al., 2020)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from rankzc.errors import RankzcError
from rankzc.proxies.context import ProxyContext, find_layers
from rankzc.proxies.registry import proxy


@proxy("synflow", higher_is_better=True, needs_data=False)
def synflow(ctx: ProxyContext) -> float:
    r"""Synaptic flow :math:`\sum_l \sum |\theta \odot \partial R / \partial \theta|`.

    On a float64 copy of the model with every parameter and buffer replaced by its
    absolute value, :math:`R = \mathbf{1}^\top f(\mathbf{1})` for ONE all-ones input of the
    batch's sample shape. BatchNorm: with ``synflow_bn="identity"`` (default) it is
    removed, as NASLib's ``bn=False`` copy does (this reproduces the study's magnitudes,
    e.g. 4.2e14 against its 4.1e14 for a depth-4 network); with ``"eval"`` it uses its
    running statistics. Only the layer weights are scored.
    """
    mode = ctx.options.get("synflow_bn", "identity")
    net = copy.deepcopy(ctx.model).double()
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    if mode == "identity":
        _strip_batchnorm(net)
    elif mode != "eval":
        raise RankzcError(f"synflow_bn must be 'eval' or 'identity', got {mode!r}")
    net.eval()
    layers = find_layers(net)
    weights = [m.weight for _, m in layers]
    for p in net.parameters():
        p.requires_grad_(False)
    for w in weights:
        w.requires_grad_(True)
    x = torch.ones((1, *ctx.inputs.shape[1:]), dtype=torch.float64, device=ctx.inputs.device)
    out = net(x)
    grads = torch.autograd.grad(out.sum(), weights, allow_unused=True)
    total = 0.0
    for w, g in zip(weights, grads, strict=True):
        if g is not None:
            total += float((w.detach() * g).abs().sum())
    return total


def _strip_batchnorm(net: nn.Module) -> None:
    for name, child in list(net.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(net, name, nn.Identity())
        else:
            _strip_batchnorm(child)
