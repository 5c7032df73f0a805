"""``params``: the number of trainable parameters."""

from __future__ import annotations

from rankzc.proxies.context import ProxyContext
from rankzc.proxies.registry import proxy


@proxy(
    "params",
    higher_is_better=True,
    needs_data=False,
    labels=False,
    gradients=False,
    paper="Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021 (baseline)",
)
def params(ctx: ProxyContext) -> float:
    r"""Number of trainable parameters, :math:`\sum_{p:\,\text{requires\_grad}} |p|`."""
    return float(sum(p.numel() for p in ctx.model.parameters() if p.requires_grad))
