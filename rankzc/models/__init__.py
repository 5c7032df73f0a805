"""The GCN-NAS network: :func:`build_model` and its parts (PyTorch; PyTorch Geometric for
the skeleton graph object and the optional sparse aggregation only)."""

from rankzc.models.block import Block
from rankzc.models.dynamic import DynamicGraph
from rankzc.models.graph import fixed_operators, ntu_skeleton, spatial_partition
from rankzc.models.network import GCNNASNet, channel_plan
from rankzc.models.presets import PRESETS, build_model, count_parameters, preset_config
from rankzc.models.tcn import UnitTCN
from rankzc.models.unit_gcn import AGGREGATIONS, UnitGCN

__all__ = [
    "AGGREGATIONS",
    "PRESETS",
    "Block",
    "DynamicGraph",
    "GCNNASNet",
    "UnitGCN",
    "UnitTCN",
    "build_model",
    "channel_plan",
    "count_parameters",
    "fixed_operators",
    "ntu_skeleton",
    "preset_config",
    "spatial_partition",
]
