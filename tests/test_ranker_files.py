"""Hostile and damaged ranker files: one-line "corrupted ranker file" errors, never a crash.

The hostile files are made here from a genuine one. Most of them also recompute every
checksum (the member SHA-256s in the manifest and the manifest's own ``manifest.sha256``),
as an attacker would, so that only the content checks stand between them and LightGBM or
torch. Loads that could crash in native code run in a subprocess: a regression shows as
a failing test (exit -11 / -6), not as a dead test runner.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from benchdata import OPS_SETTINGS, ops_label, ops_scores, write_gcn_store
from click.testing import CliRunner

from rankzc.cli import main
from rankzc.errors import RankzcError
from rankzc.ranking import io as rio
from rankzc.ranking.io import MANIFEST_SCHEMA, fit_ranker, load_ranker, save_ranker
from rankzc.ranking.lgbtext import safe_model_text
from rankzc.space import sample_architectures
from rankzc.store import Benchmark

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = OPS_SETTINGS


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("rf") / "b.db"
    archs = sample_architectures(60, seed=5)
    return write_gcn_store(path, archs, ops_label, ops_scores, settings=SETTINGS, seed=1)


@pytest.fixture(scope="module")
def files(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("rzc")
    params = {
        "lambdarank": {"n_estimators": 25, "num_leaves": 7},
        "ranknet": {"epochs": 3, "hidden": [8, 4]},
        "wam": {},
        "vote": {},
        "single": {},
        "stratified": {"n_estimators": 25, "num_leaves": 7, "min_child_samples": 5},
    }
    paths = {}
    with Benchmark.open(store) as b:
        for name, p in params.items():
            paths[name] = save_ranker(fit_ranker(b, name, params=p), out / f"{name}.rzc")
    return paths


# ----------------------------------------------------------------------- helpers
def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write(members: dict[str, bytes], out: Path, resum: str | None = "all") -> Path:
    """Write ``members`` as a ranker file, recomputing checksums as an attacker would:
    ``"all"`` (member SHA-256s in the manifest, then the manifest's own), ``"manifest"``
    (only ``manifest.sha256``) or None (none)."""
    members = dict(members)
    if resum == "all":
        man = json.loads(members["manifest.json"])
        if isinstance(man, dict) and isinstance(man.get("sha256"), dict):
            man["sha256"] = {
                k: hashlib.sha256(members[k]).hexdigest() if k in members else v
                for k, v in man["sha256"].items()
            }
        members["manifest.json"] = json.dumps(man).encode()
    if resum in ("all", "manifest"):
        members["manifest.sha256"] = hashlib.sha256(members["manifest.json"]).hexdigest().encode()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    return out


def _edit_manifest(path: Path, out: Path, edit, resum: str | None = "manifest") -> Path:
    m = _members(path)
    man = json.loads(m["manifest.json"])
    edit(man)
    m["manifest.json"] = json.dumps(man).encode()
    return _write(m, out, resum)


def _edit_model_text(path: Path, out: Path, edit) -> Path:
    m = _members(path)
    m["text/model.txt"] = edit(m["text/model.txt"].decode()).encode()
    return _write(m, out)


CHILD = """
import resource, sys
import numpy as np
from rankzc.errors import RankzcError
from rankzc.ranking.io import load_ranker
for path in sys.argv[1:]:
    print("CASE " + path, flush=True)
    try:
        r = load_ranker(path)
        scores = r.model.predict(np.random.default_rng(0).random((200, len(r.feature_names))))
        print("LOADED", np.isfinite(scores).all(), flush=True)
    except RankzcError as err:
        print("REFUSED " + str(err), flush=True)
# VmHWM: this process's own peak RSS (ru_maxrss would include the forking parent's)
hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:")]
kb = int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("RSS_MB", kb / 1024)
"""


def _load_isolated(*paths: Path) -> tuple[dict[str, str], float]:
    """Load and score each of ``paths`` in one subprocess: ``{path: "LOADED ..." or
    "REFUSED <message>"}`` and the peak RSS (MB). A crash fails the test, naming the file."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, paths)], capture_output=True, text=True,
        env=env, timeout=600,
    )  # fmt: skip
    cases = re.findall(r"^CASE (.*)$", proc.stdout, flags=re.M)
    assert proc.returncode == 0, (
        f"exit {proc.returncode} (-11 SIGSEGV, -6 abort) while loading {cases[-1:]}: "
        f"{proc.stderr[-2000:]}"
    )
    results = dict(re.findall(r"^CASE (.*)\n((?:LOADED|REFUSED).*)$", proc.stdout, flags=re.M))
    rss = float(re.search(r"RSS_MB ([0-9.]+)", proc.stdout).group(1))
    return results, rss


