"""The canonical skeleton layout shared by every loader: NTU RGB+D, Kinect v2.

All data sets in :mod:`rankzc.datasets` hold actions as one float32 array of
shape ``(N, C=3, T, V=25, M)`` (coordinates x, y, z in metres, frames, joints in
the NTU order, bodies; ``M = 2`` for NTU, absent bodies and padded frames are
zeros) with int64 labels in ``[0, num_classes)``.

Joint order (1-based as in the NTU documentation, 0-based in arrays): 1 base of
spine, 2 middle of spine, 3 neck, 4 head, 5-8 left shoulder, elbow, wrist, hand,
9-12 right shoulder, elbow, wrist, hand, 13-16 left hip, knee, ankle, foot,
17-20 right hip, knee, ankle, foot, 21 spine (shoulder centre), 22 tip of left
hand, 23 left thumb, 24 tip of right hand, 25 right thumb.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rankzc.errors import RankzcError

NUM_JOINTS = 25
NUM_COORDS = 3
MAX_BODIES = 2

JOINT_NAMES: tuple[str, ...] = (
    "base of spine",
    "middle of spine",
    "neck",
    "head",
    "left shoulder",
    "left elbow",
    "left wrist",
    "left hand",
    "right shoulder",
    "right elbow",
    "right wrist",
    "right hand",
    "left hip",
    "left knee",
    "left ankle",
    "left foot",
    "right hip",
    "right knee",
    "right ankle",
    "right foot",
    "spine",
    "tip of left hand",
    "left thumb",
    "tip of right hand",
    "right thumb",
)

#: The 24 "inward" bones (child, parent), 1-based, as in the GCN-NAS graph.
INWARD_BONES: tuple[tuple[int, int], ...] = (
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21),
    (10, 9), (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1),
    (18, 17), (19, 18), (20, 19), (22, 23), (23, 8), (24, 25), (25, 12),
)  # fmt: skip


@dataclass
class LoadReport:
    """What a loader did to the samples it read.

    ``dropped_missing``: samples skipped because a missing-skeleton list names them;
    ``dropped_empty``: samples dropped because they hold no finite non-zero value
    (all NaN or all zero); ``nan_fixed``: samples in which frames with NaN were
    repaired (a body's NaN frame copies its nearest earlier valid frame, or the
    first valid one; a body with no valid frame becomes zeros); ``padded``: samples
    shorter than the frame budget (zero frames at the end); ``truncated``: samples
    cut to the frame budget; ``extra_bodies``: samples with more than two bodies
    of which the two most active were kept.
    """

    source: str = ""
    format: str = ""
    n_samples: int = 0
    dropped_missing: int = 0
    dropped_empty: int = 0
    nan_fixed: int = 0
    padded: int = 0
    truncated: int = 0
    extra_bodies: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        return {
            "source": self.source,
            "format": self.format,
            "n_samples": self.n_samples,
            "dropped_missing": self.dropped_missing,
            "dropped_empty": self.dropped_empty,
            "nan_fixed": self.nan_fixed,
            "padded": self.padded,
            "truncated": self.truncated,
            "extra_bodies": self.extra_bodies,
            "notes": list(self.notes),
        }


@dataclass
class SkeletonSet:
    """Skeleton actions in the canonical layout, with their metadata.

    ``data`` is ``(N, 3, T, 25, M)`` float32 (possibly a read-only memory map),
    ``labels`` int64 ``(N,)``; ``names`` are sample names (NTU style
    ``SsssCcccPpppRrrrAaaa`` where known, else ``None``); ``subjects`` and
    ``cameras`` are int arrays (``-1`` when unknown); ``partition`` is the
    source's own train/val assignment (``"train"``/``"val"`` per sample) when the
    format has one, else ``None``.
    """

    data: np.ndarray
    labels: np.ndarray
    num_classes: int
    names: list[str] | None = None
    subjects: np.ndarray | None = None
    cameras: np.ndarray | None = None
    partition: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None
    report: LoadReport = field(default_factory=LoadReport)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def check_canonical(data: np.ndarray, source: str, max_bodies: int = MAX_BODIES) -> None:
    """Refuse an array that is not ``(N, 3, T, 25, M)`` with ``1 <= M <= max_bodies``.

    The message names ``source``, the shape found and the layout expected, and
    says which other layout the shape looks like when it is a known one.
    """
    shape = tuple(int(s) for s in data.shape)
    expected = f"expected (N, 3, T, 25, M<={max_bodies}) = N samples, xyz, frames, joints, bodies"
    if len(shape) != 5:
        raise RankzcError(f"{source}: array of rank {len(shape)} {shape}; {expected}")
    n, c, t, v, m = shape
    if (c, v) == (NUM_COORDS, NUM_JOINTS) and 1 <= m <= max_bodies:
        return
    hint = ""
    if c == NUM_COORDS and m == NUM_COORDS and v == NUM_JOINTS:
        hint = " (ambiguous: axes 1 and 4 both have size 3)"
    elif shape[-1] == NUM_COORDS and NUM_JOINTS in shape[1:4]:
        hint = " (looks like N, M, T, V, C: move the coordinate axis to position 1)"
    elif c == 2:
        hint = " (2-D keypoints are not supported)"
    elif v != NUM_JOINTS:
        hint = f" (axis 3 has {v} joints, not 25)"
    elif m > max_bodies:
        hint = f" (axis 4 has {m} bodies)"
    raise RankzcError(f"{source}: shape {shape}; {expected}{hint}")
