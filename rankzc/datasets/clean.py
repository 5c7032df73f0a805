"""Repairs applied to canonical skeleton arrays ``(n, 3, T, 25, M)`` as they are loaded.

* A body's frame holding a NaN is replaced by that body's nearest earlier frame
  without NaN (or its first one, for leading frames); a body with no such frame
  becomes zeros.
* A sample with no finite non-zero value at all (all NaN, all zero) is dropped.
* A sample is *padded* when its last frame with a non-zero value comes before
  the end (zero frames at the end).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class CleanStats:
    """Counts of one :func:`repair` call."""

    nan_fixed: int = 0
    dropped_empty: int = 0
    padded: int = 0


def repair(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, CleanStats]:
    """Repair NaN frames in place; return ``(x, keep mask, stats)``.

    ``x`` must be a writable float array ``(n, 3, T, 25, M)``.
    """
    stats = CleanStats()
    n, _, t, _, m = x.shape
    bad = np.isnan(x).any(axis=(1, 3))  # (n, T, M)
    finite_nonzero = np.isfinite(x) & (x != 0)
    keep = finite_nonzero.reshape(n, -1).any(axis=1)
    stats.dropped_empty = int((~keep).sum())
    affected = np.flatnonzero(bad.any(axis=(1, 2)) & keep)
    frames = np.arange(t)
    for i in affected:
        for b in range(m):
            badf = bad[i, :, b]
            if not badf.any():
                continue
            good = np.flatnonzero(~badf)
            if good.size == 0:
                x[i, :, :, :, b] = 0.0
                continue
            src = np.maximum.accumulate(np.where(badf, -1, frames))
            src[src < 0] = good[0]
            x[i, :, :, :, b] = x[i, :, src, :, b].transpose(1, 0, 2)
    stats.nan_fixed = int(affected.size)
    del finite_nonzero
    last = ((x != 0).any(axis=(1, 3, 4)) * np.arange(1, t + 1)).max(axis=1)  # (n,)
    stats.padded = int(((last < t) & keep).sum())
    return x, keep, stats
