"""Tests of the GCN-NAS network port (rankzc.models)."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from benchdata import STUDY_FIRST_WEIGHTS

from rankzc.errors import RankzcError
from rankzc.models import (
    PRESETS,
    GCNNASNet,
    UnitGCN,
    build_model,
    channel_plan,
    count_parameters,
    fixed_operators,
    ntu_skeleton,
    spatial_partition,
)
from rankzc.space import DEPTHS, Architecture, sample_architectures

# (architecture, params) recorded by the study (zero_cost_scores.params.score); the first
# entry is the first file in sorted order (006b3152...json), given as its weights matrix.
W_FIRST = STUDY_FIRST_WEIGHTS
RECORDED = [
    ("01110101-11001110-11000010-01100110-00101010-00100011-10111001-01100111-11000100-01011011",
     7100230),  # 00c8b5f3...json, depth 10
    ("11111111-10110010-00010100-00010110-00000100-01001001", 3402042),  # 00e2ee47..., depth 6
    ("11100001-01100100-11100010-01100010-10111110-01111101", 3964794),  # 00e5a153..., depth 6
    ("01011111-11111100-01101010-00000111-11011101-00100100-00111101-10101100",
     3550080),  # 034f8b06..., depth 8
]  # fmt: skip


def _meta_params(arch: Architecture) -> int:
    with torch.device("meta"):
        model = build_model(arch, preset="ntu60")
    return count_parameters(model)


def _thesis_records(thesis_dir, step: int = 1):
    files = sorted(thesis_dir.glob("*.json"))
    assert len(files) == 693
    for f in files[::step]:
        (rec,) = json.loads(f.read_text()).values()
        yield f.name, rec["weights"], int(rec["zero_cost_scores"]["params"]["score"])


# ---------------------------------------------------------------- graph
def test_skeleton_and_partition():
    g = ntu_skeleton()
    assert g.num_nodes == 25 and g.edge_index.shape == (2, 24)
    A = spatial_partition()
    assert A.shape == (3, 25, 25) and A.dtype == torch.float32
    assert torch.equal(A[0], torch.eye(25))
    # bone (1, 2) inward: child 0 -> parent 1 sets A[1][1, 0]; joint 1 has one parent.
    assert A[1][1, 0] == 1 and A[1][0, 1] == 0
    # joint 21 (index 20) has 4 children -> outward column 20 holds 1/4 on each.
    assert torch.allclose(A[2][:, 20][A[2][:, 20] > 0], torch.full((4,), 0.25))
    for k in (1, 2):
        sums = A[k].sum(0)
        assert torch.all(((sums - 1).abs() < 1e-6) | (sums == 0))
    assert int((A[1] > 0).sum()) == 24 and int((A[2] > 0).sum()) == 24


def test_fixed_operators_are_entrywise():
    A = spatial_partition()
    ops = fixed_operators(A)
    eye = torch.eye(25)
    assert torch.equal(ops["L1"], A)
    assert torch.allclose(ops["L2"], 2 * A * A - eye)
    assert torch.allclose(ops["L3"], 4 * A**3 - 3 * A)
    assert torch.allclose(ops["L4"], 8 * A**4 - 8 * A**2 + eye)
    assert torch.allclose(ops["Ln4"], torch.softmax(ops["L4"] / 25, dim=-2))
    assert torch.allclose(ops["Ln4"].sum(-2), torch.ones(3, 25))
    # differs from the matrix polynomial 2 A @ A - I on the outward subset
    assert not torch.allclose(ops["L2"][2], 2 * A[2] @ A[2] - eye)


def test_channel_plans():
    assert channel_plan(4) == [(3, 64, 1), (64, 128, 2), (128, 256, 2), (256, 256, 1)]
    assert [p[1:] for p in channel_plan(10)] == [
        (64, 1), (64, 1), (64, 1), (64, 1), (128, 2), (128, 1), (128, 1), (256, 2),
        (256, 1), (256, 1),
    ]  # fmt: skip
    assert [p[1] for p in channel_plan(6, width=0.25)] == [16, 16, 32, 32, 64, 64]
    assert sum(s == 2 for *_, s in channel_plan(8)) == 2
    with pytest.raises(RankzcError, match="width"):
        channel_plan(4, width=0.01)


# ---------------------------------------------------------------- parameter counts
def test_params_recorded_literals():
    assert _meta_params(Architecture.from_weights(W_FIRST)) == 3341748
    for text, params in RECORDED:
        assert _meta_params(Architecture.parse(text)) == params, text


def test_params_real_module_matches_meta():
    arch = Architecture.from_weights(W_FIRST)
    torch.manual_seed(0)
    model = build_model(arch, preset="ntu60")
    assert count_parameters(model) == 3341748
    # buffers (A and the fixed operators) are not parameters
    names = {n for n, _ in model.named_parameters()}
    assert not any(n.endswith((".A", ".fixed")) for n in names)
    assert any(n.endswith("gcn.fixed") for n, _ in model.named_buffers())


@pytest.mark.shared
def test_params_thesis_subset(thesis_dir):
    for name, weights, params in _thesis_records(thesis_dir, step=23):
        assert _meta_params(Architecture.from_weights(weights)) == params, name


@pytest.mark.slow
@pytest.mark.shared
def test_params_thesis_all_693(thesis_dir):
    bad = [
        name
        for name, weights, params in _thesis_records(thesis_dir)
        if _meta_params(Architecture.from_weights(weights)) != params
    ]
    assert bad == []


def test_m_st_registration_quirk():
    arch = Architecture.parse("-".join(["00000001"] * 4))
    model = build_model(arch, preset="tiny")
    gcn = model.blocks[1].gcn
    mod = gcn.dynamic["M_ST"]
    assert [c.kernel_size[0] for c in mod.P] == [1, 9, 1, 9, 1, 9]
    assert [P.kernel_size[0] for P, _ in mod.used()] == [1, 9, 1]
    c_in, ce = gcn.in_channels, gcn.inter_channels
    expected = 2 * 3 * ((c_in * ce + ce) + (9 * c_in * ce + ce))
    assert sum(p.numel() for p in mod.parameters()) == expected
    model(model.example_input(2)).sum().backward()
    assert all(mod.P[i].weight.grad is None for i in (3, 4, 5))
    assert all(mod.P[i].weight.grad is not None for i in (0, 1, 2))
    assert set(gcn.dynamic) == {"M_ST"}


# ---------------------------------------------------------------- forward / backward
def _patterns(depth: int, n: int, seed: int) -> list[Architecture]:
    return sample_architectures(n, depths=[depth], seed=seed)


def _check_step(model: GCNNASNet, batch: int, frames: int) -> None:
    x = model.example_input(batch, num_frames=frames)
    out = model(x)
    assert out.shape == (batch, model.num_classes)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert model.blocks[0].gcn.PA.grad is not None


@pytest.mark.parametrize("depth", DEPTHS)
def test_tiny_forward_backward(depth):
    extremes = [
        Architecture.parse("-".join(["11111111"] * depth)),
        Architecture.parse("-".join(["00000100"] * depth)),
    ]
    for arch in _patterns(depth, 3, seed=depth) + extremes:
        torch.manual_seed(0)
        _check_step(build_model(arch, preset="tiny"), batch=2, frames=12)


@pytest.mark.parametrize("depth", DEPTHS)
def test_cpu_forward_backward(depth):
    for arch in _patterns(depth, 2, seed=100 + depth):
        torch.manual_seed(0)
        _check_step(build_model(arch, preset="cpu"), batch=2, frames=16)


def test_ntu60_forward_backward_small():
    torch.manual_seed(0)
    model = build_model(Architecture.from_weights(W_FIRST), preset="ntu60")
    assert model.num_classes == 60 and model.num_person == 2
    _check_step(model, batch=1, frames=8)


@pytest.mark.parametrize("depth", DEPTHS)
def test_ntu60_forward_backward_all_depths(depth):
    for arch in _patterns(depth, 2, seed=depth):
        torch.manual_seed(0)
        _check_step(build_model(arch, preset="ntu60"), batch=2, frames=16)


def test_eval_mode_and_overrides():
    arch = sample_architectures(1, depths=[4], seed=5)[0]
    model = build_model(arch, preset="tiny", num_classes=7, num_person=1, in_channels=2)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(3, 2, 10, 25, 1))
    assert out.shape == (3, 7)
    model = build_model(str(arch), preset="cpu", width=0.125, num_frames=20)
    assert model.example_input(1).shape == (1, 3, 20, 25, 2)
    assert model.blocks[0].gcn.out_channels == 8


def test_presets_listed():
    assert set(PRESETS) == {"ntu60", "cpu", "tiny"}
    assert PRESETS["ntu60"]["num_classes"] == 60 and PRESETS["ntu60"]["width"] == 1.0


# ---------------------------------------------------------------- determinism & init
def test_same_seed_same_model():
    arch = sample_architectures(1, depths=[6], seed=9)[0]
    x = torch.randn(2, 3, 12, 25, 2)
    outs, states = [], []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        model = build_model(arch, preset="tiny")
        states.append(model.state_dict())
        outs.append(model(x))
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert torch.equal(outs[0], outs[1])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])


def test_initialisation():
    torch.manual_seed(0)
    model = build_model(Architecture.parse("-".join(["11111111"] * 4)), preset="ntu60")
    gcn = model.blocks[2].gcn
    assert torch.all(gcn.PA == 1e-6)
    assert torch.all(gcn.bn.weight == 1e-6) and torch.all(gcn.bn.bias == 0)
    assert torch.all(model.blocks[2].tcn.bn.weight == 1)
    w = gcn.conv_d[0].weight
    expected = math.sqrt(2 / (gcn.out_channels * gcn.in_channels * 3))
    assert abs(w.std().item() / expected - 1) < 0.05
    assert torch.all(gcn.conv_d[0].bias == 0)
    conv = model.blocks[2].tcn.conv  # 256 out, 9x1: kaiming fan_out std sqrt(2/(256*9))
    assert abs(conv.weight.std().item() / math.sqrt(2 / (256 * 9)) - 1) < 0.05
    assert torch.all(conv.bias == 0)
    fc_std = model.fc.weight.std().item()
    assert abs(fc_std / math.sqrt(2 / 60) - 1) < 0.1
    assert torch.all(model.data_bn.weight == 1)
    assert model.blocks[0].residual is None
    assert isinstance(model.blocks[3].residual, torch.nn.Identity)


# ---------------------------------------------------------------- exactness of the fused unit
ALL_DYNAMIC = ["100", "010", "001", "110", "101", "011", "111"]


@pytest.mark.parametrize("dyn", ALL_DYNAMIC)
@pytest.mark.parametrize("fixed", ["00000", "10101", "11111", "01000"])
def test_fused_unit_matches_reference_loop(fixed, dyn):
    torch.manual_seed(1)
    sw = [c == "1" for c in fixed + dyn]
    for c_in, c_out in ((8, 8), (4, 16)):
        unit = UnitGCN(c_in, c_out, spatial_partition(), sw)
        with torch.no_grad():  # move away from the near-zero init so errors would show
            for p in unit.parameters():
                p.add_(0.2 * torch.randn_like(p))
        x = torch.randn(3, c_in, 10, 25)
        assert torch.allclose(unit(x), unit.forward_reference(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dense_and_sparse_aggregation_agree(seed):
    arch = sample_architectures(1, seed=seed)[0]
    torch.manual_seed(seed)
    dense = build_model(arch, preset="tiny")
    with torch.no_grad():
        for p in dense.parameters():
            p.add_(0.1 * torch.randn_like(p))
    sparse = build_model(arch, preset="tiny", aggregation="sparse")
    sparse.load_state_dict(dense.state_dict())
    x = dense.example_input(2)
    y_d, y_s = dense(x), sparse(x)
    assert torch.allclose(y_d, y_s, atol=1e-5, rtol=1e-5)
    y_d.sum().backward()
    y_s.sum().backward()
    for (name, p), q in zip(dense.named_parameters(), sparse.parameters(), strict=True):
        if p.grad is None:
            assert q.grad is None
        else:
            assert torch.allclose(p.grad, q.grad, atol=1e-5, rtol=1e-4), name


# ---------------------------------------------------------------- errors
def test_bad_inputs():
    arch = sample_architectures(1, depths=[4], seed=0)[0]
    with pytest.raises(RankzcError, match="preset"):
        build_model(arch, preset="huge")
    with pytest.raises(RankzcError, match="override"):
        build_model(arch, preset="tiny", depth=4)
    with pytest.raises(RankzcError, match="aggregation"):
        build_model(arch, preset="tiny", aggregation="magic")
    with pytest.raises(RankzcError, match="num_classes"):
        build_model(arch, preset="tiny", num_classes=0)
    with pytest.raises(RankzcError, match="width"):
        build_model(arch, preset="tiny", width=0.01)
    with pytest.raises(RankzcError, match="rule dynamic-module: block 2"):
        build_model("00000100-11111000-00000100-00000100", preset="tiny")
    with pytest.raises(ValueError, match="rule depth"):
        build_model("00000100-00000100-00000100", preset="tiny")
    with pytest.raises(RankzcError, match="arch"):
        build_model(42, preset="tiny")  # type: ignore[arg-type]
    model = build_model(arch, preset="tiny")
    with pytest.raises(ValueError, match="input"):
        model(torch.randn(2, 3, 8, 25))
    with pytest.raises(ValueError, match="input"):
        model(torch.randn(2, 3, 8, 25, 1))


@pytest.mark.parametrize("aggregation", ["dense", "sparse"])
def test_fused_and_module_calls_agree_and_hooks_see_every_conv(aggregation):
    arch = Architecture.parse("10111111-01000111-11111011-00000001")
    torch.manual_seed(0)
    fused = build_model(arch, preset="tiny", aggregation=aggregation)
    with torch.no_grad():
        for p in fused.parameters():
            p.add_(0.1 * torch.randn_like(p))
    plain = build_model(arch, preset="tiny", aggregation=aggregation, fuse=False)
    plain.load_state_dict(fused.state_dict())
    x = fused.example_input(2)
    assert torch.allclose(fused(x), plain(x), atol=1e-5, rtol=1e-5)

    called: list[str] = []
    convs = {
        name: m
        for name, m in fused.named_modules()
        if isinstance(m, torch.nn.Conv2d) and name.split(".")[-1] not in {"3", "4", "5"}
    }
    # every registered conv except the unused M_ST entries 3-5
    handles = [
        m.register_forward_hook(lambda mod, i, o, name=name: called.append(name))
        for name, m in convs.items()
    ]
    y_hooked = fused(x)
    for h in handles:
        h.remove()
    assert set(convs) - set(called) == set()
    assert torch.allclose(y_hooked, plain(x), atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- the fast path (issue 26)
def _reference_forward():
    """``benchmarks/model_reference.py``: the forward pass as it was before issue 26."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "model_reference.py"
    spec = importlib.util.spec_from_file_location("model_reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.reference_forward


@pytest.mark.parametrize(("preset", "depth"), [("tiny", 4), ("tiny", 10), ("cpu", 6)])
def test_fast_path_gives_the_previous_logits_and_gradients(preset, depth):
    reference_forward = _reference_forward()
    arch = sample_architectures(1, depths=[depth], seed=depth)[0]
    torch.manual_seed(0)
    model = build_model(arch, preset=preset)
    with torch.no_grad():  # away from the near-zero initialisation: every unit shows
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x = model.example_input(3)
    y = torch.randint(0, model.num_classes, (3,))
    new, old = model(x), reference_forward(model, x)
    assert (new - old).abs().max() <= 1e-5
    # gradients in float64: in float32 both sides' rounding flips the odd ReLU whose input
    # is within rounding of 0, and then their gradients differ where it did
    exact = copy.deepcopy(model).double()
    params = list(exact.parameters())
    loss = torch.nn.functional.cross_entropy
    g_new = torch.autograd.grad(loss(exact(x.double()), y), params, allow_unused=True)
    old = reference_forward(exact, x.double())
    g_old = torch.autograd.grad(loss(old, y), params, allow_unused=True)
    scale = max(float(g.abs().max()) for g in g_old if g is not None)
    for a, b in zip(g_new, g_old, strict=True):
        assert (a is None) == (b is None)  # the unused M_ST entries get none either way
        if b is not None:
            assert (a - b).abs().max() <= 1e-10 * scale


def test_fast_path_double_backward_float64_and_vmap():
    """GraSP's Hessian-vector product, the float64 pass and torch.func per-sample use."""
    from torch.func import functional_call, grad, vmap

    reference_forward = _reference_forward()
    arch = Architecture.parse("10111111-01000111-11111011-00000001")
    torch.manual_seed(0)
    model = build_model(arch, preset="tiny").double()
    x, y = model.example_input(2).double(), torch.tensor([1, 3])
    params = list(model.parameters())
    v = [torch.randn_like(p) for p in params]

    def hvp(forward):
        loss = torch.nn.functional.cross_entropy(forward(x), y)
        g = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        s = sum((a * b).sum() for a, b in zip(g, v, strict=True) if a is not None)
        return torch.autograd.grad(s, params, allow_unused=True)

    h_new, h_old = hvp(model), hvp(lambda z: reference_forward(model, z))
    pairs = [(a, b) for a, b in zip(h_new, h_old, strict=True) if b is not None]
    scale = max(float(b.abs().max()) for _, b in pairs)
    assert all((a - b).abs().max() <= 1e-10 * scale for a, b in pairs)
    model.eval()  # per-sample gradients without batch statistics
    named = {k: p.detach() for k, p in model.named_parameters()}
    buffers = dict(model.named_buffers())

    def loss(p, xi, yi):
        out = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return torch.nn.functional.cross_entropy(out, yi.unsqueeze(0))

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0))(named, x, y)
    one = grad(loss)(named, x[1], y[1])
    assert all(torch.allclose(per_sample[k][1], one[k], atol=1e-12) for k in one)


