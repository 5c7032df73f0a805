"""``rankzc bench build``: end to end with the tiny preset, bad input, Ray, SIGKILL + resume."""

from __future__ import annotations

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
from rankzc.store import Benchmark
from rankzc.training import checkpoint_dir

TINY = ["--preset", "tiny", "--data", "synthetic:n=60", "--proxies", "params,synflow"]


def invoke(*args: str):
    return CliRunner().invoke(main, ["bench", "build", *args, "--quiet"])


def final_set(path: Path) -> dict[str, float]:
    with Benchmark.open(path, readonly=True) as b:
        return b.labels()["val_acc"].to_dict()


def test_build_tiny_local(tmp_path):
    out = tmp_path / "b.db"
    res = invoke("--sample", "4", "--epochs", "1", "--out", str(out), *TINY, "--format", "json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["done"] == 4 and summary["failed"] == 0
    assert res.stderr.count("Chance level") == 1  # beside JSON: on stderr
    with Benchmark.open(out) as b:
        assert b.counts()["done"] == 4 and b.proxy_epochs() == [-1]
        assert b.meta["label"].startswith("val_acc = top-1 validation accuracy after the last")
    res = invoke("--sample", "4", "--epochs", "1", "--out", str(out), *TINY)
    assert res.exit_code == 0 and "0 trained" in res.output and "4 already done" in res.output
    # one epoch on 60 samples learns nothing: the build says so in one line (and in JSON)
    lines = [ln for ln in res.output.splitlines() if "Chance level" in ln]
    assert len(lines) == 1 and summary["chance"] == lines[0].split(": ", 1)[1]
    assert lines[0].startswith(f"{out}: Chance level: no label is more than 0.020 above chance")


@pytest.mark.slow  # 26 s; the Ray executor's default test is test_training's streaming one
def test_build_tiny_ray(tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "r.db"
    local = tmp_path / "l.db"
    args = ["--sample", "4", "--epochs", "1", *TINY, "--warmup-epochs", "1"]
    # "local" goes through the --ray-address branch (ray.init(address=...)) and starts
    # a local cluster; a real cluster address works the same way
    res = invoke(*args, "--out", str(out), "--executor", "ray", "--ray-address", "local")
    assert res.exit_code == 0, res.output
    with Benchmark.open(out) as b:
        assert b.counts()["done"] == 4 and len(b.epochs()) == 4 and b.proxy_epochs() == [-1, 0]
    # the driver wrote the same labels a local build writes
    assert invoke(*args, "--out", str(local)).exit_code == 0
    assert final_set(out) == final_set(local)


def test_archs_from_file(tmp_path):
    from rankzc.space import sample_architectures, save_architectures

    f = tmp_path / "a.json"
    archs = sample_architectures(2, depths=(4,), seed=9)
    save_architectures(archs, f)
    out = tmp_path / "f.db"
    res = invoke("--archs", str(f), "--epochs", "1", "--out", str(out), *TINY, "--proxies", "none")
    assert res.exit_code == 0, res.output
    assert set(final_set(out)) == {a.arch_id for a in archs}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--preset", "huge"], "huge"),
        (["--epochs", "0"], "--epochs"),
        (["--sample", "0"], "--sample"),
        (["--archs", "missing.json"], "no such file"),
        (["--archs", "BAD"], "--archs"),
        (["--proxies", "nope"], "nope"),
        (["--warmup-epochs", "5", "--epochs", "2"], "--warmup-epochs"),
        (["--data", "synthetic:frames=x"], "frames"),
        (["--depths", "5"], "--depths"),
        (["--ray-address", "1.2.3.4:6379"], "--ray-address"),
    ],
)
def test_bad_input_refused_before_training(tmp_path, monkeypatch, args, message):
    import rankzc.training.runner as runner

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, "run_local", lambda *a, **k: pytest.fail("training started"))
    base = {"--sample": "2", "--out": "b.db", "--preset": "tiny"}
    if "--archs" in args:
        del base["--sample"]
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    flat = [x for kv in base.items() for x in kv]
    res = invoke(*flat)
    assert res.exit_code != 0
    lines = [line for line in res.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], res.output
    assert not (tmp_path / "b.db").exists()


