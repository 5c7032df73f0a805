"""Cross-validated comparison of rankers: every model sees the same folds.

:func:`evaluate_models` splits the labelled architectures into ``folds`` folds, ``repeats``
times with different shuffles (:class:`sklearn.model_selection.RepeatedKFold`), fits every
model on the training part only (preprocessing and model selection included) and scores the
held-out fold with :func:`rankzc.ranking.metrics.ranking_metrics`. The same splits score the
baselines (best single proxy chosen on the training rows, depth, params, flops, and the best
encoding column when encodings are features). Each model is compared with each baseline by
the corrected resampled t-test of Nadeau and Bengio (2003) on the per-split Spearman values
(splits share training rows, so a plain paired test would be anti-conservative); the
headline comparison is with the strongest baseline.

**One fold engine.** :func:`run_folds` fits every ranker of a run (:func:`fold_rankers`:
the models, their no-proxy ablations and the baselines, which are rankers too:
:class:`~rankzc.ranking.single.SingleProxyRanker` for the best proxy and the best encoding
column, :class:`~rankzc.ranking.single.SignedColumnRanker` for depth, params and flops)
through the one fit/predict path, :func:`_fit_predict`, with each split's training rows,
and returns a long table (:class:`FoldRun`: one row per split and ranker, every metric).
:func:`evaluate_models` then summarises and compares from that table and writes the
result; a learning curve runs the same engine on each size's subsamples.

``cv="none"`` fits and scores on all architectures: optimistic, in-sample figures, labelled
as such (the study's WAM 0.766 is one). ``train_size=N`` trains on ``N`` architectures drawn
from each training part; a list of sizes adds a learning curve.

**What the proxies add.** When the features hold proxies, every model that learns from
labels is also fitted on the architecture features alone (encoding and graph features, no
proxy column) on the same splits and training subsamples; ``proxies_add`` is the per-split
difference (with proxies minus without) with its corrected interval, at every size of a
learning curve too. A label-free model (``rankagg``) reads proxies only and has none.

**Several comparisons.** Every p reported with others carries a Holm-adjusted ``p_holm``
(:func:`rankzc.stats.holm`): over every model-baseline comparison of the run, and over the
models' ``proxies_add``.

**The corrected test under ``train_size``: conservative.** Nadeau and Bengio's correction
:math:`n_{test}/n_{train}` models the correlation between splits whose training sets are
large, heavily overlapping parts of the data. A training subsample of ``N`` architectures
drawn from each fold barely overlaps those of the other splits, so the splits' estimates
are less correlated than the correction assumes, while the ratio (here
:math:`n_{test}/N`) grows as ``N`` shrinks: the interval is wider than needed and p larger
(at 50 labels on NAS-Bench-201 the standard error is several times the naive one). Read a
difference found significant there as real; a non-significant one may still be real.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import RepeatedKFold

from rankzc.errors import RankzcError, describe_error
from rankzc.jsonfile import jsonable
from rankzc.ranking.features import FeatureSet, feature_matrix
from rankzc.ranking.metrics import METRICS, POINTS, ranking_metrics
from rankzc.ranking.registry import RANKERS, make_ranker
from rankzc.ranking.single import SignedColumnRanker, SingleProxyRanker
from rankzc.stats import corrected_resampled_ttest, holm

__all__ = [
    "evaluate_models",
    "make_folds",
    "run_folds",
    "fold_rankers",
    "FoldRanker",
    "FoldRun",
    "check_label_spread",
    "BASELINES",
    "BASELINE_NAMES",
    "BASELINE_RANKERS",
]

#: trivial rules compared with every model when the data has them (sign from training rows)
BASELINES = ("depth", "params", "flops")
#: every baseline, in report order
BASELINE_NAMES = ("best proxy", *BASELINES, "best encoding column")


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


# ------------------------------------------------------------------ the fold engine
#: columns of the engine's long table (one row per split and ranker), in this order
TABLE_COLUMNS = (
    "split",
    "model",
    "kind",
    "train_size",
    "n_train",
    "n_test",
    *METRICS,
    "fit_seconds",
    "chosen",
)
#: what a ranker of the engine is: a model of the registry, the same model on the
#: architecture features alone (the no-proxy ablation), or a baseline
KINDS = ("model", "arch_only", "baseline")


def _best_proxy() -> SingleProxyRanker:
    return SingleProxyRanker()


#: baseline name -> a new, unfitted ranker. ``best proxy`` and ``best encoding column``
#: choose their column on the training rows (among the proxies, or the encoding columns);
#: ``depth``, ``params`` and ``flops`` take the one column they are given, with the sign of
#: its training Spearman. Fitted and scored by :func:`run_folds` like every model.
BASELINE_RANKERS: dict[str, Callable[[], Any]] = {
    "best proxy": _best_proxy,
    **{b: SignedColumnRanker for b in BASELINES},
    "best encoding column": _best_proxy,
}


def _new_ranker(name: str, params: dict):
    """A new, unfitted ranker: a baseline (:data:`BASELINE_RANKERS`) or a registry model."""
    if name in BASELINE_RANKERS:
        return BASELINE_RANKERS[name](**params)
    return make_ranker(name, **params)


def _fit_predict(name: str, params: dict, X_tr, y_tr, X_te) -> tuple[np.ndarray, float, Any]:
    """Fit a new ranker ``name`` on the training rows, score the test rows: the one
    fit/predict path of models, ablations and baselines. (predictions, fit seconds, the
    fitted ranker)."""
    start = time.perf_counter()
    model = _new_ranker(name, params).fit(X_tr, y_tr)
    seconds = time.perf_counter() - start
    return model.predict(X_te), seconds, model


@dataclass(frozen=True)
class FoldRanker:
    """One ranker of :func:`run_folds`.

    Attributes:
        name: a registry model or a :data:`BASELINE_RANKERS` name.
        kind: one of :data:`KINDS`.
        X: the features it reads (rows as the labels).
        params: constructor parameters.
        on_error: when a fit fails on a split: ``"fail"`` records the failure and skips the
            ranker on the later splits (a model), ``"nan"`` scores that split as NaN when
            the error is a :class:`RankzcError` (a baseline whose choice is impossible, e.g.
            training labels without spread), ``"raise"`` lets the error through.
        after: the name of a model whose failure also skips this ranker (an ablation).
        counted: whether its fits count in the progress (baselines do not).
    """

    name: str
    kind: str
    X: pd.DataFrame
    params: dict = field(default_factory=dict)
    on_error: str = "fail"
    after: str | None = None
    counted: bool = True


@dataclass
class FoldRun:
    """What :func:`run_folds` returns.

    Attributes:
        table: the long table, one row per split and ranker (:data:`TABLE_COLUMNS`;
            ``spearman`` is the held-out rho), splits in order.
        failed: ``(kind, name) -> (split index, reason)`` for the rankers that failed.
        oof: model name -> out-of-fold predictions of the first ``oof_splits`` splits (NaN
            elsewhere).
    """

    table: pd.DataFrame
    failed: dict[tuple[str, str], tuple[int, str]]
    oof: dict[str, np.ndarray]

    def rows(self, kind: str, name: str) -> pd.DataFrame:
        t = self.table
        return t[(t["kind"] == kind) & (t["model"] == name)]

    def error(self, kind: str, name: str, *, split: bool = True) -> str | None:
        """Why ``name`` failed (``"split N: reason"``), or None."""
        if (kind, name) not in self.failed:
            return None
        f, reason = self.failed[(kind, name)]
        return f"split {f + 1}: {reason}" if split else reason


def run_folds(
    rankers: Sequence[FoldRanker],
    y: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    train: Sequence[np.ndarray] | None = None,
    *,
    depth: np.ndarray | None = None,
    train_size: int | None = None,
    tick: Callable[[], None] = lambda: None,
    oof_splits: int = 0,
) -> FoldRun:
    """Fit every ranker on each split's training rows and score its test rows.

    ``splits`` are ``(train, test)`` index pairs (:func:`make_folds`); ``train`` replaces
    each split's training rows by a subsample of them (``train_size``), shared by every
    ranker. Every ranker, baselines included, goes through :func:`_fit_predict` with the
    training rows only: a choice made on a test row cannot happen here.
    """
    y = np.asarray(y, dtype=float)
    train = [tr for tr, _ in splits] if train is None else list(train)
    rows: list[dict] = []
    failed: dict[tuple[str, str], tuple[int, str]] = {}
    oof = {r.name: np.full(len(y), np.nan) for r in rankers if r.kind == "model"}
    for f, ((_, te), tr) in enumerate(zip(splits, train, strict=True)):
        for r in rankers:
            skip = (r.kind, r.name) in failed or ("model", r.after) in failed
            if not skip:
                try:
                    pred, seconds, model = _fit_predict(
                        r.name, r.params, r.X.iloc[tr], y[tr], r.X.iloc[te]
                    )
                except (KeyboardInterrupt, SystemExit, MemoryError):
                    raise
                except Exception as exc:  # noqa: BLE001 - one ranker must not stop the others
                    if r.on_error == "fail":
                        failed[(r.kind, r.name)] = (f, describe_error(exc))
                        skip = True
                    elif r.on_error == "nan" and isinstance(exc, RankzcError):
                        pred, seconds, model = np.full(len(te), np.nan), math.nan, None
                    else:
                        raise
            if r.counted:
                tick()
            if skip:
                continue
            chosen = getattr(model, "proxy_", "-") if model is not None else "-"
            rows.append(
                {
                    "split": f,
                    "model": r.name,
                    "kind": r.kind,
                    "train_size": train_size,
                    "n_train": len(tr),
                    "n_test": len(te),
                    **ranking_metrics(
                        pred, y[te], None if depth is None else depth[te], regret_scale=POINTS
                    ),
                    "fit_seconds": seconds,
                    "chosen": chosen,
                }
            )
            if r.kind == "model" and f < oof_splits:
                oof[r.name][te] = pred
    return FoldRun(pd.DataFrame(rows, columns=list(TABLE_COLUMNS)), failed, oof)


def fold_rankers(
    fs: FeatureSet,
    X: pd.DataFrame,
    models: Sequence[str],
    params: dict[str, dict],
    *,
    depth: np.ndarray | None = None,
    arch_X: pd.DataFrame | None = None,
    ablated: Sequence[str] = (),
    baselines: bool = True,
    on_error: str = "fail",
) -> list[FoldRanker]:
    """The rankers of one evaluation: every model, each ``ablated`` model again on
    ``arch_X`` (architecture features alone), and the baselines the data has (see
    :func:`evaluate_models`), in report order."""
    out = [FoldRanker(m, "model", X, params.get(m, {}), on_error) for m in models]
    if arch_X is not None:
        out += [
            FoldRanker(m, "arch_only", arch_X, params.get(m, {}), "fail", after=m) for m in ablated
        ]
    if not baselines:
        return out

    def baseline(name: str, data: pd.DataFrame) -> FoldRanker:
        return FoldRanker(name, "baseline", data, on_error="nan", counted=False)

    if fs.proxies:
        out.append(baseline("best proxy", X[list(fs.proxies)]))
    for b in BASELINES:
        if b == "depth" and depth is not None and np.isfinite(depth).any():
            out.append(baseline(b, pd.DataFrame({b: depth}, index=X.index)))
        elif b != "depth" and b in fs.proxies:
            out.append(baseline(b, X[[b]]))
    encoding_cols = [c for c in X.columns if c not in set(fs.proxies)]
    if fs.features in ("arch", "all") and encoding_cols:
        out.append(baseline("best encoding column", X[encoding_cols]))
    return out


# ------------------------------------------------------------------ summaries and tests
def _summary(rows: pd.DataFrame) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in METRICS:
        vals = rows[m].to_numpy(dtype=float)
        ok = vals[~np.isnan(vals)]
        out[f"{m}_mean"] = float(ok.mean()) if len(ok) else math.nan
        out[f"{m}_std"] = float(ok.std(ddof=1)) if len(ok) > 1 else (0.0 if len(ok) else math.nan)
    return out


def _baseline_summaries(run: FoldRun, rankers: Sequence[FoldRanker]) -> dict[str, dict]:
    """Every baseline's summary: metrics, per-split Spearman, and the columns chosen
    (best proxy / best encoding column) or its rule."""
    out: dict[str, dict] = {}
    for r in rankers:
        if r.kind != "baseline":
            continue
        rows = run.rows("baseline", r.name)
        entry = _summary(rows)
        entry["per_fold_spearman"] = rows["spearman"].astype(float).tolist()
        if r.name in BASELINES:
            entry["rule"] = f"{r.name}, sign chosen on the training rows"
        else:
            counts: dict[str, int] = {}
            for name in rows["chosen"]:  # in split order: ties keep the first chosen first
                counts[name] = counts.get(name, 0) + 1
            entry["chosen"] = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
        out[r.name] = entry
    return out


def _strongest(baselines: dict[str, dict]) -> str | None:
    """The baseline with the highest mean held-out Spearman (None without one)."""
    means = {b: e["spearman_mean"] for b, e in baselines.items() if np.isfinite(e["spearman_mean"])}
    return max(means, key=means.get) if means else None


def _ratio(splits, train) -> float:
    """Mean n_test / n_train over the splits (the corrected t-test's correlation term)."""
    return float(np.mean([len(te) / len(tr) for (_, te), tr in zip(splits, train, strict=True)]))


def _compare(rho: np.ndarray, ref: np.ndarray, ratio: float | None, name: str) -> dict[str, Any]:
    if ratio is None:  # in-sample: no valid test
        d = rho - ref
        return {
            "baseline": name,
            "mean_diff": float(np.nanmean(d)) if np.isfinite(d).any() else math.nan,
            "ci95": [math.nan, math.nan],
            "p_value": math.nan,
            "test": "none (in-sample figures)",
        }
    res = corrected_resampled_ttest(rho, ref, n_train=1.0, n_test=ratio)
    return {
        "baseline": name,
        "mean_diff": res["mean_diff"],
        "ci95": res["ci95"],
        "p_value": res["p_value"],
        "t": res["t"],
        "n_splits": res["n_splits"],
        "test": res["test"],
    }


def _proxies_add(rho: np.ndarray, arch: np.ndarray, ratio, features: str) -> dict:
    """What the proxies add to one model: per-split Spearman with them minus without."""
    arch = np.asarray(arch, dtype=float)
    comp = _compare(rho, arch, ratio, "architecture features alone")
    comp.pop("baseline", None)
    ok = arch[np.isfinite(arch)]
    return {
        "features": features,
        "compared": f"features {features} minus architecture features alone (no proxy)",
        "arch_only_spearman_mean": float(ok.mean()) if len(ok) else math.nan,
        "arch_only_spearman_std": float(ok.std(ddof=1)) if len(ok) > 1 else math.nan,
        "per_fold_spearman_arch_only": arch.tolist(),
        **comp,
    }


def _model_entries(
    run: FoldRun,
    models: Sequence[str],
    baselines: dict[str, dict],
    ratio: float | None,
    features: str,
) -> dict[str, dict]:
    """Every model's summary, its comparison with every baseline (the strongest one as
    ``vs_baseline``) and, when it was ablated, what the proxies add; Holm-adjusted p."""
    strongest = _strongest(baselines)
    out: dict[str, dict] = {}
    for m in models:
        if run.error("model", m) is not None:
            out[m] = {"failed": True, "error": run.error("model", m)}
            continue
        rows = run.rows("model", m)
        rho = rows["spearman"].to_numpy(dtype=float)
        entry: dict[str, Any] = _summary(rows)
        entry["fit_seconds_mean"] = float(np.mean(rows["fit_seconds"].to_numpy(dtype=float)))
        entry["per_fold_spearman"] = rho.tolist()
        comps = {
            b: _compare(rho, np.asarray(e["per_fold_spearman"], float), ratio, b)
            for b, e in baselines.items()
        }
        entry["compared_with"] = strongest
        entry["vs_baseline"] = comps.get(strongest) if strongest else None
        entry["comparisons"] = comps
        arch = run.rows("arch_only", m)
        if run.error("arch_only", m) is not None:
            entry["proxies_add"] = {"failed": True, "error": run.error("arch_only", m)}
        elif len(arch):
            entry["proxies_add"] = _proxies_add(
                rho, arch["spearman"].to_numpy(dtype=float), ratio, features
            )
        out[m] = entry
    _add_holm(out, "comparisons")
    _add_holm(out, "proxies_add")
    return out


def _as_feature_set(bench, features: str, epoch: int, proxies=None) -> FeatureSet:
    if isinstance(bench, FeatureSet):
        return bench
    if isinstance(bench, (str, Path)):
        from rankzc.store import Benchmark

        with Benchmark.open(bench, readonly=True) as b:
            return feature_matrix(b, features, epoch=epoch, proxies=proxies)
    return feature_matrix(bench, features, epoch=epoch, proxies=proxies)


def _architecture_only(bench, fs: FeatureSet, X: pd.DataFrame, epoch: int):
    """(architecture features alone, rows as ``X``; None and why when there are none).

    With ``features="all"`` they are the non-proxy columns of ``X``; with ``"proxies"``
    they are read from the store (encoding and graph features, ``features="all"`` less the
    proxies). Without a proxy column there is nothing to ablate.
    """
    if not fs.proxies:
        return None, "no proxy among the features"
    if fs.features == "all":
        cols = [c for c in X.columns if c not in set(fs.proxies)]
        if not cols:
            return None, "no architecture feature for this space"
        return X[cols], None
    if fs.features != "proxies":
        return None, f"features {fs.features!r} hold no proxy"
    if isinstance(bench, FeatureSet):
        return None, "architecture features unknown (a feature set was given, not a store)"
    try:
        full = _as_feature_set(bench, "all", epoch, fs.proxies)
    except RankzcError as exc:
        return None, str(exc)
    cols = [c for c in full.X.columns if c not in set(full.proxies)]
    if not cols:
        return None, "no architecture feature for this space"
    return full.X[cols].reindex(fs.X.index).reset_index(drop=True), None


def _learned(models: Sequence[str]) -> list[str]:
    """The models that learn from labels (a label-free model has no ablation)."""
    from rankzc.ranking.registry import ranker_class

    return [m for m in models if getattr(ranker_class(m), "needs_labels", True)]


def _add_holm(out_models: dict, key: str) -> None:
    """Holm-adjusted p (``p_holm``) over one family: the ``key`` comparison of every model
    (``"comparisons"``: every model against every baseline)."""
    family = []
    for e in out_models.values():
        if e.get("failed"):
            continue
        if key == "comparisons":
            family += [c for c in (e.get("comparisons") or {}).values() if c]
        elif e.get(key) and not e[key].get("failed"):
            family.append(e[key])
    adjusted = holm([c.get("p_value", math.nan) for c in family])
    for c, p in zip(family, adjusted, strict=True):
        c["p_holm"] = float(p)
        c["holm_family"] = len([f for f in family if np.isfinite(f.get("p_value", math.nan))])


# ------------------------------------------------------------------ evaluate_models
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
    proxies: Sequence[str] | None = None,
    ablation: bool = True,
) -> dict:
    """Compare ``models`` with honest baselines on the same cross-validation folds of ``bench``.

    Baselines, computed on every fold (:data:`BASELINE_NAMES`): ``best proxy`` (the proxy
    with the highest training ``|Spearman|``, chosen among proxies only), the trivial rules
    ``depth``, ``params`` and ``flops`` where the data has them (sign chosen on the training
    rows), and with ``features="arch"|"all"`` ``best encoding column`` (chosen on the
    training rows among the encoding columns). Every model is compared with every baseline
    by the corrected resampled t-test (:func:`rankzc.stats.corrected_resampled_ttest`) on
    the per-split Spearman values; its headline comparison is with the *strongest*
    baseline (highest mean held-out Spearman over the same splits).

    Three steps: :func:`run_folds` fits and scores every model, ablation and baseline on
    every split (a long table); the summaries and comparisons read that table; the
    result (and the report) is written from them.

    A model that cannot be fitted on a split (too few distinct labels, a library error) is
    reported as failed with its reason; the others go on.

    Args:
        bench: a :class:`rankzc.store.Benchmark`, a path to one, or a
            :class:`~rankzc.ranking.features.FeatureSet`.
        models: names from :data:`rankzc.ranking.RANKERS`.
        features: ``proxies``, ``arch`` or ``all``.
        folds, repeats, seed, cv: the splits (:func:`make_folds`).
        train_size: ``None`` (whole training part), ``N`` (or ``[N]``), or a list of
            several sizes for a learning curve (``models`` then holds whole-training-part
            results).
        report_dir: write ``report.md`` and PNG plots there.
        epoch: proxy epoch (-1 = at initialisation); every model, baseline and the report
            use the scores after this epoch.
        params: per-model constructor parameters, e.g. ``{"ranknet": {"epochs": 30}}``.
        progress: called as ``progress(done, total)`` after every fit.
        proxies: the proxy columns the models and the ``best proxy`` baseline read
            (default: every proxy with scores; ``params``/``flops`` baselines only when
            listed).
        ablation: when the features hold proxies, also fit every learned model on the
            architecture features alone on the same splits (and training subsamples) and
            report what the proxies add (``proxies_add``).

    Returns:
        JSON-able dict: ``models[m]`` has ``<metric>_mean``/``<metric>_std`` for every metric,
        ``fit_seconds_mean``, ``per_fold_spearman``, ``compared_with`` (the strongest
        baseline's name), ``vs_baseline`` {baseline, mean_diff, ci95, p_value, t, n_splits,
        test, p_holm} and ``comparisons`` (the same against every baseline; ``p_holm``
        is Holm-adjusted over every model-baseline comparison of the run) and, for a
        learned model when the features hold proxies, ``proxies_add``: {features,
        arch_only_spearman_mean/_std, per_fold_spearman_arch_only, mean_diff (with proxies
        minus without), ci95, p_value, p_holm (over the models), test} (``failed`` and
        ``error`` when the architecture-only fit fails); a failed model has
        ``failed: true`` and ``error``. ``cv_baselines`` holds the baselines' summaries
        (``chosen`` counts the columns picked by the chosen-on-training baselines),
        ``strongest_baseline`` its name; ``cv`` (kind, folds, repeats, optimistic,
        description, note); ``n_architectures``, ``features``, ``n_features``, ``epoch``,
        ``seconds``; ``learning_curve`` when ``train_size`` is a list.
    """
    start = time.perf_counter()
    models = list(dict.fromkeys(models))
    for m in models:
        if m not in RANKERS:
            raise RankzcError(f"unknown model {m!r}; choose from {', '.join(RANKERS)}")
    params = params or {}
    fs = _as_feature_set(bench, features, epoch, proxies)
    X = fs.X.reset_index(drop=True)
    y = fs.y.to_numpy(dtype=float)
    check_label_spread(y)
    depth = None if fs.depth is None else fs.depth.to_numpy(dtype=float)
    splits = make_folds(len(y), folds=folds, repeats=repeats, seed=seed, cv=cv)
    if isinstance(train_size, (list, tuple)) and len(train_size) == 1:
        train_size = int(train_size[0])
    sizes = list(train_size) if isinstance(train_size, (list, tuple)) else None
    main_size = None if sizes is not None else train_size
    rng = np.random.default_rng(seed)
    # draw every fold's subsample once, so that all models and baselines share it
    sub = [_subsample(tr, main_size, rng) for tr, _ in splits]
    arch_X, no_ablation = (
        _architecture_only(bench, fs, X, epoch) if ablation else (None, "not asked")
    )
    ablated = _learned(models) if arch_X is not None else []

    # ---- 1. the fold engine: every model, ablation and baseline on the same splits
    rankers = fold_rankers(fs, X, models, params, depth=depth, arch_X=arch_X, ablated=ablated)
    total_fits = len(splits) * (len(models) + len(ablated)) * (1 + len(sizes or ()))
    tick = _ticker(progress, total_fits)
    run = run_folds(
        rankers,
        y,
        splits,
        sub,
        depth=depth,
        train_size=main_size,
        tick=tick,
        oof_splits=len(splits) if cv == "none" else folds,
    )

    # ---- 2. summaries and comparisons, from the long table
    ratio = None if cv == "none" else _ratio(splits, sub)
    baselines = _baseline_summaries(run, rankers)
    out_models = _model_entries(run, models, baselines, ratio, fs.features)
    result = _result(
        out_models,
        baselines,
        ratio=ratio,
        cv=cv,
        folds=folds,
        repeats=repeats,
        seed=seed,
        main_size=main_size,
        sizes=sizes,
        arch_X=arch_X,
        ablated=ablated,
        no_ablation=no_ablation,
        n=len(y),
        fs=fs,
        n_features=int(X.shape[1]),
        epoch=epoch,
    )
    if sizes is not None:
        ok = [m for m in models if ("model", m) not in run.failed]
        result["learning_curve"] = _learning_curve(
            ok,
            params,
            X,
            y,
            depth,
            splits,
            sizes,
            seed,
            tick,
            arch_X=arch_X,
            ablated=[m for m in ablated if m in ok and ("arch_only", m) not in run.failed],
            features=fs.features,
        )

    # ---- 3. the report
    result["seconds"] = time.perf_counter() - start
    if report_dir is not None:
        from rankzc.ranking.report import write_report

        result["report"] = str(write_report(report_dir, result, fs, run.oof, bench=bench))
    return jsonable(result)


