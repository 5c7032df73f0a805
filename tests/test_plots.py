"""Plots worth looking at and reports that replace themselves (issue 23, item 7).

Figures are checked through matplotlib's objects, not pixels: distinct colour and marker
per line, whole-number ticks on integer axes, legends outside the data, a title on every
panel, reference lines. Report folders: the CSV and JSON of every table, and a second
report into the same folder replacing the first whole, never a folder that is not one.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.colors import to_hex
from test_evaluate_verdicts import make_store

from rankzc.cli import main
from rankzc.plotting import MAX_STYLES, line_styles, pyplot
from rankzc.proxies.catalog import PROXY_NAMES

FAST = ("--folds", "3", "--repeats", "1", "--bootstrap", "50", "-q")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(autouse=True)
def close_figures():
    yield
    pyplot().close("all")


def _outside(fig, ax, legend) -> bool:
    """The legend's box does not overlap the axes' box (drawn, in display pixels)."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    lb, ab = legend.get_window_extent(r), ax.get_window_extent(r)
    return lb.x0 >= ab.x1 or lb.x1 <= ab.x0 or lb.y0 >= ab.y1 or lb.y1 <= ab.y0


def _integer_ticks(axis) -> bool:
    lo, hi = axis.get_view_interval()
    ticks = [t for t in axis.get_majorticklocs() if lo - 1e-9 <= t <= hi + 1e-9]
    return bool(ticks) and all(float(t).is_integer() for t in ticks)


def _styles(lines) -> set[tuple[str, str]]:
    return {(to_hex(line.get_color()), str(line.get_marker())) for line in lines}


# ------------------------------------------------------------------ shared styles
def test_line_styles_are_distinct_in_colour_and_marker():
    assert MAX_STYLES >= 14
    styles = line_styles(14)
    assert len({to_hex(s["color"]) for s in styles}) == 14
    assert len({s["marker"] for s in styles}) == 14
    many = line_styles(40)  # beyond, the (colour, marker, line) triples stay distinct
    assert len({(s["color"], s["marker"], s["linestyle"]) for s in many}) == 40


# ------------------------------------------------------------------ warm-up
def _warmup_report(epochs=(-1, 0, 1, 2, 3)):
    rng = np.random.default_rng(0)
    return {
        "epochs": {
            str(e): {
                "n": 50,
                "proxies": {p: {"spearman": float(rng.uniform(-0.3, 0.8))} for p in PROXY_NAMES},
            }
            for e in epochs
        }
    }


def test_warmup_plot_tells_14_proxies_apart_with_the_legend_off_the_data():
    from rankzc.analysis import warmup_figure

    assert len(PROXY_NAMES) == 14
    fig = warmup_figure(_warmup_report())
    (ax,) = fig.axes
    lines = [ln for ln in ax.get_lines() if ln.get_label() in PROXY_NAMES]
    assert len(lines) == 14
    assert len(_styles(lines)) == 14  # distinct pairs, and each part distinct on its own
    assert len({to_hex(ln.get_color()) for ln in lines}) == 14
    assert len({ln.get_marker() for ln in lines}) == 14
    assert list(ax.get_xticks()) == [-1, 0, 1, 2, 3] and _integer_ticks(ax.xaxis)
    assert [t.get_text() for t in ax.get_xticklabels()][0] == "init"
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert _outside(fig, ax, ax.get_legend())
    # many epochs: whole-number ticks only, never 0.5
    fig = warmup_figure(_warmup_report(range(-1, 40)))
    assert _integer_ticks(fig.axes[0].xaxis)


def test_warmup_command_writes_the_plot(tmp_path):
    db = tmp_path / "w.db"
    make_store(db, n=30)
    png = tmp_path / "w.png"
    res = run("warmup", "-b", db, "--plot", png)
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:4] == b"\x89PNG" and f"plot written to {png}" in res.stdout


def test_single_proxy_plot_has_a_title():
    from rankzc.analysis import proxy_correlations_figure

    report = {
        "n": 30,
        "epoch": -1,
        "proxies": {"p": {"spearman": 0.3, "ci95": [0.1, 0.5]}},
        "baselines": {"depth": {"spearman": 0.2}},
    }
    fig = proxy_correlations_figure(report)
    ax = fig.axes[0]
    assert ax.get_title() == "Single proxies at initialisation (n = 30)"
    assert _outside(fig, ax, ax.get_legend())


