r"""Architectures as data-flow graphs, and simple graph features (``--features graph``).

Every supported encoding becomes an :class:`ArchGraph`: a directed acyclic graph whose
nodes carry one label each (an operation, or ``input`` / ``output`` / a structural node)
and whose edges follow the data flow. Edge-labelled cells (NAS-Bench-201, TransNAS-Bench-101
micro, DARTS) are turned into node-labelled graphs by making every edge operation a node,
as GRAF and the NAS-Bench graph encoders do. The same graphs feed the graph-encoder ranker
(:mod:`rankzc.ranking.gnn`).

Spaces and encodings:

* ``gcn-nas`` (:mod:`rankzc.space`): per block, one node per switched-on operator
  (``L1 .. M_ST``) fed by the block input, a ``gcn`` node summing them (with the learnt
  ``PA`` term and the 1x1 ``conv_d``), a ``tcn`` node, and an ``add`` node (ReLU of tcn plus
  residual) that is the block output; the residual edge goes from the block input to
  ``add`` directly (identity) or through a ``res`` node (strided 1x1 projection, where the
  channel plan changes channels or stride); no residual in block 1.
* NAS-Bench-Suite-Zero ``nasbench201`` tuples of 6 op indices on the edges
  ``(1,2) (1,3) (1,4) (2,3) (2,4) (3,4)``, ops ``skip_connect, none, nor_conv_3x3,
  nor_conv_1x1, avg_pool_3x3`` (NASLib's order);
* ``transbench101`` micro (space or dataset name containing ``micro``): 6 op indices on
  ``(1,2) (1,3) (2,3) (1,4) (2,4) (3,4)``, ops ``none, skip_connect, nor_conv_1x1,
  nor_conv_3x3`` (TransNAS-Bench-101's convention, as GRAF reads it; NASLib's micro
  encoding is known to disagree on the edge order, which changes path features but not op
  counts);
* ``transbench101`` macro (name containing ``macro``): a chain of residual blocks, one
  integer each (0 = none, 1..4: stride 2 when > 2, channels doubled when even);
* ``nasbench101``: NASLib's tuple, the flattened :math:`n \times n` adjacency matrix then
  :math:`n` op indices into ``input, output, maxpool3x3, conv1x1-bn-relu,
  conv3x3-bn-relu``;
* ``nasbench301`` / DARTS: NASLib's compact ``(normal, reduce)`` with 8 ``(input, op)`` pairs
  each, ops ``max_pool_3x3, avg_pool_3x3, skip_connect, sep_conv_3x3, sep_conv_5x5,
  dil_conv_3x3, dil_conv_5x5``; the two cells are one graph (normal cell, then reduce).

Any other space or encoding raises :class:`~rankzc.errors.RankzcError` with one line
saying so (:func:`graph_space`).

Features (columns ``g_*``), from the graph with ``none``/``zero`` operations removed:

* ``g_n_<op>``: number of nodes of each operation of the space's vocabulary;
* ``g_path_max`` / ``g_path_min``: most / fewest *operation* nodes (structural and
  identity nodes do not count) on an input-to-output path; ``g_n_paths``: number of such
  paths; ``g_connected``: 1 when the output is reachable from the input at all;
* ``g_pathmax_<op>`` / ``g_paths_<op>``: most nodes of that operation on one
  input-to-output path, and how many paths pass through at least one.
* GCN-NAS adds ``g_pos_<op>`` (mean relative depth, in :math:`(0, 1]`, of the blocks that
  switch the operator on; 0 when none does) and ``g_frac_<op>`` (fraction of the blocks
  keeping it); ``g_n_<op>`` there is the number of blocks keeping it.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rankzc.errors import RankzcError

__all__ = [
    "ArchGraph",
    "GRAPH_SPACES",
    "graph_space",
    "to_graph",
    "graph_features",
    "space_vocabulary",
]

NB201_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
NB201_EDGES = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))
TB101_MICRO_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3")
TB101_MICRO_EDGES = ((1, 2), (1, 3), (2, 3), (1, 4), (2, 4), (3, 4))
TB101_MACRO_OPS = ("block_1", "block_2", "block_3", "block_4")
NB101_OPS = ("input", "output", "maxpool3x3", "conv1x1-bn-relu", "conv3x3-bn-relu")
DARTS_OPS = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
#: labels that are not operations: never counted in path lengths
STRUCTURAL = ("input", "output", "add", "sum", "concat", "skip_connect")
#: operations that carry no data (removed with their edges before features are computed)
ZERO_OPS = ("none",)

GRAPH_SPACES = ("gcn-nas", "nasbench201", "transbench101_micro", "transbench101_macro",
                "nasbench101", "nasbench301")  # fmt: skip


@dataclass
class ArchGraph:
    """A node-labelled DAG: ``labels[i]`` of node ``i``, ``edges`` as ``(src, dst)`` pairs.

    Node 0 is the input and the last node the output.
    """

    labels: list[str]
    edges: list[tuple[int, int]] = field(default_factory=list)

    def add(self, label: str) -> int:
        self.labels.append(label)
        return len(self.labels) - 1

    @property
    def n(self) -> int:
        return len(self.labels)


def space_vocabulary(kind: str) -> tuple[str, ...]:
    """Node labels a graph of ``kind`` (see :data:`GRAPH_SPACES`) may hold, in a fixed order."""
    from rankzc.space import OPS

    return {
        "gcn-nas": ("input", "output", *OPS, "gcn", "tcn", "add", "res"),
        "nasbench201": ("input", "output", "sum", *NB201_OPS),
        "transbench101_micro": ("input", "output", "sum", *TB101_MICRO_OPS),
        "transbench101_macro": ("input", "output", *TB101_MACRO_OPS),
        "nasbench101": NB101_OPS,
        "nasbench301": ("input", "output", "sum", "concat", *DARTS_OPS),
    }[kind]


def _op_labels(kind: str) -> tuple[str, ...]:
    """Operations counted in the ``g_n_<op>`` features of ``kind``."""
    from rankzc.space import OPS

    return {
        "gcn-nas": OPS,
        "nasbench201": NB201_OPS,
        "transbench101_micro": TB101_MICRO_OPS,
        "transbench101_macro": TB101_MACRO_OPS,
        "nasbench101": NB101_OPS[2:],
        "nasbench301": DARTS_OPS,
    }[kind]


# ------------------------------------------------------------------ parsing
def _literal(text: str):
    try:
        return ast.literal_eval(str(text).strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _flat_ints(value) -> list[int] | None:
    if isinstance(value, (tuple, list)) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return list(value)
    return None


def _is_darts(value) -> bool:
    return (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(
            isinstance(cell, (tuple, list))
            and len(cell) == 8
            and all(_flat_ints(p) is not None and len(p) == 2 for p in cell)
            for cell in value
        )
    )


def _nb101_size(length: int) -> int | None:
    for n in range(2, 8):
        if n * n + n == length:
            return n
    return None


def graph_space(space: str, encodings: Sequence[str], dataset: str | None = None) -> str:
    """Which graph rule (:data:`GRAPH_SPACES`) reads ``encodings`` of ``space``.

    The store's space name decides where it is known (NAS-Bench-Suite-Zero names such as
    ``nasbench201``); otherwise the encodings' shape does (6-tuples of 0..4: NAS-Bench-201).

    Raises:
        RankzcError: one line naming the space when its encoding cannot become a graph.
    """
    name = f"{space or ''} {dataset or ''}".lower()
    if space == "gcn-nas":
        return "gcn-nas"
    sample = [_literal(e) for e in list(encodings)[:50]]
    flat = [_flat_ints(v) for v in sample]
    if "transbench" in name or "tnb101" in name:
        if "macro" in name:
            return "transbench101_macro"
        if "micro" in name:
            return "transbench101_micro"
        raise RankzcError(
            f"graph features: space {space!r} does not say whether its encodings are "
            "TransNAS-Bench-101 micro or macro; import it with --space transbench101_micro "
            "or transbench101_macro"
        )
    if "301" in name or "darts" in name or (sample and all(_is_darts(v) for v in sample)):
        if sample and all(_is_darts(v) for v in sample):
            return "nasbench301"
    elif "101" in name:
        if flat and all(f is not None and _nb101_size(len(f)) for f in flat):
            return "nasbench101"
    elif "201" in name or "nats" in name or not name.strip() or "unknown" in name:
        if flat and all(f is not None and len(f) == 6 and set(f) <= set(range(5)) for f in flat):
            return "nasbench201"
    example = list(encodings)[0] if len(encodings) else ""
    raise RankzcError(
        f"graph features: space {space!r} (encoding like {str(example)[:40]!r}) cannot be "
        f"turned into a graph; known: {', '.join(GRAPH_SPACES)}"
    )


def _cell_from_edges(ops: Sequence[int], vocab, edge_list) -> ArchGraph:
    """A 4-node edge-labelled cell (NB201 style): node 1 input, 4 output, edges as nodes."""
    g = ArchGraph(["input"])
    nodes = {1: 0, 2: g.add("sum"), 3: g.add("sum")}
    pending = []
    for (i, j), op in zip(edge_list, ops, strict=True):
        if not 0 <= op < len(vocab):
            raise RankzcError(f"op index {op} out of range 0..{len(vocab) - 1}")
        pending.append((nodes[i], g.add(vocab[op]), j))
    nodes[4] = g.add("output")
    for src, v, j in pending:
        g.edges += [(src, v), (v, nodes[j])]
    return g


#: blocks (0-based) whose residual is a strided 1x1 projection, per depth: those where
#: :func:`rankzc.models.network.channel_plan` changes channels or stride (kept here so that
#: features need no torch; a test checks it against the channel plan)
PROJECTED_BLOCKS: dict[int, tuple[int, ...]] = {4: (1, 2), 6: (2, 4), 8: (3, 6), 10: (4, 7)}


def _gcn_graph(text: str) -> ArchGraph:
    from rankzc.space import OPS, Architecture

    arch = Architecture.parse(text)
    g = ArchGraph(["input"])
    prev = 0
    for b, bits in enumerate(arch.blocks):
        gcn = g.add("gcn")
        for op, on in zip(OPS, bits, strict=True):
            if on:
                v = g.add(op)
                g.edges += [(prev, v), (v, gcn)]
        tcn = g.add("tcn")
        add = g.add("add")
        g.edges += [(gcn, tcn), (tcn, add)]
        if b > 0:
            if b not in PROJECTED_BLOCKS[arch.depth]:
                g.edges.append((prev, add))
            else:
                res = g.add("res")
                g.edges += [(prev, res), (res, add)]
        prev = add
    out = g.add("output")
    g.edges.append((prev, out))
    return g


def _nb101_graph(flat: list[int]) -> ArchGraph:
    n = _nb101_size(len(flat))
    if n is None:
        raise RankzcError(f"expected n*n + n integers (n <= 7), got {len(flat)}")
    matrix = np.asarray(flat[: n * n]).reshape(n, n)
    ops = flat[n * n :]
    if any(not 0 <= o < len(NB101_OPS) for o in ops):
        raise RankzcError("op index out of range 0..4")
    g = ArchGraph([NB101_OPS[o] for o in ops])
    g.edges = [(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(matrix, 1)), strict=True)]
    return g


def _darts_graph(value) -> ArchGraph:
    g = ArchGraph(["input"])
    prev_prev, prev = 0, 0
    for cell in value:
        states = [prev_prev, prev]
        inter = [g.add("sum") for _ in range(4)]
        states += inter
        for k, (src, op) in enumerate(cell):
            if not 0 <= op < len(DARTS_OPS) or not 0 <= src < 2 + k // 2:
                raise RankzcError(f"pair {(src, op)} out of range")
            v = g.add(DARTS_OPS[op])
            g.edges += [(states[src], v), (v, inter[k // 2])]
        concat = g.add("concat")
        g.edges += [(s, concat) for s in inter]
        prev_prev, prev = prev, concat
    out = g.add("output")
    g.edges.append((prev, out))
    return g


def to_graph(encoding: str, kind: str) -> ArchGraph:
    """The graph of one architecture ``encoding`` read by rule ``kind`` (:func:`graph_space`)."""
    try:
        if kind == "gcn-nas":
            return _gcn_graph(str(encoding))
        value = _literal(encoding)
        if kind == "nasbench301":
            if not _is_darts(value):
                raise RankzcError("expected ((8 (input, op) pairs), (8 pairs))")
            return _darts_graph(value)
        flat = _flat_ints(value)
        if flat is None:
            raise RankzcError("expected a tuple of integers")
        if kind == "nasbench101":
            return _nb101_graph(flat)
        if kind == "transbench101_macro":
            g = ArchGraph(["input"])
            prev = 0
            for v in flat:
                if v == 0:
                    continue
                if not 1 <= v <= 4:
                    raise RankzcError(f"block code {v} out of range 0..4")
                node = g.add(TB101_MACRO_OPS[v - 1])
                g.edges.append((prev, node))
                prev = node
            out = g.add("output")
            g.edges.append((prev, out))
            return g
        if len(flat) != 6:
            raise RankzcError(f"expected 6 op indices, got {len(flat)}")
        vocab, edges = (
            (NB201_OPS, NB201_EDGES)
            if kind == "nasbench201"
            else (TB101_MICRO_OPS, TB101_MICRO_EDGES)
        )
        return _cell_from_edges(flat, vocab, edges)
    except RankzcError as err:
        raise RankzcError(f"graph of {str(encoding)[:60]!r} ({kind}): {err}") from None


# ----------------------------------------------------------------- features
def _topo(n: int, edges: list[tuple[int, int]]) -> list[int]:
    indeg = [0] * n
    out: list[list[int]] = [[] for _ in range(n)]
    for s, d in edges:
        out[s].append(d)
        indeg[d] += 1
    order, stack = [], [i for i in range(n) if indeg[i] == 0]
    while stack:
        v = stack.pop()
        order.append(v)
        for w in out[v]:
            indeg[w] -= 1
            if indeg[w] == 0:
                stack.append(w)
    if len(order) != n:
        raise RankzcError("graph has a cycle")
    return order


def _path_stats(g: ArchGraph, ops: Sequence[str]) -> dict[str, float]:
    """Path features over input-to-output paths (``none`` nodes removed)."""
    keep = [lab not in ZERO_OPS for lab in g.labels]
    edges = [(s, d) for s, d in g.edges if keep[s] and keep[d]]
    n, src, dst = g.n, 0, g.n - 1
    order = _topo(n, edges)
    preds: list[list[int]] = [[] for _ in range(n)]
    for s, d in edges:
        preds[d].append(s)
    is_op = np.array([lab not in STRUCTURAL for lab in g.labels], dtype=float)
    onehot = np.array([[float(lab == o) for o in ops] for lab in g.labels]).reshape(n, len(ops))
    # forward DP from the input: number of paths, longest/shortest op count, per-op max
    npaths = np.zeros(n)
    lmax = np.full(n, -np.inf)
    lmin = np.full(n, np.inf)
    omax = np.full((n, len(ops)), -np.inf)
    # paths through at least one op o: paths - paths avoiding o
    avoid = np.zeros((n, len(ops)))
    for v in order:
        if v == src:
            npaths[v], lmax[v], lmin[v] = 1.0, is_op[v], is_op[v]
            omax[v] = onehot[v]
            avoid[v] = 1.0 - onehot[v]
            continue
        if not keep[v] or not preds[v]:
            continue
        p = preds[v]
        npaths[v] = npaths[p].sum()
        if npaths[v] == 0:
            continue
        reach = [u for u in p if npaths[u] > 0]
        lmax[v] = max(lmax[u] for u in reach) + is_op[v]
        lmin[v] = min(lmin[u] for u in reach) + is_op[v]
        omax[v] = np.max(omax[reach], axis=0) + onehot[v]
        avoid[v] = avoid[p].sum(axis=0) * (1.0 - onehot[v])
    connected = npaths[dst] > 0
    out = {
        "g_connected": float(connected),
        "g_n_paths": float(npaths[dst]),
        "g_path_max": float(lmax[dst]) if connected else 0.0,
        "g_path_min": float(lmin[dst]) if connected else 0.0,
    }
    for k, o in enumerate(ops):
        out[f"g_pathmax_{o}"] = float(omax[dst, k]) if connected else 0.0
        out[f"g_paths_{o}"] = float(npaths[dst] - avoid[dst, k]) if connected else 0.0
    return out


def _features_one(encoding: str, kind: str) -> dict[str, float]:
    g = to_graph(encoding, kind)
    ops = _op_labels(kind)
    out = {f"g_n_{o}": float(sum(lab == o for lab in g.labels)) for o in ops}
    out.update(_path_stats(g, [o for o in ops if o not in ZERO_OPS]))
    if kind == "gcn-nas":
        from rankzc.space import Architecture

        blocks = np.asarray(Architecture.parse(str(encoding)).blocks, dtype=float)
        depth = len(blocks)
        pos = np.arange(1, depth + 1) / depth
        for k, o in enumerate(ops):
            on = blocks[:, k] > 0
            out[f"g_pos_{o}"] = float(pos[on].mean()) if on.any() else 0.0
            out[f"g_frac_{o}"] = float(on.mean())
    return out


def graph_features(
    encodings: Sequence[str] | pd.Series,
    space: str,
    *,
    dataset: str | None = None,
    kind: str | None = None,
) -> pd.DataFrame:
    """Graph features (module docstring) of ``encodings``; index kept from a Series.

    Raises:
        RankzcError: the space's encoding cannot be turned into a graph (one line).
    """
    index = encodings.index if isinstance(encodings, pd.Series) else None
    encodings = [str(e) for e in encodings]
    kind = kind or graph_space(space, encodings, dataset)
    rows = [_features_one(e, kind) for e in encodings]
    cols = list(rows[0]) if rows else []
    out = pd.DataFrame(rows, columns=cols, dtype=float)
    if index is not None:
        out.index = index
    return out