def _result(
    out_models: dict,
    baselines: dict,
    *,
    ratio: float | None,
    cv: str,
    folds: int,
    repeats: int,
    seed: int,
    main_size: int | None,
    sizes: list | None,
    arch_X: pd.DataFrame | None,
    ablated: Sequence[str],
    no_ablation: str | None,
    n: int,
    fs: FeatureSet,
    n_features: int,
    epoch: int,
) -> dict[str, Any]:
    """The result of :func:`evaluate_models` (less the learning curve, seconds and report)."""
    nb = "Nadeau & Bengio 2003"
    return {
        "models": out_models,
        "cv_baselines": baselines,
        "strongest_baseline": _strongest(baselines),
        "units": "regret_top1 in accuracy points (100 x the label's fraction)",
        "test": (
            "none (in-sample figures)"
            if cv == "none"
            else f"corrected resampled t-test ({nb}; n_test/n_train = {ratio:.3f})"
            + ("" if main_size is None else "; conservative for barely-overlapping subsamples")
        ),
        "comparison": (
            "difference in held-out Spearman, model minus baseline, on the same splits; "
            + (
                "no test: in-sample figures"
                if cv == "none"
                else "95% interval and p from the corrected resampled t-test "
                f"({nb}; n_test/n_train = {ratio:.3f})"
            )
        ),
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
                "and baseline sees the same folds; preprocessing and every choice fitted "
                "on training folds only"
                + (
                    ""
                    if main_size is None and sizes is None
                    else "; with training subsamples the corrected t-test is conservative "
                    "(subsamples barely overlap, so the splits are less correlated than "
                    "n_test/n_train assumes: intervals wider than needed)"
                )
            ),
        },
        "ablation": (
            {
                "models": list(ablated),
                "architecture_features": int(arch_X.shape[1]),
                "note": "every learned model also fitted on the architecture features "
                "alone, on the same splits; proxies_add = with proxies minus without",
            }
            if arch_X is not None
            else {"models": [], "note": f"no ablation: {no_ablation}"}
        ),
        "n_architectures": n,
        "features": fs.features,
        "n_features": n_features,
        "epoch": epoch,
    }