# --------------------------------------------------- LightGBM text (issue 16.1)
def _tree0(text: str, key: str, fn) -> str:
    """Apply ``fn`` to the values of ``key`` in the first tree."""
    lines = text.split("\n")
    start = lines.index("Tree=0")
    for i in range(start, len(lines)):
        if lines[i].startswith(key + "="):
            values = lines[i][len(key) + 1 :].split()
            lines[i] = key + "=" + " ".join(fn(values))
            break
    return "\n".join(lines)


def _no_sizes(text: str) -> str:
    return "\n".join(ln for ln in text.split("\n") if not ln.startswith("tree_sizes="))


def _set(i: int, value: str):
    def fn(values):
        values = list(values)
        values[i] = value
        return values

    return fn


HOSTILE_TEXT = {
    "half-truncated": lambda t: t[: len(t) // 2],
    "truncated-before-end": lambda t: t[: t.index("end of trees")],
    "split_feature-edited": lambda t: _tree0(t, "split_feature", _set(0, "99")),
    "split_feature-edited-no-sizes": lambda t: _no_sizes(_tree0(t, "split_feature", _set(0, "99"))),
    "split_feature-negative": lambda t: _tree0(t, "split_feature", _set(1, "-3")),
    "left_child-edited": lambda t: _tree0(t, "left_child", _set(0, "57")),
    "left_child-edited-no-sizes": lambda t: _no_sizes(_tree0(t, "left_child", _set(0, "57"))),
    "left_child-leaf-out-of-range": lambda t: _no_sizes(_tree0(t, "left_child", _set(0, "-40"))),
    "right_child-cycle": lambda t: _no_sizes(_tree0(t, "right_child", _set(1, "0"))),
    "num_leaves-edited": lambda t: _tree0(t, "num_leaves", lambda v: ["60"]),
    "num_leaves-edited-no-sizes": lambda t: _no_sizes(
        _tree0(t, "num_leaves", lambda v: [str(int(v[0]) + 1)])  # arrays one leaf short
    ),
    "num_leaves-huge": lambda t: _no_sizes(_tree0(t, "num_leaves", lambda v: ["999999999"])),
    "leaf_value-nan": lambda t: _tree0(t, "leaf_value", _set(0, "nan")),
    "leaf_value-inf": lambda t: _tree0(t, "leaf_value", _set(2, "inf")),
    "threshold-text": lambda t: _tree0(t, "threshold", _set(0, "x")),
    "decision_type-categorical": lambda t: _no_sizes(_tree0(t, "decision_type", _set(0, "1"))),
    "max_feature_idx": lambda t: t.replace("max_feature_idx=", "max_feature_idx=9", 1),
    "tree_sizes-count": lambda t: re.sub(r"tree_sizes=(\S+) ", "tree_sizes=", t, count=1),
    "tree-dropped": lambda t: t.replace("Tree=1\n", "Tree=7\n", 1),
    "tree_sizes-garbage": lambda t: re.sub(r"tree_sizes=\S+", "tree_sizes=999999999", t, count=1),
    "injected-key": lambda t: t.replace("num_cat=0", "num_cat=0\ncat_boundaries=0 5", 1),
}


@pytest.mark.parametrize("model", ["lambdarank", "stratified"])
def test_hostile_lightgbm_text_is_refused_without_crashing(files, tmp_path, model):
    paths = {
        case: _edit_model_text(files[model], tmp_path / f"{case}.rzc", edit)
        for case, edit in HOSTILE_TEXT.items()
    }
    results, _ = _load_isolated(files[model], *paths.values())
    assert results[str(files[model])] == "LOADED True"
    for case, path in paths.items():
        line = results[str(path)]
        assert line.startswith("REFUSED ") and "\n" not in line, (case, line)
        assert "corrupted ranker file (LightGBM model: " in line, (case, line)


def test_rebuilt_lightgbm_text_predicts_identically(files):
    import lightgbm as lgb

    text = _members(files["lambdarank"])["text/model.txt"].decode()
    n = int(re.search(r"max_feature_idx=(\d+)", text).group(1)) + 1
    rebuilt = safe_model_text(text, n)
    assert "tree_sizes" not in rebuilt and safe_model_text(rebuilt, n) == rebuilt
    X = np.random.default_rng(2).random((300, n))
    np.testing.assert_array_equal(
        lgb.Booster(model_str=text).predict(X), lgb.Booster(model_str=rebuilt).predict(X)
    )
    with pytest.raises(RankzcError, match="max_feature_idx"):
        safe_model_text(text, n + 1)


# ------------------------------------------------------------ size bounds (16.1)
def test_huge_hidden_layers_are_refused_before_allocating(files, tmp_path):
    def edit(man):
        man["params"]["hidden"] = [15000, 15000]

    path = _edit_manifest(files["ranknet"], tmp_path / "big.rzc", edit)
    results, rss = _load_isolated(path)
    line = results[str(path)]
    assert line.startswith("REFUSED ") and "corrupted ranker file" in line, line
    # refused by the width budget before the layer sizes are compared with the weights
    assert "ranknet: hidden width 15000 outside 1..4096" in line, line
    # 15000 x 15000 float32 weights alone are 900 MB; refusing first keeps the peak low
    assert 0 < rss < 850, rss


def test_ranknet_input_count_edited(files, tmp_path):
    def edit(man):
        man["state"]["n_in"] = 500

    with pytest.raises(RankzcError, match="corrupted ranker file .*layer sizes"):
        load_ranker(_edit_manifest(files["ranknet"], tmp_path / "nin.rzc", edit))


def test_huge_manifest_is_refused_unread(files, tmp_path, monkeypatch):
    m = _members(files["wam"])
    man = json.loads(m["manifest.json"])
    man["info"]["padding"] = " " * (rio.MAX_MANIFEST_BYTES + 10)
    m["manifest.json"] = json.dumps(man).encode()
    path = _write(m, tmp_path / "huge.rzc")
    assert path.stat().st_size < 200_000  # a few kB of zip ...
    with pytest.raises(RankzcError, match=r"corrupted ranker file \(member manifest.json is"):
        load_ranker(path)  # ... would be 8 MB of manifest


def test_member_size_is_bounded(files, monkeypatch):
    monkeypatch.setattr(rio, "MAX_MEMBER_BYTES", 5000)  # model.txt is larger
    with pytest.raises(RankzcError, match=r"corrupted ranker file \(member text/model.txt is"):
        load_ranker(files["lambdarank"])


def test_file_size_is_bounded(files, monkeypatch):
    monkeypatch.setattr(rio, "MAX_FILE_BYTES", 100)
    with pytest.raises(RankzcError, match="corrupted ranker file .*limit 100"):
        load_ranker(files["wam"])


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [
        ("vote", "subset", [0, 99]),
        ("single", "column", 7),
        ("wam", "pre", {"transform": "quantile"}),
    ],
)
def test_inconsistent_state_is_refused(files, tmp_path, name, key, value):
    def edit(man):
        man["state"][key] = value

    path = _edit_manifest(files[name], tmp_path / "s.rzc", edit)
    with pytest.raises(RankzcError, match="corrupted ranker file") as err:
        load_ranker(path)
    assert "\n" not in str(err.value)


