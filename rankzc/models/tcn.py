r"""Temporal convolution unit: a :math:`K \times 1` convolution over frames + BatchNorm.

.. math::
    y = \operatorname{BN}(\operatorname{Conv}_{K \times 1,\ \text{stride } (s, 1),\
        \text{padding } ((K-1)/2, 0)}(x))

No activation (the block applies ReLU after the residual sum). With ``kernel_size=1``
it is the strided 1x1 projection used on residual paths.

With ``fuse=True`` (default) and no hook on its convolution, the convolution runs on the
channels-last ``(N, C, V, T)`` view of the input with a :math:`1 \times K` kernel (same
function; :mod:`rankzc.models.layout`); the BatchNorm module then sees ``(N, C, V, T)``.
"""

from __future__ import annotations

from torch import Tensor, nn

from rankzc.models.conv import Conv2d, conv2d
from rankzc.models.init import bn_init, conv_init
from rankzc.models.layout import hooked
from rankzc.models.taps import current_tap


class UnitTCN(nn.Module):
    """``(N, C_in, T, V) -> (N, C_out, ceil(T / stride), V)``."""

    fuse = True  # (modules pickled before the attribute existed)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 9,
        stride: int = 1,
        fuse: bool = True,
    ) -> None:
        super().__init__()
        self.fuse = fuse
        pad = (kernel_size - 1) // 2
        self.conv = Conv2d(  # nn.Conv2d, guarded (rankzc.models.conv)
            in_channels, out_channels, (kernel_size, 1), padding=(pad, 0), stride=(stride, 1)
        )
        self.bn = nn.BatchNorm2d(out_channels)
        conv_init(self.conv)
        bn_init(self.bn, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        if self.fuse and not hooked((self.conv,)):
            return self.forward_vt(x.transpose(2, 3)).transpose(2, 3)
        return self.bn(self.conv(x))

    def forward_vt(self, x: Tensor) -> Tensor:
        """:meth:`forward` on ``(N, C_in, V, T) -> (N, C_out, V, ceil(T / stride))``."""
        conv = self.conv
        weight = conv.weight
        out_c, in_c, kh, _ = weight.shape
        y = conv2d(
            x,
            weight.reshape(out_c, in_c, 1, kh),
            conv.bias,
            stride=(1, conv.stride[0]),
            padding=(0, conv.padding[0]),
        )
        tap = current_tap()
        if tap is not None:
            tap(y, [(conv, None, None)])
        return self.bn(y)
