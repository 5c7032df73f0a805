"""``synflow``: iterative synaptic flow (Tanaka et al., 2020)."""

from __future__ import annotations

import copy

import torch

from rankzc.errors import RankzcError
from rankzc.models.dynamic import tied_attention
from rankzc.proxies.context import ProxyContext, find_layers
from rankzc.proxies.registry import proxy

#: How synflow treats the attention (also printed by ``rankzc proxies``).
SYNFLOW_NOTE = (
    "synflow uses a tie rule in the attention softmaxes (a deliberate difference from "
    "the study's code): on the all-ones input mirror-image joints carry identical "
    "features and the attention logits reach 1e18-1e48, so the study's value depended on "
    "the last bits of rounding; rankzc splits exact ties evenly and treats the attention "
    "as a constant, which makes synflow a function of the architecture and the seed "
    "alone (docs/proxies.md gives its agreement with the study's recorded scores)."
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

    **Tie rule (definitions version 3, a deliberate difference from the study's code).**
    The dynamic modules' attention softmaxes are evaluated under
    :func:`~rankzc.models.dynamic.tied_attention`: logits within a relative 1e-9 of
    their column's largest count as tied with it and share the column evenly, and the
    matrices are constants of the backward pass. On the all-ones input mirror-image
    joints carry identical features, so their logits are equal in exact arithmetic;
    the logits reach 1e18 to 1e48, so in floating point 92-96 % of the columns had
    their top two within one ulp and the study's code (and version 2 here) split them
    or not depending on the order of summation, moving the score by up to 37 orders of
    magnitude between thread counts and machines. In exact arithmetic the gradient
    through such a column is zero (the tied joints' features are equal; an untied
    column is saturated), which detaching makes exact. The score is then a function of
    the architecture and the seed alone.
    """
    mode = ctx.options.get("synflow_bn", "identity")
    if mode == "identity":
        net = ctx.bn_free_double()  # the BatchNorm-free pass's copy where it has one
    elif mode == "eval":
        net = copy.deepcopy(ctx.model).double()
    else:
        raise RankzcError(f"synflow_bn: must be 'eval' or 'identity', got {mode!r}")
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
    with tied_attention():
        out = net(x)
    grads = torch.autograd.grad(out.sum(), weights, allow_unused=True)
    total = 0.0
    for w, g in zip(weights, grads, strict=True):
        if g is not None:
            total += float((w.detach() * g).abs().sum())
    return total
