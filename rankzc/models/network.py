r"""The GCN-NAS network (an exact port of the study's model).

Input :math:`x \in \mathbb{R}^{N \times C \times T \times V \times M}` (coordinates,
frames, joints, persons). A BatchNorm1d over the :math:`M V C` channels (index
:math:`m V C + v C + c`) normalises it; persons are folded into the batch; the blocks
(:class:`~rankzc.models.block.Block`) follow the channel plan of the depth; features are
averaged over :math:`T, V`, then over persons, and a linear layer maps them to classes.

Channel plans at width 1 (``s2`` = temporal stride 2):

- L=4: 3-64, 64-128 s2, 128-256 s2, 256-256
- L=6: 3-64, 64-64, 64-128 s2, 128-128, 128-256 s2, 256-256
- L=8: 3-64, 64-64, 64-64, 64-128 s2, 128-128, 128-128, 128-256 s2, 256-256
- L=10: 3-64, 64-64, 64-64, 64-64, 64-128 s2, 128-128, 128-128, 128-256 s2, 256-256, 256-256

``width`` multiplies 64/128/256 (rounded; every width must keep >= 4 channels so that
the attention embedding ``out // 4`` is not empty).

Between blocks the activations have the shape ``(N M, C, T, V)``; on the fused path (no
hook on any convolution) they are stored joint-major and channels last, memory
``(N M, V, T, C)`` (:mod:`rankzc.models.layout`), otherwise contiguous.
"""

from __future__ import annotations

import contextlib
import math

from torch import Tensor, nn

from rankzc.errors import RankzcError
from rankzc.models.block import Block
from rankzc.models.graph import NUM_JOINTS, spatial_partition
from rankzc.models.init import bn_init
from rankzc.models.layout import hooked, unhooked
from rankzc.models.sampling import normal_, randn
from rankzc.models.taps import current_tap
from rankzc.space import Architecture

#: (base-channel index in (64, 128, 256), stride) per block, per depth.
_PLANS: dict[int, tuple[tuple[int, int], ...]] = {
    4: ((0, 1), (1, 2), (2, 2), (2, 1)),
    6: ((0, 1), (0, 1), (1, 2), (1, 1), (2, 2), (2, 1)),
    8: ((0, 1), (0, 1), (0, 1), (1, 2), (1, 1), (1, 1), (2, 2), (2, 1)),
    10: ((0, 1), (0, 1), (0, 1), (0, 1), (1, 2), (1, 1), (1, 1), (2, 2), (2, 1), (2, 1)),
}
BASE_CHANNELS = (64, 128, 256)


def channel_plan(
    depth: int, in_channels: int = 3, width: float = 1.0
) -> list[tuple[int, int, int]]:
    """``[(in, out, stride), ...]`` for each block of a network of ``depth`` blocks."""
    if depth not in _PLANS:
        raise RankzcError(f"rule depth: depth must be one of {sorted(_PLANS)}, got {depth}")
    if not (isinstance(width, (int, float)) and math.isfinite(width) and width > 0):
        raise RankzcError(f"width: must be a positive number, got {width!r}")
    chans = [int(round(c * width)) for c in BASE_CHANNELS]
    if min(chans) < 4:
        raise RankzcError(f"width: {width} gives {chans[0]} channels; at least 4 are needed")
    plan, prev = [], in_channels
    for idx, stride in _PLANS[depth]:
        plan.append((prev, chans[idx], stride))
        prev = chans[idx]
    return plan


