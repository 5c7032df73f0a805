"""Every NAS-Bench-Suite-Zero space end to end: import (space from content or file name),
``--features arch|graph|all`` and ``gnn``, with hand-counted graph features.

Fixtures are written in the suite's ``zc_<space>.json`` layout ({dataset: {arch: record}},
records ``{"idx", "arch", "val_accuracy" (percent), proxy: {"score", "time"}}``) with the
encodings NASLib documents (nasbench101 ``convert_spec_to_tuple``, nasbench301 compact
genotype, transbench101 micro/macro op indices)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from rankzc.cli import main
from rankzc.importers import import_nbsz
from rankzc.ranking.features import feature_matrix
from rankzc.ranking.graphs import graph_features
from rankzc.store import Benchmark


def _nb101(rng) -> tuple[tuple[int, ...], float]:
    n = int(rng.integers(4, 8))
    m = np.triu(rng.integers(0, 2, size=(n, n)), 1)
    m[0, 1] = m[n - 2, n - 1] = 1  # input feeds a vertex; a vertex feeds the output
    ops = [0, *(int(o) for o in rng.integers(2, 5, size=n - 2)), 1]
    return (*(int(v) for v in m.flatten()), *ops), float(sum(o == 4 for o in ops))


def _nb201(rng):
    ops = tuple(int(v) for v in rng.integers(0, 5, size=6))
    return ops, float(sum(o in (2, 3) for o in ops))


def _nb301(rng):
    cells = []
    for _ in range(2):
        cells.append(
            [(int(rng.integers(0, 2 + k // 2)), int(rng.integers(0, 7))) for k in range(8)]
        )
    return cells, float(sum(op in (3, 4, 5, 6) for c in cells for _, op in c))


def _micro(rng):
    ops = tuple(int(v) for v in rng.integers(0, 4, size=6))
    return ops, float(sum(o in (2, 3) for o in ops))


def _macro(rng):
    blocks = [int(v) for v in rng.integers(1, 5, size=int(rng.integers(4, 7)))]
    return tuple(blocks + [0] * (6 - len(blocks))), float(len(blocks) + sum(b > 2 for b in blocks))


SPACES = {
    # file name, dataset key, generator
    "nasbench101": ("zc_nasbench101.json", "cifar10", _nb101),
    "nasbench201": ("zc_nasbench201.json", "cifar100", _nb201),
    "nasbench301": ("zc_nasbench301.json", "cifar10", _nb301),
    "transbench101_micro": ("zc_transbench101_micro.json", "jigsaw", _micro),
    "transbench101_macro": ("zc_transbench101_macro.json", "class_scene", _macro),
}


def write_space(tmp_path, space: str, n: int = 48, seed: int = 0, name: str | None = None):
    """A suite file of ``n`` distinct architectures; accuracies (percent) follow a size
    measure of the architecture, proxies are that measure plus noise (and one noise)."""
    fname, dataset, gen = SPACES[space]
    rng = np.random.default_rng(seed)
    table = {}
    while len(table) < n:
        enc, size = gen(rng)
        arch = str(enc)
        if arch in table:
            continue
        acc = float(np.clip(50 + 4 * size + rng.normal(0, 1.5), 1, 99))
        rec = {"idx": str(len(table)), "arch": arch, "val_accuracy": round(acc, 2)}
        for p, noise in (("synflow", 0.5), ("params", 1.0), ("flops", 1.5), ("jacov", 9.0)):
            rec[p] = {"score": float(size + rng.normal(0, noise)), "time": 0.01}
        table[arch] = rec
    path = tmp_path / (name or fname)
    path.write_text(json.dumps({dataset: table}))
    return path, table


@pytest.mark.parametrize("space", list(SPACES))
def test_space_from_file_name_or_content(tmp_path, space):
    path, table = write_space(tmp_path, space, n=12)
    import_nbsz(path, tmp_path / "a.db")
    with Benchmark.open(tmp_path / "a.db") as bench:
        assert bench.meta["space"] == space
        assert len(bench.labels()) == 12
    if "transbench" in space:  # same shapes as NAS-Bench-201: only the name tells
        return
    other = tmp_path / "sub"
    other.mkdir()
    anon = other / "archs.json"
    anon.write_text(path.read_text())
    import_nbsz(anon, tmp_path / "b.db")
    with Benchmark.open(tmp_path / "b.db") as bench:
        assert bench.meta["space"] == space


@pytest.mark.parametrize("space", list(SPACES))
def test_features_of_every_space(tmp_path, space):
    """The store's space reaches the features (NB101 under --space used to arrive as '')."""
    path, table = write_space(tmp_path, space, n=20, name="archs.json")
    out = tmp_path / "s.db"
    res = CliRunner().invoke(
        main, ["import", "nbsz", str(path), "--out", str(out), "--space", space]
    )
    assert res.exit_code == 0, res.output
    with Benchmark.open(out) as bench:
        fs = feature_matrix(bench, "all")
    assert fs.space == space
    g = [c for c in fs.X.columns if c.startswith("g_")]
    pos = [c for c in fs.X.columns if "pos" in c and "=" in c]
    assert g and pos and fs.X.notna().all().all()
    if space != "nasbench201":
        assert all(c.startswith(f"{space}.pos") for c in pos)
    # each architecture's one-hot row holds one value per position of its encoding
    assert (fs.X[pos].sum(axis=1) > 0).all()


