"""Candidates scored per second by the pool scorer of ``rankzc search`` and ``rankzc features``.

Scores one sampled pool (``--n`` architectures of ``--depths``, seed ``--seed``) with the
proxy settings a live search records (``TrainConfig.for_preset(--preset)``: its
synthetic data, minibatch of 20, seed 0; all 14 proxies unless ``--proxies``) through
:func:`rankzc.search.pool.score_pool`, once per worker count of ``--workers`` (default
1 and 2; 1 = in this process, N > 1 = this process and N - 1 spawned worker
processes, each generating the minibatch once), one thread per process. Each figure is wall-clock
seconds from the call to the last result, worker start-up included (``cpu_seconds``:
the CPU time of this process and its workers, what the run costs on a busy machine).
Checks that every
run gives the same scores as the first (``identical``). Prints a table, then one JSON
line.

Measure on a quiet machine (the ratio is what two cores give when nothing else runs)::

    python benchmarks/pool_scoring.py            # about 2 minutes on 2 quiet cores
    python benchmarks/pool_scoring.py --n 8      # a quick check
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import time
from pathlib import Path


def _values(results: dict) -> dict:
    """``{arch_id: {proxy: score}}`` (NaN-safe: None for missing)."""
    out = {}
    for arch_id, res in results.items():
        out[arch_id] = {
            n: (None if r[0] is None or (isinstance(r[0], float) and math.isnan(r[0])) else r[0])
            for n, r in res.items()
        }
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=48, help="candidates in the pool")
    ap.add_argument("--depths", default="4,6,8,10")
    ap.add_argument("--seed", type=int, default=11, help="pool seed")
    ap.add_argument("--preset", default="tiny", choices=["tiny", "cpu", "ntu60"])
    ap.add_argument("--proxies", default="", help="comma-separated (default: all 14)")
    ap.add_argument("--workers", default="1,2", help="worker counts to time")
    ap.add_argument("--json", default=None, help="also write the JSON to this file")
    args = ap.parse_args(argv)

    from rankzc import threads

    threads.apply(1)  # one thread per process, here and in the workers
    from rankzc.proxies.registry import proxy_names
    from rankzc.search.live import LiveSearch
    from rankzc.search.pool import score_pool
    from rankzc.space import sample_architectures
    from rankzc.training import TrainConfig

    names = [p for p in args.proxies.split(",") if p] or proxy_names()
    cfg = TrainConfig.for_preset(args.preset, proxies="none")
    settings = LiveSearch(Path("unused.db"), cfg, pool_size=args.n).settings(names)
    depths = tuple(int(d) for d in args.depths.split(",") if d)
    archs = sample_architectures(args.n, depths, seed=args.seed)
    counts = [int(w) for w in args.workers.split(",") if w]

    rows, first = [], None
    print(f"{args.n} candidates (depths {args.depths}), {args.preset}, {len(names)} proxies")
    print(f"{'workers':>8}{'seconds':>10}{'cand/s':>10}{'speed-up':>10}{'cpu s':>9}")
    for w in counts:
        c0, k0 = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        res = score_pool(archs, settings, workers=w)
        dt = time.perf_counter() - t0
        k1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = time.process_time() - c0 + (k1.ru_utime + k1.ru_stime - k0.ru_utime - k0.ru_stime)
        vals = _values(res)
        first = vals if first is None else first
        row = {
            "workers": w,
            "seconds": dt,
            "candidates_per_s": args.n / dt,
            "cpu_seconds": cpu,
            "identical": vals == first,
        }
        rows.append(row)
        speed = rows[0]["seconds"] / dt
        print(f"{w:>8}{dt:>10.1f}{args.n / dt:>10.3f}{speed:>9.2f}x{cpu:>9.1f}", flush=True)
    by = {r["workers"]: r for r in rows}
    result = {
        "benchmark": "pool_scoring",
        "machine": platform.processor() or platform.machine(),
        "n": args.n,
        "depths": list(depths),
        "preset": args.preset,
        "proxies": len(names),
        "rows": rows,
        "identical": all(r["identical"] for r in rows),
        "speedup_2_vs_1": (by[1]["seconds"] / by[2]["seconds"]) if 1 in by and 2 in by else None,
    }
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