def test_cuda_without_gpu_is_refused(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    res = invoke("--sample", "1", "--out", str(tmp_path / "b.db"), *TINY, "--device", "cuda")
    assert res.exit_code == 1 and "--device cuda" in res.output
    assert not (tmp_path / "b.db").exists()


def test_invalid_architecture_file_and_unwritable_out(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"space": "gcn-nas", "depth": 4, "blocks": [[1] * 5] * 4}]))
    res = invoke("--archs", str(bad), "--out", str(tmp_path / "b.db"), *TINY)
    assert res.exit_code == 1 and res.output.startswith("Error:")
    assert len(res.output.strip().splitlines()) == 1
    # a missing output directory is created (the rule of every command)
    res = invoke("--archs", str(bad), "--out", str(tmp_path / "nodir" / "b.db"), *TINY)
    assert res.exit_code == 1 and "does not exist" not in res.output
    assert (tmp_path / "nodir").is_dir()
    res = invoke("--sample", "1", "--out", str(tmp_path), *TINY)
    assert res.exit_code == 1 and "is a directory" in res.output
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        target = ro
        if _writable(ro):  # root ignores permissions: try a read-only system directory
            target = Path("/sys")
            if not target.is_dir() or _writable(target):
                pytest.skip("no unwritable directory available to this user")
        res = invoke("--sample", "1", "--out", str(target / "b.db"), *TINY)
        assert res.exit_code == 1 and "not writable" in res.output
        assert len(res.output.strip().splitlines()) == 1
    finally:
        ro.chmod(0o755)


def _writable(directory: Path) -> bool:
    probe = directory / ".probe"
    try:
        probe.write_text("x")
    except OSError:
        return False
    probe.unlink()
    return True


# --------------------------------------------------------------- SIGKILL test
KILL_ARGS = [
    "--preset",
    "tiny",
    "--data",
    "synthetic:n=40,frames=8",
    "--sample",
    "3",
    "--depths",
    "4,6",
    "--epochs",
    "2",
    "--warmup-epochs",
    "1",
    "--proxies",
    "params,synflow",
    "--seed",
    "3",
    "--device",
    "cpu",
    "--quiet",
]


