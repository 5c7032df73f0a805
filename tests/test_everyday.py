"""Everyday use (issue 15): thread policy, progress, tables, one table layout, paths, flags."""

from __future__ import annotations

import io
import os
import re
import shlex
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from rankzc import threads
from rankzc.cli import main
from rankzc.commands._common import print_table
from rankzc.progress import BuildProgress, Progress

ROOT = Path(__file__).resolve().parents[1]


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def _walk(cmd, path=("rankzc",)):
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _walk(sub, (*path, name))
    else:
        yield " ".join(path), cmd


# ------------------------------------------------------------------ 1. threads
def test_thread_policy_default_env_and_flag(restore_threads):
    assert threads.resolve() == threads.ThreadPolicy(1, 1, "default")
    restore_threads.setenv("OMP_NUM_THREADS", "3")
    assert threads.resolve(workers=2) == threads.ThreadPolicy(3, 2, "OMP_NUM_THREADS")
    assert threads.resolve(threads=2).threads == 2
    restore_threads.setenv("OMP_NUM_THREADS", "junk")
    assert threads.resolve().threads == 1
    restore_threads.setenv("OMP_NUM_THREADS", "")
    assert threads.apply().source == "default" and os.environ["OMP_NUM_THREADS"] == "1"
    with pytest.raises(Exception, match="--threads"):
        threads.resolve(threads=0)


def test_apply_sets_torch_blas_and_environment(restore_threads):
    from threadpoolctl import threadpool_info

    torch.set_num_threads(2)
    policy = threads.apply()
    assert policy.threads == 1 and torch.get_num_threads() == 1
    assert os.environ["OMP_NUM_THREADS"] == "1" and os.environ["MKL_NUM_THREADS"] == "1"
    assert all(p["num_threads"] == 1 for p in threadpool_info())
    threads.apply(threads=2)
    assert torch.get_num_threads() == 2 and os.environ["OMP_NUM_THREADS"] == "2"
    assert threads.current().source == "--threads"


def test_compute_commands_apply_the_policy(restore_threads):
    """evaluate starts with one torch thread even when torch had more (issue 15.1)."""
    torch.set_num_threads(2)
    res = run("evaluate", "--bootstrap", "0", "--format", "json")
    assert res.exit_code == 0, res.output
    assert torch.get_num_threads() == 1
    res = run("evaluate", "--bootstrap", "0", "--format", "json", "--threads", "2")
    assert res.exit_code == 0, res.output
    assert torch.get_num_threads() == 2
    for name in ("features", "score", "evaluate", "fit", "bench build"):
        cmd = dict(_walk(main))[f"rankzc {name}"]
        assert "--threads" in {o for p in cmd.params for o in p.opts}, name


def test_lambdarank_threads_follow_the_policy(restore_threads):
    from rankzc.ranking.lambdarank import LambdaRankRanker

    threads.apply(threads=2)
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    model = LambdaRankRanker(n_estimators=5).fit(X, X["a"].to_numpy())
    assert model.booster_.params["num_threads"] == 2


# ------------------------------------------------------------------ 2. progress
def test_progress_lines_when_not_a_terminal_and_quiet_silences():
    stream = io.StringIO()
    with Progress(interval=0, stream=stream) as bar:
        assert bar.mode == "lines"
        task = bar.add("features", total=3)
        for _ in range(3):
            bar.advance(task)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("features: 1/3 (33%)") and lines[-1].startswith("features: 3/3")
    quiet = io.StringIO()
    with Progress(quiet=True, stream=quiet) as bar:
        bar.advance(bar.add("x", total=2))
    assert quiet.getvalue() == ""
    # a short job with the default interval writes nothing
    short = io.StringIO()
    with Progress(interval=60, stream=short) as bar:
        bar.advance(bar.add("x", total=1))
    assert short.getvalue() == ""


def test_progress_bars_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    with Progress(stream=stream) as bar:
        assert bar.mode == "bar"
        bar.advance(bar.add("scoring", total=2), 2)
    assert "scoring" in stream.getvalue()


def test_build_progress_reports_architectures_in_logs(monkeypatch, capsys):
    monkeypatch.setenv("RANKZC_PROGRESS_INTERVAL", "0")
    with BuildProgress(2, epochs=2) as bar:
        bar.start("abc")
        bar.batch("abc", 0, 3, 4)
        bar.end("abc")
    err = capsys.readouterr().err
    assert "abc epoch 1/2: 3/8" in err and "architectures: 1/2" in err