# ------------------------------------------------------------------ search curve
@pytest.fixture(scope="module")
def search_result():
    from rankzc.store import default_benchmark_path

    res = run("search", "-b", default_benchmark_path(), "-s", "random", "-s", "proxy:zen",
              "--train-budget", "12", "--repeats", "3", "--format", "json", "-q")  # fmt: skip
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_search_plot_one_x_scale_integer_ticks_and_reference_lines(search_result):
    from rankzc.commands.search import search_figure

    fig = search_figure(search_result)
    best, regret = fig.axes[:2]
    assert best.get_xscale() == regret.get_xscale() == "linear"
    assert best.get_xlim() == regret.get_xlim()
    assert _integer_ticks(best.xaxis) and _integer_ticks(regret.xaxis)
    for ax in (best, regret):
        labels = [ln.get_label() for ln in ax.get_lines()]
        assert "random search (expected)" in labels and "pool best" in labels
        assert ax.get_title()
    assert fig.get_suptitle()
    # the pool best: the best label (percent) and regret 0
    pool_best = search_result["random_expected"]["pool_best"]
    (line,) = [ln for ln in best.get_lines() if ln.get_label() == "pool best"]
    assert line.get_ydata()[0] == pytest.approx(pool_best)
    (line,) = [ln for ln in regret.get_lines() if ln.get_label() == "pool best"]
    assert line.get_ydata()[0] == 0
    legend = regret.get_legend()
    assert legend is not None and _outside(fig, regret, legend) and _outside(fig, best, legend)
    names = [t.get_text() for t in legend.get_texts()]
    assert names.count("pool best") == 1 and "proxy:zen" in names
    # strategies (and the free references) each have their own colour and marker
    strategies = [
        ln
        for ln in best.get_lines()
        if ln.get_label() not in ("pool best", "random search (expected)")
    ]
    assert len(_styles(strategies)) == len(strategies) >= 2


def test_random_reference_is_the_exact_expectation(tmp_path):
    """E[best of k drawn without replacement], checked against every k-subset."""
    from rankzc.search.pool import Pool
    from rankzc.search.simulate import random_expectation

    labels = [0.61, 0.70, 0.55, 0.80, 0.74, 0.66]
    table = pd.DataFrame(
        {"val_acc": labels, "train_seconds": 1.0, "encoding": [f"({i},)" for i in range(6)]},
        index=[f"a{i}" for i in range(6)],
    )
    pool = Pool("toy", table, [])
    got = random_expectation(pool, [0, 1], 8, scale=1.0)
    for k in range(1, 7):
        want = np.mean([max(c) for c in itertools.combinations(labels, k)])
        assert got["best_mean"][k - 1] == pytest.approx(want)
        assert got["regret_mean"][k - 1] == pytest.approx(0.80 - want)
    assert got["best_mean"][6:] == [0.80, 0.80] and got["pool_best"] == pytest.approx(0.80)


def test_random_reference_matches_random_search_on_average(search_result):
    random = next(s for s in search_result["strategies"] if s["strategy"] == "random")
    expected = search_result["random_expected"]["best_mean"]
    assert len(expected) == len(random["curve"]["best_mean"]) == 12
    assert expected[0] < expected[-1]
    # 3 seeds of random search scatter around the expectation, well within 3 sd
    sd = max(random["curve"]["best_std"][-1], 0.5)
    assert abs(random["curve"]["best_mean"][-1] - expected[-1]) < 3 * sd


# ------------------------------------------------------------------ report figures
def test_predicted_vs_true_titles_give_rho():
    from rankzc.ranking.report import scatter_figure
    from rankzc.stats import spearman

    rng = np.random.default_rng(1)
    y = rng.uniform(0.5, 0.8, 40)
    oof = {"wam": y + rng.normal(0, 0.05, 40), "single": rng.normal(size=40)}
    fig = scatter_figure(oof, y)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.axison]
    assert titles == [f"{m}: rho = {spearman(oof[m], y):.3f} (n = 40)" for m in oof]
    assert fig.get_suptitle()


def test_learning_curve_has_a_title_integer_ticks_and_its_legend_off_the_error_bars():
    from rankzc.ranking.report import learning_figure

    curve = {
        m: [
            {"train_size": n, "spearman_mean": 0.5 + 0.001 * n, "spearman_std": 0.1}
            for n in (20, 50, 100)
        ]
        for m in ("single", "wam", "rankagg", "lambdarank")
    }
    fig = learning_figure(curve)
    (ax,) = fig.axes
    assert ax.get_title()
    assert list(ax.get_xticks()) == [20, 50, 100] and _integer_ticks(ax.xaxis)
    assert _outside(fig, ax, ax.get_legend())
    # the models sit side by side at each size: no two error bars on one x
    firsts = {float(bars.lines[0].get_xdata()[0]) for bars in ax.containers}
    assert len(ax.containers) == len(firsts) == 4


# ------------------------------------------------------------------ report folder
TABLES = ("models", "single_proxies", "warmup", "predicted_vs_true", "learning_curve")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("rep") / "e.db"
    make_store(path, n=40)
    return path


def _report(db, folder, *extra):
    return run("evaluate", "-b", db, "--models", "single,wam", *FAST, "--report", folder, *extra)


