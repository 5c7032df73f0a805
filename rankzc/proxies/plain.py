"""``plain``: the first-order Taylor term of the loss (zero-cost-nas)."""

from __future__ import annotations

from rankzc.proxies.context import ProxyContext
from rankzc.proxies.registry import proxy


@proxy(
    "plain",
    higher_is_better=True,
    needs=("forward", "loss_grad"),
    labels=True,
    gradients=True,
    paper="Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021",
)
def plain(ctx: ProxyContext) -> float:
    r"""Sum over layer weights of :math:`\theta \odot \partial L / \partial \theta` (signed)."""
    grads = ctx.shared().loss_grads
    total = 0.0
    for w, g in zip(ctx.weights, grads, strict=True):
        if g is not None:
            total += float((w.detach().double() * g.double()).sum())
    return total
