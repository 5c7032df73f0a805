"""Build a benchmark: train many architectures into one store, resumably.

:func:`build_benchmark` is the loop behind ``rankzc bench build``:

1. everything is checked before any training (config, architectures, output path,
   data, device, executor);
2. the architectures are added to the store and every one gets its run, keyed on
   ``(arch_id, seed, config hash)`` by :meth:`~rankzc.store.Benchmark.get_or_create_run`;
   finished runs are skipped, failed runs are skipped unless ``retry_failed``.
   With several seeds (:func:`seed_plan`) every architecture is trained under the
   first seed and the first ``repeat`` of them (all by default) under each further
   seed too, one run per (architecture, seed); the first seed's runs are trained
   first, so a partial build covers as many architectures as it can;
3. an executor (``local``: in this process, one after another; ``ray``: one Ray task
   per architecture, :mod:`rankzc.training.ray_executor`) trains the rest; this
   process is the only writer of the store.

Never losing work (why a SIGKILL at any instant leaves no duplicate and no wrong
record):

* one transaction per epoch holds the epoch's metrics and the proxies scored after it;
  runs are unique per key and epochs/proxies are primary-keyed, so a write is an
  upsert that can be replayed;
* the checkpoint ``<out>.ckpt/<arch_id>-<run key>.pt`` of an epoch is on disk (atomic
  rename) **before** that epoch's transaction begins, and it carries every record of
  the run. Killed before the rename: the store and the old checkpoint agree and the
  epoch is retrained from the old checkpoint, bit-for-bit. Killed between rename and
  commit: the resumed run replays the checkpoint's records into the store (same
  values), then continues. The store is never ahead of the checkpoint, so no epoch is
  recorded whose training state was lost;
* a run is marked done (with the last epoch's validation accuracy as its label) only
  after all its epochs are committed; its checkpoint is deleted after that (a
  checkpoint left by a kill in between is deleted on the next start);
* a run that fails (non-finite loss, out of memory, any exception) is recorded as
  failed with the reason and the build goes on; its checkpoint (the last good epoch)
  is kept, so that ``retry_failed`` (``--retry-failed``) continues it, e.g. on a
  machine with more memory;
* the store's write lock (``<out>.lock``, :mod:`rankzc.writelock`) stops two writers
  (builds, searches, ``features``) writing the same store at once.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rankzc.atomicfile import check_writable
from rankzc.errors import RankzcError
from rankzc.progress import BuildProgress
from rankzc.space import SPACE, Architecture
from rankzc.store import Benchmark, check_store_name, config_hash
from rankzc.training.config import TrainConfig
from rankzc.training.data import TrainData, load_train_data
from rankzc.training.trainer import (
    EpochRecord,
    RunResult,
    Trainer,
    checkpoint_name,
    describe_error,
    resolve_device,
)
from rankzc.writelock import StoreLock, store_lock

EXECUTORS = ("local", "ray")


@dataclass
class Job:
    """One run to train: architecture, its run in the store, checkpoint path and seed."""

    arch: Architecture
    run_id: int
    last_epoch: int
    checkpoint: Path
    seed: int = 0
    #: ``arch_id``, or ``arch_id@seed`` for a run under a further seed (summary, messages).
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or self.arch.arch_id


@dataclass
class BuildSummary:
    """What a build did."""

    out: Path
    total: int = 0
    skipped_done: int = 0
    skipped_failed: int = 0
    trained: int = 0
    done: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "total": self.total,
            "skipped_done": self.skipped_done,
            "skipped_failed": self.skipped_failed,
            "trained": self.trained,
            "done": self.done,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "errors": self.errors,
        }


def checkpoint_dir(out: str | Path) -> Path:
    """``<out>.ckpt``: where per-architecture checkpoints live, next to the store."""
    out = Path(out)
    return out.with_name(out.name + ".ckpt")


def check_output(out: str | Path) -> Path:
    """Refuse an output path that cannot be written (before any training)."""
    out = Path(out)
    check_store_name(out)  # '#' means STORE#HASH when a store is read
    if out.exists() and out.is_dir():
        raise RankzcError(f"--out {out}: is a directory")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise RankzcError(f"--out {out}: directory {parent} does not exist")
    check_writable(parent, f"--out {out}")
    if out.exists():
        try:
            open(out, "r+b").close()
        except OSError as err:
            raise RankzcError(f"--out {out}: file is not writable ({err.strerror})") from None
        Benchmark.open(out, readonly=True).close()
    return out


def proxy_settings(config: TrainConfig, seed: int) -> dict[str, Any]:
    """The settings stored with proxies scored during training.

    A :class:`~rankzc.proxies.features.ProxySettings` record: ``rankzc score`` and
    :func:`~rankzc.proxies.features.score_architectures` reproduce the initialisation
    scores of a built benchmark from it (same data, minibatch, seeding, no resampling).
    """
    from rankzc.proxies.features import ProxySettings

    settings = ProxySettings(
        preset=config.preset,
        data=config.data,
        batch_size=config.proxy_batch_size,
        seed=int(seed),
        proxies=tuple(config.proxies),
        resample=False,
    )
    return {**settings.to_dict(), "source": "rankzc bench build"}


class StoreWriter:
    """Writes epoch records and run outcomes into the store (the only writer)."""

    def __init__(self, bench: Benchmark, config: TrainConfig, seeds: Sequence[int] = (0,)):
        self.bench = bench
        self.settings = {int(s): proxy_settings(config, s) for s in seeds}

    def record(self, job: Job, rec: EpochRecord) -> None:
        """Write one epoch (metrics + proxies) in one transaction; replays are upserts."""
        arch_id = job.arch.arch_id
        with self.bench.transaction():
            if rec.epoch >= 0:
                self.bench.record_epoch(
                    job.run_id,
                    rec.epoch,
                    val_acc=rec.val_acc,
                    val_loss=rec.val_loss,
                    train_loss=rec.train_loss,
                    seconds=rec.seconds,
                )
            if rec.proxies:
                self.bench.record_proxies(
                    arch_id,
                    rec.epoch,
                    rec.proxies,
                    run_id=job.run_id,
                    settings=self.settings[job.seed],
                )
        job.last_epoch = max(job.last_epoch, rec.epoch)

    def finish(self, job: Job, result: RunResult) -> None:
        if result.status == "done":
            self.bench.finish_run(
                job.run_id, val_acc=result.val_acc, train_seconds=result.train_seconds
            )
            with contextlib.suppress(FileNotFoundError):
                job.checkpoint.unlink()
        else:
            self.bench.fail_run(job.run_id, result.error or "unknown error")


@contextlib.contextmanager
def build_lock(out: Path, held: StoreLock | None = None) -> Iterator[Path]:
    """Hold the store's write lock (:func:`rankzc.writelock.store_lock`, ``<out>.lock``)
    for the build's life; yields the checkpoint folder ``<out>.ckpt``.

    A build that cannot take the lock is refused and touches nothing. Only the holder
    cleans up: temporary checkpoint files left by a killed build, then (still holding
    the lock) the folder when no checkpoint is left. ``held``: the lock of a live
    search training its candidates into ``out`` (re-entered, not refused).
    """
    ckdir = checkpoint_dir(out)
    with store_lock(out, "build", held=held):
        try:
            ckdir.mkdir(exist_ok=True)
        except OSError as err:
            raise RankzcError(f"--out {out}: cannot create {ckdir} ({err.strerror})") from None
        try:
            # With the lock held no other build is alive: a temporary file is a kill's leftover.
            for stale in ckdir.glob(".*.tmp"):
                stale.unlink(missing_ok=True)
            yield ckdir
        finally:
            with contextlib.suppress(OSError):
                (ckdir / "lock").unlink(missing_ok=True)  # left by an older rankzc
                ckdir.rmdir()  # only when no checkpoint is left


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1"`` -> ``(0, 1)``: distinct integers, in the order given (``--seeds``)."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            seed = int(part)
        except ValueError:
            raise RankzcError(
                f"--seeds: expected comma-separated integers, got {part!r} in {text!r}"
            ) from None
        if seed in seeds:
            raise RankzcError(f"--seeds: seed {seed} is listed twice in {text!r}")
        seeds.append(seed)
    return tuple(seeds)


def seed_plan(
    archs: Sequence[Architecture], seeds: Sequence[int], repeat: int | None = None
) -> list[tuple[Architecture, int]]:
    """The ``(architecture, seed)`` runs of a build, in training order.

    Every architecture under ``seeds[0]``, then the first ``repeat`` architectures
    (all when ``None``) under each further seed. Sampled architectures come in random
    order (over depths), so the first ``repeat`` are a random subset of them.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise RankzcError("--seeds: at least one seed is needed")
    if len(set(seeds)) != len(seeds):
        raise RankzcError(f"--seeds: a seed is listed twice in {seeds}")
    if repeat is not None and not 0 <= repeat <= len(archs):
        raise RankzcError(
            f"--repeat-archs: must be in [0, {len(archs)}] (the number of architectures), "
            f"got {repeat}"
        )
    n_repeat = len(archs) if repeat is None else repeat
    plan = [(a, seeds[0]) for a in archs]
    for seed in seeds[1:]:
        plan += [(a, seed) for a in archs[:n_repeat]]
    return plan


