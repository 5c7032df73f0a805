"""Check the README's figures against the commands that produce them; run its commands.

    nice -n 10 python benchmarks/readme_commands.py [--include-long] [--commands]
        [--list] [--fix] [--keep DIR [--reuse]] [--shared DIR]

**Figures** (the default). Every figure the README quotes that a command of this package
regenerates is tied, below (:data:`FIGURES`), to a regular expression that finds it in
README.md and to the command whose JSON output holds it. Each command runs once, in a
fresh directory (``../shared`` linked to the project's shared data, ``rankzc`` meaning
this checkout), and every figure read from it must match the quoted one within its
tolerance: by default half a unit of the last digit quoted (0.7827: 5e-05; 0.246:
5e-04; p = 0.42: 0.005; 8e-6: 5e-07), wider where a check says so. A figure that does not
match, or a quoted text the README no longer holds, fails: one line naming README.md:LINE,
the quoted and the regenerated value, the tolerance and the command; the exit is 1.
``--fix`` rewrites the numbers that do not match (same decimals and sign), nothing else.

- Figures from the study's data (``t.db``, ``n.db``, imported from ``../shared``) are
  checked only where ``../shared`` exists, and otherwise reported as skipped.
- Figures whose command runs for more than about two minutes (the search tables, 6 and 13
  minutes) are skipped unless ``--include-long``.
- Figures from benchmark scripts that run for hours (``benchmarks/study_end_to_end.py``,
  ``label_recipe.py``) are checked against the JSON those scripts wrote into
  ``benchmarks/output/`` (their command is named; rerun it to regenerate the file).
- Not checked: timings and memory (they measure a machine, not the code), and the lines
  ``--list`` does not name (``--list`` prints every check, so what is covered is on one
  screen).

On a fresh clone (no ``../shared``) the default run checks the shipped benchmark's figures
(under a minute on 2 cores); with ``../shared`` about 5 minutes more.

**Commands** (``--commands``): also run every command of README.md's ``bash`` blocks, in
order, in the same fresh directory (files one command writes are there for the next), and
print PASS/FAIL/SKIP and seconds per command. ``pip install`` is never run (what follows it
on the line is); without ``--include-long`` the whole test suite (``python -m pytest``),
the rebuild of the shipped benchmark and the commands that need data not on this machine
(``--data ntu:/data/...``) are skipped. ``[...]`` in a README command marks optional flags
and is left out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# ------------------------------------------------------------------ sources
#: stores built from ../shared before the first command that reads them
STORES = {
    "t.db": "rankzc import thesis ../shared/data/thesis-gcn-nas/architectures --out t.db -q",
    "n.db": "rankzc import nbsz ../shared/data/nas-bench-suite-zero/zc_nasbench201_cifar10.json"
    " --out n.db -q",
}


@dataclass(frozen=True)
class Source:
    """A command whose JSON output (stdout, or ``file``) holds figures."""

    command: str
    needs: tuple[str, ...] = ()  # stores of STORES (so: ../shared)
    long: bool = False  # over about two minutes: only with --include-long
    file: str | None = None  # read this JSON file (relative to the checkout) instead


SOURCES: dict[str, Source] = {
    # the shipped benchmark (rankzc/data/default.db): no ../shared needed
    "ship": Source("rankzc evaluate --models all --format json -q"),
    "ship-search": Source(
        "rankzc search -s random -s online -s depth -s proxy:params -s proxy:flops "
        "--train-budget 30 --repeats 10 --format json -q"
    ),
    "ship-build": Source(
        "OMP_NUM_THREADS=1 nice -n 10 python benchmarks/build_default.py "
        "--curves benchmarks/output/default_build.png",
        file="benchmarks/output/default_build.json",
    ),
    "ship-store": Source("python benchmarks/readme_commands.py --store-facts"),
    # the study (t.db) and NAS-Bench-201 (n.db)
    "t": Source("rankzc evaluate --benchmark t.db --format json -q", ("t.db",)),
    "t-warmup": Source("rankzc warmup --benchmark t.db --format json -q", ("t.db",)),
    "t-vote": Source("rankzc vote --benchmark t.db --max-size 3 --format json -q", ("t.db",)),
    "t-vote-study": Source(
        "rankzc vote --benchmark t.db --max-size 3 --ties study --format json -q", ("t.db",)
    ),
    "t-wam-none": Source(
        "rankzc evaluate --benchmark t.db --models wam --cv none --bootstrap 0 --format json -q",
        ("t.db",),
    ),
    "t-free": Source(
        "rankzc evaluate --benchmark t.db --models lambdarank,stratified --features all "
        "--proxies synflow,zen,l2_norm,params,flops --bootstrap 0 --format json -q",
        ("t.db",),
    ),
    "t-proxies": Source(
        "rankzc evaluate --benchmark t.db --models single,vote,wam,ranknet,lambdarank,rankagg "
        "--bootstrap 0 --format json -q",
        ("t.db",),
    ),
    "t-all": Source(
        "rankzc evaluate --benchmark t.db --models all --features all --bootstrap 0 "
        "--format json -q",
        ("t.db",),
    ),
    "n": Source("rankzc evaluate --benchmark n.db --format json -q", ("n.db",)),
    "n-proxies": Source(
        "rankzc evaluate --benchmark n.db --models single,vote,wam,ranknet,lambdarank,rankagg "
        "--bootstrap 0 --format json -q",
        ("n.db",),
    ),
    "n-strat": Source(
        "rankzc evaluate --benchmark n.db --models lambdarank,stratified --features all "
        "--bootstrap 0 --format json -q",
        ("n.db",),
    ),
    "n-all": Source(
        "rankzc evaluate --benchmark n.db --models lambdarank,ranknet,gnn --features all "
        "--bootstrap 0 --format json -q",
        ("n.db",),
        long=True,
    ),
    "n-search": Source(
        "rankzc search --benchmark n.db -s random -s online -s proxy:params -s proxy:flops "
        "--train-budget 60 --repeats 10 --format json -q",
        ("n.db",),
        long=True,
    ),
    "t-search": Source(
        "rankzc search --benchmark t.db -s random -s online -s proxy:params -s proxy:flops "
        "--train-budget 100 --repeats 10 --format json -q",
        ("t.db",),
        long=True,
    ),
    # hours-long benchmark scripts: the JSON they wrote
    "e2e": Source(
        "python benchmarks/study_end_to_end.py --study ../shared/data/thesis-gcn-nas/architectures",
        file="benchmarks/output/study_end_to_end.json",
    ),
    "e2e-lambdarank": Source(
        "python benchmarks/study_end_to_end.py --study ../shared/data/thesis-gcn-nas/architectures "
        "--model lambdarank --out benchmarks/output/study_end_to_end_lambdarank.json",
        file="benchmarks/output/study_end_to_end_lambdarank.json",
    ),
    "e2e-splits": Source(
        "python benchmarks/study_end_to_end.py --study ../shared/data/thesis-gcn-nas/architectures "
        "--stored-splits 10",
        file="benchmarks/output/study_end_to_end_splits.json",
    ),
    "e2e-recomputed-splits": Source(
        "python benchmarks/study_end_to_end.py --study ../shared/data/thesis-gcn-nas/architectures "
        "--seeds 0-9",
        file="benchmarks/output/study_end_to_end_recomputed_splits.json",
    ),
    "e2e-splits-lambdarank": Source(
        "python benchmarks/study_end_to_end.py --study ../shared/data/thesis-gcn-nas/architectures "
        "--stored-splits 10 --model lambdarank --out benchmarks/output/study_end_to_end_lambdarank.json",
        file="benchmarks/output/study_end_to_end_lambdarank_splits.json",
    ),
    "within-depth": Source(
        "python benchmarks/search_within_depth.py",
        file="benchmarks/output/search_within_depth.json",
    ),
    "study-vs-depth": Source(
        "python benchmarks/study_vs_depth.py --study ../shared/data/thesis-gcn-nas/architectures",
        file="benchmarks/output/study_vs_depth.json",
    ),
    "recipe-cpu": Source(
        "python benchmarks/label_recipe.py --seeds 0,1",
        file="benchmarks/output/label_recipe_cpu.json",
    ),
    "recipe-r8": Source(
        "python benchmarks/label_recipe.py --per-depth 6 --extremes --seeds 0,1",
        file="benchmarks/output/label_recipe_r8.json",
    ),
    "recipe-r8-density": Source(
        "python benchmarks/label_recipe.py --per-depth 6 --extremes --sampling density --seeds 0,1",
        file="benchmarks/output/label_recipe_r8_density.json",
    ),
    "check-r8": Source(
        "python benchmarks/build_default.py --finalize-only --allow-partial --curves PNG",
        file="benchmarks/output/default_r8_check.json",
    ),
}


# ------------------------------------------------------------------ figures
@dataclass(frozen=True)
class Figure:
    """One quoted figure: ``pattern`` finds it in README.md (whitespace-insensitive; its
    first group is the number), ``value`` reads it from ``source``'s output."""

    source: str
    pattern: str
    value: Callable[[Any], float]
    tol: float | None = None  # default: half a unit of the last quoted digit
    #: "=": within the tolerance; "<" / "<=": the value's magnitude is below / at most the
    #: quoted number; ">=": the value is at least the quoted number less the tolerance
    bound: str = "="


