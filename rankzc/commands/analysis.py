"""``rankzc evaluate``, ``rankzc warmup`` and ``rankzc export``."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from rankzc.analysis import plot_warmup, single_proxy_report, warmup_report
from rankzc.commands._common import (
    atomic_write_frame,
    benchmark_option,
    echo_json,
    epoch_option,
    features_option,
    fmt_num,
    format_option,
    open_benchmark,
)
from rankzc.errors import RankzcError
from rankzc.ranking.registry import RANKERS

MODEL_NAMES = tuple(RANKERS)


def _parse_models(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    if names in ([], ["none"]):
        return []
    if names == ["all"]:
        return list(MODEL_NAMES)
    unknown = [m for m in names if m not in MODEL_NAMES]
    if unknown:
        raise RankzcError(
            f"--models: unknown model {unknown[0]!r} (choose from {', '.join(MODEL_NAMES)}, all, none)"
        )
    return names


def _print_single(report: dict, console: Console) -> None:
    table = Table(title=f"Single proxies at initialisation (n = {report['n']})")
    for col in ("proxy", "spearman", "95% CI", "kendall", "n"):
        table.add_column(col, justify="left" if col == "proxy" else "right")
    rows = sorted(report["proxies"].items(), key=lambda kv: -abs(kv[1]["spearman"] or 0))
    for name, r in rows:
        lo, hi = r["ci95"]
        table.add_row(
            name,
            fmt_num(r["spearman"]),
            f"[{fmt_num(lo, 3)}, {fmt_num(hi, 3)}]",
            fmt_num(r["kendall"]),
            str(r["n"]),
        )
    console.print(table)
    base = Table(title="Trivial baselines")
    for col in ("baseline", "spearman", "kendall"):
        base.add_column(col, justify="left" if col == "baseline" else "right")
    for name, r in report["baselines"].items():
        base.add_row(name, fmt_num(r["spearman"]), fmt_num(r["kendall"]))
    console.print(base)
    within = report.get("within_depth")
    if within:
        depths = list(within)
        t = Table(title="Spearman within each depth")
        t.add_column("proxy")
        for d in depths:
            t.add_column(f"L={d} (n={next(iter(within[d].values()))['n']})", justify="right")
        for name, _ in rows:
            t.add_row(name, *(fmt_num(within[d][name]["spearman"], 3) for d in depths))
        console.print(t)


def _print_models(result: dict, console: Console) -> None:
    from rankzc.ranking.metrics import METRICS

    short = {
        "pairwise_accuracy": "pairwise acc",
        "top10pct_precision": "top-10% prec",
        "regret_top1": "regret@1",
        "within_depth_spearman": "within-depth",
    }
    t = Table(
        title=f"Rankers, mean ± std over folds ({result.get('cv', {}).get('description', '')})"
    )
    t.add_column("model", no_wrap=True)
    for m in METRICS:
        t.add_column(short.get(m, m), justify="right", no_wrap=True)
    t.add_column("p vs single", justify="right", no_wrap=True)
    for name, r in result["models"].items():
        test = r.get("paired_test_vs_single") or {}
        t.add_row(
            name,
            *(
                f"{fmt_num(r.get(f'{m}_mean'), 3)} ± {fmt_num(r.get(f'{m}_std'), 3)}"
                for m in METRICS
            ),
            fmt_num(test.get("p_value"), 3),
        )
    console.print(t)


@click.command("evaluate")
@benchmark_option()
@click.option(
    "--models",
    default="none",
    show_default=True,
    help=f"Comma-separated rankers to cross-validate: {', '.join(MODEL_NAMES)}, all or none.",
)
@features_option()
@click.option("--folds", type=click.IntRange(2), default=5, show_default=True)
@click.option("--repeats", type=click.IntRange(1), default=3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--train-size",
    type=click.IntRange(2),
    multiple=True,
    help="Train on N architectures per fold (repeat for a learning curve).",
)
@click.option(
    "--cv",
    type=click.Choice(["kfold", "none"]),
    default="kfold",
    show_default=True,
    help="'none' fits and scores on all data (optimistic).",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write a Markdown report with plots to this directory.",
)
@epoch_option()
@click.option(
    "--bootstrap",
    type=click.IntRange(0),
    default=1000,
    show_default=True,
    help="Bootstrap resamples for the 95% intervals.",
)
@click.option(
    "--group-by",
    type=click.Choice(["depth", "none"]),
    default="depth",
    show_default=True,
    help="Also report correlations within each depth (where the space has depth).",
)
@format_option()
def evaluate(
    benchmark,
    models,
    features,
    folds,
    repeats,
    seed,
    train_size,
    cv,
    report_dir,
    epoch,
    bootstrap,
    group_by,
    fmt,
) -> None:
    """Rank correlation of every proxy (and of the rankers in --models) with accuracy."""
    model_names = _parse_models(models)
    with open_benchmark(benchmark) as bench:
        if bench.labels().empty:
            raise RankzcError(f"{bench.path}: no labelled architectures to evaluate")
        result = single_proxy_report(
            bench, epoch=epoch, n_boot=bootstrap, seed=seed, group_by_depth=group_by == "depth"
        )
        if model_names:
            from rankzc.ranking.evaluation import evaluate_models

            result.update(
                evaluate_models(
                    bench,
                    model_names,
                    features=features,
                    folds=folds,
                    repeats=repeats,
                    seed=seed,
                    train_size=list(train_size) or None,
                    cv=cv,
                    report_dir=report_dir,
                )
            )
        elif report_dir is not None:
            raise RankzcError("--report needs --models (the report compares rankers)")
    if fmt == "json":
        echo_json(result)
        return
    console = Console(width=max(Console().width, 132))
    _print_single(result, console)
    if model_names:
        _print_models(result, console)


@click.command("warmup")
@benchmark_option()
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Save a line plot (PNG) of Spearman against scoring epoch.",
)
@click.option("--proxies", default=None, help="Comma-separated proxies (default: all).")
@format_option()
def warmup(benchmark, plot, proxies, fmt) -> None:
    """Spearman of each proxy per scoring epoch against the final label (warm-up curves)."""
    names = [p.strip() for p in proxies.split(",")] if proxies else None
    with open_benchmark(benchmark) as bench:
        known = set(bench.proxy_names())
        for name in names or ():
            if name not in known:
                raise RankzcError(f"--proxies: {bench.path} has no proxy {name!r}")
        report = warmup_report(bench, names)
    if not report["epochs"]:
        raise RankzcError("no proxies with labels to plot")
    if plot is not None:
        if plot.suffix.lower() not in (".png", ".pdf", ".svg"):
            raise RankzcError(f"{plot}: --plot must end in .png, .pdf or .svg")
        if not plot.parent.exists():
            raise RankzcError(f"{plot}: directory {plot.parent} does not exist")
        plot_warmup(report, str(plot))
    if fmt == "json":
        echo_json(report)
        return
    epochs = list(report["epochs"])
    names = sorted({p for v in report["epochs"].values() for p in v["proxies"]})
    t = Table(title="Spearman with final accuracy, by scoring epoch (-1 = initialisation)")
    t.add_column("epoch", justify="right")
    t.add_column("n", justify="right")
    for n in names:
        t.add_column(n, justify="right")
    for e in epochs:
        v = report["epochs"][e]
        t.add_row(
            e, str(v["n"]), *(fmt_num(v["proxies"].get(n, {}).get("spearman"), 3) for n in names)
        )
    Console().print(t)
    if plot is not None:
        click.echo(f"plot written to {plot}")


@click.command("export")
@benchmark_option()
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file, .csv or .parquet.",
)
@epoch_option()
def export(benchmark, out, epoch) -> None:
    """One row per architecture: arch_id, depth, val_acc, then one column per proxy."""
    with open_benchmark(benchmark) as bench:
        df = bench.table(epoch)
        meta = bench.meta
    atomic_write_frame(df, out, benchmark=meta)
    click.echo(f"wrote {len(df)} architectures x {df.shape[1]} columns to {out}")


COMMANDS = [evaluate, warmup, export]
