"""``rankzc evaluate``, ``rankzc warmup`` and ``rankzc export``."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

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


def _parse_sizes(values: tuple[str, ...]) -> tuple[int, ...]:
    """``--train-size 20,50 --train-size 100`` -> (20, 50, 100); each at least 2."""
    out = []
    for text in values:
        for part in str(text).split(","):
            if not part.strip():
                continue
            try:
                n = int(part)
            except ValueError:
                raise click.BadParameter(f"{part.strip()!r} is not an integer") from None
            if n < 2:
                raise click.BadParameter(f"{n} is below 2")
            out.append(n)
    return tuple(out)


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
    when = (
        "at initialisation" if report.get("epoch", -1) == -1 else f"after epoch {report['epoch']}"
    )
    table = Table(title=f"Single proxies {when} (n = {report['n']})")
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


def _print_noise(noise: dict, console: Console) -> None:
    rep = noise.get("repeats")
    if rep:
        lo, hi = rep["seed_to_seed_ci95"]
        clo, chi = rep["ceiling_ci95"]
        rlo, rhi = rep["reliability_ci95"]
        console.print(
            f"Label noise: seed-to-seed Spearman {fmt_num(rep['seed_to_seed_spearman'], 3)} "
            f"[{fmt_num(lo, 3)}, {fmt_num(hi, 3)}] over {noise['n_repeated']} architectures "
            f"with repeated runs; reliability of the mean label "
            f"({noise['runs_per_architecture']:.2f} runs on average, Spearman-Brown) "
            f"{fmt_num(rep['reliability'], 3)} [{fmt_num(rlo, 3)}, {fmt_num(rhi, 3)}]; "
            f"ceiling for any ranker's Spearman ~ {fmt_num(rep['ceiling'], 3)} "
            f"[{fmt_num(clo, 3)}, {fmt_num(chi, 3)}]",
            highlight=False,
        )
    else:
        console.print(f"Label noise: {noise['note']}.", highlight=False)
    b = noise.get("binomial")
    if b:
        console.print(
            f"Binomial bound: a validation set of {b['validation_size']} "
            f"({noise['validation_size_source']}) gives label noise sd >= "
            f"{b['noise_sd']:.4f} against a label sd of {b['label_sd']:.4f}: at least "
            f"{100 * b['noise_share_at_least']:.0f}% of the label variance is noise, "
            f"ceiling <= {b['ceiling_at_most']:.3f}",
            highlight=False,
        )


def _print_models(result: dict, console: Console) -> None:
    from rankzc.ranking.evaluation import comparison_text
    from rankzc.ranking.metrics import METRICS

    short = {
        "pairwise_accuracy": "pairwise acc",
        "top10pct_precision": "top-10% prec",
        "regret_top1": "regret@1",
        "within_depth_spearman": "within-depth",
    }
    t = Table(
        title=f"Rankers and baselines, mean ± std over folds "
        f"({result.get('cv', {}).get('description', '')})"
    )
    t.add_column("model", no_wrap=True)
    for m in METRICS:
        t.add_column(short.get(m, m), justify="right", no_wrap=True)
    t.add_column("vs", no_wrap=True)
    t.add_column("Δ spearman [95% CI]", justify="right", no_wrap=True)
    t.add_column("p", justify="right", no_wrap=True)
    for name, r in result["models"].items():
        if r.get("failed"):
            t.add_row(name, *("-" for _ in METRICS), "-", f"failed: {r['error']}", "-")
            continue
        vs, diff, p = comparison_text(r.get("vs_baseline"))
        t.add_row(
            name,
            *(
                f"{fmt_num(r.get(f'{m}_mean'), 3)} ± {fmt_num(r.get(f'{m}_std'), 3)}"
                for m in METRICS
            ),
            vs,
            diff,
            p,
        )
    for name, r in result.get("cv_baselines", {}).items():
        t.add_row(
            f"[dim]baseline: {name}[/dim]",
            *(
                f"{fmt_num(r.get(f'{m}_mean'), 3)} ± {fmt_num(r.get(f'{m}_std'), 3)}"
                for m in METRICS
            ),
            "",
            "",
            "",
        )
    console.print(t)
    failed = [f"{m} ({r['error']})" for m, r in result["models"].items() if r.get("failed")]
    if failed:
        console.print("failed: " + "; ".join(failed), highlight=False)
    console.print(
        f"Δ: held-out Spearman minus the strongest baseline "
        f"({result.get('strongest_baseline')}) on the same splits; "
        f"{result.get('comparison', '')}.",
        highlight=False,
    )


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
    multiple=True,
    callback=lambda ctx, param, value: _parse_sizes(value),
    help="Train on N architectures per fold; several (20,50,100 or repeated) give a "
    "learning curve.",
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
@click.option(
    "--train",
    "train_db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Transfer: fit --models on this benchmark (with --test).",
)
@click.option(
    "--test",
    "test_db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Transfer: rank this benchmark with the models fitted on --train (no labels used).",
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
    train_db,
    test_db,
    fmt,
) -> None:
    """Rank correlation of every proxy (and of the rankers in --models) with accuracy."""
    from rankzc.analysis import check_evaluable, label_noise, single_proxy_report

    model_names = _parse_models(models)
    if train_db is not None or test_db is not None:
        from rankzc.ranking.transfer import run_transfer_command

        run_transfer_command(train_db, test_db, model_names, features, epoch, fmt)
        return
    if report_dir is not None and not model_names:
        raise RankzcError("--report needs --models (the report compares rankers)")
    with open_benchmark(benchmark) as bench:
        check_evaluable(bench, epoch)
        result = single_proxy_report(
            bench, epoch=epoch, n_boot=bootstrap, seed=seed, group_by_depth=group_by == "depth"
        )
        result["label_noise"] = label_noise(bench, n_boot=bootstrap, seed=seed)
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
                    epoch=epoch,
                )
            )
    if fmt == "json":
        echo_json(result)
        return
    console = Console(width=max(Console().width, 132))
    _print_single(result, console)
    _print_noise(result["label_noise"], console)
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
    from rankzc.analysis import plot_warmup, warmup_report

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
