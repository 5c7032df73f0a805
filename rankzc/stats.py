r"""Rank statistics used by ``rankzc evaluate`` and the rankers, with one NaN policy.

**NaN policy.** Every metric takes two aligned vectors (a score and a label), keeps the
positions where *both* are finite and computes on those; it returns NaN when the metric is
undefined on what is left (fewer than ``min_n`` pairs, a constant vector, no pair with
different labels). Nothing here imports the store or torch.

* :func:`spearman`, :func:`kendall` (tau-b), :func:`rank_correlations`;
* :func:`pairwise_accuracy`: the share of pairs with different labels that the score orders
  the same way, a tie in the score counting one half. It is computed from Kendall's
  :math:`S = C - D` (concordant minus discordant pairs, scipy's :math:`O(n \log n)` merge
  count): with :math:`n_0 = n(n-1)/2` pairs of which :math:`t_y` are tied in the label,
  :math:`\mathrm{acc} = \tfrac12 (1 + S / (n_0 - t_y))`;
* :func:`top_k_precision`: with :math:`k = \lceil f n \rceil`, the share of the :math:`k`
  best-scored rows among the :math:`k` best-labelled;
* :func:`regret`: :math:`\max y - y_{\hat a}` for the best-scored row :math:`\hat a`;
* :func:`within_group_spearman`: the mean over groups (with at least 3 rows) of the
  Spearman correlation inside each group;
* :func:`bootstrap_spearman_ci`: percentile bootstrap interval of Spearman's rho, on ranks;
* :func:`corrected_resampled_ttest`: Nadeau and Bengio's (2003) corrected resampled t-test
  for repeated k-fold cross-validation;
* :func:`spearman_brown`: reliability of the mean of ``k`` repeated measurements.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats as _st

__all__ = [
    "finite_pairs",
    "spearman",
    "kendall",
    "rank_correlations",
    "pairwise_accuracy",
    "top_k_precision",
    "regret",
    "within_group_spearman",
    "spearman_columns",
    "bootstrap_spearman_ci",
    "bootstrap_spearman",
    "corrected_resampled_ttest",
    "spearman_brown",
    "holm",
]

NAN = float("nan")


def finite_pairs(x: Any, y: Any, *extra: Any) -> tuple[np.ndarray, ...]:
    """``x``, ``y`` (and ``extra`` aligned arrays) at the positions where ``x`` and ``y`` are finite."""
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} entries but y has {len(y)}")
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.all():
        return (x, y, *(np.asarray(e) for e in extra))
    return (x[ok], y[ok], *(np.asarray(e)[ok] for e in extra))


def _varies(v: np.ndarray) -> bool:
    return len(v) > 0 and bool(v.min() < v.max())


def _defined(x: np.ndarray, y: np.ndarray, min_n: int = 3) -> bool:
    return len(x) >= min_n and _varies(x) and _varies(y)


def spearman(x: Any, y: Any) -> float:
    """Signed Spearman rho over finite pairs; NaN when undefined (< 3 pairs, a constant)."""
    x, y = finite_pairs(x, y)
    return float(_st.spearmanr(x, y).statistic) if _defined(x, y) else NAN


def kendall(x: Any, y: Any) -> float:
    """Kendall's tau-b over finite pairs; NaN when undefined (< 3 pairs, a constant)."""
    x, y = finite_pairs(x, y)
    return float(_st.kendalltau(x, y).statistic) if _defined(x, y) else NAN


def rank_correlations(x: Any, y: Any) -> dict[str, float]:
    """Signed Spearman and Kendall (tau-b) over finite pairs, and ``n`` (finite pairs)."""
    x, y = finite_pairs(x, y)
    if not _defined(x, y):
        return {"spearman": NAN, "kendall": NAN, "n": int(len(x))}
    return {
        "spearman": float(_st.spearmanr(x, y).statistic),
        "kendall": float(_st.kendalltau(x, y).statistic),
        "n": int(len(x)),
    }


def _tied_pairs(v: np.ndarray) -> int:
    counts = np.unique(v, return_counts=True)[1].astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


def pairwise_accuracy(pred: Any, y: Any) -> float:
    """Share of finite pairs with ``y_i != y_j`` ordered like ``pred`` (pred ties count 1/2).

    :math:`O(n \\log n)`; NaN when no pair has different labels.
    """
    pred, y = finite_pairs(pred, y)
    n = len(y)
    n0 = n * (n - 1) // 2
    ty = _tied_pairs(y) if n else 0
    total = n0 - ty
    if total <= 0:
        return NAN
    tp = _tied_pairs(pred)
    if tp == n0:  # a constant score: every pair is a tie
        return 0.5
    tau_b = float(_st.kendalltau(pred, y).statistic)
    s = round(tau_b * math.sqrt(float(n0 - tp)) * math.sqrt(float(total)))
    return 0.5 * (1.0 + s / total)


