"""Thread policy: the default against OMP_NUM_THREADS=1 and against 2 threads.

Runs the same compute-heavy commands (each a fresh process, wall seconds including
start-up) under three settings:

* ``default``: no thread variable set; rankzc's policy (``rankzc/threads.py``) applies;
* ``OMP_NUM_THREADS=1``: the user's variable, honoured by the policy;
* ``--threads 2``: two threads per process (PyTorch's own default on a 2-core machine).

Commands: ``features --sample 1`` (cpu preset, 14 proxies), ``score`` of 2 sampled
architectures with a LambdaRank ranker fitted on the shipped benchmark, and
``evaluate --models all`` on the shipped benchmark.

    nice -n 10 python benchmarks/threads.py [--repeats 1]

Settings are interleaved per command (each round runs every setting once) so that a
change in machine load hits them alike.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
SETTINGS = {
    "default": ({}, []),
    "OMP_NUM_THREADS=1": ({"OMP_NUM_THREADS": "1"}, []),
    "--threads 2": ({}, ["--threads", "2"]),
}


def rankzc(args: list[str], env_extra: dict[str, str], cwd: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update(env_extra)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-c", "from rankzc.cli import main; main()", *args]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"rankzc {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1, help="rounds per command (fastest kept)")
    ap.add_argument(
        "--only", default=None, help="comma-separated subset of: features,score,evaluate"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"cores: {os.cpu_count()}; load average: {os.getloadavg()[0]:.1f}", flush=True)
        rankzc(["fit", "--model", "lambdarank", "--out", "r.rzc"], {}, work)
        commands = {
            "features": ["features", "--sample", "1", "--out", "f.csv", "--quiet"],
            "score": ["score", "--ranker", "r.rzc", "--sample", "2", "--quiet"],
            "evaluate": ["evaluate", "--models", "all", "--quiet"],
        }
        if args.only:
            commands = {k: v for k, v in commands.items() if k in args.only.split(",")}
        results: dict[str, dict[str, float]] = {}
        for name, cmd in commands.items():
            results[name] = {}
            for _ in range(args.repeats):
                for label, (env, extra) in SETTINGS.items():
                    secs = rankzc(cmd + extra, env, work)
                    best = results[name].get(label)
                    results[name][label] = secs if best is None else min(best, secs)
                    print(f"  rankzc {' '.join(cmd + extra)} [{label}]: {secs:.1f} s", flush=True)
        print()
        header = f"{'command':<10}" + "".join(f"{label:>20}" for label in SETTINGS)
        print(header)
        for name, row in results.items():
            print(f"{name:<10}" + "".join(f"{row[label]:>18.1f} s" for label in SETTINGS))
        print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
