"""``grad_norm``: the summed norms of the loss gradients of the layer weights."""

from __future__ import annotations

from rankzc.proxies.context import ProxyContext
from rankzc.proxies.registry import proxy


@proxy(
    "grad_norm",
    higher_is_better=True,
    needs=("forward", "loss_grad"),
    labels=True,
    gradients=True,
    paper="Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021",
)
def grad_norm(ctx: ProxyContext) -> float:
    r"""Sum over layers of :math:`\|\partial L / \partial W_l\|_2` (zero-cost-nas)."""
    grads = ctx.shared().loss_grads
    return float(sum(g.double().norm() for g in grads if g is not None))
