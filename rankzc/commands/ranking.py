"""``rankzc vote``, ``rankzc fit`` and ``rankzc score``: combine proxies into one ranking."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rankzc.commands._common import (
    architectures_from,
    benchmark_option,
    check_output_path,
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
    threads_option,
    write_result,
)
from rankzc.errors import RankzcError
from rankzc.ranking.registry import RANKERS
from rankzc.threads import apply as apply_threads


@click.command("vote")
@benchmark_option()
@click.option(
    "--max-size",
    type=click.IntRange(1),
    default=3,
    show_default=True,
    help="Largest proxy subset searched.",
)
@click.option(
    "--min-size",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Smallest proxy subset searched.",
)
@click.option("--top", type=click.IntRange(1), default=10, show_default=True, help="Subsets shown.")
@epoch_option()
@click.option("--proxies", default=None, help="Comma-separated proxies (default: all).")
@click.option(
    "--orient/--no-orient",
    default=False,
    show_default=True,
    help="Flip proxies negatively correlated with accuracy (the study did not).",
)
@click.option(
    "--ties",
    type=click.Choice(["draw", "study"]),
    default="draw",
    show_default=True,
    help="Tie rule: 'draw' (equal values abstain, a cancelled vote counts 1/2) or 'study' "
    "(equal values and cancelled votes go to the second architecture). Fitted vote rankers "
    "predict with the same rule.",
)
@click.option(
    "--max-pairs",
    type=click.IntRange(1000),
    default=5_000_000,
    show_default=True,
    help="Above this many pairs the score is estimated from this many random pairs.",
)
@quiet_option()
@format_option()
def vote(
    benchmark, max_size, min_size, top, epoch, proxies, orient, ties, max_pairs, quiet, fmt
) -> None:
    """Score every proxy subset by majority-vote pairwise accuracy (the study's rule)."""

    from rankzc.ranking.preprocessing import proxy_directions
    from rankzc.ranking.vote import search_subsets

    names = [p.strip() for p in proxies.split(",") if p.strip()] if proxies else None
    with open_benchmark(benchmark) as bench:
        labels = bench.labels()
        if labels.empty:
            raise RankzcError(f"{bench.path}: no labelled architectures")
        feats = bench.features(epoch, proxies=names).reindex(labels.index)
        if names:
            absent = [n for n in names if feats[n].isna().all()]
            if absent:
                raise RankzcError(f"--proxies: no scores for {', '.join(absent)} at epoch {epoch}")
        feats = feats.loc[:, feats.notna().any(axis=0)]
        if feats.shape[1] == 0:
            raise RankzcError(f"{bench.path}: no proxy scores at epoch {epoch}")
    y = labels["val_acc"].to_numpy(dtype=float)
    X = feats.to_numpy(dtype=float)
    if orient:
        X = X * proxy_directions(X, y)
    if min_size > max_size:
        raise RankzcError(f"--min-size {min_size} is larger than --max-size {max_size}")
    start_line(
        quiet,
        f"scoring the subsets of {min_size} to {max_size} of {X.shape[1]} proxies on "
        f"{len(y)} architectures",
    )
    res = search_subsets(
        X,
        y,
        list(feats.columns),
        max_size=max_size,
        min_size=min_size,
        ties=ties,
        max_pairs=max_pairs,
        seed=0,
    )
    out = {
        "subsets": [{k: s[k] for k in ("proxies", "size", "score")} for s in res["subsets"][:top]],
        "seconds": res["seconds"],
        "n_subsets": len(res["subsets"]),
        "pairs": res["pairs"],
        "sampled": res["sampled"],
        "n_architectures": int(len(y)),
        "rule": "strict majority of positive differences votes 'first is better'; NaN abstains; "
        + (
            "equal values abstain and a cancelled vote counts one half"
            if ties == "draw"
            else "equal values and a cancelled vote go to the second (the study's rule)"
        )
        + ("; proxies oriented by Spearman sign" if orient else ""),
    }
    if res["sampled"]:
        out["note"] = (
            f"estimated from {res['pairs']} random pairs of the "
            f"{len(y) * (len(y) - 1) // 2} (--max-pairs {max_pairs})"
        )
    if fmt == "json":
        echo_json(out)
        return
    if fmt == "csv":
        echo_csv([{"rank": i, **s} for i, s in enumerate(out["subsets"], 1)])
        return
    print_table(
        ["#", "proxies", "size", "pairwise accuracy"],
        [
            [i, ", ".join(s["proxies"]), s["size"], fmt_num(s["score"])]
            for i, s in enumerate(out["subsets"], 1)
        ],
        title=f"Majority vote: {out['n_subsets']} subsets, {res['pairs']} "
        + ("sampled " if res["sampled"] else "")
        + f"pairs, {res['seconds']:.2f} s",
        right={"#", "size", "pairwise accuracy"},
    )
    if res["sampled"]:
        click.echo(f"pairwise accuracy {out['note']}")


def _parse_params(items: tuple[str, ...]) -> dict:
    params = {}
    for item in items:
        if "=" not in item:
            raise RankzcError(f"--param {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


@click.command("fit")
@click.option(
    "--model", "-m", type=click.Choice(list(RANKERS)), required=True, help="Ranker to fit."
)
@benchmark_option()
@features_option()
@epoch_option()
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Model parameter (JSON value), e.g. --param epochs=50; repeatable.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Ranker file to write (.rzc).",
)
@click.option(
    "--transfer-to",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Benchmark to rank later: keep the proxies it shares and rank-normalise per benchmark.",
)
@click.option(
    "--proxies",
    "proxy_list",
    default=None,
    metavar="LIST",
    help="Comma-separated proxy inputs (default: every proxy the store has); the ranker "
    "records only these and 'rankzc score' computes only these.",
)
@threads_option()
@quiet_option()
@format_option()
def fit(
    model, benchmark, features, epoch, params, out, transfer_to, proxy_list, threads, quiet, fmt
) -> None:
    """Fit a ranker on every labelled architecture of a benchmark and save it."""
    import contextlib
    import warnings

    from rankzc.ranking.features import check_proxy_subset, parse_proxy_list
    from rankzc.ranking.io import fit_ranker, save_ranker

    kwargs = _parse_params(params)
    names = parse_proxy_list(proxy_list)
    if names is not None and features not in ("proxies", "all"):
        raise RankzcError(f"--proxies: --features {features} reads no proxies")
    check_output_path(out)
    apply_threads(threads)
    with contextlib.ExitStack() as stack:
        bench = stack.enter_context(open_benchmark(benchmark))
        if names is not None:
            check_proxy_subset(bench, names, epoch)
        if features in ("proxies", "all"):
            _note_unreproducible(bench, names, epoch)
        other = None
        if transfer_to is not None:
            from rankzc.store import store_file

            if not store_file(transfer_to).exists():  # STORE#HASH too
                raise RankzcError(f"--transfer-to: {transfer_to}: benchmark store not found")
            other = stack.enter_context(open_benchmark(transfer_to))
        start_line(quiet, f"fitting {model} on {bench.path}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                fitted = fit_ranker(
                    bench,
                    model,
                    features=features,
                    epoch=epoch,
                    params=kwargs,
                    transfer_to=other,
                    proxies=names,
                )
            except TypeError as err:
                raise RankzcError(f"--param: {err}") from None
        for w in caught:
            if issubclass(w.category, RuntimeWarning):
                click.echo(f"Warning: {w.message}", err=True)
    save_ranker(fitted, out)
    summary = {
        "out": str(out),
        "model": model,
        "features": features,
        "n_features": len(fitted.feature_names),
        "proxies": fitted.proxies,
        "space": fitted.space,
        "settings": fitted.settings,
        **fitted.info,
    }
    est = fitted.model
    if hasattr(est, "subset_"):
        summary["subset"] = est.subset_names_
        summary["subset_pairwise_accuracy"] = est.train_score_
        summary["subset_score_sampled"] = bool(getattr(est, "train_score_sampled_", False))
    if hasattr(est, "column_"):
        summary["proxy"] = est.proxy_
    if fmt == "json":
        echo_json(summary)
        click.echo(f"ranker written to {out}", err=True)
        return
    if fmt == "csv":
        echo_csv(summary)
        click.echo(f"ranker written to {out}", err=True)
        return
    label_free = not getattr(type(fitted.model), "needs_labels", True)
    rows = f"{summary['n_architectures']} " + (
        "architectures (labels not read)" if label_free else "labelled architectures"
    )
    click.echo(
        f"fitted {model} on {rows} x {summary['n_features']} features (--features {features})"
    )
    cols = list(fitted.feature_names)
    shown = ", ".join(cols[:12]) + (f", ... ({len(cols) - 12} more)" if len(cols) > 12 else "")
    click.echo(f"features: {shown}")
    if summary.get("train_spearman") is not None:
        click.echo(
            f"in-sample Spearman {fmt_num(summary['train_spearman'], 3)} "
            + (
                "(on the labelled architectures it ranked; it read no labels)"
                if label_free
                else "(in-sample: scored on the architectures it was fitted on, not a "
                "held-out estimate)"
            )
        )
    click.echo(f"held-out estimate: {_evaluate_command(model, benchmark, features, epoch, names)}")
    click.echo(f"ranker written to {out}")
    if "subset" in summary:
        click.echo(
            f"subset: {', '.join(summary['subset'])} (training pairwise accuracy "
            f"{fmt_num(summary['subset_pairwise_accuracy'], 4)}"
            + (", estimated from sampled pairs)" if summary["subset_score_sampled"] else ")")
        )
    if "proxy" in summary:
        click.echo(f"proxy: {summary['proxy']}")


def _evaluate_command(model, benchmark, features, epoch, proxies) -> str:
    """The ``rankzc evaluate`` command giving the cross-validated figure of a fit."""
    import shlex

    parts = ["rankzc", "evaluate"]
    if benchmark is not None:
        parts += ["-b", str(benchmark)]
    parts += ["--models", model]
    if features != "proxies":
        parts += ["--features", features]
    if epoch != -1:
        parts += ["--epoch", str(epoch)]
    if proxies is not None:
        parts += ["--proxies", ",".join(proxies)]
    return shlex.join(parts)


def _note_unreproducible(bench, names: list[str] | None, epoch: int) -> None:
    """Before fitting: one line on stderr when proxies the ranker would read cannot be
    recomputed for new architectures (they read a study's data rankzc cannot load)."""
    from rankzc.ranking.io import _store_settings, ranker_settings

    stored = _store_settings(bench)
    if not isinstance(stored, dict) or not str(stored.get("data", "")).startswith("study:"):
        return  # only a study's data cannot be loaded
    from rankzc.proxies.catalog import PROXY_NAMES, unreproducible, unreproducible_message

    if names is None:
        feats = bench.features(epoch)
        names = [str(c) for c in feats.columns if feats[c].notna().any()]
    settings = ranker_settings(stored, [n for n in names if n in PROXY_NAMES])
    if not settings:
        return
    try:
        lost = unreproducible(settings)
    except RankzcError:
        return  # settings this rankzc cannot read: score says so when it needs them
    if lost:
        click.echo(
            f"Note: {unreproducible_message(lost, settings)}; the ranker still scores "
            "stored or precomputed proxies (--benchmark, --features-csv)",
            err=True,
        )


def _settings(text: str) -> dict:
    path = Path(text)
    try:
        raw = path.read_text() if text.strip().endswith(".json") else text
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise RankzcError(f"--settings: not valid JSON ({err.msg})") from None
    if not isinstance(data, dict):
        raise RankzcError("--settings: expected a JSON object")
    return data


@click.command("score")
@click.option(
    "--ranker",
    "-r",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Ranker file written by 'rankzc fit'.",
)
@click.option(
    "--archs",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON list of architectures to score.",
)
@click.option(
    "--sample",
    type=click.IntRange(1),
    default=None,
    help="Score N architectures sampled from the space.",
)
@click.option(
    "--features-csv",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="CSV of precomputed proxies (first column = id; 'arch' column for architecture features).",
)
@click.option(
    "--benchmark",
    "-b",
    "bench_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Score every architecture of this store from its stored proxies (no labels read).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --sample.")
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default=None,
    help="Override the device of the recorded proxy settings.",
)
@click.option(
    "--settings",
    "settings_text",
    default=None,
    help="Proxy settings (JSON text or a .json file) replacing the ranker's recorded ones, "
    'e.g. \'{"preset": "cpu", "data": "synthetic", "batch_size": 20}\'.',
)
@click.option(
    "--data",
    "data_spec",
    default=None,
    help="Data spec replacing the recorded one for proxies that read data, e.g. "
    "ntu:PATH for a ranker fitted on the study's data-reading proxies (with --archs or "
    "--sample).",
)
@click.option("--top", type=click.IntRange(1), default=None, help="Show only the K best.")
@click.option(
    "--allow-mismatch",
    is_flag=True,
    help="Only warn when --features-csv was computed under other proxy settings than the "
    "ranker's (recorded in its .json sidecar) or records none; the default refuses.",
)
@out_option("Also write the ranking here: .csv or .json.")
@threads_option()
@quiet_option()
@format_option()
def score(
    ranker,
    archs,
    sample,
    features_csv,
    bench_path,
    seed,
    device,
    settings_text,
    data_spec,
    top,
    allow_mismatch,
    out,
    threads,
    quiet,
    fmt,
) -> None:
    """Rank new architectures with a fitted ranker (best first).

    Proxies are scored under the ranker's recorded settings, with progress on stderr.
    """
    import pandas as pd

    from rankzc.ranking.io import check_features_settings, load_ranker, rank_table

    given = [x is not None for x in (archs, sample, features_csv, bench_path)]
    if sum(given) != 1:
        raise RankzcError("give exactly one of --archs, --sample, --features-csv, --benchmark")
    if data_spec is not None and archs is None and sample is None:
        raise RankzcError("--data: only with --archs or --sample (proxies computed from scratch)")
    if out is not None:
        check_output_path(out, suffixes=(".csv", ".json"))
    fitted = load_ranker(ranker)
    if bench_path is not None:
        from rankzc.store import store_file

        if not store_file(bench_path).exists():  # STORE#HASH too
            raise RankzcError(f"--benchmark: {bench_path}: benchmark store not found")
        from rankzc.ranking.io import _store_settings

        with open_benchmark(bench_path) as bench:
            epoch = int(fitted.info.get("epoch", -1))
            table = bench.features(epoch).join(bench.architectures()[["encoding", "depth"]])
            # a transfer ranker (fit --transfer-to) expects other settings: warn only
            transfer = fitted.info.get("normalise") == "rank"
            warn = (
                (lambda msg: click.echo(f"Warning: {msg}", err=True))
                if allow_mismatch or transfer
                else None
            )
            fitted.check_settings(_store_settings(bench), str(bench_path), str(ranker), warn=warn)
        try:
            ranked = rank_table(table, fitted.score_table(table))
        except RankzcError as err:
            raise RankzcError(f"{bench_path}: {err}") from None
    elif features_csv is not None:
        try:
            table = pd.read_csv(features_csv, index_col=0)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise RankzcError(f"{features_csv}: not a readable CSV ({err})") from None
        warn = (lambda msg: click.echo(f"Warning: {msg}", err=True)) if allow_mismatch else None
        # the sidecar is required: a missing or invalid one is refused (warned with
        # --allow-mismatch), never a silently skipped check (#24)
        check_features_settings(fitted, features_csv, str(ranker), warn=warn)
        try:
            ranked = rank_table(table, fitted.score_table(table))
        except RankzcError as err:
            raise RankzcError(f"{features_csv}: {err}") from None
    else:
        import warnings

        settings = _settings(settings_text) if settings_text else fitted.settings
        settings = dict(settings) if settings else None
        if settings is not None and device is not None:
            settings["device"] = device
        if fitted.proxies and settings is not None:
            settings = _data_settings(settings, data_spec, fitted.proxies, ranker)
        items = architectures_from(archs, sample, seed=seed)
        apply_threads(threads)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ranked = fitted.score(
                items,
                settings=settings,
                data_given=data_spec is not None,  # else the ranker's data: checked (#24)
                quiet=quiet,
                report=None if quiet else (lambda m: click.echo(m, err=True)),
            )
        for w in caught:
            if issubclass(w.category, RuntimeWarning):
                click.echo(f"Warning: {w.message}", err=True)
    if top is not None:
        ranked = ranked.head(top)
    ranked.index.name = ranked.index.name or "id"
    records = ranked.reset_index().to_dict(orient="records")
    as_json = {"ranker": str(ranker), "model": fitted.name, "n": len(records), "ranking": records}
    if fmt == "json":
        echo_json(as_json)
    elif fmt == "csv":
        echo_csv(ranked.reset_index())
    if out is not None:
        write_result(out, as_json, ranked.reset_index(), err=fmt != "table")
    if fmt != "table":
        return
    shown = [c for c in ("depth", "arch", "encoding") if c in ranked]
    rows = []
    for idx, rank, value, *rest in ranked[["rank", "score", *shown]].itertuples():
        cells = [_integer(rank), idx, fmt_num(value)]
        cells += [_integer(v) if c == "depth" else v for c, v in zip(shown, rest, strict=True)]
        rows.append(cells)
    print_table(
        ["rank", str(ranked.index.name), "score", *shown],
        rows,
        title=f"{fitted.name} ranking ({len(ranked)} shown)",
        keys=2,
        right={"rank", "score", "depth"},
    )


