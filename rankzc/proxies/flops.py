"""``flops``: floating-point operations of one forward pass, per sample."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from rankzc.proxies.context import ProxyContext
from rankzc.proxies.registry import proxy


@proxy("flops", higher_is_better=True, needs_data=False)
def flops(ctx: ProxyContext) -> float:
    """FLOPs of the forward pass of ONE sample (:class:`torch.utils.flop_counter.FlopCounterMode`).

    The counter counts matrix products and convolutions (a multiply-add = 2 FLOPs);
    element-wise operations, normalisation and softmax are not counted. The model runs
    in eval mode on the first sample of the minibatch, without gradients.
    """
    model = ctx.model
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(ctx.inputs[:1])
    return float(counter.get_total_flops())
