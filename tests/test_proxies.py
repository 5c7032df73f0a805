"""Hand-computable checks of the zero-cost proxies on small nets."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from benchdata import PROXIES as PROXIES_IN_STUDY
from torch import nn

from rankzc.errors import RankzcError
from rankzc.proxies import PROXIES, compute_proxies, get_proxy, proxy_names
from rankzc.proxies.context import find_layers
from rankzc.proxies.epe_nas import epe_score
from rankzc.proxies.jacov import jacov_score
from rankzc.proxies.nwot import nwot_logdet

ALL = list(PROXIES_IN_STUDY)


def small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 4),
    )


def batch(n: int = 8, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 6, 6, generator=g), torch.arange(n) % 4


def test_registry_has_the_fourteen_study_proxies():
    assert proxy_names() == ALL
    assert PROXIES["synflow"].needs_data is False
    assert PROXIES["grasp"].needs == ("forward", "loss_grad", "hessian_grad")
    with pytest.raises(RankzcError, match="unknown proxy"):
        get_proxy("nope")


def test_all_proxies_finite_on_a_small_cnn():
    res = compute_proxies(small_cnn(), batch())
    assert list(res) == ALL
    for name, r in res.items():
        assert r.error is None, (name, r.error)
        assert math.isfinite(r.score) and r.seconds >= 0


def test_params_and_flops_exact():
    net = nn.Sequential(nn.Conv2d(3, 5, 3), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 4 * 4, 7))
    x, y = torch.randn(3, 3, 6, 6), torch.tensor([0, 1, 2])
    res = compute_proxies(net, (x, y), names=["params", "flops"])
    assert res["params"].score == 3 * 5 * 9 + 5 + 80 * 7 + 7
    # per sample: conv 2*Cout*Cin*k*k*Hout*Wout, linear 2*in*out
    assert res["flops"].score == 2 * 5 * 3 * 9 * 4 * 4 + 2 * 80 * 7


class NormSoftmaxNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(4)
        self.bn_plain = nn.BatchNorm1d(4, affine=False)
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        a = torch.bmm(x.unsqueeze(2), x.unsqueeze(1))  # (N, 4, 4): not counted
        x = self.bn_plain(self.bn(x)) + a.sum((1, 2)).unsqueeze(1)
        return torch.softmax(self.lin(x), dim=1)


def test_flops_normalisation_and_softmax_rules():
    x = torch.randn(5, 4)
    res = compute_proxies(NormSoftmaxNet(), (x, torch.arange(5) % 3), names="flops")
    # affine BN 8/element, plain BN 4/element, linear 2*4*3, softmax 2*(3*3-1) per row
    assert res["flops"].score == 8 * 4 + 4 * 4 + 2 * 4 * 3 + 2 * (3 * 3 - 1)


def test_params_ignores_frozen_parameters():
    net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    net[0].weight.requires_grad_(False)
    res = compute_proxies(net, (torch.randn(2, 4), torch.tensor([0, 1])), names="params")
    assert res["params"].score == 3 + 6 + 2


@pytest.mark.parametrize("depth", [1, 3])
def test_synflow_product_formula(depth):
    torch.manual_seed(0)
    dims = [4, 5, 3, 6][: depth + 1] if depth < 3 else [4, 5, 3, 6]
    layers = []
    for a, b in zip(dims[:-1], dims[1:], strict=True):
        layers += [nn.Linear(a, b, bias=False), nn.ReLU()]
    net = nn.Sequential(*layers[:-1])
    ws = [m.weight.detach().double().abs() for m in net if isinstance(m, nn.Linear)]
    prod = torch.ones(dims[0], dtype=torch.float64)
    for w in ws:
        prod = w @ prod
    # R is linear in each layer's weights, so sum |theta * dR/dtheta| = R per layer
    expected = len(ws) * float(prod.sum())
    res = compute_proxies(net, (torch.randn(2, dims[0]), torch.tensor([0, 1])), names="synflow")
    assert res["synflow"].score == pytest.approx(expected, rel=1e-12)


def test_grad_norm_snip_plain_against_autograd():
    net = small_cnn()
    x, y = batch()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    res = compute_proxies(net, (x, y), names=["grad_norm", "snip", "plain"])
    ref = small_cnn()
    ref.load_state_dict(state)
    ref.train()
    F.cross_entropy(ref(x), y).backward()
    layers = [m for m in ref.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        gn = sum(float(m.weight.grad.norm()) for m in layers)
        sn = sum(float((m.weight * m.weight.grad).abs().sum()) for m in layers)
        pl = sum(float((m.weight * m.weight.grad).sum()) for m in layers)
    assert res["grad_norm"].score == pytest.approx(gn, rel=1e-5)
    assert res["snip"].score == pytest.approx(sn, rel=1e-5)
    assert res["plain"].score == pytest.approx(pl, rel=1e-4, abs=1e-7)


def test_fisher_and_grasp_against_autograd():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 1, 0, 1])
    res = compute_proxies(net, (x, y), names=["fisher", "grasp"])
    # fisher by hand: activations of both linear layers and their gradients
    a1 = net[0](x)
    a1.retain_grad()
    a2 = net[2](torch.tanh(a1))
    a2.retain_grad()
    F.cross_entropy(a2, y).backward()
    fisher = 0.0
    for act, fan in ((a1, 3), (a2, 4)):
        g = act.detach() * act.grad
        fisher += float(0.5 * g.pow(2).mean(0).sum()) * fan
    assert res["fisher"].score == pytest.approx(fisher, rel=1e-5)
    # grasp: -theta * H g with H g by double backward
    ws = [net[0].weight, net[2].weight]
    g = torch.autograd.grad(F.cross_entropy(net(x), y), ws, create_graph=True)
    z = sum((gi.detach() * gi).sum() for gi in g)
    hg = torch.autograd.grad(z, ws)
    grasp = sum(float((-w * h).sum().detach()) for w, h in zip(ws, hg, strict=True))
    assert res["grasp"].score == pytest.approx(grasp, rel=1e-5)


def test_nwot_known_activation_patterns():
    # identity then ReLU: the codes are the signs of the inputs themselves
    net = nn.Sequential(nn.Identity(), nn.ReLU())
    x = torch.tensor([[1.0, -1.0, 1.0], [1.0, 1.0, -1.0], [-1.0, -1.0, -1.0]])
    codes = (x > 0).double()
    k = codes @ codes.T + (1 - codes) @ (1 - codes).T
    # hand: agreements between rows: (0,1)=1, (0,2)=1, (1,2)=1, diagonal 3
    assert k.tolist() == [[3, 1, 1], [1, 3, 1], [1, 1, 3]]
    ridge = 1e-6  # absolute, as in the study
    expected = math.log(np.linalg.det(np.array(k) + ridge * np.eye(3)))
    res = compute_proxies(net, (x, torch.tensor([0, 1, 2])), names="nwot")
    assert res["nwot"].score == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(math.log(20), rel=1e-5)  # det [[3,1,1],...] = 20


def test_nwot_singular_without_ridge_is_missing():
    net = nn.Sequential(nn.Identity(), nn.ReLU())
    x = torch.tensor([[1.0, -1.0], [1.0, -1.0]])  # identical codes -> singular kernel
    with pytest.warns(RuntimeWarning, match="nwot"):
        res = compute_proxies(
            net, (x, torch.tensor([0, 1])), names="nwot", options={"nwot_ridge": 0}
        )
    assert res["nwot"].score is None and "non-finite" in res["nwot"].error


def test_nwot_study_rule_absolute_ridge_and_any_sign():
    # a singular kernel gives a finite value: log det(K + 1e-6 I), absolute ridge
    # (the old rule added 1e-6 times the mean diagonal: log(8e-6 + ...))
    k = torch.tensor([[2.0, 2.0], [2.0, 2.0]])
    expected = math.log((2 + 1e-6) ** 2 - 4)
    assert nwot_logdet(k) == pytest.approx(expected, rel=1e-6)
    # log|det| whatever the sign of the determinant (the old rule raised)
    k = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert nwot_logdet(k) == pytest.approx(math.log(1 - 1e-12), abs=1e-9)
    # the default network path: duplicate codes stay finite
    net = nn.Sequential(nn.Identity(), nn.ReLU())
    x = torch.tensor([[1.0, -1.0], [1.0, -1.0]])
    res = compute_proxies(net, (x, torch.tensor([0, 1])), names="nwot")
    assert res["nwot"].score == pytest.approx(math.log((2 + 1e-6) ** 2 - 4), rel=1e-6)


def test_jacov_and_epe_formulas():
    rng = np.random.default_rng(0)
    jac = rng.normal(size=(6, 10))
    corr = np.corrcoef(jac)
    v = np.linalg.eigvalsh(corr)
    expected = -np.sum(np.log(v + 1e-5) + 1 / (v + 1e-5))
    assert jacov_score(torch.tensor(jac)) == pytest.approx(expected, rel=1e-10)
    labels = np.array([0, 0, 1, 1, 1, 2])
    exp_epe = 0.0
    for c in (0, 1, 2):
        rows = jac[labels == c]
        cc = np.corrcoef(rows) if len(rows) > 1 else np.ones((1, 1))
        exp_epe += abs(np.sum(np.log(np.abs(cc) + 1e-5)))
    assert epe_score(torch.tensor(jac), torch.tensor(labels), 3) == pytest.approx(exp_epe)


def test_pyg_linear_layers_are_scored():
    from torch_geometric.nn import Linear as PygLinear

    torch.manual_seed(0)
    net = nn.Sequential(PygLinear(5, 8), nn.ReLU(), PygLinear(8, 3))
    assert len(find_layers(net)) == 2
    x, y = torch.randn(6, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    res = compute_proxies(net, (x, y))
    for name in ["synflow", "snip", "grad_norm", "fisher", "l2_norm", "grasp", "grad_sign"]:
        assert res[name].score is not None and res[name].score != 0.0, name


def test_order_does_not_matter_and_model_is_restored():
    net = small_cnn()
    x, y = batch()
    net.eval()
    net[0].bias.requires_grad_(False)
    net[3].weight.grad = torch.full_like(net[3].weight, 0.5)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    first = compute_proxies(net, (x, y), names=ALL)
    second = compute_proxies(net, (x, y), names=list(reversed(ALL)))
    for name in ALL:
        assert first[name].score == second[name].score, name
    after = net.state_dict()
    for k, v in before.items():
        assert torch.equal(after[k], v), k
    assert not net.training and not any(m.training for m in net.modules())
    assert net[0].bias.requires_grad is False and net[0].weight.requires_grad is True
    assert torch.equal(net[3].weight.grad, torch.full_like(net[3].weight, 0.5))
    assert net[0].weight.grad is None


def test_shared_and_separate_passes_agree():
    net, (x, y) = small_cnn(), batch()
    shared = compute_proxies(net, (x, y))
    alone = compute_proxies(net, (x, y), share=False)
    for name in ALL:
        assert shared[name].score == pytest.approx(alone[name].score, rel=1e-9), name


def test_seeded_randomness():
    net, (x, y) = small_cnn(), batch()
    a = compute_proxies(net, (x, y), names="zen", seed=1)["zen"].score
    b = compute_proxies(net, (x, y), names="zen", seed=1)["zen"].score
    c = compute_proxies(net, (x, y), names="zen", seed=2)["zen"].score
    assert a == b and a != c


class ConstantNet(nn.Module):
    """Output independent of the input: the Jacobian is 0, its correlations NaN."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x):
        return self.lin(torch.zeros_like(x))


