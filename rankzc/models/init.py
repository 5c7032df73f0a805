r"""Weight initialisation of the GCN-NAS network, as in the study.

- convolutions: Kaiming-normal with ``mode="fan_out"``, bias 0;
- BatchNorm: weight 1 (the gcn unit's output BatchNorm: :math:`10^{-6}`), bias 0;
- the three ``conv_d`` branches: :math:`\mathcal{N}(0, 2 / (C_{out} C_{in} \cdot 1 \cdot 3))`,
  bias 0;
- classifier weight :math:`\mathcal{N}(0, 2 / n_{classes})` (bias keeps PyTorch's default).

The Gaussian draws are :mod:`rankzc.models.sampling`'s: the same numbers on every CPU.
"""

from __future__ import annotations

import math

from torch import nn

from rankzc.models.sampling import kaiming_normal_, normal_


def conv_init(conv: nn.Conv2d) -> None:
    """Kaiming-normal (fan_out) weight, zero bias."""
    if conv.weight.is_meta:  # nothing to initialise (e.g. counting parameters)
        return
    kaiming_normal_(conv.weight, mode="fan_out")
    if conv.bias is not None:
        nn.init.constant_(conv.bias, 0)


def bn_init(bn: nn.modules.batchnorm._BatchNorm, scale: float = 1.0) -> None:
    """BatchNorm weight ``scale``, bias 0."""
    if bn.weight.is_meta:
        return
    nn.init.constant_(bn.weight, scale)
    nn.init.constant_(bn.bias, 0)


def conv_branch_init(conv: nn.Conv2d, branches: int) -> None:
    """Normal weight with std ``sqrt(2 / (out * in * kh * branches))``, zero bias."""
    if conv.weight.is_meta:
        return
    out_c, in_c, kh, _ = conv.weight.shape
    normal_(conv.weight, 0.0, math.sqrt(2.0 / (out_c * in_c * kh * branches)))
    if conv.bias is not None:
        nn.init.constant_(conv.bias, 0)
