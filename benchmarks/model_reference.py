"""The GCN-NAS network's forward pass as the port computed it before issue 26 (reference).

:func:`reference_forward` runs a :class:`~rankzc.models.GCNNASNet` (its own parameters and
buffers) through the previous implementation of the fused path: activations in the
``(N, C, T, V)`` layout throughout, the attention embeddings of one kernel height as one
convolution with the pairs' logits by ``einsum``, ``x M_k`` by ``einsum`` into
``(N, 3, C, T, V)`` and the three ``conv_d`` branches as one convolution over the
stacked subsets (commit a7b464f, ``rankzc/models/unit_gcn.py``). It is kept only to
compare against: ``benchmarks/model_step.py`` times it against the current forward
(the speed-up) and checks that both give the same logits; ``tests/test_models.py``
checks the logits and gradients too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rankzc.models import GCNNASNet
from rankzc.models.block import Block
from rankzc.models.dynamic import NUM_SUBSETS, attention_softmax
from rankzc.models.tcn import UnitTCN
from rankzc.models.unit_gcn import UnitGCN


def _attention(unit: UnitGCN, x: Tensor) -> Tensor | None:
    pairs = [pair for module in unit.dynamic.values() for pair in module.used()]
    if not pairs:
        return None
    N, _, T, V = x.shape
    ce = unit.inter_channels
    subsets = [k for _ in unit.dynamic for k in range(NUM_SUBSETS)]
    kernels = sorted({P.kernel_size[0] for P, _ in pairs})
    groups = [
        (kh, [i for i, (P, _) in enumerate(pairs) if P.kernel_size[0] == kh]) for kh in kernels
    ]
    order = [i for _, idx in groups for i in idx]
    logits = []
    for kh, idx in groups:
        convs = [pairs[i][0] for i in idx] + [pairs[i][1] for i in idx]
        weight = torch.cat([c.weight for c in convs])
        bias = torch.cat([c.bias for c in convs])
        y = F.conv2d(x, weight, bias, padding=((kh - 1) // 2, 0))
        y = y.view(N, 2, len(idx), ce, T, V)
        logits.append(torch.einsum("ngctv,ngctw->ngvw", y[:, 0], y[:, 1]))
    logits = torch.cat(logits, dim=1)
    probs = attention_softmax(logits / (ce * T), dim=-2)
    index = torch.tensor([subsets[i] for i in order], dtype=torch.long, device=x.device)
    return probs.new_zeros(N, NUM_SUBSETS, V, V).index_add_(1, index, probs)


def _gcn(unit: UnitGCN, x: Tensor) -> Tensor:
    N, C, T, V = x.shape
    att = _attention(unit, x)
    M = unit.fixed + unit.PA
    if att is None:
        xa = torch.einsum("nctv,kvw->nkctw", x, M)
    else:
        xa = torch.einsum("nctv,nkvw->nkctw", x, M + att)
    weight = torch.cat([c.weight for c in unit.conv_d], dim=1)
    bias = unit.conv_d[0].bias + unit.conv_d[1].bias + unit.conv_d[2].bias
    y = F.conv2d(xa.reshape(N, NUM_SUBSETS * C, T, V), weight, bias)
    return F.relu(unit.bn(y) + unit.down(x))


def _tcn(unit: UnitTCN, x: Tensor) -> Tensor:
    return unit.bn(unit.conv(x))


def _block(block: Block, x: Tensor) -> Tensor:
    y = _tcn(block.tcn, _gcn(block.gcn, x))
    if block.residual is not None:
        r = block.residual
        y = y + (_tcn(r, x) if isinstance(r, UnitTCN) else r(x))
    return F.relu(y)


def reference_forward(model: GCNNASNet, x: Tensor) -> Tensor:
    """``(N, C, T, V, M) -> (N, num_classes)``: ``model``'s logits, computed as before."""
    N, C, T, V, M = x.shape
    x = x.permute(0, 4, 3, 1, 2).reshape(N, M * V * C, T)
    x = model.data_bn(x)
    x = x.view(N, M, V, C, T).permute(0, 1, 3, 4, 2).reshape(N * M, C, T, V)
    for block in model.blocks:
        x = _block(block, x)
    x = x.reshape(N, M, model.out_channels, -1).mean(3).mean(1)
    return model.fc(x)