def _rho(name):
    return lambda o: o["proxies"][name]["spearman"]


def _ci(name, i):
    return lambda o: o["proxies"][name]["ci95"][i]


def _m(name, key="spearman_mean"):
    return lambda o: o["models"][name][key]


def _vs(name, key="mean_diff", i=None):
    def get(o):
        v = o["models"][name]["vs_baseline"][key]
        return v if i is None else v[i]

    return get


def _subset(names, source_key="subsets"):
    def get(o):
        for s in o[source_key]:
            if sorted(s["proxies"]) == sorted(names):
                return s["score"]
        raise KeyError(f"subset {names} not in the output")

    return get


def _search(strategy, n, key="regret_mean"):
    def get(o):
        for s in [*o["strategies"], *o.get("references", [])]:
            if s["strategy"] == strategy:
                return s["curve"][key][n - 1]
        raise KeyError(strategy)

    return get


def _table51() -> list[Figure]:
    names = (
        "zen", "synflow", "l2_norm", "flops", "params", "grad_sign", "grasp", "grad_norm",
        "plain", "snip", "fisher", "nwot", "jacov", "epe_nas",
    )  # fmt: skip
    out = []
    for name in names:
        cell = rf"\| {name} \| "
        out.append(Figure("t", cell + r"(-?\d+(?:\.\d+)?) \|", _rho(name)))
        out.append(Figure("t", cell + r"-?[\d.]+ \| \[(-?\d+(?:\.\d+)?), ", _ci(name, 0)))
        out.append(Figure("t", cell + r"-?[\d.]+ \| \[-?[\d.]+, (-?\d+(?:\.\d+)?)\]", _ci(name, 1)))
    return out


