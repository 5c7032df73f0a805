"""``grad_sign``: sample-wise gradient sign agreement (Zhang & Jia, 2022)."""

from __future__ import annotations

from rankzc.proxies.context import ProxyContext
from rankzc.proxies.registry import proxy


@proxy(
    "grad_sign",
    higher_is_better=True,
    needs=("bn_free_signs",),
    labels=True,
    gradients=True,
    paper="Zhang & Jia, GradSign, ICLR 2022",
)
def grad_sign(ctx: ProxyContext) -> float:
    r"""GradSign: :math:`\operatorname{mean}_\theta |\sum_i \operatorname{sign}(g_{i,\theta})|`.

    :math:`g_{i,\theta}` is the loss gradient of sample :math:`i` alone (one forward and
    backward per sample, train mode) for every layer weight :math:`\theta`, computed, as
    in the study, on a copy of the network with BatchNorm removed (its ``bn=False``
    copy; :func:`~rankzc.proxies.context.bn_free_copy`), so that a single sample runs
    and BatchNorm's affine parameters play no part. The reference sums over weights;
    the study's values (about 2 to 10) are this mean, i.e. the sum divided by the number
    of layer weights, which we follow.
    """
    signs = ctx.shared().bn_free_signs
    total = sum(float(a.abs().sum()) for a in signs)
    count = sum(a.numel() for a in signs)
    return total / count
