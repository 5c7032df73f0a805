"""Train architectures as Ray tasks; the driver stays the only writer of the store.

One Ray task per architecture (``num_gpus=1`` on GPU machines, else ``num_cpus=1``,
``max_retries`` explicit: a task whose worker or node dies is re-run, and continues
from its checkpoint). Per-epoch commits are kept by **streaming**: a task puts each
epoch's record on a :class:`ray.util.queue.Queue` (an actor) right after writing that
epoch's checkpoint; the driver drains the queue between :func:`ray.wait` calls and
commits every record in its own transaction, then records the run as done or failed
when the task's result arrives (after draining the queue, so the epochs come first).
Tasks never open the store.

Consistency is the same as with the local executor: the checkpoint (which carries
every record of the run) is written before its record leaves the worker, so the
store is never ahead of a checkpoint; if the driver dies, the next build replays the
records the checkpoints hold. On a cluster, put the store on a file system the
workers share (``<out>.ckpt`` must be visible to them) to continue partial runs;
without it a partial architecture is retrained from scratch (results unchanged, the
upserts overwrite the same epochs).

Application errors (non-finite loss, out of memory, exceptions) are caught in the task
and returned as failed runs; they are not retried.

Orphans: Ray binds its head processes (GCS, raylet, ...) to the driver, but the agents
the raylet starts (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) outlive a driver
killed with SIGKILL while Ray is still starting, re-parented to init. A local Ray
instance therefore keeps its files under ``<tmp>/rzray-<uid>/<driver pid>-<start time>``
(:func:`driver_temp_dir`), which every process of that instance holds open from birth
(its inherited log files); the next start (:func:`clean_stale_ray`) kills the processes
of every such instance whose driver is gone and removes its folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from rankzc.errors import RankzcError
from rankzc.space import Architecture
from rankzc.threads import env_threads
from rankzc.training.config import TrainConfig
from rankzc.training.data import TrainData
from rankzc.training.trainer import EpochRecord, RunResult, Trainer, describe_error

MAX_RETRIES = 2


def ray_temp_root() -> Path:
    """Where local Ray instances started by rankzc keep their files (short: socket paths)."""
    return Path(tempfile.gettempdir()) / f"rzray-{os.getuid()}"


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def driver_temp_dir(pid: int | None = None) -> Path:
    """The temporary folder of the Ray instance of driver ``pid`` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    return ray_temp_root() / f"{pid}-{_start_time(pid)}"


def _holders(folder: Path) -> list[int]:
    """Processes (of this user) with their working directory or an open file in ``folder``."""
    prefix = str(folder) + os.sep
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        links = [f"/proc/{entry.name}/cwd"]
        with contextlib.suppress(OSError):
            links += [f"/proc/{entry.name}/fd/{fd}" for fd in os.listdir(f"/proc/{entry.name}/fd")]
        for link in links:
            try:
                target = os.readlink(link)
            except OSError:
                continue
            if target.startswith(prefix) or target == str(folder):
                found.append(int(entry.name))
                break
    return found


def clean_stale_ray() -> int:
    """Kill what is left of local Ray instances whose rankzc driver died; return how many.

    Only folders under :func:`ray_temp_root` are looked at, and only those whose driver
    (pid and start time in the folder name) no longer runs; a running build's Ray is
    never touched.
    """
    root = ray_temp_root()
    if not root.is_dir() or not os.path.isdir("/proc"):
        return 0
    killed = 0
    for folder in root.iterdir():
        pid, _, start = folder.name.partition("-")
        if not pid.isdigit() or (start and _start_time(int(pid)) == start):
            continue  # its driver is alive
        for victim in _holders(folder):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(victim, signal.SIGKILL)
                killed += 1
        shutil.rmtree(folder, ignore_errors=True)
    return killed


