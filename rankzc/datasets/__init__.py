"""Skeleton action data: a synthetic NTU-layout generator and loaders for NTU RGB+D.

Everything is converted to one canonical layout ``(N, 3, T, 25, M=2)`` float32
(see :mod:`rankzc.datasets.skeleton`); :func:`parse_data_spec` and
:func:`load_dataset` are the single entry point used by training and proxies.
"""

from rankzc.datasets.augment import augment, resample_frames, valid_lengths
from rankzc.datasets.clean import repair
from rankzc.datasets.ntu import (
    NTU60_TRAIN_SUBJECTS,
    NTU_TRAIN_CAMERAS,
    NTUName,
    infer_format,
    is_training,
    load_ntu,
)
from rankzc.datasets.skeleton import (
    INWARD_BONES,
    JOINT_NAMES,
    NUM_JOINTS,
    LoadReport,
    SkeletonSet,
    check_canonical,
)
from rankzc.datasets.spec import (
    DataSpec,
    SkeletonDataset,
    load_dataset,
    load_skeletons,
    parse_data_spec,
)
from rankzc.datasets.synthetic import ACTIONS, generate

__all__ = [
    "ACTIONS",
    "INWARD_BONES",
    "JOINT_NAMES",
    "NTU60_TRAIN_SUBJECTS",
    "NTU_TRAIN_CAMERAS",
    "NUM_JOINTS",
    "DataSpec",
    "LoadReport",
    "NTUName",
    "SkeletonDataset",
    "SkeletonSet",
    "augment",
    "check_canonical",
    "generate",
    "infer_format",
    "is_training",
    "load_dataset",
    "load_ntu",
    "load_skeletons",
    "parse_data_spec",
    "repair",
    "resample_frames",
    "valid_lengths",
]
