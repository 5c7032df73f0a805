r"""The GCN-NAS graph-convolution unit.

For input :math:`x \in \mathbb{R}^{N \times C_{in} \times T \times V}` and subsets
:math:`k = 0, 1, 2`:

.. math::
    M_k(x) = F_k + PA_k + \sum_{m \in \text{on}} B^{(m)}_k(x), \qquad
    y = \operatorname{ReLU}\Big(\operatorname{BN}\Big(\sum_k W_k\,(x M_k(x)) + b_k\Big)
        + \operatorname{down}(x)\Big),

where :math:`F_k` is the sum of the switched-on fixed operators
(:mod:`rankzc.models.graph`, zero when none is on), :math:`PA` a learnable
:math:`3 \times V \times V` parameter initialised to :math:`10^{-6}`, :math:`B^{(m)}` the
dynamic modules (:mod:`rankzc.models.dynamic`), :math:`x M_k` the per-frame product
(``x`` viewed as ``N x (C T) x V``), :math:`W_k` the 1x1 convolution ``conv_d[k]``, and
``down`` a 1x1 convolution + BatchNorm when :math:`C_{in} \ne C_{out}` (else identity).

The forward pass computes the same function as :meth:`UnitGCN.forward_reference`
(the study's per-subset loop) but batches the attention products and softmaxes of all
(module, subset) pairs and aggregates the three subsets in one product. With
``fuse=True`` (default) and the dense aggregation it takes the fast path
(:meth:`UnitGCN.forward_vt`, layout in :mod:`rankzc.models.layout`): activations read as
channels-last ``(N, C, V, T)``; per kernel height one convolution computes all pairs'
embeddings ``[P_1; Q_1; P_2; ...]``, one product all their logits; :math:`x M_k` is one
``(3V x V)(V x T C)`` product per sample whose output is, as it lies in memory, the
channels-last input ``(N, C, 3, V T)`` of the three ``conv_d`` branches run as one
convolution (kernel ``3 x 1``). Whenever a hook is registered on one of the unit's
convolutions (or a global module hook exists), it calls every convolution as a module on
``(N, C, T, V)`` instead, so hooks see exactly the study's calls. ``fuse=False``: always
so. The fast path reports every convolution's output to an active output tap
(:mod:`rankzc.models.taps`; the ``fisher`` proxy reads them there, without hooks).

``aggregation`` selects how :math:`x M_k` is computed:

- ``"dense"`` (default): batched dense products with the full :math:`V \times V`
  matrices (per sample when a dynamic module is on);
- ``"sparse"``: the sparse part of :math:`F_k` (``L1, L2, L3, L4``: bones and the
  diagonal) goes through PyG's sparse-dense product :func:`torch_geometric.utils.spmm`
  on a CSR matrix; the dense remainder (``Ln4``, which a softmax makes dense, :math:`PA`
  and the attention terms, which are dense and per sample) stays dense. It keeps the
  ``(N, C, T, V)`` layout of the module path.

Every block has a dynamic module on, so the total matrix is always dense and per sample;
the sparse path therefore adds work (an extra sparse product) and measured slower on
CPU; ``"dense"`` is the default.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rankzc.errors import RankzcError
from rankzc.models.dynamic import NUM_SUBSETS, DynamicGraph, attention_softmax
from rankzc.models.graph import fixed_operator_sum
from rankzc.models.init import bn_init, conv_branch_init, conv_init
from rankzc.models.layout import hooked, pair_logits, split_pairs
from rankzc.models.taps import channel_parts, current_tap

AGGREGATIONS = ("dense", "sparse")
DYNAMIC_MODULES = ("M_S", "M_T", "M_ST")
SPARSE_FIXED = ("L1", "L4", "L3", "L2")


class UnitGCN(nn.Module):
    """Graph-convolution unit of one GCN-NAS block.

    Args:
        in_channels: input channels.
        out_channels: output channels; the attention embedding has ``out_channels // 4``.
        A: the ``3 x V x V`` spatial partition.
        switches: the block's 8 switches, in the order of :data:`rankzc.space.OPS`.
        aggregation: ``"dense"`` or ``"sparse"`` (see the module docstring).
        fuse: fuse convolutions when no hook watches them (see the module docstring).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        A: Tensor,
        switches: Sequence[bool],
        aggregation: str = "dense",
        fuse: bool = True,
    ) -> None:
        super().__init__()
        if aggregation not in AGGREGATIONS:
            raise RankzcError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        if len(switches) != 8:
            raise RankzcError(f"expected 8 switches, got {len(switches)}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.inter_channels = out_channels // 4
        self.switches = tuple(bool(s) for s in switches)
        self.aggregation = aggregation
        self.fuse = fuse
        fixed_sw, dyn_sw = self.switches[:5], self.switches[5:]
        V = A.shape[-1]

        self.register_buffer("A", A.detach().clone())
        self.register_buffer("fixed", fixed_operator_sum(self.A, fixed_sw))
        # Split of `fixed` used by the sparse aggregation (not saved in the state dict).
        sparse_part = fixed_operator_sum(self.A, fixed_sw, ops=SPARSE_FIXED)
        # CSR matrix S of shape (3V, V) with S[k V + w, v] = F_k[v, w] (rows: subset and
        # target joint, columns: source joint), built once.
        k, w, v = sparse_part.transpose(1, 2).nonzero(as_tuple=True)  # row-major in (k, w)
        rows = torch.bincount(k * V + w, minlength=NUM_SUBSETS * V)  # entries per CSR row
        crow = torch.cat([rows.new_zeros(1), rows.cumsum(0)])
        self.register_buffer("sparse_crow", crow, persistent=False)
        self.register_buffer("sparse_col", v, persistent=False)
        self.register_buffer("sparse_value", sparse_part[k, v, w], persistent=False)
        self.register_buffer("dense_rest", self.fixed - sparse_part, persistent=False)

        self.PA = nn.Parameter(torch.full_like(self.A, 1e-6))
        self.dynamic = nn.ModuleDict(
            {
                name: DynamicGraph(name, in_channels, self.inter_channels)
                for name, on in zip(DYNAMIC_MODULES, dyn_sw, strict=True)
                if on
            }
        )
        self.conv_d = nn.ModuleList(nn.Conv2d(in_channels, out_channels, 1) for _ in range(3))
        self.bn = nn.BatchNorm2d(out_channels)
        if in_channels != out_channels:
            self.down: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels)
            )
        else:
            self.down = nn.Identity()

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                conv_init(m)
            elif isinstance(m, nn.BatchNorm2d):
                bn_init(m, 1.0)
        bn_init(self.bn, 1e-6)
        for conv in self.conv_d:
            conv_branch_init(conv, NUM_SUBSETS)
        self._plan_attention()

    # ---------------------------------------------------------------- attention
    def _plan_attention(self) -> None:
        """The used (P, Q) pairs, the subset each serves, and their grouping by kernel."""
        self._pairs = [pair for module in self.dynamic.values() for pair in module.used()]
        subsets = [k for _ in self.dynamic for k in range(NUM_SUBSETS)]
        kernels = sorted({P.kernel_size[0] for P, _ in self._pairs})
        # Fused order: pairs grouped by kernel height (one convolution per group).
        self._fused_groups = [
            (kh, [i for i, (P, _) in enumerate(self._pairs) if P.kernel_size[0] == kh])
            for kh in kernels
        ]
        order = [i for _, idx in self._fused_groups for i in idx]
        self.register_buffer(
            "_subset_of", torch.tensor(subsets, dtype=torch.long), persistent=False
        )
        self.register_buffer(
            "_fused_subset_of",
            torch.tensor([subsets[i] for i in order], dtype=torch.long),
            persistent=False,
        )
        self._convs = [c for pair in self._pairs for c in pair] + list(self.conv_d)
        # the fast path calls `down` on channels-last (N, C, V, T): hooks on its convolution
        # take the module path, which calls it on (N, C, T, V) as the study did
        self._convs += [m for m in self.down.modules() if isinstance(m, nn.Conv2d)]

    def _hooked(self) -> bool:
        """True when a hook watches one of the convolutions the fused path bypasses."""
        return hooked(self._convs)

    def attention(self, x: Tensor, fused: bool = False) -> Tensor | None:
        """Sum of the switched-on dynamic modules' matrices, ``(N, 3, V, V)``, or ``None``.

        ``fused=False`` calls every convolution as a module; ``fused=True`` runs all
        embeddings with the same kernel as one convolution. Products and softmaxes of all
        (module, subset) pairs are batched either way.
        """
        if not self._pairs:
            return None
        N, _, T, V = x.shape
        ce = self.inter_channels
        if fused:
            logits, subsets = [], self._fused_subset_of
            for kh, idx in self._fused_groups:
                convs = [self._pairs[i][0] for i in idx] + [self._pairs[i][1] for i in idx]
                weight = torch.cat([c.weight for c in convs])
                bias = torch.cat([c.bias for c in convs])
                y = F.conv2d(x, weight, bias, padding=((kh - 1) // 2, 0))
                y = y.view(N, 2, len(idx), ce, T, V)
                logits.append(torch.einsum("ngctv,ngctw->ngvw", y[:, 0], y[:, 1]))
            logits = torch.cat(logits, dim=1)
        else:
            subsets = self._subset_of
            P = torch.stack([P(x) for P, _ in self._pairs], dim=1)  # N, G, C_e, T, V
            Q = torch.stack([Q(x) for _, Q in self._pairs], dim=1)
            logits = torch.einsum("ngctv,ngctw->ngvw", P, Q)
        probs = attention_softmax(logits / (ce * T), dim=-2)
        return probs.new_zeros(N, NUM_SUBSETS, V, V).index_add_(1, subsets, probs)

    # ---------------------------------------------------------------- forward
    def _aggregate(self, x: Tensor, fused: bool = False) -> Tensor:
        """``x M_k`` for the three subsets, ``(N, 3, C, T, V)``."""
        att = self.attention(x, fused=fused)
        if self.aggregation == "dense":
            M = self.fixed + self.PA
            if att is None:
                return torch.einsum("nctv,kvw->nkctw", x, M)
            return torch.einsum("nctv,nkvw->nkctw", x, M + att)
        N, C, T, V = x.shape
        rest = self.dense_rest + self.PA
        if att is not None:
            rest = rest + att
        eq = "nctv,kvw->nkctw" if rest.dim() == 3 else "nctv,nkvw->nkctw"
        out = torch.einsum(eq, x, rest)
        if self.sparse_value.numel():
            with warnings.catch_warnings():  # "sparse CSR support is in beta"
                warnings.simplefilter("ignore")
                S = torch.sparse_csr_tensor(
                    self.sparse_crow,
                    self.sparse_col,
                    self.sparse_value.to(x.dtype),
                    size=(NUM_SUBSETS * V, V),
                    check_invariants=False,
                )
            from torch_geometric.utils import spmm  # the sparse path only

            X = x.permute(3, 0, 1, 2).reshape(V, N * C * T)
            sp = spmm(S, X).view(NUM_SUBSETS, V, N, C, T).permute(2, 0, 3, 4, 1)
            out = out + sp
        return out

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C_in, T, V) -> (N, C_out, T, V)``."""
        fused = self.fuse and not self._hooked()
        if fused and self.aggregation == "dense":
            return self.forward_vt(x.transpose(2, 3)).transpose(2, 3)
        N, C, T, V = x.shape
        xa = self._aggregate(x, fused=fused)
        if fused:
            weight = torch.cat([c.weight for c in self.conv_d], dim=1)
            bias = self.conv_d[0].bias + self.conv_d[1].bias + self.conv_d[2].bias
            y = F.conv2d(xa.reshape(N, NUM_SUBSETS * C, T, V), weight, bias)
        else:
            y = self.conv_d[0](xa[:, 0]) + self.conv_d[1](xa[:, 1]) + self.conv_d[2](xa[:, 2])
        return F.relu(self.bn(y) + self.down(x))

    # ---------------------------------------------------------------- fast path
    def forward_vt(self, x: Tensor) -> Tensor:
        """The fused dense path on ``(N, C_in, V, T) -> (N, C_out, V, T)`` (joints before
        frames), fastest on channels-last memory (:mod:`rankzc.models.layout`).

        Same function as :meth:`forward` (calls no convolution as a module; ``bn`` and
        ``down`` are called as modules on the ``(N, C, V, T)`` tensors).
        """
        N, C, V, T = x.shape
        Mt = (self.fixed + self.PA).transpose(1, 2)  # (3, W, V): M_k transposed
        xm = x.permute(0, 2, 3, 1).reshape(N, V, T * C)  # a view of channels-last memory
        if not self._pairs:
            z = torch.matmul(Mt.reshape(NUM_SUBSETS * V, V), xm)
        else:  # one (3V x V)(V x T C) product per sample; rows (k, w)
            A = self._attention_vt(x, Mt)  # (N, 3, W, V): M_k + attention, transposed
            z = torch.bmm(A.view(N, NUM_SUBSETS * V, V), xm)
        # z's memory (N, 3, V T, C) is channels-last (N, C, 3, V T): the three conv_d
        # branches are one convolution with kernel (3, 1) over the stacked subsets
        z = z.view(N, NUM_SUBSETS, V * T, C).permute(0, 3, 1, 2)
        weight = torch.cat([c.weight for c in self.conv_d], dim=2)  # (C_out, C_in, 3, 1)
        bias = self.conv_d[0].bias + self.conv_d[1].bias + self.conv_d[2].bias
        y = F.conv2d(z, weight, bias)  # (N, C_out, 1, V T)
        tap = current_tap()
        if tap is not None:  # y is the sum of the three branches' outputs
            zd = z.detach()
            tap(y, [(c, None, _branch(zd, k, c)) for k, c in enumerate(self.conv_d)])
        y = y.permute(0, 2, 3, 1).reshape(N, V, T, -1).permute(0, 3, 1, 2)
        if tap is not None and isinstance(self.down, nn.Sequential):
            d = self.down[0](x)
            tap(d, [(self.down[0], None, None)])
            d = self.down[1](d)
        else:
            d = self.down(x)
        return torch.relu_(self.bn(y) + d)  # in place: the sum is this unit's

    def _attention_vt(self, x: Tensor, base: Tensor) -> Tensor:
        """``base`` plus the transpose of :meth:`attention` (``(N, 3, W, V)``) on
        ``(N, C, V, T)``: per kernel height one convolution for all pairs' embeddings
        ``[P_1; Q_1; P_2; ...]``, one product for all their logits, transposed (``Q P^T``:
        the softmax over source joints runs along the last axis)."""
        N, C, V, T = x.shape
        ce = self.inter_channels
        ys = []
        for kh, idx in self._fused_groups:
            convs = [c for i in idx for c in self._pairs[i]]
            weight = torch.cat([c.weight for c in convs]).reshape(2 * len(idx) * ce, C, 1, kh)
            bias = torch.cat([c.bias for c in convs])
            # a 1 x 1 kernel's dilation changes nothing; it makes PyTorch take oneDNN's
            # channels-last kernel over its own one-thread 1 x 1 path (batches under 16);
            # float64, which oneDNN does not run, would take a slow dilated kernel instead
            dilation = (1, 2) if kh == 1 and x.dtype != torch.float64 else (1, 1)
            ys.append(F.conv2d(x, weight, bias, padding=(0, (kh - 1) // 2), dilation=dilation))
            tap = current_tap()
            if tap is not None:
                tap(ys[-1], channel_parts(convs, ce))
        p, q = split_pairs(ce, *ys)  # (N G, V, T C_e) each
        logits = pair_logits(q, p, 1.0 / (ce * T))
        probs = attention_softmax(logits, dim=-1).view(N, len(self._pairs), V, V)
        return base.expand(N, NUM_SUBSETS, V, V).index_add(1, self._fused_subset_of, probs)

    def forward_reference(self, x: Tensor) -> Tensor:
        """The study's per-subset loop (readable, slower); same result as :meth:`forward`."""
        N, C, T, V = x.shape
        y = None
        for k in range(NUM_SUBSETS):
            M = (self.fixed[k] + self.PA[k]).expand(N, V, V)
            for module in self.dynamic.values():
                P, Q = module.used()[k]
                p = P(x).permute(0, 3, 1, 2).reshape(N, V, self.inter_channels * T)
                q = Q(x).reshape(N, self.inter_channels * T, V)
                M = M + attention_softmax(torch.matmul(p, q) / p.shape[-1], dim=-2)
            z = self.conv_d[k](torch.matmul(x.reshape(N, C * T, V), M).view(N, C, T, V))
            y = z if y is None else y + z
        return F.relu(self.bn(y) + self.down(x))

    def extra_repr(self) -> str:
        on = [
            op
            for op, s in zip(("L1", "Ln4", "L4", "L3", "L2"), self.switches[:5], strict=True)
            if s
        ]
        return f"fixed={'+'.join(on) or 'none'}, aggregation={self.aggregation!r}"


def _branch(z: Tensor, k: int, conv: nn.Conv2d):
    """``conv``'s own output on subset ``k`` of the stacked input ``z``, on demand."""

    def output() -> Tensor:
        with torch.no_grad():
            return F.conv2d(z[:, :, k : k + 1], conv.weight, conv.bias)

    return output