def top_k_precision(pred: Any, y: Any, frac: float = 0.1) -> float:
    """Share of the ``ceil(frac * n)`` best-scored finite rows among the as many best-labelled."""
    pred, y = finite_pairs(pred, y)
    n = len(y)
    if n == 0:
        return NAN
    k = max(1, math.ceil(frac * n))
    top_pred = np.argsort(-pred, kind="stable")[:k]
    top_true = np.argsort(-y, kind="stable")[:k]
    return len(np.intersect1d(top_pred, top_true, assume_unique=True)) / k


def regret(pred: Any, y: Any) -> float:
    """``max(y) - y`` of the best-scored finite row (the first one among tied scores)."""
    pred, y = finite_pairs(pred, y)
    if len(y) == 0:
        return NAN
    return float(y.max() - y[int(np.argmax(pred))])


def within_group_spearman(pred: Any, y: Any, groups: Any, min_size: int = 3) -> float:
    """Mean over groups of at least ``min_size`` finite pairs of the Spearman rho inside each."""
    if groups is None:
        return NAN
    pred, y, g = finite_pairs(pred, y, np.asarray(groups, dtype=float).ravel())
    keep = np.isfinite(g)
    pred, y, g = pred[keep], y[keep], g[keep]
    vals = []
    for value in np.unique(g):
        sel = g == value
        if sel.sum() >= min_size:
            rho = spearman(pred[sel], y[sel])
            if not math.isnan(rho):
                vals.append(rho)
    return float(np.mean(vals)) if vals else NAN


def spearman_columns(X: Any, y: Any) -> np.ndarray:
    """Spearman rho of every column of ``X`` with ``y`` (finite pairs; NaN if undefined)."""
    X = np.asarray(X, dtype=float)
    return np.array([spearman(X[:, k], y) for k in range(X.shape[1])], dtype=float)


# ------------------------------------------------------------------ bootstrap on ranks
def _resample_ranks(codes: np.ndarray, n_codes: int, idx: np.ndarray) -> np.ndarray:
    """Average ranks of ``codes[idx]`` within each row of ``idx`` (as :func:`scipy.stats.rankdata`).

    ``codes`` are dense ranks ``0..n_codes-1`` of the original values; for each resample the
    rank of a value is the number of drawn values below it plus half of its tied draws
    (plus one half), from one count per distinct value: no sort per resample.
    """
    b, m = idx.shape
    c = codes[idx]
    flat = (c + (np.arange(b, dtype=np.int64) * n_codes)[:, None]).ravel()
    counts = np.bincount(flat, minlength=b * n_codes).reshape(b, n_codes)
    below = np.cumsum(counts, axis=1) - counts
    ranks = below + (counts + 1) / 2.0
    return np.take_along_axis(ranks, c, axis=1)


def _row_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(axis=1) / den