def _shipped() -> list[Figure]:
    num = r"([-+]?\d+(?:\.\d+)?(?:e-?\d+)?)"
    names = (
        "nwot", "snip", "grad_norm", "fisher", "zen", "synflow", "grad_sign", "jacov",
        "grasp", "l2_norm", "flops", "params", "epe_nas", "plain",
    )  # fmt: skip
    head = r"\| nwot \| snip \| grad_norm \|.*?\|---\| \| "
    out = [
        Figure("ship", head + num + r" \[", _rho("nwot")),
        Figure("ship", head + r"[-\d.]+ \[" + num + ",", _ci("nwot", 0)),
        Figure("ship", head + r"[-\d.]+ \[[-\d.]+, " + num + r"\]", _ci("nwot", 1)),
    ]
    for i, name in enumerate([*names[1:], "depth"]):
        get = (lambda o: o["baselines"]["depth"]["spearman"]) if name == "depth" else _rho(name)
        skip = r"[-\d.]+ \[[^\]]*\] \| " + r"-?[\d.]+ \| " * i
        out.append(Figure("ship", head + skip + num + r" \|", get))
    cv = r"the strongest baseline on the same folds, depth \("
    out += [
        Figure("ship", cv + num + " ±", lambda o: o["cv_baselines"]["depth"]["spearman_mean"]),
        Figure("ship", cv + r"[\d.]+ ± " + num + r"\)", lambda o: o["cv_baselines"]["depth"]["spearman_std"]),
    ]  # fmt: skip
    rows = {"stratified": "stratified", "lambdarank": "lambdarank", "ranknet": "ranknet", "vote": "vote",
            "single (best proxy)": "single", "wam": "wam", "rankagg (no labels)": "rankagg"}  # fmt: skip
    for label, name in rows.items():
        row = r"\| " + re.escape(label) + r" \| "
        cells = [
            (num + " ±", _m(name)),
            (r"[\d.]+ ± " + num + r" \|", _m(name, "spearman_std")),
            (r"[\d.]+ ± [\d.]+ \| " + num + r" \[", _vs(name)),
            (r"[\d.]+ ± [\d.]+ \| [-+\d.]+ \[" + num + ",", _vs(name, "ci95", 0)),
            (r"[\d.]+ ± [\d.]+ \| [-+\d.]+ \[[-+\d.]+, " + num + r"\]", _vs(name, "ci95", 1)),
            (r"[\d.]+ ± [\d.]+ \| [^|]+\| " + num + r" \|", _vs(name, "p_value")),
            (r"[\d.]+ ± [\d.]+ \| [^|]+\| [^|]+\| " + num + r" \|", _vs(name, "p_holm")),
        ]
        out += [Figure("ship", row + cell, get) for cell, get in cells]
    add = lambda name, key: lambda o: o["models"][name]["proxies_add"][key]  # noqa: E731
    ci = lambda name, i: lambda o: o["models"][name]["proxies_add"]["ci95"][i]  # noqa: E731

    def rep(key, i=None):
        def get(o):
            v = o["label_noise"]["repeats"][key]
            return v if i is None else v[i]

        return get

    out += [
        Figure("ship", r"do better still \(stratified " + num, add("stratified", "arch_only_spearman_mean")),
        Figure("ship", r"do better still \(stratified [\d.]+,\s+ranknet " + num, add("ranknet", "arch_only_spearman_mean")),
        Figure("ship", r"do better still \(stratified [\d.]+,\s+ranknet [\d.]+, lambdarank " + num, add("lambdarank", "arch_only_spearman_mean")),
        Figure("ship", r"\(within-depth Spearman " + num + " against lambdarank's", _m("stratified", "within_depth_spearman_mean")),
        Figure("ship", r"against lambdarank's " + num + r"\)", _m("lambdarank", "within_depth_spearman_mean")),
        Figure("ship", r"the `stratified` ranker \(on\s+proxies alone, a ridge and tree regression of the label\) reaches a held-out Spearman of\s+about " + num,
               _m("stratified"), tol=0.01),
        Figure("ship", r"about [\d.]+ and\s+LambdaRank about " + num, _m("lambdarank"), tol=0.01),
        Figure("ship", r"LambdaRank about [\d.]+, against " + num + " for depth", lambda o: o["cv_baselines"]["depth"]["spearman_mean"], tol=0.01),
        Figure("ship", r"with the proxies lambdarank loses " + num, add("lambdarank", "mean_diff")),
        Figure("ship", r"with the proxies lambdarank loses [-\d.]+ \[" + num, ci("lambdarank", 0)),
        Figure("ship", r"with the proxies lambdarank loses [-\d.]+ \[[-\d.]+, " + num, ci("lambdarank", 1)),
        Figure("ship", r"with the proxies lambdarank loses [^\]]+\], p = " + num, add("lambdarank", "p_value")),
        Figure("ship", r"seeds 0 and 1 give a seed-to-seed Spearman of \*\*" + num, rep("seed_to_seed_spearman")),
        Figure("ship", r"seed-to-seed Spearman of \*\*[\d.]+\*\* \[" + num, rep("seed_to_seed_ci95", 0)),
        Figure("ship", r"seed-to-seed Spearman of \*\*[\d.]+\*\* \[[\d.]+, " + num, rep("seed_to_seed_ci95", 1)),
        Figure("ship", r"into a reliability of \*\*" + num, rep("reliability")),
        Figure("ship", r"into a reliability of \*\*[\d.]+\*\*\s+\[" + num, rep("reliability_ci95", 0)),
        Figure("ship", r"into a reliability of \*\*[\d.]+\*\*\s+\[[\d.]+, " + num, rep("reliability_ci95", 1)),
        Figure("ship", r"a ceiling of about " + num + " for any ranker", rep("ceiling"), tol=0.01),
        Figure("ship-search", r"gives\s+online " + num + " points of regret after 10", _search("online", 10)),
        Figure("ship-search", r"after 10 trained against random's " + num, _search("random", 10)),
        Figure("ship-search", r"the depth order gives " + num + " after 10", _search("depth", 10)),
        Figure("ship-search", r"and the params\s+and flops orders " + num, _search("proxy:params", 10)),
        Figure("ship-search", r"and the params\s+and flops orders " + num, _search("proxy:flops", 10)),
    ]  # fmt: skip
    facts = [
        (r"default\.db` \((\d+(?:\.\d+)?) MB\)", "size_mb", 0.005),
        (r"holds (\d+) GCN-NAS architectures", "n_architectures", None),
        (r"depths 4/6/8/10:\s+(\d+)/", "depth_4", None),
        (r"depths 4/6/8/10:\s+\d+/(\d+)/", "depth_6", None),
        (r"depths 4/6/8/10:\s+\d+/\d+/(\d+)/", "depth_8", None),
        (r"depths 4/6/8/10:\s+\d+/\d+/\d+/(\d+)\)", "depth_10", None),
        (r"all (\d+) of them under seeds 0, 1 and 2", "n_repeated", None),
        (r"\((\d+) runs, none failed\)", "n_runs", None),
        (r"after the last of 16 epochs, mean over\s+an architecture's runs\) lie between (\d+(?:\.\d+)?)", "label_min", None),
        (r"lie between [\d.]+ and (\d+(?:\.\d+)?)", "label_max", None),
        (r"lie between [\d.]+ and [\d.]+ \(mean (\d+(?:\.\d+)?)", "label_mean", None),
        (r"lie between [\d.]+ and [\d.]+ \(mean [\d.]+, sd (\d+(?:\.\d+)?) points", "label_sd_points", None),
    ]  # fmt: skip
    for pattern, key, tol in facts:
        out.append(Figure("ship-store", pattern, lambda o, k=key: o[k], tol=tol))
    sn = lambda key, part="seed_noise": lambda o: o[part][key]  # noqa: E731
    build = [
        (r"\(ICC\(1\) " + num + ": a seed sd", sn("icc")),
        (r"a seed sd of " + num + r"\s+points against", sn("seed_sd_points")),
        (r"points against " + num + " between architectures; without", sn("between_sd_points")),
        (r"without depth 10, Spearman " + num, sn("spearman", "seed_noise_below_deepest")),
        (r"within\s+depth 10 alone, " + num, lambda o: o["seed_noise_by_depth"]["10"]["spearman"]),
        (r"the lowest of the 600\s+runs is " + num, lambda o: o["run_val_acc_min"]),
        (
            r"The runs took [\d.]+ core-hours: " + num + " s per run",
            lambda o: o["train_seconds_mean"],
        ),
        (
            r"two cores, " + num + " minutes from the first run",
            lambda o: o["build_wall_seconds"] / 60,
        ),
    ]
    for i, d in enumerate((4, 6, 8, 10)):
        skip = r"[\d.]+ / " * i
        build.append(
            (r"by depth their means are " + skip + num, lambda o, d=d: o["by_depth_mean"][str(d)])
        )
    out += [Figure("ship-build", pattern, get) for pattern, get in build]
    return out


