"""Acceptance fuzz of #24: hostile data pickles and ranker manifests, in subprocesses.

1,300 cases, fixed seed: 600 mutated pickles (label pairs and PYSKL annotation files:
byte flips, truncations, insertions, huge length fields) and 700 ranker files (one genuine
file of each of the seven models) whose ``manifest.json`` values are mutated (huge
numbers, wrong types, deep nesting, negative sizes, NaN/inf, long lists, removed and
added keys) with ``manifest.sha256`` recomputed, so that each gets past the integrity
check to the schema, budgets and model code.

The cases run in five worker processes (``tests/fuzz_worker.py``, batches of cases), so
that a native crash shows as the worker's exit status (-6 / -11, a shell's 134 / 139).
Asserted: every worker exits 0, every case ends (returns data or a one-line RankzcError,
nothing else) within 10 s (the worker's ``signal.alarm`` ends it otherwise, exit -14),
and each worker's own peak RSS (its ``VmHWM``, reported after every case) stays under 1 GB.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from benchdata import OPS_SETTINGS, ops_label, ops_scores, write_gcn_store

from rankzc.ranking.io import fit_ranker, save_ranker
from rankzc.space import sample_architectures
from rankzc.store import Benchmark

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("fuzz_worker.py")
SEED = 24
PICKLE_CASES = 600
RANKER_CASES_PER_MODEL = 100
RSS_LIMIT_KB = 1024 * 1024  # 1 GB
CASE_SECONDS = 10
SETTINGS = OPS_SETTINGS
MODELS = {
    "lambdarank": ({"n_estimators": 10, "num_leaves": 7}, "proxies"),
    "ranknet": ({"epochs": 2, "hidden": [8, 4]}, "proxies"),
    "wam": ({}, "proxies"),
    "vote": ({}, "proxies"),
    "single": ({}, "proxies"),
    "rankagg": ({}, "proxies"),
    "gnn": ({"epochs": 2, "small_epochs": 2, "min_epochs": 1, "hidden": 8, "layers": 2}, "all"),
    "stratified": ({"n_estimators": 10}, "all"),
}


# ------------------------------------------------------------------ genuine files
def genuine_pickles() -> list[tuple[str, bytes]]:
    names = ["S001C001P001R001A001", "S001C002P002R001A002"]
    out = [("label", pickle.dumps((names, [0, 1]), protocol=p)) for p in (0, 2, 4)]
    kp = np.arange(1 * 2 * 25 * 3, dtype=np.float32).reshape(1, 2, 25, 3)
    pyskl = {
        "split": {"xsub_train": [names[0]]},
        "annotations": [
            {"frame_dir": names[0], "label": np.int64(2), "keypoint": kp, "total_frames": 2}
        ],
    }
    out += [("pyskl", pickle.dumps(pyskl, protocol=p)) for p in (2, 4, 5)]
    return out


def genuine_rankers(tmp: Path) -> tuple[dict[str, Path], Path]:
    store = write_gcn_store(
        tmp / "b.db",
        sample_architectures(30, seed=5),
        ops_label,
        ops_scores,
        settings=SETTINGS,
        seed=1,
    )
    paths = {}
    with Benchmark.open(store) as b:
        for name, (params, features) in MODELS.items():
            fitted = fit_ranker(b, name, params=params, features=features)
            paths[name] = save_ranker(fitted, tmp / f"{name}.rzc")
        table = b.features().join(b.architectures()[["encoding", "depth"]]).head(5)
    table.to_csv(tmp / "table.csv")
    return paths, tmp / "table.csv"


# ------------------------------------------------------------------------ mutators
def mutate_pickle(data: bytes, rng: np.random.Generator) -> bytes:
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(0, 4))
        at = int(rng.integers(0, len(buf)))
        if kind == 0:
            buf[at] = int(rng.integers(0, 256))
        elif kind == 1:
            del buf[at:]
            if not buf:
                buf = bytearray(b".")
        elif kind == 2:
            buf[at:at] = bytes(rng.integers(0, 256, size=int(rng.integers(1, 9))).tolist())
        else:  # a length field made huge
            buf[at : at + 4] = b"\xff\xff\xff\x7f"
    return bytes(buf)


#: JSON text put in place of a value as is (what json.dumps cannot write)
RAW = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e400",
    "1" * 4000,
    "-" + "9" * 4000,
    "[" * 100_000 + "]" * 100_000,
    '{"a":' * 5_000 + "1" + "}" * 5_000,
]
HUGE = [10**8, 10**12, 2**31, 2**63, 2**64, 10**30, 10**300, 1e308, 1.7976931348623157e308]
NEGATIVE = [-1, -2, -(10**9), -(2**63), -0.5, -1e308]
WRONG = ["x", "", [], {}, None, True, False, 0, 1.5, [1, 2, 3], {"a": 1}, ["x"], [[1]]]


def _nodes(value, path=()):
    """Every (path, value) below ``value`` (paths of keys and indices)."""
    out = []
    todo = [(value, path)]
    while todo:
        item, at = todo.pop()
        if isinstance(item, dict):
            children = list(item.items())
        elif isinstance(item, list):
            children = list(enumerate(item))
        else:
            continue
        for k, v in children:
            out.append((at + (k,), v))
            todo.append((v, at + (k,)))
    return out


def _replacement(old, rng: np.random.Generator, raws: list[str]):
    kind = int(rng.integers(0, 8))
    if kind == 0:
        return HUGE[int(rng.integers(0, len(HUGE)))]
    if kind == 1:
        return NEGATIVE[int(rng.integers(0, len(NEGATIVE)))]
    if kind == 2:
        return WRONG[int(rng.integers(0, len(WRONG)))]
    if kind == 3:  # NaN, inf, huge literals, deep nesting: raw text
        raws.append(RAW[int(rng.integers(0, len(RAW)))])
        return f"__RAW{len(raws) - 1}__"
    if kind == 4:  # nested a few hundred levels (json.dumps can still write it)
        value = old
        for _ in range(int(rng.integers(60, 400))):
            value = [value]
        return value
    if kind == 5 and isinstance(old, list) and old:  # a long list of its own items
        return old * int(rng.integers(100, 5000))
    if kind == 5 and isinstance(old, (int, float)) and not isinstance(old, bool):
        return old * int(rng.choice([10, 1000, 10**6]))
    if kind == 6 and isinstance(old, (int, float)) and not isinstance(old, bool):
        return -old if old else -1
    return WRONG[int(rng.integers(0, len(WRONG)))]


def mutate_manifest(manifest: dict, rng: np.random.Generator) -> str:
    man = json.loads(json.dumps(manifest))
    raws: list[str] = []
    for _ in range(int(rng.integers(1, 4))):
        nodes = _nodes(man)
        sizes = [n for n in nodes if n[0][0] in ("params", "state", "settings", "info")]
        pool = sizes if sizes and rng.random() < 0.7 else nodes
        path, old = pool[int(rng.integers(0, len(pool)))]
        parent = man
        for k in path[:-1]:
            parent = parent[k]
        key = path[-1]
        action = rng.random()
        if action < 0.08 and isinstance(parent, dict):
            del parent[key]
        elif action < 0.14 and isinstance(parent, dict):
            parent[f"extra{int(rng.integers(0, 99))}"] = _replacement(old, rng, raws)
        else:
            parent[key] = _replacement(old, rng, raws)
    text = json.dumps(man)
    for i, raw in enumerate(raws):
        text = text.replace(f'"__RAW{i}__"', raw)
    return text


def write_ranker(members: dict[str, bytes], manifest_text: str, out: Path) -> Path:
    """A ranker file with ``manifest_text``, its own checksum recomputed (as an attacker
    would): the integrity check passes, the content checks must refuse."""
    data = manifest_text.encode()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", data)
        zf.writestr("manifest.sha256", hashlib.sha256(data).hexdigest() + "\n")
        for name, blob in members.items():
            if name not in ("manifest.json", "manifest.sha256"):
                zf.writestr(name, blob)
    return out


# -------------------------------------------------------------------- the workers
def run_batches(
    batches: list[dict], tmp: Path, parallel: int = 2, env: dict | None = None
) -> list[dict]:
    """Run each batch (``{"warmup": [...], "cases": [...]}``, see ``fuzz_worker.py``) in
    its own worker, ``parallel`` at a time; per worker: exit code, peak RSS (KB, the
    worker's own: :func:`_peak_rss`), and its per-case records."""
    env = env or {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    todo = list(enumerate(batches))
    running: dict[int, tuple[int, subprocess.Popen, Path]] = {}
    done = []
    deadline = time.monotonic() + 600  # a safety net only: each case has its own alarm
    while todo or running:
        while todo and len(running) < parallel:
            k, batch = todo.pop(0)
            spec, results = tmp / f"batch{k}.json", tmp / f"batch{k}.jsonl"
            spec.write_text(json.dumps(batch))
            proc = subprocess.Popen(
                [sys.executable, str(WORKER), str(spec), str(results)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            running[proc.pid] = (k, proc, results)
        time.sleep(0.05)
        for pid in list(running):
            k, proc, results = running[pid]
            if time.monotonic() > deadline:
                proc.kill()
            got, status, usage = os.wait4(pid, os.WNOHANG)
            if got == 0:
                continue
            proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
            del running[pid]
            lines = results.read_text().splitlines() if results.exists() else []
            done.append(
                {
                    "batch": k,
                    "code": proc.returncode,
                    "rss_kb": _peak_rss(usage.ru_maxrss, records := [json.loads(x) for x in lines]),
                    "records": records,
                }
            )
    return done


def test_every_registered_ranker_is_fuzzed():
    from rankzc.ranking.registry import RANKERS

    assert set(MODELS) == set(RANKERS)


def test_fuzzed_pickles_and_ranker_manifests_never_crash(tmp_path):
    rng = np.random.default_rng(SEED)
    cases: dict[str, list[dict]] = {"pickle": [], "ranker": []}
    i = 0
    pickles = genuine_pickles()
    (tmp_path / "p").mkdir()
    for n in range(PICKLE_CASES):
        kind, data = pickles[n % len(pickles)]
        path = tmp_path / "p" / f"{n}.pkl"
        path.write_bytes(mutate_pickle(data, rng))
        cases["pickle"].append({"i": i, "kind": kind, "path": str(path)})
        i += 1
    (tmp_path / "r").mkdir()
    rankers, table = genuine_rankers(tmp_path / "r")
    for name, path in rankers.items():
        with zipfile.ZipFile(path) as zf:
            members = {n: zf.read(n) for n in zf.namelist()}
        manifest = json.loads(members["manifest.json"])
        for n in range(RANKER_CASES_PER_MODEL):
            out = tmp_path / "r" / f"{name}{n}.rzc"
            write_ranker(members, mutate_manifest(manifest, rng), out)
            cases["ranker"].append(
                {"i": i, "kind": "ranker", "model": name, "path": str(out), "table": str(table)}
            )
            i += 1
    assert i >= 1000
    warmup = [
        {"i": -1, "kind": "ranker", "path": str(p), "table": str(table)} for p in rankers.values()
    ]
    # five workers: two of pickles, three of rankers (models interleaved)
    batches = [{"cases": cases["pickle"][k::2]} for k in range(2)]
    batches += [{"warmup": warmup, "cases": cases["ranker"][k::3]} for k in range(3)]
    by_case = {c["i"]: c for group in cases.values() for c in group}

    workers = run_batches(batches, tmp_path)

    assert len(workers) == len(batches)
    outcomes: dict[str, int] = {}
    for w in workers:
        started = [r["i"] for r in w["records"] if r.get("start")]
        ended = {r["i"]: r for r in w["records"] if "outcome" in r}
        unfinished = [by_case[c] for c in started if c not in ended]
        code = w["code"]
        assert code not in (-signal.SIGABRT, -signal.SIGSEGV, 134, 139), (code, unfinished[:1])
        assert code != -signal.SIGALRM, f"a case ran over {CASE_SECONDS} s: {unfinished[:1]}"
        assert code == 0 and not unfinished, (code, unfinished[:1])
        assert len(ended) == len(batches[w["batch"]]["cases"])
        assert w["rss_kb"] < RSS_LIMIT_KB, (
            f"worker {w['batch']}: peak RSS {w['rss_kb']} KB; "
            f"after warm-up and each case: {_rss_steps(w)}"
        )
        for c, rec in ended.items():
            assert rec["seconds"] < CASE_SECONDS, (by_case[c], rec)
            assert rec["outcome"] in ("ok", "error"), (by_case[c], rec)
            key = f"{by_case[c]['kind']}:{rec['outcome']}"
            outcomes[key] = outcomes.get(key, 0) + 1
    assert sum(outcomes.values()) == i
    # the mutations reach both verdicts: refused files and files that still load
    assert outcomes.get("ranker:error", 0) > 100 and outcomes.get("ranker:ok", 0) > 20, outcomes
    assert outcomes.get("label:error", 0) + outcomes.get("pyskl:error", 0) > 100, outcomes


@pytest.mark.parametrize("crash", ["segv", "abort", "hang", "memory"])
def test_the_harness_sees_crashes_hangs_and_memory(tmp_path, crash):
    """The assertions above can fail: a worker killed by SIGSEGV/SIGABRT shows as its
    signal with the case it was on, a hanging case as SIGALRM, 1.1 GB written as RSS."""
    target = tmp_path / "x.pkl"
    target.write_bytes(pickle.dumps(([], []), protocol=2))
    site = tmp_path / "site"
    site.mkdir()
    action = {
        "segv": "os.kill(os.getpid(), signal.SIGSEGV)",
        "abort": "os.abort()",
        "hang": "time.sleep(60)",
        "memory": 'b"x" * 1_100_000_000',
    }[crash]
    (site / "sitecustomize.py").write_text(
        "import os, signal, time\n"
        "import rankzc.datasets.safe_pickle as sp\n"
        "def load_data_pickle(path):\n"
        f"    {action}\n"
        "sp.load_data_pickle = load_data_pickle\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "1"}
    env["RANKZC_FUZZ_CASE_SECONDS"] = "60" if crash == "memory" else "1"
    batch = {"cases": [{"i": 0, "kind": "label", "path": str(target)}]}
    (w,) = run_batches([batch], tmp_path, env=env)
    started = [r for r in w["records"] if r.get("start")]
    if crash == "memory":
        assert w["code"] == 0 and w["rss_kb"] > RSS_LIMIT_KB, w
        return
    expected = {"segv": -signal.SIGSEGV, "abort": -signal.SIGABRT, "hang": -signal.SIGALRM}
    assert w["code"] == expected[crash], w
    assert started and not any("outcome" in r for r in w["records"])


def _rss_steps(worker: dict) -> str:
    """Where a worker's peak memory grew: (case, peak KB so far) at each step up."""
    steps, last = [], 0
    for rec in worker.get("records", []):
        rss = rec.get("peak_rss_kb")
        if rss is not None and rss > last + 20_000:
            steps.append((rec["i"], rss))
            last = rss
    return ", ".join(f"case {i}: {kb} KB" for i, kb in steps[:12])


def _peak_rss(wait4_kb: int, records: list[dict]) -> int:
    """The worker's own peak memory: the largest ``peak_rss_kb`` it reported (its
    ``VmHWM``); ``wait4``'s figure only when it reported none, since that one also counts
    the test process's memory at the fork before ``exec``."""
    own = [r["peak_rss_kb"] for r in records if r.get("peak_rss_kb") is not None]
    return max(own) if own else wait4_kb
