r"""Dynamic-graph modules ``M_S``, ``M_T`` and ``M_ST`` of the GCN-NAS gcn unit.

For each subset :math:`k \in \{0, 1, 2\}` a module adds the data-dependent
:math:`V \times V` matrix

.. math::
    B_k(x) = \operatorname{softmax}_{\text{axis}=-2}\!\Big(
        \frac{\bar P_k(x)\, \bar Q_k(x)}{C_e T}\Big),

where :math:`P_k, Q_k` are convolutions :math:`C_{in} \to C_e` (:math:`C_e` = ``inter``),
:math:`\bar P_k(x) \in \mathbb{R}^{N \times V \times C_e T}` is :math:`P_k(x)` permuted to
``N, V, C_e, T`` and flattened, and :math:`\bar Q_k(x) \in \mathbb{R}^{N \times C_e T \times V}`.

- ``M_S``: :math:`P_k, Q_k` are 1x1 convolutions;
- ``M_T``: 9x1 temporal convolutions (padding 4);
- ``M_ST``: each of ``P`` and ``Q`` holds six convolutions
  ``[1x1, 9x1, 1x1, 9x1, 1x1, 9x1]`` (a 1x1 and a 9x1 per subset), but, as in the study's
  forward pass, subset :math:`k` uses entry :math:`k`: subsets 0, 1, 2 use a 1x1, a 9x1 and
  a 1x1 convolution. Entries 3-5 are registered (their parameters count) but never used.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from rankzc.errors import RankzcError
from rankzc.models.init import conv_init

NUM_SUBSETS = 3
TEMPORAL_KERNEL = 9

#: Kernel heights of the registered ``P``/``Q`` convolutions of each module.
MODULE_KERNELS: dict[str, tuple[int, ...]] = {
    "M_S": (1, 1, 1),
    "M_T": (9, 9, 9),
    "M_ST": (1, 9, 1, 9, 1, 9),
}


#: Relative tolerance of the tie rule (:func:`tied_attention`).
TIE_RTOL = 1e-9
_TIED: contextvars.ContextVar[bool] = contextvars.ContextVar("rankzc_tied_attention", default=False)


@contextlib.contextmanager
def tied_attention() -> Iterator[None]:
    r"""Within this block, attention softmaxes follow the tie rule and are constants.

    The tie rule: in each softmax column, logits within ``TIE_RTOL`` times the
    largest logit's magnitude (at least 1) of that largest logit are set equal to
    it before the softmax, so exactly tied entries (mirror-image joints carry
    identical features on a symmetric input) split the column evenly, whatever the
    rounding of the last digits. The matrices are also detached: gradients do not
    flow through them (where they are tied, the exact gradient is zero, since the
    tied joints' features are equal; where logits are huge the softmax is saturated
    and its exact gradient is zero as well). ``synflow`` uses this (see its docs).
    """
    token = _TIED.set(True)
    try:
        yield
    finally:
        _TIED.reset(token)


class _ExactSoftmax(torch.autograd.Function):
    r"""``softmax(z)`` whose backward does not cancel where the softmax saturates.

    The usual backward, :math:`p \odot (g - \sum_j p_j g_j)`, subtracts two nearly equal
    numbers at a column's largest entry when :math:`p` is nearly one-hot, and the result
    is rounding noise whose last bits depend on the kernels (this CPU's ``exp``, sums,
    matrix products). Subtracting the largest entry's gradient first,
    :math:`d = g - g_m` with :math:`m = \arg\max p`, gives the same mathematics,
    :math:`p \odot (d - \sum_j p_j d_j)`, with no such cancellation (:math:`d_m = 0`).
    """

    generate_vmap_rule = True  # torch.func (vmap, grad) over it

    @staticmethod
    def forward(z: Tensor, dim: int) -> Tensor:
        return torch.softmax(z, dim=dim)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(output)
        ctx.dim = inputs[1]

    @staticmethod
    def backward(ctx, g: Tensor):
        (p,) = ctx.saved_tensors
        dim = ctx.dim
        d = g - g.gather(dim, p.argmax(dim, keepdim=True))
        return p * (d - (p * d).sum(dim, keepdim=True)), None


def attention_softmax(logits: Tensor, dim: int = -2) -> Tensor:
    """``softmax(logits, dim)``, or under :func:`tied_attention` the tie rule, detached.

    In float64 (the proxies' BatchNorm-free pass, where deep blocks' logits reach
    :math:`10^3` and columns saturate) the backward is :class:`_ExactSoftmax`'s: the
    gradients there are the mathematics', not rounding noise (definitions version 4)."""
    if not _TIED.get():
        if logits.dtype == torch.float64 and logits.requires_grad:
            return _ExactSoftmax.apply(logits, dim)
        return torch.softmax(logits, dim=dim)
    logits = logits.detach()
    top = logits.amax(dim=dim, keepdim=True)
    tol = TIE_RTOL * top.abs().clamp_min(1.0)
    snapped = torch.where(top - logits <= tol, top, logits)
    return torch.softmax(snapped, dim=dim)


def _conv(in_channels: int, out_channels: int, kernel: int) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, (kernel, 1), padding=((kernel - 1) // 2, 0))
    conv_init(conv)
    return conv


class DynamicGraph(nn.Module):
    """One dynamic-graph module (``kind`` in ``M_S``, ``M_T``, ``M_ST``).

    Args:
        kind: module name.
        in_channels: channels of the gcn unit's input.
        inter_channels: embedding channels :math:`C_e` (``out_channels // 4``).
    """

    def __init__(self, kind: str, in_channels: int, inter_channels: int) -> None:
        super().__init__()
        if kind not in MODULE_KERNELS:
            raise RankzcError(f"unknown dynamic module {kind!r}")
        self.kind = kind
        self.inter_channels = inter_channels
        kernels = MODULE_KERNELS[kind]
        self.P = nn.ModuleList(_conv(in_channels, inter_channels, k) for k in kernels)
        self.Q = nn.ModuleList(_conv(in_channels, inter_channels, k) for k in kernels)

    def used(self) -> list[tuple[nn.Conv2d, nn.Conv2d]]:
        """The ``(P, Q)`` convolutions subsets 0, 1, 2 use: entry ``k`` for subset ``k``."""
        return [(self.P[k], self.Q[k]) for k in range(NUM_SUBSETS)]

    def forward(self, x: Tensor) -> Tensor:
        """Attention matrices ``(N, 3, V, V)`` for input ``(N, C, T, V)`` (readable form)."""
        N, _, T, V = x.shape
        out = []
        for P, Q in self.used():
            p = P(x).permute(0, 3, 1, 2).reshape(N, V, self.inter_channels * T)
            q = Q(x).reshape(N, self.inter_channels * T, V)
            out.append(attention_softmax(torch.matmul(p, q) / p.shape[-1], dim=-2))
        return torch.stack(out, dim=1)