def _study() -> list[Figure]:
    vote = r"reproduces the study's Table 5\.2: .*?"
    out = [
        Figure("t", r"ranks them with rho (\d+(?:\.\d+)?), better", lambda o: o["baselines"]["depth"]["spearman"]),
        Figure("t", r"within\s+one depth zen and synflow fall to \|rho\| < (\d+(?:\.\d+)?)",
               lambda o: max(abs(d[p]["spearman"]) for d in o["within_depth"].values()
                             for p in ("zen", "synflow")), bound="<"),
        Figure("t-warmup", r"synflow rising from (\d+(?:\.\d+)?) at initialisation",
               lambda o: o["epochs"]["-1"]["proxies"]["synflow"]["spearman"]),
        Figure("t-warmup", r"synflow rising from [\d.]+ at initialisation to (\d+(?:\.\d+)?)-",
               lambda o: min(o["epochs"][str(e)]["proxies"]["synflow"]["spearman"] for e in range(4, 10))),
        Figure("t-warmup", r"synflow rising from [\d.]+ at initialisation to [\d.]+-(\d+(?:\.\d+)?)",
               lambda o: max(o["epochs"][str(e)]["proxies"]["synflow"]["spearman"] for e in range(4, 10))),
        Figure("n", r"NAS-Bench-201 CIFAR-10 \(725 architectures\): nwot (\d+(?:\.\d+)?)", _rho("nwot")),
        Figure("n", r"NAS-Bench-201 CIFAR-10 \(725 architectures\): nwot [\d.]+, jacov (\d+(?:\.\d+)?)", _rho("jacov")),
        Figure("t-vote", vote + r"zen alone\s+(\d+(?:\.\d+)?)", _subset(["zen"])),
        Figure("t-wam-none", r"--models wam --cv none`: (\d+(?:\.\d+)?) in-sample", _m("wam")),
        # the recommended inputs (Rank new GCN-NAS architectures)
        Figure("t-free", r"`stratified` reaches Spearman (\d+(?:\.\d+)?) \(sd", _m("stratified")),
        Figure("t-free", r"`stratified` reaches Spearman [\d.]+ \(sd (\d+(?:\.\d+)?)\)", _m("stratified", "spearman_std")),
        Figure("t-free", r"\(sd [\d.]+\) and `lambdarank` (\d+(?:\.\d+)?) \(sd", _m("lambdarank")),
        Figure("t-free", r"and `lambdarank` [\d.]+ \(sd (\d+(?:\.\d+)?)\)", _m("lambdarank", "spearman_std")),
        Figure("t-free", r"and `lambdarank` [\d.]+ \(sd [\d.]+\),\s+against (\d+(?:\.\d+)?) for depth",
               lambda o: o["cv_baselines"]["depth"]["spearman_mean"]),
        Figure("n-strat", r"NAS-Bench-201: (\d+(?:\.\d+)?) against [\d.]+ for\s+`stratified`", _m("lambdarank")),
        Figure("n-strat", r"NAS-Bench-201: [\d.]+ against (\d+(?:\.\d+)?) for\s+`stratified`", _m("stratified")),
        Figure("t-free", r"baseline, and (\d+(?:\.\d+)?) for the best single proxy",
               lambda o: o["cv_baselines"]["best proxy"]["spearman_mean"]),
    ]  # fmt: skip
    for subset in (
        ["fisher", "synflow", "zen"], ["nwot", "synflow", "zen"], ["flops", "synflow", "zen"],
        ["plain", "synflow", "zen"], ["grad_norm", "synflow", "zen"],
    ):  # fmt: skip
        label = re.escape("(" + ", ".join(subset) + ")")
        for src in ("t-vote", "t-vote-study"):  # "with either tie rule"
            out.append(Figure(src, vote + label + r" (\d+(?:\.\d+)?)", _subset(subset)))
    out.append(Figure("t-vote-study", vote + r"zen alone\s+(\d+(?:\.\d+)?)", _subset(["zen"])))
    # the study, --features proxies
    para = r"The study's data, `--features proxies` .*?"
    out += [
        Figure("t-proxies", r"`--features proxies` \(strongest baseline: depth, (\d+(?:\.\d+)?) ±",
               lambda o: o["cv_baselines"]["depth"]["spearman_mean"]),
        Figure("t-proxies", r"`--features proxies` \(strongest baseline: depth, [\d.]+ ± (\d+(?:\.\d+)?);",
               lambda o: o["cv_baselines"]["depth"]["spearman_std"]),
    ]  # fmt: skip
    for name in ("single", "vote", "wam", "ranknet", "lambdarank"):
        head = para + rf"\b{name} "
        out += [
            Figure("t-proxies", head + r"(\d+(?:\.\d+)?), [+-]", _m(name)),
            Figure("t-proxies", head + r"[\d.]+, ([+-]\d+(?:\.\d+)?) \[", _vs(name)),
            Figure("t-proxies", head + r"[\d.]+, [+-][\d.]+ \[([+-]\d+(?:\.\d+)?),", _vs(name, "ci95", 0)),
            Figure("t-proxies", head + r"[\d.]+, [+-][\d.]+ \[[+-][\d.]+,\s*([+-]\d+(?:\.\d+)?)\]", _vs(name, "ci95", 1)),
            Figure("t-proxies", head + r"[\d.]+, [+-][\d.]+ \[[^\]]+\],\s*p = (\d+(?:\.\d+)?(?:e-?\d+)?)", _vs(name, "p_value")),
        ]  # fmt: skip
    # the study, --features all
    para = r"The study's data, `--features all` .*?"
    for name in ("lambdarank", "ranknet", "wam", "vote"):
        head = para + rf"\b{name}\s+"
        out += [
            Figure("t-all", head + r"(\d+(?:\.\d+)?), [+-]", _m(name)),
            Figure("t-all", head + r"[\d.]+, ([+-]\d+(?:\.\d+)?) \[", _vs(name)),
            Figure("t-all", head + r"[\d.]+, [+-][\d.]+ \[([+-]\d+(?:\.\d+)?),", _vs(name, "ci95", 0)),
            Figure("t-all", head + r"[\d.]+, [+-][\d.]+ \[[+-][\d.]+,\s*([+-]\d+(?:\.\d+)?)\]", _vs(name, "ci95", 1)),
            Figure("t-all", head + r"[\d.]+, [+-][\d.]+ \[[^\]]+\],\s*p = (\d+(?:\.\d+)?(?:e-?\d+)?)", _vs(name, "p_value")),
        ]  # fmt: skip
    within = r"within-depth Spearman lambdarank "
    out += [
        Figure("t-all", within + r"(\d+(?:\.\d+)?),", _m("lambdarank", "within_depth_spearman_mean")),
        Figure("t-all", within + r"[\d.]+, ranknet (\d+(?:\.\d+)?),", _m("ranknet", "within_depth_spearman_mean")),
        Figure("t-all", within + r"[\d.]+, ranknet [\d.]+, wam (\d+(?:\.\d+)?)", _m("wam", "within_depth_spearman_mean")),
        Figure("t-all", within + r"[\d.]+, ranknet [\d.]+, wam [\d.]+ against (\d+(?:\.\d+)?)",
               lambda o: o["cv_baselines"]["best proxy"]["within_depth_spearman_mean"]),
    ]  # fmt: skip
    # the same run, as the no-labels section quotes it
    para = r"The study, `--features all` \(proxies, encoding, graph; .*?"
    best = lambda name, key: lambda o: o["models"][name]["comparisons"]["best proxy"][key]  # noqa: E731
    out += [
        Figure("t-all", r"learns only that order, does: ([+-]\d+\.\d+) against depth", _vs("stratified")),
        Figure("t-all", r"learns only that order, does: [+-][\d.]+ against depth \(p = (\d+\.\d+)\)",
               _vs("stratified", "p_value")),
        Figure("t-all", r"against depth \(p = [\d.]+\), ([+-]\d+\.\d+) against the\s+best proxy",
               best("stratified", "mean_diff")),
        Figure("t-all", r"against the\s+best proxy \(p = (\d+\.\d+)\), neither", best("stratified", "p_value")),
        Figure("t-all", r"Holm's correction over the run's (\d+)\s+comparisons",
               lambda o: o["models"]["stratified"]["vs_baseline"]["holm_family"]),
        Figure("t-all", r"`stratified` \(round 10\), which keeps depth as a level and learns only the\s+"
               r"within-depth part, is: (\d+\.\d+),", _m("stratified")),
        Figure("t-all", r"within-depth part, is: [\d.]+, ([+-]\d+\.\d+) \[", _vs("stratified")),
        Figure("t-all", r"within-depth part, is: [\d.]+, [+-][\d.]+ \[([+-]\d+\.\d+),", _vs("stratified", "ci95", 0)),
        Figure("t-all", r"within-depth part, is: [\d.]+, [+-][\d.]+ \[[+-][\d.]+, ([+-]\d+\.\d+)\]",
               _vs("stratified", "ci95", 1)),
        Figure("t-all", r"within-depth part, is: .*?p = (\d+\.\d+) \(within-depth", _vs("stratified", "p_value")),
        Figure("t-all", r"within-depth part, is: .*?\(within-depth (\d+\.\d+)\)",
               _m("stratified", "within_depth_spearman_mean")),
    ]  # fmt: skip
    for name in ("stratified", "lambdarank", "ranknet", "wam", "gnn", "vote", "rankagg"):
        # gnn trains a torch network: its sums, and so its figures, differ in the third
        # decimal with the thread settings (0.7845 / 0.1476 by default here, 0.7848 /
        # 0.1500 with OMP_NUM_THREADS=2)
        tol = 0.003 if name == "gnn" else None
        out.append(Figure("t-all", para + rf"\b{name} (\d+\.\d+) \(", _m(name), tol=tol))
        out.append(Figure("t-all", para + rf"\b{name} \d+\.\d+ \((\d+\.\d+)[;)]",
                          _m(name, "within_depth_spearman_mean"), tol=tol))  # fmt: skip
    out += [
        Figure("t-all", para + r"no labels, ([+-]\d+\.\d+) against depth", _vs("rankagg")),
        Figure("t-all", para + r"no labels, [+-]\d+\.\d+ against depth, p = (\d+\.\d+)", _vs("rankagg", "p_value")),
        Figure("t-all", para + r"baselines depth\s+(\d+\.\d+),", lambda o: o["cv_baselines"]["depth"]["spearman_mean"]),
        Figure("t-all", para + r"best proxy (\d+\.\d+) \(", lambda o: o["cv_baselines"]["best proxy"]["spearman_mean"]),
        Figure("t-all", para + r"lambdarank\s+is ([+-]\d+\.\d+) \[", _vs("lambdarank")),
        Figure("t-all", para + r"lambdarank\s+is [+-]\d+\.\d+ \[[^\]]+\], p = (\d+\.\d+)", _vs("lambdarank", "p_value")),
        Figure("t-all", para + r"the other learned models within ±(\d+\.\d+)",
               lambda o: max(abs(o["models"][m]["vs_baseline"]["mean_diff"]) for m in ("ranknet", "wam", "gnn")), bound="<="),
        Figure("t-all", para + r"the other learned models within ±[\d.]+ \(p ≥ (\d+\.\d+);",
               lambda o: min(o["models"][m]["vs_baseline"]["p_value"] for m in ("ranknet", "wam", "gnn")), bound=">="),
        Figure("t-all", para + r"best proxy \+\d+\.\d+ to ([+-]\d+\.\d+) \(lambdarank p = ",
               lambda o: o["models"]["lambdarank"]["comparisons"]["best proxy"]["mean_diff"]),
        Figure("t-all", para + r"best proxy [+-]\d+\.\d+ to [+-]\d+\.\d+ \(lambdarank p = (\d+\.\d+)",
               lambda o: o["models"]["lambdarank"]["comparisons"]["best proxy"]["p_value"]),
        Figure("t-all", para + r"\(lambdarank p = [\d.]+,\s+wam p = (\d+\.\d+)",
               lambda o: o["models"]["wam"]["comparisons"]["best proxy"]["p_value"]),
    ]  # fmt: skip
    para = r"The study: "
    out += [
        Figure("t-proxies", para + r"(\d+\.\d+) ± ", _m("rankagg")),
        Figure("t-proxies", para + r"\d+\.\d+ ± (\d+\.\d+) \(within", _m("rankagg", "spearman_std")),
        Figure("t-proxies", para + r"[^(]*\(within-depth (\d+\.\d+);", _m("rankagg", "within_depth_spearman_mean")),
        Figure("t-proxies", para + r".*?\), ([+-]\d+\.\d+)\s+\[[^\]]+\] against depth", _vs("rankagg")),
        Figure("t-proxies", para + r".*?\[([+-]\d+\.\d+), [+-]\d+\.\d+\] against depth", _vs("rankagg", "ci95", 0)),
        Figure("t-proxies", para + r".*?\[[+-]\d+\.\d+, ([+-]\d+\.\d+)\] against depth", _vs("rankagg", "ci95", 1)),
        Figure("t-proxies", para + r".*?\] against depth \(p = (\d+\.\d+)\)", _vs("rankagg", "p_value")),
    ]  # fmt: skip
    # NAS-Bench-201, proxies only
    para = r"NAS-Bench-201 CIFAR-10, proxies only \(strongest baseline: best proxy, "
    out += [
        Figure("n-proxies", para + r"(\d+(?:\.\d+)?) ±", lambda o: o["cv_baselines"]["best proxy"]["spearman_mean"]),
        Figure("n-proxies", para + r"[\d.]+ ± (\d+(?:\.\d+)?)\)", lambda o: o["cv_baselines"]["best proxy"]["spearman_std"]),
    ]  # fmt: skip
    for name in ("lambdarank", "ranknet", "vote", "wam"):
        head = para + r".*?\b" + name + r" "
        out += [
            Figure("n-proxies", head + r"(\d+(?:\.\d+)?)[ ,]", _m(name)),
            Figure("n-proxies", head + r"[\d.]+(?: ± [\d.]+)?, ([+-]\d+(?:\.\d+)?) \[", _vs(name)),
            Figure(
                "n-proxies",
                head + r"[^\[]*\[[^\]]+\],\s*p = (\d+(?:\.\d+)?(?:e-?\d+)?)",
                _vs(name, "p_value"),
            ),
        ]
        if name in ("lambdarank", "ranknet"):
            out.append(
                Figure("n-proxies", head + r"[\d.]+ ± (\d+(?:\.\d+)?)", _m(name, "spearman_std"))
            )
    out += [
        Figure("n-proxies", r"NAS-Bench-201, 5x3 CV: \*\*(\d+(?:\.\d+)?) ± [\d.]+\*\*", _m("rankagg")),
        Figure("n-proxies", r"NAS-Bench-201, 5x3 CV: \*\*[\d.]+ ± (\d+(?:\.\d+)?)\*\*", _m("rankagg", "spearman_std")),
        Figure("n-proxies", r"`rule=mean` [\d.]+\), ([+-]\d+(?:\.\d+)?) \[", _vs("rankagg")),
    ]  # fmt: skip
    # NAS-Bench-201, --features all (gnn: long)
    para = r"With `--features all` \(12 proxies \+ 30 one-hot \+ 17 graph columns\): "
    for name in ("lambdarank", "ranknet", "gnn"):
        head = para + r".*?\b" + name + r"\s+"
        out.append(Figure("n-all", head + r"(\d+(?:\.\d+)?) ±", _m(name)))
        out.append(Figure("n-all", head + r"[\d.]+ ± (\d+(?:\.\d+)?)", _m(name, "spearman_std")))
    # end to end on real labels (the JSON the script wrote)
    para = r"Spearman with their true accuracy: "
    out += [
        Figure("e2e", para + r"\*\*recomputed (\d+(?:\.\d+)?)\*\*", lambda o: o["spearman"]["recomputed"]["rho"]),
        Figure("e2e", para + r"\*\*recomputed [\d.]+\*\*\s+\[(\d+(?:\.\d+)?),", lambda o: o["spearman"]["recomputed"]["ci95"][0]),
        Figure("e2e", para + r".*?\*\*stored\*\* \(the study's own scores, same ranker\) \*\*(\d+(?:\.\d+)?)\*\*",
               lambda o: o["spearman"]["stored"]["rho"]),
        Figure("e2e", para + r".*?\*\*depth (\d+(?:\.\d+)?)\*\*", lambda o: o["spearman"]["depth"]["rho"]),
        Figure("e2e", r"Recomputed against stored values: synflow\s+(\d+(?:\.\d+)?)",
               lambda o: o["proxy_agreement"]["synflow"]),
        Figure("e2e", r"Recomputed against stored values: synflow\s+[\d.]+ \(the tie rule\), zen (\d+(?:\.\d+)?)",
               lambda o: o["proxy_agreement"]["zen"]),
        Figure("e2e", r"\(`stratified`\) fitted on the other (\d+),", lambda o: o["n_train"]),
        Figure("e2e", r"(\d+) architectures held out \(stratified", lambda o: o["n_holdout"]),
        Figure("e2e", r"Recomputing took (\d+(?:\.\d+)?) s per architecture",
               lambda o: sum(o["seconds_per_arch_by_depth"].values()) / len(o["seconds_per_arch_by_depth"]), tol=0.1),
        Figure("e2e-lambdarank", r"`study_end_to_end_lambdarank.json`\): recomputed (\d+\.\d+)",
               lambda o: o["spearman"]["recomputed"]["rho"]),
        Figure("e2e-lambdarank", r"`study_end_to_end_lambdarank.json`\): recomputed [\d.]+, stored (\d+\.\d+)",
               lambda o: o["spearman"]["stored"]["rho"]),
        Figure("e2e-splits", r"`study_end_to_end_splits.json`\): `stratified` (\d+\.\d+), depth", lambda o: o["stored_mean"]),
        Figure("e2e-splits", r"`study_end_to_end_splits.json`\): `stratified` [\d.]+, depth\s+(\d+\.\d+)", lambda o: o["depth_mean"]),
        Figure("e2e-splits", r"depth\s+[\d.]+, ahead in (\d+) of 10", lambda o: o["stored_above_depth"]),
        Figure("e2e-recomputed-splits", r"\*\*recomputed (\d+\.\d+)\*\*, stored", lambda o: o["recomputed_mean"]),
        Figure("e2e-recomputed-splits", r"\*\*recomputed [\d.]+\*\*, stored (\d+\.\d+)", lambda o: o["stored_mean"]),
        Figure("e2e-recomputed-splits", r"stored [\d.]+, \*\*depth (\d+\.\d+)\*\*; the ranker", lambda o: o["depth_mean"]),
        Figure("e2e-recomputed-splits", r"the ranker ahead of depth in (\d+) of\s+10", lambda o: o["recomputed_above_depth"]),
        Figure("e2e-recomputed-splits", r"\(difference ([+-]\d+\.\d+), sd", lambda o: o["recomputed_minus_depth_mean"]),
        Figure("e2e-recomputed-splits", r"\(difference [+-][\d.]+, sd (\d+\.\d+):", lambda o: o["recomputed_minus_depth_sd"]),
        Figure("e2e-recomputed-splits", r"recomputed within\s+(\d+\.\d+) of stored on every split",
               lambda o: o["recomputed_minus_stored_max_abs"], bound="<="),
        Figure("e2e-splits-lambdarank", r"over the 10\s+seeds (\d+\.\d+), ahead", lambda o: o["stored_mean"]),
        Figure("e2e-splits-lambdarank", r"over the 10\s+seeds [\d.]+, ahead of depth in (\d+)",
               lambda o: o["stored_above_depth"]),
    ]  # fmt: skip
    rk = lambda name, key="rho_mean": lambda o: o["rankers"][name][key]  # noqa: E731
    para = r"compares rankers with depth: "
    out += [
        Figure("study-vs-depth", para + r"depth (\d+\.\d+) \(sd", rk("depth")),
        Figure("study-vs-depth", para + r"depth [\d.]+ \(sd (\d+\.\d+)\)", rk("depth", "rho_sd")),
        Figure("study-vs-depth", para + r".*?lambdarank (\d+\.\d+),", rk("lambdarank")),
        Figure("study-vs-depth", para + r".*?without its\s+prior (\d+\.\d+),", rk("lambdarank_no_prior")),
        Figure("study-vs-depth", para + r".*?encoding alone (\d+\.\d+),", rk("lambdarank_arch")),
        Figure("study-vs-depth", para + r".*?within-depth lambdarank\s+(\d+\.\d+)", rk("depth_then_within")),
        Figure("study-vs-depth", para + r".*?`stratified` (\d+\.\d+) \(above", rk("stratified")),
        Figure("study-vs-depth", para + r".*?`stratified` [\d.]+ \(above depth in (\d+) of 10\)",
               rk("stratified", "above_depth")),
        Figure("study-vs-depth", para + r".*?\(each above depth in (\d+) of 10\)", rk("lambdarank", "above_depth")),
    ]  # fmt: skip
    out.append(
        Figure("recipe-cpu", r"\*\*the `cpu` recipe\*\* \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| (\d+(?:\.\d+)?) \|",
               lambda o: o["seconds_per_arch"])
    )  # fmt: skip
    # the round-8 pre-build check (the JSON build_default.py wrote)
    sn = lambda key: lambda o: o["seed_noise"][key]  # noqa: E731
    para = r"Round 8 measured the rebuild before building it.*?"
    out += [
        Figure("check-r8", para + r"stopped after its second pass: (\d+) architectures", sn("n")),
        Figure(
            "check-r8",
            para + r"(\d+) s of one core per\s+run on average",
            lambda o: o["train_seconds_mean"],
            tol=0.5,
        ),
        Figure(
            "check-r8",
            para + r"two seeds gave a Spearman of \*\*(\d+(?:\.\d+)?)\*\*",
            sn("spearman"),
        ),
        Figure("check-r8", para + r"ICC\(1\) was (\d+(?:\.\d+)?):", sn("icc")),
        Figure(
            "check-r8",
            para + r"ICC\(1\) was [\d.]+: (\d+(?:\.\d+)?) points\s+of seed sd",
            sn("seed_sd_points"),
        ),
        Figure(
            "check-r8",
            para + r"against (\d+(?:\.\d+)?) points between architectures",
            sn("between_sd_points"),
        ),
    ]
    out += [
        Figure("check-r8", para + r"the lowest label of the 122 finished runs was (\d+(?:\.\d+)?)",
               lambda o: o["run_val_acc_min"]),
        Figure("check-r8", para + r"Without depth 10, the Spearman was (\d+(?:\.\d+)?)",
               lambda o: o["seed_noise_below_deepest"]["spearman"]),
        Figure("check-r8", para + r"Without depth 10, the Spearman was [\d.]+ \(ICC (\d+(?:\.\d+)?)\)",
               lambda o: o["seed_noise_below_deepest"]["icc"]),
    ]  # fmt: skip
    for src, row in (("recipe-r8", "uniform draws"), ("recipe-r8-density", "density draws")):
        for col, key in enumerate(("spearman", "icc", "seed_sd_points", "between_sd_points")):
            skip = r"[\d.]+ \| " * col
            out.append(
                Figure(src, r"\| " + row + r" \(`label_recipe[^|]*\| " + skip + r"(\d+(?:\.\d+)?) \|",
                       lambda o, key=key: o["seeds"][key])
            )  # fmt: skip
    for i, d in enumerate((4, 6, 8, 10)):
        skip = r"[\d.]+ / " * i
        out.append(
            Figure(
                "check-r8",
                para + r"Mean labels were " + skip + r"(\d+(?:\.\d+)?)",
                lambda o, d=d: o["by_depth_mean"][str(d)],
            )
        )
    # search tables (long)
    for src, rows in (
        ("n-search", {"random": ("1.707", "1.006", "0.643"), "online": ("0.050", "0.000", "0.000")}),
        ("t-search", {"random": ("0.495", "0.392", "0.344"), "online": ("0.385", "0.274", "0.144")}),
    ):  # fmt: skip
        table = (
            r"\(NAS-Bench-201 CIFAR-10, 725 archs"
            if src == "n-search"
            else r"\(the study, 693 archs"
        )
        for name, _ in rows.items():
            for col, n in enumerate((10, 20, 50)):
                skip = r"[\d.]+ ± [\d.]+ \| " * col
                out.append(
                    Figure(src, table + r".*?\| " + name + r" \| " + skip + r"(\d+(?:\.\d+)?) ±",
                           _search(name, n), tol=0.0015)
                )  # fmt: skip
    wd = r"Why nothing does better on the study .*?"
    out += [
        Figure("within-depth", wd + r"random search's expected regret at 100, (\d+\.\d+) points",
               lambda o: o["random_regret"]),
        Figure("within-depth", wd + r"pool's best (\d+) architectures", lambda o: o["deepest_within_target"]),
        Figure("within-depth", wd + r"no proxy's Spearman with the accuracy\s+exceeds (\d+\.\d+)",
               lambda o: o["max_abs_within_deepest"], bound="<="),
        Figure("within-depth", wd + r"reaches [\d.]+ after (\d+) in\s+expectation", lambda o: o["depth_order_reaches"]),
        Figure("within-depth", wd + r"of the (\d+) orders", lambda o: o["feature_orders"]),
        Figure("within-depth", wd + r"the median needs (\d+)", lambda o: o["feature_orders_reach_median"]),
        Figure("within-depth", wd + r"and (\d+) need 11 or fewer", lambda o: o["feature_orders_by_target"]),
        Figure("within-depth", wd + r"\(probability (\d+\.\d+) of one", lambda o: o["random_deepest_order_by_target"]),
    ]  # fmt: skip
    return out


