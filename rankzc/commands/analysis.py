"""``rankzc evaluate``, ``rankzc warmup`` and ``rankzc export``."""

from __future__ import annotations

from pathlib import Path

import click

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
from rankzc.ranking.registry import RANKERS
from rankzc.threads import apply as apply_threads

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


def _single_rows(report: dict) -> list[tuple[str, dict]]:
    return sorted(report["proxies"].items(), key=lambda kv: -abs(kv[1]["spearman"] or 0))


def _print_single(report: dict) -> None:
    when = (
        "at initialisation" if report.get("epoch", -1) == -1 else f"after epoch {report['epoch']}"
    )
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
        title=f"Single proxies {when} (n = {report['n']})",
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


def _print_noise(noise: dict) -> None:
    from rich.console import Console

    console = Console(highlight=False)
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


_SHORT = {
    "pairwise_accuracy": "pairwise acc",
    "top10pct_precision": "top-10% prec",
    "regret_top1": "regret@1",
    "within_depth_spearman": "within-depth",
}


def _print_models(result: dict) -> None:
    from rankzc.ranking.evaluation import comparison_text
    from rankzc.ranking.metrics import METRICS

    def cells(r: dict) -> list[str]:
        return [
            f"{fmt_num(r.get(f'{m}_mean'), 3)} ± {fmt_num(r.get(f'{m}_std'), 3)}" for m in METRICS
        ]

    rows = []
    for name, r in result["models"].items():
        if r.get("failed"):
            rows.append([name, *("-" for _ in METRICS), "-", f"failed: {r['error']}", "-"])
            continue
        rows.append([name, *cells(r), *comparison_text(r.get("vs_baseline"))])
    for name, r in result.get("cv_baselines", {}).items():
        rows.append([f"baseline: {name}", *cells(r), "", "", ""])
    print_table(
        ["model", *(_SHORT.get(m, m) for m in METRICS), "vs", "Δ spearman [95% CI]", "p"],
        rows,
        title=f"Rankers and baselines, mean ± std over folds "
        f"({result.get('cv', {}).get('description', '')})",
        right={*(_SHORT.get(m, m) for m in METRICS), "Δ spearman [95% CI]", "p"},
    )
    failed = [f"{m} ({r['error']})" for m, r in result["models"].items() if r.get("failed")]
    if failed:
        click.echo("failed: " + "; ".join(failed))
    click.echo(
        f"Δ: held-out Spearman minus the strongest baseline "
        f"({result.get('strongest_baseline')}) on the same splits; "
        f"{result.get('comparison', '')}."
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
        flat = {k: v for k, v in r.items() if not isinstance(v, (dict, list))}
        rows.append({"kind": "model", "name": name, **flat})
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
@click.option(
    "--proxies",
    "proxy_list",
    default=None,
    metavar="LIST",
    help="Comma-separated proxies to evaluate and give the rankers (default: every proxy "
    "the store has).",
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
    train_db,
    test_db,
    proxy_list,
    threads,
    quiet,
    fmt,
) -> None:
    """Rank correlation of every proxy (and of the rankers in --models) with accuracy."""
    from rankzc.analysis import check_evaluable, label_noise, single_proxy_report
    from rankzc.ranking.features import check_proxy_subset, parse_proxy_list

    model_names = _parse_models(models)
    names = parse_proxy_list(proxy_list)
    if names is not None and (train_db is not None or test_db is not None):
        raise RankzcError("--proxies: not with --train/--test (transfer uses the shared proxies)")
    if models.strip() == "all" and features == "proxies":
        # "all" means every ranker that can read the chosen features
        from rankzc.ranking.registry import ranker_class

        skipped = [m for m in model_names if getattr(ranker_class(m), "needs_encoding", False)]
        model_names = [m for m in model_names if m not in skipped]
        if skipped:
            click.echo(
                f"note: {', '.join(skipped)} skipped: needs the architecture encoding "
                "(--features arch or all)",
                err=True,
            )
    apply_threads(threads)
    if train_db is not None or test_db is not None:
        from rankzc.ranking.transfer import run_transfer_command

        run_transfer_command(train_db, test_db, model_names, features, epoch, fmt)
        return
    if names is not None:  # before --report makes its directory
        with open_benchmark(benchmark) as bench:
            check_proxy_subset(bench, names, epoch)
    if report_dir is not None:
        if not model_names:
            raise RankzcError("--report needs --models (the report compares rankers)")
        ensure_directory(report_dir, option="--report")
    with open_benchmark(benchmark) as bench:
        labels, feats = check_evaluable(bench, epoch)
        if names is not None:
            feats = feats[names]
        result = single_proxy_report(
            bench,
            epoch=epoch,
            n_boot=bootstrap,
            seed=seed,
            group_by_depth=group_by == "depth",
            labels=labels,
            features=feats,
        )
        result["label_noise"] = label_noise(bench, n_boot=bootstrap, seed=seed, labels=labels)
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
                        epoch=epoch,
                        progress=lambda done, total: bar.update(task, completed=done, total=total),
                        proxies=names,
                    )
                )
    if fmt == "json":
        echo_json(result)
    elif fmt == "csv":
        echo_csv(_evaluate_csv(result))
    else:
        _print_single(result)
        _print_noise(result["label_noise"])
        if model_names:
            _print_models(result)
    _refuse_all_failed(result)


def _refuse_all_failed(result: dict) -> None:
    """Exit non-zero (after the report is printed) when every model in --models failed."""
    models = result.get("models") or {}
    if models and all(r.get("failed") for r in models.values()):
        reasons = "; ".join(f"{m}: {r.get('error')}" for m, r in models.items())
        raise RankzcError(f"every model in --models failed ({reasons})")


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
