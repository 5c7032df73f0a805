"""Training data held in memory as tensors, and the minibatch feeder.

The whole split is one float32 tensor ``(N, 3, T, 25, M)`` plus int64 labels. On a
GPU the tensors are moved to the device once when they fit in a quarter of its free
memory; otherwise they stay on the host in pinned memory and every minibatch is
gathered into a pinned buffer and copied asynchronously (the buffer is reused only
after a CUDA event says the previous copy is done). Shuffling uses its own
:class:`torch.Generator`, whose state goes into checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from rankzc.errors import RankzcError


@dataclass
class TrainData:
    """Train and validation tensors of one data specification."""

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    num_classes: int
    spec: str = ""

    def __post_init__(self) -> None:
        for name in ("x_train", "x_val"):
            x = getattr(self, name)
            if x.dim() != 5 or x.dtype != torch.float32:
                raise RankzcError(f"{self.spec or 'data'}: {name} must be float32 (N, C, T, V, M)")
        if len(self.x_train) != len(self.y_train) or len(self.x_val) != len(self.y_val):
            raise RankzcError(f"{self.spec or 'data'}: inputs and labels differ in length")
        if len(self.x_train) < 2 or len(self.x_val) < 1:
            raise RankzcError(
                f"{self.spec or 'data'}: need >= 2 training and >= 1 validation samples"
            )

    @property
    def num_frames(self) -> int:
        return int(self.x_train.shape[2])

    @property
    def num_person(self) -> int:
        return int(self.x_train.shape[4])


def _as_tensors(ds, where: str) -> tuple[Tensor, Tensor]:
    """(inputs, labels) of a map-style dataset of ``(x, y)`` pairs, as two tensors."""
    tensors = getattr(ds, "tensors", None)
    if isinstance(getattr(ds, "data", None), torch.Tensor):
        x, y = ds.data, ds.labels  # rankzc.datasets.SkeletonDataset
    elif tensors is not None and len(tensors) >= 2:
        x, y = tensors[0], tensors[1]
    else:
        items = [ds[i] for i in range(len(ds))]
        if not items:
            raise RankzcError(f"{where}: the data set is empty")
        x = torch.stack([torch.as_tensor(it[0]) for it in items])
        y = torch.as_tensor([int(it[1]) for it in items])
    return torch.as_tensor(x, dtype=torch.float32).contiguous(), torch.as_tensor(
        y, dtype=torch.int64
    )


def load_train_data(spec: str) -> TrainData:
    """Load the train and val splits of ``spec`` with :func:`rankzc.datasets.load_dataset`."""
    try:
        from rankzc.datasets import load_dataset
    except ImportError as err:  # pragma: no cover - the data package is part of rankzc
        raise RankzcError(f"--data: cannot load data sets ({err})") from None
    train = load_dataset(spec, split="train")
    val = load_dataset(spec, split="val")
    x_train, y_train = _as_tensors(train, f"{spec} (train)")
    x_val, y_val = _as_tensors(val, f"{spec} (val)")
    classes = getattr(train, "num_classes", None)
    if classes is None:
        classes = int(max(y_train.max(), y_val.max())) + 1
    return TrainData(x_train, y_train, x_val, y_val, int(classes), spec)


class Feeder:
    """Minibatches of ``(x, y)`` on ``device`` from tensors held in memory."""

    def __init__(self, x: Tensor, y: Tensor, device: torch.device, *, fits: float = 0.25):
        self.device = torch.device(device)
        self.n = len(x)
        self.on_device = False
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            if x.numel() * x.element_size() < fits * free:
                x, y = x.to(self.device), y.to(self.device)
                self.on_device = True
            else:
                x, y = x.pin_memory(), y.pin_memory()
        self.x, self.y = x, y
        self._buf: tuple[Tensor, Tensor] | None = None
        self._copied: torch.cuda.Event | None = None

    def batch(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """Rows ``idx`` (a CPU index tensor) on the device."""
        if self.device.type == "cpu":
            return self.x.index_select(0, idx), self.y.index_select(0, idx)
        if self.on_device:
            idx = idx.to(self.device)
            return self.x.index_select(0, idx), self.y.index_select(0, idx)
        k = len(idx)
        if self._copied is not None:
            self._copied.synchronize()  # the last asynchronous copy has left the buffer
        if self._buf is None or len(self._buf[0]) < k:
            self._buf = (
                torch.empty((k, *self.x.shape[1:]), dtype=self.x.dtype).pin_memory(),
                torch.empty((k,), dtype=self.y.dtype).pin_memory(),
            )
        bx, by = self._buf[0][:k], self._buf[1][:k]
        torch.index_select(self.x, 0, idx, out=bx)
        torch.index_select(self.y, 0, idx, out=by)
        out = bx.to(self.device, non_blocking=True), by.to(self.device, non_blocking=True)
        self._copied = torch.cuda.Event()
        self._copied.record()
        return out

    def batches(self, batch_size: int, generator: torch.Generator | None = None):
        """Yield ``(x, y)`` minibatches: shuffled with ``generator``, in order without it.

        A trailing batch of one sample is dropped when shuffling (BatchNorm needs two).
        """
        order = (
            torch.randperm(self.n, generator=generator)
            if generator is not None
            else torch.arange(self.n)
        )
        for start in range(0, self.n, batch_size):
            idx = order[start : start + batch_size]
            if generator is not None and len(idx) < 2:
                break
            yield self.batch(idx)

    def n_batches(self, batch_size: int, shuffle: bool = True) -> int:
        full, rest = divmod(self.n, batch_size)
        return full + (1 if rest >= (2 if shuffle else 1) else 0)