def _train_task(
    arch_text: str,
    run_id: int,
    config: dict[str, Any],
    seed: int,
    data: TrainData,
    device: str,
    checkpoint: str,
    queue: Any,
    model_fn: Callable | None,
) -> dict[str, Any]:
    """Body of the Ray task: train one architecture, stream records, return the result."""
    arch = Architecture.parse(arch_text)
    cfg = TrainConfig.from_dict(config)
    if device == "cpu":
        torch.set_num_threads(env_threads())  # capped; never the raw variable
    trainer = Trainer(
        arch, cfg, seed, data, device=device, checkpoint=checkpoint, model_fn=model_fn
    )
    try:
        result = trainer.run(lambda rec: queue.put((run_id, rec.to_dict())))
    except Exception as err:  # noqa: BLE001 - returned as a failed run
        result = RunResult(arch.arch_id, "failed", error=describe_error(err))
    return {
        "arch_id": result.arch_id,
        "status": result.status,
        "val_acc": result.val_acc,
        "train_seconds": result.train_seconds,
        "error": result.error,
    }


@contextlib.contextmanager
def ray_session(address: str | None, workers: int, num_gpus: int = 0):
    """Ray for the length of a ``with`` block: the ``ray`` module, initialised.

    Joins ``address`` (``"local"`` or empty: a new local instance with ``workers`` CPUs),
    or uses the instance this process already has. A local instance keeps its files in
    this driver's own folder (:func:`driver_temp_dir`), so the next start removes what a
    killed driver left (:func:`clean_stale_ray`); it is shut down and its folder removed
    on leaving. The one way rankzc starts Ray (training builds, search pool scoring).
    """
    try:
        import ray
    except ImportError:
        raise RankzcError(
            "--executor ray: Ray is not installed; pip install 'rankzc[ray]'"
        ) from None
    started = False
    temp_dir = None
    try:
        if not ray.is_initialized():
            if not address or address == "local":  # a local instance: this process starts it
                clean_stale_ray()
                temp_dir = driver_temp_dir()
                temp_dir.mkdir(parents=True, exist_ok=True)
            local = {} if temp_dir is None else {"_temp_dir": str(temp_dir)}
            if address:
                try:
                    ray.init(address=address, log_to_driver=False, include_dashboard=False, **local)
                except Exception as err:  # noqa: BLE001
                    raise RankzcError(f"--ray-address {address}: {describe_error(err)}") from None
            else:
                ray.init(
                    num_cpus=workers,
                    num_gpus=num_gpus,
                    include_dashboard=False,
                    log_to_driver=False,
                    **local,
                )
            started = True
        yield ray
    finally:
        if started:
            ray.shutdown()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)


def run_ray(
    jobs: Sequence[Any],
    config: TrainConfig,
    seed: int,
    data: TrainData,
    device: torch.device,
    writer: Any,
    progress: Any,
    summary: Any,
    *,
    workers: int = 1,
    address: str | None = None,
    model_fn: Callable | None = None,
    max_retries: int = MAX_RETRIES,
) -> None:
    """Train ``jobs`` as Ray tasks; write every record from this (the driver) process."""
    from rankzc.training.runner import _count

    num_gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    with ray_session(address, workers, num_gpus) as ray:
        from ray.util.queue import Queue

        resources = {"num_gpus": 1} if device.type == "cuda" else {"num_cpus": 1}
        task = ray.remote(max_retries=max_retries, retry_exceptions=False, **resources)(_train_task)
        queue = Queue()
        data_ref = ray.put(data)
        fn_ref = ray.put(model_fn)
        by_run = {job.run_id: job for job in jobs}
        pending = {}
        for job in jobs:
            ref = task.remote(
                str(job.arch),
                job.run_id,
                config.to_dict(),
                job.seed,
                data_ref,
                device.type,
                str(Path(job.checkpoint).resolve()),
                queue,
                fn_ref,
            )
            pending[ref] = job
            progress.start(job.arch.arch_id)

        def drain() -> None:
            n = queue.qsize()
            if n:
                for run_id, rec in queue.get_nowait_batch(n):
                    job = by_run[run_id]
                    record = EpochRecord.from_dict(rec)
                    writer.record(job, record)
                    progress.batch(job.arch.arch_id, record.epoch, 1, 1)

        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            drain()
            for ref in ready:
                job = pending.pop(ref)
                try:
                    out = ray.get(ref)
                    result = RunResult(**out)
                except Exception as err:  # noqa: BLE001 - worker died after its retries
                    result = RunResult(job.arch.arch_id, "failed", error=describe_error(err))
                drain()
                writer.finish(job, result)
                _count(summary, result, job)
                progress.end(job.arch.arch_id)