FIGURES: list[Figure] = [*_shipped(), *_table51(), *_study()]


# ------------------------------------------------------------------ helpers
def store_facts() -> dict[str, Any]:
    """What the README says of the shipped store, read from it (``--store-facts``)."""
    import numpy as np

    from rankzc.store import Benchmark, default_benchmark_path

    path = default_benchmark_path()
    with Benchmark.open(path, readonly=True) as bench:
        labels = bench.labels()
        runs = bench.runs()
        depth = labels["depth"].value_counts()
        y = labels["val_acc"].to_numpy(dtype=float)
        n_runs = int(len(runs))
        repeated = int((runs.groupby("arch_id").size() > 1).sum())
    return {
        "size_mb": path.stat().st_size / 1e6,
        "n_architectures": int(len(labels)),
        **{f"depth_{d}": int(depth.get(d, 0)) for d in (4, 6, 8, 10)},
        "n_runs": n_runs,
        "n_repeated": repeated,
        "label_min": float(np.min(y)),
        "label_max": float(np.max(y)),
        "label_mean": float(np.mean(y)),
        "label_sd_points": float(np.std(y, ddof=1) * 100),
    }


def flat(text: str, offsets: list[int] | None = None) -> tuple[str, list[int]]:
    """README text with every run of whitespace as one space, and for each character of
    it the README line it came from (``offsets``, when given, gets its index in ``text``)."""
    out, lines, line = [], [], 1
    space = False
    for i, ch in enumerate(text):
        if ch.isspace():
            if not space:
                out.append(" ")
                lines.append(line)
                if offsets is not None:
                    offsets.append(i)
            space = True
        else:
            out.append(ch)
            lines.append(line)
            if offsets is not None:
                offsets.append(i)
            space = False
        if ch == "\n":
            line += 1
    return "".join(out), lines


