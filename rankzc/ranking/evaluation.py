"""Cross-validated comparison of rankers: every model sees the same folds.

:func:`evaluate_models` splits the labelled architectures into ``folds`` folds, ``repeats``
times with different shuffles (:class:`sklearn.model_selection.RepeatedKFold`), fits every
model on the training part only (preprocessing and model selection included) and scores the
held-out fold with :func:`rankzc.ranking.metrics.ranking_metrics`. Each model is compared with
``single`` (the best training proxy) by a Wilcoxon signed-rank test over the per-fold Spearman
values; folds of one repeat share training rows, so the p-value is approximate.

``cv="none"`` fits and scores on all architectures: optimistic, in-sample figures, labelled
as such (the study's WAM 0.766 is one). ``train_size=N`` trains on ``N`` architectures drawn
from each training part; a list of sizes adds a learning curve.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import RepeatedKFold

from rankzc.errors import RankzcError
from rankzc.ranking.features import FeatureSet, feature_matrix
from rankzc.ranking.metrics import METRICS, ranking_metrics
from rankzc.ranking.registry import RANKERS, make_ranker

__all__ = ["evaluate_models", "make_folds", "BASELINES"]

#: fixed rules shown beside every result when the data has them (no fitting: sign +1)
BASELINES = ("depth", "params", "flops")


def make_folds(
    n: int, *, folds: int = 5, repeats: int = 3, seed: int = 0, cv: str = "kfold"
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index arrays; ``cv="none"`` gives one split with train = test = all."""
    if cv == "none":
        idx = np.arange(n)
        return [(idx, idx)]
    if cv != "kfold":
        raise RankzcError(f"cv must be 'kfold' or 'none', got {cv!r}")
    if not 2 <= folds <= n:
        raise RankzcError(f"folds must be in 2..{n} (architectures), got {folds}")
    if repeats < 1:
        raise RankzcError(f"repeats must be >= 1, got {repeats}")
    rkf = RepeatedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    return [(np.asarray(tr), np.asarray(te)) for tr, te in rkf.split(np.zeros(n))]


