"""``snip``: connection sensitivity (Lee et al., 2019)."""

from __future__ import annotations

from rankzc.proxies.context import ProxyContext
from rankzc.proxies.registry import proxy


@proxy(
    "snip",
    higher_is_better=True,
    needs=("forward", "loss_grad"),
    labels=True,
    gradients=True,
    paper="Lee et al., SNIP, ICLR 2019",
)
def snip(ctx: ProxyContext) -> float:
    r"""Sum over layer weights of :math:`|\theta \odot \partial L / \partial \theta|`."""
    grads = ctx.shared().loss_grads
    total = 0.0
    for w, g in zip(ctx.weights, grads, strict=True):
        if g is not None:
            total += float((w.detach().double() * g.double()).abs().sum())
    return total
