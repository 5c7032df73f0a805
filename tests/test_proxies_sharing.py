"""Shared passes give every proxy the value of its own, unshared computation (issue 26).

On the GCN-NAS network (tiny preset), for all 14 proxies: ``compute_proxies`` with
shared passes against ``share=False`` (one pass per proxy), and each shortcut of the
shared passes against the route it replaces: nwot's codes taken from the gradient
pass's forward against the codes pass of their own, fisher's backward to the layer
outputs against the backward to the weights, fisher read from the fused path's output
taps against forward hooks on every layer, and the BatchNorm-free pass's signs taken
for many samples at once against :func:`exact_sign` per sample.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F

from rankzc.models import build_model
from rankzc.proxies import compute_proxies, context, proxy_names
from rankzc.proxies.compute import share_groups
from rankzc.proxies.context import ProxyContext, code_agreement, exact_sign, sign_counts
from rankzc.space import sample_architectures

ALL = proxy_names()


def gcn_case(depth: int, seed: int = 0):
    arch = sample_architectures(1, depths=(depth,), seed=seed + 5)[0]
    torch.manual_seed(seed)
    model = build_model(arch, "tiny")
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(6, 3, 16, 25, 2, generator=g)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    return model, (x, y)


@pytest.mark.parametrize(("depth", "seed"), [(4, 0), (6, 1), (10, 2)])
def test_shared_passes_give_the_unshared_values_on_the_gcn_nas_network(depth, seed):
    model, batch = gcn_case(depth, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no proxy may go missing
        shared = compute_proxies(model, batch, names=ALL, seed=0)
        alone = compute_proxies(model, batch, names=ALL, seed=0, share=False)
    assert len(shared) == 14
    for name in ALL:
        a, b = shared[name].score, alone[name].score
        assert a is not None and b is not None, name
        assert a == pytest.approx(b, rel=1e-12, abs=0.0), name
    assert shared["nwot"].score == alone["nwot"].score  # the same integer kernel


def count_forwards(model) -> list[int]:
    calls = [0]
    # a hook on the whole network (not on a convolution) keeps its fused path
    model.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_nwot_codes_come_from_the_gradient_pass_without_a_forward_of_their_own():
    model, (x, y) = gcn_case(4)
    calls = count_forwards(model)
    own = ProxyContext(model, x, y, F.cross_entropy, wants={"forward", "relu_codes"}).shared()
    assert calls[0] == 1
    wants = {"forward", "relu_codes", "loss_grad", "jacobian"}
    tapped = ProxyContext(model, x, y, F.cross_entropy, wants=wants).shared()
    assert calls[0] == 2  # one forward served the gradients, the Jacobian and the codes
    assert tapped.relu_error is None and tapped.relu_count == own.relu_count > 0
    assert torch.equal(tapped.nwot_kernel, own.nwot_kernel)
    # where the gradient pass is chunked the codes keep their own whole-minibatch forward
    ctx = ProxyContext(model, x, y, F.cross_entropy, wants=wants)
    ctx.splits = 2
    split = ctx.shared()
    assert calls[0] == 5 and torch.equal(split.nwot_kernel, own.nwot_kernel)


def test_fisher_from_the_layer_output_gradients_equals_the_weight_route():
    model, (x, y) = gcn_case(6, 1)
    alone = ProxyContext(model, x, y, F.cross_entropy, wants={"forward", "fisher"}).shared()
    assert alone.loss_grads is None  # no weight gradient was computed
    both = ProxyContext(model, x, y, F.cross_entropy, wants={"fisher", "loss_grad"}).shared()
    assert both.loss_grads is not None
    assert len(alone.fisher) == len(both.fisher)
    for a, b in zip(alone.fisher, both.fisher, strict=True):
        assert a == pytest.approx(b, rel=1e-12, abs=0.0)
    assert sum(alone.fisher) > 0


def unfused(model):
    """A copy of the GCN-NAS network that calls every convolution as a module."""
    ref = copy.deepcopy(model)
    for m in ref.modules():
        if hasattr(m, "fuse"):
            m.fuse = False
    return ref


@pytest.mark.parametrize(("depth", "seed"), [(4, 0), (6, 1), (8, 2), (10, 3)])
def test_fisher_from_output_taps_equals_forward_hooks_layer_by_layer(depth, seed):
    # float64, so that the fused path's other order of summation is far below the
    # tolerance; every layer the hooks see must be tapped (none left at 0)
    model, (x, y) = gcn_case(depth, seed)
    model, x = model.double(), x.double()
    ref = unfused(model)
    assert context.reports_outputs(model) and not context.reports_outputs(ref)
    wants = {"forward", "fisher"}
    tapped = ProxyContext(model, x, y, F.cross_entropy, wants=wants).shared().fisher
    hooked = ProxyContext(ref, x, y, F.cross_entropy, wants=wants).shared().fisher
    assert len(tapped) == len(hooked) == len(context.find_layers(model))
    assert all(h > 0 for h in hooked[-5:])  # the last block and the classifier
    for a, b in zip(tapped, hooked, strict=True):
        assert a == pytest.approx(b, rel=1e-10, abs=1e-300)


def test_fisher_shares_the_one_gradient_pass_on_the_fused_network():
    model, (x, y) = gcn_case(4)
    assert share_groups(ALL, model) == [ALL]
    assert len(share_groups(ALL, unfused(model))) == 2  # forward hooks: a pass of its own
    assert len(share_groups(ALL)) == 2
    calls = count_forwards(model)
    wants = {"forward", "relu_codes", "loss_grad", "hessian_grad", "jacobian", "fisher"}
    res = ProxyContext(model, x, y, F.cross_entropy, wants=wants).shared()
    assert calls[0] == 1  # one forward: gradients, grasp, jacov, nwot's codes and fisher
    alone = ProxyContext(model, x, y, F.cross_entropy, wants={"forward", "fisher"}).shared()
    assert res.fisher == pytest.approx(alone.fisher, rel=1e-12, abs=0.0)
    assert sum(res.fisher) > 0
    assert res.relu_error is None and res.relu_count > 0


@pytest.mark.parametrize("wants", [{"fisher"}, {"fisher", "loss_grad", "jacobian"}])
def test_fisher_route_with_recomputed_blocks(wants):
    model, (x, y) = gcn_case(4, 2)
    plain = ProxyContext(model, x, y, F.cross_entropy, wants=wants).shared()
    ctx = ProxyContext(model, x, y, F.cross_entropy, wants=wants)
    ctx.recompute = True
    rec = ctx.shared()
    for a, b in zip(plain.fisher, rec.fisher, strict=True):
        assert a == pytest.approx(b, rel=1e-9, abs=0.0)
    # jacov's backward recomputes the blocks again: their outputs must not be kept
    # (they were, for every block, until the end of the pass: the study-scale run's
    # memory doubled)
    assert ctx._fisher_saved == {}


def test_sign_counts_equal_exact_sign_row_by_row():
    g = torch.Generator().manual_seed(3)
    shapes = [(4, 3, 1, 1), (5,), (2, 7)]
    sizes = [int(torch.tensor(s).prod()) for s in shapes]
    rows = []
    for r in range(6):
        parts = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
        parts[0].view(-1)[r] = 1e-13  # inside the dead zone: sign 0
        if r == 2:
            parts[1].zero_()  # an unused tensor
        rows.append(parts)
    flat = torch.stack([torch.cat([p.reshape(-1) for p in parts]) for parts in rows])
    got = sign_counts(flat, sizes).split(sizes)
    for k, shape in enumerate(shapes):
        expected = sum(exact_sign(parts[k]) for parts in rows)
        assert torch.equal(got[k].view(shape), expected), k


def test_grad_sign_does_not_depend_on_the_sign_buffer(monkeypatch):
    model, batch = gcn_case(4, 1)
    names = ["grad_sign", "epe_nas"]
    ref = compute_proxies(model, batch, names=names)
    monkeypatch.setattr(context, "SIGN_CHUNK_BYTES", 1)  # one sample per buffer
    small = compute_proxies(model, batch, names=names)
    for name in names:
        assert small[name].score == ref[name].score, name


def test_code_agreement_counts_agreeing_units_exactly():
    g = torch.Generator().manual_seed(0)
    for rows, units in [(1, 1), (7, 33), (12, 5000)]:
        codes = torch.rand(rows, units, generator=g) > 0.3
        c = codes.double()
        expected = c @ c.T + (1 - c) @ (1 - c).T
        assert torch.equal(code_agreement(codes), expected)


def test_synflow_takes_the_bn_free_copy_only_unchanged_and_once():
    model, (x, y) = gcn_case(4, 3)
    ctx = ProxyContext(model, x, y, F.cross_entropy, wants={"bn_free_signs"})
    ctx.shared()
    net = ctx._bn_free_net[0]
    assert ctx.bn_free_double() is net  # handed over
    again = ctx.bn_free_double()  # a second call copies
    assert again is not net and again.state_dict().keys() == net.state_dict().keys()
    ctx.reset_shared(1)
    ctx.shared()
    net = ctx._bn_free_net[0]
    with torch.no_grad():
        next(net.parameters()).mul_(2.0)  # changed since it was made: not handed over
    fresh = ctx.bn_free_double()
    assert fresh is not net
    ref = {k: v.double() for k, v in model.state_dict().items() if v.is_floating_point()}
    for k, v in fresh.state_dict().items():
        if k in ref:
            assert torch.equal(v, ref[k]), k
