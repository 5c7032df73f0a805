"""``synflow``: iterative synaptic flow (Tanaka et al., 2020)."""

from __future__ import annotations

import copy

import torch

from rankzc.errors import RankzcError
from rankzc.proxies.context import ProxyContext, bn_free_copy, find_layers
from rankzc.proxies.registry import proxy

#: Why synflow cannot be reproduced to the last digit on this network (also printed by
#: ``rankzc proxies``).
SYNFLOW_NOTE = (
    "synflow is numerically ill-conditioned on the GCN-NAS network: with an all-ones "
    "input, symmetric joints tie exactly in the attention softmaxes, values span 1e19 "
    "to 1e124 and change by orders of magnitude between initialisation seeds, so no "
    "implementation reproduces the study's ranking exactly (Spearman about 0.9 against "
    "its recorded scores, as for a rerun of the study's own code)."
)


@proxy(
    "synflow",
    higher_is_better=True,
    needs_data=False,
    labels=False,
    gradients=True,
    paper="Tanaka et al., SynFlow, NeurIPS 2020",
)
def synflow(ctx: ProxyContext) -> float:
    r"""Synaptic flow :math:`\sum_l \sum |\theta \odot \partial R / \partial \theta|`.

    On a float64 copy of the model whose parameters (weights and biases) are replaced by
    their absolute values, :math:`R = \mathbf{1}^\top f(\mathbf{1})` for ONE all-ones
    input of the batch's sample shape. Buffers keep their sign: in the GCN-NAS network
    the fixed graph operators (``A`` and ``fixed`` of every gcn unit) stay signed,
    negative entries included, as in the study's code, where they are neither
    parameters nor buffers. BatchNorm: with ``synflow_bn="identity"`` (default) it is
    removed, as the study's ``bn=False`` copy does
    (:func:`~rankzc.proxies.context.bn_free_copy`); with ``"eval"`` it uses its running
    statistics. Only the layer weights are scored. The model itself is left unchanged
    (the study's framework left it with absolute weights; see docs/proxies.md).

    Numerically ill-conditioned on the GCN-NAS network: with an all-ones input,
    symmetric joints tie exactly in the attention softmaxes; values span 1e19 to 1e124
    and change by orders of magnitude between initialisation seeds, so no
    implementation reaches a Spearman of 1 against the study's recorded scores (about
    0.9, as a rerun of the study's own code).
    """
    mode = ctx.options.get("synflow_bn", "identity")
    if mode == "identity":
        net = bn_free_copy(ctx.model)
    elif mode == "eval":
        net = copy.deepcopy(ctx.model)
    else:
        raise RankzcError(f"synflow_bn: must be 'eval' or 'identity', got {mode!r}")
    net = net.double()
    with torch.no_grad():
        for p in net.parameters():
            if p.is_floating_point():
                p.abs_()
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