def plan_jobs(
    bench: Benchmark,
    archs: Sequence[Architecture],
    config: TrainConfig,
    seeds: int | Sequence[int],
    ckdir: Path,
    retry_failed: bool,
    summary: BuildSummary,
    repeat: int | None = None,
) -> list[Job]:
    """Register architectures and runs (:func:`seed_plan`); return the runs still to train."""
    bench.add_architectures(
        {
            "arch_id": a.arch_id,
            "space": SPACE,
            "encoding": str(a),
            "depth": a.depth,
            "extra": {},
        }
        for a in archs
    )
    jobs = []
    cfg = config.to_dict()
    seeds = (seeds,) if isinstance(seeds, int) else tuple(seeds)
    for arch, seed in seed_plan(archs, seeds, repeat):
        run_id, status, last = bench.get_or_create_run(arch.arch_id, seed, cfg)
        ckpt = ckdir / checkpoint_name(arch.arch_id, seed, config)
        if status == "done":
            summary.skipped_done += 1
            with contextlib.suppress(FileNotFoundError):
                ckpt.unlink()  # left by a kill between finish and delete
            continue
        if status == "failed":
            if not retry_failed:
                summary.skipped_failed += 1
                continue
            bench.restart_run(run_id)
        name = arch.arch_id if seed == seeds[0] else f"{arch.arch_id}@{seed}"
        jobs.append(Job(arch, run_id, last, ckpt, seed, name))
    return jobs


