"""Graph features (--features graph): hand-counted values, spaces, one-line messages."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from benchdata import write_gcn_store

from rankzc.errors import RankzcError
from rankzc.ranking.features import encoding_features, feature_matrix
from rankzc.ranking.graphs import (
    PROJECTED_BLOCKS,
    graph_features,
    graph_space,
    to_graph,
)
from rankzc.store import Benchmark

GCN = "10000101-01100011-10100100-00011001"


def test_gcn_hand_counted():
    f = graph_features([GCN], "gcn-nas").iloc[0]
    # blocks: {L1, M_S, M_ST}, {Ln4, L4, M_T, M_ST}, {L1, L4, M_S}, {L3, L2, M_ST}
    assert f["g_n_L1"] == 2 and f["g_n_L4"] == 2 and f["g_n_M_ST"] == 3 and f["g_n_M_T"] == 1
    assert f["g_frac_M_ST"] == 0.75
    assert f["g_pos_M_ST"] == pytest.approx((1 / 4 + 2 / 4 + 4 / 4) / 3)
    assert f["g_pos_L3"] == 1.0 and f["g_pos_L1"] == pytest.approx((1 / 4 + 3 / 4) / 2)
    # paths: block 1 has 3 branches; blocks 2, 3 their branches + a projected residual;
    # block 4 its 3 branches + the identity residual: 3 * 5 * 4 * 4
    assert f["g_n_paths"] == 240
    # longest: operator, gcn, tcn in every block; shortest: block 1 (3), res, res, identity
    assert f["g_path_max"] == 12 and f["g_path_min"] == 5
    # paths through M_ST: all paths minus those avoiding it (2 * 4 * 4 * 3 avoid it)
    assert f["g_paths_M_ST"] == 240 - 2 * 4 * 4 * 3
    assert f["g_pathmax_M_ST"] == 3 and f["g_pathmax_L3"] == 1


def test_projected_blocks_follow_the_channel_plan():
    from rankzc.models.network import channel_plan

    for depth, blocks in PROJECTED_BLOCKS.items():
        plan = channel_plan(depth)
        want = tuple(b for b, (ci, co, s) in enumerate(plan) if b > 0 and (ci != co or s != 1))
        assert want == blocks


def test_nb201_hand_counted():
    # edges (1,2) skip, (1,3) conv3, (1,4) conv1, (2,3) conv3, (2,4) conv1, (3,4) none
    f = graph_features(["(0, 2, 3, 2, 3, 1)", "(2, 2, 2, 2, 2, 2)", "(1, 1, 1, 1, 1, 1)"],
                       "nasbench201")  # fmt: skip
    a, b, c = (f.iloc[i] for i in range(3))
    assert a["g_n_nor_conv_3x3"] == 2 and a["g_n_nor_conv_1x1"] == 2 and a["g_n_none"] == 1
    # node 3 is cut from the output: paths 1->4 and 1->2->4, one op each
    assert a["g_n_paths"] == 2 and a["g_path_max"] == 1 and a["g_path_min"] == 1
    assert a["g_paths_nor_conv_3x3"] == 0 and a["g_paths_skip_connect"] == 1
    assert a["g_paths_nor_conv_1x1"] == 2
    # all conv3x3: 4 paths of 1, 2, 2, 3 convolutions
    assert b["g_n_paths"] == 4 and b["g_path_max"] == 3 and b["g_path_min"] == 1
    assert b["g_pathmax_nor_conv_3x3"] == 3
    assert c["g_connected"] == 0 and c["g_n_paths"] == 0


def test_other_nbsz_encodings():
    cell = ((0, 3), (1, 2), (0, 0), (2, 6), (1, 3), (3, 4), (2, 2), (0, 5))
    darts = str((cell, cell))
    assert graph_space("nasbench301", [darts]) == "nasbench301"
    d = graph_features([darts], "nasbench301").iloc[0]
    assert d["g_n_sep_conv_3x3"] == 4 and d["g_n_max_pool_3x3"] == 2 and d["g_connected"] == 1
    # NB101, 3 vertices: input -> conv3x3 -> output and input -> output
    nb101 = str((0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 4, 1))
    e = graph_features([nb101], "nasbench101").iloc[0]
    assert e["g_n_conv3x3-bn-relu"] == 1 and e["g_n_paths"] == 2 and e["g_path_max"] == 1
    micro = graph_features(["(0, 1, 2, 3, 3, 3)"], "transbench101", dataset="micro_jigsaw")
    assert micro.iloc[0]["g_n_nor_conv_3x3"] == 3
    macro = graph_features(["(1, 2, 3, 4, 0, 0)"], "transbench101_macro").iloc[0]
    assert macro["g_path_max"] == 4 and macro["g_n_block_4"] == 1
    g = to_graph(nb101, "nasbench101")
    assert g.labels[0] == "input" and g.labels[-1] == "output"


def test_unsupported_space_says_so_in_one_line():
    with pytest.raises(RankzcError) as err:
        graph_features(["abc"], "mystery")
    assert "cannot be turned into a graph" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(RankzcError, match="micro or macro"):
        graph_space("transbench101", ["(0, 1, 2, 3, 3, 3)"])
    enc = pd.Series(["(0, 1)", "(1, 0)"])
    with pytest.raises(RankzcError, match="cannot be turned into a graph"):
        encoding_features(enc, "mystery", "graph")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = encoding_features(enc, "mystery", "all")
    assert [c for c in out.columns if c.startswith("g_")] == []
    assert any("cannot be turned into a graph" in str(w.message) for w in caught)


def test_feature_matrix_graph(tmp_path):
    from rankzc.space import sample_architectures

    path = write_gcn_store(
        tmp_path / "b.db",
        sample_architectures(12, seed=1),
        lambda a, rng: 0.5,
        lambda a, rng: {"params": (1.0 * a.depth, 0.1, None)},
    )
    with Benchmark.open(path, readonly=True) as b:
        g = feature_matrix(b, "graph")
        al = feature_matrix(b, "all")
    assert g.proxies == [] and all(c.startswith("g_") for c in g.X.columns)
    assert list(al.X.columns[:1]) == ["params"] and set(g.X.columns) <= set(al.X.columns)
    assert np.isfinite(g.X.to_numpy()).all()


def test_graph_features_rankagg_and_transfer_do_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from rankzc.ranking.graphs import graph_features\n"
        f"graph_features([{GCN!r}], 'gcn-nas')\n"
        "graph_features(['(0, 1, 2, 3, 4, 0)'], 'nasbench201')\n"
        "import rankzc.ranking.rankagg, rankzc.ranking.transfer, rankzc.ranking.gnn\n"
        "print('torch' in sys.modules, 'torch_geometric' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
