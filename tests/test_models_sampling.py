"""Gaussian draws that are the same numbers on every CPU (rankzc.models.sampling)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from rankzc.models import sampling
from rankzc.models.presets import build_model
from rankzc.space import Architecture

REPO = Path(__file__).resolve().parents[1]

native_only = pytest.mark.skipif(
    not sampling.native(), reason="this CPU's torch.normal_ is not the vectorised kernel"
)


@pytest.fixture
def portable(monkeypatch):
    """normal_ computes the draws itself, as on a CPU without the vectorised kernel."""
    monkeypatch.setattr(sampling, "native", lambda: False)


def test_pinned_draws_of_seed_0():
    """The first draws of seed 0 (and two of the 16 drawn again for a ragged tail), bit
    for bit: this holds on every CPU, whichever path computes them."""
    v = sampling.normal_values(40, 0.0, 1.0, torch.Generator().manual_seed(0))
    bits = [hex(int(b)) for b in v.view(np.uint32)[[0, 1, 8, 15, 24, 39]]]
    assert bits == [
        "0xbf901b85",
        "0xbf93808a",
        "0x3ea50138",
        "0xbe7d367c",
        "0xbe5d0b42",
        "0x3fda734a",
    ]


def test_pinned_draws_through_normal_on_any_cpu():
    t = sampling.normal_(torch.empty(40), 0.0, 1.0, torch.Generator().manual_seed(0))
    assert hex(int(t.numpy().view(np.uint32)[39])) == "0x3fda734a"


@native_only
@pytest.mark.parametrize(
    "n,mean,std",
    [(16, 0.0, 1.0), (17, 0.0, 1.0), (31, 0.5, 2.0), (1000, 0.0, 0.0123), (1_000_003, -1.0, 0.3)],
)
def test_equal_to_the_vectorised_kernel_bit_for_bit(n, mean, std):
    gen = torch.Generator().manual_seed(n)
    ref = torch.empty(n).normal_(mean, std, generator=gen).numpy()
    after_ref = torch.rand(3, generator=gen)
    gen = torch.Generator().manual_seed(n)
    ours = sampling.normal_values(n, mean, std, gen)
    assert np.array_equal(ours.view(np.uint32), ref.view(np.uint32))
    # the generator is left where normal_ leaves it
    assert torch.equal(torch.rand(3, generator=gen), after_ref)


@native_only
def test_portable_network_is_the_native_network(monkeypatch):
    arch = Architecture.parse("-".join(["11111111"] * 10))
    torch.manual_seed(3)
    native = build_model(arch, "cpu").state_dict()
    monkeypatch.setattr(sampling, "native", lambda: False)
    torch.manual_seed(3)
    portable = build_model(arch, "cpu").state_dict()
    assert native.keys() == portable.keys()
    for k in native:
        assert torch.equal(native[k], portable[k]), k


def test_other_tensors_keep_torchs_draws(portable):
    """float64, fewer than 16 elements, non-contiguous: ATen draws these one at a time in
    double precision on every CPU, so normal_ leaves them to it."""
    for make in (
        lambda: torch.empty(100, dtype=torch.float64),
        lambda: torch.empty(15),
        lambda: torch.empty(20, 20).t(),
    ):
        a = sampling.normal_(make(), 0.0, 1.0, torch.Generator().manual_seed(1))
        b = make().normal_(0.0, 1.0, generator=torch.Generator().manual_seed(1))
        assert torch.equal(a, b)


def test_fma_rounds_once():
    """a * b + c rounded once, including where rounding twice (to float64, then float32)
    lands on a float32 tie and rounds it to even the wrong way."""
    from fractions import Fraction

    f = np.float32
    # 3 * 5592407 = 2^24 + 5, halfway between the float32 numbers 2^24 + 4 and 2^24 + 6
    for c, want in ((2.0**-30, 2**24 + 6), (-(2.0**-30), 2**24 + 4), (0.0, 2**24 + 4)):
        got = sampling._fma(np.array([f(3)]), f(5592407), np.array([f(c)]))
        assert float(got[0]) == want, c
    rng = np.random.default_rng(0)
    x, y, z = (rng.standard_normal(2000).astype(f) for _ in range(3))
    got = sampling._fma(x, y, z)
    for i in range(len(x)):
        exact = Fraction(float(x[i])) * Fraction(float(y[i])) + Fraction(float(z[i]))
        lo = f(float(exact))  # within one float32 ulp; pick the nearer (ties to even)
        cands = [lo, np.nextafter(lo, f(np.inf)), np.nextafter(lo, f(-np.inf))]
        best = min(
            cands, key=lambda v: (abs(Fraction(float(v)) - exact), int(v.view(np.uint32)) & 1)
        )
        assert got[i] == best, i


def test_another_cpu_builds_the_same_network_and_zen():
    """A fresh process with ATen's portable kernels (``ATEN_CPU_CAPABILITY=default``, what
    ARM CPUs and x86 CPUs without AVX2 run) builds bit-identical initial weights and
    draws zen's inputs identically; ``torch.normal_`` itself differs there."""
    code = textwrap.dedent(
        """
        import hashlib, json, torch
        from rankzc.models.presets import build_model
        from rankzc.space import Architecture
        from rankzc.models.sampling import randn
        torch.manual_seed(5)
        m = build_model(Architecture.parse("11111111-10101010-01010101-11110001"), "tiny")
        h = hashlib.sha1()
        for t in m.state_dict().values():
            h.update(t.numpy().tobytes())
        z = randn((3, 40), torch.Generator().manual_seed(2))
        own = torch.empty(1000).normal_(generator=torch.Generator().manual_seed(2))
        print(json.dumps([h.hexdigest(), hashlib.sha1(z.numpy().tobytes()).hexdigest(),
                          hashlib.sha1(own.numpy().tobytes()).hexdigest()]))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    env["PYTHONPATH"] = str(REPO)
    outs = []
    for capability in (None, "default"):
        e = dict(env)
        if capability:
            e["ATEN_CPU_CAPABILITY"] = capability
        run = subprocess.run(
            [sys.executable, "-c", code], env=e, capture_output=True, text=True, check=True
        )
        outs.append(run.stdout.strip().splitlines()[-1])
    here, there = (json.loads(o) for o in outs)
    assert here[:2] == there[:2]
    if sampling.native():  # the premise: torch's own draws do differ there
        assert here[2] != there[2]
