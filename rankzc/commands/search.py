"""``rankzc search``: spend a training budget on the best architecture, live or simulated."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from rankzc.commands._common import (
    aliased,
    check_output_path,
    deprecated_alias,
    echo_csv,
    echo_json,
    fmt_duration,
    fmt_num,
    format_option,
    print_table,
    quiet_option,
    start_line,
    threads_option,
)
from rankzc.errors import RankzcError

#: Numbers of trained architectures shown in the table (plus the last).
CHECKPOINTS = (1, 5, 10, 20, 50, 100, 200, 500)


@click.command("search")
@click.option(
    "--strategy",
    "-s",
    "strategies",
    multiple=True,
    required=True,
    help="random | proxy:<name> | vote[:p1,p2,..] | wam[:p1,..] | ranker:<file.rzc> | "
    "online[:<model>] | evolve[:<model>]; repeat to compare.",
)
@click.option(
    "--benchmark",
    "-b",
    "simulate",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Simulate on the labelled architectures of this store (training reveals labels; "
    "default without --out: the benchmark shipped with rankzc).",
)
@deprecated_alias(
    "--simulate", "--benchmark (-b)", dest="simulate", type=click.Path(path_type=Path)
)
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Live: store the candidates' proxies and the trained architectures here (resumable).",
)
@click.option("--train-budget", type=int, default=None, help="Architectures to train.")
@click.option(
    "--gpu-hours", type=float, default=None, help="Budget in recorded training hours instead."
)
@click.option(
    "--sample",
    "pool_size",
    type=int,
    default=None,
    help="The pool: N candidate architectures sampled (live: from the space and scored "
    "with proxies, default 100; simulated: drawn per seed from the store, default all).",
)
@deprecated_alias("--pool", "--sample N", dest="pool_size", type=int)
@click.option("--max-params", type=float, default=None, help="Never train above this size.")
@click.option("--max-flops", type=float, default=None, help="Never train above these FLOPs.")
@click.option(
    "--repeats",
    "seeds",
    type=int,
    default=1,
    show_default=True,
    help="Repeat with K seeds: --seed, --seed + 1, ...",
)
@deprecated_alias(
    "--seeds", "--repeats (--seeds lists seeds in bench build)", dest="seeds", type=int
)
@click.option("--seed", type=int, default=0, show_default=True, help="First seed.")
@click.option(
    "--batch",
    type=int,
    default=1,
    show_default=True,
    help="online/evolve: architectures trained between two refits.",
)
@click.option(
    "--init",
    type=int,
    default=5,
    show_default=True,
    help="online/evolve: labels taken before the first fit (online: in the free size order, "
    "deepest or largest first; evolve: in the label-free order).",
)
@click.option("--space", default="gcn-nas", show_default=True, help="Live: search space.")
@click.option("--depths", default="4,6,8,10", show_default=True, help="Live: depths sampled.")
@click.option(
    "--preset",
    type=click.Choice(["tiny", "cpu", "ntu60"]),
    default="cpu",
    show_default=True,
    help="Live: model size and training recipe.",
)
@click.option("--data", "data_spec", default="synthetic", show_default=True, help="Live: data.")
@click.option("--epochs", type=int, default=None, help="Live: training epochs.")
@click.option(
    "--proxies",
    default="all",
    show_default=True,
    help="Live: proxies scored for the pool (what the strategies read is always added).",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Live: where candidates are scored and trained (auto: CUDA when available).",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Live: train in this process (local) or as Ray tasks (ray).",
)
@click.option("--workers", type=int, default=1, show_default=True, help="Parallel workers.")
@click.option("--ray-address", default=None, help="Address of an existing Ray cluster.")
@click.option(
    "--allow-leak",
    is_flag=True,
    default=False,
    help="Simulated: run a ranker: strategy even when it was fitted on the simulated labels.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write best-so-far curves (mean and band over seeds) to this PNG.",
)
@threads_option()
@quiet_option()
@format_option()
def search(
    strategies,
    simulate,
    out,
    train_budget,
    gpu_hours,
    pool_size,
    max_params,
    max_flops,
    seeds,
    seed,
    batch,
    init,
    space,
    depths,
    preset,
    data_spec,
    epochs,
    proxies,
    device,
    executor,
    workers,
    ray_address,
    allow_leak,
    plot,
    threads,
    quiet,
    fmt,
) -> None:
    """Search architectures: train within a budget, end with the best one found.

    Simulated (--benchmark B.db, or no --out: the shipped benchmark): the pool is the
    store's labelled architectures; training one reveals its label and charges its
    recorded seconds; regret is the pool's best (within the limits) minus the best found,
    in accuracy points. Live (--out S.db): the pool is --sample N architectures of the
    GCN-NAS space, scored with proxies, the chosen ones trained by the label pipeline;
    rerun the same command after an interruption to continue (nothing is trained twice).
    """
    from rankzc.search.loop import Budget
    from rankzc.search.strategies import parse_strategy

    simulate = aliased("simulate", simulate)
    pool_size = aliased("pool_size", pool_size)
    if simulate is not None and out is not None:
        raise RankzcError(
            "give one of --benchmark B.db (simulate on its labels) and --out S.db (live)"
        )
    if simulate is None and out is None:
        from rankzc.store import default_benchmark_path

        simulate = default_benchmark_path()
    if pool_size is not None and pool_size < 1:
        raise RankzcError(f"--sample: must be >= 1, got {pool_size}")
    budget = Budget(train_budget, None if gpu_hours is None else float(gpu_hours) * 3600.0)
    seeds = aliased("seeds", seeds)
    if seeds < 1:
        raise RankzcError(f"--repeats: must be >= 1, got {seeds}")
    if batch < 1:
        raise RankzcError(f"--batch: must be >= 1, got {batch}")
    for option, value in (("--max-params", max_params), ("--max-flops", max_flops)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise RankzcError(f"{option}: must be a positive number, got {value}")
    if plot is not None:
        check_output_path(plot, option="--plot", suffixes=(".png",))
    if out is not None:
        check_output_path(out)
    parsed = [parse_strategy(s, batch=batch, init=init) for s in strategies]
    names = [s.name for s in parsed]
    if len(set(names)) != len(names):
        raise RankzcError("--strategy: the same strategy is given twice")
    seed_list = [seed + k for k in range(seeds)]
    from rankzc.threads import apply as apply_threads

    apply_threads(threads, workers if (simulate is None and workers > 1) else 1)
    if simulate is not None:
        start_line(
            quiet,
            f"simulating {len(parsed)} strategies x {len(seed_list)} seeds on {simulate}",
        )
        result = _simulate(
            simulate, parsed, budget, seed_list, pool_size, max_params, max_flops, allow_leak
        )
    else:
        live_opts = dict(
            space=space,
            depths=depths,
            preset=preset,
            data_spec=data_spec,
            epochs=epochs,
            proxies=proxies,
            device=device,
            executor=executor,
            workers=workers,
            ray_address=ray_address,
        )
        result = _live(
            out, parsed, budget, seed_list, pool_size, max_params, max_flops, quiet, live_opts
        )
    if plot is not None:
        _plot(result, plot)
        result["plot"] = str(plot)
    if fmt == "json":
        echo_json(result)
    elif fmt == "csv":
        echo_csv(_csv_rows(result))
    else:
        _print(result)
    if plot is not None:
        click.echo(f"plot written to {plot}", err=fmt != "table")
    if out is not None:
        click.echo(f"store written to {out}", err=fmt != "table")
        if result.get("chance"):
            click.echo(f"{out}: {result['chance']}", err=fmt != "table")


# ------------------------------------------------------------------ modes
def _simulate(
    path, strategies, budget, seeds, pool_size, max_params, max_flops, allow_leak=False
) -> dict:
    from rankzc.search.pool import pool_from_store
    from rankzc.search.simulate import random_expectation, simulate
    from rankzc.search.strategies import free_references, parse_strategy
    from rankzc.store import Benchmark, store_file

    if not store_file(path).exists():  # STORE#HASH too
        raise RankzcError(f"--benchmark {path}: no such benchmark file")
    with Benchmark.open(path, readonly=True) as bench:
        pool = pool_from_store(bench)
    refs = free_references(pool.without_labels())
    asked = {s.name for s in strategies}
    extra = [parse_strategy(r) for r in refs if r not in asked]
    traces = simulate(
        pool,
        [*strategies, *extra],
        budget,
        seeds,
        pool_size=pool_size,
        max_params=max_params,
        max_flops=max_flops,
        allow_leak=allow_leak,
    )
    result = _result("simulated", str(path), traces, pool, budget, max_params, max_flops)
    _add_references(result, refs, {s.name for s in extra})
    n_max = max((len(t.steps) for t in traces), default=0)
    result["random_expected"] = random_expectation(
        pool, seeds, n_max, pool_size=pool_size, max_params=max_params, max_flops=max_flops
    )
    return result


#: numbers trained at which every strategy is compared with the best free order
VS_FREE = (10, 20, 50)


def _add_references(result: dict, refs: list[str], extra: set[str]) -> None:
    """Move the free orders nobody asked for to ``references`` and give every row its
    regret difference from the best free order (lowest mean regret) at 10/20/50 trained."""
    entries = result["strategies"]
    by_name = {s["strategy"]: s for s in entries}

    def at(s, n):
        r = s["curve"]["regret_mean"]
        return r[n - 1] if n <= len(r) else None

    best = {}
    for n in VS_FREE:
        vals = [
            (at(by_name[r], n), r) for r in refs if r in by_name and at(by_name[r], n) is not None
        ]
        if vals:
            best[n] = min(vals)
    result["free_best"] = {str(n): {"strategy": r, "regret": v} for n, (v, r) in best.items()}
    for s in entries:
        s["vs_free"] = {str(n): (None if at(s, n) is None else at(s, n) - best[n][0]) for n in best}
        s["reference"] = s["strategy"] in refs
    result["strategies"] = [s for s in entries if s["strategy"] not in extra]
    result["references"] = [s for s in entries if s["strategy"] in extra]


def _live(out, strategies, budget, seeds, pool_size, max_params, max_flops, quiet, o) -> dict:
    from rankzc.search.live import LiveHooks, LiveSearch
    from rankzc.space import SPACE, parse_depths
    from rankzc.training import TrainConfig

    if o["space"] != SPACE:
        raise RankzcError(f"--space: live search samples {SPACE!r} only, got {o['space']!r}")
    try:
        depth_list = parse_depths(o["depths"])
    except RankzcError as err:
        raise RankzcError(f"--depths: {err}") from None
    if o["epochs"] is not None and o["epochs"] < 1:
        raise RankzcError(f"--epochs: must be >= 1, got {o['epochs']}")
    if o["workers"] < 1:
        raise RankzcError(f"--workers: must be >= 1, got {o['workers']}")
    from rankzc.training.config import resolve_proxies

    names = resolve_proxies(o["proxies"])
    config = TrainConfig.for_preset(
        o["preset"], data=o["data_spec"], epochs=o["epochs"], proxies="none"
    )
    live = LiveSearch(
        Path(out),
        config,
        pool_size=100 if pool_size is None else int(pool_size),
        seed=seeds[0],
        depths=depth_list,
        proxies=tuple(names),
        device=o["device"],
        executor=o["executor"],
        workers=int(o["workers"]),
        ray_address=o["ray_address"],
        max_params=max_params,
        max_flops=max_flops,
    )
    with _LiveProgress(quiet, budget) as bar:
        live.hooks = LiveHooks(scored=bar.scored, planned=bar.planned, step=bar.step)
        traces = live.run(strategies, budget, seeds)
    from rankzc.analysis import chance_line, store_chance
    from rankzc.store import Benchmark, config_hash

    with Benchmark.open(out, readonly=True) as bench:
        from rankzc.search.pool import Pool

        table = bench.table(-1)
        table["encoding"] = bench.encodings()
        pool = Pool(SPACE, table, [c for c in table.columns if c in names])
        at_chance = chance_line(store_chance(bench, config=config_hash(live.config.to_dict())))
    return {
        **_result("live", str(out), traces, pool, budget, max_params, max_flops),
        "chance": at_chance,
    }


class _LiveProgress:
    """Progress of a live search through :mod:`rankzc.progress` (stderr only)."""

    def __init__(self, quiet: bool, budget):
        from rankzc.progress import Progress

        self.budget = budget
        self.bar = Progress(quiet=quiet)
        self._score = None
        self._tasks: dict[tuple[str, int], int] = {}

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)

    def scored(self, arch_id: str, done: int, total: int) -> None:
        if self._score is None:
            self._score = self.bar.add("scoring candidates", total=total)
        self.bar.update(self._score, completed=done, total=total)

    def planned(self, name: str, seed: int, batch: list[str]) -> None:
        self._task(name, seed)

    def _task(self, name: str, seed: int) -> int:
        key = (name, seed)
        if key not in self._tasks:
            self._tasks[key] = self.bar.add(f"{name} seed {seed}", total=self.budget.archs)
        return self._tasks[key]

    def step(self, name: str, seed: int, step) -> None:
        task = self._task(name, seed)
        label = "failed" if not math.isfinite(step.label) else f"{100 * step.label:.2f}%"
        self.bar.advance(task)
        self.bar.update(task, description=f"{name} seed {seed} (last {label})")


# ------------------------------------------------------------------ output
def _result(mode, source, traces, pool, budget, max_params, max_flops) -> dict:
    from rankzc.search.simulate import curves, trace_dict

    simulated = mode == "simulated"
    curve = curves(traces)
    out: dict[str, Any] = {
        "mode": mode,
        "source": source,
        "budget": budget.to_dict(),
        "limits": {"max_params": max_params, "max_flops": max_flops},
        "units": "accuracy in percent; regret in accuracy points (pool best within the "
        "limits minus best found); seconds as recorded",
        "strategies": [],
    }
    for name, frame in curve.items():
        ts = [t for t in traces if t.strategy == name]
        best = max(
            (t.best() for t in ts if t.best() is not None), key=lambda s: s.label, default=None
        )
        entry: dict[str, Any] = {
            "strategy": name,
            "seeds": [t.seed for t in ts],
            "trained_mean": sum(len(t.steps) for t in ts) / len(ts),
            "pool_size": ts[0].pool_size,
            "feasible": ts[0].feasible,
            "curve": {
                "trained": frame.index.tolist(),
                "best_mean": frame["best_mean"].tolist(),
                "best_std": frame["best_std"].tolist(),
            },
            "cost": {
                "proxy_seconds_mean": _mean([t.proxy_seconds for t in ts]),
                "train_seconds_mean": _mean([t.train_seconds for t in ts]),
                "search_seconds_mean": _mean([t.search_seconds for t in ts]),
            },
            "runs": [trace_dict(t) for t in ts],
        }
        if simulated:
            entry["curve"]["regret_mean"] = frame["regret_mean"].tolist()
            entry["curve"]["regret_std"] = frame["regret_std"].tolist()
            entry["pool_best"] = 100 * ts[0].pool_best if len({t.seed for t in ts}) == 1 else None
        if best is not None:
            entry["best"] = _describe(best, pool)
        out["strategies"].append(entry)
    return out


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else None


def _describe(step, pool) -> dict:
    row = pool.table.loc[step.arch_id] if step.arch_id in pool.table.index else {}
    get = row.get if hasattr(row, "get") else (lambda k, d=None: d)
    return {
        "arch_id": step.arch_id,
        "arch": str(get("encoding", "")),
        "val_acc": 100 * step.label,
        "params": _num(get("params", None)),
        "flops": _num(get("flops", None)),
    }


def _num(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _print(result: dict) -> None:
    simulated = result["mode"] == "simulated"
    key = "regret" if simulated else "best"
    n_max = max(len(s["curve"]["trained"]) for s in result["strategies"])
    cols = [c for c in CHECKPOINTS if c < n_max] + [n_max]
    what = "mean regret (points)" if simulated else "mean best accuracy (%)"
    rows = []
    free = result.get("free_best") or {}
    for s in [*result["strategies"], *result.get("references", [])]:
        cells = []
        for c in cols:
            i = min(c, len(s["curve"]["trained"])) - 1
            m, sd = s["curve"][f"{key}_mean"][i], s["curve"][f"{key}_std"][i]
            cells.append(f"{fmt_num(m, 3)} ± {fmt_num(sd, 3)}")
        name = s["strategy"] + (" (free)" if s.get("reference") else "")
        if free:
            vs = s.get("vs_free") or {}
            cells.append(" / ".join(_signed(vs.get(n)) for n in free))
        rows.append([name, *cells])
    head = ["strategy", *(f"N={c}" for c in cols)]
    if free:
        head.append("vs best free " + "/".join(free))
    print_table(
        head,
        rows,
        title=f"{result['mode']} search on {result['source']}: {what} ± std after N trained"
        + ("; vs best free: mean regret minus the best free order's" if free else ""),
    )
    rows = []
    for s in result["strategies"]:
        best = s.get("best") or {}
        rows.append(
            [
                s["strategy"],
                fmt_num(best.get("val_acc"), 2),
                _fmt_big(best.get("params")),
                _fmt_big(best.get("flops")),
                fmt_duration(s["cost"]["proxy_seconds_mean"]),
                fmt_duration(s["cost"]["train_seconds_mean"]),
                best.get("arch", "-"),
            ]
        )
    print_table(
        ["strategy", "acc %", "params", "FLOPs", "proxy time", "train time", "architecture"],
        rows,
        title="best architecture found (over all seeds) and cost (mean per seed)",
        right={"acc %", "params", "FLOPs", "proxy time", "train time"},
    )


def _csv_rows(result: dict) -> list[dict]:
    """One row per strategy: the curve's last point, the best architecture, the cost."""
    key = "regret" if result["mode"] == "simulated" else "best"
    rows = []
    for s in result["strategies"]:
        best = s.get("best") or {}
        rows.append(
            {
                "strategy": s["strategy"],
                "trained": s["curve"]["trained"][-1],
                f"{key}_mean": s["curve"][f"{key}_mean"][-1],
                f"{key}_std": s["curve"][f"{key}_std"][-1],
                **{f"best_{k}": v for k, v in best.items() if not isinstance(v, (dict, list))},
                **{f"cost_{k}": v for k, v in s["cost"].items()},
            }
        )
    return rows