def bootstrap_spearman(
    x: Any,
    y: Any,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    max_rows: int = 10_000,
    chunk_cells: int = 1_000_000,
) -> tuple[np.ndarray, float]:
    """Bootstrap replicates of Spearman's rho over finite pairs, and the scale factor.

    Up to ``max_rows`` finite pairs, each replicate resamples all ``n`` pairs with
    replacement and re-ranks them (exactly Spearman's rho of the resample; ties averaged);
    the factor is 1. Above, each replicate draws ``max_rows`` pairs (an m-out-of-n
    bootstrap) and takes the Pearson correlation of their ranks in the whole sample (the
    same rho up to :math:`O(1/m)`); the factor is :math:`\\sqrt{m / n}`: deviations of the replicates from
    the full-sample rho are multiplied by it to give the spread at ``n`` pairs. Time and
    memory are bounded by ``n_boot * max_rows``, processed ``chunk_cells`` cells at a time.
    """
    x, y = finite_pairs(x, y)
    n = len(x)
    if n < 3 or n_boot <= 0:
        return np.array([]), 1.0
    m = min(n, int(max_rows))
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    if m < n:  # m-out-of-n: Pearson of the full sample's ranks over the drawn rows
        rx = _st.rankdata(x) - (n + 1) / 2.0
        ry = _st.rankdata(y) - (n + 1) / 2.0
        cols = np.stack([rx, ry, rx * rx, ry * ry, rx * ry])  # sums over a resample give rho
        step = max(1, chunk_cells // m)
        for s in range(0, n_boot, step):
            b = min(step, n_boot - s)
            idx = rng.integers(0, n, size=(b, m))
            sx, sy, sxx, syy, sxy = (np.take(c, idx).sum(axis=1) for c in cols)
            cov = sxy - sx * sy / m
            den = np.sqrt((sxx - sx * sx / m) * (syy - sy * sy / m))
            with np.errstate(invalid="ignore", divide="ignore"):
                out[s : s + b] = cov / den
        return out, math.sqrt(m / n)
    cx = _st.rankdata(x, method="dense").astype(np.int64) - 1
    cy = _st.rankdata(y, method="dense").astype(np.int64) - 1
    ux, uy = int(cx.max()) + 1, int(cy.max()) + 1
    step = max(1, chunk_cells // max(m, ux, uy))
    for s in range(0, n_boot, step):
        b = min(step, n_boot - s)
        idx = rng.integers(0, n, size=(b, m))
        out[s : s + b] = _row_pearson(_resample_ranks(cx, ux, idx), _resample_ranks(cy, uy, idx))
    return out, math.sqrt(m / n)


def bootstrap_spearman_ci(
    x: Any,
    y: Any,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    max_rows: int = 10_000,
) -> list[float]:
    """Percentile bootstrap interval of Spearman's rho, resampling pairs (see :func:`bootstrap_spearman`)."""
    reps, scale = bootstrap_spearman(x, y, n_boot=n_boot, seed=seed, max_rows=max_rows)
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return [NAN, NAN]
    alpha = (1 - level) / 2
    lo, hi = np.quantile(reps, [alpha, 1 - alpha])
    if scale < 1.0:
        rho = spearman(x, y)
        lo, hi = rho + scale * (lo - rho), rho + scale * (hi - rho)
    return [float(lo), float(hi)]


# ------------------------------------------------------------------ paired comparison
def corrected_resampled_ttest(
    a: Any,
    b: Any,
    *,
    n_train: float,
    n_test: float,
    level: float = 0.95,
) -> dict[str, Any]:
    r"""Nadeau and Bengio's corrected resampled t-test of paired per-split scores ``a - b``.

    With :math:`J` splits (all folds of all repeats), differences :math:`d_j`, their mean
    :math:`\bar d` and sample variance :math:`\hat\sigma^2`, the variance of :math:`\bar d`
    is taken as :math:`(1/J + n_{test}/n_{train})\,\hat\sigma^2` instead of
    :math:`\hat\sigma^2 / J` (splits share training rows, so their differences are
    correlated); :math:`t = \bar d / \mathrm{se}` with :math:`J - 1` degrees of freedom.
    Splits where either score is NaN are dropped.

    Returns ``{"mean_diff", "ci95": [lo, hi], "p_value", "t", "se", "n_splits", "test"}``
    (NaN/None where fewer than 2 splits).
    """
    a, b = finite_pairs(a, b)
    d = a - b
    J = len(d)
    out: dict[str, Any] = {
        "mean_diff": float(d.mean()) if J else NAN,
        "ci95": [NAN, NAN],
        "p_value": NAN,
        "t": NAN,
        "se": NAN,
        "n_splits": int(J),
        "test": "corrected resampled t-test (Nadeau & Bengio 2003)",
    }
    if J < 2:
        return out
    mean = float(d.mean())
    var = float(d.var(ddof=1))
    se = math.sqrt((1.0 / J + float(n_test) / float(n_train)) * var)
    q = float(_st.t.ppf(1 - (1 - level) / 2, J - 1))
    if se == 0.0:
        p = 1.0 if mean == 0.0 else 0.0
        t = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    else:
        t = mean / se
        p = float(2 * _st.t.sf(abs(t), J - 1))
    out.update(mean_diff=mean, ci95=[mean - q * se, mean + q * se], p_value=p, t=t, se=se)
    return out


def seed_agreement(a: Any, b: Any) -> dict[str, float]:
    r"""Agreement of two labels per architecture (seeds 0 and 1, one row each).

    Spearman of the two, the one-way intraclass correlation
    :math:`\mathrm{ICC}(1) = (MS_b - MS_w) / (MS_b + MS_w)` (the share of one label's
    variance that belongs to the architecture), and the standard deviations, in points,
    of the seed (:math:`\sqrt{MS_w}`) and between architectures
    (:math:`\sqrt{(MS_b - MS_w) / 2}`, 0 when negative). ``n``: architectures.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = len(a)
    if n < 3:
        return {"n": n}
    means = (a + b) / 2
    ms_between = 2 * means.var(ddof=1)
    ms_within = float(((a - b) ** 2 / 2).sum() / n)
    return {
        "n": n,
        "spearman": spearman(a, b),
        "icc": float((ms_between - ms_within) / (ms_between + ms_within)),
        "seed_sd_points": 100 * math.sqrt(ms_within),
        "between_sd_points": 100 * math.sqrt(max(ms_between - ms_within, 0.0) / 2),
    }


def spearman_brown(r: float | np.ndarray, k: float) -> float | np.ndarray:
    r"""Reliability of the mean of ``k`` measurements whose pairwise correlation is ``r``:
    :math:`k r / (1 + (k - 1) r)`."""
    r = np.asarray(r, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = k * r / (1.0 + (k - 1.0) * r)
    return float(out) if out.ndim == 0 else out


def holm(p_values: Any) -> np.ndarray:
    r"""Holm's step-down adjustment of the p-values of one family of comparisons.

    Sort the :math:`m` finite p-values ascending, :math:`p_{(1)} \le \dots \le p_{(m)}`;
    the adjusted :math:`\tilde p_{(i)} = \min(1, \max_{j \le i} (m - j + 1)\, p_{(j)})`.
    Rejecting where :math:`\tilde p < \alpha` controls the family-wise error rate at
    :math:`\alpha` under any dependence between the tests (Holm 1979). NaN entries (no
    test) stay NaN and do not count in :math:`m`. Returns the adjusted values in the input
    order.
    """
    p = np.asarray(p_values, dtype=float).ravel()
    out = np.full(p.shape, NAN)
    ok = np.nonzero(np.isfinite(p))[0]
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out
