"""``nwot``: neural architecture search without training (Mellor et al., 2021)."""

from __future__ import annotations

import torch

from rankzc.proxies.context import ProxyContext
from rankzc.proxies.registry import proxy

#: Added to the kernel's diagonal (absolute, as in the study).
NWOT_RIDGE = 1e-6


def nwot_logdet(kernel: torch.Tensor, ridge: float = NWOT_RIDGE) -> float:
    r""":math:`\log|\det(K + \epsilon I)|` of a NAS-WOT kernel (see :func:`nwot`).

    As in the study: ``ridge`` :math:`\epsilon` is absolute, and the logarithm of the
    determinant's absolute value is returned whatever its sign (in floating point a
    near-singular kernel can come out with a negative determinant). An exactly
    singular matrix gives ``-inf`` (a missing score).
    """
    k = kernel.double()
    eye = torch.eye(k.shape[0], dtype=k.dtype, device=k.device)
    _, logabs = torch.linalg.slogdet(k + float(ridge) * eye)
    return float(logabs)


@proxy(
    "nwot",
    higher_is_better=True,
    needs=("forward", "relu_codes"),
    labels=False,
    gradients=False,
    paper="Mellor et al., NAS without Training, ICML 2021",
)
def nwot(ctx: ProxyContext) -> float:
    r""":math:`\log|\det K|` of the binary-code kernel of the ReLU units.

    Each ReLU call (module or functional) gives every row of its input a binary code
    :math:`c_r` (unit > 0); :math:`K_{rs} = c_r^\top c_s + (1-c_r)^\top(1-c_s)` (units
    where rows :math:`r, s` agree), summed over all ReLU calls. A row is a sample, or,
    where the model folds more into the batch axis, one part of it: in the GCN-NAS
    network each person of each sample has its own code, so the kernel is
    :math:`(N M) \times (N M)` for :math:`N` samples of :math:`M` persons, as in the
    study. The codes come from a forward of the whole minibatch without a graph, never
    split (BatchNorm's batch statistics shape them). The score is :func:`nwot_logdet` with an absolute ridge ``nwot_ridge``
    (default :data:`NWOT_RIDGE`) on the diagonal, so duplicate codes stay finite.
    """
    shared = ctx.shared()
    if shared.relu_error is not None:
        raise ValueError(shared.relu_error)
    if shared.relu_count == 0 or shared.nwot_kernel is None:
        raise ValueError("no ReLU ran in the forward pass")
    return nwot_logdet(shared.nwot_kernel, float(ctx.options.get("nwot_ridge", NWOT_RIDGE)))
