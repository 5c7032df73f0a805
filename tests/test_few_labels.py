"""Few labels: every ranker is sensible at 20 labels; the learning curve reaches the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import spearmanr

from rankzc.cli import main
from rankzc.ranking import RANKERS, make_ranker
from rankzc.ranking.features import arch_features
from rankzc.ranking.graphs import graph_features


def data(n: int, seed: int):
    """NB201 cells; accuracy = longest conv path + noise; three noisy proxies (one falling
    with accuracy: most proxies point the right way, as rankagg assumes) and a noise one."""
    rng = np.random.default_rng(seed)
    tuples = [tuple(int(v) for v in rng.integers(0, 5, 6)) for _ in range(n)]
    enc = pd.Series([str(t) for t in tuples])
    g = graph_features(enc, "nasbench201")
    y = g["g_pathmax_nor_conv_3x3"].to_numpy() + 0.3 * rng.normal(size=n)
    X = pd.concat(
        [
            pd.DataFrame(
                {
                    "p1": np.exp(y + 0.5 * rng.normal(size=n)),
                    "p2": -(y + 0.7 * rng.normal(size=n)),
                    "p3": y + 0.9 * rng.normal(size=n),
                    "noise": rng.normal(size=n),
                }
            ),
            arch_features(enc, "nasbench201"),
        ],
        axis=1,
    )
    return X, y


@pytest.mark.parametrize("name", list(RANKERS))
def test_sensible_at_twenty_labels(name):
    X, y = data(20, 0)
    Xt, yt = data(300, 1)
    model = make_ranker(name).fit(X, y)
    pred = model.predict(Xt)
    assert np.all(np.isfinite(pred))
    rho = spearmanr(pred, yt)[0]
    # the best proxy alone gives about 0.8; no model may fall apart on 20 labels (the graph
    # encoder cannot learn this graph-and-noise target from 20 graphs, but stays positive)
    assert rho > (0.45 if name == "gnn" else 0.6), (name, rho)


@pytest.fixture(scope="module")
def nb201(nbsz_file, tmp_path_factory):
    from rankzc.importers.nbsz import import_nbsz
    from rankzc.ranking.features import feature_matrix
    from rankzc.store import Benchmark

    path = tmp_path_factory.mktemp("nb201") / "n.db"
    import_nbsz(nbsz_file, path)
    with Benchmark.open(path, readonly=True) as b:
        return feature_matrix(b, "all")


@pytest.mark.parametrize("name", list(RANKERS))
def test_twenty_labels_on_nas_bench_201(nb201, name):
    """Three draws of 20 labelled architectures, scored on the other 705."""
    X, y = nb201.X.reset_index(drop=True), nb201.y.to_numpy(dtype=float)
    rng = np.random.default_rng(0)
    rhos = []
    for _ in range(3):
        tr = rng.choice(len(y), 20, replace=False)
        te = np.setdiff1d(np.arange(len(y)), tr)
        pred = make_ranker(name).fit(X.iloc[tr], y[tr]).predict(X.iloc[te])
        rhos.append(spearmanr(pred, y[te])[0])
    # measured: single 0.73, the others 0.78-0.84 (best proxy over all 725: 0.79)
    assert np.mean(rhos) > 0.65, (name, rhos)


def test_learning_curve_in_report(tmp_path):
    from rankzc.space import sample_architectures
    from rankzc.store import Benchmark

    rng = np.random.default_rng(0)
    path = tmp_path / "b.db"
    archs = sample_architectures(60, seed=4)
    with Benchmark.create(path, space="gcn-nas", dataset="toy", source="test") as b:
        b.add_architectures(
            {"arch_id": a.arch_id, "space": "gcn-nas", "encoding": str(a), "depth": a.depth}
            for a in archs
        )
        for a in archs:
            q = rng.normal()
            run, _, _ = b.get_or_create_run(a.arch_id, 0, {"toy": True})
            b.finish_run(run, val_acc=0.5 + 0.01 * q, train_seconds=1)
            b.record_proxies(
                a.arch_id, -1, {"a": (q + rng.normal(), 0.1, None), "b": (q, 0.1, None)}
            )
    rep = tmp_path / "rep"
    res = CliRunner().invoke(
        main,
        ["evaluate", "-b", str(path), "--models", "single,wam,rankagg", "--repeats", "1",
         "--train-size", "10,20", "--report", str(rep), "--format", "json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    text = (rep / "report.md").read_text()
    assert "## Learning curve" in text and "| rankagg |" in text and "n = 20" in text
    assert (rep / "learning_curve.png").stat().st_size > 1000
    res = CliRunner().invoke(main, ["evaluate", "-b", str(path), "--models", "wam",
                                    "--train-size", "1,x"])  # fmt: skip
    assert res.exit_code == 2 and "--train-size" in res.output
