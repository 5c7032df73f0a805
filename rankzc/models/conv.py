r"""Convolution with a guard against a oneDNN defect in strided :math:`1 \times 1` kernels.

A strided pointwise convolution equals an unstrided one on the subsampled input:

.. math::
    \operatorname{Conv}_{1 \times 1,\ \text{stride } (s_h, s_w)}(x)
    = \operatorname{Conv}_{1 \times 1}\big(x[:, :, ::s_h, ::s_w]\big)

(every output position reads exactly one input position, padding 0). The residual
projections of the GCN-NAS network's channel-doubling blocks are such convolutions, with a
temporal stride of 2.

**Why this module exists.** The oneDNN bundled with PyTorch (3.12 in torch 2.13) computes
the *weight gradient* of a strided :math:`1 \times 1` convolution on channels-last input
with fewer input channels than one vector register holds wrongly on CPUs without AVX-512:
its AVX2 kernel (``jit_1x1:avx2``) writes past its workspace when ``IC < 8``
(`oneDNN issue 6035 <https://github.com/uxlfoundation/oneDNN/issues/6035>`_). Measured
here with ``ONEDNN_MAX_CPU_ISA=AVX2`` (what an AVX2-only CPU runs) on 1, 2 and 4 threads:
heap corruption (``double free or corruption``, segmentation faults) for 2 to 7 input
channels; the issue also reports wrong gradients and hangs. The ``tiny`` preset (4 input
channels at its first channel-doubling block) therefore crashed in training on such
machines. AVX-512 kernels and unstrided or larger convolutions gave exact gradients.

:func:`conv2d` therefore subsamples first where the defect can reach (CPU, kernel
:math:`1 \times 1`, stride above 1, padding 0, fewer than :data:`SAFE_CHANNELS` input
channels per group: below one AVX-512 register of floats, a margin over the AVX2 bound);
elsewhere it is :func:`torch.nn.functional.conv2d` itself. The values are the same (the
same products and sums); wider convolutions keep the strided kernel (subsampling measured
from 1.2x faster to 2.2x slower than it at the ``cpu`` and ``ntu60`` presets' widths, one
thread).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

#: strided 1 x 1 convolutions with fewer input channels (per group) subsample first
SAFE_CHANNELS = 16


def subsamples(weight: Tensor, stride, padding, x: Tensor) -> bool:
    """Whether :func:`conv2d` computes this convolution as subsample + unstrided kernel."""
    return (
        x.device.type == "cpu"
        and tuple(weight.shape[2:]) == (1, 1)
        and max(stride) > 1
        and not any(padding)
        and weight.shape[1] < SAFE_CHANNELS
    )


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
) -> Tensor:
    """:func:`torch.nn.functional.conv2d` (numeric ``padding`` only), a strided
    :math:`1 \\times 1` kernel of few input channels computed on the subsampled input
    (see the module docstring)."""
    stride, padding = _pair(stride), _pair(padding)
    if subsamples(weight, stride, padding, x):
        x = x[:, :, :: stride[0], :: stride[1]]
        stride = (1, 1)
    return F.conv2d(x, weight, bias, stride, padding, dilation, groups)


class Conv2d(nn.Conv2d):
    """:class:`torch.nn.Conv2d` computed by :func:`conv2d` (same parameters, state dict
    and hooks)."""

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            return super()._conv_forward(input, weight, bias)
        return conv2d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)
