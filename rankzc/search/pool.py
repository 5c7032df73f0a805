"""The candidate pool of a search: architectures with their proxy scores.

A :class:`Pool` is one table indexed by ``arch_id`` with the columns ``encoding``
(canonical string), ``depth`` and one column per proxy, plus, in simulation,
``val_acc`` (the label a "training" reveals) and ``train_seconds`` (what it costs).

* simulated mode: :func:`pool_from_store` reads the labelled architectures of a store;
* live mode: :func:`score_pool` scores sampled architectures with the recorded proxy
  settings through :func:`rankzc.proxies.features.iter_scores` (the path behind
  ``rankzc features`` and ``rankzc score``), in this process, in local worker processes
  or as Ray tasks, and streams every result to a callback as soon as it arrives.

Hard constraints (``--max-params``, ``--max-flops``) read the ``params`` and ``flops``
columns, in the store's units (parameters and FLOPs per sample for stores built by
rankzc and the study; NAS-Bench-Suite-Zero records millions).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rankzc.errors import RankzcError
from rankzc.threads import env_threads

#: Columns of a pool table that are not proxies.
BASE_COLUMNS = ("encoding", "depth", "val_acc", "train_seconds")


@dataclass
class Pool:
    """Candidates of a search (see the module docstring)."""

    space: str
    table: pd.DataFrame
    proxies: list[str]
    #: recorded proxy-scoring seconds (index arch_id, one column per proxy), if known
    proxy_seconds: pd.DataFrame | None = None
    #: values computed from the candidates (orders, encodings); emptied when they change
    cache: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.table)

    @property
    def ids(self) -> list[str]:
        return list(self.table.index)

    @property
    def labels(self) -> pd.Series | None:
        return self.table["val_acc"] if "val_acc" in self.table else None

    #: columns a strategy must never see (the simulator's oracle holds them)
    HIDDEN = ("val_acc", "train_seconds")

    def without_labels(self) -> Pool:
        """The pool a strategy sees: the same candidates without labels or training costs."""
        keep = [c for c in self.table.columns if c not in self.HIDDEN]
        return Pool(self.space, self.table[keep].copy(), list(self.proxies), self.proxy_seconds)

    def subset(self, ids: Sequence[str]) -> Pool:
        ids = list(ids)
        sec = None if self.proxy_seconds is None else self.proxy_seconds.reindex(ids)
        return Pool(self.space, self.table.loc[ids], list(self.proxies), sec)

    def extend(self, rows: pd.DataFrame, seconds: pd.DataFrame | None = None) -> None:
        """Add new candidates (live local search); rows already present are ignored."""
        new = rows.loc[~rows.index.isin(self.table.index)]
        if new.empty:
            return
        self.table = pd.concat([self.table, new.reindex(columns=self.table.columns)])
        if self.proxy_seconds is not None and seconds is not None:
            self.proxy_seconds = pd.concat([self.proxy_seconds, seconds.reindex(new.index)])
        self.cache.clear()

    def cost(self, names: Sequence[str]) -> float | None:
        """Recorded seconds of scoring every candidate with ``names`` (None: not recorded)."""
        if not names:
            return 0.0
        if self.proxy_seconds is None:
            return None
        return float(self.proxy_seconds.reindex(columns=list(names)).sum().sum())

    def arch_matrix(self) -> pd.DataFrame:
        """Architecture-encoding features of every candidate (cached)."""
        if "arch" not in self.cache:
            from rankzc.ranking.features import arch_features

            self.cache["arch"] = arch_features(self.table["encoding"].astype(str), self.space)
        return self.cache["arch"]

    def proxy_matrix(self, names: Sequence[str] | None = None) -> pd.DataFrame:
        return self.table[list(names if names is not None else self.proxies)].astype(float)

    def check_proxies(self, names: Sequence[str], what: str) -> None:
        missing = [n for n in names if n not in self.proxies]
        if missing:
            raise RankzcError(
                f"{what}: the pool has no scores for {', '.join(missing)} "
                f"(scored: {', '.join(self.proxies) or 'none'})"
            )


def feasible_ids(pool: Pool, max_params: float | None, max_flops: float | None) -> list[str]:
    """Candidates within the hard limits (a candidate with an unknown size is excluded)."""
    keep = np.ones(len(pool), dtype=bool)
    for column, limit, option in (
        ("params", max_params, "--max-params"),
        ("flops", max_flops, "--max-flops"),
    ):
        if limit is None:
            continue
        if column not in pool.table:
            raise RankzcError(f"{option}: the pool has no '{column}' scores to check the limit on")
        values = pool.table[column].to_numpy(dtype=float)
        keep &= np.isfinite(values) & (values <= float(limit))
    return [a for a, k in zip(pool.table.index, keep, strict=True) if k]


def pool_from_store(bench, proxies: Sequence[str] | None = None, epoch: int = -1) -> Pool:
    """The labelled architectures of a store as a simulated pool.

    Raises:
        RankzcError: the store has no labelled architecture or no proxy scores.
    """
    labels = bench.labels()
    if labels.empty:
        raise RankzcError(f"--benchmark {bench.path}: the store holds no labelled architectures")
    archs = bench.architectures().reindex(labels.index)
    feats = bench.features(epoch, proxies=proxies).reindex(labels.index)
    feats = feats.loc[:, feats.notna().any(axis=0)]
    table = pd.DataFrame(
        {
            "encoding": archs["encoding"].astype(str),
            "depth": archs["depth"].astype(float),
            "val_acc": labels["val_acc"].astype(float),
            "train_seconds": pd.to_numeric(labels["train_seconds"], errors="coerce"),
        },
        index=labels.index,
    ).join(feats)
    recs = bench.proxy_records(epoch)
    seconds = None
    if not recs.empty and recs["seconds"].notna().any():
        recs = recs[recs["name"].isin(feats.columns)]
        seconds = recs.pivot_table(
            index="arch_id", columns="name", values="seconds", aggfunc="mean"
        ).reindex(labels.index)
    table.index.name = "arch_id"
    return Pool(str(bench.meta.get("space", "")), table, [str(c) for c in feats.columns], seconds)


# ---------------------------------------------------------------- live scoring
#: What a worker process keeps between candidates: the settings it scores with and their
#: minibatch (generated or loaded once per worker, not once per candidate).
_WORKER: dict[str, Any] = {}


def _worker_state(settings: dict[str, Any]) -> tuple[Any, Any]:
    """``(ProxySettings, minibatch)`` of ``settings`` in this process (made on first use)."""
    from rankzc.proxies.features import ProxySettings, load_minibatch

    key = json.dumps(settings, sort_keys=True, default=str)
    if _WORKER.get("key") != key:
        ps = ProxySettings.from_dict(settings)
        _WORKER.clear()
        _WORKER.update(key=key, settings=ps, batch=load_minibatch(ps))
    return _WORKER["settings"], _WORKER["batch"]


def _init_worker(parent: int, settings: dict[str, Any]) -> None:
    """A local worker process: dies with the driver, one thread (the policy's count),
    and its minibatch ready before the first candidate arrives."""
    import torch

    from rankzc.orphans import die_with_parent

    die_with_parent(parent)  # no worker outlives a killed driver
    torch.set_num_threads(env_threads())  # capped; never the raw variable
    _worker_state(settings)


def _started() -> int:
    """A first task, so that every worker process starts (and imports) at once."""
    return os.getpid()


def _score_one(arch_text: str, settings: dict[str, Any], plan: Any) -> tuple[str, dict]:
    """Worker body: one candidate, one model build, the worker's minibatch and ``plan``."""
    from rankzc.proxies.features import iter_scores
    from rankzc.space import Architecture

    ps, batch = _worker_state(settings)
    arch = Architecture.parse(arch_text)
    ((_, res),) = iter_scores([arch], ps, batch=batch, plan=plan)
    return arch.arch_id, {n: r.as_tuple() for n, r in res.items()}


class _RayScorer:
    """A Ray actor: one worker of the pool (its minibatch loaded once)."""

    def __init__(self, settings: dict[str, Any], plan: Any) -> None:
        import torch

        torch.set_num_threads(env_threads())
        self.settings, self.plan = settings, plan
        _worker_state(settings)

    def score(self, arch_text: str) -> tuple[str, dict]:
        return _score_one(arch_text, self.settings, self.plan)


def _longest_first(archs: Sequence[Any]) -> list[Any]:
    """Deeper (costlier) candidates first, so that no worker is left with a long one at
    the end (the order candidates are scored in changes no score)."""
    return sorted(archs, key=lambda a: -int(getattr(a, "depth", 0)))


def score_pool(
    archs: Sequence[Any],
    settings: dict[str, Any],
    *,
    executor: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
    on_result: Callable[[str, dict[str, tuple]], None] | None = None,
    report: Callable[[str], None] | None = None,
) -> dict[str, dict[str, tuple]]:
    """Score ``archs`` (:class:`~rankzc.space.Architecture`) with the proxy ``settings``.

    ``executor="local"`` runs in this process with one worker, else in this process and
    ``workers - 1`` spawned ones (:func:`_score_local`); ``"ray"`` runs ``workers`` Ray
    actors. Every worker generates or loads the minibatch once and builds each model
    once; candidates are handed out one at a time, deepest first. The memory plan (:func:`rankzc.proxies.features.check_memory`)
    is made once here, for the whole pool (while local workers start; a pool that cannot
    fit is refused before any candidate is scored), and every worker follows it: a
    candidate's scores are the same
    whichever worker scores it, with whatever else, in whatever order (one worker or
    many, local or Ray). ``on_result(arch_id, {name: (score, seconds, error)})`` is
    called in this process as results arrive (the caller stores them, so a kill loses
    at most the candidates in flight); ``report`` gets the memory plan's lines at the
    study's scale (this process only). Returns every result by ``arch_id``.
    """
    from rankzc.proxies.features import ProxySettings, check_memory, iter_scores

    if executor not in ("local", "ray"):
        raise RankzcError(f"--executor: must be local or ray, got {executor!r}")
    archs = list(archs)
    out: dict[str, dict[str, tuple]] = {}

    def take(arch_id: str, res: dict[str, tuple]) -> None:
        out[arch_id] = res
        if on_result is not None:
            on_result(arch_id, res)

    if not archs:
        return out
    ps = ProxySettings.from_dict(settings)
    if executor == "local" and workers <= 1:
        for arch, res in iter_scores(archs, ps, report=report):
            take(arch.arch_id, {n: r.as_tuple() for n, r in res.items()})
        return out
    from rankzc.proxies.features import load_minibatch

    texts = [str(a) for a in _longest_first(archs)]
    if executor == "ray":
        plan = check_memory(archs, ps, load_minibatch(ps))  # refuses before Ray starts
        _score_ray(texts, settings, plan, workers, ray_address, take)
        return out
    _score_local(texts, settings, ps, archs, workers, take)
    return out


def _score_local(texts, settings, ps, archs, workers, take) -> None:
    """``workers`` local workers: this process and ``workers - 1`` spawned ones.

    This process is already started (imports done) and scores candidates itself while
    the spawned workers start and then alongside them: one candidate at a time from one
    deepest-first queue, each spawned worker with one candidate in flight (fed by a
    thread of this process that only waits). Every worker, this process included,
    scores with the same minibatch (:func:`_worker_state`) and memory plan, so a
    candidate's scores do not depend on who scored it. Results are handed to ``take``
    in this thread only (a store's connection stays in the thread that opened it), at
    the latest when this process finishes its current candidate.
    """
    import collections
    import multiprocessing as mp
    import queue
    import threading
    from concurrent.futures import ProcessPoolExecutor

    from rankzc.proxies.features import check_memory

    todo = collections.deque(texts)
    lock = threading.Lock()
    done: queue.Queue = queue.Queue()
    stop = threading.Event()

    def next_text() -> str | None:
        with lock:
            return None if stop.is_set() or not todo else todo.popleft()

    def feed(ex: ProcessPoolExecutor) -> None:
        """One spawned worker's candidates, one in flight, until the queue is empty."""
        try:
            while (text := next_text()) is not None:
                done.put(("ok", ex.submit(_score_one, text, settings, plan).result()))
        except BaseException as exc:  # handed to the main thread, which raises it
            done.put(("error", exc))
        finally:
            done.put(("end", None))

    def drain(block: bool) -> int:
        """Hand queued results to ``take``; re-raise a worker's error. Returns the
        number of feeders that ended."""
        ended = 0
        while True:
            try:
                kind, item = done.get(block=block)
            except queue.Empty:
                return ended
            block = False
            if kind == "ok":
                take(*item)
            elif kind == "error":
                raise item
            else:
                ended += 1

    n = min(workers - 1, len(texts))
    with ProcessPoolExecutor(
        n,
        mp_context=mp.get_context("spawn"),
        initializer=_init_worker,
        initargs=(os.getpid(), settings),
    ) as ex:
        try:
            for _ in range(n):  # the workers start (imports, minibatch) while the plan is made
                ex.submit(_started)
            # a refusal ends the pool unused; this process's minibatch serves it and its
            # own candidates
            plan = check_memory(archs, ps, _worker_state(settings)[1])
            feeders = [threading.Thread(target=feed, args=(ex,), daemon=True) for _ in range(n)]
            for t in feeders:
                t.start()
            running = n
            while (text := next_text()) is not None:  # this process is a worker too
                take(*_score_one(text, settings, plan))
                running -= drain(block=False)
            while running:
                running -= drain(block=True)
        except BaseException:
            stop.set()  # no new candidate for anyone; those in flight finish
            ex.shutdown(wait=False, cancel_futures=True)
            raise


def _score_ray(texts, settings, plan, workers, address, take) -> None:
    from rankzc.training.ray_executor import ray_session

    with ray_session(address, workers) as ray:
        actor = ray.remote(num_cpus=1, max_restarts=1, max_task_retries=2)(_RayScorer)
        pool = [actor.remote(settings, plan) for _ in range(min(workers, len(texts)))]
        todo = list(reversed(texts))
        pending: dict[Any, Any] = {}
        for a in pool:  # one candidate in flight per actor
            if todo:
                pending[a.score.remote(todo.pop())] = a
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                a = pending.pop(ref)
                take(*ray.get(ref))
                if todo:
                    pending[a.score.remote(todo.pop())] = a


def timed_score_pool(archs, settings, **kwargs) -> tuple[dict[str, dict[str, tuple]], float]:
    """:func:`score_pool` and its wall-clock seconds."""
    t0 = time.perf_counter()
    out = score_pool(archs, settings, **kwargs)
    return out, time.perf_counter() - t0