def test_arrays_of_the_wrong_shape_are_refused(files, tmp_path):
    from safetensors.numpy import load as st_load
    from safetensors.numpy import save as st_save

    m = _members(files["wam"])
    arrays = st_load(m["arrays.safetensors"])
    arrays["pre.median"] = np.zeros(40)
    m["arrays.safetensors"] = st_save(arrays)
    with pytest.raises(RankzcError, match="corrupted ranker file .*median"):
        load_ranker(_write(m, tmp_path / "a.rzc"))


# ------------------------------------------------------- manifest schema (14.4)
WRONG = {
    "int": 5,
    "list": ["x"],
    "null": None,
    "string": "oops",
    "object": {"a": 1},
    "float": 1.5,
    "bool": True,
}


SHA_WRONG = {"sha-int": 5, "sha-list": [1, 2], "sha-null": None, "sha-short": "abc"}
# wrong-looking values the schema rightly accepts
ACCEPTED = {
    ("settings", "null"),
    ("settings", "object"),
    ("info", "null"),
    ("info", "object"),
    ("rankzc_version", "string"),
    ("space", "string"),
}


def _schema_cases():
    for key in MANIFEST_SCHEMA:
        yield key, "missing"
        for label in WRONG:
            if (key, label) not in ACCEPTED:
                yield key, label
    for label in SHA_WRONG:
        yield "sha256", label


