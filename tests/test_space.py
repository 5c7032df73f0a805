"""Tests of the GCN-NAS search space (rankzc.space)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from benchdata import STUDY_FIRST_WEIGHTS
from hypothesis import given, settings
from hypothesis import strategies as st

from rankzc.errors import RankzcError
from rankzc.space import (
    DEPTHS,
    OPS,
    SPACE,
    Architecture,
    count_architectures,
    load_architectures,
    sample_architectures,
    save_architectures,
)

# First file of the study in sorted order (006b3152...json), weights as recorded.
W_FIRST = STUDY_FIRST_WEIGHTS
FIRST_CANONICAL = "10110111-10101100-10111101-10111110"


# -------------------------------------------------------------------- strategies
def block_st():
    fixed = st.lists(st.booleans(), min_size=5, max_size=5)
    dyn = st.lists(st.booleans(), min_size=3, max_size=3).filter(any)
    return st.tuples(fixed, dyn).map(lambda t: tuple(t[0] + t[1]))


arch_st = st.sampled_from(DEPTHS).flatmap(
    lambda d: st.lists(block_st(), min_size=d, max_size=d).map(lambda b: Architecture(tuple(b)))
)


# -------------------------------------------------------------------- basics
def test_constants():
    assert SPACE == "gcn-nas"
    assert OPS == ("L1", "Ln4", "L4", "L3", "L2", "M_S", "M_T", "M_ST")
    assert DEPTHS == (4, 6, 8, 10)


def test_from_weights_first_file():
    arch = Architecture.from_weights(W_FIRST)
    assert str(arch) == FIRST_CANONICAL
    assert arch.depth == 4
    assert arch == Architecture.parse(FIRST_CANONICAL)
    assert hash(arch) == hash(Architecture.parse(FIRST_CANONICAL))
    expected = hashlib.sha256(("gcn-nas:" + FIRST_CANONICAL).encode()).hexdigest()[:16]
    assert arch.arch_id == expected
    assert len(arch.arch_id) == 16


def test_threshold_is_strict():
    w = np.full((4, 8), 0.1)
    w[:, 5] = 0.2
    arch = Architecture.from_weights(w)
    assert all(block == (False,) * 5 + (True, False, False) for block in arch.blocks)
    assert str(Architecture.from_weights(w, threshold=0.05)) == "-".join(["11111111"] * 4)


def test_frozen_and_normalised():
    arch = Architecture([[1, 0, 0, 0, 0, 1, 0, 0]] * 4)
    assert isinstance(arch.blocks, tuple) and isinstance(arch.blocks[0], tuple)
    assert arch.blocks[0][0] is True
    with pytest.raises(AttributeError):
        arch.blocks = ()  # type: ignore[misc]
    assert len({arch, Architecture.parse(str(arch))}) == 1


def test_encoding():
    arch = Architecture.parse(FIRST_CANONICAL)
    enc = arch.encoding()
    names = Architecture.encoding_names()
    assert enc.shape == (89,) and enc.dtype == np.float64
    assert len(names) == 89 and len(set(names)) == 89
    assert names[0] == "b01_L1" and names[79] == "b10_M_ST" and names[80] == "depth"
    assert names[81:] == [f"n_{op}" for op in OPS]
    assert enc[80] == 4
    assert np.all(enc[32:80] == 0)
    assert enc[:8].tolist() == [1, 0, 1, 1, 0, 1, 1, 1]
    # L1 on in all four blocks, Ln4 in none, M_ST in 2.
    assert enc[81] == 4 and enc[82] == 0 and enc[88] == 2
    assert arch.op_counts()["M_ST"] == 2


# -------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "blocks, match",
    [
        ([[1, 1, 1, 1, 1, 0, 0, 0]] + [[0, 0, 0, 0, 0, 1, 0, 0]] * 3, "block 1"),
        ([[0, 0, 0, 0, 0, 1, 0, 0]] * 2 + [[1] * 5 + [0] * 3] + [[0] * 7 + [1]], "block 3"),
        ([[0, 0, 0, 0, 0, 1, 0, 0]] * 5, "depth"),
        ([[0, 0, 0, 0, 0, 1, 0, 0]] * 12, "depth"),
        ([[0, 0, 0, 0, 0, 1, 0]] * 4, "block 1"),
        ([[0, 0, 0, 0, 0, 2, 0, 0]] * 4, "block 1"),
    ],
)
def test_invalid_blocks(blocks, match):
    with pytest.raises(RankzcError, match=match) as info:
        Architecture(blocks)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_rule_named_in_message():
    bad = [[0, 0, 0, 0, 0, 1, 0, 0]] * 3 + [[1, 0, 0, 0, 0, 0, 0, 0]]
    with pytest.raises(RankzcError, match=r"dynamic-module: block 4 has none of M_S, M_T, M_ST"):
        Architecture(bad)
    with pytest.raises(RankzcError, match="block 4"):
        Architecture.parse("00000100-00000100-00000100-10000000")


@pytest.mark.parametrize(
    "matrix, match",
    [
        (np.full((4, 7), 0.2), "shape"),
        (np.full((8,), 0.2), "shape"),
        ([[0.2] * 8] * 3 + [[0.2] * 7 + [float("nan")]], "non-finite"),
        ([[0.2] * 8] * 3 + [["a"] * 8], "numbers"),
        ([[0.2] * 8] * 3 + [[0.2] * 4], "numbers|shape"),
        (np.full((5, 8), 0.2), "depth"),
        ([[0.05] * 8] * 4, "block 1"),
    ],
)
def test_invalid_weights(matrix, match):
    with pytest.raises(RankzcError, match=match):
        Architecture.from_weights(matrix)


@pytest.mark.parametrize(
    "text", ["", "0000010", "00000100-00000100-00000100-0000010x", "00000100 00000100", 5]
)
def test_invalid_strings(text):
    with pytest.raises(RankzcError):
        Architecture.parse(text)  # type: ignore[arg-type]


def test_from_dict_checks():
    d = Architecture.parse(FIRST_CANONICAL).to_dict()
    with pytest.raises(RankzcError, match="space"):
        Architecture.from_dict({**d, "space": "nb201"})
    with pytest.raises(RankzcError, match="depth"):
        Architecture.from_dict({**d, "depth": 6})
    with pytest.raises(RankzcError, match="blocks"):
        Architecture.from_dict({"space": SPACE})
    assert Architecture.from_dict({"weights": W_FIRST}) == Architecture.parse(FIRST_CANONICAL)


# -------------------------------------------------------------------- properties
@given(arch_st)
def test_round_trips(arch):
    assert Architecture.parse(str(arch)) == arch
    d = json.loads(json.dumps(arch.to_dict()))
    assert d["space"] == SPACE and d["depth"] == arch.depth
    assert Architecture.from_dict(d) == arch
    w = np.where(np.asarray(arch.blocks), 0.12, 0.08)
    assert Architecture.from_weights(w) == arch
    enc = arch.encoding()
    assert enc[80] == arch.depth
    assert enc[81:].tolist() == [arch.op_counts()[op] for op in OPS]


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(0, 60),
    depths=st.lists(st.sampled_from(DEPTHS), min_size=1, max_size=4, unique=True),
    seed=st.integers(0, 2**31),
)
def test_sampler_unique_valid(n, depths, seed):
    archs = sample_architectures(n, depths=depths, seed=seed)
    assert len(archs) == n
    assert len(set(archs)) == n
    for a in archs:
        assert a.depth in depths
        assert all(any(block[5:]) for block in a.blocks)
        Architecture(a.blocks)  # revalidates
    assert archs == sample_architectures(n, depths=depths, seed=seed)


def test_sampler_exclude_and_limits():
    first = sample_architectures(20, depths=[4], seed=1)
    by_obj = sample_architectures(20, depths=[4], seed=1, exclude=first[:5])
    assert not set(by_obj) & set(first[:5])
    by_str = sample_architectures(20, depths=[4], seed=1, exclude=[str(a) for a in first[:5]])
    by_id = sample_architectures(20, depths=[4], seed=1, exclude=[a.arch_id for a in first[:5]])
    assert by_obj == by_str == by_id
    assert sample_architectures(5, seed=3) != sample_architectures(5, seed=4)
    assert count_architectures([4]) == 224**4
    with pytest.raises(RankzcError, match="cannot draw"):
        sample_architectures(224**4 + 1, depths=[4])
    with pytest.raises(RankzcError, match="depth"):
        sample_architectures(3, depths=[5])
    with pytest.raises(RankzcError, match="n"):
        sample_architectures(-1)


def test_sampler_covers_depths_and_ops():
    archs = sample_architectures(400, seed=0)
    assert {a.depth for a in archs} == set(DEPTHS)
    enc = np.stack([a.encoding() for a in archs])
    assert np.all(enc[:, 81:].sum(axis=0) > 0)
    # every dynamic pattern appears
    pats = {blk[5:] for a in archs for blk in a.blocks}
    assert len(pats) == 7


def _switch_share(archs) -> np.ndarray:
    return np.array([np.asarray(a.blocks, dtype=float).mean() for a in archs])


def test_density_sampling_spans_sparse_to_dense():
    """Issue 25: uniform draws all have about half their switches on; density draws span
    the space from the sparsest to the densest architectures, validly and reproducibly."""
    uniform = sample_architectures(300, seed=2)
    dense = sample_architectures(300, seed=2, sampling="density")
    assert _switch_share(uniform).std() < 0.1
    assert _switch_share(dense).std() > 0.2
    share = _switch_share(dense)
    assert share.min() < 0.2 and share.max() > 0.85
    assert len(set(dense)) == 300 and {a.depth for a in dense} == set(DEPTHS)
    for a in dense:
        Architecture(a.blocks)  # every block has a dynamic module on
    assert dense == sample_architectures(300, seed=2, sampling="density")
    # a prefix: the first draws of a larger sample are the smaller sample (resumed builds)
    assert sample_architectures(40, seed=2, sampling="density") == dense[:40]
    # the default stream is unchanged
    assert sample_architectures(5, seed=2, sampling="uniform") == uniform[:5]
    with pytest.raises(RankzcError, match="--sampling"):
        sample_architectures(3, sampling="dense")


def test_cli_sample_density(tmp_path):
    """``rankzc space sample --sampling density`` draws what the sampler draws."""
    from click.testing import CliRunner

    from rankzc.cli import main

    out = tmp_path / "a.json"
    args = ["space", "sample", "--sample", "6", "--seed", "3", "--sampling", "density"]
    res = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert load_architectures(out) == sample_architectures(6, seed=3, sampling="density")
    bad = CliRunner().invoke(main, [*args[:-1], "dense"])
    assert bad.exit_code == 2 and "--sampling" in bad.output


def test_density_sampling_fixed_share_follows_the_density():
    """Within an architecture every fixed switch is on with the same probability: the
    fixed share of its blocks is one draw's, so blocks agree far more than uniform ones."""
    dense = sample_architectures(200, depths=[10], seed=4, sampling="density")
    fixed = np.array([np.asarray(a.blocks, dtype=float)[:, :5].mean(axis=1) for a in dense])
    # spread of the per-architecture mean over architectures dwarfs the within spread
    between = fixed.mean(axis=1).std()
    within = fixed.std(axis=1).mean()
    assert between > 0.25 and within < between


