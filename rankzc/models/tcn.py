r"""Temporal convolution unit: a :math:`K \times 1` convolution over frames + BatchNorm.

.. math::
    y = \operatorname{BN}(\operatorname{Conv}_{K \times 1,\ \text{stride } (s, 1),\
        \text{padding } ((K-1)/2, 0)}(x))

No activation (the block applies ReLU after the residual sum). With ``kernel_size=1``
it is the strided 1x1 projection used on residual paths.
"""

from __future__ import annotations

from torch import Tensor, nn

from rankzc.models.init import bn_init, conv_init


class UnitTCN(nn.Module):
    """``(N, C_in, T, V) -> (N, C_out, ceil(T / stride), V)``."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 9, stride: int = 1
    ) -> None:
        super().__init__()
        pad = (kernel_size - 1) // 2
        self.conv = nn.Conv2d(
            in_channels, out_channels, (kernel_size, 1), padding=(pad, 0), stride=(stride, 1)
        )
        self.bn = nn.BatchNorm2d(out_channels)
        conv_init(self.conv)
        bn_init(self.bn, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))
