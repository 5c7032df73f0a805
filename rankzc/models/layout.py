r"""The memory layout of the network's fused path, and the few helpers it needs.

Activations keep their documented shape ``(N, C, T, V)`` between modules, but on the
fused path (the default whenever no hook watches a convolution) they are stored
*joint-major, channels last*: memory ``(N, V, T, C)``. Inside a unit the same memory is
read as ``(N, C, V, T)`` in ``torch.channels_last`` (``x.transpose(2, 3)``, a view), so that

- every convolution runs on channels-last input (oneDNN's fastest CPU kernels for
  these channel counts; the backward in particular, 2-6x faster than on ``NCHW`` for
  the ``cpu`` preset), the temporal :math:`K \times 1` kernels read as :math:`1 \times K`;
- the per-sample aggregation :math:`x M_k` is ONE batched product on the memory as it is
  (``(3V \times V) \cdot (V \times T C)`` per sample), its output is already the
  channels-last input ``(N, C, 3, V T)`` of the three ``conv_d`` branches, read as ONE
  convolution over the stacked subsets (kernel ``3 x 1``): no permutation is copied;
- BatchNorm, ReLU and the residual sums are element-wise, in that layout.

Only the attention embeddings are re-laid out (:func:`split_pairs`): their logits
contract over frames and channels, which channels-last memory interleaves.

Nothing here queries a tensor's layout (``is_contiguous(memory_format=...)`` is not
available under ``torch.func.vmap``): every operation is correct for any strides and
only fast for the layout above.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator

import torch
from torch import Tensor, nn
from torch.nn.modules import module as _module


def global_hooks() -> bool:
    """Whether a global module hook is registered (``torch.nn.modules.module``)."""
    return bool(
        _module._global_forward_hooks
        or _module._global_forward_pre_hooks
        or _module._global_backward_hooks
        or _module._global_backward_pre_hooks
    )


_UNHOOKED = contextvars.ContextVar("rankzc_unhooked_convolutions", default=False)


@contextlib.contextmanager
def unhooked() -> Iterator[None]:
    """Within this block :func:`hooked` answers False without looking: for the network's
    blocks once it has checked every one of its convolutions and the global hooks."""
    token = _UNHOOKED.set(True)
    try:
        yield
    finally:
        _UNHOOKED.reset(token)


def hooked(modules: Iterable[nn.Module]) -> bool:
    """Whether a global hook exists or one of ``modules`` has a hook of its own."""
    if _UNHOOKED.get():
        return False
    if global_hooks():
        return True
    return any(
        m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
        for m in modules
    )


_WIDE = ((torch.complex128, 16), (torch.float64, 8))


def _wide_dtype(t: Tensor) -> torch.dtype | None:
    """The widest dtype (complex128, float64) whose elements hold a whole number of
    ``t``'s last-dimension entries, if ``t`` may be reinterpreted as it, else None.

    Copying a permutation of ``t`` read in that dtype moves runs of 8-16 bytes instead of
    single floats: 3-5x faster when the last dimension holds 2-8 of them. Plain
    tensors only (not under ``torch.func`` transforms, not while recording a graph)."""
    if (
        not t.dtype.is_floating_point
        or torch._C._functorch.is_functorch_wrapped_tensor(t)
        or (torch.is_grad_enabled() and t.requires_grad)
    ):
        return None
    row = t.shape[-1] * t.element_size()
    for dtype, size in _WIDE:
        if size > t.element_size() and row % size == 0:
            return dtype
    return None


def _as(t: Tensor, dtype: torch.dtype | None) -> Tensor:
    """``t`` viewed as ``dtype`` (``t`` itself for None)."""
    return t if dtype is None else t.view(dtype)


def split_pairs(inter: int, *ys: Tensor) -> tuple[Tensor, Tensor]:
    """The attention embeddings of all pairs, re-laid out for their logits.

    Inputs: ``C_e`` and the outputs ``y_j``, ``(N, 2 G_j C_e, V, T)``, of the convolutions
    computing ``[P_1; Q_1; P_2; Q_2; ...]`` (one per kernel height, channels last).
    Outputs: ``P`` and ``Q`` as contiguous ``(N G, V, T C_e)`` matrices (sample-major,
    ``G = sum G_j`` pairs in the order of the ``y_j``), whose product ``P Q^T`` holds the
    pairs' logits. One copy each way; the gradients go back laid out like the ``y_j``
    (:class:`_SplitPairs`). Under ``torch.func`` transforms: the same with plain
    operations (custom autograd functions cost a signature inspection per call there).
    """
    if torch._C._are_functorch_transforms_active():
        N, _, V, T = ys[0].shape
        parts = []
        for y in ys:
            G = y.shape[1] // (2 * inter)
            parts.append(y.permute(0, 2, 3, 1).reshape(N, V, T, G, 2, inter))
        ym = torch.cat(parts, dim=3).permute(4, 0, 3, 1, 2, 5)  # (2, N, G, V, T, C_e)
        p, q = ym.reshape(2, -1, V, T * inter).unbind(0)
        return p, q
    return _SplitPairs.apply(inter, *ys)


def pair_logits(q: Tensor, p: Tensor, scale: float) -> Tensor:
    """``scale * Q P^T``, ``(N G, W, V)``: the pairs' logits, transposed
    (:class:`_PairLogits`; plain operations under ``torch.func`` transforms)."""
    if torch._C._are_functorch_transforms_active():
        return torch.bmm(q, p.transpose(1, 2)) * scale
    return _PairLogits.apply(q, p, scale)


class _SplitPairs(torch.autograd.Function):
    """:func:`split_pairs` with a backward that returns the gradients laid out like the
    convolutions' outputs (autograd's own would hand the convolutions permuted,
    non-channels-last gradients, which oneDNN first copies, and slowly)."""

    @staticmethod
    def forward(ctx, inter: int, *ys: Tensor) -> tuple[Tensor, Tensor]:
        N, _, V, T = ys[0].shape
        sizes = [y.shape[1] // (2 * inter) for y in ys]
        ctx.dims = (N, V, T, inter, sizes)
        out = ys[0].new_empty(2, N, sum(sizes), V, T, inter)
        wide = _wide_dtype(out)
        dst = _as(out, wide)
        g0 = 0
        for y, G in zip(ys, sizes, strict=True):
            ym = y.permute(0, 2, 3, 1).reshape(N, V, T, G, 2, inter)
            try:
                src = _as(ym, wide)
            except RuntimeError:  # strides that do not allow it: copy float by float
                src, dst, wide = ym, out, None
            for i in range(2):
                dst[i, :, g0 : g0 + G] = src[:, :, :, :, i].permute(0, 3, 1, 2, 4)
            g0 += G
        p, q = out.view(2, N * g0, V, T * inter).unbind(0)
        return p, q

    @staticmethod
    def backward(ctx, grad_p: Tensor, grad_q: Tensor) -> tuple:
        N, V, T, ce, sizes = ctx.dims
        G = sum(sizes)
        src = [g.contiguous().view(N, G, V, T, ce) for g in (grad_p, grad_q)]
        wide = _wide_dtype(src[0]) and _wide_dtype(src[1])
        src = [_as(g, wide) for g in src]
        grads, g0 = [], 0
        for Gj in sizes:
            grad = grad_p.new_empty(N, V, T, Gj, 2, ce)
            dst = _as(grad, wide)
            for i in range(2):
                dst[:, :, :, :, i] = src[i][:, g0 : g0 + Gj].permute(0, 2, 3, 1, 4)
            grads.append(grad.view(N, V, T, Gj * 2 * ce).permute(0, 3, 1, 2))
            g0 += Gj
        return (None, *grads)


class _PairLogits(torch.autograd.Function):
    """:func:`pair_logits` whose backward returns both gradients contiguous (autograd's
    own for ``torch.bmm(q, p.transpose(1, 2))`` returns ``p``'s transposed, which the
    backward of :class:`_SplitPairs` would first have to copy). Its backward is made of
    differentiable operations on the saved inputs: double backward (grasp) works."""

    @staticmethod
    def forward(ctx, q: Tensor, p: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(q, p)
        ctx.scale = scale
        return torch.bmm(q, p.transpose(1, 2)).mul_(scale)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, None]:
        q, p = ctx.saved_tensors
        grad = grad * ctx.scale
        return torch.bmm(grad, p), torch.bmm(grad.transpose(1, 2), q), None
