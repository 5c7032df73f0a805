"""The guarded convolution (rankzc/models/conv.py): same values and gradients as
``F.conv2d``, and training that survives oneDNN's AVX2 strided 1x1 kernel (issue 6035)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rankzc.models.conv import SAFE_CHANNELS, Conv2d, conv2d, subsamples


def _grads(fn, x, w, b):
    x, w, b = (t.detach().clone().requires_grad_() for t in (x, w, b))
    y = fn(x, w, b)
    y.backward(torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y))
    return y.detach(), x.grad, w.grad, b.grad


@pytest.mark.parametrize("stride", [(1, 2), (2, 1), (2, 2), (1, 3)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_strided_pointwise_equals_f_conv2d(stride, channels_last):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 7, 9, generator=gen, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(8, 4, 1, 1, generator=gen, dtype=torch.float64)
    b = torch.randn(8, generator=gen, dtype=torch.float64)
    assert subsamples(w, stride, (0, 0), x)
    ours = _grads(lambda x, w, b: conv2d(x, w, b, stride=stride), x, w, b)
    ref = _grads(lambda x, w, b: F.conv2d(x, w, b, stride=stride), x, w, b)
    for a, r in zip(ours, ref, strict=True):
        assert a.shape == r.shape
        torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-12)


def test_only_strided_pointwise_kernels_of_few_channels_subsample():
    x = torch.zeros(1, 4, 8, 8)
    narrow = torch.zeros(8, 4, 1, 1)
    assert subsamples(narrow, (1, 2), (0, 0), x)
    assert not subsamples(narrow, (1, 1), (0, 0), x)  # unstrided
    assert not subsamples(narrow, (1, 2), (0, 1), x)  # padded: not a plain subsample
    assert not subsamples(torch.zeros(8, 4, 1, 9), (1, 2), (0, 4), x)  # not 1 x 1
    wide = torch.zeros(8, SAFE_CHANNELS, 1, 1)
    assert not subsamples(wide, (1, 2), (0, 0), torch.zeros(1, SAFE_CHANNELS, 8, 8))


def test_module_is_an_nn_conv2d_with_its_state_and_hooks():
    torch.manual_seed(0)
    ours = Conv2d(4, 8, 1, stride=(2, 1))
    ref = nn.Conv2d(4, 8, 1, stride=(2, 1))
    ref.load_state_dict(ours.state_dict())
    assert isinstance(ours, nn.Conv2d) and ours.state_dict().keys() == ref.state_dict().keys()
    seen = []
    ours.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    x = torch.randn(2, 4, 9, 5)
    torch.testing.assert_close(ours(x), ref(x))
    assert seen == [torch.Size([2, 8, 5, 5])]


_AVX2_TRAINING = textwrap.dedent(
    """
    import torch, torch.nn.functional as F
    from rankzc.models import build_model
    from rankzc.space import Architecture

    torch.set_num_threads(1)
    # depth 4 at the tiny preset: block 1 doubles 4 -> 8 channels with stride 2
    arch = Architecture.parse("11111111-11111111-11111111-11111111")
    torch.manual_seed(0)
    model = build_model(arch, preset="tiny")
    ref = build_model(arch, preset="tiny").double()
    ref.load_state_dict(model.state_dict())
    x = model.example_input(20)
    y = torch.arange(20) % model.num_classes
    for _ in range(5):
        model.zero_grad(); ref.zero_grad()
        F.cross_entropy(model(x), y).backward()
        F.cross_entropy(ref(x.double()), y).backward()
    convs = [n for n, m in model.named_modules()
             if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1) and max(m.stride) > 1]
    assert convs, "no strided 1 x 1 convolution"
    params = dict(ref.named_parameters())
    for n in convs:
        g, r = dict(model.named_parameters())[n + ".weight"].grad, params[n + ".weight"].grad
        err = float((g.double() - r).abs().max() / r.abs().max())
        assert err < 1e-4, (n, err)
    print("ok", len(convs))
    """
)


def test_training_with_onednn_avx2_kernels_has_exact_strided_pointwise_gradients():
    """What a CPU without AVX-512 runs (``ONEDNN_MAX_CPU_ISA=AVX2``; ignored elsewhere):
    without the guard this process crashed (heap corruption) or got wrong gradients."""
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", _AVX2_TRAINING],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("ok ")
