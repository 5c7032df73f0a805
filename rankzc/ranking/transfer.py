r"""Transfer: fit a ranker on one benchmark (A), rank another (B) with no labels from B.

* **Alignment by name.** Only proxies both benchmarks hold are used; a proxy missing on one
  side is dropped with a warning naming it; no proxy in common is a one-line error. With
  ``arch``/``graph``/``all`` features, encoding and graph columns are aligned by name too
  (graph features such as ``g_path_max`` or ``g_n_paths`` exist in every space; op counts
  only where the spaces share operations).
* **Per-benchmark rank normalisation.** Every proxy column is replaced by its normalised
  rank within its own benchmark (:func:`rank_normalise`: average rank of ties, divided by the
  number of finite values, in :math:`(0, 1]`), so a proxy's scale on A (e.g. ``synflow``
  spans 30 decades on one space and 3 on another) does not matter on B; only orders do.
* **Report.** Spearman (and the other ranking metrics) on B for every model fitted on A,
  beside B's own best single proxy (chosen *with B's labels*: an optimistic reference no
  transfer can use) and beside ``rankagg`` fitted on B without labels (the label-free
  alternative to transfer).

:func:`transfer_evaluate` does all this; ``rankzc evaluate -b A.db --transfer-to B.db`` prints
it. ``rankzc fit --transfer-to B.db`` aligns and rank-normalises the same way and records it
in the ranker file, so that ``rankzc score --benchmark B.db`` ranks B's architectures.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rankzc.errors import RankzcError
from rankzc.jsonfile import jsonable
from rankzc.ranking.features import FeatureSet, feature_matrix, is_proxy_column

__all__ = ["rank_normalise", "align_columns", "transfer_evaluate"]


def rank_normalise(X: pd.DataFrame) -> pd.DataFrame:
    """Every proxy column replaced by ``rank / n`` within the column (ties averaged, NaN
    kept); architecture-encoding and graph columns (same units in every benchmark of a
    space, and read back as graphs by ``gnn``) are left as they are."""
    cols = [c for c in X.columns if is_proxy_column(c)]
    out = X.copy()
    if cols:
        part = X[cols].astype(float)
        counts = part.notna().sum(axis=0).replace(0, 1)
        out[cols] = part.rank(axis=0, method="average", na_option="keep") / counts
    return out


def align_columns(
    train_cols: Sequence[str],
    test_cols: Sequence[str],
    *,
    train_name: str = "A",
    test_name: str = "B",
) -> list[str]:
    """Columns of ``train_cols`` that ``test_cols`` also has, in training order.

    Proxies on one side only are dropped with a warning naming them; no proxy in common (when
    the training side has proxies) raises :class:`RankzcError` in one line.
    """
    test_set = set(test_cols)
    train_set = set(train_cols)
    common = [c for c in train_cols if c in test_set]
    p_train = [c for c in train_cols if is_proxy_column(c)]
    p_test = [c for c in test_cols if is_proxy_column(c)]
    p_common = [c for c in p_train if c in test_set]
    if p_train and not p_common:
        raise RankzcError(
            f"transfer: {train_name} and {test_name} share no proxy "
            f"({train_name}: {', '.join(p_train[:6])}{' ...' if len(p_train) > 6 else ''}; "
            f"{test_name}: {', '.join(p_test[:6]) or 'none'}{' ...' if len(p_test) > 6 else ''})"
        )
    only_a = [c for c in p_train if c not in test_set]
    only_b = [c for c in p_test if c not in train_set]
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"only in {train_name}: {', '.join(only_a)}")
        if only_b:
            parts.append(f"only in {test_name}: {', '.join(only_b)}")
        warnings.warn(f"transfer: proxies dropped ({'; '.join(parts)})", RuntimeWarning, 2)
    if not common:
        raise RankzcError(f"transfer: {train_name} and {test_name} share no feature column")
    return common


def _feature_set(bench, features: str, epoch: int) -> tuple[FeatureSet, str]:
    if isinstance(bench, FeatureSet):
        return bench, bench.space
    from rankzc.store import Benchmark

    with Benchmark.open(bench, readonly=True) as b:
        return feature_matrix(b, features, epoch=epoch), str(b.path)


def transfer_evaluate(
    train: str | Path | FeatureSet,
    test: str | Path | FeatureSet,
    models: Sequence[str],
    *,
    features: str = "proxies",
    epoch: int = -1,
    params: dict[str, dict] | None = None,
) -> dict:
    """Fit every model on ``train`` (A), score ``test`` (B); see the module docstring.

    Returns a JSON-able dict: ``models[m]`` holds the ranking metrics on B and
    ``fit_seconds`` (or ``error``, a one-line reason when the model cannot transfer, e.g.
    ``gnn`` between spaces with different operations); ``reference`` holds B's best single
    proxy (chosen with B's labels) and ``rankagg`` fitted on B without labels;
    ``proxies`` the aligned proxies, ``dropped`` those left out.
    """
    from rankzc.ranking.metrics import POINTS, ranking_metrics
    from rankzc.ranking.preprocessing import spearman_columns
    from rankzc.ranking.registry import RANKERS, make_ranker

    start = time.perf_counter()
    for m in models:
        if m not in RANKERS:
            raise RankzcError(f"unknown model {m!r}; choose from {', '.join(RANKERS)}")
    params = params or {}
    fa, name_a = _feature_set(train, features, epoch)
    fb, name_b = _feature_set(test, features, epoch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cols = align_columns(list(fa.X.columns), list(fb.X.columns))
    notes = [str(w.message) for w in caught]
    for note in notes:
        warnings.warn(note, RuntimeWarning, 2)
    XA = rank_normalise(fa.X[cols]).reset_index(drop=True)
    XB = rank_normalise(fb.X[cols]).reset_index(drop=True)
    yA = fa.y.to_numpy(dtype=float)
    yB = fb.y.to_numpy(dtype=float)
    depth = None if fb.depth is None else fb.depth.to_numpy(dtype=float)

    out_models: dict[str, dict] = {}
    for m in models:
        t0 = time.perf_counter()
        try:
            est = make_ranker(m, **params.get(m, {})).fit(XA, yA)
            seconds = time.perf_counter() - t0
            entry = ranking_metrics(est.predict(XB), yB, depth, regret_scale=POINTS)
            entry["fit_seconds"] = seconds
            if m == "single":
                entry["proxy"] = est.proxy_
        except RankzcError as err:
            entry = {"error": str(err).splitlines()[0]}
        out_models[m] = entry

    proxies_b = [c for c in fb.X.columns if is_proxy_column(c)]
    reference: dict[str, dict] = {}
    if proxies_b:
        XBp = fb.X[proxies_b].to_numpy(dtype=float)
        rho = spearman_columns(XBp, yB)
        if np.isfinite(rho).any():
            k = int(np.nanargmax(np.abs(rho)))
            col = np.sign(rho[k]) * XBp[:, k]
            ok = np.isfinite(col)
            best = ranking_metrics(
                col[ok], yB[ok], None if depth is None else depth[ok], regret_scale=POINTS
            )
            best["proxy"] = proxies_b[k]
            best["note"] = "chosen with B's labels (optimistic)"
            reference["best_single_proxy"] = best
        ra = make_ranker("rankagg").fit(fb.X[proxies_b])
        agg = ranking_metrics(ra.predict(fb.X[proxies_b]), yB, depth, regret_scale=POINTS)
        agg["proxies"] = ra.proxies_
        agg["note"] = "fitted on B without labels"
        reference["rankagg"] = agg
    result = {
        "train": {"benchmark": name_a, "space": fa.space, "n_architectures": len(yA)},
        "test": {"benchmark": name_b, "space": fb.space, "n_architectures": len(yB)},
        "features": features,
        "columns": len(cols),
        "proxies": [c for c in cols if is_proxy_column(c)],
        "dropped": notes,
        "normalisation": "per-benchmark normalised rank of every proxy",
        "models": out_models,
        "reference": reference,
        "seconds": time.perf_counter() - start,
    }
    return jsonable(result)


def run_transfer_command(
    train_db: Path | None,
    test_db: Path | None,
    models: Sequence[str],
    features: str,
    epoch: int,
    fmt: str,
) -> None:
    """``rankzc evaluate -b A.db --transfer-to B.db``: print :func:`transfer_evaluate`."""
    import click
    from rich.console import Console
    from rich.table import Table

    from rankzc.commands._common import echo_json, fmt_num

    if train_db is None or test_db is None:
        raise RankzcError("transfer needs --benchmark A.db and --transfer-to B.db")
    from rankzc.store import store_file

    for p in (train_db, test_db):
        if not store_file(p).exists():  # STORE#HASH too
            raise RankzcError(f"{p}: benchmark store not found")
    models = list(models) or ["single", "wam", "lambdarank"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = transfer_evaluate(train_db, test_db, models, features=features, epoch=epoch)
    for w in caught:
        if issubclass(w.category, RuntimeWarning):
            click.echo(f"Warning: {w.message}", err=True)
    if fmt == "json":
        echo_json(result)
        return
    if fmt == "csv":
        from rankzc.commands._common import echo_csv

        echo_csv(
            [{"kind": "model", "name": n, **r} for n, r in result["models"].items()]
            + [{"kind": "reference", "name": n, **r} for n, r in result["reference"].items()]
        )
        return
    t = Table(
        title=f"Transfer: fit on {result['train']['benchmark']} ({result['train']['space']}), "
        f"rank {result['test']['benchmark']} ({result['test']['space']}); "
        f"{len(result['proxies'])} shared proxies, per-benchmark ranks"
    )
    for col in ("model", "spearman on B", "kendall", "top-10% prec", "within-depth", "note"):
        t.add_column(col, justify="left" if col in ("model", "note") else "right")
    for name, r in result["models"].items():
        if "error" in r:
            t.add_row(name, "-", "-", "-", "-", r["error"])
            continue
        note = f"fit on A in {r['fit_seconds']:.2f} s" + (
            f"; proxy {r['proxy']}" if "proxy" in r else ""
        )
        t.add_row(
            name,
            fmt_num(r["spearman"], 3),
            fmt_num(r["kendall"], 3),
            fmt_num(r["top10pct_precision"], 3),
            fmt_num(r["within_depth_spearman"], 3),
            note,
        )
    for name, r in result["reference"].items():
        note = r["note"] + (f"; {r['proxy']}" if "proxy" in r else "")
        t.add_row(
            f"B: {name}",
            fmt_num(r["spearman"], 3),
            fmt_num(r["kendall"], 3),
            fmt_num(r["top10pct_precision"], 3),
            fmt_num(r["within_depth_spearman"], 3),
            note,
        )
    Console(width=max(Console().width, 132)).print(t)
