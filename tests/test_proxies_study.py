"""Agreement of our proxies with the study's recorded values (reads ../shared)."""

from __future__ import annotations

import json

import pytest
import torch
from scipy.stats import spearmanr

from rankzc.models import build_model
from rankzc.proxies import compute_proxies
from rankzc.space import Architecture

pytestmark = pytest.mark.shared

#: The study scored a minibatch of 20 samples of shape (3, T=300, 25, 2).
STUDY_INPUT = (1, 3, 300, 25, 2)
STUDY_BATCH = 20


def study_records(thesis_dir, n: int) -> list[tuple[Architecture, dict]]:
    files = sorted(thesis_dir.glob("*.json"))
    step = max(1, len(files) // n)
    out = []
    for f in files[::step][:n]:
        record = next(iter(json.loads(f.read_text()).values()))
        scores = {k: v["score"] for k, v in record["zero_cost_scores"].items()}
        out.append((Architecture.from_weights(record["weights"]), scores))
    return out


def ours(arch: Architecture) -> dict[str, float]:
    torch.manual_seed(0)
    model = build_model(arch, "ntu60")
    x = torch.zeros(STUDY_INPUT)
    res = compute_proxies(model, (x, torch.zeros(1, dtype=torch.long)), names=["params", "flops"])
    return {k: r.score for k, r in res.items()}


def test_params_and_flops_equal_the_study_on_two_architectures(thesis_dir):
    for arch, study in study_records(thesis_dir, 2):
        mine = ours(arch)
        assert mine["params"] == study["params"]
        # flops are per sample; the study counted its batch of 20
        assert STUDY_BATCH * mine["flops"] == study["flops"]


@pytest.mark.slow
def test_params_exact_and_flops_rank_one_on_fifty_architectures(thesis_dir):
    records = study_records(thesis_dir, 50)
    assert len(records) >= 50
    mine = [ours(arch) for arch, _ in records]
    assert [m["params"] for m in mine] == [s["params"] for _, s in records]
    assert [STUDY_BATCH * m["flops"] for m in mine] == [s["flops"] for _, s in records]
    rho = spearmanr([m["flops"] for m in mine], [s["flops"] for _, s in records]).statistic
    assert rho == pytest.approx(1.0, abs=1e-12)