def like(quoted: str, value: float) -> str:
    """``value`` written as ``quoted`` is: its decimals, its sign, its exponent form."""
    q = quoted.lstrip("+-")
    if "e" in q:
        mant = q.split("e")[0]
        decimals = len(mant.split(".")[1]) if "." in mant else 0
        text = f"{value:.{decimals}e}"
        text = re.sub(r"e([+-])0*(\d)", lambda m: "e" + ("-" if m[1] == "-" else "") + m[2], text)
    else:
        decimals = len(q.split(".")[1]) if "." in q else 0
        text = f"{value:.{decimals}f}"
    if quoted.startswith("+") and not text.startswith("-"):
        text = "+" + text
    return text


def default_tolerance(quoted: str) -> float:
    """Half a unit of the last digit quoted: 0.7827 -> 5e-05, 8e-6 -> 5e-07, 12 -> 0.5."""
    q = quoted.lstrip("+-")
    if "e" in q:
        mant, exp = q.split("e")
        decimals = len(mant.split(".")[1]) if "." in mant else 0
        return 0.5 * 10 ** (int(exp) - decimals)
    decimals = len(q.split(".")[1]) if "." in q else 0
    return 0.5 * 10**-decimals


def readme_commands(text: str) -> list[str]:
    """Every command line of the ``bash`` blocks (continuation lines joined) and every
    ``python`` block (as one ``python -c`` command), in README order."""
    cmds = []
    for lang, block in re.findall(r"```(bash|python)\n(.*?)```", text, flags=re.S):
        if lang == "python":
            cmds.append("python -c " + shlex.quote(block))
            continue
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            line = re.sub(r"\s+#\s.*$", "", line)  # trailing comment
            line = re.sub(r"\s*\[--[^\]]*\]", "", line)  # optional flags: [--format json]
            cmds.append(" ".join(line.split()))
    return cmds