def _cmd(out: Path) -> list[str]:
    return [sys.executable, "-m", "rankzc.cli", "bench", "build", "--out", str(out), *KILL_ARGS]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _run_timed(out: Path) -> tuple[float, float]:
    """Run a build to the end; seconds until the store appears and after it."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        _cmd(out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    while not out.exists() and proc.poll() is None:
        time.sleep(0.02)
    t1 = time.perf_counter()
    _, err = proc.communicate()
    assert proc.returncode == 0, err.decode()
    return t1 - t0, time.perf_counter() - t1


@pytest.mark.slow  # 19 s; resume after an interruption is in the default suite elsewhere
def test_sigkill_at_random_points_then_resume(tmp_path):
    ref = tmp_path / "ref.db"
    _, training = _run_timed(ref)
    expected = final_set(ref)
    assert len(expected) == 3

    out = tmp_path / "k.db"
    rng = random.Random(12345)
    kills = 0
    for _ in range(5):
        proc = subprocess.Popen(
            _cmd(out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        while not out.exists() and proc.poll() is None:  # imports and data loading done
            time.sleep(0.01)
        try:  # a random instant of the training part
            proc.wait(timeout=rng.uniform(0.0, 0.8) * training)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        if proc.returncode == 0:
            break
    assert kills >= 2
    subprocess.run(_cmd(out), env=_env(), check=True, capture_output=True)
    got = final_set(out)
    assert got == expected  # same architectures, same labels, bit for bit
    with Benchmark.open(out, readonly=True) as b:
        runs = b.runs()
        assert len(runs) == 3 and (runs["status"] == "done").all()
        assert runs["arch_id"].is_unique
        epochs = b.epochs()
        assert len(epochs) == 6 and not epochs.duplicated(["run_id", "epoch"]).any()
        with Benchmark.open(ref, readonly=True) as r:
            a = epochs.set_index(["arch_id", "epoch"])[["val_acc", "val_loss", "train_loss"]]
            e = r.epochs().set_index(["arch_id", "epoch"])[["val_acc", "val_loss", "train_loss"]]
            assert a.sort_index().equals(e.sort_index())
            pa = b.proxy_records().set_index(["arch_id", "epoch", "name"])["score"].sort_index()
            pr = r.proxy_records().set_index(["arch_id", "epoch", "name"])["score"].sort_index()
            assert pa.index.equals(pr.index) and len(pa) == 3 * 2 * 2
    assert not checkpoint_dir(out).exists()


def test_empty_or_tableless_out_is_refused_untouched(tmp_path):
    """An empty file or an SQLite file without tables is not a store: refuse, never replace."""
    import sqlite3

    out = tmp_path / "e.db"
    out.write_bytes(b"")
    res = invoke("--sample", "1", "--epochs", "1", "--out", str(out), *TINY)
    assert res.exit_code == 1 and "empty file" in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1
    assert out.read_bytes() == b""
    out2 = tmp_path / "w.db"
    conn = sqlite3.connect(out2)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    before = out2.read_bytes()
    res = invoke("--sample", "1", "--epochs", "1", "--out", str(out2), *TINY)
    assert res.exit_code == 1 and "not a rankzc benchmark" in res.output, res.output
    assert out2.read_bytes() == before


# ------------------------------------------------------ three builds, one store
THREE_ARGS = [
    "--preset",
    "tiny",
    "--data",
    "synthetic:n=60,frames=8",
    "--sample",
    "6",
    "--depths",
    "4,6",
    "--epochs",
    "2",
    "--proxies",
    "params",
    "--seed",
    "5",
    "--device",
    "cpu",
]


@pytest.mark.slow
def test_three_builds_on_one_store_equal_one_build(tmp_path):
    """A runs; B is refused while A runs; C, started after B, must be refused too.

    Before the fix B's refusal removed A's lock file, C then trained beside A and
    cleaned A's in-flight checkpoint files. Now only one build trains, and the store
    equals a single build's.
    """
    ref = tmp_path / "ref.db"
    res = invoke(*THREE_ARGS, "--out", str(ref))
    assert res.exit_code == 0, res.output
    out = tmp_path / "s.db"
    a = subprocess.Popen(
        [sys.executable, "-m", "rankzc.cli", "bench", "build", "--out", str(out), *THREE_ARGS],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not out.exists() and a.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # A holds the lock once its store exists
    assert a.poll() is None, "build A ended before B and C could start"
    refused = []
    for _ in range(2):  # B, then C
        res = invoke(*THREE_ARGS, "--out", str(out), "--format", "json")
        refused.append(res)
    still_running = a.poll() is None
    stdout, stderr = a.communicate(timeout=300)
    assert a.returncode == 0, stderr
    assert still_running, "build A ended before C finished: the check proves nothing"
    for res in refused:
        assert res.exit_code == 1 and "another build is writing this store" in res.output, (
            res.output
        )
    assert "6 trained, 0 failed" in stdout
    assert final_set(out) == final_set(ref)
    with Benchmark.open(out, readonly=True) as b:
        assert b.counts()["failed"] == 0 and b.counts()["runs"] == 6
    assert not checkpoint_dir(out).exists()


def test_exit_code_counts_architectures_failed_in_this_run(tmp_path, monkeypatch):
    """A build where an architecture fails exits 1, with the count in its last line."""
    from rankzc.training import trainer as trainer_mod

    run = trainer_mod.Trainer.run
    victims = []

    def failing_run(self, *args, **kwargs):
        if not victims:
            victims.append(self.arch.arch_id)
            raise RuntimeError("disk on fire")
        return run(self, *args, **kwargs)

    monkeypatch.setattr(trainer_mod.Trainer, "run", failing_run)
    out = tmp_path / "f.db"
    res = invoke("--sample", "2", "--epochs", "1", "--out", str(out), *TINY)
    assert res.exit_code == 1, res.output
    last = res.output.strip().splitlines()[-1]
    assert "1 trained, 1 failed" in last, res.output
    assert f"failed {victims[0]}: RuntimeError: disk on fire" in res.output
    res = invoke("--sample", "2", "--epochs", "1", "--out", str(out), *TINY, "--format", "json")
    assert res.exit_code == 0, res.output  # nothing failed in this run (skipped)
    assert json.loads(res.stdout)["skipped_failed"] == 1


def test_refused_build_leaves_the_holders_lock_and_files(tmp_path):
    """In one process too: a refused build_lock removes nothing (before: the lock file)."""
    from rankzc.errors import RankzcError
    from rankzc.training.runner import build_lock
    from rankzc.writelock import lock_path

    out = tmp_path / "l.db"
    with build_lock(out) as ckdir:
        inflight = ckdir / ".a.pt.123.tmp"  # the holder's checkpoint being written
        inflight.write_bytes(b"x")
        lock = lock_path(out)
        ino = lock.stat().st_ino
        for _ in range(2):
            with pytest.raises(RankzcError, match="another build"), build_lock(out):
                pass
        assert lock.stat().st_ino == ino and inflight.exists()
        inflight.unlink()
    assert not checkpoint_dir(out).exists()  # the holder cleaned up after itself
    assert not lock.exists()