class GCNNASNet(nn.Module):
    """The GCN-NAS classifier for one :class:`~rankzc.space.Architecture`.

    Args:
        arch: the architecture (its switch pattern).
        num_classes: classes of the linear classifier.
        num_person: persons :math:`M` per sample.
        in_channels: coordinates :math:`C` per joint.
        width: channel multiplier (1 = the study's network).
        num_frames: frames :math:`T` the model is meant for (used by :meth:`example_input`;
            the network accepts any length).
        aggregation: ``"dense"`` or ``"sparse"`` (see :mod:`rankzc.models.unit_gcn`).
        fuse: take the fused path when no hook watches a convolution (same function;
            :mod:`rankzc.models.layout`); ``False``: every convolution called as a module.
    """

    def __init__(
        self,
        arch: Architecture,
        num_classes: int = 60,
        num_person: int = 2,
        in_channels: int = 3,
        width: float = 1.0,
        num_frames: int = 300,
        aggregation: str = "dense",
        fuse: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (
            ("num_classes", num_classes),
            ("num_person", num_person),
            ("in_channels", in_channels),
            ("num_frames", num_frames),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise RankzcError(f"{name}: must be a positive integer, got {value!r}")
        self.arch = arch
        self.num_classes = num_classes
        self.num_person = num_person
        self.in_channels = in_channels
        self.num_frames = num_frames
        self.num_point = NUM_JOINTS
        self.width = width
        self.fuse = fuse
        self.aggregation = aggregation
        plan = channel_plan(arch.depth, in_channels, width)
        A = spatial_partition()

        self.data_bn = nn.BatchNorm1d(num_person * in_channels * NUM_JOINTS)
        self.blocks = nn.ModuleList(
            Block(c_in, c_out, A, sw, stride=s, residual=i > 0, aggregation=aggregation, fuse=fuse)
            for i, ((c_in, c_out, s), sw) in enumerate(zip(plan, arch.blocks, strict=True))
        )
        self.out_channels = plan[-1][1]
        self.fc = nn.Linear(self.out_channels, num_classes)
        normal_(self.fc.weight, 0.0, math.sqrt(2.0 / num_classes))
        bn_init(self.data_bn, 1.0)
        self._convs = tuple(m for m in self.modules() if isinstance(m, nn.Conv2d))

    def _fast_layout(self) -> bool:
        """Whether the blocks take the fused path, so that activations are best stored
        joint-major and channels last (:mod:`rankzc.models.layout`)."""
        return self.fuse and self.aggregation == "dense" and not hooked(self._convs)

    def example_input(self, batch_size: int = 2, num_frames: int | None = None) -> Tensor:
        """A random input of the shape the model expects, ``(N, C, T, V, M)``."""
        T = self.num_frames if num_frames is None else num_frames
        return randn((batch_size, self.in_channels, T, self.num_point, self.num_person))

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, T, V, M) -> (N, num_classes)`` logits."""
        if x.dim() != 5 or (x.shape[1], x.shape[3], x.shape[4]) != (
            self.in_channels,
            self.num_point,
            self.num_person,
        ):
            raise RankzcError(
                f"input: expected shape (N, {self.in_channels}, T, {self.num_point}, "
                f"{self.num_person}), got {tuple(x.shape)}"
            )
        N, C, T, V, M = x.shape
        x = x.permute(0, 4, 3, 1, 2).reshape(N, M * V * C, T)
        x = self.data_bn(x).view(N, M, V, C, T)
        fast = self._fast_layout()
        if fast:  # (N M, C, T, V) stored as (N M, V, T, C)
            x = x.transpose(3, 4).contiguous().view(N * M, V, T, C).permute(0, 3, 2, 1)
        else:
            x = x.permute(0, 1, 3, 4, 2).reshape(N * M, C, T, V)
        with unhooked() if fast else contextlib.nullcontext():  # checked: no unit looks again
            for block in self.blocks:
                x = block(x)
        x = x.mean((2, 3)).view(N, M, self.out_channels).mean(1)
        out = self.fc(x)
        tap = current_tap() if fast else None
        if tap is not None:
            tap(out, [(self.fc, None, None)])
        return out

    def reports_outputs(self) -> bool:
        """Whether a forward now reports every layer's output to an active tap
        (:mod:`rankzc.models.taps`): on the fused path, which every unit then takes."""
        return self._fast_layout()

    def extra_repr(self) -> str:
        return f"arch={str(self.arch)!r}, width={self.width}"
