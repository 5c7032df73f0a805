"""Label pipeline: train architectures, record accuracy and proxies per epoch, resumably.

>>> from rankzc.training import TrainConfig, build_benchmark  # doctest: +SKIP
>>> build_benchmark("b.db", archs, TrainConfig.for_preset("tiny", warmup_epochs=1))  # doctest: +SKIP
"""

from rankzc.training.config import RECIPES, TrainConfig, resolve_data_spec, scaled_milestones
from rankzc.training.data import Feeder, TrainData, load_train_data
from rankzc.training.runner import BuildSummary, build_benchmark, checkpoint_dir
from rankzc.training.trainer import EpochRecord, RunResult, Trainer, TrainingFailed

__all__ = [
    "RECIPES",
    "BuildSummary",
    "EpochRecord",
    "Feeder",
    "RunResult",
    "TrainConfig",
    "TrainData",
    "Trainer",
    "TrainingFailed",
    "build_benchmark",
    "checkpoint_dir",
    "load_train_data",
    "resolve_data_spec",
    "scaled_milestones",
]
