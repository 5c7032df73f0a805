"""``rankzc evaluate``, ``rankzc warmup`` and ``rankzc export``."""

from __future__ import annotations

from pathlib import Path

import click

from rankzc.analysis import plot_warmup, single_proxy_report, warmup_report
from rankzc.commands._common import (
    atomic_write_frame,
    benchmark_option,
    check_output_path,
    echo_csv,
    echo_json,
    ensure_directory,
    epoch_option,
    features_option,
    fmt_num,
    format_option,
    open_benchmark,
    print_table,
    quiet_option,
    table_layout,
    threads_option,
)
from rankzc.errors import RankzcError
from rankzc.threads import apply as apply_threads

MODEL_NAMES = ("single", "vote", "wam", "ranknet", "lambdarank")


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


def _single_rows(report: dict) -> list[tuple[str, dict]]:
    return sorted(report["proxies"].items(), key=lambda kv: -abs(kv[1]["spearman"] or 0))


def _print_single(report: dict) -> None:
    rows = []
    for name, r in _single_rows(report):
        lo, hi = r["ci95"]
        rows.append(
            [
                name,
                fmt_num(r["spearman"]),
                f"[{fmt_num(lo, 3)}, {fmt_num(hi, 3)}]",
                fmt_num(r["kendall"]),
                str(r["n"]),
            ]
        )
    print_table(
        ["proxy", "spearman", "95% CI", "kendall", "n"],
        rows,
        title=f"Single proxies at initialisation (n = {report['n']})",
    )
    print_table(
        ["baseline", "spearman", "kendall"],
        [
            [name, fmt_num(r["spearman"]), fmt_num(r["kendall"])]
            for name, r in report["baselines"].items()
        ],
        title="Trivial baselines",
    )
    within = report.get("within_depth")
    if within:
        depths = list(within)
        headers = ["proxy"] + [f"L={d} (n={next(iter(within[d].values()))['n']})" for d in depths]
        print_table(
            headers,
            [
                [name, *(fmt_num(within[d][name]["spearman"], 3) for d in depths)]
                for name, _ in _single_rows(report)
            ],
            title="Spearman within each depth",
        )


_SHORT = {
    "pairwise_accuracy": "pairwise acc",
    "top10pct_precision": "top-10% prec",
    "regret_top1": "regret@1",
    "within_depth_spearman": "within-depth",
}


def _print_models(result: dict) -> None:
    from rankzc.ranking.metrics import METRICS

    rows = []
    for name, r in result["models"].items():
        test = r.get("paired_test_vs_single") or {}
        rows.append(
            [
                name,
                *(
                    f"{fmt_num(r.get(f'{m}_mean'), 3)} ± {fmt_num(r.get(f'{m}_std'), 3)}"
                    for m in METRICS
                ),
                fmt_num(test.get("p_value"), 3),
            ]
        )
    print_table(
        ["model", *(_SHORT.get(m, m) for m in METRICS), "p vs single"],
        rows,
        title=f"Rankers, mean ± std over folds ({result.get('cv', {}).get('description', '')})",
    )


def _evaluate_csv(result: dict) -> list[dict]:
    """One row per proxy, baseline, within-depth correlation and model (``kind`` column)."""
    rows: list[dict] = []
    for name, r in _single_rows(result):
        lo, hi = r["ci95"]
        rows.append(
            {"kind": "proxy", "name": name, "spearman": r["spearman"], "ci95_low": lo,
             "ci95_high": hi, "kendall": r["kendall"], "n": r["n"]}
        )  # fmt: skip
    for name, r in result["baselines"].items():
        rows.append({"kind": "baseline", "name": name, **r})
    for depth, per in (result.get("within_depth") or {}).items():
        for name, r in per.items():
            rows.append({"kind": "within_depth", "name": name, "depth": depth, **r})
    for name, r in (result.get("models") or {}).items():
        test = r.get("paired_test_vs_single") or {}
        flat = {k: v for k, v in r.items() if not isinstance(v, (dict, list))}
        rows.append({"kind": "model", "name": name, **flat, "p_vs_single": test.get("p_value")})
    for name, r in (result.get("cv_baselines") or {}).items():
        rows.append({"kind": "cv_baseline", "name": name, **r})
    return rows


