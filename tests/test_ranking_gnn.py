"""gnn: the PyTorch Geometric graph-encoder ranker."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from rankzc.errors import RankzcError
from rankzc.ranking import make_ranker
from rankzc.ranking.features import arch_features
from rankzc.ranking.gnn import GNNRanker, encodings_from_columns
from rankzc.ranking.graphs import graph_features


def rho(a, b) -> float:
    return float(spearmanr(a, b)[0])


def cells(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """NB201 cells of skip / none / conv3x3: one-hot encoding and graph features."""
    rng = np.random.default_rng(seed)
    tuples = [tuple(int(v) for v in rng.choice([0, 1, 2], 6, p=[0.3, 0.2, 0.5])) for _ in range(n)]
    enc = pd.Series([str(t) for t in tuples])
    return arch_features(enc, "nasbench201"), graph_features(enc, "nasbench201")


def test_orders_by_longest_path_that_no_node_feature_gives():
    X, G = cells(260, 0)
    # the right order: most convolutions on one input-to-output path (ties: more paths)
    y = G["g_pathmax_nor_conv_3x3"].to_numpy() + 0.01 * G["g_n_paths"].to_numpy()
    tr, te = np.arange(180), np.arange(180, 260)
    counts = [c for c in G.columns if c.startswith("g_n_") and c != "g_n_paths"]
    best_node = max(abs(np.nan_to_num(rho(G[c].to_numpy()[te], y[te]))) for c in counts)
    # noise-free target: train the fixed small-data schedule (no validation split)
    m = GNNRanker(proxies=False, valid_fraction=0.0, small_epochs=60).fit(X.iloc[tr], y[tr])
    got = rho(m.predict(X.iloc[te]), y[te])
    assert best_node < 0.8
    assert got > 0.9 and got > best_node + 0.15, (got, best_node)


def test_proxies_round_trip_and_no_leakage(tmp_path):
    X, G = cells(80, 1)
    rng = np.random.default_rng(0)
    X["prox"] = G["g_n_nor_conv_3x3"] + rng.normal(size=len(X))
    y = G["g_pathmax_nor_conv_3x3"].to_numpy() + 0.1 * rng.normal(size=len(X))
    m = make_ranker("gnn", epochs=5).fit(X.iloc[:60], y[:60])
    assert m.proxy_columns_ == [list(X.columns).index("prox")]
    clean = m.predict(X.iloc[:60])
    again = m.predict(X)[:60]  # other rows in the same call change nothing
    np.testing.assert_allclose(clean, again, rtol=1e-6, atol=1e-6)
    config, arrays, texts = m._export()
    other = GNNRanker(epochs=5)
    other.feature_names_in_ = m.feature_names_in_
    other._import(config, arrays, texts)
    np.testing.assert_allclose(other.predict(X), m.predict(X), rtol=1e-5, atol=1e-6)


def test_twenty_labels_and_seeded():
    X, G = cells(40, 2)
    y = G["g_pathmax_nor_conv_3x3"].to_numpy() + 0.01 * np.arange(40)
    a = GNNRanker().fit(X.iloc[:20], y[:20])
    b = GNNRanker().fit(X.iloc[:20], y[:20])
    assert a.n_epochs_ == GNNRanker().small_epochs  # no validation split at 20 rows
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_gcn_encodings_and_errors():
    from rankzc.space import Architecture, sample_architectures

    archs = sample_architectures(6, seed=0)
    X = pd.DataFrame(
        np.vstack([a.encoding() for a in archs]), columns=Architecture.encoding_names()
    )
    enc, kind = encodings_from_columns(X.to_numpy(), list(X.columns))
    assert kind == "gcn-nas" and enc == [str(a) for a in archs]
    with pytest.raises(RankzcError, match="needs the architecture encoding columns"):
        GNNRanker().fit(pd.DataFrame({"p": np.arange(5.0)}), np.arange(5.0))
    with pytest.raises(RankzcError, match="space must be auto or one of"):
        GNNRanker(space="nope").fit(cells(10, 0)[0], np.arange(10.0))
