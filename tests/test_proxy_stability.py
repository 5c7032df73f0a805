"""Proxy values do not depend on the thread count or the machine (definitions version 3).

The documented tolerance (docs/proxies.md, "Values across threads and machines"):
relative 1e-5 for every proxy, and synflow compared in the log domain (its values span
dozens of orders of magnitude). Exact ties in the attention softmaxes follow the tie
rule of :func:`rankzc.models.dynamic.tied_attention`.
"""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from rankzc.models import build_model
from rankzc.models.dynamic import TIE_RTOL, attention_softmax, tied_attention
from rankzc.models.sampling import randn
from rankzc.proxies import compute_proxies, proxy_names
from rankzc.proxies.context import exact_sign
from rankzc.space import sample_architectures

THREAD_RTOL = 1e-5


@functools.cache
def _scores(depth: int, threads: int) -> dict[str, float]:
    """All 14 proxies of the test's architecture of ``depth`` with ``threads`` threads
    (computed once per process: the thread and machine tests share the one-thread run)."""
    arch = sample_architectures(1, seed=3, depths=[depth])[0]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        model = build_model(arch, "cpu", num_classes=4, num_person=1)
        gen = torch.Generator().manual_seed(1)
        x = randn((6, 3, 8, 25, 1), generator=gen)
        y = torch.tensor([0, 1, 2, 3, 0, 1])
        res = compute_proxies(model, (x, y), names=proxy_names(), seed=0)
    finally:
        torch.set_num_threads(before)
    return {n: r.score for n, r in res.items()}


@pytest.mark.parametrize("depth", [4, 10])
def test_every_proxy_agrees_between_one_and_two_threads(depth):
    _assert_agree(_scores(depth, 1), _scores(depth, 2))


#: what a CPU without AVX-512 runs: ATen's AVX2 kernels, oneDNN's and MKL's AVX2 code paths
AVX2_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}

#: ATen's portable kernels (what ARM CPUs and x86 CPUs without AVX2 run: another
#: Gaussian sampler, no vectorised reductions), oneDNN's and MKL's SSE4 code paths
PORTABLE_ENV = {
    "ATEN_CPU_CAPABILITY": "default",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
}


def _assert_agree(one: dict, two: dict) -> None:
    assert set(one) == set(two) == set(proxy_names())
    for name in one:
        a, b = one[name], two[name]
        assert a is not None and b is not None, name
        if name == "synflow":
            assert math.log10(a) == pytest.approx(math.log10(b), abs=1e-6), name
        else:
            assert a == pytest.approx(b, rel=THREAD_RTOL, abs=1e-9), name


@pytest.mark.parametrize("kernels", ["avx2", "portable"])
def test_every_proxy_agrees_with_the_kernels_of_another_machine(kernels):
    """Another machine, emulated in a fresh process: a CPU without AVX-512 (AVX2 kernels),
    or one without AVX2 (ATen's portable kernels, as on ARM). Random draws are the same
    numbers on both (:mod:`rankzc.models.sampling`), the kernels' summation orders are
    not."""
    code = textwrap.dedent(
        """
        import json, sys
        sys.path.insert(0, sys.argv[1])
        from test_proxy_stability import _scores
        print(json.dumps({d: _scores(d, 1) for d in (4, 10)}))
        """
    )
    env = dict(os.environ, **(AVX2_ENV if kernels == "avx2" else PORTABLE_ENV))
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.run(
        [sys.executable, "-c", code, here], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    other = json.loads(proc.stdout.strip().splitlines()[-1])
    for depth in (4, 10):
        _assert_agree(_scores(depth, 1), other[str(depth)])


def test_tie_rule_splits_exact_ties_evenly_whatever_the_last_bits():
    big = 1e40
    logits = torch.tensor([[big], [big * (1 + 1e-15)], [big * 0.5]], dtype=torch.float64)
    plain = attention_softmax(logits, dim=-2)
    assert plain[1, 0] == 1.0  # without the rule one ulp decides the whole column
    with tied_attention():
        tied = attention_softmax(logits, dim=-2)
    assert tied[:, 0].tolist() == [0.5, 0.5, 0.0]
    # moderate logits are a plain softmax (the rule only snaps within TIE_RTOL)
    small = torch.tensor([[1.0], [1.0 + 10 * TIE_RTOL], [0.0]], dtype=torch.float64)
    with tied_attention():
        assert torch.allclose(attention_softmax(small, -2), torch.softmax(small, -2))


def test_tied_attention_is_a_constant_and_scoped():
    logits = torch.randn(2, 5, 5, dtype=torch.float64, requires_grad=True)
    with tied_attention():
        out = attention_softmax(logits)
    assert not out.requires_grad
    assert attention_softmax(logits).requires_grad  # the rule ends with the block


def test_exact_sign_dead_zone():
    g = torch.tensor([1.0, -0.5, 1e-12, -1e-12, 0.0], dtype=torch.float64)
    assert exact_sign(g).tolist() == [1.0, -1.0, 0.0, 0.0, 0.0]
    assert exact_sign(g * 1e-30).tolist() == [1.0, -1.0, 0.0, 0.0, 0.0]  # scale-free


def _softmax_grad_exact(z: list[float], g: list[float]) -> list[float]:
    """The softmax's vector-Jacobian product in 60-digit decimal arithmetic."""
    from decimal import Decimal, getcontext

    getcontext().prec = 60
    zs, gs = [Decimal(v) for v in z], [Decimal(v) for v in g]
    top = max(zs)
    e = [(v - top).exp() for v in zs]
    p = [v / sum(e) for v in e]
    pg = sum(a * b for a, b in zip(p, gs, strict=True))
    return [float(a * (b - pg)) for a, b in zip(p, gs, strict=True)]


def test_float64_attention_softmax_backward_is_exact_where_it_saturates():
    """Definitions version 4: a saturated column's gradient is the mathematics' (what a
    60-digit computation gives), where the usual backward returns rounding noise that
    differs between machines (x86 and ARM gave other grad_sign values)."""
    z = [0.0, -41.0, -45.5, -38.25]  # saturated: the top-two gap is 38.25
    g = [0.3, -1.7, 0.9, 2.2]
    want = _softmax_grad_exact(z, g)
    logits = torch.tensor(z, dtype=torch.float64).view(4, 1).requires_grad_()
    (got,) = torch.autograd.grad(
        attention_softmax(logits, dim=-2), logits, torch.tensor(g, dtype=torch.float64).view(4, 1)
    )
    for a, b in zip(got.view(-1).tolist(), want, strict=True):
        assert a == pytest.approx(b, rel=1e-12, abs=0.0)
    # the usual backward loses the largest entry's gradient to cancellation
    (usual,) = torch.autograd.grad(
        torch.softmax(logits, dim=-2), logits, torch.tensor(g, dtype=torch.float64).view(4, 1)
    )
    assert usual[0, 0].item() != pytest.approx(want[0], rel=1e-3, abs=0.0)
    # moderate logits: the same values as the usual backward
    x = torch.randn(3, 6, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 6, 5, dtype=torch.float64)
    (a,) = torch.autograd.grad(attention_softmax(x, dim=-2), x, w)
    (b,) = torch.autograd.grad(torch.softmax(x, dim=-2), x, w)
    assert torch.allclose(a, b, rtol=1e-12, atol=1e-15)
    assert torch.autograd.gradgradcheck(lambda t: attention_softmax(t, dim=-2), (x,))