# one progress helper for every command (rankzc/progress.py)
Progress = BuildProgress


def run_local(
    jobs: Sequence[Job],
    config: TrainConfig,
    seed: int,
    data: TrainData,
    device: torch.device,
    writer: StoreWriter,
    progress: Progress,
    summary: BuildSummary,
    model_fn: Callable | None = None,
) -> None:
    """Train ``jobs`` one after another in this process (each under its own seed)."""
    for job in jobs:
        arch_id = job.name
        progress.start(arch_id)
        trainer = Trainer(
            job.arch,
            config,
            job.seed,
            data,
            device=device,
            checkpoint=job.checkpoint,
            model_fn=model_fn,
        )
        try:
            result = trainer.run(
                lambda rec, job=job: writer.record(job, rec),
                progress=lambda e, i, n, a=arch_id: progress.batch(a, e, i, n),
            )
        except Exception as err:  # noqa: BLE001 - one architecture must not stop the build
            result = RunResult(job.arch.arch_id, "failed", error=describe_error(err))
            if device.type == "cuda":
                torch.cuda.empty_cache()
        finally:
            del trainer
        writer.finish(job, result)
        _count(summary, result, job)
        progress.end(arch_id)


def _count(summary: BuildSummary, result: RunResult, job: Job | None = None) -> None:
    summary.trained += 1
    if result.status == "done":
        summary.done += 1
    else:
        summary.failed += 1
        summary.errors[job.name if job is not None else result.arch_id] = result.error or ""


