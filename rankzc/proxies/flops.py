"""``flops``: floating-point operations of one forward pass, per sample."""

from __future__ import annotations

import math

import torch
from torch.utils.flop_counter import FlopCounterMode

from rankzc.proxies.context import ProxyContext
from rankzc.proxies.registry import proxy

aten = torch.ops.aten

#: Batched products of two activations (attention, graph aggregation): not counted.
EXCLUDED_OPS = (aten.bmm, aten.baddbmm)


def _numel(shape) -> int:
    return math.prod(shape) if shape is not None else 0


def _batch_norm_flops(x_shape, weight_shape=None, *args, out_shape=None, **kwargs) -> int:
    """Normalisation: 2 multiply-adds per element, 2 more when affine; 2 FLOPs each."""
    return 2 * (4 if weight_shape is not None else 2) * _numel(x_shape)


def _softmax_flops(x_shape, dim, *args, out_shape=None, **kwargs) -> int:
    """Softmax over ``d`` entries: ``d`` exponentials, ``d - 1`` additions, ``d`` divisions."""
    d = x_shape[dim] if len(x_shape) else 1
    rows = _numel(x_shape) // max(d, 1)
    return 2 * rows * (3 * d - 1)


CUSTOM_FORMULAS = {
    aten.native_batch_norm: _batch_norm_flops,
    aten._native_batch_norm_legit: _batch_norm_flops,
    aten._native_batch_norm_legit_no_training: _batch_norm_flops,
    aten._softmax: _softmax_flops,
}


def count_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    """FLOPs of ``model(x)`` in eval mode without gradients (see :func:`flops`)."""
    counter = FlopCounterMode(display=False, custom_mapping=CUSTOM_FORMULAS)
    model.eval()
    with torch.no_grad(), counter:
        model(x)
    counts = counter.get_flop_counts()["Global"]
    excluded = {str(op) for op in EXCLUDED_OPS}
    return int(sum(v for op, v in counts.items() if str(op) not in excluded))


@proxy(
    "flops",
    higher_is_better=True,
    needs_data=False,
    labels=False,
    gradients=False,
    paper="Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021 (baseline)",
)
def flops(ctx: ProxyContext) -> float:
    """FLOPs of the forward pass of ONE sample (the first of the batch), eval mode.

    Counted with :class:`torch.utils.flop_counter.FlopCounterMode` (a multiply-add is
    2 FLOPs): convolutions and linear maps as torch counts them, plus normalisation
    (4 FLOPs per element, 8 when affine) and softmax (``2 (3d - 1)`` per row of ``d``
    entries), as module-based counters (thop) count them; batched products of two
    activations (``bmm``: attention and graph aggregation) are not counted, as those
    counters do not see them. On the study's network this is exactly its ``flops``
    divided by its batch of 20.

    Option ``flops_per``: ``"sample"`` (default) or ``"batch"``, the count for the whole
    minibatch (its size x the one-sample count), as the study recorded it; the thesis
    importer records ``"batch"`` with the study's settings.
    """
    per = ctx.options.get("flops_per", "sample")
    if per not in ("sample", "batch"):
        raise ValueError(f"option flops_per: 'sample' or 'batch', got {per!r}")
    samples = int(ctx.inputs.shape[0]) if per == "batch" else 1
    return float(count_flops(ctx.model, ctx.inputs[:1])) * samples
