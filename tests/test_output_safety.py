"""``fit --out`` and ``export --out`` on a full disk or in a read-only directory.

The full disk is real: the file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored) makes
the kernel refuse the write with EFBIG, exactly where a full disk gives ENOSPC.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from benchdata import write_gcn_store
from click.testing import CliRunner

from rankzc.cli import main
from rankzc.space import sample_architectures
from rankzc.store import Benchmark

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "b.db"
    return write_gcn_store(
        path,
        sample_architectures(30, seed=3),
        lambda a, rng: 0.5 + 0.1 * rng.random(),
        lambda a, rng: {"params": (rng.random(), 0.1, None), "nwot": (rng.normal(), 0, None)},
    )


@contextlib.contextmanager
def file_size_limit(nbytes: int):
    """Writes past ``nbytes`` fail with EFBIG (a full disk), in this process only."""
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)


def _commands(store: Path, directory: Path) -> dict[str, list[str]]:
    return {
        "export": ["export", "--benchmark", str(store), "--out", str(directory / "t.csv")],
        "fit": ["fit", "-m", "single", "-b", str(store), "--out", str(directory / "r.rzc")],
    }


@pytest.mark.parametrize("command", ["export", "fit"])
def test_full_disk_gives_one_line_and_leaves_no_temp_file(store, tmp_path, command):
    args = _commands(store, tmp_path)[command]
    target = Path(args[-1])
    target.write_bytes(b"previous")  # a file being replaced must survive a failed write
    # a reader keeps the store's WAL index in place, so only the output write meets the limit
    with Benchmark.open(store, readonly=True) as keep, file_size_limit(64):
        keep.counts()
        res = CliRunner().invoke(main, args)
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), res.output
    assert f"{target}: cannot write (File too large)" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
    assert target.read_bytes() == b"previous"


READONLY = textwrap.dedent(
    """
    import json, sys
    from click.testing import CliRunner
    from rankzc.cli import main
    out = {}
    for name, args in json.loads(sys.argv[1]).items():
        res = CliRunner().invoke(main, args)
        out[name] = [res.exit_code, res.output]
    print(json.dumps(out))
    """
)


def test_read_only_directory_gives_one_line(store, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    args = json.dumps(_commands(store, ro))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    if os.geteuid() != 0:
        ro.chmod(0o555)
        cmd = [sys.executable, "-c", READONLY, args]
    else:  # root writes anywhere: run inside a private read-only bind mount
        if shutil.which("unshare") is None:
            pytest.skip("needs unshare to make a read-only directory as root")
        if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
            pytest.skip("unshare -rm is not permitted here")
        env["SCRIPT"], env["ARGS"] = READONLY, args
        cmd = [
            "unshare",
            "-rm",
            "sh",
            "-c",
            f'mount --bind -o ro {ro} {ro} && exec {sys.executable} -c "$SCRIPT" "$ARGS"',
        ]
    try:
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    finally:
        ro.chmod(0o755)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    for name, (code, output) in got.items():
        lines = output.strip().splitlines()
        assert code == 1 and len(lines) == 1, (name, output)
        assert str(ro) in lines[0], (name, output)
        assert "cannot write" in lines[0] or "not writable" in lines[0], (name, output)
        assert "/." not in lines[0]  # the hidden temporary file is not what the user sees
    assert list(ro.iterdir()) == []