def _data_settings(settings: dict, data_spec: str | None, proxies: list, ranker: Path) -> dict:
    """The settings ``score`` computes the ranker's ``proxies`` with: ``--data`` in place
    of the recorded data; refuses (one line, before any work) proxies that read a study's
    data rankzc cannot load when no ``--data`` replaces it."""
    from rankzc.datasets import parse_data_spec
    from rankzc.proxies.features import (
        ProxySettings,
        data_reading,
        study_dataset,
        unreproducible,
        unreproducible_message,
    )

    settings = {**settings, "proxies": list(proxies)}
    try:
        study = study_dataset(settings.get("data", ""))
    except RankzcError as err:
        raise RankzcError(f"{ranker}: {err}") from None
    if data_spec is None:
        lost = unreproducible(ProxySettings.from_dict(settings))
        if lost:
            raise RankzcError(f"{ranker}: {unreproducible_message(lost, settings)}")
        return settings
    spec = parse_data_spec(data_spec)  # a bad spec or a missing path: one line
    if study is not None:
        if spec.kind != study["kind"]:
            raise RankzcError(
                f"--data: the study's proxies read {study['description']}; give {study['replace']}"
            )
        if spec.split is not None and spec.split != study["split"]:
            raise RankzcError(
                f"--data: the study used the {study['split']} split of {study['description']}, "
                f"not {spec.split}"
            )
        if not data_reading(proxies):
            return settings  # no proxy reads the data: the study's shape is enough
    return {**settings, "data": str(spec)}


def _integer(value) -> str:
    """An integer column value (rank, depth) as an integer, '-' when missing."""
    try:
        return str(int(value))
    except (TypeError, ValueError):
        return "-"


COMMANDS = [vote, fit, score]
