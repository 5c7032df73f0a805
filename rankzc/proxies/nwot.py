"""``nwot``: neural architecture search without training (Mellor et al., 2021)."""

from __future__ import annotations

import torch

from rankzc.proxies.context import ProxyContext
from rankzc.proxies.registry import proxy

#: Ridge added to the kernel's diagonal, relative to its mean diagonal entry.
NWOT_RIDGE = 1e-6


def nwot_logdet(kernel: torch.Tensor, ridge: float = NWOT_RIDGE) -> float:
    r""":math:`\log|K + \epsilon \bar{K}_{ii} I|` of a NAS-WOT kernel (see :func:`nwot`)."""
    k = kernel.double()
    eye = torch.eye(k.shape[0], dtype=k.dtype, device=k.device)
    k = k + ridge * k.diagonal().mean() * eye
    sign, logabs = torch.linalg.slogdet(k)
    if sign <= 0:
        raise ValueError("NAS-WOT kernel is singular")
    return float(logabs)


@proxy("nwot", higher_is_better=True, needs=("forward", "relu_codes"))
def nwot(ctx: ProxyContext) -> float:
    r""":math:`\log|K|` of the binary-code kernel of the ReLU units.

    Each ReLU call (module or functional) of sample :math:`i` gives a binary code :math:`c_i` (unit > 0);
    :math:`K_{ij} = c_i^\top c_j + (1-c_i)^\top(1-c_j)` (units where :math:`i,j` agree),
    summed over all ReLU modules, plus a small ridge (``nwot_ridge``, relative to the
    mean diagonal; default :data:`NWOT_RIDGE`) so that duplicate codes stay finite.
    Samples folded into the batch axis (e.g. persons) join the sample's code.
    """
    shared = ctx.shared()
    if shared.nwot_kernel is None:
        raise RuntimeError(
            "the NAS-WOT kernel needs the whole minibatch in one pass (split on OOM)"
        )
    if shared.relu_error is not None:
        raise ValueError(shared.relu_error)
    if shared.relu_count == 0:
        raise ValueError("no ReLU ran in the forward pass")
    return nwot_logdet(shared.nwot_kernel, float(ctx.options.get("nwot_ridge", NWOT_RIDGE)))