def test_failures_are_missing_not_zero():
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = compute_proxies(ConstantNet(), (x, y), names=["jacov", "nwot", "params", "snip"])
    assert res["jacov"].score is None and "not finite" in res["jacov"].error
    assert res["nwot"].score is None and "no ReLU ran" in res["nwot"].error
    assert res["params"].score == 8 and res["snip"].score is not None
    assert sum("missing" in str(w.message) for w in caught) == 2


class OomNet(nn.Module):
    """Raises an out-of-memory error on batches larger than ``limit``."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.body = nn.Sequential(
            nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 2)
        )

    def forward(self, x):
        if x.shape[0] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.body(x)


def test_oom_splits_the_batch():
    torch.manual_seed(0)
    x, y = torch.randn(8, 3), torch.tensor([0, 1] * 4)
    net = OomNet(limit=100)
    full = compute_proxies(net, (x, y), names=["grad_norm", "snip", "jacov", "grasp", "fisher"])
    net.limit = 3
    with pytest.warns(RuntimeWarning):
        split = compute_proxies(
            net, (x, y), names=["grad_norm", "snip", "jacov", "grasp", "nwot", "fisher"]
        )
    for name in ["grad_norm", "snip", "jacov", "grasp", "fisher"]:
        assert full[name].score is not None
        assert split[name].score == pytest.approx(full[name].score, rel=1e-5), name
    assert split["nwot"].score is None and "whole minibatch" in split["nwot"].error
    with pytest.warns(RuntimeWarning, match="snip"):
        no_split = compute_proxies(net, (x, y), names=["snip"], split_on_oom=False)
    assert no_split["snip"].score is None and "OutOfMemoryError" in no_split["snip"].error


class FunctionalReluNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 6), nn.Linear(6, 3)

    def forward(self, x):
        return self.b(torch.nn.functional.relu(self.a(x)))


def test_functional_relu_counts_like_a_module():
    torch.manual_seed(0)
    fnet = FunctionalReluNet()
    mnet = nn.Sequential(fnet.a, nn.ReLU(), fnet.b)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    names = ["nwot", "zen"]
    a, b = compute_proxies(fnet, (x, y), names=names), compute_proxies(mnet, (x, y), names=names)
    assert a["nwot"].score == b["nwot"].score and a["nwot"].score is not None
    assert a["zen"].score == b["zen"].score


def test_dropout_is_seeded_and_global_rng_untouched():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    state = torch.get_rng_state()
    a = compute_proxies(net, (x, y), names=["grad_norm", "grad_sign", "nwot"], seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    b = compute_proxies(net, (x, y), names=["grad_norm", "grad_sign", "nwot"], seed=4)
    c = compute_proxies(net, (x, y), names=["grad_norm"], seed=5)
    assert all(a[n].score == b[n].score for n in a)
    assert a["grad_norm"].score != c["grad_norm"].score
