"""Thread counts are capped before any native library sees them (issue 24, item 5).

``--threads 100000`` or ``OMP_NUM_THREADS=100000`` crashed LightGBM (exit 139) in
``fit``/``evaluate --models lambdarank``; ``--threads 1000`` ran for minutes.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from benchdata import write_gcn_store

from rankzc import threads
from rankzc.ranking.lambdarank import LambdaRankRanker
from rankzc.ranking.stratified import StratifiedRanker
from rankzc.space import sample_architectures


def test_flag_is_capped_with_a_note(restore_threads, capsys):
    top = threads.max_threads()
    assert top == threads.THREADS_PER_CORE * threads.cpu_count()
    policy = threads.resolve(threads=100_000)
    assert policy.threads == top and policy.requested == 100_000
    applied = threads.apply(threads=100_000)
    assert applied.threads == top and torch.get_num_threads() == top
    assert all(os.environ[v] == str(top) for v in threads.ENV_VARS)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--threads 100000 capped at {top} thread(s)" in err
    # within the cap: no note, the count as given
    assert threads.resolve(threads=top) == threads.ThreadPolicy(top, 1, "--threads")
    threads.apply(threads=1)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("value", ["100000", "9" * 5000, "100000,2"])
def test_absurd_environment_counts_are_capped_and_rewritten(restore_threads, capsys, value):
    restore_threads.setenv("OMP_NUM_THREADS", value)
    restore_threads.setenv("MKL_NUM_THREADS", "100000")
    policy = threads.apply()
    top = threads.max_threads()
    if len(value) > 18:  # not a count at all: the default
        assert policy.threads == 1 and policy.source == "default"
    else:
        assert policy.threads == top and policy.source == "OMP_NUM_THREADS"
        assert "OMP_NUM_THREADS 100000 capped at" in capsys.readouterr().err
    # the variables child processes and OpenMP read are rewritten, never left absurd
    assert os.environ["OMP_NUM_THREADS"] == str(policy.threads)
    assert os.environ["MKL_NUM_THREADS"] == str(policy.threads)
    assert torch.get_num_threads() == policy.threads


def test_worker_processes_read_a_capped_count(restore_threads):
    restore_threads.setenv("OMP_NUM_THREADS", "100000")
    assert threads.env_threads() == threads.max_threads()
    restore_threads.setenv("OMP_NUM_THREADS", "junk")
    assert threads.env_threads() == 1
    restore_threads.setenv("OMP_NUM_THREADS", "0")
    assert threads.env_threads(default=2) == 2


@pytest.mark.parametrize("cls", [LambdaRankRanker, StratifiedRanker])
def test_lightgbm_rankers_never_give_it_more_than_the_cap(restore_threads, cls):
    restore_threads.setenv("OMP_NUM_THREADS", "100000")
    assert cls(n_jobs=100_000)._threads() == threads.max_threads()
    assert cls()._threads() == threads.max_threads()
    restore_threads.delenv("OMP_NUM_THREADS")
    assert cls(n_jobs=-1)._threads() == 1  # LightGBM's "all": the policy's
    with pytest.raises(ValueError, match=f"{cls.name}: n_jobs must be an integer"):
        cls(n_jobs="many")._threads()
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"zen": rng.normal(size=60), "flops": rng.normal(size=60)})
    y = X["zen"].to_numpy() + 0.1 * rng.normal(size=60)
    model = cls(n_estimators=5, n_jobs=100_000).fit(X, y)
    assert np.isfinite(model.predict(X)).all()


def test_fit_with_absurd_thread_counts_in_a_subprocess(tmp_path):
    """The command that crashed inside LightGBM: it now runs and notes the cap."""

    def label(a, rng):
        return 0.5 + 0.01 * sum(a.op_counts().values()) + 0.001 * rng.normal()

    def scores(a, rng):
        return {"params": (1e4 * sum(a.op_counts().values()), 0.1, None)}

    store = write_gcn_store(tmp_path / "b.db", sample_architectures(30, seed=2), label, scores)
    code = "import sys; from rankzc.cli import main; sys.argv[0] = 'rankzc'; main()"
    env = {**os.environ, "OMP_NUM_THREADS": "100000"}
    for extra in ([], ["--threads", "100000"]):
        res = subprocess.run(
            [sys.executable, "-c", code, "fit", "--model", "lambdarank", "-b", str(store),
             "--param", "n_estimators=5", "--out", str(tmp_path / "r.rzc"), *extra],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert res.returncode == 0, (res.returncode, res.stderr[-800:])
        source = "--threads" if extra else "OMP_NUM_THREADS"
        assert f"Note: {source} 100000 capped at {threads.max_threads()}" in res.stderr
