r"""One GCN-NAS block: :math:`y = \operatorname{ReLU}(\mathrm{tcn}(\mathrm{gcn}(x)) + r(x))`.

The residual :math:`r` is absent (0) in the first block, the identity when
:math:`C_{in} = C_{out}` and the stride is 1, otherwise a strided 1x1
:class:`~rankzc.models.tcn.UnitTCN`. The gcn part never strides; the tcn (9x1) does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rankzc.models.tcn import UnitTCN
from rankzc.models.unit_gcn import UnitGCN


class Block(nn.Module):
    """A gcn unit followed by a temporal unit, with a residual path.

    Args:
        in_channels, out_channels: channels.
        A: the ``3 x V x V`` spatial partition.
        switches: the block's 8 switches (order of :data:`rankzc.space.OPS`).
        stride: temporal stride of the tcn and the residual projection.
        residual: ``False`` for the first block.
        aggregation: passed to :class:`~rankzc.models.unit_gcn.UnitGCN`.
        fuse: passed to the gcn unit and the temporal units (the fused path).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        A,
        switches: Sequence[bool],
        stride: int = 1,
        residual: bool = True,
        aggregation: str = "dense",
        fuse: bool = True,
    ) -> None:
        super().__init__()
        self.gcn = UnitGCN(
            in_channels, out_channels, A, switches, aggregation=aggregation, fuse=fuse
        )
        self.tcn = UnitTCN(out_channels, out_channels, stride=stride, fuse=fuse)
        self.has_residual = residual
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = UnitTCN(
                in_channels, out_channels, kernel_size=1, stride=stride, fuse=fuse
            )

    def forward(self, x: Tensor) -> Tensor:
        y = self.tcn(self.gcn(x))
        if self.residual is None:
            return F.relu(y)
        return torch.relu_(y + self.residual(x))  # in place: the sum is this block's own
