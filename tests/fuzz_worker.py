"""Worker of the file fuzz (``tests/test_fuzz_files.py``): loads a batch of fuzzed files.

Run as ``python tests/fuzz_worker.py SPEC.json RESULTS.jsonl``; ``SPEC.json`` holds
``{"warmup": [...], "cases": [...]}``: the genuine files of ``warmup`` are loaded first,
without a time limit (the libraries are imported then). For every case it writes
``{"i": ..., "start": true}`` before the load and ``{"i": ..., "outcome": ...,
"seconds": ...}`` after it, flushed, so that a native crash (exit -6 / -11, 134 / 139 in
a shell) or a hang is pinned to its case. ``signal.alarm`` ends the process (exit -14)
when one case runs past :data:`CASE_SECONDS`.

Outcomes: ``ok`` (plain data / a usable ranker), ``error`` (a one-line RankzcError, as the
CLI would print), ``other`` (any other exception: a traceback in the CLI).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
from pathlib import Path

CASE_SECONDS = int(os.environ.get("RANKZC_FUZZ_CASE_SECONDS", "10"))


def peak_rss_kb() -> int:
    """This process's own peak resident memory (KB): ``VmHWM`` of ``/proc/self/status``.

    ``getrusage``'s ``ru_maxrss`` (and ``wait4``'s) also counts the parent's memory at
    the fork before ``exec`` (Linux keeps the old address space's high-water mark), so a
    worker started from a large test process would seem as large as it.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _load_pickle_case(case: dict) -> None:
    from rankzc.datasets import load_skeletons
    from rankzc.datasets.ntu import read_label_pkl
    from rankzc.datasets.safe_pickle import load_data_pickle

    path = case["path"]
    load_data_pickle(path)
    if case["kind"] == "label":
        read_label_pkl(path)
    else:
        load_skeletons(f"ntu:{path}", "train")


def _load_ranker_case(case: dict, tables: dict) -> None:
    """What ``score`` does with a ranker file: load it (checksums, schema, budgets, probe
    row), score a genuine features table, and check its recorded settings the way
    ``score --sample`` does before loading data (the data itself is not loaded)."""
    import pandas as pd

    from rankzc.ranking.io import load_ranker

    fitted = load_ranker(case["path"])
    table = tables.get(case["table"])
    if table is None:
        table = tables[case["table"]] = pd.read_csv(case["table"], index_col=0)
    fitted.score_table(table)
    if fitted.proxies and fitted.settings:
        from rankzc.proxies.features import ProxySettings
        from rankzc.ranking.budget import check_ranker_data

        settings = dict(fitted.settings)
        check_ranker_data(settings.get("data", "synthetic"))
        ProxySettings.from_dict({**settings, "proxies": list(fitted.proxies)})


def main(cases_path: str, results_path: str) -> int:
    from rankzc.errors import RankzcError

    spec = json.loads(Path(cases_path).read_text())
    cases = spec["cases"]
    tables: dict = {}
    for case in spec.get("warmup", []):  # genuine files: imports happen here, unalarmed
        if case["kind"] == "ranker":
            _load_ranker_case(case, tables)
        else:
            _load_pickle_case(case)
    with open(results_path, "a", encoding="utf-8") as out:

        def emit(record: dict) -> None:
            out.write(json.dumps(record) + "\n")
            out.flush()

        for case in cases:
            emit({"i": case["i"], "start": True})
            signal.alarm(CASE_SECONDS)
            t0 = time.monotonic()
            try:
                if case["kind"] == "ranker":
                    _load_ranker_case(case, tables)
                else:
                    _load_pickle_case(case)
                outcome, detail = "ok", ""
            except RankzcError as err:
                text = str(err)
                outcome = "error" if text and "\n" not in text else "other"
                detail = text[:300]
            except Exception as err:  # noqa: BLE001 - recorded: a traceback in the CLI
                outcome, detail = "other", f"{type(err).__name__}: {str(err)[:300]}"
            seconds = time.monotonic() - t0
            signal.alarm(0)
            emit(
                {
                    "i": case["i"],
                    "outcome": outcome,
                    "detail": detail,
                    "seconds": seconds,
                    "peak_rss_kb": peak_rss_kb(),
                }
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
