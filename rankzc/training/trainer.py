"""Train one architecture, epoch by epoch, with atomic checkpoints and warm-up proxies.

One run (architecture, seed, :class:`~rankzc.training.config.TrainConfig`) goes:

1. build the model under ``torch.manual_seed(seed)``; score the proxies at
   initialisation (epoch -1) on one fixed minibatch (``proxy_batch_size`` training
   samples drawn with a generator seeded by ``seed``);
2. for every epoch ``e``: train (SGD, shuffling with a dedicated generator), measure
   top-1 accuracy and mean loss on the validation split (after every ``val_every``-th
   epoch and the last), score the proxies again when ``e < warmup_epochs``;
3. after step 1 and after every epoch, write a checkpoint **first** and hand the
   epoch's :class:`EpochRecord` to ``on_record`` (the store writer) **second**.

The checkpoint (``torch.save`` to a temporary file in the same directory, ``fsync``,
``os.replace``, directory ``fsync``) holds model, optimiser, scheduler, the torch RNG
states (as tensors), the shuffling generator, the epoch and **every** record of the
run so far. A run killed at any instant is therefore continued bit-for-bit: the
checkpoint is never behind the store, and the records it holds that the store may
lack are handed to ``on_record`` again when the run resumes (the store writes are
idempotent upserts, so replaying a record that did reach the store changes nothing).
Checkpoints are loaded with ``torch.load(weights_only=True)``.

Speed: ``precision="bf16"`` autocasts the forward pass (proxies are always scored in
fp32). The network lays its activations out channels-last itself, where its operations
need it (:mod:`rankzc.models.layout`; ``benchmarks/model_step.py``); converting the
model's parameters to ``torch.channels_last`` as well did not help on CPU
(``benchmarks/train_throughput.py --channels-last``, before that layout: cpu preset,
one thread, median of 20 steps: depth 4 fp32 282 vs 276 samples/s, bf16 381 vs 336;
depth 10 fp32 115 vs 115, bf16 160 vs 166).
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rankzc.device import resolve_device  # noqa: F401 - re-exported
from rankzc.errors import describe_error  # noqa: F401 - re-exported
from rankzc.space import Architecture
from rankzc.store import config_hash
from rankzc.training.config import TrainConfig
from rankzc.training.data import Feeder, TrainData

CHECKPOINT_FORMAT = 1
ProxyTriple = tuple[float | None, float | None, str | None]


class TrainingFailed(RuntimeError):
    """The run cannot go on (non-finite loss, ...); the message is stored as the reason."""


@dataclass
class EpochRecord:
    """What one epoch adds to the store (epoch -1: proxies at initialisation only)."""

    epoch: int
    val_acc: float | None = None
    val_loss: float | None = None
    train_loss: float | None = None
    seconds: float | None = None
    proxies: dict[str, ProxyTriple] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["proxies"] = {k: list(v) for k, v in self.proxies.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochRecord:
        data = dict(data)
        data["proxies"] = {k: tuple(v) for k, v in data.get("proxies", {}).items()}
        return cls(**data)


@dataclass
class RunResult:
    """The outcome of one run: ``status`` is ``done`` or ``failed``."""

    arch_id: str
    status: str
    val_acc: float | None = None
    train_seconds: float | None = None
    error: str | None = None


def checkpoint_name(arch_id: str, seed: int, config: TrainConfig) -> str:
    """``<arch_id>-<run key>.pt``; the run key hashes seed and configuration."""
    key = config_hash({"seed": int(seed), "config": config.to_dict()})
    return f"{arch_id}-{key}.pt"


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, fsync it, rename it over ``path``, fsync the directory."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def default_model_fn(arch: Architecture, config: TrainConfig, data: TrainData) -> nn.Module:
    """The preset's network sized for ``data``.

    The classifier has ``max(preset classes, data classes)`` outputs, the rule
    :func:`rankzc.proxies.features.score_architectures` uses too, so proxies scored here
    and by ``rankzc features`` / ``rankzc score`` see the same network.
    """
    from rankzc.models import PRESETS, build_model

    options = {
        "num_classes": max(int(PRESETS[config.preset]["num_classes"]), data.num_classes),
        "num_person": data.num_person,
        "num_frames": data.num_frames,
        **config.model,
    }
    return build_model(arch, config.preset, **options)


class Trainer:
    """Train one architecture under ``config``; see the module docstring for the protocol.

    Args:
        arch: the architecture.
        config: the training recipe.
        seed: seed of the initial weights, the shuffling and the proxy minibatch.
        data: train/val tensors.
        device: ``cpu``, ``cuda`` or ``auto``.
        checkpoint: checkpoint path (``None``: no checkpoints).
        model_fn: ``(arch, config, data) -> nn.Module`` (default: :func:`rankzc.models.build_model`).
    """

    def __init__(
        self,
        arch: Architecture,
        config: TrainConfig,
        seed: int,
        data: TrainData,
        *,
        device: str | torch.device = "cpu",
        checkpoint: str | Path | None = None,
        model_fn: Callable[[Architecture, TrainConfig, TrainData], nn.Module] | None = None,
    ):
        self.arch = arch
        self.config = config
        self.seed = int(seed)
        self.data = data
        self.device = resolve_device(device)
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.model_fn = model_fn or default_model_fn
        self.key = {
            "arch_id": str(arch.arch_id),
            "seed": self.seed,
            "config_hash": config_hash(config.to_dict()),
        }

    # ------------------------------------------------------------------ pieces
    def _build(self) -> None:
        cfg = self.config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = self.model_fn(self.arch, cfg, self.data)
        self.model = model.to(self.device)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov and cfg.momentum > 0,
            weight_decay=cfg.weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=list(cfg.milestones), gamma=cfg.gamma
        )
        self.shuffle = torch.Generator().manual_seed(self.seed + 1)
        x_train, y_train = self.data.x_train, self.data.y_train
        if cfg.train_samples is not None:
            x_train, y_train = x_train[: cfg.train_samples], y_train[: cfg.train_samples]
        self.train_feed = Feeder(x_train, y_train, self.device)
        self.val_feed = Feeder(self.data.x_val, self.data.y_val, self.device)
        from rankzc.proxies.features import minibatch_index

        # Drawn from the whole training split, as rankzc score draws it.
        k = min(cfg.proxy_batch_size, len(self.data.x_train))
        idx = minibatch_index(len(self.data.x_train), k, self.seed)
        self.proxy_batch = (
            self.data.x_train.index_select(0, idx).to(self.device),
            self.data.y_train.index_select(0, idx).to(self.device),
        )

    def _autocast(self):
        if self.config.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _proxies(self) -> dict[str, ProxyTriple]:
        if not self.config.proxies:
            return {}
        from rankzc.proxies import compute_proxies

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = compute_proxies(
                self.model, self.proxy_batch, names=list(self.config.proxies), seed=self.seed
            )
        return {name: (r.score, r.seconds, r.error) for name, r in results.items()}

    def _train_epoch(self, epoch: int, progress: Callable[[int, int], None] | None) -> float:
        self.model.train()
        total, count = 0.0, 0
        n = self.train_feed.n_batches(self.config.batch_size)
        for i, (x, y) in enumerate(self.train_feed.batches(self.config.batch_size, self.shuffle)):
            with self._autocast():
                loss = nn.functional.cross_entropy(self.model(x), y)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingFailed(f"non-finite training loss {value} at epoch {epoch}")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if epoch < self.config.lr_warmup_epochs:
                self._set_lr(self.config.lr_at(epoch, i, n))
            self.optimizer.step()
            total += value * len(y)
            count += len(y)
            if progress is not None:
                progress(i + 1, n)
        if epoch < self.config.lr_warmup_epochs:
            self._set_lr(self.config.lr_at(epoch))  # the scheduler continues from here
        return total / max(count, 1)

    def _set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """Top-1 accuracy and mean cross-entropy on the validation split."""
        was = self.model.training
        self.model.eval()
        correct, loss, count = 0, 0.0, 0
        for x, y in self.val_feed.batches(2 * self.config.batch_size):
            with self._autocast():
                out = self.model(x)
            out = out.float()
            loss += float(nn.functional.cross_entropy(out, y, reduction="sum"))
            correct += int((out.argmax(1) == y).sum())
            count += len(y)
        self.model.train(was)
        return correct / count, loss / count

    # ------------------------------------------------------------- checkpoints
    def _state(self, epoch: int, records: list[EpochRecord]) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            **self.key,
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng_torch": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "rng_shuffle": self.shuffle.get_state(),
            "records": [r.to_dict() for r in records],
        }

    def _save(self, epoch: int, records: list[EpochRecord]) -> None:
        if self.checkpoint is not None:
            atomic_save(self._state(epoch, records), self.checkpoint)

    def _load(self) -> dict[str, Any] | None:
        """The checkpoint of this run, or None (missing, unreadable, or another run's)."""
        if self.checkpoint is None or not self.checkpoint.exists():
            return None
        try:
            state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - a torn or foreign file means "start over"
            return None
        if state.get("format") != CHECKPOINT_FORMAT or any(
            state.get(k) != v for k, v in self.key.items()
        ):
            return None
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng_torch"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        self.shuffle.set_state(state["rng_shuffle"])

    def remove_checkpoint(self) -> None:
        if self.checkpoint is not None:
            with contextlib.suppress(FileNotFoundError):
                self.checkpoint.unlink()

    # --------------------------------------------------------------------- run
    def run(
        self,
        on_record: Callable[[EpochRecord], None],
        progress: Callable[[int, int, int], None] | None = None,
    ) -> RunResult:
        """Train to the last epoch (continuing from the checkpoint) and return the result.

        ``on_record(record)`` is called for every epoch after its checkpoint is on disk,
        and on resume for the records the checkpoint holds. ``progress(epoch, batch,
        n_batches)`` reports training progress. Raises on failure (the caller records it).
        """
        cfg = self.config
        self._build()
        state = self._load()
        if state is not None:
            try:
                self._restore(state)
            except (RuntimeError, KeyError, ValueError):  # does not fit this model: start over
                self._build()
                state = None
        if state is not None:
            records = [EpochRecord.from_dict(r) for r in state["records"]]
            start = int(state["epoch"]) + 1
            for rec in records:
                on_record(rec)
        else:
            records = [EpochRecord(-1, proxies=self._proxies())]
            start = 0
            self._save(-1, records)
            on_record(records[-1])
        for epoch in range(start, cfg.epochs):
            t0 = time.perf_counter()
            cb = None if progress is None else (lambda i, n, e=epoch: progress(e, i, n))
            train_loss = self._train_epoch(epoch, cb)
            self.scheduler.step()
            if (epoch + 1) % cfg.val_every == 0 or epoch == cfg.epochs - 1:
                val_acc, val_loss = self.evaluate()
            else:
                val_acc = val_loss = None
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            seconds = time.perf_counter() - t0
            proxies = self._proxies() if epoch < cfg.warmup_epochs else {}
            records.append(EpochRecord(epoch, val_acc, val_loss, train_loss, seconds, proxies))
            self._save(epoch, records)
            on_record(records[-1])
        last = records[-1]
        return RunResult(
            self.key["arch_id"],
            "done",
            val_acc=last.val_acc,
            train_seconds=sum(r.seconds or 0.0 for r in records if r.epoch >= 0),
        )
