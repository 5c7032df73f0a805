"""``epe_nas``: per-class Jacobian correlation (Lopes et al., 2021)."""

from __future__ import annotations

import numpy as np
import torch

from rankzc.proxies.context import ProxyContext
from rankzc.proxies.registry import proxy

#: Constant added inside the logarithm, as in the reference.
EPE_K = 1e-5


def epe_score(
    jacobian: torch.Tensor, labels: torch.Tensor, n_classes: int, k: float = EPE_K
) -> float:
    r"""EPE-NAS score of per-sample Jacobians ``jacobian`` with class ``labels``.

    For each class :math:`c` seen, :math:`s_c = \sum_{ij} \log(|\rho_{ij}| + k)` over the
    correlation matrix of that class's Jacobians. With at most 100 classes the score is
    :math:`\sum_c |s_c|`; with more, :math:`s_c` is divided by the class size and the
    score is :math:`\sum_{c,c'} |s_c - s_{c'}| / C_{seen}`.

    A class with a single sample: the reference's ``np.corrcoef`` of one row gave the
    scalar 1 (numpy of the study's time; newer numpy gives a masked value), so here its
    correlation is 1 by an explicit rule, :math:`s_c = \log(1 + k)`. With more than 100
    classes the reference's ``len()`` of that scalar failed and skipped the class; so
    do we.
    """
    jac = jacobian.detach().double().reshape(jacobian.shape[0], -1).cpu().numpy()
    y = labels.detach().cpu().numpy().reshape(-1)
    per_class = {}
    for c in np.unique(y):
        rows = jac[y == c]
        if len(rows) == 1:
            if n_classes > 100:
                continue  # the reference skipped it (see above)
            corr = np.ones((1, 1))  # explicit rule: one sample has correlation 1
        else:
            corr = np.corrcoef(rows)
        s = float(np.sum(np.log(np.abs(corr) + k)))
        if n_classes > 100:
            s /= len(corr)
        per_class[c] = s
    values = np.array(list(per_class.values()))
    if len(values) == 0:
        return 0.0
    if n_classes <= 100:
        return float(np.abs(values).sum())
    return float(np.abs(values[:, None] - values[None, :]).sum() / len(values))


@proxy(
    "epe_nas",
    higher_is_better=True,
    needs=("bn_free_jacobian",),
    labels=True,
    gradients=True,
    paper="Lopes et al., EPE-NAS, ICANN 2021",
)
def epe_nas(ctx: ProxyContext) -> float:
    """EPE-NAS on the input Jacobians ``d sum(out) / d x`` grouped by the batch labels.

    As in the study, the Jacobians come from a copy of the network with BatchNorm
    removed (:func:`~rankzc.proxies.context.bn_free_copy`; shared with grad_sign).
    """
    shared = ctx.shared()
    n_classes = int(ctx.options.get("n_classes") or 0)
    if n_classes <= 0:
        n_classes = int(ctx.targets.max()) + 1
    return epe_score(shared.bn_free_jacobian, ctx.targets, n_classes)