def check_executor(executor: str, workers: int, ray_address: str | None) -> None:
    if executor not in EXECUTORS:
        raise RankzcError(f"--executor: must be one of {EXECUTORS}, got {executor!r}")
    if workers < 1:
        raise RankzcError(f"--workers: must be >= 1, got {workers}")
    if executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise RankzcError(
                "--executor ray: Ray is not installed; pip install 'rankzc[ray]'"
            ) from None
    elif ray_address:
        raise RankzcError("--ray-address: only used with --executor ray")


def build_benchmark(
    out: str | Path,
    archs: Sequence[Architecture],
    config: TrainConfig,
    seed: int | Sequence[int] = 0,
    *,
    repeat: int | None = None,
    device: str = "auto",
    executor: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
    retry_failed: bool = False,
    progress: bool | None = None,
    data: TrainData | None = None,
    model_fn: Callable | None = None,
    allow_mixed_config: bool = False,
    lock: StoreLock | None = None,
) -> BuildSummary:
    """Train ``archs`` under ``config`` into the store ``out`` (created if missing).

    ``seed`` is one seed or a sequence of seeds: every architecture is trained under
    the first, the first ``repeat`` architectures (all by default) under each further
    one too (:func:`seed_plan`); the store keeps every run. Running it again resumes: finished runs are skipped, partial runs continue from
    their checkpoints, failed runs are skipped unless ``retry_failed``. ``data``
    (default: loaded from ``config.data``) and ``model_fn`` are for tests and
    notebooks; ``progress``: None = bars on a terminal, one-line reports on stderr
    otherwise (:mod:`rankzc.progress`), False = silent.
    A store holding runs of another configuration is refused unless
    ``allow_mixed_config`` (:meth:`~rankzc.store.Benchmark.check_config`). ``lock``: the
    store lock a live search already holds on ``out`` (:mod:`rankzc.writelock`).
    """
    t0 = time.perf_counter()
    out = check_output(out)
    config.validate()
    check_executor(executor, workers, ray_address)
    dev = resolve_device(device)
    if not archs:
        raise RankzcError("--archs: no architectures to train")
    if len({a.arch_id for a in archs}) != len(archs):
        raise RankzcError("--archs: the same architecture is listed twice")
    seeds = (int(seed),) if isinstance(seed, int) else tuple(int(s) for s in seed)
    plan = seed_plan(archs, seeds, repeat)  # checks seeds and repeat before any training
    if out.exists():  # refuse another configuration before loading any data
        with Benchmark.open(out, readonly=True) as held:
            held.check_config(config.to_dict(), allow_mixed=allow_mixed_config)
    if data is None:
        data = load_train_data(config.data)
    summary = BuildSummary(out, total=len(plan))
    with (
        build_lock(out, held=lock) as ckdir,
        Benchmark.create(
            out, space=SPACE, dataset=config.data, source="rankzc bench build"
        ) as bench,
    ):
        bench.check_config(config.to_dict(), allow_mixed=allow_mixed_config)
        bench.set_meta(
            build_config=json.dumps(config.to_dict(), sort_keys=True),
            build_config_hash=config_hash(config.to_dict()),
            label="val_acc = top-1 validation accuracy after the last epoch",
        )
        jobs = plan_jobs(bench, archs, config, seeds, ckdir, retry_failed, summary, repeat)
        writer = StoreWriter(bench, config, seeds)
        with Progress(len(jobs), config.epochs, progress) as bar:
            if executor == "local":
                run_local(jobs, config, seeds[0], data, dev, writer, bar, summary, model_fn)
            else:
                from rankzc.training.ray_executor import run_ray

                run_ray(
                    jobs,
                    config,
                    seeds[0],
                    data,
                    dev,
                    writer,
                    bar,
                    summary,
                    workers=workers,
                    address=ray_address,
                    model_fn=model_fn,
                )
    summary.seconds = time.perf_counter() - t0
    return summary
