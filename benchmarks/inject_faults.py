"""Inject each deliberate fault into a copy of the repository and report which tests catch it.

A fault is one or more edits (``old`` -> ``new`` in a file, each ``old`` found exactly
once) of a copy of the working tree (``$RANKZC_FAULT_DIR``, default /tmp/rankzc_faults);
the tests that matter for it run on that copy, without ``../shared`` (``RANKZC_SHARED``
points nowhere) and under the default ``-m 'not slow'``, one thread. The repository
itself is never modified. The faults are those of issue 10 (metrics, statistics, vote
tie rules, proxy signs) and of issue 28 (baselines chosen on the test fold, label leaks
into search, regret and pool best, the data-pickle allow-list, per-proxy intervals)
and of issue 27 (online search's warm start, incumbent and within-depth order).

    OMP_NUM_THREADS=1 nice python benchmarks/inject_faults.py            # every fault
    python benchmarks/inject_faults.py --only pickle --only regret       # some faults
    python benchmarks/inject_faults.py --full                            # whole default suite
    python benchmarks/inject_faults.py --list
    python benchmarks/inject_faults.py tests/test_stats.py ...           # these tests, every fault

It prints one line per fault (the tests that failed on it) and a closing fault -> test
table; it exits 1 when a fault is caught by no test or its edit no longer applies.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1])


@dataclass(frozen=True)
class Fault:
    """A named fault: ``edits`` [(path, old, new)] and the ``tests`` that matter for it."""

    name: str
    edits: tuple[tuple[str, str, str], ...]
    tests: tuple[str, ...]


#: the faults of issue 10 (metrics, statistics, vote tie rules, proxy signs): (name, path, old, new)
SIMPLE = [
    (
        "kendall replaced by spearman",
        "rankzc/stats.py",
        "return float(_st.kendalltau(x, y).statistic) if _defined(x, y) else NAN",
        "return float(_st.spearmanr(x, y).statistic) if _defined(x, y) else NAN",
    ),
    (
        "within-depth replaced by overall",
        "rankzc/ranking/metrics.py",
        "stats.within_group_spearman(pred, y, depth)",
        '(stats.spearman(pred, y) if depth is not None else float("nan"))',
    ),
    (
        "top-10% uses 20%",
        "rankzc/ranking/metrics.py",
        "stats.top_k_precision(pred, y, 0.1)",
        "stats.top_k_precision(pred, y, 0.2)",
    ),
    (
        "bootstrap does not resample",
        "rankzc/stats.py",
        "\n        idx = rng.integers(0, n, size=(b, m))",  # the exact path (n <= max_rows)
        "\n        idx = np.tile(np.arange(m), (b, 1))",
    ),
    (
        "corrected t-test without the n_test/n_train term",
        "rankzc/stats.py",
        "(1.0 / J + float(n_test) / float(n_train))",
        "(1.0 / J)",
    ),
    (
        "vote search counts a draw as 'second better' (old rule)",
        "rankzc/ranking/vote.py",
        "(half + 0.5 * (gain @ np.sign(net)))",
        "(base + gain @ (net > 0))",
    ),
    (
        "vote predict counts a draw as a loss",
        "rankzc/ranking/vote.py",
        "losses = len(ref) - wins if study else np.sum(net < 0, axis=1)",
        "losses = len(ref) - wins",
    ),
    (
        "vote_accuracy scores a draw as 'second better'",
        "rankzc/ranking/vote.py",
        "return np.where(net == 0, 0.5, (first == label) & (net != 0))",
        "return (first == label).astype(float)",
    ),
    ("zen sign flipped", "rankzc/proxies/zen.py", "    return score\n", "    return -score\n"),
    ("zen abs added", "rankzc/proxies/zen.py", "    return score\n", "    return abs(score)\n"),
    (
        "grad_sign sign flipped",
        "rankzc/proxies/grad_sign.py",
        "return total / count",
        "return -total / count",
    ),
    (
        "grad_sign abs dropped",
        "rankzc/proxies/grad_sign.py",
        "float(a.abs().sum())",
        "float(a.sum())",
    ),
    ("synflow abs dropped", "rankzc/proxies/synflow.py", "p.abs_()", "pass"),
    (
        "l2_norm sign flipped",
        "rankzc/proxies/l2_norm.py",
        "return float(sum(",
        "return -float(sum(",
    ),
    (
        "nwot sign flipped",
        "rankzc/proxies/nwot.py",
        "    return float(logabs)",
        "    return -float(logabs)",
    ),
    (
        "epe_nas abs dropped",
        "rankzc/proxies/epe_nas.py",
        "return float(np.abs(values).sum())",
        "return float(values.sum())",
    ),
    (
        "jacov sign flipped",
        "rankzc/proxies/jacov.py",
        "return float(-(torch.log",
        "return float((torch.log",
    ),
    (
        "snip abs dropped",
        "rankzc/proxies/snip.py",
        "g.double()).abs().sum())",
        "g.double()).sum())",
    ),
    (
        "pairwise accuracy counts pred ties as wrong",
        "rankzc/stats.py",
        "return 0.5 * (1.0 + s / total)",
        "return 0.5 * (1.0 + s / total) - 0.5 * (tp / total)",
    ),
]

#: the tests that matter for the issue-10 faults
SIMPLE_TESTS = (
    "tests/test_stats.py",
    "tests/test_proxy_signs.py",
    "tests/test_ranking_vote.py::test_search_and_predict_use_one_tie_rule",
    "tests/test_ranking_vote.py::test_search_matches_brute_force",
    "tests/test_ranking_vote.py::test_even_subset_tie_rule",
    "tests/test_ranking_eval.py::test_metrics_known_values",
)

# ---------------------------------------------------------------- issue 28
#: the fit line of the fold engine (rankzc.ranking.evaluation.run_folds)
_FIT = "r.name, r.params, r.X.iloc[tr], y[tr], r.X.iloc[te]"


def _fit_on(rows: str) -> str:
    return f"r.name, r.params, r.X.iloc[{rows}], y[{rows}], r.X.iloc[te]"


_EVAL = "rankzc/ranking/evaluation.py"
_EVAL_TESTS = (
    "tests/test_fold_engine.py",
    "tests/test_ranking_eval.py",
    "tests/test_evaluate_verdicts.py",
    "tests/test_few_labels.py",
)
#: simulate hands the strategies the labelled pool (the first half of a search leak)
_HAND_LABELS = (
    "rankzc/search/simulate.py",
    "public = pool.without_labels()  # what strategies see; the oracle reads `table`",
    "public = pool  # FAULT: the strategies see the labels",
)
_SEARCH_TESTS = ("tests/test_search_guards.py", "tests/test_search.py")
_PICKLE_TESTS = ("tests/test_pickle_opcodes.py", "tests/test_safe_pickle.py")
_ALLOW = "rankzc/datasets/safe_pickle.py", '("collections", "OrderedDict"): _ordered_dict,'

ISSUE28 = [
    Fault(
        "best-proxy baseline chosen on the test fold",
        ((_EVAL, _FIT, _fit_on('te if r.name == "best proxy" else tr')),),
        _EVAL_TESTS,
    ),
    Fault(
        "depth/params/flops signs taken from the test fold",
        ((_EVAL, _FIT, _fit_on("te if r.name in BASELINES else tr")),),
        _EVAL_TESTS,
    ),
    Fault(
        "lambdarank fitted on train+test rows",
        ((_EVAL, _FIT, _fit_on('np.r_[tr, te] if r.name == "lambdarank" else tr')),),
        _EVAL_TESTS,
    ),
    Fault(
        "strategies handed the labelled pool (no use of it)",
        (_HAND_LABELS,),
        _SEARCH_TESTS,
    ),
    Fault(
        "online search fitting on every pool label",
        (
            _HAND_LABELS,
            (
                "rankzc/search/strategies.py",
                "est.fit(X.iloc[pos[rows]], y[rows])",
                'est.fit(X, pool.table["val_acc"].to_numpy())',
            ),
        ),
        _SEARCH_TESTS,
    ),
    Fault(
        "a label replacing the zero-cost-order feature",
        (
            _HAND_LABELS,
            (
                "rankzc/search/strategies.py",
                'X["zero_cost_order"] = self.zero_cost(pool)',
                'X["zero_cost_order"] = pool.table["val_acc"]',
            ),
        ),
        _SEARCH_TESTS,
    ),
    Fault(
        "regret against the best trained instead of the pool's best (Trace.regret)",
        (
            (
                "rankzc/search/loop.py",
                "return [self.pool_best - b for b in self.best_so_far()]",
                "return [max(self.best_so_far()) - b for b in self.best_so_far()]",
            ),
        ),
        _SEARCH_TESTS,
    ),
    Fault(
        "regret against the best trained instead of the pool's best (simulate)",
        (
            (
                "rankzc/search/simulate.py",
                "trace.pool_best, trace.pool_size, trace.feasible = best, len(sp), len(feasible)",
                "trace.pool_best, trace.pool_size, trace.feasible = "
                "max(st.label for st in trace.steps), len(sp), len(feasible)",
            ),
        ),
        _SEARCH_TESTS,
    ),
    Fault(
        "the pool best ignoring --max-params",
        (
            (
                "rankzc/search/simulate.py",
                'best = float(sp.table.loc[feasible, "val_acc"].max())',
                'best = float(sp.table["val_acc"].max())',
            ),
        ),
        _SEARCH_TESTS,
    ),
    Fault(
        "safe_pickle allowing os.system",
        ((*_ALLOW, _ALLOW[1] + '\n        ("os", "system"): __import__("os").system,'),),
        _PICKLE_TESTS,
    ),
    Fault(
        "safe_pickle allowing builtins.getattr",
        ((*_ALLOW, _ALLOW[1] + '\n        ("builtins", "getattr"): getattr,'),),
        _PICKLE_TESTS,
    ),
    Fault(
        "per-proxy intervals collapsed to a point",
        (
            (
                "rankzc/analysis.py",
                'res["ci95"] = bootstrap_spearman_ci(features[name], y, n_boot=n_boot, seed=seed)',
                'res["ci95"] = [res["spearman"], res["spearman"]]',
            ),
        ),
        ("tests/test_proxy_intervals.py", "tests/test_cli_foundation.py"),
    ),
]

#: the faults of issue 27 (online search's start and its choice of model)
_STRAT = "rankzc/search/strategies.py"
ISSUE27 = [
    Fault(
        "online's warm start is the consensus, not the free size order",
        (
            (
                _STRAT,
                "    return pd.Series(-_order_rank(ids, [key], seed), index=ids)",
                "    return label_free_scores(pool).reindex(ids)",
            ),
        ),
        _SEARCH_TESTS,
    ),
    Fault(
        "online: the incumbent pays the margin like any challenger",
        (
            (
                _STRAT,
                "(0.0 if name == incumbent else self.margin)",
                '(0.0 if name == "warm start" else self.margin)',
            ),
        ),
        _SEARCH_TESTS,
    ),
    Fault(
        "online: with one depth trained, the chosen model orders across depths",
        (
            (
                _STRAT,
                "if col is not None and ctx.pool.table.loc[list(labelled), col].nunique() < 2:",
                "if False:",
            ),
        ),
        _SEARCH_TESTS,
    ),
]

FAULTS = [Fault(name, ((path, old, new),), SIMPLE_TESTS) for name, path, old, new in SIMPLE]
FAULTS += ISSUE28 + ISSUE27


def _copy(dst: str) -> None:
    shutil.rmtree(dst, ignore_errors=True)
    skip = shutil.ignore_patterns(
        ".git", "__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache", "out", "*.egg-info"
    )
    shutil.copytree(SRC, dst, ignore=skip)


def inject(fault: Fault, dst: str, dry: bool = False) -> str | None:
    """Apply ``fault`` to the copy ``dst`` (``dry``: only check); the reason when an edit
    does not apply."""
    for path, old, new in fault.edits:
        p = os.path.join(dst, path)
        text = open(p).read()
        if text.count(old) != 1:
            return f"{path}: pattern found {text.count(old)} times: {old[:60]!r}"
        if not dry:
            open(p, "w").write(text.replace(old, new))
    return None


def run_tests(dst: str, tests: list[str]) -> tuple[list[str], str]:
    """The failing test ids and pytest's last line, on the copy ``dst``."""
    env = dict(os.environ, PYTHONPATH=dst, RANKZC_SHARED=os.path.join(dst, "no-shared"))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = "1"
    r = subprocess.run(
        [sys.executable, "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider",
         "-p", "no:randomly"],
        cwd=dst, env=env, capture_output=True, text=True,
    )  # fmt: skip
    found = re.findall(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", r.stdout, flags=re.M)
    failed = sorted(set(found))
    last = (r.stdout.strip().splitlines() or [""])[-1]
    return failed, last


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tests", nargs="*", help="run these tests for every fault")
    ap.add_argument("--only", action="append", default=[], help="faults whose name has this")
    ap.add_argument("--full", action="store_true", help="the whole default suite per fault")
    ap.add_argument("--list", action="store_true", help="list the faults and their tests")
    ap.add_argument("--check", action="store_true", help="only check that every edit applies")
    args = ap.parse_args(argv)
    faults = [f for f in FAULTS if not args.only or any(o in f.name for o in args.only)]
    if args.list:
        for f in faults:
            print(f"{f.name}: {', '.join(f.tests)}")
        return 0
    if args.check:
        stale = [(f.name, why) for f in faults if (why := inject(f, SRC, dry=True))]
        for name, why in stale:
            print(f"{name}: PATTERN NOT FOUND ({why})")
        print(f"{len(faults) - len(stale)} of {len(faults)} faults apply")
        return 1 if stale else 0
    dst = os.environ.get("RANKZC_FAULT_DIR", "/tmp/rankzc_faults")
    table, bad = [], 0
    for fault in faults:
        _copy(dst)
        why = inject(fault, dst)
        if why is not None:
            print(f"{fault.name}: PATTERN NOT FOUND ({why})", flush=True)
            table.append((fault.name, "PATTERN NOT FOUND"))
            bad += 1
            continue
        tests = list(args.tests) or ([] if args.full else list(fault.tests))
        failed, last = run_tests(dst, tests)
        print(f"{fault.name}: {len(failed)} failed: {', '.join(failed)} ({last})", flush=True)
        table.append((fault.name, ", ".join(failed) or "NOT CAUGHT"))
        bad += not failed
    shutil.rmtree(dst, ignore_errors=True)
    width = max(len(name) for name, _ in table) if table else 0
    print(f"\n{'fault'.ljust(width)} | caught by")
    for name, caught in table:
        print(f"{name.ljust(width)} | {caught}")
    print(f"\n{len(table) - bad} of {len(table)} faults caught")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
