r"""Majority vote of zero-cost proxies, and a vectorised search for the best subset.

For a subset :math:`S` of :math:`k` proxies and a pair of architectures :math:`(i, j)`
(:math:`i` before :math:`j` in row order), proxy :math:`p` casts the vote

.. math:: v_{ijp} = \begin{cases} +1 & x_{ip} > x_{jp} \\ -1 & x_{ip} < x_{jp} \\
    t & x_{ip} = x_{jp} \\ 0 & x_{ip} \text{ or } x_{jp} \text{ missing (abstains)}
    \end{cases}

and the pair's net vote is :math:`N = \sum_{p \in S} v_{ijp}`. One **tie rule** governs both
the subset search and :meth:`MajorityVoteRanker.predict`:

* ``ties="draw"`` (default): equal values abstain (:math:`t = 0`); :math:`N > 0` predicts
  ":math:`i` is better", :math:`N < 0` ":math:`j` is better" and :math:`N = 0` is a draw, which
  counts one half in the pairwise score (as a tie does in
  :func:`rankzc.stats.pairwise_accuracy`) and zero in the Copeland score;
* ``ties="study"``: the study's rule: equal values vote "second is better"
  (:math:`t = -1`) and anything but a strict majority of "first is better" predicts
  ":math:`j` is better" (a draw is a loss for the first). Reproduces the study's Table 5.2.

The subset's score is the share of pairs with different accuracy whose order the
prediction gets right:

.. math::
    \mathrm{acc}(S) = \frac{1}{|P|} \sum_{(i,j) \in P}
    \Big(\mathbb{1}[N > 0]\,\mathbb{1}[y_i > y_j] + \mathbb{1}[N < 0]\,\mathbb{1}[y_i < y_j]
    + \tfrac12 \mathbb{1}[N = 0]\Big)

(with ``ties="study"``, :math:`N = 0` counts as :math:`N < 0`).

Search: every pair is a vector of :math:`v \in \{-1, 0, +1\}^m` over the :math:`m` proxies.
Pairs sharing a vector are merged (at most :math:`3^m`, in practice far fewer than the
:math:`\sim 240{,}000` pairs), keeping the number of pairs with :math:`y_i > y_j` (:math:`c_1`)
and with :math:`y_i < y_j` (:math:`c_0`). For a 0/1 subset-indicator matrix :math:`B`
(:math:`m \times n_S`) the net votes of every (pattern, subset) are one matrix product
:math:`V B`. Above ``max_pairs`` pairs the score is estimated from that many random pairs
and the result says so (``"sampled": True``).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence

import numpy as np

from rankzc.errors import RankzcError
from rankzc.ranking.base import BaseRanker, as_matrix
from rankzc.stats import spearman_columns

__all__ = [
    "pair_votes",
    "vote_accuracy",
    "search_subsets",
    "MajorityVoteRanker",
]


def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(n, k=1)
    return i.astype(np.int64), j.astype(np.int64)


TIES = ("draw", "study")


def _check_ties(ties: str) -> str:
    if ties not in TIES:
        raise RankzcError(f"vote: ties must be one of {', '.join(TIES)}, got {ties!r}")
    return ties


def pair_votes(X: np.ndarray, i: np.ndarray, j: np.ndarray, ties: str = "draw") -> np.ndarray:
    """Votes ``(len(i), m)`` int8: +1 where ``X[i] > X[j]``, -1 where ``<``, for equal values
    0 (``ties="draw"``) or -1 (``ties="study"``), and 0 where either is NaN."""
    study = _check_ties(ties) == "study"
    v = np.empty((len(i), X.shape[1]), dtype=np.int8)
    for k in range(X.shape[1]):  # column by column: memory O(pairs) in int8
        d = X[i, k] - X[j, k]
        col = np.sign(d)
        if study:
            col[d == 0] = -1
        col[np.isnan(d)] = 0
        v[:, k] = col
    return v


def _pair_score(net: np.ndarray, label: np.ndarray, ties: str) -> np.ndarray:
    """Correctness of each pair's prediction from its net vote: 1, 0, or 1/2 for a draw."""
    first = net > 0
    if ties == "study":
        return (first == label).astype(float)
    return np.where(net == 0, 0.5, (first == label) & (net != 0))


