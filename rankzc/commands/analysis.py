"""``rankzc evaluate``, ``rankzc warmup`` and ``rankzc export``."""

from __future__ import annotations

import math
from pathlib import Path

import click

from rankzc.commands._common import (
    aliased,
    atomic_write_frame,
    benchmark_option,
    check_output_path,
    deprecated_alias,
    echo_csv,
    echo_json,
    epoch_option,
    features_option,
    fmt_num,
    format_option,
    open_benchmark,
    out_option,
    print_table,
    quiet_option,
    start_line,
    table_layout,
    threads_option,
    write_result,
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
    if report["baselines"]:  # a store without depth, params or flops has none
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
    """The label noise, measured (repeated seeds) and estimated (binomial, assuming
    independent errors); the ceiling they imply is printed once, in the verdict
    (:func:`_ceiling`)."""
    from rich.console import Console

    from rankzc.analysis import chance_line

    console = Console(highlight=False)
    rep = noise.get("repeats")
    if rep:
        lo, hi = rep["seed_to_seed_ci95"]
        rlo, rhi = rep["reliability_ci95"]
        console.print(
            f"Label noise: seed-to-seed Spearman {fmt_num(rep['seed_to_seed_spearman'], 3)} "
            f"[{fmt_num(lo, 3)}, {fmt_num(hi, 3)}] over {noise['n_repeated']} architectures "
            f"with repeated runs; reliability of the mean label "
            f"({noise.get('runs_per_architecture_harmonic', noise['runs_per_architecture']):.2f}"
            " runs, harmonic mean; Spearman-Brown) "
            f"{fmt_num(rep['reliability'], 3)} [{fmt_num(rlo, 3)}, {fmt_num(rhi, 3)}]",
            highlight=False,
        )
    else:
        console.print(f"Label noise: {noise['note']}.", highlight=False)
    at_chance = chance_line(noise.get("chance"))
    if at_chance:
        console.print(at_chance, highlight=False)
    b = noise.get("binomial")
    if b:
        console.print(
            f"Binomial estimate: a validation set of {b['validation_size']} "
            f"({noise['validation_size_source']}) gives label noise sd ~ "
            f"{b['noise_sd']:.4f} against a label sd of {b['label_sd']:.4f}: about "
            f"{100 * b['noise_share']:.0f}% of the label variance, assuming independent "
            "errors across architectures (a shared validation set correlates them: not a "
            "bound)",
            highlight=False,
        )


def _finite_positive(value) -> bool:
    try:
        return math.isfinite(float(value)) and float(value) > 0
    except (TypeError, ValueError):
        return False


def _ceiling(noise: dict | None) -> dict | None:
    """The one ceiling on any ranker's Spearman that applies: the one measured from
    repeated seeds when it can be estimated, else the binomial estimate (independent
    errors assumed); None when neither can be computed."""
    noise = noise or {}
    rep = noise.get("repeats")
    if rep and _finite_positive(rep.get("ceiling")):
        lo, hi = rep.get("ceiling_ci95") or [None, None]
        return {
            "value": rep["ceiling"],
            "ci95": [lo, hi],
            "source": "repeated seeds",
            "text": f"~ {fmt_num(rep['ceiling'], 3)} [{fmt_num(lo, 3)}, {fmt_num(hi, 3)}] "
            f"(label noise measured on {noise.get('n_repeated')} architectures trained under "
            "more than one seed)",
        }
    b = noise.get("binomial")
    if b and _finite_positive(b.get("ceiling_estimate")):
        why = (
            "the repeated runs are too few or disagree to measure it"
            if rep
            else "no architecture was trained under more than one seed"
        )
        return {
            "value": b["ceiling_estimate"],
            "ci95": None,
            "source": "binomial estimate",
            "approximate": True,
            "assumption": b.get("assumption"),
            "text": f"~ {b['ceiling_estimate']:.3f} (binomial estimate of a validation set of "
            f"{b['validation_size']}, assuming independent errors across architectures, "
            f"which a shared validation set violates: not a bound; {why})",
        }
    return None


def _verdict(result: dict) -> list[str]:
    """The findings in words: the best model against the strongest baseline (difference,
    interval, p, distinguishable or not) and the one ceiling that applies."""
    lines = []
    models = {m: r for m, r in (result.get("models") or {}).items() if not r.get("failed")}
    ranked = [
        (m, r) for m, r in models.items() if _finite_positive(abs(r.get("spearman_mean") or 0))
    ]
    if ranked and not result.get("cv_skipped"):
        best, r = max(ranked, key=lambda kv: kv[1]["spearman_mean"])
        cv = result.get("cv", {})
        text = (
            f"Verdict: the best ranker is {best} (held-out Spearman "
            f"{fmt_num(r['spearman_mean'], 3)} ± {fmt_num(r.get('spearman_std'), 3)}, "
            f"{cv.get('description', '')})"
        )
        vs = r.get("vs_baseline")
        strongest = result.get("strongest_baseline")
        if not vs or strongest is None:
            text += "; no baseline could be computed to compare it with."
        else:
            ref = (result.get("cv_baselines") or {}).get(strongest, {}).get("spearman_mean")
            lo, hi = vs.get("ci95") or [None, None]
            p = vs.get("p_value")
            diff = (
                f"Δ {fmt_num(vs.get('mean_diff'), 3)} "
                if not _finite(p)
                else f"Δ {vs['mean_diff']:+.3f} [{lo:+.3f}, {hi:+.3f}], p = {p:.2g}"
                + (
                    f" (Holm over {vs['holm_family']} comparisons: {vs['p_holm']:.2g})"
                    if _finite(vs.get("p_holm")) and (vs.get("holm_family") or 0) > 1
                    else ""
                )
            )
            text += f"; against the strongest baseline, {strongest} ({fmt_num(ref, 3)}): {diff}"
            if not _finite(p):
                text += " (in-sample figures, no test)."
            elif p < 0.05 and vs["mean_diff"] > 0:
                text += f": better than {strongest} (p < 0.05)."
            elif p < 0.05:
                text += f": worse than {strongest} (p < 0.05)."
            else:
                text += f": not distinguishable from {strongest}."
        lines.append(text)
    elif (models or result.get("models")) and not result.get("cv_skipped"):
        lines.append("Verdict: no ranker could be evaluated (see the failures above).")
    else:
        single = _single_rows(result)
        if single:
            name, r = single[0]
            lo, hi = r["ci95"]
            sure = (
                "its 95% interval excludes 0"
                if _finite(lo) and _finite(hi) and (lo > 0 or hi < 0)
                else "its 95% interval includes 0"
            )
            lines.append(
                f"Verdict: the strongest single proxy is {name} (Spearman "
                f"{fmt_num(r['spearman'], 3)} [{fmt_num(lo, 3)}, {fmt_num(hi, 3)}]; {sure}); "
                + (
                    "rankers not compared: too few labelled architectures."
                    if result.get("cv_skipped")
                    else "compare rankers with baselines on held-out folds with --models all."
                )
            )
    ceiling = _ceiling(result.get("label_noise"))
    if ceiling is not None:
        lines.append(f"Ceiling for any ranker's Spearman: {ceiling['text']}.")
    else:
        lines.append("Ceiling: unknown (neither repeated seeds nor a validation-set bound).")
    return lines


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


_SHORT = {
    "pairwise_accuracy": "pairwise acc",
    "top10pct_precision": "top-10% prec",
    "regret_top1": "regret@1 (pts)",
    "within_depth_spearman": "within-depth",
}


def _print_models(result: dict) -> None:
    from rankzc.ranking.evaluation import comparison_text
    from rankzc.ranking.metrics import METRICS

    models = result["models"]
    baselines = dict(result.get("cv_baselines", {}))
    # the single ranker *is* the best-proxy baseline (same rule, same folds): one row
    same = (
        "single" in models
        and not models["single"].get("failed")
        and "best proxy" in baselines
        and models["single"].get("per_fold_spearman")
        == baselines["best proxy"].get("per_fold_spearman")
    )
    shown = [
        m
        for m in METRICS
        if any(_finite(r.get(f"{m}_mean")) for r in [*models.values(), *baselines.values()])
    ]

    def cells(r: dict) -> list[str]:
        return [
            f"{fmt_num(r.get(f'{m}_mean'), 3)} ± {fmt_num(r.get(f'{m}_std'), 3)}"
            if _finite(r.get(f"{m}_mean"))
            else "-"
            for m in shown
        ]

    rows = []
    for name, r in models.items():
        if r.get("failed"):
            rows.append([name, *("-" for _ in shown), "-", "failed (below)", "-", "-"])
            continue
        label = "single = baseline: best proxy" if name == "single" and same else name
        vs = r.get("vs_baseline") or {}
        rows.append([label, *cells(r), *comparison_text(vs), _p(vs.get("p_holm"))])
    for name, r in baselines.items():
        if same and name == "best proxy":
            continue
        rows.append([f"baseline: {name}", *cells(r), "", "", "", ""])
    print_table(
        [
            "model",
            *(_SHORT.get(m, m) for m in shown),
            "vs",
            "Δ spearman [95% CI]",
            "p",
            "p (Holm)",
        ],
        rows,
        title=f"Rankers and baselines, mean ± std over folds "
        f"({result.get('cv', {}).get('description', '')})",
        right={*(_SHORT.get(m, m) for m in shown), "Δ spearman [95% CI]", "p", "p (Holm)"},
    )
    failed = [f"{m} ({r['error']})" for m, r in models.items() if r.get("failed")]
    if failed:
        click.echo("failed: " + "; ".join(failed))
    if result.get("strongest_baseline") is not None:
        click.echo(
            f"Δ: held-out Spearman, model minus the strongest baseline "
            f"({result['strongest_baseline']}), on the same splits; "
            f"95% interval and p: {result.get('test', '')}; p (Holm): adjusted over every "
            f"model-baseline comparison of this run ({_family(models, 'comparisons')})."
        )
    _print_ablation(result)
    _print_curve(result.get("learning_curve"))


def _p(value) -> str:
    """A p-value in two significant digits, "-" when absent."""
    return f"{float(value):.2g}" if _finite(value) else "-"


def _family(models: dict, key: str) -> int:
    """The size of the Holm family of ``key`` comparisons (0 when none was adjusted)."""
    for r in models.values():
        if r.get("failed"):
            continue
        comps = r.get(key) or {}
        comps = list(comps.values()) if key == "comparisons" else [comps]
        for c in comps:
            if c.get("holm_family"):
                return int(c["holm_family"])
    return 0


def _print_ablation(result: dict) -> None:
    """What the proxies add: each learned model with its features against the same model
    on the architecture features alone, on the same splits."""
    from rankzc.ranking.evaluation import comparison_text

    models = result.get("models") or {}
    rows = []
    for name, r in models.items():
        add = None if r.get("failed") else r.get("proxies_add")
        if not add:
            continue
        if add.get("failed"):
            rows.append([name, "-", "-", f"failed: {add.get('error')}", "-", "-"])
            continue
        _, diff, p = comparison_text(add)
        rows.append(
            [
                name,
                f"{fmt_num(r.get('spearman_mean'), 3)} ± {fmt_num(r.get('spearman_std'), 3)}",
                f"{fmt_num(add.get('arch_only_spearman_mean'), 3)} ± "
                f"{fmt_num(add.get('arch_only_spearman_std'), 3)}",
                diff,
                p,
                _p(add.get("p_holm")),
            ]
        )
    if not rows:
        note = (result.get("ablation") or {}).get("note")
        if note and result.get("features") != "arch":
            click.echo(f"Proxies' contribution: {note}.")
        return
    print_table(
        [
            "model",
            f"features {result.get('features')}",
            "architecture alone",
            "Δ proxies add [95% CI]",
            "p",
            "p (Holm)",
        ],
        rows,
        title="What the proxies add: the same model without proxy columns, same splits",
        right={"Δ proxies add [95% CI]", "p", "p (Holm)"},
    )
    click.echo(
        "Δ: held-out Spearman with the proxies minus on the architecture features alone; "
        f"95% interval and p: {result.get('test', '')}; p (Holm): adjusted over the "
        f"{_family(models, 'proxies_add')} model(s)."
    )


def _print_curve(curve: dict | None) -> None:
    """The learning curve (--train-size with several sizes): held-out Spearman by size,
    then what the proxies add at each size where it was measured."""
    from rankzc.ranking.evaluation import comparison_text

    if not curve:
        return
    sizes = sorted({p["train_size"] for pts in curve.values() for p in pts})
    rows = []
    for model, points in curve.items():
        at = {p["train_size"]: p for p in points}
        rows.append(
            [
                model,
                *(
                    f"{fmt_num(at[n]['spearman_mean'], 3)} ± {fmt_num(at[n]['spearman_std'], 3)}"
                    if n in at
                    else "-"
                    for n in sizes
                ),
            ]
        )
    print_table(
        ["model", *(f"N={n}" for n in sizes)],
        rows,
        title="Learning curve: held-out Spearman, mean ± std over folds, "
        "trained on N architectures",
    )
    adds = []
    for model, points in curve.items():
        at = {p["train_size"]: p.get("proxies_add") for p in points}
        if not any(at.values()):
            continue
        cells = []
        for n in sizes:
            a = at.get(n)
            if not a:
                cells.append("-")
            elif a.get("failed"):
                cells.append("failed")
            else:
                cells.append(comparison_text(a)[1])
        adds.append([model, *cells])
    if adds:
        print_table(
            ["model", *(f"N={n}" for n in sizes)],
            adds,
            title="What the proxies add by training size: Δ held-out Spearman [95% CI] "
            "against the architecture features alone (corrected t-test; conservative at "
            "small N, see evaluate_models)",
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
    "--transfer-to",
    "test_db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Transfer: fit --models on --benchmark and rank this benchmark with them (its "
    "labels only score the ranking), as fit --transfer-to.",
)
@deprecated_alias("--train", "--benchmark (-b)", dest="benchmark", type=click.Path(path_type=Path))
@deprecated_alias("--test", "--transfer-to", dest="test_db", type=click.Path(path_type=Path))
@click.option(
    "--proxies",
    "proxy_list",
    default=None,
    metavar="LIST",
    help="Comma-separated proxies to evaluate and give the rankers (default: every proxy "
    "the store has).",
)
@click.option(
    "--keep-going",
    is_flag=True,
    help="Exit 0 when some models in --models fail on the data (default: exit 3 after the report).",
)
@out_option("Also write the results here: .json (every figure) or .csv (one row each).")
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
    test_db,
    proxy_list,
    keep_going,
    out,
    threads,
    quiet,
    fmt,
) -> None:
    """Rank correlation of every proxy (and of the rankers in --models) with accuracy.

    Ends with a verdict in words: the best ranker against the strongest baseline and the
    ceiling label noise puts on any ranker.
    """
    from rankzc.analysis import check_evaluable, label_noise, single_proxy_report
    from rankzc.ranking.features import check_proxy_subset, parse_proxy_list

    benchmark = aliased("benchmark", benchmark)
    test_db = aliased("test_db", test_db)
    model_names = _parse_models(models)
    names = parse_proxy_list(proxy_list)
    if names is not None and test_db is not None:
        raise RankzcError("--proxies: not with --transfer-to (transfer uses the shared proxies)")
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
    _refuse_impossible(model_names, features)
    if out is not None:
        check_output_path(out, suffixes=(".json", ".csv"))
    apply_threads(threads)
    if test_db is not None:
        from rankzc.ranking.transfer import run_transfer_command
        from rankzc.store import default_benchmark_path

        if out is not None:
            raise RankzcError("--out: not with --transfer-to")
        train_db = default_benchmark_path() if benchmark is None else benchmark
        run_transfer_command(train_db, test_db, model_names, features, epoch, fmt)
        return
    if names is not None:  # before --report makes its directory
        with open_benchmark(benchmark) as bench:
            check_proxy_subset(bench, names, epoch)
    if report_dir is not None:
        if not model_names:
            raise RankzcError("--report needs --models (the report compares rankers)")
        from rankzc.ranking.report import check_report_dir

        check_report_dir(report_dir)  # new, empty or a previous report (replaced whole)
    with open_benchmark(benchmark) as bench:
        labels, feats = check_evaluable(bench, epoch)
        start_line(
            quiet or bool(model_names),  # --models shows a progress bar instead
            f"evaluating {feats.shape[1]} proxies on {len(labels)} labelled architectures",
        )
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
        too_few = _too_few_for_cv(len(labels), folds, cv) if model_names else None
        if too_few:
            result["cv_skipped"] = too_few
            if report_dir is not None:
                result["cv_skipped"] += "; no --report written"
        elif model_names:
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
    verdict = _verdict(result)
    result["verdict"] = " ".join(verdict)
    ceiling = _ceiling(result.get("label_noise"))
    result["ceiling"] = None if ceiling is None else {k: ceiling[k] for k in ceiling}
    if fmt == "json":
        echo_json(result)
    elif fmt == "csv":
        echo_csv(_evaluate_csv(result))
    else:
        _print_single(result)
        _print_noise(result["label_noise"])
        if result.get("cv_skipped"):
            click.echo(f"Note: {result['cv_skipped']}.")
        elif model_names:
            _print_models(result)
        for line in verdict:
            click.echo(line)
        if result.get("report"):
            click.echo(f"report written to {result['report']}")
    if result.get("report") and fmt != "table":
        click.echo(f"report written to {result['report']}", err=True)
    if out is not None:
        write_result(out, result, _evaluate_csv(result), err=fmt != "table")
    _refuse_failed(result, keep_going)


