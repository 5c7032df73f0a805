"""benchmarks/readme_commands.py ties every checked README figure to its command (issue 23,
item 8). Here, without running anything: every tie still finds its figure in README.md,
and the tolerance and rewriting rules hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import benchmark_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rc():
    return benchmark_script("readme_commands")


def test_every_tied_figure_is_still_quoted(rc):
    text, lines = rc.flat((ROOT / "README.md").read_text())
    missing = []
    for f in rc.FIGURES:
        assert f.source in rc.SOURCES, f.source
        m = re.search(f.pattern, text)
        if m is None or m.group(1) is None:
            missing.append(f.pattern)
            continue
        float(m.group(1))  # a number
        assert 1 <= lines[m.start(1)] <= text.count(" ") + 1
    assert not missing, f"README.md no longer quotes: {missing}"
    assert len(rc.FIGURES) >= 150


def test_sources_need_shared_data_only_through_the_stores(rc):
    for key, src in rc.SOURCES.items():
        if "../shared" in src.command and src.file is None:
            pytest.fail(f"{key}: reads ../shared without declaring a store in needs")
        for store in src.needs:
            assert store in rc.STORES and "../shared" in rc.STORES[store]
        if src.file is not None:
            assert (ROOT / src.file).exists(), src.file


@pytest.mark.parametrize(
    "quoted, tol", [("0.7827", 5e-5), ("0.246", 5e-4), ("0.42", 5e-3), ("8e-6", 5e-7),
                    ("+0.085", 5e-4), ("200", 0.5), ("1.65", 5e-3)],
)  # fmt: skip
def test_default_tolerance_is_half_a_unit_of_the_last_digit(rc, quoted, tol):
    assert rc.default_tolerance(quoted) == pytest.approx(tol)


def test_fix_writes_a_value_as_the_quote_was_written(rc):
    assert rc.like("+0.085", 0.0621) == "+0.062"
    assert rc.like("-0.048", -0.0466) == "-0.047"
    assert rc.like("+0.006", -0.0069) == "-0.007"
    assert rc.like("0.42", 0.553) == "0.55"
    assert rc.like("8e-6", 3.2e-6) == "3e-6"
    assert rc.like("200", 201.2) == "201"


def test_flat_maps_back_to_lines_and_offsets(rc):
    raw = "a 0.1\nb\n  0.25 c"
    offsets: list[int] = []
    text, lines = rc.flat(raw, offsets)
    assert text == "a 0.1 b 0.25 c"
    i = text.index("0.25")
    assert lines[i] == 3 and raw[offsets[i] : offsets[i] + 4] == "0.25"
