"""Markdown report of a ranker comparison, with PNG plots (matplotlib, Agg backend).

Written by :func:`rankzc.ranking.evaluation.evaluate_models` when ``report_dir`` is given:
``report.md``; ``models.{csv,json}`` (the comparison table); ``proxy_correlations.png``
and ``single_proxies.{csv,json}`` (via :mod:`rankzc.analysis`); ``warmup.png`` and
``warmup.{csv,json}`` (when the store has proxies after several epochs);
``predicted_vs_true.png`` and ``predicted_vs_true.{csv,json}`` (out-of-fold predictions of
the first repeat); ``learning_curve.png`` and ``learning_curve.{csv,json}`` (when a
learning curve was run); and the marker ``.rankzc-report``. The folder is written whole
beside its path and swapped in (:func:`write_report`): a second report into it replaces it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from rankzc.atomicfile import save_figure, write_text
from rankzc.ranking.features import FeatureSet
from rankzc.ranking.metrics import METRICS

__all__ = ["write_report", "check_report_dir", "is_report", "MARKER"]


def _fmt(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def scatter_figure(oof: dict[str, np.ndarray], y: np.ndarray):
    """Predicted rank (out of fold) against true accuracy, one panel per model, its
    Spearman rho in the panel's title."""
    from rankzc.plotting import pyplot
    from rankzc.stats import spearman

    plt = pyplot()
    names = [m for m in oof if np.isfinite(oof[m]).any()]
    cols = max(1, min(3, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.6 * rows + 0.5), squeeze=False)
    for ax, m in zip(axes.ravel(), names, strict=False):
        ok = np.isfinite(oof[m]) & np.isfinite(y)
        rho = spearman(oof[m][ok], y[ok])
        ax.scatter(rankdata(oof[m][ok]) / max(1, ok.sum()), y[ok], s=6, alpha=0.6)
        ax.set_title(f"{m}: rho = {_fmt(rho)} (n = {int(ok.sum())})")
        ax.set_xlabel("predicted rank (out of fold, 0-1)")
        ax.set_ylabel("true accuracy")
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    fig.suptitle("Predicted against true accuracy (out of fold, first repeat)")
    fig.tight_layout()
    return fig


def learning_figure(curve: dict[str, list[dict]]):
    """Held-out Spearman against training-set size, one line per model (mean ± std over
    splits), the legend beside the axes, ticks at the sizes run."""
    from rankzc.plotting import legend_outside, line_styles, pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    sizes = sorted({int(p["train_size"]) for pts in curve.values() for p in pts})
    # models side by side at each size (dodged by a little), so error bars do not overlap
    span = (sizes[-1] - sizes[0]) if len(sizes) > 1 else max(1, sizes[0] if sizes else 1)
    step = 0.012 * span
    for i, ((m, pts), style) in enumerate(zip(curve.items(), line_styles(len(curve)), strict=True)):
        xs = np.array([int(p["train_size"]) for p in pts], dtype=float)
        xs = xs + (i - (len(curve) - 1) / 2) * step
        mu = np.array([np.nan if p["spearman_mean"] is None else p["spearman_mean"] for p in pts])
        sd = np.array([0.0 if p["spearman_std"] is None else p["spearman_std"] for p in pts])
        ax.errorbar(xs, mu, yerr=sd, capsize=3, label=m, **style)
    if sizes:
        ax.set_xticks(sizes, [str(t) for t in sizes])
    ax.set_xlabel("training architectures per fold")
    ax.set_ylabel("held-out Spearman (mean ± std)")
    ax.set_title("Learning curve: held-out Spearman against labels used")
    ax.grid(alpha=0.3)
    legend_outside(ax, fontsize=8, title="model")
    fig.tight_layout()
    return fig


def _save(fig, path: Path) -> None:
    from rankzc.plotting import pyplot

    try:
        save_figure(fig, path, dpi=110, bbox_inches="tight")  # whole or not at all
    finally:
        pyplot().close(fig)


def _scatter(path: Path, oof: dict[str, np.ndarray], y: np.ndarray) -> None:
    _save(scatter_figure(oof, y), path)


def _learning(path: Path, curve: dict[str, list[dict]]) -> None:
    _save(learning_figure(curve), path)