def check_label_spread(y: np.ndarray) -> None:
    """Refuse labels that cannot rank anything: fewer than 2 finite or all equal."""
    y = np.asarray(y, dtype=float)
    y = y[np.isfinite(y)]
    if len(y) < 2:
        raise RankzcError(f"need at least 2 labelled architectures, got {len(y)}")
    if y.min() == y.max():
        raise RankzcError(
            f"labels have no spread: all {len(y)} architectures have val_acc = {y[0]:g}"
        )


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
    models,
    params,
    X,
    y,
    depth,
    splits,
    sizes,
    seed,
    tick=lambda: None,
    *,
    arch_X: pd.DataFrame | None = None,
    ablated: Sequence[str] = (),
    features: str = "proxies",
) -> dict[str, list[dict]]:
    """Held-out Spearman at each training size (the fold engine on each size's
    subsamples); a model in ``ablated`` is also fitted on ``arch_X`` (architecture
    features alone) on the same subsamples, and its point gets ``proxies_add`` (with minus
    without, corrected interval at that size's ratio). A model failing here stops the
    evaluation (it was fitted on every whole training part already)."""
    rng = np.random.default_rng(seed + 1)
    curve: dict[str, list[dict]] = {m: [] for m in models}
    rankers = [FoldRanker(m, "model", X, params.get(m, {}), "raise") for m in models]
    if arch_X is not None:
        rankers += [
            FoldRanker(m, "arch_only", arch_X, params.get(m, {}), "fail", after=m) for m in ablated
        ]
    for size in sorted(int(s) for s in sizes):
        subs = [_subsample(tr, size, rng) for tr, _ in splits]
        ratio = _ratio(splits, subs)
        run = run_folds(rankers, y, splits, subs, depth=depth, train_size=size, tick=tick)
        for m in models:
            rows = run.rows("model", m)
            s = _summary(rows)
            point: dict[str, Any] = {
                "train_size": size,
                "spearman_mean": s["spearman_mean"],
                "spearman_std": s["spearman_std"],
            }
            if m in ablated and arch_X is not None:
                if run.error("arch_only", m) is not None:
                    error = run.error("arch_only", m, split=False)
                    point["proxies_add"] = {"failed": True, "error": error}
                else:
                    rho = rows["spearman"].to_numpy(dtype=float)
                    arch = run.rows("arch_only", m)["spearman"].to_numpy(dtype=float)
                    point["proxies_add"] = _proxies_add(rho, arch, ratio, features)
            curve[m].append(point)
    return curve


