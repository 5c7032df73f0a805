"""``jacov``: Jacobian covariance (Mellor et al., 2020, first version of NAS-WOT)."""

from __future__ import annotations

import torch

from rankzc.proxies.context import ProxyContext
from rankzc.proxies.registry import proxy

#: Constant added to the eigenvalues, as in the reference.
JACOV_K = 1e-5


def jacov_score(jacobian: torch.Tensor, k: float = JACOV_K) -> float:
    r""":math:`-\sum_i [\log(\lambda_i + k) + 1/(\lambda_i + k)]` over the eigenvalues
    :math:`\lambda_i` of the correlation matrix of the per-sample input Jacobians."""
    jac = jacobian.detach().double().reshape(jacobian.shape[0], -1)
    corr = torch.corrcoef(jac)
    if not torch.isfinite(corr).all():
        raise ValueError("the Jacobians' correlation is not finite (a constant Jacobian)")
    eig = torch.linalg.eigvalsh(corr)
    return float(-(torch.log(eig + k) + 1.0 / (eig + k)).sum())


@proxy(
    "jacov",
    higher_is_better=True,
    needs=("forward", "jacobian"),
    labels=False,
    gradients=True,
    paper="Mellor et al., NAS without Training, arXiv v1 2020",
)
def jacov(ctx: ProxyContext) -> float:
    """Jacobian covariance score of ``d sum(out) / d x`` (NASLib's version)."""
    return jacov_score(ctx.shared().jacobian)
