"""``rankzc vote``, ``rankzc fit`` and ``rankzc score``: combine proxies into one ranking."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pandas as pd
from rich.console import Console
from rich.table import Table

from rankzc.commands._common import (
    architectures_from,
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
@format_option()
def vote(benchmark, max_size, min_size, top, epoch, proxies, orient, fmt) -> None:
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
    res = search_subsets(X, y, list(feats.columns), max_size=max_size, min_size=min_size)
    out = {
        "subsets": [{k: s[k] for k in ("proxies", "size", "score")} for s in res["subsets"][:top]],
        "seconds": res["seconds"],
        "n_subsets": len(res["subsets"]),
        "pairs": res["pairs"],
        "n_architectures": int(len(y)),
        "rule": "strict majority of positive differences votes 'first is better'; "
        "NaN abstains" + ("; proxies oriented by Spearman sign" if orient else ""),
    }
    if fmt == "json":
        echo_json(out)
        return
    t = Table(
        title=f"Majority vote: {out['n_subsets']} subsets, {res['pairs']} pairs, "
        f"{res['seconds']:.2f} s"
    )
    t.add_column("#", justify="right")
    t.add_column("proxies")
    t.add_column("size", justify="right")
    t.add_column("pairwise accuracy", justify="right")
    for i, s in enumerate(out["subsets"], 1):
        t.add_row(str(i), ", ".join(s["proxies"]), str(s["size"]), fmt_num(s["score"]))
    Console().print(t)


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
@format_option()
def fit(model, benchmark, features, epoch, params, out, fmt) -> None:
    """Fit a ranker on every labelled architecture of a benchmark and save it."""
    from rankzc.ranking.io import fit_ranker, save_ranker

    kwargs = _parse_params(params)
    with open_benchmark(benchmark) as bench:
        try:
            fitted = fit_ranker(bench, model, features=features, epoch=epoch, params=kwargs)
        except TypeError as err:
            raise RankzcError(f"--param: {err}") from None
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
    if hasattr(est, "column_"):
        summary["proxy"] = est.proxy_
    if fmt == "json":
        echo_json(summary)
        return
    click.echo(
        f"fitted {model} on {summary['n_architectures']} architectures "
        f"({summary['n_features']} {features} features); in-sample Spearman "
        f"{fmt_num(summary['train_spearman'], 3)} (optimistic) -> {out}"
    )
    if "subset" in summary:
        click.echo(f"subset: {', '.join(summary['subset'])}")
    if "proxy" in summary:
        click.echo(f"proxy: {summary['proxy']}")


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
@click.option("--top", type=click.IntRange(1), default=None, help="Show only the K best.")
@format_option()
def score(ranker, archs, sample, features_csv, seed, device, settings_text, top, fmt) -> None:
    """Rank new architectures with a fitted ranker (best first)."""
    from rankzc.ranking.io import load_ranker, rank_table

    given = [x is not None for x in (archs, sample, features_csv)]
    if sum(given) != 1:
        raise RankzcError("give exactly one of --archs, --sample, --features-csv")
    fitted = load_ranker(ranker)
    if features_csv is not None:
        try:
            table = pd.read_csv(features_csv, index_col=0)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise RankzcError(f"{features_csv}: not a readable CSV ({err})") from None
        try:
            ranked = rank_table(table, fitted.score_table(table))
        except RankzcError as err:
            raise RankzcError(f"{features_csv}: {err}") from None
    else:
        items = architectures_from(archs, sample, seed=seed)
        settings = _settings(settings_text) if settings_text else fitted.settings
        settings = dict(settings) if settings else None
        if settings is not None and device is not None:
            settings["device"] = device
        ranked = fitted.score(items, settings=settings, report=lambda m: click.echo(m, err=True))
    if top is not None:
        ranked = ranked.head(top)
    ranked.index.name = ranked.index.name or "id"
    if fmt == "json":
        rows = ranked.reset_index().to_dict(orient="records")
        echo_json({"ranker": str(ranker), "model": fitted.name, "n": len(rows), "ranking": rows})
        return
    t = Table(title=f"{fitted.name} ranking ({len(ranked)} shown)")
    cols = ["rank", ranked.index.name, "score"] + [c for c in ("arch", "depth") if c in ranked]
    for c in cols:
        t.add_column(str(c), justify="right" if c in ("rank", "score", "depth") else "left")
    for idx, row in ranked.iterrows():
        cells = [str(row["rank"]), str(idx), fmt_num(row["score"])]
        cells += [str(row[c]) for c in ("arch", "depth") if c in ranked]
        t.add_row(*cells)
    Console(width=200).print(t)


COMMANDS = [vote, fit, score]