def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if math.isnan(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def _summary(rows: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in METRICS:
        vals = np.array([r[m] for r in rows], dtype=float)
        ok = vals[~np.isnan(vals)]
        out[f"{m}_mean"] = float(ok.mean()) if len(ok) else math.nan
        out[f"{m}_std"] = float(ok.std(ddof=1)) if len(ok) > 1 else (0.0 if len(ok) else math.nan)
    return out


def _paired(a: np.ndarray, b: np.ndarray) -> dict[str, float | None]:
    from scipy.stats import wilcoxon

    d = np.asarray(a, float) - np.asarray(b, float)
    d = d[~np.isnan(d)]
    if len(d) == 0:
        return {"statistic": None, "p_value": None, "n": 0}
    if np.all(d == 0):
        return {"statistic": 0.0, "p_value": 1.0, "n": int(len(d))}
    res = wilcoxon(d)
    return {"statistic": float(res.statistic), "p_value": float(res.pvalue), "n": int(len(d))}


def _fit_predict(name: str, params: dict, X_tr, y_tr, X_te) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    model = make_ranker(name, **params).fit(X_tr, y_tr)
    seconds = time.perf_counter() - start
    return model.predict(X_te), seconds


def _as_feature_set(bench, features: str, epoch: int) -> FeatureSet:
    if isinstance(bench, FeatureSet):
        return bench
    if isinstance(bench, (str, Path)):
        from rankzc.store import Benchmark

        with Benchmark.open(bench, readonly=True) as b:
            return feature_matrix(b, features, epoch=epoch)
    return feature_matrix(bench, features, epoch=epoch)


def evaluate_models(
    bench,
    models: Sequence[str],
    *,
    features: str = "proxies",
    folds: int = 5,
    repeats: int = 3,
    seed: int = 0,
    train_size: int | Sequence[int] | None = None,
    cv: str = "kfold",
    report_dir: str | Path | None = None,
    epoch: int = -1,
    params: dict[str, dict] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Compare ``models`` on the same cross-validation folds of ``bench``.

    Args:
        bench: a :class:`rankzc.store.Benchmark`, a path to one, or a
            :class:`~rankzc.ranking.features.FeatureSet`.
        models: names from :data:`rankzc.ranking.RANKERS`; ``single`` is added when absent
            (the paired tests need it).
        features: ``proxies``, ``arch`` or ``all``.
        folds, repeats, seed, cv: the splits (:func:`make_folds`).
        train_size: ``None`` (whole training part), ``N`` (or ``[N]``), or a list of
            several sizes for a learning curve (``models`` then holds whole-training-part
            results).
        report_dir: write ``report.md`` and PNG plots there.
        epoch: proxy epoch (-1 = at initialisation).
        params: per-model constructor parameters, e.g. ``{"ranknet": {"epochs": 30}}``.
        progress: called as ``progress(done, total)`` after every fit.

    Returns:
        JSON-able dict: ``models[m]`` has ``<metric>_mean``/``<metric>_std`` for every metric,
        ``fit_seconds_mean``, ``paired_test_vs_single`` {statistic, p_value, n} and
        ``per_fold_spearman``; ``cv_baselines`` (depth, params, flops as fixed rules on the
        same test folds); ``cv`` (kind, folds, repeats, optimistic, description, note);
        ``n_architectures``, ``features``, ``n_features``, ``seconds``; ``learning_curve``
        when ``train_size`` is a list.
    """
    start = time.perf_counter()
    models = list(dict.fromkeys(models))
    for m in models:
        if m not in RANKERS:
            raise RankzcError(f"unknown model {m!r}; choose from {', '.join(RANKERS)}")
    if "single" not in models:
        models = ["single", *models]
    params = params or {}
    fs = _as_feature_set(bench, features, epoch)
    X = fs.X.reset_index(drop=True)
    y = fs.y.to_numpy(dtype=float)
    depth = None if fs.depth is None else fs.depth.to_numpy(dtype=float)
    n = len(y)
    splits = make_folds(n, folds=folds, repeats=repeats, seed=seed, cv=cv)
    if isinstance(train_size, (list, tuple)) and len(train_size) == 1:
        train_size = int(train_size[0])
    sizes = list(train_size) if isinstance(train_size, (list, tuple)) else None
    main_size = None if sizes is not None else train_size
    rng = np.random.default_rng(seed)
    # draw every fold's subsample once, so that all models share it
    sub = [_subsample(tr, main_size, rng) for tr, _ in splits]

    rows: dict[str, list[dict]] = {m: [] for m in models}
    secs: dict[str, list[float]] = {m: [] for m in models}
    oof = {m: np.full(n, np.nan) for m in models}
    n_per_repeat = len(splits) if cv == "none" else folds
    total_fits = len(splits) * len(models) * (1 + len(sizes or ()))
    tick = _ticker(progress, total_fits)
    for f, ((_, te), tr) in enumerate(zip(splits, sub, strict=True)):
        for m in models:
            pred, s = _fit_predict(m, params.get(m, {}), X.iloc[tr], y[tr], X.iloc[te])
            tick()
            rows[m].append(ranking_metrics(pred, y[te], None if depth is None else depth[te]))
            secs[m].append(s)
            if f < n_per_repeat:
                oof[m][te] = pred
    out_models = {}
    for m in models:
        rho = np.array([r["spearman"] for r in rows[m]])
        entry = _summary(rows[m])
        entry["fit_seconds_mean"] = float(np.mean(secs[m]))
        entry["per_fold_spearman"] = rho.tolist()
        ref = np.array([r["spearman"] for r in rows["single"]])
        entry["paired_test_vs_single"] = (
            {"statistic": None, "p_value": None, "n": 0} if m == "single" else _paired(rho, ref)
        )
        out_models[m] = entry

    baselines = {}
    for b in BASELINES:
        col = (
            depth
            if b == "depth" and depth is not None
            else (X[b].to_numpy(float) if b in fs.proxies else None)
        )
        if col is None:
            continue
        brows = []
        for _, te in splits:
            ok = ~np.isnan(col[te])
            brows.append(
                ranking_metrics(col[te][ok], y[te][ok], None if depth is None else depth[te][ok])
            )
        baselines[b] = _summary(brows)

    result: dict[str, Any] = {
        "models": out_models,
        "cv_baselines": baselines,
        "cv": {
            "kind": cv,
            "folds": 1 if cv == "none" else folds,
            "repeats": 1 if cv == "none" else repeats,
            "seed": seed,
            "train_size": main_size,
            "optimistic": cv == "none",
            "description": (
                "in-sample, optimistic"
                if cv == "none"
                else f"{folds}-fold CV x {repeats}"
                + ("" if main_size is None else f", train on {main_size}")
            ),
            "note": (
                "in-sample: trained and scored on the same architectures (optimistic)"
                if cv == "none"
                else f"{folds}-fold cross-validation repeated {repeats} times; every model "
                "sees the same folds; preprocessing fitted on training folds only"
            ),
        },
        "n_architectures": n,
        "features": fs.features,
        "n_features": int(X.shape[1]),
    }
    if sizes is not None:
        result["learning_curve"] = _learning_curve(
            models, params, X, y, depth, splits, sizes, seed, tick
        )
    result["seconds"] = time.perf_counter() - start
    if report_dir is not None:
        from rankzc.ranking.report import write_report

        result["report"] = str(write_report(report_dir, result, fs, oof, bench=bench))
    return _clean(result)


def _subsample(tr: np.ndarray, size: int | None, rng: np.random.Generator) -> np.ndarray:
    if size is None:
        return tr
    if size < 2:
        raise RankzcError(f"train_size must be >= 2, got {size}")
    if size > len(tr):
        raise RankzcError(
            f"train_size {size} exceeds the {len(tr)} architectures of a training fold"
        )
    return np.sort(rng.choice(tr, size=size, replace=False))


def _ticker(progress: Callable[[int, int], None] | None, total: int) -> Callable[[], None]:
    """A function counting fits and passing ``(done, total)`` to ``progress``."""
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    return tick


def _learning_curve(
    models, params, X, y, depth, splits, sizes, seed, tick=lambda: None
) -> dict[str, list[dict]]:
    rng = np.random.default_rng(seed + 1)
    curve: dict[str, list[dict]] = {m: [] for m in models}
    for size in sorted(int(s) for s in sizes):
        subs = [_subsample(tr, size, rng) for tr, _ in splits]
        for m in models:
            rows = []
            for (_, te), tr in zip(splits, subs, strict=True):
                pred, _ = _fit_predict(m, params.get(m, {}), X.iloc[tr], y[tr], X.iloc[te])
                tick()
                rows.append(ranking_metrics(pred, y[te], None if depth is None else depth[te]))
            s = _summary(rows)
            curve[m].append(
                {
                    "train_size": size,
                    "spearman_mean": s["spearman_mean"],
                    "spearman_std": s["spearman_std"],
                }
            )
    return curve


def results_table(result: dict) -> pd.DataFrame:
    """One row per model (and baseline): mean ± std of the metrics, p-value vs single."""
    recs = []
    for kind, group in (
        ("model", result["models"]),
        ("baseline", result.get("cv_baselines", {})),
    ):
        for name, e in group.items():
            rec = {"name": name, "kind": kind}
            for m in METRICS:
                mu, sd = e.get(f"{m}_mean"), e.get(f"{m}_std")
                rec[m] = "-" if mu is None else f"{mu:.3f}±{(sd or 0):.3f}"
            p = e.get("paired_test_vs_single", {}).get("p_value") if kind == "model" else None
            rec["p_vs_single"] = "-" if p is None else f"{p:.2g}"
            recs.append(rec)
    return pd.DataFrame(recs).set_index("name")