#: fewest labelled architectures for cross-validating rankers (and folds x 2)
MIN_CV = 20


def _too_few_for_cv(n: int, folds: int, cv: str) -> str | None:
    """Why a store of ``n`` labelled architectures is too small to cross-validate rankers
    (fewer than :data:`MIN_CV`, or fewer than ``folds`` x 2), or None."""
    need = MIN_CV if cv == "none" else max(MIN_CV, 2 * folds)
    if n >= need:
        return None
    return (
        f"only {n} labelled architectures: too few to cross-validate rankers (need at "
        f"least {need}, the larger of {MIN_CV} and --folds x 2); only the single proxies "
        "are evaluated"
    )


def _refuse_impossible(model_names: list[str], features: str) -> None:
    """Exit 2, before any work, for a model the chosen --features cannot feed."""
    from rankzc.errors import UsageError
    from rankzc.ranking.registry import ranker_class

    if features != "proxies":
        return
    blocked = [m for m in model_names if getattr(ranker_class(m), "needs_encoding", False)]
    if blocked:
        raise UsageError(
            f"--models {', '.join(blocked)}: needs the architecture encoding, which "
            "--features proxies does not give; use --features arch or all"
        )


def _refuse_failed(result: dict, keep_going: bool) -> None:
    """After the report is printed: exit 1 when every model in --models failed, exit 3
    when some did (0 with --keep-going)."""
    from rankzc.errors import PartialFailure

    models = result.get("models") or {}
    failed = {m: r for m, r in models.items() if r.get("failed")}
    if not failed:
        return
    reasons = "; ".join(f"{m}: {r.get('error')}" for m, r in failed.items())
    if len(failed) == len(models):
        raise RankzcError(f"every model in --models failed ({reasons})")
    if not keep_going:
        raise PartialFailure(
            f"{len(failed)} of {len(models)} models failed ({reasons}); the others are "
            "reported above (--keep-going: exit 0)"
        )


