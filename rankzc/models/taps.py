r"""Layer-output taps: what the fused path shows of the layers it fuses.

The fused path (:mod:`rankzc.models.layout`) runs several convolutions as one and calls
none of them as a module, so a module hook cannot see their outputs; a hook on one makes
the unit take the slower unfused path instead. A tap sees every layer's output without
changing the path: inside ``with output_taps(callback)``, the fused path reports each
layer output it computes as ``callback(out, parts)``, where

* ``out`` is a tensor of the forward's graph (axis 0 samples, axis 1 channels);
* ``parts`` lists ``(layer, channels, output)``, one per layer whose output is in
  ``out``: ``layer`` the module whose ``weight`` made it; ``channels`` the slice of
  ``out``'s axis 1 that is that layer's output, and of ``out``'s gradient that is its
  gradient (``None``: all of axis 1); ``output`` ``None``, or, where ``out`` is the SUM
  of several layers' outputs (the three ``conv_d`` branches of a gcn unit, one
  convolution on the fused path), a function that computes that layer's own output
  without a graph; its gradient is then ``out``'s whole gradient.

Every layer the unfused path calls as a module is reported once per forward, so a
consumer (the ``fisher`` proxy's shared pass) gets the same per-layer activations and
gradients as forward hooks would give, in the fused path's order of summation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

from torch import Tensor, nn

#: One layer in a reported output: ``(layer, channels, output)`` (see the module doc).
Part = tuple[nn.Module, "slice | None", "Callable[[], Tensor] | None"]
TapFn = Callable[[Tensor, Sequence[Part]], None]

#: The active tap (one list entry: a process-wide setting, not a context variable, so
#: that a block recomputed in the backward, which may run on autograd's device thread,
#: reports too).
_TAP: list[TapFn | None] = [None]


@contextlib.contextmanager
def output_taps(callback: TapFn) -> Iterator[None]:
    """Within the block the fused path reports its layer outputs to ``callback``; keep
    the backward inside it when blocks are recomputed there."""
    before = _TAP[0]
    _TAP[0] = callback
    try:
        yield
    finally:
        _TAP[0] = before


def current_tap() -> TapFn | None:
    """The active tap, or None (the fused path then builds no ``parts``)."""
    return _TAP[0]


def channel_parts(layers: Sequence[nn.Module], width: int) -> list[Part]:
    """Parts of an output whose axis 1 stacks ``layers``' outputs, ``width`` channels each."""
    return [(m, slice(j * width, (j + 1) * width), None) for j, m in enumerate(layers)]
