"""Memory-saving ways of scoring give the values of the plain computation (issue 22 item 3).

Recomputing each block's activations in the backward (``recompute``) is exact for any
model; chunks of the minibatch (``splits``, ``hess_splits``) are exact for models whose
samples do not interact (no BatchNorm); nwot's codes always come from one forward of
the whole minibatch, so chunks never change nwot.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from rankzc.models import build_model
from rankzc.proxies import compute_proxies, proxy_names
from rankzc.proxies.context import recompute_blocks
from rankzc.space import Architecture

ALL = proxy_names()
assert len(ALL) == 14


class Blocks(nn.Module):
    """Conv blocks in an ``nn.ModuleList`` (what ``recompute`` checkpoints), no BatchNorm,
    so samples are independent and chunks are exact."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c_in, 6, 3, padding=1), nn.ReLU()) for c_in in (3, 6, 6)
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4))
        self.num_classes = 4

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def scores(model, batch, **kw) -> dict[str, float | None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no proxy may go missing
        res = compute_proxies(model, batch, names=ALL, seed=0, **kw)
    return {k: r.score for k, r in res.items()}


def assert_same(got, ref, rel, what):
    for name in ALL:
        assert ref[name] is not None, name
        assert got[name] == pytest.approx(ref[name], rel=rel, abs=1e-12), f"{name} ({what})"


def gcn_case():
    arch = Architecture(tuple((True,) + (False,) * 4 + (True, False, True) for _ in range(4)))
    torch.manual_seed(0)
    model = build_model(arch, "tiny")
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 3, 16, 25, 2, generator=g)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    return model, (x, y)


def test_recompute_gives_the_same_scores_on_the_gcn_nas_network():
    model, batch = gcn_case()
    ref = scores(model, batch)
    got = scores(model, batch, recompute=True)
    assert_same(got, ref, 1e-9, "recompute")
    # and the blocks are restored afterwards
    assert all("forward" not in b.__dict__ for b in model.blocks)


@pytest.mark.parametrize("splits", [1, 2, 4])
def test_chunks_give_the_unsplit_scores_without_batch_coupling(splits):
    x = torch.randn(8, 3, 5, 5, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 1, 2, 3] * 2)
    model = Blocks()
    ref = scores(model, (x, y))
    for kw in (
        dict(splits=splits),
        dict(splits=1, hess_splits=splits),
        dict(splits=splits, recompute=True, hess_splits=splits),
    ):
        assert_same(scores(model, (x, y), **kw), ref, 1e-5, str(kw))


def test_nwot_uses_the_whole_minibatch_whatever_the_chunks():
    model, batch = gcn_case()
    ref = compute_proxies(model, batch, names=["nwot", "grad_norm"], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = compute_proxies(model, batch, names=["nwot", "grad_norm"], seed=0, splits=3)
    assert got["nwot"].score == ref["nwot"].score
    # BatchNorm couples the samples: chunked loss gradients are not the unsplit ones
    assert got["grad_norm"].score != pytest.approx(ref["grad_norm"].score, rel=1e-6)


def test_recompute_keeps_only_block_inputs_until_the_backward():
    model = Blocks()
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    x = torch.randn(4, 3, 5, 5)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).sum().backward()
    plain = sum(saved)
    saved.clear()
    with recompute_blocks(model), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    assert 0 < sum(saved) < plain / 2
    out.sum().backward()