def _labelled_pairs(
    X: np.ndarray, y: np.ndarray, max_pairs: int | None = None, seed: int = 0, ties: str = "draw"
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
    return pair_votes(X, i, j, ties), y[i] > y[j]


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


def vote_accuracy(
    X: np.ndarray, y: np.ndarray, subset: Sequence[int] | None = None, *, ties: str = "draw"
) -> float:
    """Majority-vote pairwise accuracy of the columns ``subset`` of ``X`` (plain loop-free form)."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    cols = list(range(X.shape[1])) if subset is None else list(subset)
    votes, label = _labelled_pairs(X[:, cols], y, ties=ties)
    if len(label) == 0:
        raise RankzcError("vote: every architecture has the same accuracy; no pair to score")
    return float(np.mean(_pair_score(votes.astype(np.int32).sum(axis=1), label, ties)))


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
    ties: str = "draw",
) -> dict:
    """Score every subset of ``min_size..max_size`` columns of ``X`` by majority-vote accuracy.

    Returns ``{"subsets": [{"proxies", "columns", "size", "score"}, ...] best first,
    "seconds": s, "pairs": number of pairs scored, "patterns": distinct vote patterns}``.
    Ties in score are broken by smaller size, then by column order. Above ``max_pairs``
    pairs (about 3,200 architectures) the score is estimated on ``max_pairs`` random pairs
    (``"sampled": True``), which bounds memory. ``ties``: the tie rule (module docstring).
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
    _check_ties(ties)
    votes, label = _labelled_pairs(X, y, max_pairs, seed, ties)
    if len(label) == 0:
        raise RankzcError("vote: every architecture has the same accuracy; no pair to score")
    patterns, c1, c0 = _merge_patterns(votes, label)
    n_pairs = len(label)
    V = patterns.astype(np.float32)
    gain = (c1 - c0).astype(np.float64)
    base = float(c0.sum())
    half = 0.5 * float(c0.sum() + c1.sum())

    combos = [c for k in range(min_size, max_size + 1) for c in itertools.combinations(range(m), k)]
    scores = np.empty(len(combos))
    for s in range(0, len(combos), chunk):
        block = combos[s : s + chunk]
        B = np.zeros((m, len(block)), dtype=np.float32)
        for col, c in enumerate(block):
            B[list(c), col] = 1.0
        net = V @ B  # (patterns, subsets)
        if ties == "study":  # a draw predicts "second is better"
            scores[s : s + len(block)] = (base + gain @ (net > 0)) / n_pairs
        else:  # a draw counts one half: c1 [N>0] + c0 [N<0] + (c0+c1)/2 [N=0]
            scores[s : s + len(block)] = (half + 0.5 * (gain @ np.sign(net))) / n_pairs
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
        "ties": ties,
    }


