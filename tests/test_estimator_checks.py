"""scikit-learn's estimator checks over every ranker of the registry.

Each ranker runs all of :func:`sklearn.utils.estimator_checks.parametrize_with_checks`'s
checks on a small instance; the checks it does not pass are listed below with the reason
(``expected_failed_checks``: they run and are reported as xfail). A check that starts
failing, or a ranker added to the registry without an entry here, fails this file.
"""

from __future__ import annotations

import warnings

from sklearn.utils.estimator_checks import parametrize_with_checks

from rankzc.ranking.registry import RANKERS, make_ranker

#: small instances: the checks fit dozens of times on tiny random tables
SMALL = {
    "ranknet": {"epochs": 2, "hidden": (4,), "patience": 1},
    "lambdarank": {"n_estimators": 5},
    "stratified": {"n_estimators": 5},
    "gnn": {"epochs": 1, "small_epochs": 1, "min_epochs": 1, "hidden": 4, "layers": 1},
}

_NAMES = (
    "rankers record their input columns by name in feature_names_in_ (x0, x1, ... for an "
    "array) and check them by name in predict; they set no n_features_in_"
)
_SPARSE = (
    "sparse input is not supported: rankzc.ranking.base.as_matrix converts through numpy and "
    "the error does not say that sparse input is refused"
)
#: the checks every tabular ranker fails, and why
TABULAR = {
    "check_n_features_in": _NAMES,
    "check_n_features_in_after_fitting": _NAMES,
    "check_complex_data": "inputs are cast to float by as_matrix: numpy keeps the real part "
    "of a complex number (ComplexWarning) instead of refusing it",
    "check_estimators_nan_inf": "NaN is a missing proxy score, part of the input by design "
    "(imputed from the training rows); infinities are not refused either",
    "check_estimator_sparse_tag": _SPARSE,
    "check_estimator_sparse_array": _SPARSE,
    "check_estimator_sparse_matrix": _SPARSE,
    "check_fit2d_1sample": "one training row is refused in rankzc's words ('need at least 2 "
    "finite labels to fit a ranker'), none of the phrases the check looks for",
    "check_fit1d": "a 1-D X is read as one feature column (as_matrix), not refused",
    "check_fit2d_predict1d": "a 1-D X in predict is read as one column and refused by column "
    "count ('expected 3 feature columns, got 1'), not with 'Reshape your data'",
    "check_estimators_empty_data_messages": "a table without feature columns is refused in "
    "the ranker's words (e.g. 'no feature varies together with the labels'), not with "
    "'0 feature(s) (shape=(n, 0)) while a minimum of 1 is required'",
}
_GNN_DATA = (
    "gnn reads architecture encoding columns (--features arch or all) and refuses the "
    "checks' random numeric tables before fitting"
)
GNN = {
    name: _GNN_DATA
    for name in (
        "check_fit_score_takes_y",
        "check_estimators_overwrite_params",
        "check_dont_overwrite_parameters",
        "check_estimators_fit_returns_self",
        "check_readonly_memmap_input",
        "check_n_features_in_after_fitting",
        "check_positive_only_tag_during_fit",
        "check_estimators_dtypes",
        "check_complex_data",
        "check_dtype_object",
        "check_estimators_empty_data_messages",
        "check_pipeline_consistency",
        "check_estimators_pickle",
        "check_f_contiguous_array_estimator",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_fit2d_1sample",
        "check_fit2d_1feature",
        "check_dict_unchanged",
        "check_fit_idempotent",
        "check_fit_check_is_fitted",
        "check_n_features_in",
        "check_fit2d_predict1d",
    )
} | {
    name: TABULAR[name]
    for name in (
        "check_estimators_nan_inf",
        "check_estimator_sparse_tag",
        "check_estimator_sparse_array",
        "check_estimator_sparse_matrix",
    )
}

#: ranker name -> {check name: why it fails}
EXPECTED_FAILED: dict[str, dict[str, str]] = {
    "single": TABULAR,
    "vote": TABULAR
    | {
        "check_estimators_empty_data_messages": "a table without feature columns is refused "
        "in rankzc's words ('vote: no feature column to vote with')"
    },
    "wam": TABULAR,
    "ranknet": TABULAR
    | {
        "check_estimators_empty_data_messages": "a table without feature columns is refused "
        "in rankzc's words ('ranknet: no feature columns to learn from')"
    },
    "lambdarank": {k: v for k, v in TABULAR.items() if k != "check_estimators_empty_data_messages"},
    "rankagg": TABULAR,
    "gnn": GNN,
    "stratified": {k: v for k, v in TABULAR.items() if k != "check_estimators_empty_data_messages"},
}

ESTIMATORS = [make_ranker(name, **SMALL.get(name, {})) for name in RANKERS]


def expected_failed(estimator) -> dict[str, str]:
    return EXPECTED_FAILED[estimator.name]


def test_every_registered_ranker_is_checked():
    assert [e.name for e in ESTIMATORS] == list(RANKERS) == list(EXPECTED_FAILED)
    for name, checks in EXPECTED_FAILED.items():
        assert all(reason.strip() for reason in checks.values()), name


def test_ranknet_is_not_taken_for_a_transformer():
    """RankNet's preprocessing parameter is ``input_transform``: an attribute named
    ``transform`` made scikit-learn treat the ranker as a transformer."""
    est = make_ranker("ranknet")
    assert not hasattr(est, "transform") and est.get_params()["input_transform"] == "quantile"
    old = make_ranker("ranknet", transform="standard")  # the old name still works
    assert old.input_transform == "standard"


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny random tables: convergence and init warnings
        check(estimator)
