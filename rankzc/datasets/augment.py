r"""Batched augmentation of skeleton tensors ``(B, 3, T, V, M)`` and frame resampling.

Both run on whole batches with torch ops (no per-sample Python loop), on the
batch's device.

* **crop**: a random window of the sample's valid frames (those up to the last
  frame with a non-zero joint) covering a ratio :math:`r \sim U(r_{min}, r_{max})`
  of them, resampled (nearest frame) back to ``T`` frames, as in CTR-GCN's
  ``valid_crop_resize``.
* **rotate**: a random rotation :math:`R = R_z(\gamma) R_y(\beta) R_x(\alpha)`
  with each angle uniform in :math:`[-\rho, \rho]` degrees; all-zero joints
  (padding, absent bodies) stay zero.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def valid_lengths(x: Tensor) -> Tensor:
    """Per sample, 1 + the index of the last frame with a non-zero value (>= 1)."""
    nonzero = x.abs().sum(dim=(1, 3, 4)) > 0  # (B, T)
    t = x.shape[2]
    idx = torch.arange(1, t + 1, device=x.device).expand_as(nonzero)
    return (idx * nonzero).amax(dim=1).clamp(min=1)


def resample_frames(
    x: Tensor, num_frames: int, start: Tensor | None = None, length: Tensor | None = None
) -> Tensor:
    """Resample frames ``[start, start + length)`` of each sample to ``num_frames`` (nearest).

    Defaults: the whole valid part of each sample.
    """
    b = x.shape[0]
    if length is None:
        length = valid_lengths(x)
    if start is None:
        start = torch.zeros(b, dtype=torch.long, device=x.device)
    pos = torch.arange(num_frames, device=x.device, dtype=torch.float64)
    idx = start[:, None] + (pos[None] * length[:, None].double() / num_frames).long()
    idx = idx.clamp(max=x.shape[2] - 1)
    gather = idx[:, None, :, None, None].expand(b, x.shape[1], num_frames, x.shape[3], x.shape[4])
    return torch.gather(x, 2, gather)


def rotation_matrices(angles: Tensor) -> Tensor:
    """``R_z(c) R_y(b) R_x(a)`` for angles ``(B, 3)`` in radians -> ``(B, 3, 3)``."""
    a, b, c = angles.unbind(1)
    one, zero = torch.ones_like(a), torch.zeros_like(a)
    rx = torch.stack([one, zero, zero, zero, a.cos(), -a.sin(), zero, a.sin(), a.cos()], 1)
    ry = torch.stack([b.cos(), zero, b.sin(), zero, one, zero, -b.sin(), zero, b.cos()], 1)
    rz = torch.stack([c.cos(), -c.sin(), zero, c.sin(), c.cos(), zero, zero, zero, one], 1)
    return rz.view(-1, 3, 3) @ ry.view(-1, 3, 3) @ rx.view(-1, 3, 3)


def augment(
    batch: Tensor,
    generator: torch.Generator | None = None,
    crop: float | tuple[float, float] | None = None,
    rotate: float = 0.0,
) -> Tensor:
    """Randomly crop-and-resample in time and rotate a batch ``(B, 3, T, V, M)``.

    ``crop``: ratio range ``(lo, hi)`` of valid frames kept (a float ``lo`` means
    ``(lo, 1)``); ``None`` skips it. ``rotate``: maximal angle in degrees about
    each axis; 0 skips it. ``generator`` makes the draws reproducible (it must
    live on the batch's device). Returns a new tensor.
    """
    if batch.dim() != 5 or batch.shape[1] != 3:
        raise ValueError(f"augment expects (B, 3, T, V, M), got {tuple(batch.shape)}")
    x = batch
    b, _, t = x.shape[:3]
    dev = x.device
    if crop is not None:
        lo, hi = (crop, 1.0) if isinstance(crop, (int, float)) else crop
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"crop ratios must satisfy 0 < lo <= hi <= 1, got {(lo, hi)}")
        valid = valid_lengths(x)
        ratio = lo + (hi - lo) * torch.rand(b, generator=generator, device=dev)
        length = (valid.double() * ratio).long().clamp(min=1)
        start = (torch.rand(b, generator=generator, device=dev) * (valid - length + 1)).long()
        x = resample_frames(x, t, start, length)
    if rotate:
        limit = math.radians(rotate)
        angles = (torch.rand(b, 3, generator=generator, device=dev) * 2 - 1) * limit
        rot = rotation_matrices(angles).to(x.dtype)
        x = torch.einsum("bij,bjtvm->bitvm", rot, x)
    return x if x is not batch else x.clone()