def test_evaluate_models_reports_progress_unless_quiet():
    env = {"RANKZC_PROGRESS_INTERVAL": "0"}
    args = ["evaluate", "--models", "wam", "--repeats", "1", "--folds", "2", "--bootstrap", "0"]
    res = run(*args, "--format", "json", env=env)
    assert res.exit_code == 0, res.output
    assert re.search(r"evaluate: ranker fits: (\d+)/\1 \(100%\)", res.stderr), res.stderr
    res = run(*args, "--format", "json", "--quiet", env=env)
    assert res.exit_code == 0 and res.stderr == ""


def test_fitted_ranker_score_reports_progress(monkeypatch, capsys):
    from rankzc.ranking.io import FittedRanker
    from rankzc.ranking.registry import make_ranker
    from rankzc.space import sample_architectures

    monkeypatch.setenv("RANKZC_PROGRESS_INTERVAL", "0")
    X = pd.DataFrame({"params": [1.0, 2.0, 3.0, 4.0]})
    model = make_ranker("single").fit(X, np.array([0.1, 0.2, 0.3, 0.4]))
    settings = {"preset": "tiny", "data": "synthetic:n=120", "batch_size": 4, "device": "cpu"}
    fitted = FittedRanker(
        model, features="proxies", feature_names=["params"], proxies=["params"],
        space="gcn-nas", settings=settings,
    )  # fmt: skip
    archs = sample_architectures(2, depths=(4,), seed=1)
    ranked = fitted.score(archs)
    assert len(ranked) == 2
    assert "scoring 2 architectures: 2/2 (100%)" in capsys.readouterr().err
    fitted.score(archs, quiet=True)
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------ 6. tables
def test_wide_table_splits_into_parts_at_80_columns(capsys):
    headers = ["epoch", "n"] + [f"proxy_{i}" for i in range(14)]
    rows = [[e, 200] + [f"{0.1234 * i:.3f}" for i in range(14)] for e in (-1, 0)]
    print_table(headers, rows, title="wide", keys=2, width=80)
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "part 1 of" in out and "…" not in out
    for h in headers[2:]:
        assert h in out
    for v in rows[1][2:]:
        assert v in out
    print_table(headers, rows, title="wide", keys=2)  # piped: one part, nothing cut
    out = capsys.readouterr().out
    assert "part" not in out and "…" not in out and all(h in out for h in headers)


def test_warmup_piped_is_never_truncated():
    res = run("warmup")
    assert res.exit_code == 0, res.output
    assert "…" not in res.stdout
    csv = run("warmup", "--format", "csv")
    df = pd.read_csv(io.StringIO(csv.stdout))
    assert {"epoch", "proxy", "spearman"} <= set(df.columns)
    for value in df["spearman"].round(3):
        assert f"{value:.3f}".replace("-0.000", "0.000") in res.stdout.replace("-0.000", "0.000")


def test_csv_is_offered_wherever_json_is():
    with_json = []
    for name, cmd in _walk(main):
        for p in cmd.params:
            if p.name == "fmt" and "json" in p.type.choices:
                assert "csv" in p.type.choices, name
                with_json.append(name)
    assert {"rankzc bench build", "rankzc data inspect", "rankzc evaluate"} <= set(with_json)


@pytest.mark.parametrize("command", [["evaluate", "--bootstrap", "0"], ["vote", "--max-size", "1"]])
def test_csv_output_parses(command):
    res = run(*command, "--format", "csv")
    assert res.exit_code == 0, res.output
    df = pd.read_csv(io.StringIO(res.stdout))
    assert len(df) > 0


def test_json_flag_is_a_deprecated_alias():
    res = run("data", "inspect", "synthetic:n=60,classes=3", "--json")
    assert res.exit_code == 0, res.output
    assert "deprecated" in res.stderr and res.stdout.lstrip().startswith("{")


