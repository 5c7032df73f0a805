"""A live search's state in the store is validated on read (#24, item 9).

Attack: edit the ``search:<strategy>:<seed>`` meta value of a finished ``rankzc search
--out`` store and rerun the same command. Before, a forged ``trained`` entry was reported
as the best architecture (at 99 %) and six kinds of tampering gave tracebacks; now each
is one ``Error:`` line, exit 1, the store unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rankzc.cli import main
from rankzc.errors import RankzcError
from rankzc.search.state import read_state
from rankzc.store import Benchmark

ROOT = Path(__file__).resolve().parents[1]
KEY = "search:random:0"
ARGS = ["-s", "random", "--train-budget", "2", "--sample", "4", "--preset", "tiny"]
ARGS += ["--data", "synthetic:n=60", "--epochs", "1", "--proxies", "params", "-q"]


def search(out: Path) -> list[str]:
    return ["search", "--out", str(out), *ARGS]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("search") / "s.db"
    res = CliRunner().invoke(main, search(out))
    assert res.exit_code == 0, res.output
    return out


def state_of(path: Path) -> dict:
    with Benchmark.open(path, readonly=True) as b:
        return json.loads(b.meta[KEY])


def tampered(finished: Path, tmp_path: Path, text: str) -> Path:
    out = tmp_path / "t.db"
    shutil.copy(finished, out)
    con = sqlite3.connect(out)
    with con:
        con.execute("UPDATE meta SET value=? WHERE key=?", (text, KEY))
    con.close()
    return out


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def refused(out: Path, *needles: str) -> str:
    before = digest(out)
    res = CliRunner().invoke(main, search(out))
    assert res.exit_code == 1, res.output
    assert res.output.startswith("Error: ") and res.output.count("\n") == 1, res.output
    assert "damaged search state" in res.output, res.output
    for needle in needles:
        assert needle in res.output, res.output
    assert digest(out) == before  # refused before anything is written
    return res.output


def test_an_untouched_state_resumes(finished, tmp_path):
    out = tampered(finished, tmp_path, json.dumps(state_of(finished), sort_keys=True))
    res = CliRunner().invoke(main, [*search(out), "--format", "json"])
    assert res.exit_code == 0, res.output
    best = json.loads(res.stdout)["strategies"][0]["best"]
    with Benchmark.open(out, readonly=True) as b:
        labels = b.labels()["val_acc"]
    assert best["arch_id"] in labels.index and best["val_acc"] == pytest.approx(100 * labels.max())


def test_forged_trained_entry_is_refused(finished, tmp_path):
    """The attack: an architecture of the pool reported as best at 99 %."""
    state = state_of(finished)
    with Benchmark.open(finished, readonly=True) as b:
        untrained = sorted(set(b.architectures().index) - {a for a, _, _ in state["trained"]})
    forged = {**state, "trained": [*state["trained"], [untrained[0], 0.99, 1.0]]}
    out = tampered(finished, tmp_path, json.dumps(forged))
    refused(out, f"trained[2]: label 0.99 for {untrained[0]}", "no finished run")
    # a trained architecture's label raised to 99 %: the store's own label disagrees
    state["trained"][1][1] = 0.99
    out = tampered(finished, tmp_path, json.dumps(state))
    refused(out, "trained[1]: label 0.99", "but the store holds 0.")


def _edit(state: dict, how: str) -> str:
    s = json.loads(json.dumps(state))
    first = s["trained"][0]
    edits = {
        # wrong types
        "trained-not-list": lambda: s.update(trained="x"),
        "settings-list": lambda: s.update(settings=[]),
        "label-string": lambda: first.__setitem__(1, "0.5"),
        "arch-number": lambda: first.__setitem__(0, 7),
        "pending-object": lambda: s.update(pending={}),
        "added-number": lambda: s.update(added=[3]),
        "state-list": lambda: s.clear() or s.update(x=1),
        # missing keys
        "no-trained": lambda: s.pop("trained"),
        "no-settings": lambda: s.pop("settings"),
        "extra-key": lambda: s.update(best=first),
        # unknown architectures
        "unknown-trained": lambda: first.__setitem__(0, "f" * 16),
        "unknown-pending": lambda: s.update(pending=["0" * 16]),
        "bad-added": lambda: s.update(added=["not-an-architecture"]),
        # non-finite numbers
        "label-nan": lambda: first.__setitem__(1, float("nan")),
        "seconds-inf": lambda: first.__setitem__(2, float("inf")),
        "seconds-negative": lambda: first.__setitem__(2, -1.0),
        # wrong lengths
        "entry-short": lambda: s["trained"].__setitem__(0, first[:2]),
        "entry-long": lambda: first.append(1),
        # duplicated entries
        "trained-twice": lambda: s["trained"].append(list(first)),
        "pending-twice": lambda: s.update(pending=[first[0], first[0]]),
    }
    edits[how]()
    text = json.dumps(s)
    if how == "state-list":
        text = "[1, 2]"
    return text


CASES = {
    "trained-not-list": "'trained' must be a list",
    "settings-list": "'settings' must be an object",
    "label-string": "trained[0]: label a string is not a finite number",
    "arch-number": "trained[0]: the architecture must be an arch_id",
    "pending-object": "'pending' must be a list",
    "added-number": "added[0] must be an architecture encoding",
    "state-list": "not a JSON object but a list",
    "no-trained": "no 'trained'",
    "no-settings": "no 'settings'",
    "extra-key": "unknown key 'best'",
    "unknown-trained": "trained[0]: architecture 'ffffffffffffffff' is not in the store",
    "unknown-pending": "pending[0]: architecture '0000000000000000' is not in the store",
    "bad-added": "added[0]: not an architecture",
    "label-nan": "trained[0]: label nan is not a finite number",
    "seconds-inf": "trained[0]: seconds inf is not a finite number",
    "seconds-negative": "trained[0]: seconds -1.0 is negative",
    "entry-short": "trained[0] holds 2 items, not 3",
    "entry-long": "trained[0] holds 4 items, not 3",
    "trained-twice": "trained[2]: ",
    "pending-twice": "pending[1]: ",
}


@pytest.mark.parametrize("how", sorted(CASES))
def test_tampered_state_is_one_line_through_the_cli(finished, tmp_path, how):
    out = tampered(finished, tmp_path, _edit(state_of(finished), how))
    refused(out, CASES[how])


@pytest.mark.parametrize(
    "text, needle",
    [
        ("{", "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested"),
        ('{"settings": ' + "[" * 20 + "]" * 20 + "}", "nested deeper than 8"),
        ("1" * 5000, "not a JSON object but a number"),
    ],
    ids=["truncated", "deep", "nested-settings", "long-number"],
)
def test_unreadable_state_is_one_line(text, needle):
    with pytest.raises(RankzcError, match=needle) as err:
        read_state(text, "s.db: search:random:0", archs=set(), labels={})
    assert str(err.value).count("\n") == 0


def test_refusal_without_traceback_in_a_subprocess(finished, tmp_path):
    state = state_of(finished)
    state["trained"][0][1] = 0.99
    out = tampered(finished, tmp_path, json.dumps(state))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", "from rankzc.cli import main; main()", *search(out)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "trained[0]: label 0.99" in proc.stderr and proc.stdout == ""
