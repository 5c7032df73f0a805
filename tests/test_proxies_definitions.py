"""The five proxies whose definitions follow the study's code (issue 17), on the tiny preset.

Each test fails on the earlier definitions (version 1 of
:data:`rankzc.proxies.registry.DEFINITIONS`): synflow took the absolute value of the fixed
graph operators, grad_sign and epe_nas ran with BatchNorm, nwot folded the persons into
one code per sample with a relative ridge and refused a negative determinant, zen read
the last block at depth 10 and counted the input BatchNorm1d.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rankzc.models import build_model
from rankzc.models.dynamic import tied_attention
from rankzc.models.sampling import randn
from rankzc.proxies import compute_proxies
from rankzc.proxies.context import ProxyContext, bn_free_copy, find_layers, relu_calls
from rankzc.proxies.epe_nas import epe_score
from rankzc.proxies.features import ProxySettings
from rankzc.proxies.registry import DEFINITIONS
from rankzc.proxies.zen import ZEN_MIXUP_GAMMA
from rankzc.space import Architecture

N, T, M = 4, 16, 2


def arch(depth: int) -> Architecture:
    # block 0 has L1 (the partition A itself, negative entries none) and L2 = 2A^2 - I
    # (negative on the diagonal of subsets 1, 2); every block has M_S on
    block = (True, False, False, False, True, True, False, False)
    return Architecture(tuple(block for _ in range(depth)))


def tiny(depth: int = 4, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(arch(depth), "tiny")


def tiny_batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, 3, T, 25, M, generator=g)
    return x, torch.tensor([0, 1, 1, 2])


# ------------------------------------------------------------------------- synflow
def test_synflow_keeps_the_fixed_operators_signed():
    model = tiny()
    x, y = tiny_batch()
    fixed = model.blocks[0].gcn.fixed
    assert (fixed < 0).any()  # L2 = 2A^2 - I has negative entries
    before = compute_proxies(model, (x, y), names="synflow")["synflow"].score
    # flipping the sign of one negative entry changes the score (abs() would not see it)
    k, v, w = (fixed < 0).nonzero()[0].tolist()
    with torch.no_grad():
        fixed[k, v, w] = -fixed[k, v, w]
    after = compute_proxies(model, (x, y), names="synflow")["synflow"].score
    assert before != pytest.approx(after, rel=1e-6)
    assert model.blocks[0].gcn.fixed[k, v, w] > 0  # the model itself is left as it was


def test_synflow_by_hand_on_the_bn_free_copy():
    model = tiny()
    x, y = tiny_batch()
    score = compute_proxies(model, (x, y), names="synflow")["synflow"].score
    net = bn_free_copy(model).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    weights = [m.weight for _, m in find_layers(net)]
    with tied_attention():  # the tie rule of definitions version 3
        out = net(torch.ones(1, 3, T, 25, M, dtype=torch.float64))
    grads = torch.autograd.grad(out.sum(), weights, allow_unused=True)
    pairs = [(w, g) for w, g in zip(weights, grads, strict=True) if g is not None]
    assert len(pairs) < len(weights)  # the attention embeddings get no gradient
    expected = sum(float((w * g).abs().sum().detach()) for w, g in pairs)
    assert score == pytest.approx(expected, rel=1e-12)
    # without the rule the attention embeddings get a gradient too; with the float64
    # softmax's exact backward (definitions version 4) it is the mathematics' (tiny at
    # these saturated logits), not rounding noise times huge logits as before
    out = net(torch.ones(1, 3, T, 25, M, dtype=torch.float64))
    grads = torch.autograd.grad(out.sum(), weights, allow_unused=True)
    untied = sum(float((w * g).abs().sum().detach()) for w, g in zip(weights, grads, strict=True))
    assert untied == pytest.approx(score, rel=1e-9)


# ------------------------------------------------------------- grad_sign and epe_nas
def scramble_batchnorm(model: nn.Module, seed: int = 5) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 3 - 1.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def test_grad_sign_and_epe_nas_do_not_depend_on_batchnorm():
    model = tiny()
    x, y = tiny_batch()
    names = ["grad_sign", "epe_nas"]
    before = compute_proxies(model, (x, y), names=names)
    scramble_batchnorm(model)
    after = compute_proxies(model, (x, y), names=names)
    for name in names:
        assert before[name].score is not None
        assert before[name].score == after[name].score, name


def test_grad_sign_and_epe_nas_by_hand_without_batchnorm():
    model = tiny()
    x, y = tiny_batch()
    res = compute_proxies(model, (x, y), names=["grad_sign", "epe_nas"])
    net = bn_free_copy(model).train()
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
    weights = [m.weight for _, m in find_layers(net)]
    signs = [torch.zeros_like(w) for w in weights]
    for i in range(N):
        loss = F.cross_entropy(net(x[i : i + 1]), y[i : i + 1])
        for s, g in zip(signs, torch.autograd.grad(loss, weights), strict=True):
            s.add_(torch.sign(g))
    expected = sum(float(s.abs().sum()) for s in signs) / sum(s.numel() for s in signs)
    assert res["grad_sign"].score == pytest.approx(expected, rel=1e-12)
    # epe_nas: one batched Jacobian of the BN-free network (nothing couples the samples)
    xb = x.clone().requires_grad_(True)
    out = net(xb)
    (jac,) = torch.autograd.grad(out, xb, grad_outputs=torch.ones_like(out))
    expected = epe_score(jac.reshape(N, -1), y, 5)
    assert res["epe_nas"].score == pytest.approx(expected, rel=1e-4)
    # class 0 and 2 have one sample each: correlation 1 by the explicit rule
    assert epe_score(jac[:1].reshape(1, -1), y[:1], 5) == pytest.approx(math.log(1 + 1e-5))


# ---------------------------------------------------------------------------- nwot
def test_nwot_kernel_has_one_code_per_person():
    model = tiny()
    x, y = tiny_batch()
    ctx = ProxyContext(model, x, y, F.cross_entropy, wants={"forward", "relu_codes"})
    kernel = ctx.shared().nwot_kernel
    assert kernel.shape == (N * M, N * M)
    # by hand: every ReLU output, one row per (sample, person)
    codes: list[torch.Tensor] = []
    net = copy.deepcopy(model).train()
    with torch.no_grad(), relu_calls(lambda a: codes.append((a.reshape(N * M, -1) > 0).double())):
        net(x)
    expected = sum(c @ c.T + (1 - c) @ (1 - c).T for c in codes)
    assert torch.equal(kernel, expected)
    score = compute_proxies(model, (x, y), names="nwot")["nwot"].score
    eye = np.eye(N * M)
    assert score == pytest.approx(np.linalg.slogdet(expected.numpy() + 1e-6 * eye)[1], rel=1e-9)


def test_nwot_duplicate_samples_give_a_finite_score():
    model = tiny()
    x, y = tiny_batch()
    x[1] = x[0]  # identical samples: identical codes, a singular kernel without ridge
    res = compute_proxies(model, (x, y), names="nwot")
    assert res["nwot"].error is None and math.isfinite(res["nwot"].score)


# ----------------------------------------------------------------------------- zen
def zen_by_hand(model: nn.Module, x: torch.Tensor, seed: int, block: int) -> float:
    """Zen as the study: hook on ``block`` (1-based) while the whole net runs; only the
    BatchNorm2d layers are reset and counted. The Gaussian draws are rankzc's
    (:func:`rankzc.models.sampling.randn`: torch's on AVX2 and AVX-512 CPUs, the same
    numbers on every other CPU)."""
    net = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for _, layer in find_layers(net):
            layer.weight.copy_(randn(layer.weight.shape, generator=gen))
            if layer.bias is not None:
                layer.bias.zero_()
        bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
        for bn in bns:
            bn.weight.fill_(1.0)
            bn.bias.zero_()
        a = randn(x.shape, generator=gen)
        eps = randn(x.shape, generator=gen)
        net.train()
        kept = []
        net.blocks[block - 1].register_forward_hook(lambda m, i, o: kept.append(o))
        net(a)
        net(a + ZEN_MIXUP_GAMMA * eps)
        delta = (kept[0] - kept[1]).abs().double().reshape(kept[0].shape[0], -1).sum(1).mean()
        score = math.log(float(delta))
        for bn in bns:
            score += 0.5 * math.log(float(bn.running_var.double().mean()))
    return score


@pytest.mark.parametrize(("depth", "block"), [(10, 9), (4, 4)])
def test_zen_reads_block_nine_at_depth_ten(depth, block):
    model = tiny(depth)
    x, y = tiny_batch()
    score = compute_proxies(model, (x, y), names="zen", seed=3)["zen"].score
    assert score == pytest.approx(zen_by_hand(model, x, 3, block), rel=1e-9)
    if depth == 10:
        last = zen_by_hand(model, x, 3, 10)
        assert score != pytest.approx(last, rel=1e-6)
        opt = compute_proxies(model, (x, y), names="zen", seed=3, options={"zen_block": "last"})
        assert opt["zen"].score == pytest.approx(last, rel=1e-9)


def test_zen_counts_batchnorm2d_only():
    model = tiny(4)
    x, y = tiny_batch()
    score = compute_proxies(model, (x, y), names="zen", seed=3)["zen"].score
    # the input BatchNorm1d's running variance does not enter the score
    with torch.no_grad():
        model.data_bn.running_var.mul_(50.0)
    again = compute_proxies(model, (x, y), names="zen", seed=3)["zen"].score
    assert score == again


# ------------------------------------------------------------------ settings record
def test_settings_record_the_definitions_version():
    assert DEFINITIONS >= 2
    current = ProxySettings(preset="tiny")
    assert current.to_dict()["definitions"] == DEFINITIONS and current.stale_proxies() == []
    # a record written before the field existed is version 1: these five changed since
    old = ProxySettings.from_dict({"preset": "tiny"})
    assert old.definitions == 1
    assert old.stale_proxies() == ["epe_nas", "grad_sign", "nwot", "synflow", "zen"]
    assert old.to_dict() != current.to_dict()


def test_zen_batch_option_sets_the_number_of_gaussian_samples():
    model = tiny()
    x, y = tiny_batch()
    opts = {"zen_batch": 2}
    small = compute_proxies(model, (x[:2], y[:2]), names="zen")["zen"].score
    option = compute_proxies(model, (x, y), names="zen", options=opts)["zen"].score
    whole = compute_proxies(model, (x, y), names="zen")["zen"].score
    assert option == pytest.approx(small, rel=1e-12)
    assert whole != pytest.approx(small, rel=1e-9)
    bad = compute_proxies(model, (x, y), names="zen", options={"zen_batch": 0})["zen"]
    assert bad.score is None and "zen_batch" in bad.error


def test_study_settings_recompute_zen_on_four_samples():
    from rankzc.importers.thesis import study_settings

    assert study_settings(["zen", "flops"])["options"]["zen_batch"] == 4
