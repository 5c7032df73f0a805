r"""Majority vote of zero-cost proxies, and a vectorised search for the best subset.

The study's rule, for a subset :math:`S` of :math:`k` proxies and a pair of architectures
:math:`(i, j)` (:math:`i` before :math:`j` in row order): proxy :math:`p` votes "first is
better" when :math:`x_{ip} - x_{jp} > 0`. A *strict majority* of such votes predicts
":math:`i` is better", anything else predicts ":math:`j` is better". The subset's score is the
share of pairs with different accuracy whose order the prediction gets right:

.. math::
    \mathrm{acc}(S) = \frac{1}{|P|} \sum_{(i,j) \in P}
    \mathbb{1}\Big[\big(\textstyle\sum_{p \in S} v_{ijp} > 0\big) = (y_i > y_j)\Big],
    \qquad v_{ijp} = \begin{cases} +1 & x_{ip} > x_{jp} \\ -1 & x_{ip} \le x_{jp} \\
    0 & x_{ip} \text{ or } x_{jp} \text{ missing} \end{cases}

With no missing value, :math:`\sum v > 0` is exactly "more than :math:`k/2` positive
differences". A missing score *abstains*: the majority is taken over the proxies that vote
(our rule for NaN; the study had none).

Search: every pair is a vector of :math:`v \in \{-1, 0, +1\}^m` over the :math:`m` proxies.
Pairs sharing a vector are merged (at most :math:`3^m`, in practice far fewer than the
:math:`\sim 240{,}000` pairs), keeping the number of pairs with :math:`y_i > y_j` (:math:`c_1`)
and with :math:`y_i < y_j` (:math:`c_0`). For a 0/1 subset-indicator matrix :math:`B`
(:math:`m \times n_S`) the votes of every (pattern, subset) are one matrix product
:math:`V B`, and

.. math:: \mathrm{acc} = \Big(\sum c_0 + (c_1 - c_0)^\top \mathbb{1}[V B > 0]\Big) / |P|.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence

import numpy as np

from rankzc.errors import RankzcError
from rankzc.ranking.base import BaseRanker, as_matrix
from rankzc.ranking.preprocessing import proxy_directions, spearman_columns

__all__ = [
    "pair_votes",
    "vote_accuracy",
    "search_subsets",
    "MajorityVoteRanker",
]


def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(n, k=1)
    return i.astype(np.int64), j.astype(np.int64)


def pair_votes(X: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Votes ``(len(i), m)`` int8: +1 where ``X[i] > X[j]``, -1 where ``<=``, 0 if either is NaN."""
    d = X[i] - X[j]
    v = np.where(d > 0, 1, -1).astype(np.int8)
    v[np.isnan(d)] = 0
    return v


