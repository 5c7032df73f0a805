"""rankzc.stats: known values that tell the metrics apart, the NaN policy, the bootstrap's
coverage and the corrected resampled t-test against a hand-computed example."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as st

from rankzc import stats
from rankzc.ranking.metrics import ranking_metrics


def test_kendall_and_spearman_known_values_differ():
    # one adjacent swap in each half: d^2 sums to 4 -> rho = 1 - 6*4/(5*24) = 0.8;
    # 2 discordant pairs of 10 -> tau = (8 - 2) / 10 = 0.6
    x = [1.0, 2, 3, 4, 5]
    y = [1.0, 3, 2, 5, 4]
    assert stats.spearman(x, y) == pytest.approx(0.8, abs=1e-12)
    assert stats.kendall(x, y) == pytest.approx(0.6, abs=1e-12)
    m = ranking_metrics(np.array(x), np.array(y))
    assert m["spearman"] == pytest.approx(0.8, abs=1e-12)
    assert m["kendall"] == pytest.approx(0.6, abs=1e-12)
    assert m["pairwise_accuracy"] == pytest.approx(0.8, abs=1e-12)  # 8 of 10 pairs


def test_kendall_is_tau_b_with_ties():
    x = [1.0, 1, 2, 3]
    y = [1.0, 2, 2, 3]
    # C = 4, D = 0, one tie in x, one in y: tau_b = 4 / sqrt(5 * 5) = 0.8
    assert stats.kendall(x, y) == pytest.approx(0.8, abs=1e-12)


def test_within_depth_differs_from_overall():
    # perfect inside each depth, but the deeper group has the higher scores and lower labels
    pred = np.array([1.0, 2, 3, 11, 12, 13])
    y = np.array([10.0, 11, 12, 0, 1, 2])
    depth = np.array([4.0, 4, 4, 6, 6, 6])
    m = ranking_metrics(pred, y, depth)
    assert m["within_depth_spearman"] == pytest.approx(1.0, abs=1e-12)
    # ranks of y: 4 5 6 1 2 3 -> sum d^2 = 54 -> rho = 1 - 6*54/(6*35)
    assert m["spearman"] == pytest.approx(1 - 324 / 210, abs=1e-12)
    # groups below 3 rows are skipped, a NaN depth is no group
    assert math.isnan(stats.within_group_spearman(pred[:2], y[:2], depth[:2]))
    assert math.isnan(ranking_metrics(pred, y)["within_depth_spearman"])


def test_top_ten_percent_has_ceil_tenth_size():
    y = np.arange(30.0)
    pred = y.copy()
    pred[[26, 27]] = pred[[27, 26]]  # the 3rd and 4th best swap places
    # k = 3: top-3 predicted {29, 28, 26}, true {29, 28, 27} -> 2/3 (k = 6 would give 1)
    assert ranking_metrics(pred, y)["top10pct_precision"] == pytest.approx(2 / 3)
    assert stats.top_k_precision(pred, y, 0.2) == 1.0
    # n = 25 -> k = ceil(2.5) = 3: the best three predicted are the best two and the 4th
    y = np.arange(25.0)
    pred = y.copy()
    pred[[22, 21]] = pred[[21, 22]]
    assert stats.top_k_precision(pred, y) == pytest.approx(2 / 3)


def test_regret_picks_the_best_scored():
    y = np.array([0.5, 0.9, 0.7])
    assert stats.regret(np.array([3.0, 1.0, 2.0]), y) == pytest.approx(0.4)
    assert stats.regret(y, y) == 0.0


def brute_pairwise(pred, y):
    good = total = 0.0
    for i, j in itertools.combinations(range(len(y)), 2):
        if y[i] == y[j]:
            continue
        total += 1
        if pred[i] == pred[j]:
            good += 0.5
        elif (pred[i] > pred[j]) == (y[i] > y[j]):
            good += 1
    return good / total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pairwise_accuracy_matches_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    pred = np.round(rng.normal(size=120), 1)
    y = np.round(pred + rng.normal(size=120), 1)
    assert stats.pairwise_accuracy(pred, y) == pytest.approx(brute_pairwise(pred, y), abs=1e-12)
    assert stats.pairwise_accuracy(np.zeros(5), np.arange(5.0)) == 0.5
    assert math.isnan(stats.pairwise_accuracy(np.arange(5.0), np.ones(5)))


def test_one_nan_policy_for_every_metric():
    rng = np.random.default_rng(3)
    pred = rng.normal(size=50)
    y = pred + rng.normal(size=50)
    depth = rng.choice([4.0, 6.0], size=50)
    bad_pred, bad_y = pred.copy(), y.copy()
    bad_pred[[3, 10]] = np.nan
    bad_pred[20] = np.inf
    bad_y[30] = np.nan
    keep = np.ones(50, bool)
    keep[[3, 10, 20, 30]] = False
    with_nan = ranking_metrics(bad_pred, bad_y, depth)
    dropped = ranking_metrics(pred[keep], y[keep], depth[keep])
    for name, value in dropped.items():
        assert with_nan[name] == pytest.approx(value, abs=1e-12), name
    lo, hi = stats.bootstrap_spearman_ci(bad_pred, bad_y, n_boot=50)
    assert [lo, hi] == stats.bootstrap_spearman_ci(pred[keep], y[keep], n_boot=50)
    # undefined: a constant, fewer than 3 pairs
    assert math.isnan(stats.spearman([1.0, 1, 1, 1], [1.0, 2, 3, 4]))
    assert math.isnan(stats.kendall([1.0, np.nan], [1.0, 2]))


def _population_spearman(r: float) -> float:
    return 6 / math.pi * math.asin(r / 2)


def test_bootstrap_resamples_and_covers():
    """95% intervals from bivariate normal samples contain the population rho about 95% of
    the time; an interval from a bootstrap that does not resample has width 0 and never does."""
    rng = np.random.default_rng(7)
    r, n = 0.6, 60
    truth = _population_spearman(r)
    cov = np.array([[1, r], [r, 1]])
    hits, widths = 0, []
    for k in range(150):
        xy = rng.multivariate_normal([0, 0], cov, size=n)
        lo, hi = stats.bootstrap_spearman_ci(xy[:, 0], xy[:, 1], n_boot=300, seed=k)
        hits += lo <= truth <= hi
        widths.append(hi - lo)
    assert 0.85 <= hits / 150 <= 0.99
    # normal-theory width for rho_s ~ 0.58 at n = 60 is about 2 * 1.96 * 0.09
    assert 0.2 < np.median(widths) < 0.5


def test_bootstrap_bounded_rows_keeps_the_width():
    rng = np.random.default_rng(8)
    x = rng.normal(size=4000)
    y = x + 1.5 * rng.normal(size=4000)
    exact = stats.bootstrap_spearman_ci(x, y, n_boot=400, max_rows=10_000)
    bounded = stats.bootstrap_spearman_ci(x, y, n_boot=400, max_rows=500)
    assert bounded[1] - bounded[0] == pytest.approx(exact[1] - exact[0], rel=0.25)
    rho = stats.spearman(x, y)
    assert bounded[0] < rho < bounded[1]


def test_bootstrap_ranks_equal_rankdata_per_resample():
    rng = np.random.default_rng(9)
    x = np.round(rng.normal(size=40), 1)
    codes = st.rankdata(x, method="dense").astype(np.int64) - 1
    idx = rng.integers(0, 40, size=(6, 40))
    got = stats._resample_ranks(codes, int(codes.max()) + 1, idx)
    assert np.array_equal(got, st.rankdata(x[idx], axis=1))


def test_corrected_resampled_ttest_hand_example():
    a = np.array([0.6, 0.7, 0.5, 0.8, 0.6])
    b = np.array([0.5, 0.5, 0.5, 0.5, 0.5])
    # d = .1 .2 0 .3 .1: mean .14, sample variance .052 / 4 = .013;
    # corrected variance (1/5 + 20/80) * .013 = .00585 -> se .0764853, t 1.830417
    res = stats.corrected_resampled_ttest(a, b, n_train=80, n_test=20)
    assert res["mean_diff"] == pytest.approx(0.14, abs=1e-12)
    assert res["se"] == pytest.approx(math.sqrt(0.00585), rel=1e-9)
    assert res["t"] == pytest.approx(1.830417, rel=1e-6)
    # two-sided p of t = 1.830417 on 4 degrees of freedom; t_{.975, 4} = 2.776445
    assert res["p_value"] == pytest.approx(0.141159, abs=1e-5)
    half = 2.776445 * math.sqrt(0.00585)
    assert res["ci95"] == pytest.approx([0.14 - half, 0.14 + half], abs=1e-6)
    # the naive paired t-test (se = sd / sqrt(J)) is smaller and gives p = 0.052
    naive = st.ttest_rel(a, b).pvalue
    assert naive < 0.06 < res["p_value"]
    assert stats.corrected_resampled_ttest(a, a, n_train=8, n_test=2)["p_value"] == 1.0
    assert math.isnan(stats.corrected_resampled_ttest([1.0], [0.0], n_train=8, n_test=2)["t"])


def test_spearman_brown():
    assert stats.spearman_brown(0.5, 2) == pytest.approx(2 / 3)
    assert stats.spearman_brown(0.5, 1) == pytest.approx(0.5)
    assert stats.spearman_brown(np.array([0.0, 1.0]), 3).tolist() == [0.0, 1.0]


def test_holm_against_a_hand_computed_example():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> 0.06
    # (monotone: never below the one before); NaN is no test and does not count in m
    got = stats.holm([0.01, 0.04, 0.03, 0.005, math.nan])
    np.testing.assert_allclose(got[:4], [0.03, 0.06, 0.06, 0.02])
    assert math.isnan(got[4])
    # capped at 1; ties keep their order; one test is left as it is
    np.testing.assert_allclose(stats.holm([0.5, 0.6]), [1.0, 1.0])
    np.testing.assert_allclose(stats.holm([0.2, 0.2, 0.2]), [0.6, 0.6, 0.6])
    np.testing.assert_allclose(stats.holm([0.04]), [0.04])
    assert stats.holm([]).shape == (0,)


def test_seed_agreement_icc_and_standard_deviations():
    """Issue 25: the recipe check's figures. Two seeds that agree up to a constant shift
    give ICC(1) close to 1 and the seed sd of the shift; labels that share nothing across
    architectures give a between-architecture sd of 0 and a negative ICC."""
    from rankzc.stats import seed_agreement

    a = np.array([0.70, 0.72, 0.74, 0.76, 0.78])
    same = seed_agreement(a, a + 0.01)
    assert same["n"] == 5 and same["spearman"] == pytest.approx(1.0)
    # MS_w = (0.01^2 / 2): seed sd sqrt(0.00005) = 0.707 points
    assert same["seed_sd_points"] == pytest.approx(100 * np.sqrt(0.01**2 / 2))
    # MS_b = 2 var(means) = 2 * 0.02^2 * 2.5; between sd sqrt((MS_b - MS_w) / 2)
    ms_b, ms_w = 2 * 0.0004 * 2.5, 0.00005
    assert same["between_sd_points"] == pytest.approx(100 * np.sqrt((ms_b - ms_w) / 2))
    assert same["icc"] == pytest.approx((ms_b - ms_w) / (ms_b + ms_w))
    flipped = seed_agreement(a, a[::-1])  # same mean for every architecture
    assert flipped["between_sd_points"] == 0.0 and flipped["icc"] < 0
    assert flipped["spearman"] == pytest.approx(-1.0)
    assert seed_agreement([0.5, 0.6], [0.5, 0.6]) == {"n": 2}
