"""Live search: sample GCN-NAS candidates, score them with proxies, train the chosen ones.

:class:`LiveSearch` runs :func:`rankzc.search.loop.run_search` with

* a pool of ``pool`` architectures drawn with the search seed (``--space``,
  ``--depths``), scored at initialisation with the recorded settings of the training
  configuration (:func:`rankzc.training.runner.proxy_settings`: same data, minibatch and
  seeding as ``bench build``) through :func:`rankzc.search.pool.score_pool` (in this
  process, local worker processes or Ray tasks); every score goes into the store
  (``run_id`` 0, epoch -1) as soon as it arrives;
* an oracle that trains a batch with :func:`rankzc.training.build_benchmark` into the same
  store (same checkpoints, same executors, resume after SIGKILL).

Never training twice, and continuing after a kill: the search state (every planned
batch, every trained architecture in order, the candidates the local search added) is
written to the store's ``meta`` (key ``search:<strategy>:<seed>``) in one transaction
before and after each training batch. A rerun with the same options restores the state,
scores only candidates that lack scores, trains the planned batch first (the label
pipeline resumes its checkpoints and skips finished runs) and continues; strategies are
pure functions of the state and the seed, so the result is the one an uninterrupted run
gives. Options that change the search (pool, depths, training recipe, proxies, limits,
batch) must be the same as the first run; a larger budget continues the search.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rankzc.errors import RankzcError
from rankzc.search.loop import Budget, Step, Trace, run_search
from rankzc.search.pool import Pool, feasible_ids, score_pool
from rankzc.search.strategies import PredictorStrategy, RankerStrategy, Strategy, prepare
from rankzc.space import SPACE, sample_architectures
from rankzc.store import Benchmark, config_hash
from rankzc.writelock import StoreLock, store_lock

SIZE_PROXIES = ("params", "flops")


@dataclass
class LiveHooks:
    """Callbacks for progress (and tests): all optional."""

    scored: Callable[[str, int, int], None] | None = None  # (arch_id, done, total)
    planned: Callable[[str, int, list[str]], None] | None = None  # (strategy, seed, batch)
    step: Callable[[str, int, Step], None] | None = None  # (strategy, seed, step)


@dataclass
class LiveSearch:
    """One live search setup (see the module docstring); :meth:`run` does the work."""

    out: Path
    config: Any  # rankzc.training.TrainConfig (the label pipeline's recipe)
    pool_size: int
    seed: int = 0
    depths: tuple[int, ...] = (4, 6, 8, 10)
    proxies: tuple[str, ...] = ()
    device: str = "auto"
    executor: str = "local"
    workers: int = 1
    ray_address: str | None = None
    max_params: float | None = None
    max_flops: float | None = None
    hooks: LiveHooks = field(default_factory=LiveHooks)
    model_fn: Callable | None = None  # tests: a smaller network

    # ------------------------------------------------------------------ checks
    @property
    def limited(self) -> bool:
        return self.max_params is not None or self.max_flops is not None

    def check(self, strategies: Sequence[Strategy], budget: Budget) -> None:
        """Everything that can be refused before any work (see also :meth:`run`)."""
        from rankzc.training.runner import check_executor, check_output
        from rankzc.training.trainer import resolve_device

        if self.pool_size < 1:
            raise RankzcError(f"--sample: must be >= 1, got {self.pool_size}")
        check_output(self.out)
        check_executor(self.executor, self.workers, self.ray_address)
        resolve_device(self.device)
        self.config.validate()
        mine = self.settings(["params"])
        for s in strategies:
            if not isinstance(s, RankerStrategy):
                continue
            if s.fitted.space != SPACE:
                raise RankzcError(
                    f"--strategy {s.name}: the ranker was fitted on space "
                    f"{s.fitted.space!r}; live search samples {SPACE!r}"
                )
            rec = s.fitted.settings or {}
            for key in ("preset", "data", "batch_size"):
                if key in rec and rec[key] != mine[key]:
                    raise RankzcError(
                        f"--strategy {s.name}: the ranker's proxies were scored with "
                        f"{key}={rec[key]!r}, this search scores them with {mine[key]!r}"
                    )
        if self.out.exists():
            with Benchmark.open(self.out, readonly=True) as bench:
                if bench.meta.get("space") != SPACE:
                    raise RankzcError(
                        f"--out {self.out}: store holds space {bench.meta.get('space')!r}, "
                        f"not {SPACE!r}"
                    )
                bench.check_config(self.config.to_dict())  # one training recipe per store

    def names(self, strategies: Sequence[Strategy]) -> list[str]:
        """Proxies scored for the pool: --proxies, what the strategies read, the sizes."""
        from rankzc.proxies.registry import proxy_names

        names = list(self.proxies) or proxy_names()
        for s in strategies:
            names += [n for n in s.reads if n not in names]
        if self.limited:
            names += [n for n in SIZE_PROXIES if n not in names]
        return names

    def settings(self, names: Sequence[str]) -> dict[str, Any]:
        """The recorded proxy settings (those of ``bench build`` for this recipe and seed)."""
        from rankzc.training.runner import proxy_settings

        cfg = dataclasses.replace(self.config, proxies=tuple(names))
        return {**proxy_settings(cfg, self.seed), "device": self.device, "source": "rankzc search"}

    def state_settings(self, strategy: Strategy, names: Sequence[str]) -> dict[str, Any]:
        out = {
            "strategy": strategy.name,
            "pool": int(self.pool_size),
            "depths": list(self.depths),
            "train_config": config_hash(self.config.to_dict()),
            "train_seed": int(self.seed),
            "proxies": sorted(names),
            "max_params": self.max_params,
            "max_flops": self.max_flops,
            "batch": strategy.batch,
        }
        if isinstance(strategy, PredictorStrategy):
            out["init"] = strategy.init
        return out

    @staticmethod
    def state_key(strategy: Strategy, seed: int) -> str:
        return f"search:{strategy.name}:{int(seed)}"

    def _check_state(self, bench: Benchmark, strategy: Strategy, seed: int, names) -> None:
        self._read_state(bench, strategy, seed, names)

    def _read_state(
        self, bench: Benchmark, strategy: Strategy, seed: int, names
    ) -> dict[str, Any] | None:
        """The stored state of this search (None: not started), validated against the
        schema and the store (:func:`rankzc.search.state.read_state`): the options it was
        started with must be these, its architectures registered, its labels the store's."""
        from rankzc.search.state import read_state

        key = self.state_key(strategy, seed)
        raw = bench.meta.get(key)
        if raw is None:
            return None
        mine = self.state_settings(strategy, names)

        def same_options(held: dict) -> None:
            diff = [k for k in mine if held.get(k) != mine[k]]
            if diff:
                k = diff[0]
                raise RankzcError(
                    f"--out {self.out}: holds search {strategy.name!r} seed {seed} run with "
                    f"{k}={held.get(k)!r}, not {mine[k]!r}; rerun with the same options or "
                    "use another --out"
                )

        return read_state(
            raw,
            f"--out {self.out}: {key}",
            archs=set(bench.architectures().index),
            labels=self._store_labels(bench),
            check_settings=same_options,
        )

    def _store_labels(self, bench: Benchmark) -> dict[str, float]:
        """arch_id -> val_acc of the finished runs of this search's recipe and seed."""
        runs = bench.runs()
        runs = runs[
            (runs["config_hash"] == config_hash(self.config.to_dict()))
            & (runs["seed"] == int(self.seed))
            & (runs["status"] == "done")
        ]
        return {
            str(a): float(v)
            for a, v in zip(runs["arch_id"], runs["val_acc"], strict=True)
            if v is not None and not pd.isna(v)
        }

    # ------------------------------------------------------------------ running
    def run(
        self, strategies: Sequence[Strategy], budget: Budget, seeds: Sequence[int]
    ) -> list[Trace]:
        """Run every strategy with every seed (resuming what the store holds).

        Everything is checked before anything is stored: options, the state of an earlier
        run, and (with --max-params / --max-flops) that some sampled candidate meets the
        limits (their sizes are computed first, in memory).
        """

        self.check(strategies, budget)
        # the store's write lock first: a refused search reads and touches nothing more
        with store_lock(self.out, "search") as lock:
            return self._run_locked(strategies, budget, seeds, lock)

    def _run_locked(
        self, strategies: Sequence[Strategy], budget: Budget, seeds: Sequence[int], lock: StoreLock
    ) -> list[Trace]:
        from rankzc.training.data import load_train_data

        names = self.names(strategies)
        if self.out.exists():
            with Benchmark.open(self.out, readonly=True) as bench:
                for strategy in strategies:
                    for seed in seeds:
                        self._check_state(bench, strategy, seed, names)
        pools = {s: sample_architectures(self.pool_size, self.depths, seed=s) for s in seeds}
        sizes = self._sizes(pools)
        data = load_train_data(self.config.data)
        record = self.settings(names)
        traces = []
        self._held = lock  # re-entered by the builds that train candidates
        with Benchmark.create(
            self.out, space=SPACE, dataset=self.config.data, source="rankzc search"
        ) as bench:
            bench.set_meta(proxy_settings=json.dumps(record, sort_keys=True))
            for seed, archs in pools.items():
                self._register(bench, archs)
                todo = archs
                if sizes:
                    for a in archs:
                        bench.record_proxies(a.arch_id, -1, sizes[a.arch_id], settings=record)
                    keep = set(self._feasible_sizes(sizes, archs))
                    todo = [a for a in archs if a.arch_id in keep]
                self._score(bench, todo, names, record)
                base = Pool(
                    SPACE,
                    self._table(bench, archs, names),
                    list(names),
                    self._seconds(bench, archs, names),
                )
                feasible = feasible_ids(base, self.max_params, self.max_flops)
                for strategy in strategies:
                    pool = base.subset(base.ids)  # a local search adds to its own copy
                    prepare(strategy, pool)
                    traces.append(
                        self._search(bench, strategy, pool, feasible, budget, seed, names, data)
                    )
        return traces

    def _sizes(self, pools: dict[int, list]) -> dict[str, dict[str, tuple]]:
        """Sizes (params, flops) of every sampled candidate when limits are set, computed in
        memory (or read from the store); refuses limits that no candidate meets."""
        if not self.limited:
            return {}
        known: dict[str, dict[str, tuple]] = {}
        if self.out.exists():
            with Benchmark.open(self.out, readonly=True) as bench:
                recs = bench.proxy_records(-1)
            recs = recs[(recs["run_id"] == 0) & recs["name"].isin(SIZE_PROXIES)]
            for arch_id, grp in recs.groupby("arch_id"):
                if len(grp) == len(SIZE_PROXIES):
                    known[arch_id] = {
                        r.name: (r.score, r.seconds, r.error) for r in grp.itertuples()
                    }
        archs = {a.arch_id: a for group in pools.values() for a in group}
        todo = [a for i, a in archs.items() if i not in known]
        settings = self.settings(list(SIZE_PROXIES))
        known.update(
            score_pool(
                todo,
                settings,
                executor=self.executor,
                workers=self.workers,
                ray_address=self.ray_address,
            )
        )
        for seed, group in pools.items():
            if not self._feasible_sizes(known, group):
                limits = ", ".join(
                    f"{o} {v:g}"
                    for o, v in (("--max-params", self.max_params), ("--max-flops", self.max_flops))
                    if v is not None
                )
                raise RankzcError(
                    f"{limits}: none of the {len(group)} sampled architectures (seed {seed}) "
                    "meets the limit"
                )
        return {i: known[i] for i in archs}

    def _feasible_sizes(self, sizes: dict[str, dict[str, tuple]], archs) -> list[str]:
        rows = {a.arch_id: {n: sizes[a.arch_id][n][0] for n in SIZE_PROXIES} for a in archs}
        table = pd.DataFrame.from_dict(rows, orient="index").astype(float)
        pool = Pool(SPACE, table, list(SIZE_PROXIES))
        return feasible_ids(pool, self.max_params, self.max_flops)

    @staticmethod
    def _register(bench: Benchmark, archs) -> None:
        bench.add_architectures(
            {"arch_id": a.arch_id, "space": SPACE, "encoding": str(a), "depth": a.depth}
            for a in archs
        )

    def _score(self, bench: Benchmark, archs, names: Sequence[str], record: dict) -> None:
        """Score the candidates that lack any of ``names``; store each as it arrives."""
        names = list(names)
        missing = set(bench.missing_proxies(names, epoch=-1))
        todo = [a for a in archs if a.arch_id in missing]
        if not todo:
            return
        done = [0]

        def on_result(arch_id: str, res: dict) -> None:
            bench.record_proxies(arch_id, -1, res, settings=record)
            done[0] += 1
            if self.hooks.scored is not None:
                self.hooks.scored(arch_id, done[0], len(todo))

        score_pool(
            todo,
            {**record, "proxies": names},
            executor=self.executor,
            workers=self.workers,
            ray_address=self.ray_address,
            on_result=on_result,
        )

    @staticmethod
    def _table(bench: Benchmark, archs, names: Sequence[str]) -> pd.DataFrame:
        ids = [a.arch_id for a in archs]
        feats = bench.features(-1, proxies=list(names)).reindex(ids)
        table = pd.DataFrame(
            {"encoding": [str(a) for a in archs], "depth": [float(a.depth) for a in archs]},
            index=pd.Index(ids, name="arch_id"),
        )
        return table.join(feats)

    @staticmethod
    def _seconds(bench: Benchmark, archs, names: Sequence[str]) -> pd.DataFrame:
        recs = bench.proxy_records(-1)
        recs = recs[(recs["run_id"] == 0) & recs["name"].isin(list(names))]
        wide = recs.pivot_table(index="arch_id", columns="name", values="seconds")
        return wide.reindex([a.arch_id for a in archs])

    def _search(self, bench, strategy, pool, feasible, budget, seed, names, data) -> Trace:
        from rankzc.space import Architecture
        from rankzc.training import build_benchmark

        key = self.state_key(strategy, seed)
        state = self._read_state(bench, strategy, seed, names)  # checked again: one reader
        if state is None:
            state = {
                "settings": self.state_settings(strategy, names),
                "trained": [],
                "pending": [],
                "added": [],
            }
        feasible = list(feasible)
        record = self.settings(names)

        def save() -> None:
            bench.set_meta(**{key: json.dumps(state, sort_keys=True)})

        def join(archs: list) -> list[str]:
            """Register, score and add candidates to the pool; the feasible ones' ids."""
            new = [a for a in archs if a.arch_id not in pool.table.index]
            if new:
                self._register(bench, new)
                self._score(bench, new, names, record)
                pool.extend(self._table(bench, new, names), self._seconds(bench, new, names))
            ok = feasible_ids(pool.subset([a.arch_id for a in archs]), *self._limits())
            feasible.extend(a for a in ok if a not in feasible)
            return ok

        def add_candidates(archs: list) -> list[str]:
            new = [str(a) for a in archs if a.arch_id not in pool.table.index]
            if new:  # recorded first: a rerun rebuilds the same pool
                state["added"] += new
                save()
            return join(archs)

        if state["added"]:  # a resumed local search: its candidates join the pool again
            join([Architecture.parse(t) for t in state["added"]])
        cfg_hash = config_hash(self.config.to_dict())

        def oracle(ids: Sequence[str]) -> dict[str, tuple[float, float | None]]:
            archs = [Architecture.parse(str(pool.table.at[a, "encoding"])) for a in ids]
            build_benchmark(
                self.out,
                archs,
                self.config,
                self.seed,
                device=self.device,
                executor=self.executor,
                workers=self.workers,
                ray_address=self.ray_address,
                progress=False,
                data=data,
                model_fn=self.model_fn,
                lock=self._held,
            )
            runs = bench.runs()
            runs = runs[(runs["config_hash"] == cfg_hash) & (runs["seed"] == int(self.seed))]
            runs = runs.set_index("arch_id")
            out = {}
            for a in ids:
                ok = a in runs.index and runs.at[a, "status"] == "done"
                label = float(runs.at[a, "val_acc"]) if ok else math.nan
                secs = runs.at[a, "train_seconds"] if a in runs.index else None
                out[a] = (label, None if secs is None or pd.isna(secs) else float(secs))
            return out

        def on_plan(batch: list[str]) -> None:
            state["pending"] = list(batch)
            save()
            if self.hooks.planned is not None:
                self.hooks.planned(strategy.name, seed, batch)

        def on_step(step: Step) -> None:
            state["trained"].append([step.arch_id, _num(step.label), step.seconds])
            state["pending"] = [a for a in state["pending"] if a != step.arch_id]
            save()
            if self.hooks.step is not None:
                self.hooks.step(strategy.name, seed, step)

        history = [Step(a, math.nan if v is None else float(v), s) for a, v, s in state["trained"]]
        trace = run_search(
            strategy,
            pool,
            oracle,
            budget,
            seed=seed,
            feasible=feasible,
            history=history,
            pending=state["pending"],
            depths=self.depths,
            add_candidates=add_candidates,
            on_plan=on_plan,
            on_step=on_step,
        )
        trace.pool_size, trace.feasible = len(pool), len(feasible)
        trace.train_seconds = sum(s.seconds or 0.0 for s in trace.steps)
        trace.proxy_seconds = pool.cost(names)
        return trace

    def _limits(self) -> tuple[float | None, float | None]:
        return self.max_params, self.max_flops


def _num(x: float) -> float | None:
    return x if isinstance(x, float) and math.isfinite(x) else None
