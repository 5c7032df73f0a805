"""``grasp``: gradient signal preservation (Wang et al., 2020)."""

from __future__ import annotations

from rankzc.proxies.context import ProxyContext
from rankzc.proxies.registry import proxy


@proxy(
    "grasp",
    higher_is_better=True,
    needs=("forward", "loss_grad", "hessian_grad"),
    labels=True,
    gradients=True,
    paper="Wang et al., GraSP, ICLR 2020",
)
def grasp(ctx: ProxyContext) -> float:
    r"""Sum over layer weights of :math:`-\theta \odot H g` (NASLib's sign convention).

    :math:`g = \partial L / \partial \theta` and :math:`H g` is the Hessian-gradient
    product, computed by double backward through the same forward pass.
    """
    hg = ctx.shared().hessian_grads
    total = 0.0
    for w, h in zip(ctx.weights, hg, strict=True):
        if h is not None:
            total += float((-w.detach().double() * h.double()).sum())
    return total
