"""Live ``rankzc search``: end to end with the tiny preset, resume after interruptions."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from rankzc.cli import main
from rankzc.search import Budget, parse_strategy
from rankzc.search.live import LiveHooks, LiveSearch
from rankzc.store import Benchmark
from rankzc.training import TrainConfig

FAST = ["--preset", "tiny", "--data", "synthetic:n=60", "--epochs", "1"]


class Stop(Exception):
    """Stands in for a kill at a chosen moment."""


def live(out: Path, hooks: LiveHooks | None = None, pool: int = 6) -> LiveSearch:
    cfg = TrainConfig.for_preset("tiny", data="synthetic:n=60", epochs=1, proxies="none")
    return LiveSearch(
        out, cfg, pool_size=pool, proxies=("params", "synflow"), hooks=hooks or LiveHooks()
    )


def trained(out: Path, key: str = "search:online:0") -> list[str]:
    with Benchmark.open(out, readonly=True) as b:
        return [a for a, _, _ in json.loads(b.meta[key])["trained"]]


def runs_per_arch(out: Path) -> dict[str, int]:
    with Benchmark.open(out, readonly=True) as b:
        return b.runs().groupby("arch_id").size().to_dict()


def test_resume_after_deterministic_interruptions(tmp_path):
    """Stopped while scoring, after planning a batch and after a step, the rerun search
    trains the same architectures as an uninterrupted one, each once."""
    budget = Budget(archs=3)
    whole = tmp_path / "whole.db"
    ref = live(whole).run([parse_strategy("online", init=2)], budget, [0])[0]
    ref_ids = [s.arch_id for s in ref.steps]
    assert len(ref_ids) == 3 and trained(whole) == ref_ids

    out = tmp_path / "cut.db"

    def stop_scoring(arch_id, done, total):
        if done == 2:
            raise Stop

    def stop_after_plan(name, seed, batch):
        raise Stop

    count = {"n": 0}

    def stop_after_step(name, seed, step):
        count["n"] += 1
        if count["n"] == 2:
            raise Stop

    for hooks in (
        LiveHooks(scored=stop_scoring),
        LiveHooks(planned=stop_after_plan),
        LiveHooks(step=stop_after_step),
    ):
        with pytest.raises(Stop):
            live(out, hooks).run([parse_strategy("online", init=2)], budget, [0])
    with Benchmark.open(out, readonly=True) as b:
        state = json.loads(b.meta["search:online:0"])
    assert len(state["trained"]) == 2  # the planned batch of the 2nd stop was trained first
    final = live(out).run([parse_strategy("online", init=2)], budget, [0])[0]
    assert [s.arch_id for s in final.steps] == ref_ids
    assert runs_per_arch(out) == {a: 1 for a in ref_ids}
    # labels are the pipeline's: the same as the uninterrupted run's
    assert [s.label for s in final.steps] == [s.label for s in ref.steps]
    # a rerun of a finished search trains nothing; a larger budget continues it
    again = live(out).run([parse_strategy("online", init=2)], Budget(archs=4), [0])[0]
    assert [s.arch_id for s in again.steps][:3] == ref_ids and len(again.steps) == 4
    assert sum(runs_per_arch(out).values()) == 4


def test_cli_live_limits_and_options_checked(tmp_path):
    out = tmp_path / "s.db"
    args = ["search", "--out", str(out), "-s", "random", "--train-budget", "2", "--sample", "4"]
    args += [*FAST, "--proxies", "params", "-q"]
    res = CliRunner().invoke(main, [*args, "--max-params", "1"])
    assert res.exit_code == 1 and "--max-params 1: none of the 4 sampled" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not out.exists()
    res = CliRunner().invoke(main, [*args, "--format", "json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    (s,) = result["strategies"]
    assert s["trained_mean"] == 2 and s["best"]["params"] > 0 and s["best"]["arch"]
    assert s["cost"]["proxy_seconds_mean"] > 0 and s["cost"]["train_seconds_mean"] > 0
    # one epoch on 60 samples: labels at chance, named in one line (stderr beside JSON)
    assert result["chance"].startswith("Chance level: no label is more than")
    assert res.stderr.count("Chance level") == 1
    # the store holds the pool's proxies (with their settings) and the two runs
    with Benchmark.open(out, readonly=True) as b:
        assert len(b.architectures()) == 4 and len(b.labels()) == 2
        assert b.features(-1).shape == (4, 1)
        settings = json.loads(b.meta["proxy_settings"])
        assert settings["preset"] == "tiny" and settings["resample"] is False
    # the same store with another pool size is refused before any work, unchanged
    before = hashlib.sha256(out.read_bytes()).hexdigest()
    res = CliRunner().invoke(main, [*args[:-5], "--sample", "5", *FAST, "--proxies", "params"])
    assert res.exit_code == 1 and "pool=4" in res.output, res.output
    assert hashlib.sha256(out.read_bytes()).hexdigest() == before


def test_parallel_pool_scoring_matches_serial(tmp_path):
    """Issue 26: two workers (each with its own minibatch, deepest candidates first) give
    exactly the scores of one process."""
    from rankzc.search.pool import score_pool
    from rankzc.space import sample_architectures

    archs = sample_architectures(3, depths=(4, 6), seed=3)
    settings = live(tmp_path / "x.db").settings(["synflow", "grad_norm", "nwot"])
    one = score_pool(archs, settings, workers=1)
    seen = []
    two = score_pool(archs, settings, workers=2, on_result=lambda a, r: seen.append(a))
    assert sorted(seen) == sorted(a.arch_id for a in archs)
    assert {a: {n: r[0] for n, r in v.items()} for a, v in one.items()} == {
        a: {n: r[0] for n, r in v.items()} for a, v in two.items()
    }


def test_driver_scores_candidates_beside_its_workers(tmp_path, monkeypatch):
    """Issue 26: with --workers 2 this process is one of the two workers (it is already
    started while the spawned one imports), every candidate is scored exactly once, and
    the scores are those of one process."""
    from rankzc.proxies import features
    from rankzc.search import pool
    from rankzc.space import sample_architectures

    archs = sample_architectures(4, depths=(4,), seed=5)
    settings = live(tmp_path / "x.db").settings(["synflow", "params"])
    here = []
    real = features.iter_scores

    def counted(archs, *args, **kwargs):
        here.extend(archs)
        return real(archs, *args, **kwargs)

    # this process's scorer, counted; the spawned worker imports its own
    monkeypatch.setattr(features, "iter_scores", counted)
    seen = []
    two = pool.score_pool(archs, settings, workers=2, on_result=lambda a, r: seen.append(a))
    assert sorted(seen) == sorted(a.arch_id for a in archs)  # each exactly once
    assert 1 <= len(here) <= len(archs)  # this process took part
    monkeypatch.setattr(features, "iter_scores", real)
    one = pool.score_pool(archs, settings, workers=1)
    assert {a: {n: r[0] for n, r in v.items()} for a, v in one.items()} == {
        a: {n: r[0] for n, r in v.items()} for a, v in two.items()
    }


@pytest.mark.slow
def test_sigkill_twice_then_rerun_gives_the_uninterrupted_set(tmp_path):
    """The issue's command, killed with SIGKILL twice at random moments and rerun."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-c", "from rankzc.cli import main; main()", "search"]
    args = ["--strategy", "online", "--train-budget", "6", "--sample", "40", "--preset", "tiny"]
    args += ["--data", "synthetic:n=60", "--epochs", "1", "--proxies", "params,synflow", "-q"]
    whole = tmp_path / "whole.db"
    t0 = time.perf_counter()
    subprocess.run([*cmd, *args, "--out", str(whole)], env=env, check=True, capture_output=True)
    total = time.perf_counter() - t0
    out = tmp_path / "cut.db"
    rng = random.Random(int(os.environ.get("RANKZC_KILL_SEED", "0")))
    codes = []
    for _ in range(2):
        proc = subprocess.Popen([*cmd, *args, "--out", str(out)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(rng.uniform(0.2, 0.8) * total)
        proc.send_signal(signal.SIGKILL)
        codes.append(proc.wait())
    assert -signal.SIGKILL in codes  # at least one kill caught the search at work
    subprocess.run([*cmd, *args, "--out", str(out)], env=env, check=True, capture_output=True)
    assert trained(out) == trained(whole)
    assert runs_per_arch(out) == {a: 1 for a in trained(whole)}


@pytest.mark.slow
def test_ray_pool_scoring_matches_serial(tmp_path):
    pytest.importorskip("ray")
    from rankzc.search.pool import score_pool
    from rankzc.space import sample_architectures

    archs = sample_architectures(2, depths=(4,), seed=5)
    settings = live(tmp_path / "x.db").settings(["params", "synflow"])
    seen = []
    ray = score_pool(
        archs, settings, executor="ray", workers=1, on_result=lambda a, r: seen.append(a)
    )
    one = score_pool(archs, settings)
    assert sorted(seen) == sorted(a.arch_id for a in archs)
    assert {a: {n: r[0] for n, r in v.items()} for a, v in ray.items()} == {
        a: {n: r[0] for n, r in v.items()} for a, v in one.items()
    }
