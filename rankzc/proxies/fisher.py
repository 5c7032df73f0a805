"""``fisher``: channel saliency from the Fisher information (Theis et al., 2018)."""

from __future__ import annotations

from rankzc.proxies.context import ProxyContext
from rankzc.proxies.registry import proxy


@proxy(
    "fisher",
    higher_is_better=True,
    needs=("forward", "fisher"),
    labels=True,
    gradients=True,
    paper="Theis et al., Fisher pruning, 2018; as in Abdelfattah et al., ICLR 2021",
)
def fisher(ctx: ProxyContext) -> float:
    r"""Per-channel Fisher saliency of every layer output, summed (NASLib's definition).

    For a layer output :math:`a` (samples :math:`n`, channels :math:`k`, other axes
    :math:`s`) and :math:`g = \partial L / \partial a`:
    :math:`\Delta_k = \tfrac12 \operatorname{mean}_n (\sum_s a_{nks} g_{nks})^2`.
    As in NASLib, each channel's value is broadcast to the weights of that channel
    before summing, so a layer contributes :math:`|W_l[0]| \sum_k \Delta_k`. Channels
    are axis 1 for conv-like layers and the last axis for linear-like ones (2-D weight).
    """
    return float(sum(ctx.shared().fisher))