#: the file that marks a folder as a rankzc report: only such a folder (or an empty one)
#: is ever replaced by the next report into the same path
MARKER = ".rankzc-report"
MARKER_TEXT = "rankzc report: this folder is replaced whole by the next --report into it\n"
#: what a report written before the marker existed holds (recognised, and replaced, only
#: when the folder holds nothing else and report.md is a ranker comparison)
LEGACY_FILES = frozenset(
    {
        "report.md",
        "proxy_correlations.png",
        "warmup.png",
        "predicted_vs_true.png",
        "learning_curve.png",
    }
)


def is_report(folder: Path) -> bool:
    """Whether ``folder`` is a report rankzc wrote (its marker file, or a report from
    before the marker: only the known files, and report.md a ranker comparison)."""
    marker = folder / MARKER
    try:
        if marker.is_file() and not marker.is_symlink():
            return marker.read_text(errors="replace").startswith("rankzc report")
        entries = list(folder.iterdir())
        if not entries or any(e.is_symlink() or not e.is_file() for e in entries):
            return False
        if not {e.name for e in entries} <= LEGACY_FILES:
            return False
        with open(folder / "report.md", errors="replace") as fh:
            return fh.readline().startswith("# Ranker comparison")
    except OSError:
        return False


def check_report_dir(path: str | Path, *, option: str = "--report") -> Path:
    """Before any work: ``path`` may be written as a report folder. It is new, empty,
    or a previous report (replaced whole, :func:`is_report`); anything else is a one-line
    error, and nothing in it is touched. Its parent is created and must be writable (the
    report is written beside it first, then swapped in)."""
    from rankzc.atomicfile import check_writable
    from rankzc.errors import RankzcError

    target = Path(path)
    if target.name in ("", ".", ".."):
        raise RankzcError(f"{option} {path}: name a folder of its own (it is replaced whole)")
    if target.is_symlink():
        raise RankzcError(f"{option} {target}: is a symbolic link; give the folder itself")
    if target.exists() and not target.is_dir():
        raise RankzcError(f"{option} {target}: is not a directory")
    if target.is_dir():
        try:
            empty = not any(target.iterdir())
        except OSError as err:
            raise RankzcError(f"{option} {target}: cannot be read ({err.strerror})") from None
        if not empty and not is_report(target):
            raise RankzcError(
                f"{option} {target}: holds files that are not a rankzc report (no {MARKER}); "
                "give a new or empty folder, or a previous report's (it is replaced whole)"
            )
    parent = target.parent if str(target.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RankzcError(
            f"{option} {target}: cannot create directory {parent} ({err.strerror})"
        ) from None
    check_writable(parent, f"{option} {target}")
    return target


def _swap_in(tmp: Path, target: Path) -> None:
    """Put the finished report ``tmp`` at ``target``: a previous report (or an empty
    folder) there is renamed aside, then removed; anything else is refused untouched."""
    import os
    import shutil
    import uuid

    from rankzc.errors import RankzcError

    check_report_dir(target)  # again: the folder may have changed during the work
    if not target.exists():
        os.rename(tmp, target)
        return
    old = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.old")
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except OSError:
        os.rename(old, target)  # put the previous report back
        raise
    if not any(old.iterdir()):
        old.rmdir()
    elif is_report(old):  # checked once more: only a report is ever removed
        shutil.rmtree(old, ignore_errors=True)
    else:  # pragma: no cover - changed between the two checks
        raise RankzcError(f"--report {target}: the previous folder, kept at {old}, changed")


def _write_table(folder: Path, stem: str, rows: list[dict], meta: dict | None = None) -> str:
    """``stem.csv`` and ``stem.json`` (``{"rows": ..., **meta}``) of one table; the
    Markdown line naming them."""
    import json

    import pandas as pd

    from rankzc.jsonfile import jsonable

    frame = pd.DataFrame(rows)
    frame.to_csv(folder / f"{stem}.csv", index=False, lineterminator="\n")
    doc = {**(meta or {}), "rows": jsonable(rows)}
    (folder / f"{stem}.json").write_text(json.dumps(jsonable(doc), indent=2) + "\n")
    return f"Data: [{stem}.csv]({stem}.csv), [{stem}.json]({stem}.json)."


def _num(v):
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _single_is_best_proxy(result: dict) -> bool:
    """The ``single`` ranker *is* the best-proxy baseline (same rule, same folds): the
    report shows them as one row, as ``rankzc evaluate`` does."""
    models, base = result["models"], result.get("cv_baselines", {})
    return (
        "single" in models
        and not models["single"].get("failed")
        and "best proxy" in base
        and models["single"].get("per_fold_spearman") == base["best proxy"].get("per_fold_spearman")
    )


SAME_LABEL = "single = baseline: best proxy"


def _model_rows(result: dict) -> list[dict]:
    rows = []
    same = _single_is_best_proxy(result)
    for kind, group in (("model", result["models"]), ("baseline", result.get("cv_baselines", {}))):
        for name, e in group.items():
            if same and kind == "baseline" and name == "best proxy":
                continue
            label = SAME_LABEL if same and kind == "model" and name == "single" else name
            row: dict = {"name": label, "kind": kind}
            for m in METRICS:
                row[f"{m}_mean"] = None if e.get("failed") else _num(e.get(f"{m}_mean"))
                row[f"{m}_std"] = None if e.get("failed") else _num(e.get(f"{m}_std"))
            vs = e.get("vs_baseline") or {}
            lo, hi = vs.get("ci95") or [None, None]
            row.update(
                compared_with=vs.get("baseline"),
                spearman_diff=_num(vs.get("mean_diff")),
                ci95_low=_num(lo),
                ci95_high=_num(hi),
                p_value=_num(vs.get("p_value")),
                failed=e.get("error") if e.get("failed") else None,
            )
            rows.append(row)
    return rows


def write_report(
    report_dir: str | Path, result: dict, fs: FeatureSet, oof: dict[str, np.ndarray], bench=None
) -> Path:
    """Write ``report.md``, its plots and the CSV and JSON of every table it shows into
    ``report_dir``; return the Markdown path.

    The report is written whole into a temporary folder beside ``report_dir`` and then
    swapped in, so a second report into the same folder replaces the first entirely (no
    stale plot is left) and a failure leaves the previous report as it was. Only a folder
    that is new, empty or a previous report (:data:`MARKER`) is ever replaced.
    """
    import os
    import shutil
    import uuid

    target = Path(report_dir)
    check_report_dir(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.new")
    tmp.mkdir()  # the mode a folder gets here (mkdtemp's would be 0700)
    try:
        _write_report(tmp, result, fs, oof, bench)
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target / "report.md"


def _write_report(out: Path, result: dict, fs: FeatureSet, oof, bench) -> None:
    from rankzc.ranking.evaluation import comparison_text

    (out / MARKER).write_text(MARKER_TEXT)
    lines = [
        "# Ranker comparison",
        "",
        f"{result['n_architectures']} labelled architectures, features `{result['features']}` "
        f"({result['n_features']} columns), proxies scored after epoch {result.get('epoch', -1)}. "
        f"{result['cv']['note']}.",
        "",
        "## Models and baselines",
        "",
        "| model | " + " | ".join(METRICS) + " | compared with | Spearman diff [95% CI] | p |",
        "|---" * (len(METRICS) + 4) + "|",
    ]
    same = _single_is_best_proxy(result)
    for name, e in result["models"].items():
        if e.get("failed"):
            lines.append(
                f"| {name} | "
                + " | ".join("-" for _ in METRICS)
                + f" | - | failed: {e['error']} | - |"
            )
            continue
        cells = [f"{_fmt(e[f'{m}_mean'])} ± {_fmt(e[f'{m}_std'])}" for m in METRICS]
        vs, diff, p = comparison_text(e.get("vs_baseline"))
        label = SAME_LABEL if name == "single" and same else name
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {vs} | {diff} | {p} |")
    for name, e in result.get("cv_baselines", {}).items():
        if same and name == "best proxy":
            continue
        cells = [f"{_fmt(e[f'{m}_mean'])} ± {_fmt(e[f'{m}_std'])}" for m in METRICS]
        lines.append(f"| baseline: {name} | " + " | ".join(cells) + " | - | - | - |")
    lines += [
        "",
        f"Compared with: the strongest baseline ({result.get('strongest_baseline')}); "
        f"{result.get('comparison', '')}.",
        "",
        _write_table(
            out,
            "models",
            _model_rows(result),
            {
                "strongest_baseline": result.get("strongest_baseline"),
                "comparison": result.get("comparison"),
                "cv": result.get("cv"),
            },
        ),
        "",
    ]
    if bench is not None and not isinstance(bench, (str, Path, FeatureSet)) and fs.proxies:
        from rankzc import analysis

        single = analysis.single_proxy_report(
            bench, epoch=int(result.get("epoch", -1)), n_boot=200, group_by_depth=False
        )
        analysis.plot_proxy_correlations(single, str(out / "proxy_correlations.png"))
        rows = [
            {
                "name": name,
                "kind": "proxy",
                "spearman": _num(r.get("spearman")),
                "kendall": _num(r.get("kendall")),
                "ci95_low": _num((r.get("ci95") or [None, None])[0]),
                "ci95_high": _num((r.get("ci95") or [None, None])[1]),
            }
            for name, r in single["proxies"].items()
        ]
        rows += [
            {
                "name": name,
                "kind": "baseline",
                "spearman": _num(r.get("spearman")),
                "kendall": _num(r.get("kendall")),
                "ci95_low": _num((r.get("ci95") or [None, None])[0]),
                "ci95_high": _num((r.get("ci95") or [None, None])[1]),
            }
            for name, r in single.get("baselines", {}).items()
            if name not in single["proxies"]
        ]
        lines += [
            "## Single proxies",
            "",
            "![Single proxies](proxy_correlations.png)",
            "",
            _write_table(
                out,
                "single_proxies",
                rows,
                {"n": single.get("n"), "epoch": single.get("epoch"), "bootstrap": 200},
            ),
            "",
        ]
        if len(bench.proxy_epochs()) > 1:  # warm-up curves span every epoch
            warm = analysis.warmup_report(bench)
            analysis.plot_warmup(warm, str(out / "warmup.png"))
            rows = [
                {
                    "epoch": int(e),
                    "n": v["n"],
                    "proxy": name,
                    "spearman": _num(r.get("spearman")),
                    "kendall": _num(r.get("kendall")),
                }
                for e, v in warm["epochs"].items()
                for name, r in v["proxies"].items()
            ]
            lines += [
                "## Warm-up",
                "",
                "![Warm-up](warmup.png)",
                "",
                _write_table(out, "warmup", rows),
                "",
            ]
    y = fs.y.to_numpy(dtype=float)
    _scatter(out / "predicted_vs_true.png", oof, y)
    from rankzc.stats import spearman

    index = [str(i) for i in fs.y.index]
    pred_rows = [
        {"arch_id": a, "val_acc": _num(y[i]), **{m: _num(oof[m][i]) for m in oof}}
        for i, a in enumerate(index)
    ]
    rho = {m: _num(spearman(oof[m], y)) for m in oof}
    lines += [
        "## Predicted against true (out of fold)",
        "",
        "![Predicted against true](predicted_vs_true.png)",
        "",
        "Spearman of the out-of-fold predictions (first repeat) with the labels: "
        + ", ".join(f"{m} {_fmt(r)}" for m, r in rho.items())
        + ".",
        "",
        _write_table(out, "predicted_vs_true", pred_rows, {"spearman": rho}),
        "",
    ]
    if result.get("learning_curve"):
        _learning(out / "learning_curve.png", result["learning_curve"])
        lines += ["## Learning curve", "", "![Learning curve](learning_curve.png)", ""]
        curve = result["learning_curve"]
        sizes = [p["train_size"] for p in next(iter(curve.values()), [])]
        lines += ["| model | " + " | ".join(f"n = {s}" for s in sizes) + " |"]
        lines += ["|---" * (len(sizes) + 1) + "|"]
        for m, pts in curve.items():
            cells = [f"{_fmt(p['spearman_mean'])} ± {_fmt(p['spearman_std'])}" for p in pts]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        rows = [
            {
                "model": m,
                "train_size": int(p["train_size"]),
                "spearman_mean": _num(p.get("spearman_mean")),
                "spearman_std": _num(p.get("spearman_std")),
            }
            for m, pts in curve.items()
            for p in pts
        ]
        lines += ["", _write_table(out, "learning_curve", rows), ""]
    write_text(out / "report.md", "\n".join(lines) + "\n")
