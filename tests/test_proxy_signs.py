"""Every proxy's sign and absolute value, on tiny networks.

Each test fails when its proxy's result is negated or when an absolute value in its
definition is dropped or added. The checks are properties that hold under the published
definitions (hand computations where the definition fixes the number, otherwise an
ordering the definition implies, chosen where both values are negative so that an added
absolute value reverses it), so they survive changes of implementation detail.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rankzc.proxies import compute_proxies


def score(net: nn.Module, x: torch.Tensor, y: torch.Tensor, name: str, **kw) -> float:
    res = compute_proxies(net, (x, y), names=[name], **kw)[name]
    assert res.error is None, (name, res.error)
    return float(res.score)


def mlp(seed: int = 0, width: int = 16, n_in: int = 4, n_out: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, width), nn.ReLU(), nn.Linear(width, n_out))


def data(n: int = 9, same: bool = False, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    if same:
        x = x[:1].repeat(n, 1)
    return x, torch.arange(n) % 3


def test_params_and_flops_are_positive_counts():
    net = mlp()
    x, y = data()
    assert score(net, x, y, "params") == 4 * 16 + 16 + 16 * 3 + 3
    assert score(net, x, y, "flops") == 2 * 4 * 16 + 2 * 16 * 3


def test_l2_norm_is_the_sum_of_weight_norms_and_ignores_signs():
    net = mlp()
    x, y = data()
    hand = float(net[0].weight.detach().norm() + net[2].weight.detach().norm())
    assert score(net, x, y, "l2_norm") == pytest.approx(hand, rel=1e-6)
    with torch.no_grad():
        net[2].weight.mul_(-1)
    assert score(net, x, y, "l2_norm") == pytest.approx(hand, rel=1e-6)


def test_synflow_is_positive_sign_blind_and_grows_with_weights():
    """Synflow linearises the network with |theta|: negating a layer's weights changes nothing
    (without the absolute value it would, through the ReLU), doubling a layer's weights
    raises it, and it is positive."""
    net = mlp(width=6)
    x, y = data()
    base = score(net, x, y, "synflow")
    assert base > 0
    with torch.no_grad():
        net[0].weight.mul_(-1)
    assert score(net, x, y, "synflow") == pytest.approx(base, rel=1e-9)
    with torch.no_grad():
        net[2].weight.mul_(2)
    assert score(net, x, y, "synflow") > base * 1.5


def test_zen_grows_with_the_width_of_the_features():
    """Zen is log E sum_features |f(x) - f(x + gamma eps)|: 64 output features give about
    log 64 more than one. Both values are negative here (gamma = 1e-2 on a single linear
    layer), so negating zen or taking its absolute value reverses the order."""
    torch.manual_seed(0)
    x = torch.randn(8, 2)
    y = torch.arange(8) % 2
    narrow = score(nn.Sequential(nn.Linear(2, 1)), x, y, "zen")
    wide = score(nn.Sequential(nn.Linear(2, 64)), x, y, "zen")
    assert narrow < 0 and wide < 0
    assert wide - narrow == pytest.approx(math.log(64), abs=1.5)


def test_grad_sign_counts_agreeing_signs():
    """Every sample of class 0 with positive inputs gives the loss gradient of W[0] negative
    and of W[1] positive signs: |sum of signs| is the batch size for every weight. With the
    classes alternating over identical inputs the signs cancel and the score is 0."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 2, bias=False))
    x = torch.rand(6, 3) + 0.1
    agree = score(net, x, torch.zeros(6, dtype=torch.long), "grad_sign")
    # the mean over weights (the study) gives 6, the sum over the 6 weights 36
    assert agree in (6.0, 36.0)
    same = x[:1].repeat(6, 1)
    cancel = score(net, same, torch.arange(6) % 2, "grad_sign")
    assert cancel == 0.0


def autograd_terms(net: nn.Module, x, y):
    weights = [net[0].weight, net[2].weight]
    loss = F.cross_entropy(net(x), y)
    grads = torch.autograd.grad(loss, weights, create_graph=True)
    hg = torch.autograd.grad(sum((g * g.detach()).sum() for g in grads), weights)
    return weights, [g.detach() for g in grads], hg


def test_gradient_proxies_against_autograd_with_mixed_signs():
    net = mlp(seed=3)
    x, y = data()
    weights, grads, hg = autograd_terms(net, x, y)
    prods = [(w.detach() * g).double() for w, g in zip(weights, grads, strict=True)]
    plain = float(sum(p.sum() for p in prods))
    snip = float(sum(p.abs().sum() for p in prods))
    grad_norm = float(sum(g.double().norm() for g in grads))
    grasp = float(sum((-w.detach() * h).double().sum() for w, h in zip(weights, hg, strict=True)))
    # mixed signs: the absolute value matters for snip and plain
    assert snip > abs(plain) * 1.2 and grasp != 0
    assert score(net, x, y, "snip") == pytest.approx(snip, rel=1e-5)
    assert score(net, x, y, "plain") == pytest.approx(plain, rel=1e-4, abs=1e-7)
    assert score(net, x, y, "grad_norm") == pytest.approx(grad_norm, rel=1e-5)
    assert score(net, x, y, "grasp") == pytest.approx(grasp, rel=1e-4)
    assert score(net, x, y, "fisher") > 0  # a sum of squares


@pytest.mark.parametrize("name", ["nwot", "jacov", "epe_nas"])
def test_distinct_inputs_score_higher_than_identical_ones(name):
    """nwot (log det of the activation-code kernel), jacov (-sum log(lambda + k) + ... of the
    Jacobian correlation) and epe_nas (sum_c |sum log(|rho| + k)|) all reward samples that
    the network tells apart: identical inputs give identical codes and Jacobians, the
    lowest value each definition allows."""
    net = mlp(seed=2, width=32)
    distinct = score(net, *data(), name)
    same = score(net, *data(same=True), name)
    assert distinct > same
    if name == "jacov":  # both negative: an absolute value would reverse the order
        assert same < distinct < 0
    if name == "epe_nas":  # |rho| = 1 everywhere gives log(1 + k) ~ 0 per entry
        assert 0 <= same < 1e-3 < distinct