# -------------------------------------------------------------------- files
def test_load_architectures_mixed(tmp_path):
    a = Architecture.parse(FIRST_CANONICAL)
    b = sample_architectures(1, depths=[6], seed=2)[0]
    path = tmp_path / "archs.json"
    path.write_text(json.dumps([str(a), b.to_dict(), W_FIRST, {"weights": W_FIRST}]))
    assert load_architectures(path) == [a, b, a, a]
    save_architectures([a, b], tmp_path / "out.json")
    assert load_architectures(tmp_path / "out.json") == [a, b]


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "not valid JSON"),
        ('{"a": 1}', "JSON list"),
        ('["10110111-10101100-10111101-10111110", "zzz"]', "item 1"),
        ('["10110111-10101100-10111101-10111110", 3]', "item 1"),
        ('[{"space": "gcn-nas", "blocks": [[1,0,0,0,0,0,0,0]]}]', "item 0: rule depth"),
        (
            '["00000100-00000100-00000100-00000100", "00000100-00000100-00000100-10000000"]',
            "item 1: rule dynamic-module: block 4",
        ),
    ],
)
def test_load_architectures_errors(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(RankzcError, match=match) as info:
        load_architectures(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_architectures(tmp_path / "nope.json")


@pytest.mark.shared
def test_thesis_patterns(thesis_dir):
    archs = []
    for f in sorted(thesis_dir.glob("*.json")):
        (rec,) = json.loads(f.read_text()).values()
        archs.append(Architecture.from_weights(rec["weights"]))
    assert len(archs) == 693
    assert str(archs[0]) == FIRST_CANONICAL
    assert len({tuple(b[5:] for b in a.blocks) for a in archs}) == 693
    assert sum(not any(b[:5]) for a in archs for b in a.blocks) == 166
    assert {a.depth for a in archs} == set(DEPTHS)


# -------------------------------------------------------------------- CLI
def _cli(args):
    from click.testing import CliRunner

    from rankzc.cli import main

    return CliRunner().invoke(main, args)


def test_cli_sample_and_info(tmp_path):
    out = tmp_path / "archs.json"
    res = _cli(
        ["space", "sample", "--sample", "5", "--depths", "4,6", "--seed", "3", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert len(data) == 5 and all(d["space"] == SPACE and d["depth"] in (4, 6) for d in data)
    archs = load_architectures(out)
    assert archs == sample_architectures(5, depths=[4, 6], seed=3)
    res = _cli(["space", "sample", "--sample", "2", "--seed", "3"])
    assert res.exit_code == 0 and len(json.loads(res.stdout)) == 2
    excl = _cli(
        [
            "space",
            "sample",
            "--sample",
            "5",
            "--depths",
            "4,6",
            "--seed",
            "3",
            "--exclude",
            str(out),
        ]
    )
    assert not set(load_architectures_text(excl.stdout)) & set(archs)

    first = tmp_path / "first.json"
    first.write_text(json.dumps([W_FIRST, FIRST_CANONICAL]))
    res = _cli(["space", "info", str(first), "--preset", "ntu60"])  # the default is cpu
    assert res.exit_code == 0, res.output
    lines = [
        [c.strip() for c in line.strip("│┃").split("│" if "│" in line else "┃")]
        for line in res.stdout.splitlines()
        if line.startswith(("│", "┃"))
    ]
    assert lines[0] == ["arch_id", "depth", "arch", "params"]
    a = Architecture.parse(FIRST_CANONICAL)
    assert lines[1] == [a.arch_id, "4", FIRST_CANONICAL, "3341748"]
    res = _cli(["space", "info", str(first), "--preset", "tiny", "--format", "json"])
    rows = json.loads(res.stdout)
    assert rows[0]["arch_id"] == a.arch_id and 0 < rows[0]["params"] < 3341748


def load_architectures_text(text):
    return [Architecture.from_dict(d) for d in json.loads(text)]


@pytest.mark.parametrize(
    "args, match",
    [
        (["space", "sample", "--sample", "3", "--depths", "5"], "rule depth"),
        (["space", "sample", "--sample", "3", "--depths", "x"], "--depths"),
        (["space", "sample", "--sample", "0"], "--sample"),
        (["space", "info", "MISSING"], "No such file"),
    ],
)
def test_cli_errors(args, match):
    res = _cli(args)
    assert res.exit_code == 1
    assert res.output.startswith("Error: ") and match in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_cli_info_bad_item(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('["00000100-00000100-00000100-00000100", "00000100-00000100-00000100-10000000"]')
    res = _cli(["space", "info", str(bad)])
    assert res.exit_code == 1
    assert res.output.strip() == (
        f"Error: {bad}: item 1: rule dynamic-module: block 4 has none of M_S, M_T, M_ST on"
    )