def _labelled_pairs(
    X: np.ndarray, y: np.ndarray, max_pairs: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Votes of the pairs ``i < j`` with ``y_i != y_j`` and their label ``y_i > y_j``.

    All pairs, or ``max_pairs`` pairs drawn uniformly (seeded) when there are more.
    """
    n = len(y)
    if max_pairs is not None and n * (n - 1) // 2 > max_pairs:
        rng = np.random.default_rng(seed)
        a = rng.integers(0, n, size=max_pairs)
        b = rng.integers(0, n, size=max_pairs)
        i, j = np.minimum(a, b), np.maximum(a, b)
        keep = i != j
        i, j = i[keep], j[keep]
    else:
        i, j = _pairs(n)
    keep = y[i] != y[j]
    i, j = i[keep], j[keep]
    return pair_votes(X, i, j), y[i] > y[j]


def _merge_patterns(votes: np.ndarray, label: np.ndarray):
    """Unique vote patterns with the count of pairs labelled True (c1) and False (c0)."""
    m = votes.shape[1]
    if m <= 39:  # encode base 3 in an int64 for a fast unique
        code = np.zeros(len(votes), dtype=np.int64)
        for k in range(m):  # column by column: memory stays O(pairs)
            code += (votes[:, k].astype(np.int64) + 1) * 3**k
        _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
        patterns = votes[first]
    else:  # pragma: no cover - very wide inputs
        patterns, inverse = np.unique(votes, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    c1 = np.bincount(inverse, weights=label.astype(float), minlength=len(patterns))
    c0 = np.bincount(inverse, minlength=len(patterns)) - c1
    return patterns, c1, c0


def vote_accuracy(X: np.ndarray, y: np.ndarray, subset: Sequence[int] | None = None) -> float:
    """Majority-vote pairwise accuracy of the columns ``subset`` of ``X`` (plain loop-free form)."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    cols = list(range(X.shape[1])) if subset is None else list(subset)
    votes, label = _labelled_pairs(X[:, cols], y)
    if len(label) == 0:
        raise RankzcError("vote: every architecture has the same accuracy; no pair to score")
    pred = votes.astype(np.int32).sum(axis=1) > 0
    return float(np.mean(pred == label))


def search_subsets(
    X: np.ndarray,
    y: np.ndarray,
    names: Sequence[str] | None = None,
    *,
    max_size: int = 3,
    min_size: int = 1,
    chunk: int = 2048,
    max_pairs: int | None = 5_000_000,
    seed: int = 0,
) -> dict:
    """Score every subset of ``min_size..max_size`` columns of ``X`` by majority-vote accuracy.

    Returns ``{"subsets": [{"proxies", "columns", "size", "score"}, ...] best first,
    "seconds": s, "pairs": number of pairs scored, "patterns": distinct vote patterns}``.
    Ties in score are broken by smaller size, then by column order. Above ``max_pairs``
    pairs (about 3,200 architectures) the score is estimated on ``max_pairs`` random pairs
    (``"sampled": True``), which bounds memory.
    """
    start = time.perf_counter()
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2 or len(X) != len(y):
        raise RankzcError(f"vote: X has shape {X.shape} but y has {len(y)} entries")
    m = X.shape[1]
    names = [str(c) for c in (names if names is not None else range(m))]
    if not 1 <= min_size <= max_size:
        raise RankzcError(f"vote: need 1 <= min-size <= max-size, got {min_size}..{max_size}")
    max_size = min(max_size, m)
    n = len(y)
    sampled = max_pairs is not None and n * (n - 1) // 2 > max_pairs
    votes, label = _labelled_pairs(X, y, max_pairs, seed)
    if len(label) == 0:
        raise RankzcError("vote: every architecture has the same accuracy; no pair to score")
    patterns, c1, c0 = _merge_patterns(votes, label)
    n_pairs = len(label)
    V = patterns.astype(np.float32)
    gain = (c1 - c0).astype(np.float64)
    base = float(c0.sum())

    combos = [c for k in range(min_size, max_size + 1) for c in itertools.combinations(range(m), k)]
    scores = np.empty(len(combos))
    for s in range(0, len(combos), chunk):
        block = combos[s : s + chunk]
        B = np.zeros((m, len(block)), dtype=np.float32)
        for col, c in enumerate(block):
            B[list(c), col] = 1.0
        wins = (V @ B) > 0  # (patterns, subsets)
        scores[s : s + len(block)] = (base + gain @ wins) / n_pairs
    order = sorted(range(len(combos)), key=lambda t: (-scores[t], len(combos[t]), combos[t]))
    subsets = [
        {
            "proxies": sorted(names[c] for c in combos[t]),
            "columns": list(combos[t]),
            "size": len(combos[t]),
            "score": float(scores[t]),
        }
        for t in order
    ]
    return {
        "subsets": subsets,
        "seconds": time.perf_counter() - start,
        "pairs": int(n_pairs),
        "sampled": bool(sampled),
        "patterns": int(len(patterns)),
    }


class MajorityVoteRanker(BaseRanker):
    r"""Majority vote of the best proxy subset, ranking new architectures by Copeland score.

    ``fit`` orients every proxy by the sign of its Spearman :math:`\rho` on the training data
    (when ``orient``), then picks the subset of at most ``max_size`` proxies with the highest
    majority-vote pairwise accuracy on the training pairs (:func:`search_subsets`). ``predict``
    plays every new architecture :math:`a` against every training architecture :math:`t`:
    :math:`a` wins when the subset's oriented differences :math:`x_a - x_t` have more positive
    than negative signs, loses for more negative, and draws otherwise (missing values
    abstain). The score is the Copeland score :math:`(\text{wins} - \text{losses}) / n_{train}`.

    Args:
        max_size: largest subset size searched.
        orient: flip proxies whose training Spearman is negative (the study did not).
        max_candidates: only the features with the highest training ``|Spearman|`` take
            part in the search (keeps ``--features all``, ~100 columns, tractable).
    """

    name = "vote"

    def __init__(self, max_size: int = 3, orient: bool = True, max_candidates: int = 16):
        self.max_size = max_size
        self.orient = orient
        self.max_candidates = max_candidates

    def fit(self, X, y) -> MajorityVoteRanker:
        X, names = as_matrix(X, fitting=True)
        y = self._check_y(X, y)
        self.feature_names_in_ = names
        signs = proxy_directions(X, y) if self.orient else np.ones(X.shape[1])
        Xo = X * signs
        rho = np.nan_to_num(np.abs(spearman_columns(X, y)), nan=-1.0)
        cand = np.sort(np.argsort(-rho, kind="stable")[: max(1, int(self.max_candidates))])
        result = search_subsets(Xo[:, cand], y, [names[c] for c in cand], max_size=self.max_size)
        best = result["subsets"][0]
        self.signs_ = signs
        self.subset_ = cand[np.asarray(best["columns"], dtype=np.int64)]
        self.train_score_ = float(best["score"])
        self.reference_ = Xo[:, self.subset_]
        return self

    @property
    def subset_names_(self) -> list[str]:
        return [self.feature_names_in_[c] for c in self.subset_]

    def predict(self, X) -> np.ndarray:
        self._check_fitted("subset_")
        X, _ = as_matrix(X, self.feature_names_in_)
        Xs = (X * self.signs_)[:, self.subset_]
        ref = self.reference_
        out = np.empty(len(Xs))
        step = max(1, 4_000_000 // max(1, ref.size))  # bounded memory: (step, n_train, k)
        for s in range(0, len(Xs), step):
            d = Xs[s : s + step, None, :] - ref[None, :, :]
            net = np.nansum(np.sign(d), axis=2)
            out[s : s + step] = (np.sum(net > 0, axis=1) - np.sum(net < 0, axis=1)) / len(ref)
        return out

    # -- persistence -------------------------------------------------------
    def _export(self) -> tuple[dict, dict[str, np.ndarray], dict[str, str]]:
        config = {"subset": self.subset_.tolist(), "train_score": self.train_score_}
        return config, {"signs": self.signs_, "reference": self.reference_}, {}

    def _import(self, config: dict, arrays: dict[str, np.ndarray], texts: dict[str, str]) -> None:
        self.subset_ = np.asarray(config["subset"], dtype=np.int64)
        self.train_score_ = float(config["train_score"])
        self.signs_ = arrays["signs"]
        self.reference_ = arrays["reference"]
