"""Time and peak memory of ``rankzc evaluate`` on large synthetic benchmarks.

Writes a store of N architectures through the importers' own writer
(:func:`rankzc.importers.common.write_records`, as ``rankzc import`` does): an integer-tuple
space (8 positions, 5 operations), depths 4-10, the 14 study proxies (``params`` and
``flops`` included) and labels that are multiples of 1/10,000 driven by a few proxies and
noise. Then, each in a fresh process (peak memory = that process's max RSS):

* ``single``: ``rankzc evaluate`` (single proxies, within-depth table, label noise,
  bootstrap 1000);
* ``models``: ``rankzc evaluate --models all --bootstrap 0`` (the whole command);
* with ``--per-model``: ``evaluate_models`` for each ranker alone.

Usage::

    python benchmarks/evaluate_scale.py --n 100000 [--store /tmp/s.db] [--per-model]
        [--stages single,models] [--folds 5 --repeats 3]

Prints one line per stage: wall seconds, CPU seconds (user + system of that process),
peak RSS (MB). On a shared machine wall time includes waiting for the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

PROXIES = (
    "epe_nas", "fisher", "flops", "grad_norm", "grad_sign", "grasp", "jacov",
    "l2_norm", "nwot", "params", "plain", "snip", "synflow", "zen",
)  # fmt: skip


def build_store(path: Path, n: int, seed: int = 0) -> float:
    """Write ``n`` synthetic architectures to ``path``; return the seconds it took."""
    from rankzc.importers.common import ArchRecord, ImportReport, write_records
    from rankzc.store import Benchmark

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    codes = rng.choice(5**8, size=n, replace=False)
    digits = (codes[:, None] // 5 ** np.arange(8)) % 5
    depth = 4 + 2 * (digits[:, 0] % 4)
    quality = digits.sum(axis=1) / 32 + 0.3 * rng.normal(size=n)
    scores = rng.normal(size=(n, len(PROXIES)))
    scores[:, PROXIES.index("zen")] += 2 * quality
    scores[:, PROXIES.index("synflow")] = np.exp(10 + quality + rng.normal(size=n))
    scores[:, PROXIES.index("params")] = 1e5 * depth + rng.integers(0, 1000, size=n)
    scores[:, PROXIES.index("flops")] = 1e7 * depth + rng.integers(0, 10**5, size=n)
    acc = np.clip(0.6 + 0.1 * quality + 0.02 * rng.normal(size=n), 0.01, 0.99)
    acc = np.round(acc * 10_000) / 10_000
    records = [
        ArchRecord(
            arch_id=f"a{codes[i]:07d}",
            encoding=str(tuple(int(v) for v in digits[i])),
            depth=int(depth[i]),
            val_acc=float(acc[i]),
            train_seconds=None,
            extra={},
            proxies={-1: {p: (float(scores[i, k]), 0.01) for k, p in enumerate(PROXIES)}},
        )
        for i in range(n)
    ]
    with Benchmark.create(path, space="synthetic-tuple", dataset="synthetic", source="bench") as b:
        write_records(
            b,
            records,
            space="synthetic-tuple",
            run_config={"source": "evaluate_scale"},
            report=ImportReport(path=str(path), read=n),
        )
    return time.perf_counter() - start


CHILD = r"""
import json, resource, sys, time
start = time.perf_counter()
kind, store, arg = sys.argv[1], sys.argv[2], sys.argv[3]
if kind == "cli":
    from click.testing import CliRunner
    from rankzc.cli import main
    res = CliRunner().invoke(main, ["evaluate", "-b", store, *json.loads(arg)])
    ok, err = res.exit_code == 0, (res.output[-400:] if res.exit_code else "")
    extra = {}
    if ok and "--format" in arg:
        out = json.loads(res.stdout)
        extra = {m: (e.get("error") if e.get("failed") else round(e["spearman_mean"], 4))
                 for m, e in out.get("models", {}).items()}
else:
    from rankzc.ranking.evaluation import evaluate_models
    from rankzc.store import Benchmark
    opts = json.loads(arg)
    with Benchmark.open(store, readonly=True) as b:
        out = evaluate_models(b, [opts.pop("model")], **opts)
    e = next(iter(out["models"].values()))
    ok, err = not e.get("failed"), e.get("error", "")
    extra = {"spearman_mean": e.get("spearman_mean"), "fit_seconds_mean": e.get("fit_seconds_mean")}
ru = resource.getrusage(resource.RUSAGE_SELF)
peak, cpu = ru.ru_maxrss / 1024, ru.ru_utime + ru.ru_stime
print(json.dumps({"ok": ok, "seconds": time.perf_counter() - start, "peak_mb": peak, "cpu": cpu,
                  "error": err, **extra}))
"""


def child(kind: str, store: Path, arg) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    res = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(store), json.dumps(arg)],
        capture_output=True,
        text=True,
        env=env,
    )
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode or not lines:
        return {"ok": False, "error": (res.stderr or res.stdout)[-600:]}
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--store", type=Path, default=None)
    ap.add_argument("--stages", default="single,models")
    ap.add_argument("--per-model", action="store_true")
    ap.add_argument("--models", default="single,vote,wam,ranknet,lambdarank")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    store = args.store or Path(f"/tmp/rankzc_scale_{args.n}.db")
    if not store.exists():
        secs = build_store(store, args.n)
        print(f"store: {args.n} architectures written to {store} in {secs:.1f} s", flush=True)
    else:
        print(f"store: reusing {store}", flush=True)
    stages = args.stages.split(",")
    cv = ["--folds", str(args.folds), "--repeats", str(args.repeats)]
    if "single" in stages:
        r = child("cli", store, ["--bootstrap", "1000"])
        print(f"evaluate (single proxies, bootstrap 1000): {r.get('seconds', 0):.1f} s "
              f"(CPU {r.get('cpu', 0):.1f} s), "
              f"peak {r.get('peak_mb', 0):.0f} MB {'' if r['ok'] else 'FAILED ' + r['error']}",
              flush=True)  # fmt: skip
    if "models" in stages:
        r = child("cli", store, ["--models", "all", "--bootstrap", "0", *cv, "--format", "json"])
        shown = {k: v for k, v in r.items() if k not in ("ok", "seconds", "peak_mb", "error")}
        print(f"evaluate --models all --bootstrap 0: {r.get('seconds', 0):.1f} s "
              f"(CPU {r.get('cpu', 0):.1f} s), "
              f"peak {r.get('peak_mb', 0):.0f} MB {'' if r['ok'] else 'FAILED ' + r['error']} "
              f"spearman {shown}", flush=True)  # fmt: skip
    if args.per_model:
        for m in args.models.split(","):
            r = child("model", store, {"model": m, "folds": args.folds, "repeats": args.repeats})
            print(f"  {m}: {r.get('seconds', 0):.1f} s in all (CPU {r.get('cpu', 0):.1f} s) "
                  f"(fit {r.get('fit_seconds_mean') or 0:.2f} s per split), peak "
                  f"{r.get('peak_mb', 0):.0f} MB, spearman {r.get('spearman_mean')} "
                  f"{'' if r['ok'] else 'FAILED ' + str(r['error'])}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