LONG_COMMANDS = (
    (re.compile(r"^python -m pytest"), "the whole test suite"),
    (re.compile(r"--archs 200\b|--sample 200\b"), "rebuilds the shipped benchmark (about 30 min)"),
    (re.compile(r"benchmarks/build_default.py"), "finalises the shipped benchmark"),
    (re.compile(r"--data ntu:/"), "needs NTU RGB+D on this machine"),
)


class Workspace:
    """One fresh directory: ``../shared`` linked, ``rankzc`` = this checkout."""

    def __init__(self, keep: Path | None, shared: Path):
        self.base = Path(tempfile.mkdtemp(prefix="rankzc-readme-")) if keep is None else keep
        self.keep = keep is not None
        self.work = self.base / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        self.shared = shared.exists()
        if self.shared and not (self.base / "shared").exists():
            (self.base / "shared").symlink_to(shared.resolve())
        bindir = self.base / "bin"
        bindir.mkdir(exist_ok=True)
        shim = bindir / "rankzc"
        shim.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" -c "from rankzc.cli import main; main()" "$@"\n'
        )
        shim.chmod(0o755)
        self.env = dict(os.environ)
        self.env["PATH"] = f"{bindir}{os.pathsep}{self.env.get('PATH', '')}"
        self.env["PYTHONPATH"] = str(ROOT) + os.pathsep + self.env.get("PYTHONPATH", "")
        self.env.setdefault("OMP_NUM_THREADS", "1")
        if not (self.work / "benchmarks").exists():  # `python benchmarks/x.py`: the checkout
            (self.work / "benchmarks").symlink_to(ROOT / "benchmarks")

    def run(self, cmd: str, log: str | None = None) -> subprocess.CompletedProcess:
        res = subprocess.run(
            ["bash", "-c", cmd], cwd=self.work, env=self.env, capture_output=True, text=True
        )
        if self.keep and log:  # every command's output, for a look afterwards
            logs = self.base / "logs"
            logs.mkdir(exist_ok=True)
            (logs / f"{log}.txt").write_text(f"$ {cmd}\n{res.stdout}\n--- stderr\n{res.stderr}")
        return res

    def close(self) -> None:
        if not self.keep:
            shutil.rmtree(self.base, ignore_errors=True)