def _num(v, fmt: str = ".3f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def comparison_text(test: dict | None) -> tuple[str, str, str]:
    """(baseline, "diff [lo, hi]", p) cells of one comparison, "-" where absent."""
    if not test:
        return "-", "-", "-"
    lo, hi = test.get("ci95") or [None, None]
    diff = f"{_num(test.get('mean_diff'), '+.3f')} [{_num(lo, '+.3f')}, {_num(hi, '+.3f')}]"
    return str(test.get("baseline", "-")), diff, _num(test.get("p_value"), ".2g")


def results_table(result: dict) -> pd.DataFrame:
    """One row per model (and baseline): mean ± std of the metrics; for a model, the
    baseline it is compared with, the mean Spearman difference with its corrected 95%
    interval, and p (a failed model shows its reason)."""
    recs = []
    for kind, group in (
        ("model", result["models"]),
        ("baseline", result.get("cv_baselines", {})),
    ):
        for name, e in group.items():
            rec: dict[str, Any] = {"name": name, "kind": kind}
            if e.get("failed"):
                rec.update({m: "-" for m in METRICS})
                rec.update(vs="-", diff=f"failed: {e.get('error')}", p="-")
                recs.append(rec)
                continue
            for m in METRICS:
                mu, sd = e.get(f"{m}_mean"), e.get(f"{m}_std")
                rec[m] = "-" if mu is None else f"{mu:.3f}±{(sd or 0):.3f}"
            vs, diff, p = comparison_text(e.get("vs_baseline") if kind == "model" else None)
            rec.update(vs=vs, diff=diff, p=p)
            recs.append(rec)
    return pd.DataFrame(recs).set_index("name")
