"""Inject each deliberate fault into a copy of the repository and report which tests fail.

Every fault of issue 10 (and a few more) is a one-line edit of a copy
(``$RANKZC_FAULT_DIR``, default
/tmp/rankzc_faults); the listed tests run on each copy. A fault no test catches prints
"0 failed". The repository itself is never modified.

    OMP_NUM_THREADS=1 python benchmarks/inject_faults.py [TEST ...]
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1])
FAULTS = [
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
        "idx = rng.integers(0, n, size=(b, m))",
        "idx = np.tile(np.arange(m), (b, 1))",
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
    ("synflow abs dropped", "rankzc/proxies/synflow.py", "tensor.abs_()", "pass"),
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
TESTS = sys.argv[1:] or [  # fmt: skip
    "tests/test_stats.py",
    "tests/test_proxy_signs.py",
    "tests/test_ranking_vote.py::test_search_and_predict_use_one_tie_rule",
    "tests/test_ranking_vote.py::test_search_matches_brute_force",
    "tests/test_ranking_vote.py::test_even_subset_tie_rule",
    "tests/test_ranking_eval.py::test_metrics_known_values",
]
dst = os.environ.get("RANKZC_FAULT_DIR", "/tmp/rankzc_faults")
for name, path, old, new in FAULTS:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(SRC, dst, ignore=shutil.ignore_patterns(".git", "__pycache__", ".pytest_cache"))
    p = os.path.join(dst, path)
    s = open(p).read()
    if old not in s:
        print(f"{name}: PATTERN NOT FOUND")
        continue
    open(p, "w").write(s.replace(old, new))
    env = dict(os.environ, PYTHONPATH=dst, OMP_NUM_THREADS="1")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *TESTS,
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
        ],
        cwd=dst,
        env=env,
        capture_output=True,
        text=True,
    )
    failed = sorted(set(re.findall(r"FAILED (\S+)", r.stdout)))
    print(f"{name}: {len(failed)} failed: {', '.join(f.split(' ')[0] for f in failed)}", flush=True)