# ------------------------------------------------------------------ the two runs
def check_figures(
    ws: Workspace, include_long: bool, fix: bool = False, reuse: bool = False
) -> tuple[int, int, int]:
    raw = README.read_text()
    offsets: list[int] = []
    text, lines = flat(raw, offsets)
    outputs: dict[str, Any] = {}
    fixes: list[tuple[int, int, str]] = []  # (start, end, new text) in README.md
    failed = passed = skipped = 0
    by_source: dict[str, list[Figure]] = {}
    for f in FIGURES:
        by_source.setdefault(f.source, []).append(f)
    for key, figures in by_source.items():
        src = SOURCES[key]
        why = None
        if src.needs and not ws.shared:
            why = "needs ../shared"
        elif src.long and not include_long:
            why = "long: --include-long"
        if why is not None:
            skipped += len(figures)
            print(f"SKIP {len(figures):3d} figures  {src.command[:70]}  ({why})", flush=True)
            continue
        t0 = time.perf_counter()
        try:
            outputs[key] = _output(ws, key, src, reuse)
        except RuntimeError as err:
            failed += len(figures)
            print(f"FAIL {len(figures):3d} figures  {src.command}\n     {err}", flush=True)
            continue
        secs = time.perf_counter() - t0
        bad = 0
        for f in figures:
            ok, message = _check(f, text, lines, outputs[key], src)
            if not ok:
                bad += 1
                print("     " + message, flush=True)
                m = re.search(f.pattern, text)
                if fix and m is not None and f.bound == "=" and src.file is None:
                    try:
                        new = like(m.group(1), float(f.value(outputs[key])))
                    except (KeyError, IndexError, TypeError, ValueError):
                        continue
                    start = offsets[m.start(1)]
                    fixes.append((start, start + len(m.group(1)), new))
        failed += bad
        passed += len(figures) - bad
        state = "PASS" if not bad else "FAIL"
        print(f"{state} {len(figures):3d} figures  {secs:6.1f} s  {src.command[:80]}", flush=True)
    if fixes:  # rewrite the quoted numbers only, from the end so offsets stay valid
        for start, end, new in sorted(set(fixes), reverse=True):
            raw = raw[:start] + new + raw[end:]
        README.write_text(raw)
        print(f"--fix: {len(set(fixes))} figures rewritten in README.md; read the sentences "
              "around them again (git diff README.md)")  # fmt: skip
    return passed, failed, skipped


def _output(ws: Workspace, key: str, src: Source, reuse: bool = False) -> Any:
    if src.file is not None:
        return json.loads((ROOT / src.file).read_text())
    cache = ws.base / "outputs" / f"{key}.json"
    if reuse and cache.exists():
        return json.loads(cache.read_text())
    for store in src.needs:
        if not (ws.work / store).exists():
            res = ws.run(STORES[store], log=f"store-{store}")
            if res.returncode != 0:
                raise RuntimeError(f"{STORES[store]}: exit {res.returncode}: {res.stderr[-300:]}")
    res = ws.run(src.command, log=f"figures-{key}")
    if res.returncode != 0:
        raise RuntimeError(f"exit {res.returncode}: {(res.stderr or res.stdout)[-300:]}")
    if ws.keep:
        cache.parent.mkdir(exist_ok=True)
        cache.write_text(res.stdout)
    return json.loads(res.stdout)


def _check(f: Figure, text: str, lines: list[int], out: Any, src: Source) -> tuple[bool, str]:
    m = re.search(f.pattern, text)
    if m is None or m.group(1) is None:
        return False, (
            f"README.md: no longer quotes /{f.pattern}/ (from `{src.command}`); update "
            "benchmarks/readme_commands.py with the README"
        )
    quoted = m.group(1)
    line = lines[m.start(1)]
    try:
        value = float(f.value(out))
    except (KeyError, IndexError, TypeError, ValueError) as err:
        return False, f"README.md:{line}: {quoted}: not in the output of `{src.command}` ({err!r})"
    try:
        q = float(quoted)
    except ValueError:
        return False, f"README.md:{line}: {quoted!r} is not a number (pattern /{f.pattern}/)"
    tol = default_tolerance(quoted) if f.tol is None else f.tol
    if f.bound == "<":
        ok = math.isfinite(value) and abs(value) < q
        want = f"|value| < {quoted}"
    elif f.bound == "<=":
        ok = math.isfinite(value) and abs(value) <= q + tol
        want = f"|value| <= {quoted} (tolerance {tol:.1g})"
    elif f.bound == ">=":
        ok = math.isfinite(value) and value >= q - tol
        want = f"value >= {quoted} (tolerance {tol:.1g})"
    else:
        ok = math.isfinite(value) and abs(value - q) <= tol * (1 + 1e-9) + 1e-12
        want = f"{quoted} (tolerance {tol:.1g})"
    if ok:
        return True, ""
    shown = src.file if src.file else src.command
    return False, (
        f"README.md:{line}: quoted {want}, regenerated {value:.6g}: `{shown}`"
        + (f" (the JSON written by `{src.command}`)" if src.file else "")
    )


def run_commands(ws: Workspace, include_long: bool) -> int:
    failed = 0
    cmds = readme_commands(README.read_text())
    for i, cmd in enumerate(cmds, 1):
        if cmd.startswith("pip install"):  # run what follows the installation
            rest = [part.strip() for part in cmd.split("&&") if "pip install" not in part]
            print(f"[{i:2d}] SKIP            pip install ...  (installs packages)", flush=True)
            if not rest:
                continue
            cmd = " && ".join(rest)
        reason = next((why for pat, why in LONG_COMMANDS if pat.search(cmd)), None)
        if reason and not include_long:
            print(f"[{i:2d}] SKIP            {cmd[:80]}  ({reason})", flush=True)
            continue
        if "../shared" in cmd and not ws.shared:
            print(f"[{i:2d}] SKIP            {cmd[:80]}  (needs ../shared)", flush=True)
            continue
        t0 = time.perf_counter()
        res = ws.run(cmd, log=f"{i:02d}")
        secs = time.perf_counter() - t0
        ok = res.returncode == 0
        failed += not ok
        shown = cmd if len(cmd) < 100 else cmd[:97] + "..."
        print(f"[{i:2d}] {'PASS' if ok else 'FAIL'} {secs:7.1f} s  {shown}", flush=True)
        if not ok:
            tail = (res.stderr or res.stdout).strip().splitlines()[-5:]
            print("       " + "\n       ".join(tail), flush=True)
    return failed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--include-long", action="store_true", help="also the long figures and commands"
    )
    ap.add_argument(
        "--commands", action="store_true", help="also run every README command in order"
    )
    ap.add_argument("--list", action="store_true", help="list every figure check and exit")
    ap.add_argument(
        "--fix",
        action="store_true",
        help="rewrite every quoted figure that does not match with the regenerated value "
        "(same decimals and sign); read the README's sentences around them again",
    )
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="with --keep DIR: read a command's output kept in DIR/outputs instead of running it",
    )
    ap.add_argument(
        "--keep", type=Path, default=None, help="work in DIR, keep it and the logs in DIR/logs"
    )
    ap.add_argument(
        "--shared",
        type=Path,
        default=Path(os.environ.get("RANKZC_SHARED", ROOT.parent / "shared")),
        help="the shared data directory (linked as ../shared)",
    )
    ap.add_argument("--store-facts", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.store_facts:
        print(json.dumps(store_facts()))
        return
    if args.list:
        text, lines = flat(README.read_text())
        for f in FIGURES:
            m = re.search(f.pattern, text)
            where = f"README.md:{lines[m.start(1)]} {m.group(1)}" if m and m.group(1) else "MISSING"
            src = SOURCES[f.source]
            flags = ("shared " if src.needs else "") + ("long " if src.long else "")
            print(f"{where:24s} {flags:12s} {src.file or src.command}")
        print(f"{len(FIGURES)} figures from {len(SOURCES)} commands")
        return
    ws = Workspace(args.keep, args.shared)
    print(f"working directory: {ws.work}", flush=True)
    if not ws.shared:
        print(f"no {args.shared}: figures from the study's data are skipped", flush=True)
    total = time.perf_counter()
    try:
        passed, failed, skipped = check_figures(ws, args.include_long, args.fix, args.reuse)
        print(f"figures: {passed} match, {failed} do not, {skipped} skipped")
        bad_commands = run_commands(ws, args.include_long) if args.commands else 0
        if args.commands:
            print(f"commands: {bad_commands} failed")
    finally:
        ws.close()
    print(f"{time.perf_counter() - total:.0f} s in all")
    sys.exit(1 if failed or bad_commands else 0)


if __name__ == "__main__":
    main()
