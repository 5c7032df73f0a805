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
from rankzc.ranking.single import SingleProxyRanker
from rankzc.stats import corrected_resampled_ttest, holm, spearman

__all__ = ["evaluate_models", "make_folds", "check_label_spread", "BASELINES", "BASELINE_NAMES"]

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


def _summary(rows: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in METRICS:
        vals = np.array([r[m] for r in rows], dtype=float)
        ok = vals[~np.isnan(vals)]
        out[f"{m}_mean"] = float(ok.mean()) if len(ok) else math.nan
        out[f"{m}_std"] = float(ok.std(ddof=1)) if len(ok) > 1 else (0.0 if len(ok) else math.nan)
    return out


def _guarded_fit(name, params, X, y, tr, te, failed: dict, split: int):
    """:func:`_fit_predict` on one split, or None after recording the failure in
    ``failed`` (one model, or the ablation, must not stop the others)."""
    try:
        return _fit_predict(name, params, X.iloc[tr], y[tr], X.iloc[te])
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001
        failed[name] = f"split {split + 1}: {describe_error(exc)}"
        return None


def _fit_predict(name: str, params: dict, X_tr, y_tr, X_te) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    model = make_ranker(name, **params).fit(X_tr, y_tr)
    seconds = time.perf_counter() - start
    return model.predict(X_te), seconds


def _as_feature_set(bench, features: str, epoch: int, proxies=None) -> FeatureSet:
    if isinstance(bench, FeatureSet):
        return bench
    if isinstance(bench, (str, Path)):
        from rankzc.store import Benchmark

        with Benchmark.open(bench, readonly=True) as b:
            return feature_matrix(b, features, epoch=epoch, proxies=proxies)
    return feature_matrix(bench, features, epoch=epoch, proxies=proxies)


def _baseline_columns(fs: FeatureSet, X: pd.DataFrame, depth: np.ndarray | None) -> dict:
    """Trivial baselines the data has: name -> column (depth, then params and flops)."""
    out: dict[str, np.ndarray] = {}
    for b in BASELINES:
        if b == "depth" and depth is not None and np.isfinite(depth).any():
            out[b] = depth
        elif b != "depth" and b in fs.proxies:
            out[b] = X[b].to_numpy(float)
    return out


def _oriented(col: np.ndarray, tr: np.ndarray, te: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``col`` on the test rows, negated when its training Spearman with ``y`` is negative."""
    rho = spearman(col[tr], y[tr])
    return -col[te] if rho < 0 else col[te]


def _best_column(X: pd.DataFrame, cols: list[str], tr, te, y) -> tuple[np.ndarray, str]:
    """The best single column among ``cols`` chosen on the training rows, scored on the test rows."""
    try:
        model = SingleProxyRanker().fit(X.iloc[tr][cols], y[tr])
    except RankzcError:
        return np.full(len(te), np.nan), "-"
    return model.predict(X.iloc[te][cols]), model.proxy_


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
    n = len(y)
    splits = make_folds(n, folds=folds, repeats=repeats, seed=seed, cv=cv)
    if isinstance(train_size, (list, tuple)) and len(train_size) == 1:
        train_size = int(train_size[0])
    sizes = list(train_size) if isinstance(train_size, (list, tuple)) else None
    main_size = None if sizes is not None else train_size
    rng = np.random.default_rng(seed)
    # draw every fold's subsample once, so that all models share it
    sub = [_subsample(tr, main_size, rng) for tr, _ in splits]
    dep = (lambda te: None) if depth is None else (lambda te: depth[te])

    # ---- baselines on the same splits
    trivial = _baseline_columns(fs, X, depth)
    encoding_cols = [c for c in X.columns if c not in set(fs.proxies)]
    brows: dict[str, list[dict]] = {}
    chosen: dict[str, dict[str, int]] = {}
    if fs.proxies:
        brows["best proxy"], chosen["best proxy"] = [], {}
    for b in trivial:
        brows[b] = []
    if fs.features in ("arch", "all") and encoding_cols:
        brows["best encoding column"], chosen["best encoding column"] = [], {}
    for (_, te), tr in zip(splits, sub, strict=True):
        for b in brows:
            if b in trivial:
                pred = _oriented(trivial[b], tr, te, y)
            else:
                cols = list(fs.proxies) if b == "best proxy" else encoding_cols
                pred, name = _best_column(X, cols, tr, te, y)
                chosen[b][name] = chosen[b].get(name, 0) + 1
            brows[b].append(ranking_metrics(pred, y[te], dep(te), regret_scale=POINTS))
    baselines: dict[str, dict] = {}
    for b, rows_b in brows.items():
        baselines[b] = _summary(rows_b)
        baselines[b]["per_fold_spearman"] = [r["spearman"] for r in rows_b]
        if b in chosen:
            baselines[b]["chosen"] = dict(sorted(chosen[b].items(), key=lambda kv: -kv[1]))
        else:
            baselines[b]["rule"] = f"{b}, sign chosen on the training rows"
    finite_means = {
        b: e["spearman_mean"] for b, e in baselines.items() if np.isfinite(e["spearman_mean"])
    }
    strongest = max(finite_means, key=finite_means.get) if finite_means else None

    # ---- models
    rows: dict[str, list[dict]] = {m: [] for m in models}
    secs: dict[str, list[float]] = {m: [] for m in models}
    failed: dict[str, str] = {}
    oof = {m: np.full(n, np.nan) for m in models}
    n_per_repeat = len(splits) if cv == "none" else folds
    arch_X, no_ablation = (
        _architecture_only(bench, fs, X, epoch) if ablation else (None, "not asked")
    )
    ablated = _learned(models) if arch_X is not None else []
    arch_rows: dict[str, list[dict]] = {m: [] for m in ablated}
    arch_failed: dict[str, str] = {}
    total_fits = len(splits) * (len(models) + len(ablated)) * (1 + len(sizes or ()))
    tick = _ticker(progress, total_fits)
    for f, ((_, te), tr) in enumerate(zip(splits, sub, strict=True)):
        for m in models:
            if m in failed:
                tick()
                continue
            got = _guarded_fit(m, params.get(m, {}), X, y, tr, te, failed, f)
            tick()
            if got is None:
                continue
            pred, s = got
            rows[m].append(ranking_metrics(pred, y[te], dep(te), regret_scale=POINTS))
            secs[m].append(s)
            if f < n_per_repeat:
                oof[m][te] = pred
        for m in ablated:  # the same split, architecture features alone
            if m in failed or m in arch_failed:
                tick()
                continue
            got = _guarded_fit(m, params.get(m, {}), arch_X, y, tr, te, arch_failed, f)
            tick()
            if got is not None:
                pred = got[0]
                arch_rows[m].append(ranking_metrics(pred, y[te], dep(te), regret_scale=POINTS))
    ratio = (
        None
        if cv == "none"
        else float(np.mean([len(te) / len(tr) for (_, te), tr in zip(splits, sub, strict=True)]))
    )
    out_models = {}
    for m in models:
        if m in failed:
            out_models[m] = {"failed": True, "error": failed[m]}
            continue
        rho = np.array([r["spearman"] for r in rows[m]])
        entry = _summary(rows[m])
        entry["fit_seconds_mean"] = float(np.mean(secs[m]))
        entry["per_fold_spearman"] = rho.tolist()
        comps = {
            b: _compare(rho, np.asarray(e["per_fold_spearman"], float), ratio, b)
            for b, e in baselines.items()
        }
        entry["compared_with"] = strongest
        entry["vs_baseline"] = comps.get(strongest) if strongest else None
        entry["comparisons"] = comps
        if m in arch_failed:
            entry["proxies_add"] = {"failed": True, "error": arch_failed[m]}
        elif m in arch_rows:
            entry["proxies_add"] = _proxies_add(rho, arch_rows[m], ratio, fs.features)
        out_models[m] = entry
    _add_holm(out_models, "comparisons")
    _add_holm(out_models, "proxies_add")

    result: dict[str, Any] = {
        "models": out_models,
        "cv_baselines": baselines,
        "strongest_baseline": strongest,
        "units": "regret_top1 in accuracy points (100 x the label's fraction)",
        "test": (
            "none (in-sample figures)"
            if cv == "none"
            else f"corrected resampled t-test (Nadeau & Bengio 2003; n_test/n_train = {ratio:.3f})"
            + ("" if main_size is None else "; conservative for barely-overlapping subsamples")
        ),
        "comparison": (
            "difference in held-out Spearman, model minus baseline, on the same splits; "
            + (
                "no test: in-sample figures"
                if cv == "none"
                else "95% interval and p from the corrected resampled t-test "
                f"(Nadeau & Bengio 2003; n_test/n_train = {ratio:.3f})"
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
                "models": ablated,
                "architecture_features": int(arch_X.shape[1]),
                "note": "every learned model also fitted on the architecture features "
                "alone, on the same splits; proxies_add = with proxies minus without",
            }
            if arch_X is not None
            else {"models": [], "note": f"no ablation: {no_ablation}"}
        ),
        "n_architectures": n,
        "features": fs.features,
        "n_features": int(X.shape[1]),
        "epoch": epoch,
    }
    if sizes is not None:
        result["learning_curve"] = _learning_curve(
            [m for m in models if m not in failed],
            params,
            X,
            y,
            depth,
            splits,
            sizes,
            seed,
            tick,
            arch_X=arch_X,
            ablated=[m for m in ablated if m not in failed and m not in arch_failed],
            features=fs.features,
        )
    result["seconds"] = time.perf_counter() - start
    if report_dir is not None:
        from rankzc.ranking.report import write_report

        result["report"] = str(write_report(report_dir, result, fs, oof, bench=bench))
    return jsonable(result)


def _proxies_add(rho: np.ndarray, arch_rows: list[dict], ratio, features: str) -> dict:
    """What the proxies add to one model: per-split Spearman with them minus without."""
    arch = np.array([r["spearman"] for r in arch_rows], dtype=float)
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
    """Held-out Spearman at each training size; a model in ``ablated`` is also fitted on
    ``arch_X`` (architecture features alone) on the same subsamples, and its point gets
    ``proxies_add`` (with minus without, corrected interval at that size's ratio)."""
    rng = np.random.default_rng(seed + 1)
    curve: dict[str, list[dict]] = {m: [] for m in models}

    def score(m, data, subs):
        rows = []
        for (_, te), tr in zip(splits, subs, strict=True):
            pred, _ = _fit_predict(m, params.get(m, {}), data.iloc[tr], y[tr], data.iloc[te])
            tick()
            rows.append(
                ranking_metrics(
                    pred, y[te], None if depth is None else depth[te], regret_scale=POINTS
                )
            )
        return rows

    for size in sorted(int(s) for s in sizes):
        subs = [_subsample(tr, size, rng) for tr, _ in splits]
        ratio = float(
            np.mean([len(te) / len(tr) for (_, te), tr in zip(splits, subs, strict=True)])
        )
        for m in models:
            rows = score(m, X, subs)
            s = _summary(rows)
            point = {
                "train_size": size,
                "spearman_mean": s["spearman_mean"],
                "spearman_std": s["spearman_std"],
            }
            if m in ablated and arch_X is not None:
                try:
                    arch_rows = score(m, arch_X, subs)
                except (KeyboardInterrupt, SystemExit, MemoryError):
                    raise
                except Exception as exc:  # noqa: BLE001 - the ablation must not stop the curve
                    point["proxies_add"] = {"failed": True, "error": describe_error(exc)}
                else:
                    rho = np.array([r["spearman"] for r in rows], dtype=float)
                    point["proxies_add"] = _proxies_add(rho, arch_rows, ratio, features)
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
