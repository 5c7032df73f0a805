"""Named model sizes and :func:`build_model`.

- ``ntu60``: the study's network (60 classes, 2 persons, 3 channels, width 1, T = 300).
- ``cpu``: for real CPU benchmarks (width 1/8: 8/16/32 channels, 10 classes, T = 32).
- ``tiny``: for tests (width 1/16: 4/8/16 channels, 5 classes, T = 16).

Overrides (keyword arguments of :func:`build_model`): ``width``, ``num_classes``,
``num_person``, ``in_channels``, ``num_frames``, ``aggregation`` (``"dense"`` |
``"sparse"``), ``fuse`` (bool; see :mod:`rankzc.models.unit_gcn`).
"""

from __future__ import annotations

from typing import Any

from rankzc.errors import RankzcError
from rankzc.models.network import GCNNASNet
from rankzc.space import Architecture

PRESETS: dict[str, dict[str, Any]] = {
    "ntu60": dict(width=1.0, num_classes=60, num_person=2, in_channels=3, num_frames=300),
    "cpu": dict(width=0.125, num_classes=10, num_person=2, in_channels=3, num_frames=32),
    "tiny": dict(width=0.0625, num_classes=5, num_person=2, in_channels=3, num_frames=16),
}
OVERRIDES = (
    "width",
    "num_classes",
    "num_person",
    "in_channels",
    "num_frames",
    "aggregation",
    "fuse",
)


def preset_config(preset: str = "ntu60", **overrides: Any) -> dict[str, Any]:
    """The keyword arguments of :class:`GCNNASNet` for ``preset`` with ``overrides``."""
    if preset not in PRESETS:
        raise RankzcError(f"preset: must be one of {sorted(PRESETS)}, got {preset!r}")
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise RankzcError(f"override: unknown {unknown}; allowed: {list(OVERRIDES)}")
    config = {"aggregation": "dense", **PRESETS[preset]}
    config.update({k: v for k, v in overrides.items() if v is not None})
    if config["aggregation"] not in ("dense", "sparse"):
        raise RankzcError(
            f"aggregation: must be 'dense' or 'sparse', got {config['aggregation']!r}"
        )
    return config


def build_model(arch: Architecture | str, preset: str = "ntu60", **overrides: Any) -> GCNNASNet:
    """Build the GCN-NAS network of ``arch`` (an :class:`Architecture` or canonical string).

    Weights are drawn from torch's global generator: the same ``torch.manual_seed`` gives
    the same initial weights.
    """
    if isinstance(arch, str):
        arch = Architecture.parse(arch)
    if not isinstance(arch, Architecture):
        raise RankzcError(f"arch: expected an Architecture, got {type(arch).__name__}")
    return GCNNASNet(arch, **preset_config(preset, **overrides))


def count_parameters(model) -> int:
    """Number of trainable parameters (the study's ``params`` proxy)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
