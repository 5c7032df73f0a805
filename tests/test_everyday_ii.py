"""Everyday use II (issue 23): verdicts in words, exit codes, the learning curve and the fit
summary printed, small stores, one spelling per idea, start lines, written files named."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_evaluate_verdicts import make_store

from rankzc.cli import main
from rankzc.ranking import evaluation

ROOT = Path(__file__).resolve().parents[1]
FAST = ("--folds", "3", "--repeats", "1", "--bootstrap", "50")


@pytest.fixture(autouse=True)
def start_lines_at_once(monkeypatch):
    """Start lines appear after 2 s of work; here at once (no timing in tests)."""
    from rankzc.commands import _common

    monkeypatch.setattr(_common, "START_DELAY", 0)


def run(*args, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args], **kwargs)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    db = tmp_path_factory.mktemp("ev") / "e.db"
    make_store(db, n=60, seeds_for=20)
    return db


# ------------------------------------------------------------------ 1. verdict
def test_evaluate_ends_with_one_verdict_and_one_ceiling(store):
    res = run("evaluate", "-b", store, "--models", "single,wam", *FAST)
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    verdict, ceiling = lines[-2], lines[-1]
    out = json.loads(run("evaluate", "-b", store, "--models", "single,wam", *FAST,
                         "--format", "json").stdout)  # fmt: skip
    best = max(out["models"], key=lambda m: out["models"][m]["spearman_mean"])
    vs = out["models"][best]["vs_baseline"]
    assert verdict.startswith(f"Verdict: the best ranker is {best} ")
    assert f"strongest baseline, {out['strongest_baseline']}" in verdict
    assert f"Δ {vs['mean_diff']:+.3f} [{vs['ci95'][0]:+.3f}, {vs['ci95'][1]:+.3f}]" in verdict
    assert f"p = {vs['p_value']:.2g}" in verdict
    word = "not distinguishable" if vs["p_value"] >= 0.05 else "than"
    assert word in verdict
    assert ceiling.startswith("Ceiling for any ranker's Spearman: ~")
    assert res.stdout.count("Ceiling") == 1 and "ceiling <=" not in res.stdout
    assert out["verdict"].startswith("Verdict:") and out["ceiling"]["source"] == "repeated seeds"
    # the footer says once what Δ is
    assert res.stdout.count("model minus") == 1


def test_single_and_best_proxy_baseline_are_one_row(store):
    res = run("evaluate", "-b", store, "--models", "single", *FAST)
    assert res.exit_code == 0, res.output
    assert "single = baseline: best proxy" in res.stdout
    assert "│ baseline: best proxy" not in res.stdout


def test_regret_is_in_accuracy_points(store):
    out = json.loads(run("evaluate", "-b", store, "--models", "wam", *FAST,
                         "--format", "json").stdout)  # fmt: skip
    regret = out["models"]["wam"]["regret_top1_mean"]
    # labels are fractions in [0.3, 0.9]: a regret in points is above 1 unless it is 0
    assert regret == 0 or regret > 1, regret
    assert "points" in out["units"]
    res = run("evaluate", "-b", store, "--models", "wam", *FAST)
    assert "regret@1 (pts)" in res.stdout


# ------------------------------------------------------------------ 2. exit codes
def test_an_impossible_model_is_refused_before_any_work(store, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("worked before refusing")

    monkeypatch.setattr(evaluation, "evaluate_models", boom)
    import rankzc.analysis

    monkeypatch.setattr(rankzc.analysis, "single_proxy_report", boom)
    res = run("evaluate", "-b", store, "--models", "gnn")
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines() == [
        "Error: --models gnn: needs the architecture encoding, which --features proxies "
        "does not give; use --features arch or all"
    ]


def test_a_model_failing_on_the_data_exits_3_unless_keep_going(store, monkeypatch):
    real = evaluation._fit_predict

    def fit_predict(name, *a, **k):
        if name == "wam":
            raise RuntimeError("broken on this data")
        return real(name, *a, **k)

    monkeypatch.setattr(evaluation, "_fit_predict", fit_predict)
    res = run("evaluate", "-b", store, "--models", "single,wam", *FAST)
    assert res.exit_code == 3, res.output
    assert "failed: wam (split 1: RuntimeError: broken on this data)" in res.stdout
    assert "Verdict: the best ranker is single" in res.stdout
    assert res.stderr.strip().startswith("Error: 1 of 2 models failed")
    res = run("evaluate", "-b", store, "--models", "single,wam", *FAST, "--keep-going")
    assert res.exit_code == 0, res.output
    res = run("evaluate", "-b", store, "--models", "wam", *FAST, "--keep-going")
    assert res.exit_code == 1, res.output  # nothing to report: every model failed


def test_readme_documents_the_exit_codes():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    for code in ("0", "1", "2", "3"):
        assert re.search(rf"^\| `?{code}`? \|", section, flags=re.M), code
    assert "--keep-going" in section


# ------------------------------------------------------------------ 3. hidden results
def test_train_size_prints_its_learning_curve(store):
    res = run("evaluate", "-b", store, "--models", "wam", *FAST, "--train-size", "10,20")
    assert res.exit_code == 0, res.output
    assert "Learning curve" in res.stdout
    header = next(line for line in res.stdout.splitlines() if "N=10" in line)
    assert "N=20" in header
    assert re.search(r"│ wam +│ +-?\d\.\d{3} ± \d\.\d{3} │", res.stdout)


def test_fit_says_what_it_fitted_and_how_to_get_the_honest_figure(store, tmp_path):
    out = tmp_path / "w.rzc"
    res = run("fit", "-m", "wam", "-b", store, "-o", out, "--proxies", "p,q")
    assert res.exit_code == 0, res.output
    text = res.stdout
    assert "fitted wam on 60 labelled architectures x 2 features" in text
    assert "features: p, q" in text
    assert "in-sample Spearman" in text and "in-sample:" in text and "optimistic" not in text
    assert f"held-out estimate: rankzc evaluate -b {store} --models wam --proxies p,q" in text
    assert f"ranker written to {out}" in text
    res = run("fit", "-m", "rankagg", "-b", store, "-o", tmp_path / "r.rzc")
    assert res.exit_code == 0, res.output
    assert "labels not read" in res.stdout and "it read no labels" in res.stdout
    assert "optimistic" not in res.stdout


# ------------------------------------------------------------------ 4. small stores
def test_a_small_store_says_so_once_and_shows_what_can_be_computed(tmp_path, monkeypatch):
    db = tmp_path / "s.db"
    make_store(db, n=10)

    def boom(*a, **k):
        raise AssertionError("cross-validated 10 architectures")

    monkeypatch.setattr(evaluation, "evaluate_models", boom)
    res = run("evaluate", "-b", db, "--models", "all", "--bootstrap", "50")
    assert res.exit_code == 0, res.output
    text = res.stdout
    assert text.count("too few to cross-validate") == 1
    assert "(None)" not in text and "<= 0.000" not in text and "- ± -" not in text
    assert "Trivial baselines" not in text  # the store has no depth, params or flops
    assert "Single proxies" in text and "Verdict: the strongest single proxy" in text
    # folds x 2 also counts
    db2 = tmp_path / "m.db"
    make_store(db2, n=25)
    res = run("evaluate", "-b", db2, "--models", "wam", "--folds", "13", "--bootstrap", "50")
    assert res.exit_code == 0 and "need at least 26" in res.stdout, res.output


# ------------------------------------------------------------------ 5. one spelling per idea
def _walk(cmd, path=()):
    import click

    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _walk(sub, (*path, name))
    else:
        yield " ".join(path), cmd


#: commands whose product is a file, or that write one (--plot, --report): -o/--out
WRITES = {
    "evaluate", "warmup", "export", "features", "fit", "score", "search", "bench build",
    "import thesis", "import nbsz", "space sample",
}  # fmt: skip
#: commands that can run over 2 s: -q/--quiet
LONG = {
    "evaluate", "warmup", "vote", "features", "fit", "score", "search", "bench build",
    "import thesis", "import nbsz", "space info",
}  # fmt: skip


def _options(cmd):
    import click

    return [p for p in cmd.params if isinstance(p, click.Option) and not p.hidden]


def test_every_writer_has_out_and_every_long_command_has_quiet():
    missing = []
    for name, cmd in _walk(main):
        opts = {o: p for p in _options(cmd) for o in p.opts}
        writes = name in WRITES or any(o in opts for o in ("--plot", "--report"))
        long_running = name in LONG or "--threads" in opts or "--workers" in opts
        if writes and not ("--out" in opts and "-o" in opts["--out"].opts):
            missing.append(f"{name}: -o/--out")
        if long_running and not ("--quiet" in opts and "-q" in opts["--quiet"].opts):
            missing.append(f"{name}: -q/--quiet")
        if "--out" in opts and "-o" not in opts["--out"].opts:
            missing.append(f"{name}: --out without -o")
    assert not missing, missing


def _kind(p) -> tuple:
    import click

    t = p.type
    kind = "int" if isinstance(t, (click.types.IntParamType,)) else type(t).__name__
    return (kind, p.multiple, p.is_flag, p.nargs)


def test_one_spelling_per_idea():
    """An option name means one thing everywhere: the same kind of value (a list of seeds
    is never a count of seeds elsewhere), and a choice has the same default where both
    commands have one."""
    import click

    seen: dict[str, dict] = {}
    for name, cmd in _walk(main):
        for p in _options(cmd):
            for o in p.opts:
                if o.startswith("--"):
                    seen.setdefault(o, {}).setdefault(_kind(p), []).append(name)
                if isinstance(p.type, click.Choice) and p.default is not None:
                    seen.setdefault(f"{o} default", {}).setdefault(p.default, []).append(name)
    clashes = {o: v for o, v in seen.items() if len(v) > 1}
    assert not clashes, clashes


#: the one option of each idea, and the spellings it had before (now hidden aliases that
#: print one deprecation line); a visible option spelled like one of these fails the test
SECOND_SPELLINGS = {
    # N sampled architectures: --sample N (--archs FILE.json reads them)
    "--pool": "--sample", "--n": "--sample", "--num": "--sample", "--count": "--sample",
    "--num-archs": "--sample", "--n-archs": "--sample", "--size": "--sample",
    # the store read: --benchmark/-b
    "--simulate": "--benchmark", "--train": "--benchmark", "--test": "--transfer-to",
    "--store": "--benchmark", "--db": "--benchmark", "--bench": "--benchmark",
    "--input": "--benchmark",
    # the rest
    "--output": "--out", "--json": "--format", "--silent": "--quiet",
    "--verbose": "--quiet", "--n-repeats": "--repeats",
}  # fmt: skip
#: options that name a store without being --benchmark or --out, and why they are
#: another idea
OTHER_STORES = {
    "--transfer-to": "the second store of a transfer (fit, evaluate): the one ranked with "
    "what was learnt on --benchmark, its labels never used for fitting; a role --benchmark "
    "cannot take, and one spelling in both commands",
}
#: int options whose help speaks of sampling architectures without being --sample, and why
OTHER_COUNTS: dict[str, str] = {}
STORE_WORDS = re.compile(r"\b(store|benchmark)\b", re.I)
SAMPLE_WORDS = re.compile(r"\b(sampl\w*|draw\w*|random)\b[^.]*\barchitecture", re.I)


def test_no_second_spelling_of_an_idea():
    """One option per idea: no visible option spelled as an old spelling; N sampled
    architectures is --sample everywhere (never a positional count or another name); a
    store read is --benchmark (written: --out) unless OTHER_STORES says why not."""
    import click

    wrong = []
    for name, cmd in _walk(main):
        ctx = click.Context(cmd)
        for p in cmd.params:
            if isinstance(p, click.Argument):
                if isinstance(p.type, click.types.IntParamType) and p.get_usage_pieces(ctx):
                    wrong.append(f"{name}: positional {p.name}: a count is --sample N")
                continue
            if p.hidden:
                continue
            for o in p.opts:
                if o in SECOND_SPELLINGS:
                    wrong.append(f"{name}: {o} is spelled {SECOND_SPELLINGS[o]}")
            long = next((o for o in p.opts if o.startswith("--")), p.opts[0])
            text = p.help or ""
            if (
                isinstance(p.type, click.types.IntParamType)
                and SAMPLE_WORDS.search(text)
                and long != "--sample"
                and long not in OTHER_COUNTS
            ):
                wrong.append(f"{name}: {long} counts sampled architectures: spell it --sample")
            if (
                isinstance(p.type, click.Path)
                and STORE_WORDS.search(text)
                and long not in ("--benchmark", "--out")
                and long not in OTHER_STORES
            ):
                wrong.append(f"{name}: {long} names a store: spell it --benchmark")
    assert not wrong, wrong


def test_the_test_catches_a_second_meaning(monkeypatch):
    import click

    cmd = main.commands["search"]
    extra = click.Option(["--seeds"], type=int, default=1, help="a count of seeds")
    monkeypatch.setattr(cmd, "params", [*cmd.params, extra])
    with pytest.raises(AssertionError, match="--seeds"):
        test_one_spelling_per_idea()
    monkeypatch.setattr(cmd, "params", [p for p in cmd.params if p.name != "quiet"])
    with pytest.raises(AssertionError, match="search: -q/--quiet"):
        test_every_writer_has_out_and_every_long_command_has_quiet()


@pytest.mark.parametrize(
    "command, option, match",
    [
        ("search", ("--pool", int, "Candidates."), "--pool is spelled --sample"),
        ("export", ("--store", "path", "Store to read."), "--store is spelled --benchmark"),
        ("export", ("--from", "path", "The benchmark store to read."), "--from names a store"),
        ("score", ("--draw", int, "Draw N random architectures."), "--draw counts sampled"),
        ("space sample", ("N", int, None), "positional n: a count is --sample N"),
    ],
)
def test_a_second_spelling_fails_the_test(monkeypatch, command, option, match):
    import click

    cmd = main
    for part in command.split():
        cmd = cmd.commands[part]
    name, kind, help_text = option
    kind = click.Path(path_type=Path) if kind == "path" else kind
    if name.startswith("--"):
        extra = click.Option([name], type=kind, default=None, help=help_text)
    else:
        extra = click.Argument([name.lower()], type=kind, required=False)
    monkeypatch.setattr(cmd, "params", [*cmd.params, extra])
    with pytest.raises(AssertionError, match=re.escape(match)):
        test_no_second_spelling_of_an_idea()


def _deprecations(res) -> list[str]:
    return [line for line in res.stderr.splitlines() if "deprecated" in line]


def test_old_spellings_are_hidden_aliases_with_one_warning(store):
    db = ROOT / "rankzc" / "data" / "default.db"
    args = ["search", "-b", db, "-s", "random", "--train-budget", "3", "--format", "json"]
    new = run(*args, "--repeats", "2")
    old = run(*args, "--seeds", "2")
    assert new.exit_code == 0 and old.exit_code == 0, old.output
    assert len(json.loads(old.stdout)["strategies"][0]["runs"]) == 2
    assert _deprecations(old) == [
        "Warning: --seeds is deprecated; use --repeats (--seeds lists seeds in bench build)."
    ]
    help_text = run("search", "-h").stdout
    assert "--seeds" not in help_text and "--pool" not in help_text
    assert "--simulate" not in help_text and "--sample" in help_text
    # search --simulate FILE and --pool N: --benchmark and --sample
    args = ["search", "-s", "random", "--train-budget", "3", "--format", "json", "-q"]
    new = run(*args, "-b", store, "--sample", "30")
    old = run(*args, "--simulate", store, "--pool", "30")
    assert new.exit_code == 0 and old.exit_code == 0, old.output
    runs = [json.loads(r.stdout)["strategies"][0]["runs"][0]["trained"] for r in (new, old)]
    assert runs[0] == runs[1] and json.loads(old.stdout)["strategies"][0]["pool_size"] == 30
    assert _deprecations(old) == [
        "Warning: --simulate is deprecated; use --benchmark (-b).",
        "Warning: --pool is deprecated; use --sample N.",
    ]
    # evaluate --train A --test B: -b A --transfer-to B, as in fit
    args = ["evaluate", "--models", "wam", "--format", "json", "-q"]
    new = run(*args, "-b", store, "--transfer-to", store)
    old = run(*args, "--train", store, "--test", store)
    assert new.exit_code == 0 and old.exit_code == 0, old.output
    spearman = [json.loads(r.stdout)["models"]["wam"]["spearman"] for r in (new, old)]
    assert spearman[0] == spearman[1]
    assert _deprecations(old) == [
        "Warning: --train is deprecated; use --benchmark (-b).",
        "Warning: --test is deprecated; use --transfer-to.",
    ]
    help_text = run("evaluate", "-h").stdout
    assert "--transfer-to" in help_text and "--test " not in help_text
    # space sample N: --sample N
    new = run("space", "sample", "--sample", "2")
    old = run("space", "sample", "2")
    assert json.loads(new.stdout) == json.loads(old.stdout) and len(json.loads(new.stdout)) == 2
    assert _deprecations(old) == ["Warning: the positional N is deprecated; use --sample N."]
    assert "[OPTIONS]\n" in run("space", "sample", "-h").stdout  # no N in the usage line
    res = run("space", "sample")
    assert res.exit_code == 2 and "--sample N" in res.output


def test_search_without_a_store_simulates_on_the_shipped_benchmark():
    res = run("search", "-s", "random", "--train-budget", "2", "--format", "json", "-q")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["source"].endswith("default.db")
    res = run("search", "-b", "x.db", "-o", "y.db", "-s", "random", "--train-budget", "2")
    assert res.exit_code == 1 and "give one of --benchmark B.db" in res.output


def test_help_lists_commands_without_cutting_them():
    text = run("-h").stdout
    assert "..." not in text.split("Commands:", 1)[1]
    assert "then one column per proxy" in " ".join(text.split())


def test_space_info_defaults_to_cpu_and_space_sample_reports_on_stdout(tmp_path):
    out = tmp_path / "a.json"
    res = run("space", "sample", "--sample", "2", "-o", out)
    assert res.exit_code == 0 and res.stdout.strip() == f"wrote 2 architectures to {out}"
    res = run("space", "info", out)
    assert res.exit_code == 0, res.output
    assert "preset cpu" in res.stderr and "counting the parameters of 2" in res.stderr
    assert run("space", "info", out, "-q").stderr.count("counting") == 0


def test_durations_are_in_human_units():
    from rankzc.commands._common import fmt_duration

    assert fmt_duration(2442864.7) == "28.3 days"
    assert fmt_duration(5400) == "1.5 h" and fmt_duration(90) == "1.5 min"
    assert fmt_duration(12.34) == "12.3 s" and fmt_duration(None) == "-"


# ------------------------------------------------------------------ 6. start lines, files named
def test_score_out_and_every_written_file_is_named(store, tmp_path):
    rzc = tmp_path / "w.rzc"
    assert run("fit", "-m", "wam", "-b", store, "-o", rzc, "-q").exit_code == 0
    out = tmp_path / "rank.csv"
    res = run("score", "-r", rzc, "-b", store, "-o", out, "-q")
    assert res.exit_code == 0, res.output
    assert f"results written to {out}" in res.stdout and out.read_text().count("\n") == 61
    res = run("score", "-r", rzc, "-b", store, "-o", tmp_path / "r.json", "--format", "json")
    assert json.loads(res.stdout)["n"] == 60 and "results written" in res.stderr
    ev = tmp_path / "ev.json"
    res = run("evaluate", "-b", store, "--bootstrap", "20", "-o", ev)
    assert res.exit_code == 0 and f"results written to {ev}" in res.stdout
    assert json.loads(ev.read_text())["verdict"].startswith("Verdict:")
    png = tmp_path / "c.png"
    res = run("search", "-b", store, "-s", "random", "--train-budget", "3",
              "--plot", png)  # fmt: skip
    assert res.exit_code == 0, res.output
    assert f"plot written to {png}" in res.stdout
    assert res.stderr.startswith("simulating 1 strategies x 1 seeds")
    assert "simulating" not in run("search", "-b", store, "-s", "random",
                                   "--train-budget", "3", "-q").stderr  # fmt: skip


def test_imports_say_what_they_do_and_name_the_store(tmp_path):
    from benchdata import write_thesis_dir

    src = tmp_path / "archs"
    write_thesis_dir(src, n=4, epochs=(0,))
    out = tmp_path / "t.db"
    res = run("import", "thesis", src, "-o", out)
    assert res.exit_code == 0, res.output
    assert res.stderr.startswith(f"importing the study's JSON files from {src}")
    assert f"store written to {out}" in res.stdout
    res = run("import", "thesis", src, "-o", tmp_path / "u.db", "-q")
    assert res.exit_code == 0 and res.stderr == ""


# ------------------------------------------------------------------ 7. .gitignore
def test_gitignore_covers_what_the_readme_writes_but_not_the_shipped_store():
    def ignored(path: str) -> bool:
        r = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT, check=False)
        return r.returncode == 0

    if subprocess.run(["git", "rev-parse"], cwd=ROOT, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    for path in ("t.db", "n.db", "my.db", "s.db", "r.rzc", "warmup.png", "curve.png",
                 "rep/report.md", "rep/models.csv", "rep/.rankzc-report",
                 "rep-nb201/learning_curve.json", "t.parquet", "f.csv", "f.csv.json",
                 "archs.json", "my.db.ckpt/run-1.pt", "my.db.lock"):  # fmt: skip
        assert ignored(path), path
    # every file the README's commands name as an output is covered
    text = (ROOT / "README.md").read_text()
    outputs = set(re.findall(r"(?:--out|-o|--plot|--report) (\S+)", text))
    outputs = {o.rstrip("`),.;") for o in outputs if re.match(r"^[\w.-]+/?$", o.rstrip("`),.;"))}
    outputs -= {"FILE.json", "F.csv", "B.db", "S.db", "STORE.db", "DIR", "PATH"}
    assert outputs, "no README outputs found"
    for out in sorted(outputs):
        probe = out + "report.md" if out.endswith("/") else out
        assert ignored(probe), f"{out}: written by a README command, not in .gitignore"
    assert not ignored("rankzc/data/default.db")
    assert not ignored("benchmarks/output/new.png")
