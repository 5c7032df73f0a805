"""Start-up cost of the ``rankzc`` command line against a bare Python interpreter.

Runs each command ``--repeats`` times in a fresh process and prints the fastest and the
median wall time, the peak resident memory of the process, and whether torch /
torch_geometric were imported. The CLI runs as ``python -c "from rankzc.cli import main;
main()" ARGS``: ``python -c`` puts the current directory first on ``sys.path``, so the
``rankzc`` package of the directory it runs in is measured (run it from the repository root;
to measure another checkout, run this script from that checkout's root).

Example::

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/startup.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CLI = "import sys; from rankzc.cli import main; main()"
# after the command: report which heavy modules it imported (stderr, one JSON line)
# and its own peak RSS (VmHWM; wait4's ru_maxrss would also count the forking parent)
PROBE = (
    "import atexit, json, sys\n"
    "def _report():\n"
    "    hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')]\n"
    "    print('MODULES ' + json.dumps({m: m in sys.modules for m in ('torch', "
    "'torch_geometric', 'lightgbm', 'sklearn')}), file=sys.stderr)\n"
    "    print('HWM_KB ' + (hwm[0] if hwm else '0'), file=sys.stderr)\n"
    "atexit.register(_report)"
)


def _run(code: str, args: list[str]) -> tuple[float, float, dict]:
    """Wall seconds, peak RSS (MB) and imported heavy modules of one fresh process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", f"{PROBE}\n{code}", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read()
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{code} {' '.join(args)} failed ({proc.returncode}):\n{err}")
    mods, rss_kb = {}, usage.ru_maxrss
    for line in err.splitlines():
        if line.startswith("MODULES "):
            mods = json.loads(line[8:])
        elif line.startswith("HWM_KB ") and int(line[7:]) > 0:
            rss_kb = int(line[7:])
    return wall, rss_kb / 1024, mods


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--no-evaluate", action="store_true", help="Skip 'rankzc evaluate' on the shipped store."
    )
    args = ap.parse_args()
    cases = [
        ("python -c pass", "pass", []),
        ("import rankzc.cli", "import rankzc.cli", []),
        ("rankzc --version", CLI, ["--version"]),
        ("rankzc --help", CLI, ["--help"]),
    ]
    if not args.no_evaluate:
        cases.append(("rankzc evaluate (shipped store)", CLI, ["evaluate"]))
    rows = []
    for label, code, cli_args in cases:
        walls, rss, mods = [], [], {}
        for _ in range(args.repeats):
            w, r, mods = _run(code, cli_args)
            walls.append(w)
            rss.append(r)
        rows.append(
            {
                "command": label,
                "min_s": round(min(walls), 3),
                "median_s": round(statistics.median(walls), 3),
                "peak_rss_mb": round(max(rss), 1),
                "imports": sorted(m for m, on in mods.items() if on),
            }
        )
        print(
            f"{label:<34} min {min(walls):7.3f} s  median {statistics.median(walls):7.3f} s  "
            f"peak RSS {max(rss):7.1f} MB  imports: {', '.join(rows[-1]['imports']) or '-'}",
            flush=True,
        )
    base = rows[0]["min_s"]
    for r in rows[1:]:
        r["over_python_s"] = round(r["min_s"] - base, 3)
    print(json.dumps({"python": sys.version.split()[0], "repeats": args.repeats, "rows": rows}))


if __name__ == "__main__":
    main()