def test_partition_without_pyg_equals_pygs():
    from torch_geometric.utils import degree, to_dense_adj

    def pyg(edge_index):
        adj = to_dense_adj(edge_index, max_num_nodes=25)[0]
        deg = degree(edge_index[0], num_nodes=25, dtype=adj.dtype)
        inv = torch.where(deg > 0, 1.0 / deg.clamp(min=1), torch.zeros_like(deg))
        return (adj * inv[:, None]).t()

    g = ntu_skeleton()
    A = spatial_partition()
    assert torch.equal(A[1], pyg(g.edge_index)) and torch.equal(A[2], pyg(g.edge_index.flip(0)))


def test_the_network_does_not_import_pyg():
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from rankzc.models import build_model\n"
        "m = build_model('00000100-00000100-00000100-00000100', 'tiny')\n"
        "m(m.example_input(2)).sum().backward()\n"
        "print('torch_geometric' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_first_build_under_the_meta_device_in_a_fresh_process():
    """The skeleton partition is cached on first use: when the first model of a process is
    built under ``torch.device("meta")`` (``rankzc space info`` counting parameters), the
    partition must still be made on the CPU (it failed with "Tensor on device cpu is not on
    the expected device meta" whenever nothing had built a model before)."""
    import subprocess
    import sys

    code = (
        "import torch\n"
        "from rankzc.models import build_model, count_parameters\n"
        "with torch.device('meta'):\n"
        "    m = build_model('00000100-00000100-00000100-00000100', preset='cpu')\n"
        "print(count_parameters(m))\n"
        "cpu = build_model('00000100-00000100-00000100-00000100', preset='cpu')\n"
        "print(next(b for n, b in cpu.named_buffers() if n.endswith('.A')).device)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    n, device = res.stdout.split()
    assert int(n) > 0 and device == "cpu"