def test_gnn_rebuilds_each_space_from_the_columns(tmp_path):
    from rankzc.ranking.gnn import encodings_from_columns

    for space in SPACES:
        path, table = write_space(tmp_path, space, n=15, name=f"{space}.json")
        import_nbsz(path, tmp_path / f"{space}.db", space=space)
        with Benchmark.open(tmp_path / f"{space}.db") as bench:
            fs = feature_matrix(bench, "arch")
            archs = bench.architectures()["encoding"].reindex(fs.X.index)
        encs, kind = encodings_from_columns(fs.X.to_numpy(), list(fs.X.columns))
        assert kind == ("tuple" if space == "nasbench201" else space)
        norm = [str(json.loads(json.dumps(eval(a)))) for a in archs]  # lists, as rebuilt
        rebuilt = [str(json.loads(json.dumps(eval(e)))) for e in encs]
        assert rebuilt == norm, space


# hand-counted graph features, one architecture per space ---------------------------
def test_nb101_hand_counted():
    # 4 vertices: input -> conv3x3 -> output, input -> conv1x1 -> output
    enc = str((0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 4, 3, 1))
    f = graph_features([enc], "nasbench101").iloc[0]
    assert f["g_n_conv3x3-bn-relu"] == 1 and f["g_n_conv1x1-bn-relu"] == 1
    assert f["g_n_maxpool3x3"] == 0
    assert f["g_n_paths"] == 2 and f["g_path_max"] == 1 and f["g_path_min"] == 1


def test_nb201_hand_counted():
    # edges (1,2) conv3 (1,3) conv3 (1,4) none (2,3) conv1 (2,4) skip (3,4) avg_pool:
    # paths 1-2-4 (1 op), 1-2-3-4 (3 ops), 1-3-4 (2 ops); 1-4 is none
    f = graph_features(["(2, 2, 1, 3, 0, 4)"], "nasbench201").iloc[0]
    assert f["g_n_nor_conv_3x3"] == 2 and f["g_n_none"] == 1 and f["g_n_skip_connect"] == 1
    assert f["g_n_paths"] == 3 and f["g_path_max"] == 3 and f["g_path_min"] == 1
    assert f["g_paths_nor_conv_3x3"] == 3 and f["g_pathmax_nor_conv_3x3"] == 1
    assert f["g_paths_avg_pool_3x3"] == 2


def test_nb301_hand_counted():
    normal = [(0, 3), (1, 3), (0, 2), (2, 4), (1, 0), (3, 5), (0, 6), (4, 1)]
    reduce = [(0, 0), (1, 0), (2, 3), (0, 3), (1, 5), (3, 6), (4, 1), (2, 2)]
    f = graph_features([str([normal, reduce])], "nasbench301").iloc[0]
    counts = {"max_pool_3x3": 3, "avg_pool_3x3": 2, "skip_connect": 2, "sep_conv_3x3": 4,
              "sep_conv_5x5": 1, "dil_conv_3x3": 2, "dil_conv_5x5": 2}  # fmt: skip
    for op, c in counts.items():
        assert f[f"g_n_{op}"] == c, op
    # shortest: input -> max_pool (reduce, pair 0) -> reduce node 0 -> concat -> output
    assert f["g_connected"] == 1 and f["g_path_min"] == 1


def test_transbench_micro_hand_counted():
    # TransNAS-Bench-101 order: edges (1,2) conv3 (1,3) skip (2,3) conv1 (1,4) none
    # (2,4) conv3 (3,4) conv3: paths 1-2-4 (2 ops), 1-2-3-4 (3), 1-3-4 (1)
    f = graph_features(["(3, 1, 2, 0, 3, 3)"], "transbench101_micro").iloc[0]
    assert f["g_n_nor_conv_3x3"] == 3 and f["g_n_nor_conv_1x1"] == 1 and f["g_n_none"] == 1
    assert f["g_n_paths"] == 3 and f["g_path_max"] == 3 and f["g_path_min"] == 1


def test_transbench_macro_hand_counted():
    f = graph_features(["(4, 1, 3, 2, 2, 0)"], "transbench101_macro").iloc[0]
    assert [f[f"g_n_block_{b}"] for b in (1, 2, 3, 4)] == [1, 2, 1, 1]
    assert f["g_n_paths"] == 1 and f["g_path_max"] == 5 and f["g_path_min"] == 5


# acceptance: a fixture store of each space, no flags, every model ---------------------
@pytest.mark.parametrize("space", list(SPACES))
def test_evaluate_all_models_all_features(tmp_path, space):
    path, _ = write_space(tmp_path, space, n=48)
    out = tmp_path / "s.db"
    runner = CliRunner()
    res = runner.invoke(main, ["import", "nbsz", str(path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        main,
        ["evaluate", "-b", str(out), "--models", "all", "--features", "all", "--folds", "3",
         "--repeats", "1", "--bootstrap", "0", "--format", "json", "-q"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.output[res.output.index("{") :])
    assert data["features"] == "all" and data["n"] == 48
    for name in ("single", "vote", "wam", "ranknet", "lambdarank", "rankagg", "gnn"):
        value = data["models"][name]["spearman_mean"]
        assert isinstance(value, float) and np.isfinite(value), (name, data["models"][name])
    # the label follows the size measure the proxies carry: the learned models see it
    assert data["models"]["lambdarank"]["spearman_mean"] > 0.5