def _signed(x) -> str:
    return "-" if x is None else f"{x:+.3f}"


def _fmt_big(x) -> str:
    return "-" if x is None else f"{x:.4g}"


def search_figure(result: dict):
    """The figure of ``--plot``: best accuracy found (and, simulated, regret) against
    architectures trained, mean and band over seeds per strategy; both panels share one
    linear x axis with whole-number ticks. Simulated, two reference lines: random search
    in expectation (exact, over the same pools) and the pool's best (regret 0)."""
    import numpy as np

    from rankzc.plotting import integer_ticks, line_styles, pyplot

    plt = pyplot()
    simulated = result["mode"] == "simulated"
    panels = [("best", "best accuracy found (%)")]
    if simulated:
        panels.append(("regret", "regret (accuracy points)"))
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5.5 * len(panels) + 2.5, 4.2), squeeze=False, sharex=True
    )
    entries = [*result["strategies"], *result.get("references", [])]
    random = result.get("random_expected") or {}
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        for s, style in zip(entries, line_styles(len(entries)), strict=True):
            x = np.asarray(s["curve"]["trained"])
            m = np.asarray(s["curve"][f"{key}_mean"], dtype=float)
            sd = np.asarray(s["curve"][f"{key}_std"], dtype=float)
            name = s["strategy"] + (" (free)" if s.get("reference") else "")
            style = {**style, "markevery": max(1, len(x) // 10), "markersize": 4}
            ax.plot(x, m, label=name, **style)
            ax.fill_between(x, m - sd, m + sd, color=style["color"], alpha=0.12)
        if random.get("trained"):
            ax.plot(
                random["trained"],
                random[f"{key}_mean"],
                color="black",
                linestyle=(0, (4, 2)),
                linewidth=1.2,
                label="random search (expected)",
            )
        if simulated and random.get("pool_best") is not None:
            level = random["pool_best"] if key == "best" else 0.0
            ax.axhline(level, color="tab:red", linestyle=":", linewidth=1.2, label="pool best")
            lo, hi = ax.get_ylim()  # keep the reference line off the frame
            pad = 0.04 * (hi - lo)
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlabel("architectures trained")
        ax.set_ylabel(label)
        ax.set_title(label.split(" (")[0].capitalize() + " after N trained")
        ax.grid(alpha=0.3)
        integer_ticks(ax.xaxis)
        ax.set_xlim(left=1)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if simulated:  # "pool best" is on both panels; once in the legend
        h2, l2 = axes[0][-1].get_legend_handles_labels()
        for h, lab in zip(h2, l2, strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    from rankzc.plotting import legend_outside

    legend_outside(axes[0][-1], handles, labels, fontsize=8)
    fig.suptitle(
        f"{result['mode']} search on {Path(result['source']).name} (mean ± std over seeds)"
    )
    fig.tight_layout()
    return fig


def _plot(result: dict, path: Path) -> None:
    from rankzc.atomicfile import save_figure
    from rankzc.plotting import pyplot

    fig = search_figure(result)
    try:
        save_figure(fig, path, dpi=120, bbox_inches="tight")  # whole or not at all
    finally:
        pyplot().close(fig)


COMMANDS = [search]