def test_report_has_csv_and_json_of_every_table(db, tmp_path):
    rep = tmp_path / "rep"
    res = _report(db, rep, "--train-size", "10,20")
    assert res.exit_code == 0, res.output
    assert f"report written to {rep / 'report.md'}" in res.stdout
    text = (rep / "report.md").read_text()
    for stem in TABLES:
        frame = pd.read_csv(rep / f"{stem}.csv")
        doc = json.loads((rep / f"{stem}.json").read_text())
        assert len(frame) == len(doc["rows"]) > 0, stem
        assert f"({stem}.csv)" in text and f"({stem}.json)" in text
    models = pd.read_csv(rep / "models.csv")
    assert "single = baseline: best proxy" in set(models["name"])
    assert "best proxy" not in set(models["name"])  # one row, as in the command's table
    curve = pd.read_csv(rep / "learning_curve.csv")
    assert sorted(curve["train_size"].unique()) == [10, 20]
    assert set(curve["model"]) == {"single", "wam"}
    pred = pd.read_csv(rep / "predicted_vs_true.csv")
    assert len(pred) == 40 and {"arch_id", "val_acc", "single", "wam"} <= set(pred.columns)
    doc = json.loads((rep / "predicted_vs_true.json").read_text())
    assert math.isfinite(doc["spearman"]["wam"])
    # every figure the report shows is in the folder, with a caption (alt text)
    for png in ("proxy_correlations", "warmup", "predicted_vs_true", "learning_curve"):
        assert (rep / f"{png}.png").stat().st_size > 1000
        assert f"]({png}.png)" in text
    assert "![](" not in text


def test_a_second_report_replaces_the_first_whole(db, tmp_path):
    from rankzc.ranking.report import MARKER

    rep = tmp_path / "rep"
    assert _report(db, rep, "--train-size", "10,20").exit_code == 0
    assert (rep / "learning_curve.png").exists() and (rep / MARKER).exists()
    res = _report(db, f"{rep}/")  # the README's spelling, with a slash
    assert res.exit_code == 0, res.output
    assert not (rep / "learning_curve.png").exists()  # no stale plot
    assert not (rep / "learning_curve.csv").exists()
    assert (rep / "report.md").exists() and (rep / MARKER).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]  # nothing left beside it


def test_an_empty_folder_and_an_old_report_are_replaced(db, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _report(db, empty).exit_code == 0 and (empty / "report.md").exists()
    old = tmp_path / "old"  # written before the marker existed
    old.mkdir()
    (old / "report.md").write_text("# Ranker comparison\n\nOLD REPORT\n")
    (old / "learning_curve.png").write_bytes(b"\x89PNG old")
    res = _report(db, old)
    assert res.exit_code == 0, res.output
    assert not (old / "learning_curve.png").exists()
    assert "OLD REPORT" not in (old / "report.md").read_text()


@pytest.mark.parametrize(
    "setup",
    ["foreign file", "foreign report.md", "a file", "extra file in an old report"],
)
def test_a_folder_that_is_not_a_report_is_refused_before_any_work(db, tmp_path, monkeypatch, setup):
    from rankzc.ranking import evaluation

    def boom(*a, **k):
        raise AssertionError("worked before refusing")

    monkeypatch.setattr(evaluation, "evaluate_models", boom)
    target = tmp_path / "mine"
    if setup == "a file":
        target.write_text("my notes\n")
    else:
        target.mkdir()
        if setup == "foreign file":
            (target / "thesis.tex").write_text("precious\n")
        elif setup == "foreign report.md":
            (target / "report.md").write_text("# My own report\n")
        else:
            (target / "report.md").write_text("# Ranker comparison\n")
            (target / "notes.txt").write_text("precious\n")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    res = _report(db, target)
    if setup == "a file":  # click's own check of the option: a usage error
        assert res.exit_code == 2 and "'--report'" in res.output and "is a file" in res.output
    else:
        assert res.exit_code == 1, res.output
        assert res.output.startswith(f"Error: --report {target}: holds files that are not")
        assert len(res.output.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_a_report_that_fails_half_way_keeps_the_previous_one(db, tmp_path, monkeypatch):
    from rankzc.ranking import report

    rep = tmp_path / "rep"
    assert _report(db, rep, "--train-size", "10,20").exit_code == 0
    before = {p.name: p.read_bytes() for p in rep.iterdir()}

    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "_scatter", broken)
    res = _report(db, rep)
    assert res.exit_code != 0
    assert {p.name: p.read_bytes() for p in rep.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]  # no temporary folder left


def test_live_search_plot_has_one_panel_and_no_reference_it_cannot_know():
    from rankzc.commands.search import search_figure

    curve = {"trained": [1, 2, 3, 4], "best_mean": [60.0, 61.5, 61.5, 63.0], "best_std": [0] * 4}
    result = {
        "mode": "live",
        "source": "s.db",
        "strategies": [{"strategy": "online", "curve": curve}],
    }
    fig = search_figure(result)
    (ax,) = fig.axes
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert "online" in labels and "pool best" not in labels  # live: the pool's labels are unknown
    assert _integer_ticks(ax.xaxis) and ax.get_title() and fig.get_suptitle()
    assert _outside(fig, ax, ax.get_legend())