# ------------------------------------------------------------------ 7. one layout
def test_export_and_features_share_columns_and_exports_score_with_arch_rankers(tmp_path):
    exp = tmp_path / "e.csv"
    assert run("export", "--out", exp).exit_code == 0
    table = pd.read_csv(exp)
    assert list(table.columns[:4]) == ["arch_id", "encoding", "depth", "val_acc"]
    feats = tmp_path / "f.csv"
    res = run("features", "--sample", "2", "--preset", "tiny", "--proxies", "params",
              "--data", "synthetic:n=60", "--batch-size", "4", "--out", feats)  # fmt: skip
    assert res.exit_code == 0, res.output
    assert list(pd.read_csv(feats).columns) == ["arch_id", "encoding", "depth", "params"]
    rzc = tmp_path / "r.rzc"
    res = run("fit", "--model", "wam", "--features", "all", "--out", rzc)
    assert res.exit_code == 0, res.output
    res = run("score", "--ranker", rzc, "--features-csv", exp, "--top", "3")
    assert res.exit_code == 0, res.output
    rows = [line.split("│") for line in res.stdout.splitlines() if line.startswith("│")]
    assert len(rows) == 3
    rank, depth = rows[0][1].strip(), rows[0][4].strip()
    assert rank == "1" and depth in {"4", "6", "8", "10"}
    assert ".0" not in rows[1][1] + rows[1][4]


# ------------------------------------------------------------------ 8. paths and flags
def test_space_sample_creates_a_missing_directory(tmp_path):
    out = tmp_path / "nodir" / "a.json"
    res = run("space", "sample", "--sample", "2", "--out", out)
    assert res.exit_code == 0, res.output
    assert out.exists() and "Errno" not in res.output


def _unwritable_dir() -> Path | None:
    for d in (Path("/sys"), Path("/proc")):
        try:
            (d / ".rankzc-probe").write_text("x")
        except OSError:
            return d
    return None


def test_unwritable_output_fails_before_any_work(tmp_path, monkeypatch):
    import rankzc.proxies.features as pf

    def boom(*a, **k):
        raise AssertionError("scored before checking the output path")

    monkeypatch.setattr(pf, "score_architectures", boom)
    target = _unwritable_dir()
    if target is None:
        pytest.skip("no unwritable directory here")
    out = target / "f.csv"
    res = run("features", "--sample", "1", "--preset", "tiny", "--out", out)
    assert res.exit_code == 1, res.output
    assert res.output.startswith(f"Error: --out {out}") and "not writable" in res.output
    assert "Errno" not in res.output and ".f.csv." not in res.output
    # a parent that is a file: one line naming the path, for every writer
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    for args in (
        ["export", "--out", blocker / "t.csv"],
        ["space", "sample", "--sample", "2", "--out", blocker / "a.json"],
        ["warmup", "--plot", blocker / "w.png"],
        ["fit", "--model", "single", "--out", blocker / "r.rzc"],
    ):
        res = run(*args)
        assert res.exit_code == 1 and str(blocker) in res.output, (args, res.output)
        assert len(res.output.strip().splitlines()) == 1 and "Errno" not in res.output


def test_every_option_has_help():
    missing = [
        f"{name} {'/'.join(p.opts)}"
        for name, cmd in _walk(main)
        for p in cmd.params
        if isinstance(p, click.Option) and not p.hidden and not (p.help or "").strip()
    ]
    assert not missing, missing


def _readme_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("rankzc "):
                cmds.append(shlex.split(re.sub(r"\[[^\]]*\]", "", line)))
    return cmds


def test_readme_creates_every_file_before_using_it():
    made: set[str] = set()
    consumers = {"--benchmark", "-b", "--ranker", "-r", "--features-csv", "--archs", "--exclude"}
    cmds = _readme_commands()
    assert len(cmds) > 10
    for argv in cmds:
        for flag, value in zip(argv, argv[1:], strict=False):
            if flag in consumers and not value.isdigit():
                assert value in made, f"{' '.join(argv)}: {value} is used before it is created"
        if argv[1:3] == ["space", "info"]:
            assert argv[3] in made
        for flag, value in zip(argv, argv[1:], strict=False):
            if flag in ("--out", "-o"):
                made.add(value)


def test_library_scoring_applies_the_default_thread_policy(restore_threads, monkeypatch):
    """Python use (FittedRanker.score, score_architectures) gets the commands' default
    policy, not torch's own thread count."""
    import torch

    from rankzc import threads
    from rankzc.proxies.features import ProxySettings, score_architectures
    from rankzc.space import sample_architectures

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "_current", None)
    torch.set_num_threads(2)
    settings = ProxySettings(preset="tiny", proxies=("params",), batch_size=4)
    score_architectures(sample_architectures(1, seed=0), settings)
    assert threads._current is not None and threads._current.source == "default"
    assert torch.get_num_threads() == 1
