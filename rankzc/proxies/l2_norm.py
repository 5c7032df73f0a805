"""``l2_norm``: the summed norms of the layer weights."""

from __future__ import annotations

import torch

from rankzc.proxies.context import ProxyContext
from rankzc.proxies.registry import proxy


@proxy(
    "l2_norm",
    higher_is_better=True,
    needs_data=False,
    labels=False,
    gradients=False,
    paper="Krishnakumar et al., NAS-Bench-Suite-Zero, NeurIPS 2022",
)
def l2_norm(ctx: ProxyContext) -> float:
    r"""Sum over layers of the Frobenius norm of the weight, :math:`\sum_l \|W_l\|_2`."""
    with torch.no_grad():
        return float(sum(w.detach().double().norm() for w in ctx.weights))