@click.command("warmup")
@benchmark_option()
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Save a line plot (PNG) of Spearman against scoring epoch.",
)
@click.option("--proxies", default=None, help="Comma-separated proxies (default: all).")
@out_option("Also write the table here: .json or .csv.")
@quiet_option()
@format_option()
def warmup(benchmark, plot, proxies, out, quiet, fmt) -> None:
    """Spearman of each proxy per scoring epoch against the final label (warm-up curves)."""
    from rankzc.analysis import plot_warmup, warmup_report

    if plot is not None:
        check_output_path(plot, option="--plot", suffixes=(".png", ".pdf", ".svg"))
    if out is not None:
        check_output_path(out, suffixes=(".json", ".csv"))
    start_line(quiet, "computing Spearman per scoring epoch")
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
    csv_rows = [
        {"epoch": e, "n": v["n"], "proxy": p, **r}
        for e, v in report["epochs"].items()
        for p, r in v["proxies"].items()
    ]
    if out is not None:
        write_result(out, report, csv_rows, err=fmt != "table")
    if fmt != "table":
        (echo_json(report) if fmt == "json" else echo_csv(csv_rows))
        if plot is not None:
            click.echo(f"plot written to {plot}", err=True)
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
        from rankzc.ranking.io import _store_settings

        # the settings `score --features-csv` compares with a ranker's (the sidecar's
        # 'settings', as `rankzc features` writes them)
        settings = _store_settings(bench)
    df = table_layout(df)
    extra = {"settings": settings} if isinstance(settings, dict) and settings else {}
    atomic_write_frame(df, out, benchmark=meta, **extra)
    click.echo(f"wrote {len(df)} architectures x {df.shape[1]} columns to {out}")


COMMANDS = [evaluate, warmup, export]