@click.command("evaluate")
@benchmark_option()
@click.option(
    "--models",
    default="none",
    show_default=True,
    help=f"Comma-separated rankers to cross-validate: {', '.join(MODEL_NAMES)}, all or none.",
)
@features_option()
@click.option(
    "--folds",
    type=click.IntRange(2),
    default=5,
    show_default=True,
    help="Cross-validation folds (with --models).",
)
@click.option(
    "--repeats",
    type=click.IntRange(1),
    default=3,
    show_default=True,
    help="Times the k-fold split is repeated with new shuffles (with --models).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the folds, the bootstrap and the rankers.",
)
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
@threads_option()
@quiet_option()
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
    threads,
    quiet,
    fmt,
) -> None:
    """Rank correlation of every proxy (and of the rankers in --models) with accuracy."""
    model_names = _parse_models(models)
    if report_dir is not None:
        if not model_names:
            raise RankzcError("--report needs --models (the report compares rankers)")
        ensure_directory(report_dir, option="--report")
    apply_threads(threads)
    with open_benchmark(benchmark) as bench:
        if bench.labels().empty:
            raise RankzcError(f"{bench.path}: no labelled architectures to evaluate")
        result = single_proxy_report(
            bench, epoch=epoch, n_boot=bootstrap, seed=seed, group_by_depth=group_by == "depth"
        )
        if model_names:
            from rankzc.progress import Progress
            from rankzc.ranking.evaluation import evaluate_models

            with Progress(quiet=quiet) as bar:
                task = bar.add("evaluate: ranker fits", total=None)
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
                        progress=lambda done, total: bar.update(task, completed=done, total=total),
                    )
                )
    if fmt == "json":
        echo_json(result)
        return
    if fmt == "csv":
        echo_csv(_evaluate_csv(result))
        return
    _print_single(result)
    if model_names:
        _print_models(result)


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
    if plot is not None:
        check_output_path(plot, option="--plot", suffixes=(".png", ".pdf", ".svg"))
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
        plot_warmup(report, str(plot))
    if fmt == "json":
        echo_json(report)
        return
    if fmt == "csv":
        echo_csv(
            [
                {"epoch": e, "n": v["n"], "proxy": p, **r}
                for e, v in report["epochs"].items()
                for p, r in v["proxies"].items()
            ]
        )
        return
    epochs = list(report["epochs"])
    names = sorted({p for v in report["epochs"].values() for p in v["proxies"]})
    print_table(
        ["epoch", "n", *names],
        [
            [e, v["n"], *(fmt_num(v["proxies"].get(n, {}).get("spearman"), 3) for n in names)]
            for e, v in ((e, report["epochs"][e]) for e in epochs)
        ],
        title="Spearman with final accuracy, by scoring epoch (-1 = initialisation)",
        keys=2,
        right={"epoch", "n", *names},
    )
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
    """One row per architecture: arch_id, encoding, depth, val_acc, then one column per proxy.

    The same layout as ``rankzc features`` tables, so an exported table can be scored
    by any ranker (``rankzc score --features-csv``).
    """
    check_output_path(out, suffixes=(".csv", ".parquet"))
    with open_benchmark(benchmark) as bench:
        df = bench.table(epoch)
        df.insert(0, "encoding", bench.architectures()["encoding"].reindex(df.index))
        meta = bench.meta
    df = table_layout(df)
    atomic_write_frame(df, out, benchmark=meta)
    click.echo(f"wrote {len(df)} architectures x {df.shape[1]} columns to {out}")


COMMANDS = [evaluate, warmup, export]