class MajorityVoteRanker(BaseRanker):
    r"""Majority vote of the best proxy subset, ranking new architectures by Copeland score.

    ``fit`` orients every proxy by the sign of its Spearman :math:`\rho` on the training data
    (when ``orient``), then picks the subset of at most ``max_size`` proxies with the highest
    majority-vote pairwise accuracy on the training pairs (:func:`search_subsets`, with the
    same ``ties`` rule). ``predict`` plays every new architecture :math:`a` against the
    reference architectures :math:`t` (the training rows, or ``max_reference`` of them drawn
    at random, seeded, when there are more) with the same rule: :math:`a` wins when the net
    vote of the subset's oriented differences :math:`x_a - x_t` is positive, loses when it is
    negative; a zero net vote is a draw (``ties="draw"``) or a loss (``ties="study"``).
    Missing values abstain. The score is the Copeland score
    :math:`(\text{wins} - \text{losses}) / n_{ref}`. Prediction costs
    :math:`O(n_{test} \cdot \min(n_{train}, \text{max\_reference}))`, not
    :math:`O(n_{test} \cdot n_{train})`.

    Args:
        max_size: largest subset size searched.
        orient: flip proxies whose training Spearman is negative (the study did not).
        max_candidates: only the features with the highest training ``|Spearman|`` take
            part in the search (keeps ``--features all``, ~100 columns, tractable).
        ties: ``"draw"`` or ``"study"`` (module docstring).
        max_reference: most training rows kept to play new architectures against.
        max_pairs: most training pairs scored by the subset search (sampled above).
        seed: seed of the reference and pair samples.
    """

    name = "vote"

    def __init__(
        self,
        max_size: int = 3,
        orient: bool = True,
        max_candidates: int = 16,
        ties: str = "draw",
        max_reference: int = 2000,
        max_pairs: int = 2_000_000,
        seed: int = 0,
    ):
        self.max_size = max_size
        self.orient = orient
        self.max_candidates = max_candidates
        self.ties = ties
        self.max_reference = max_reference
        self.max_pairs = max_pairs
        self.seed = seed

    def fit(self, X, y) -> MajorityVoteRanker:
        _check_ties(self.ties)
        X, names = as_matrix(X, fitting=True)
        y = self._check_y(X, y)
        if X.shape[1] == 0:
            raise RankzcError("vote: no feature column to vote with")
        self.feature_names_in_ = names
        rho = spearman_columns(X, y)
        signs = np.where(np.nan_to_num(rho) < 0, -1.0, 1.0) if self.orient else np.ones(X.shape[1])
        Xo = X * signs
        score = np.nan_to_num(np.abs(rho), nan=-1.0)
        cand = np.sort(np.argsort(-score, kind="stable")[: max(1, int(self.max_candidates))])
        result = search_subsets(
            Xo[:, cand],
            y,
            [names[c] for c in cand],
            max_size=self.max_size,
            max_pairs=self.max_pairs,
            seed=self.seed,
            ties=self.ties,
        )
        best = result["subsets"][0]
        self.signs_ = signs
        self.subset_ = cand[np.asarray(best["columns"], dtype=np.int64)]
        self.train_score_ = float(best["score"])
        self.train_score_sampled_ = bool(result["sampled"])
        ref = np.arange(len(y))
        if len(ref) > int(self.max_reference):
            rng = np.random.default_rng(self.seed)
            ref = np.sort(rng.choice(len(y), size=int(self.max_reference), replace=False))
        self.reference_ = Xo[np.ix_(ref, self.subset_)]
        return self

    @property
    def subset_names_(self) -> list[str]:
        return [self.feature_names_in_[c] for c in self.subset_]

    def predict(self, X) -> np.ndarray:
        self._check_fitted("subset_")
        X, _ = as_matrix(X, self.feature_names_in_)
        Xs = (X * self.signs_)[:, self.subset_]
        ref = self.reference_
        study = getattr(self, "ties", "draw") == "study"
        out = np.empty(len(Xs))
        step = max(1, 4_000_000 // max(1, ref.size))  # bounded memory: (step, n_ref, k)
        for s in range(0, len(Xs), step):
            d = Xs[s : s + step, None, :] - ref[None, :, :]
            v = np.sign(d)
            if study:
                v[d == 0] = -1.0
            net = np.nansum(v, axis=2)
            wins = np.sum(net > 0, axis=1)
            losses = len(ref) - wins if study else np.sum(net < 0, axis=1)
            out[s : s + step] = (wins - losses) / len(ref)
        return out

    # -- persistence -------------------------------------------------------
    def _export(self) -> tuple[dict, dict[str, np.ndarray], dict[str, str]]:
        config = {
            "subset": self.subset_.tolist(),
            "train_score": self.train_score_,
            "ties": self.ties,
        }
        return config, {"signs": self.signs_, "reference": self.reference_}, {}

    def _import(self, config: dict, arrays: dict[str, np.ndarray], texts: dict[str, str]) -> None:
        self.subset_ = np.asarray(config["subset"], dtype=np.int64)
        self.train_score_ = float(config["train_score"])
        self.ties = _check_ties(str(config.get("ties", "draw")))
        self.signs_ = arrays["signs"]
        self.reference_ = arrays["reference"]
