r"""The NTU RGB+D skeleton graph, its 3-subset spatial partition and the fixed operators.

The Kinect v2 skeleton has :math:`V = 25` joints and 24 bones. Bones are stored as
*inward* pairs (child, parent); *outward* is each pair reversed. The spatial partition
is a stack :math:`A \in \mathbb{R}^{3 \times V \times V}`:

.. math::
    A_0 = I, \qquad A_1 = \tilde{A}_{in} D_{in}^{-1}, \qquad A_2 = \tilde{A}_{out} D_{out}^{-1},

where :math:`\tilde{A}_{in}[j, i] = 1` for every inward pair :math:`(i, j)` and :math:`D`
holds the column sums (columns summing to 0 stay 0), i.e. column :math:`i` of
:math:`A_1` is :math:`1 / \deg^{+}(i)` on the parents of :math:`i`.

The five fixed graph operators of the GCN-NAS search space are computed
**entrywise** on that stack, exactly as in the study (powers are elementwise and
:math:`I` is the :math:`V \times V` identity broadcast over the three subsets):

.. math::
    L_1 = A,\quad L_2 = 2A^{\circ 2} - I,\quad L_3 = 4A^{\circ 3} - 3A,\quad
    L_4 = 8A^{\circ 4} - 8A^{\circ 2} + I,\quad
    L_{n4} = \operatorname{softmax}_{\text{axis}=-2}(L_4 / 25).

They are *not* matrix Chebyshev polynomials of a graph Laplacian; an exact port keeps
the entrywise form.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import Tensor

from rankzc.errors import RankzcError

NUM_JOINTS = 25
#: Bones as 1-based (child, parent) pairs, as in the NTU RGB+D documentation.
INWARD_1BASED: tuple[tuple[int, int], ...] = (
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
    (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
    (20, 19), (22, 23), (23, 8), (24, 25), (25, 12),
)  # fmt: skip
FIXED_OPERATORS: tuple[str, ...] = ("L1", "Ln4", "L4", "L3", "L2")


def inward_edges() -> Tensor:
    """The 24 inward bones as a ``2 x 24`` ``edge_index`` (row 0 child, row 1 parent), 0-based."""
    return torch.tensor(INWARD_1BASED, dtype=torch.long, device="cpu").t() - 1


def ntu_skeleton():
    """The NTU skeleton as a :class:`~torch_geometric.data.Data` graph
    (``edge_index``: :func:`inward_edges`).

    PyTorch Geometric is imported here, not with the module: building and running the
    network never needs it (worker processes that score or train start faster).
    """
    from torch_geometric.data import Data

    return Data(edge_index=inward_edges(), num_nodes=NUM_JOINTS)


def _normalised_adjacency(edge_index: Tensor, num_nodes: int) -> Tensor:
    """``M[j, i] = 1 / outdeg(i)`` for every edge ``i -> j`` (column-normalised).

    What ``torch_geometric.utils.to_dense_adj`` and ``degree`` give (repeated edges
    counted), in plain torch.
    """
    # on the CPU whatever the default device (a model built under torch.device("meta")
    # still gets its graph; the partition is cached for every later build)
    adj = torch.zeros(num_nodes, num_nodes, device="cpu")  # adj[i, j] = 1 for i -> j
    ones = torch.ones(edge_index.shape[1], device="cpu")
    adj.index_put_((edge_index[0], edge_index[1]), ones, accumulate=True)
    deg = torch.bincount(edge_index[0], minlength=num_nodes).to(adj.dtype)
    inv = torch.where(deg > 0, 1.0 / deg.clamp(min=1), torch.zeros_like(deg))
    return (adj * inv[:, None]).t().contiguous()


@functools.lru_cache(maxsize=1)
def _partition_cached() -> Tensor:
    edge_index = inward_edges()
    inward = _normalised_adjacency(edge_index, NUM_JOINTS)
    outward = _normalised_adjacency(edge_index.flip(0), NUM_JOINTS)
    eye = torch.eye(NUM_JOINTS, device="cpu")
    return torch.stack([eye, inward, outward])


def spatial_partition() -> Tensor:
    """The ``3 x 25 x 25`` stack ``[I, inward, outward]`` (float32, on the CPU)."""
    return _partition_cached().clone()


def fixed_operators(A: Tensor) -> dict[str, Tensor]:
    """The five entrywise operators of :mod:`this module <rankzc.models.graph>` on ``A``."""
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    A2 = A * A
    L4 = 8 * A2 * A2 - 8 * A2 + eye
    return {
        "L1": A.clone(),
        "Ln4": torch.softmax(L4 / A.shape[-1], dim=-2),
        "L4": L4,
        "L3": 4 * A2 * A - 3 * A,
        "L2": 2 * A2 - eye,
    }


def fixed_operator_sum(
    A: Tensor, switches: Sequence[bool], ops: Sequence[str] = FIXED_OPERATORS
) -> Tensor:
    """Sum of the operators named in ``ops`` whose switch is on (zeros when none is)."""
    if len(switches) != len(FIXED_OPERATORS):
        raise RankzcError(f"expected {len(FIXED_OPERATORS)} fixed switches, got {len(switches)}")
    table = fixed_operators(A)
    out = torch.zeros_like(A)
    for name, on in zip(FIXED_OPERATORS, switches, strict=True):
        if on and name in ops:
            out = out + table[name]
    return out