@pytest.mark.parametrize(("key", "how"), list(_schema_cases()))
def test_every_manifest_key_is_checked(files, tmp_path, key, how):
    """Each key missing or of each wrong type: one line, never a KeyError/TypeError."""

    def edit(man):
        if how == "missing":
            del man[key]
        elif how in SHA_WRONG:  # one member checksum of the wrong type
            man["sha256"]["arrays.safetensors"] = SHA_WRONG[how]
        else:
            man[key] = WRONG[how]

    path = _edit_manifest(files["lambdarank"], tmp_path / "m.rzc", edit)
    with pytest.raises(RankzcError) as err:
        load_ranker(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: "), msg
    if key == "format":
        assert "not a rankzc ranker" in msg
    elif key == "format_version":
        assert "incompatible" in msg
    else:
        assert "corrupted ranker file" in msg, msg


def test_unknown_manifest_key_and_proxies_outside_features(files, tmp_path):
    def extra(man):
        man["surprise"] = 1

    def proxies(man):
        man["proxies"] = ["not_a_feature"]

    with pytest.raises(RankzcError, match="corrupted ranker file .*unknown key 'surprise'"):
        load_ranker(_edit_manifest(files["wam"], tmp_path / "x.rzc", extra))
    with pytest.raises(RankzcError, match="corrupted ranker file .*'proxies' must be among"):
        load_ranker(_edit_manifest(files["wam"], tmp_path / "p.rzc", proxies))


# ------------------------------------------------------- manifest checksum (15.4)
def test_edited_feature_names_are_refused(files, tmp_path):
    """An edit that keeps the member checksums: refused, not all-tied scores and exit 0."""

    def edit(man):
        man["feature_names"] = [f"renamed_{n}" for n in man["feature_names"]]
        man["proxies"] = [f"renamed_{n}" for n in man["proxies"]]

    for name in ("wam", "lambdarank"):
        path = _edit_manifest(files[name], tmp_path / f"{name}.rzc", edit, resum=None)
        with pytest.raises(RankzcError, match="corrupted ranker file .*manifest.json was edited"):
            load_ranker(path)
        res = CliRunner().invoke(main, ["score", "-r", str(path), "--sample", "2"])
        assert res.exit_code == 1 and res.output.count("\n") == 1, res.output
        assert "corrupted ranker file" in res.output


def test_missing_manifest_checksum(files, tmp_path):
    m = _members(files["wam"])
    del m["manifest.sha256"]
    with pytest.raises(RankzcError, match="corrupted ranker file .*no manifest.sha256"):
        load_ranker(_write(m, tmp_path / "n.rzc", resum=None))


def test_hostile_file_through_the_cli_is_one_line(files, tmp_path):
    path = _edit_model_text(files["lambdarank"], tmp_path / "h.rzc", HOSTILE_TEXT["half-truncated"])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", "from rankzc.cli import main; main()", "score", "-r", str(path),
         "--sample", "2"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "corrupted ranker file (LightGBM model" in proc.stderr


# ------------------------------------------------ features match the ranker (15.4)
def _features_csv(store: Path, out: Path, settings: dict | None) -> Path:
    """A features table of the store's architectures, with a sidecar as `features` writes."""
    from rankzc.commands._common import atomic_write_frame

    with Benchmark.open(store) as b:
        table = b.features().join(b.architectures()[["encoding", "depth"]])
    meta = {"settings": settings, "errors": {}} if settings is not None else {}
    atomic_write_frame(table, out, **meta)
    return out


def test_score_refuses_features_computed_under_other_settings(files, store, tmp_path):
    run = CliRunner().invoke
    rzc = files["wam"]
    same = _features_csv(store, tmp_path / "same.csv", {**SETTINGS, "device": "cuda"})
    other = _features_csv(
        store, tmp_path / "other.csv", {**SETTINGS, "preset": "cpu", "batch_size": 20}
    )
    bare = _features_csv(store, tmp_path / "bare.csv", None)
    assert not (tmp_path / "bare.csv.json").exists()
    res = run(main, ["score", "-r", str(rzc), "--features-csv", str(same), "--top", "3"])
    assert res.exit_code == 0, res.output  # the device does not change a score's meaning
    res = run(main, ["score", "-r", str(rzc), "--features-csv", str(other)])
    assert res.exit_code == 1 and res.output.count("\n") == 1, res.output
    assert str(other) in res.output and str(rzc) in res.output
    assert "batch_size=20, preset='cpu'" in res.output
    assert "batch_size=4, preset='tiny'" in res.output and "--allow-mismatch" in res.output
    res = run(main, ["score", "-r", str(rzc), "--features-csv", str(other), "--allow-mismatch",
                     "--format", "json"])  # fmt: skip
    assert res.exit_code == 0 and "Warning: " in res.output
    # nothing recorded: refused, not a silently skipped check (#24); --allow-mismatch warns
    res = run(main, ["score", "-r", str(rzc), "--features-csv", str(bare), "--format", "json"])
    assert res.exit_code == 1 and res.output.count("\n") == 1, res.output
    assert "no settings sidecar bare.csv.json" in res.output and "--allow-mismatch" in res.output
    res = run(main, ["score", "-r", str(rzc), "--features-csv", str(bare), "--format", "json",
                     "--allow-mismatch"])  # fmt: skip
    assert res.exit_code == 0 and "Warning: " in res.stderr and json.loads(res.stdout)["n"]


@pytest.mark.parametrize(
    "sidecar, needle",
    [
        (None, "no settings sidecar s.csv.json"),
        ("[1, 2]", "s.csv.json: not a JSON object but a list"),
        ('"settings"', "s.csv.json: not a JSON object but a string"),
        ("null", "s.csv.json: not a JSON object but null"),
        ("{}", "s.csv.json: records no proxy settings"),
        ('{"errors": {}}', "s.csv.json: records no proxy settings"),
        ('{"settings": null}', "'settings' must be a non-empty object, not null"),
        ('{"settings": []}', "'settings' must be a non-empty object, not a list"),
        ('{"settings": {}}', "'settings' must be a non-empty object, not an empty object"),
        ('{"settings": {"preset": 3}}', "field 'preset' must be a string, not an integer"),
        ('{"settings": {"batch_size": true}}', "'batch_size' must be an integer, not a boolean"),
        ('{"settings": {"seed": 1e400}}', "field 'seed' must be an integer, not a number"),
        ('{"benchmark": {"dataset": "x"}}', "records no proxy settings"),
        ('{"benchmark": {"proxy_settings": "{"}}', "'benchmark.proxy_settings' is not valid"),
        ('{"benchmark": {"proxy_settings": "[]"}}', "'benchmark.proxy_settings' must be a"),
        ("{", "s.csv.json: not valid JSON"),
    ],
)
def test_features_sidecar_required_and_validated(files, store, tmp_path, sidecar, needle):
    """A missing, non-object or settings-less sidecar used to disable the settings check
    (#24): now one line and exit 1; --allow-mismatch scores with a warning."""
    run = CliRunner().invoke
    csv = _features_csv(store, tmp_path / "s.csv", None)
    if sidecar is not None:
        (tmp_path / "s.csv.json").write_text(sidecar)
    args = ["score", "-r", str(files["wam"]), "--features-csv", str(csv), "--format", "json"]
    res = run(main, args)
    assert res.exit_code == 1, res.output
    assert res.output.startswith("Error: ") and res.output.count("\n") == 1, res.output
    assert needle in res.output and "--allow-mismatch" in res.output, res.output
    res = run(main, [*args, "--allow-mismatch"])
    assert res.exit_code == 0, res.output
    assert res.stderr.startswith("Warning: ") and needle in res.stderr
    assert json.loads(res.stdout)["n"] > 0


def test_exported_table_sidecar_is_checked(files, store, tmp_path):
    """`rankzc export` records the store's proxy_settings: compared like `features`'."""
    run = CliRunner().invoke
    exp = tmp_path / "e.csv"
    assert run(main, ["export", "-b", str(store), "--out", str(exp)]).exit_code == 0
    res = run(main, ["score", "-r", str(files["wam"]), "--features-csv", str(exp), "--top", "2"])
    assert res.exit_code == 0, res.output
    side = json.loads((tmp_path / "e.csv.json").read_text())
    assert side["settings"]["batch_size"] == 4
    (tmp_path / "e.csv.json").write_text(
        json.dumps({**side, "settings": {**side["settings"], "batch_size": 20}})
    )
    res = run(main, ["score", "-r", str(files["wam"]), "--features-csv", str(exp)])
    assert res.exit_code == 1 and "batch_size=20" in res.output, res.output


def test_settings_mismatch_in_python(files):
    fitted = load_ranker(files["wam"])
    assert fitted.settings_mismatch(None) == {}
    assert fitted.settings_mismatch({**SETTINGS, "proxies": ["zen"], "device": "cuda"}) == {}
    assert fitted.settings_mismatch({**SETTINGS, "seed": 3}) == {"seed": (0, 3)}
    with pytest.raises(RankzcError, match=r"f.csv: features computed with seed=3, but r.rzc"):
        fitted.check_settings({**SETTINGS, "seed": 3}, "f.csv", "r.rzc")
    seen = []
    fitted.check_settings({**SETTINGS, "seed": 3}, "f.csv", "r.rzc", warn=seen.append)
    assert len(seen) == 1


def test_gnn_sizes_are_checked_before_allocating(store, tmp_path):
    with Benchmark.open(store) as b:
        fitted = fit_ranker(b, "gnn", features="all", params={"epochs": 2, "hidden": 8})
    path = save_ranker(fitted, tmp_path / "g.rzc")
    assert load_ranker(path).name == "gnn"

    def edit(man):
        man["params"]["hidden"] = 15000

    with pytest.raises(RankzcError, match="corrupted ranker file .*gnn: hidden 15000"):
        load_ranker(_edit_manifest(path, tmp_path / "big.rzc", edit))


# ------------------------------------ found by the fuzz (tests/test_fuzz_files.py, #24)
@pytest.mark.parametrize(
    "field, value, needle",
    [
        ("seed", "x", "field 'seed' must be an integer, not a string"),
        ("seed", 2**64, "field 'seed' must lie in 0..9223372036854775807"),
        ("batch_size", None, "field 'batch_size' must be an integer, not null"),
        ("batch_size", 1e300, "field 'batch_size' must be an integer, not a number"),
        ("preset", ["tiny"], "field 'preset' must be a string, not a list"),
        ("options", 1.5, "field 'options' must be an object, not a number"),
        ("options", {"zen_batch": [4]}, "field 'options' must map names to plain values"),
        ("resample", "yes", "field 'resample' must be a boolean, not a string"),
    ],
)
def test_recorded_settings_of_the_wrong_type_are_refused_at_load(
    files, tmp_path, field, value, needle
):
    """Before, these loaded and `score --sample` died in ProxySettings or torch with a
    traceback (TypeError, AttributeError, OverflowError)."""

    def edit(man):
        man["settings"][field] = value

    path = _edit_manifest(files["wam"], tmp_path / "s.rzc", edit)
    with pytest.raises(RankzcError, match="corrupted ranker file .*manifest: 'settings'") as err:
        load_ranker(path)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_a_damaged_model_that_fails_on_a_table_is_one_line(files, store):
    """An arch-feature name no table has (found by the fuzz: KeyError from pandas)."""
    fitted = load_ranker(files["wam"])
    fitted.features, fitted.feature_names = "all", [*fitted.feature_names, "x"]
    with Benchmark.open(store) as b:
        table = b.features().join(b.architectures()[["encoding", "depth"]])
    with pytest.raises(RankzcError, match=r"the wam ranker cannot score this table \(KeyError"):
        fitted.score_table(table)
