r"""Label-free rank aggregation of zero-cost proxies (``--model rankagg``).

``fit(X, y=None)`` never reads ``y``: every choice below is made from the proxy values alone,
so the ranker can be fitted on a benchmark without labels, and under cross-validation it
uses the training rows' proxies only (a test checks that shuffled or NaN labels give the
same predictions).

**Normalised rank.** Each proxy :math:`p` is turned into a normalised rank
:math:`u_p(a) \in (0, 1)`, the mid-rank of :math:`x_{ap}` among the reference values
(the proxy's values on the rows given to ``fit``, ``reference="fit"``; or on the rows given
to ``predict``, ``reference="batch"``, the transductive AZ-NAS form), divided by the number
of reference values plus one. Larger :math:`u` means better after orientation.

**Rules.** ``rule="log"`` (AZ-NAS, Lee & Hyun, CVPR 2024) scores
:math:`s(a) = \frac{1}{|P_a|}\sum_{p \in P_a} \log u_p(a)`, the mean log normalised rank (a
sum in AZ-NAS; the mean keeps architectures with a missing proxy comparable, and without
missing values it ranks identically). An architecture that is poor on any one proxy is
penalised strongly (a product of ranks). ``rule="mean"`` scores the mean normalised rank
(Borda count). :math:`P_a` are the kept proxies with a finite value for :math:`a`.

**Direction (label-free).** A proxy's direction cannot come from labels here. Each proxy
starts from its *prior* direction, ``directions[p]`` when given, else +1 (every proxy in
:mod:`rankzc.proxies` is registered ``higher_is_better=True``, as are the
NAS-Bench-Suite-Zero proxies). Then, with ``orient="consensus"`` (default):

* **size measures anchor the consensus** (``anchor="size"``, default, when ``params`` or
  ``flops`` is among the proxies): they keep their prior direction and always vote; the
  consensus is ``anchor_share`` (0.5) times their mean rank plus the rest times the mean
  rank of the other kept proxies (:func:`anchored_directions`). Each other proxy is
  compared with the consensus of the *other* votes: one that disagrees (negative Spearman:
  anti-correlated with the other votes) **loses its vote** (``disagree="drop"``, default;
  ``"flip"`` gives it the sign of the data's agreement instead), one below
  ``min_agreement`` too; starting from the size measures alone, this is repeated until the
  votes no longer change. The kept proxies' agreement weights are their Spearman with
  that anchored consensus.
* without a size measure (or ``anchor="none"``): the consensus is the first principal
  component of the prior-oriented normalised ranks, signed so that its loadings sum to a
  positive number, and a proxy whose Spearman with it is negative is flipped.

With ``orient="prior"`` the priors are kept. Why the anchor: on NAS-Bench-Suite-Zero files
where some proxies are anti-correlated with accuracy *and* with each other (NB101 jacov
-0.50, NB301 fisher and plain -0.30) the principal component followed them and the
unanchored order fell below ordering by params (NB101 0.627 against 0.716, NB301 0.262
against 0.523, figures from the issue, files not in ``../shared``). On generated tables
where a third of the proxies share a nuisance factor and are anti-correlated with accuracy,
the anchored rule stays within 0.05 of the better of the params and flops orders and the
unanchored one does not (``tests/test_ranking_rankagg.py``). The anchor assumes that larger
models are not worse, the usual case; where small models win (short training budgets) no
label-free rule can know it: give ``directions`` or fit a labelled ranker.

**Proxy set.** ``proxies`` names the proxies to aggregate; by default every column that is
not an architecture-encoding or graph feature (see
:func:`rankzc.ranking.features.is_proxy_column`). A proxy that agrees with no one is dropped:
\|Spearman\| with the consensus below ``min_agreement`` (default 0.2, a conventional "weak"
correlation; such a proxy shares no signal with the others and, under the log rule, its
random low ranks would only add noise). The votes of the kept proxies are then weighted, in
two label-free steps:

1. *near-duplicates share one vote* (``dedup``, default 0.95): a proxy whose \|Spearman\|
   with ``k`` other kept proxies exceeds ``dedup`` gets :math:`1/(1+k)`, so that two
   columns that measure the same thing (``params`` and ``flops``, ``snip`` and
   ``grad_norm``) do not count twice;
2. *agreement* (``weighting="agreement"``, default): each vote is multiplied by the
   proxy's Spearman with the aggregate of the *other* proxies (clipped at 0). Under the
   usual unsupervised-ensemble assumption (distinct proxies err independently), a proxy
   that correlates more with the others' consensus correlates more with accuracy.
   ``weighting="equal"`` skips this step.

Measured with no labels, fitted and scored on all architectures (``benchmarks/rankers2.py``
prints these and the 5x3 CV figures): NAS-Bench-201 CIFAR-10 0.823 with
equal votes and no dedup, 0.852 with the defaults before the size anchor, 0.849 with it
(``plain``, -0.26 with accuracy, loses its vote); the GCN-NAS study 0.724 and 0.756, 0.755
with the anchor (``grasp`` loses its vote). 5x3 CV (``rankzc evaluate --models rankagg``):
the study 0.754 ± 0.034 (0.754 ± 0.032 before), NAS-Bench-201 0.845 ± 0.027 (0.848 ± 0.028). The
two steps were chosen because each holds on both benchmarks; the threshold 0.95 means
"the same measurement", not a tuned value (0.9 makes the study's size-like proxies share a
vote and costs it 0.05). Constant proxies are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rankzc.errors import RankzcError
from rankzc.ranking.base import BaseRanker, as_matrix

__all__ = [
    "RankAggRanker",
    "normalised_ranks",
    "consensus_directions",
    "anchored_directions",
    "SIZE_MEASURES",
]

RULES = ("log", "mean")
REFERENCES = ("fit", "batch")
ORIENTS = ("consensus", "prior")
ANCHORS = ("size", "none")
DISAGREE = ("drop", "flip")
#: size measures: the label-free anchor of the consensus (``anchor="size"``)
SIZE_MEASURES = ("params", "flops")
WEIGHTINGS = ("agreement", "equal")
#: most reference values kept per proxy (evenly spaced quantiles beyond that)
MAX_REFERENCE = 4096


def _reference(col: np.ndarray) -> np.ndarray:
    ok = np.sort(col[np.isfinite(col)])
    if len(ok) > MAX_REFERENCE:
        ok = np.quantile(ok, np.linspace(0, 1, MAX_REFERENCE))
    return ok


def normalised_ranks(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Mid-rank of every value of ``x`` among the sorted ``ref``, in ``(0, 1)``; NaN kept."""
    x = np.asarray(x, dtype=float)
    lo = np.searchsorted(ref, x, side="left")
    hi = np.searchsorted(ref, x, side="right")
    u = (0.5 * (lo + hi) + 0.5) / (len(ref) + 1.0)
    return np.where(np.isfinite(x), u, np.nan)


def _rank_matrix(X: np.ndarray, refs: Sequence[np.ndarray]) -> np.ndarray:
    return np.column_stack([normalised_ranks(X[:, k], refs[k]) for k in range(X.shape[1])])


def _spearman_u(a: np.ndarray, b: np.ndarray) -> float:
    from rankzc.stats import spearman

    return float(spearman(a, b))


def consensus_directions(U: np.ndarray, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(consensus score per row, Spearman of every column with it) for normalised ranks ``U``.

    ``U`` holds normalised ranks (NaN = missing, imputed by 0.5 for the principal component);
    ``prior`` is +1/-1 per column. The consensus is the first principal component of the
    prior-oriented, centred ranks, signed so that its loadings sum to a positive number.
    """
    V = np.where(np.isnan(U), 0.5, U)
    V = np.where(prior < 0, 1.0 - V, V) - 0.5
    if V.shape[1] == 1:
        cons = V[:, 0]
    else:
        _, _, vt = np.linalg.svd(V - V.mean(axis=0), full_matrices=False)
        load = vt[0]
        if load.sum() < 0:
            load = -load
        cons = V @ load
    rho = np.array(
        [
            _spearman_u(np.where(prior[k] < 0, 1.0 - U[:, k], U[:, k]), cons)
            for k in range(U.shape[1])
        ]
    )
    return cons, rho


def _scores(V: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean of the columns of ``V`` over each row's finite entries."""
    ok = np.isfinite(V)
    count = (ok * weights).sum(axis=1)
    total = np.where(ok, V, 0.0) @ weights
    return np.where(count > 0, total / np.where(count > 0, count, 1.0), np.nan)


def _votes(U: np.ndarray, sign: np.ndarray, rule: str) -> np.ndarray:
    """Normalised ranks ``U`` oriented by ``sign``, as the rule adds them (log or plain)."""
    U = np.where(sign < 0, 1.0 - U, U)
    return np.log(U) if rule == "log" else U


def _agreement(U: np.ndarray, sign: np.ndarray, weights: np.ndarray, rule: str) -> np.ndarray:
    """Each column's Spearman with the aggregate of the *other* columns, clipped at 0.

    ``U`` are normalised ranks, oriented here by ``sign``; the aggregate uses ``weights``
    (the near-duplicate shares) and ``rule``. Leaving the column out keeps a proxy from
    voting for itself.
    """
    V = _votes(U, sign, rule)  # a vote orders as its oriented rank (log is monotone)
    out = np.empty(V.shape[1])
    for k in range(V.shape[1]):
        w = weights.copy()
        w[k] = 0.0
        out[k] = _spearman_u(V[:, k], _scores(V, w))
    return np.clip(np.nan_to_num(out), 0.0, None)


def _mean_cols(V: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean of columns over each row's finite entries (0.5 where none: neutral)."""
    out = _scores(V, weights)
    return np.where(np.isfinite(out), out, 0.5)


def anchored_directions(
    U: np.ndarray,
    prior: np.ndarray,
    anchor: np.ndarray,
    min_agreement: float,
    anchor_share: float = 0.5,
    disagree: str = "drop",
    max_iter: int = 20,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sign, kept, rho) of every column of normalised ranks ``U`` against an anchored consensus.

    ``anchor`` is a boolean mask of the size columns; they keep their ``prior`` direction and
    always vote. The consensus is ``anchor_share`` times the size columns' mean oriented rank
    plus the rest times the mean oriented rank of the other kept columns. Every non-anchor
    column is compared with the consensus *without itself* (the other votes): with a
    negative Spearman it loses its vote (``disagree="drop"``) or is flipped (``"flip"``: its
    sign comes from the data's agreement); one below ``min_agreement`` in absolute value
    loses its vote. Starting from the size columns alone,
    this is repeated until the signs and votes no longer change (at most ``max_iter`` times).
    ``rho`` is each column's Spearman with the other votes, in its final orientation.
    """
    p = U.shape[1]
    W = np.where(prior < 0, 1.0 - U, U)  # prior-oriented
    sign = np.ones(p)  # relative to the prior
    kept = anchor.copy()
    a = _mean_cols(W[:, anchor], np.ones(int(anchor.sum())))
    rho = np.zeros(p)
    for _ in range(max_iter):
        V = np.where(sign < 0, 1.0 - W, W)
        rho = np.zeros(p)
        for k in range(p):
            others = kept & ~anchor
            others[k] = False
            if anchor[k]:
                a_k = anchor.copy()
                a_k[k] = False
                base = _mean_cols(V[:, a_k], np.ones(int(a_k.sum()))) if a_k.any() else None
            else:
                base = a
            if others.any():
                rest = _mean_cols(V[:, others], np.ones(int(others.sum())))
                c = rest if base is None else anchor_share * base + (1 - anchor_share) * rest
            else:
                c = base
            rho[k] = 0.0 if c is None else np.nan_to_num(_spearman_u(V[:, k], c))
        against = ~anchor & (rho < 0)
        new_kept = anchor | (np.abs(rho) >= min_agreement)
        if disagree == "flip":
            new_sign = np.where(against, -sign, sign)
            rho = np.where(against, -rho, rho)
        else:
            new_sign = sign
            new_kept &= ~against
        if np.array_equal(new_sign, sign) and np.array_equal(new_kept, kept):
            break
        sign, kept = new_sign, new_kept
    return sign * prior, kept, rho


class RankAggRanker(BaseRanker):
    """Label-free aggregation of proxy ranks (see the module docstring).

    Args:
        rule: ``"log"`` (AZ-NAS: mean log normalised rank) or ``"mean"`` (mean rank).
        proxies: columns to aggregate (default: every proxy column of ``X``).
        dedup: near-duplicates (\\|Spearman\\| above this) share one vote (None: off).
        orient: ``"consensus"`` (directions from the consensus, see ``anchor``) or
            ``"prior"`` (keep the prior directions).
        directions: prior direction per proxy name (+1 higher is better, -1 lower is
            better); unnamed proxies get +1.
        reference: ``"fit"`` ranks new rows among the fitted rows' values; ``"batch"``
            ranks them among the rows given to ``predict`` (AZ-NAS's transductive form).
        min_agreement: drop a proxy whose |Spearman| with the consensus is below this
            (0 keeps all).
        weighting: ``"agreement"`` (each vote times its Spearman with the other proxies'
            aggregate) or ``"equal"``.
        anchor: ``"size"`` (params and flops anchor the consensus when present) or
            ``"none"`` (the principal-component consensus).
        anchor_share: the size measures' share of the anchored consensus.
        disagree: a proxy anti-correlated with the other votes is dropped (``"drop"``) or
            flipped (``"flip"``); anchored consensus only.
    """

    name = "rankagg"
    #: fits without labels (``rankzc fit`` then uses unlabelled architectures too)
    needs_labels = False

    def __init__(
        self,
        rule: str = "log",
        proxies: Sequence[str] | None = None,
        dedup: float | None = 0.95,
        orient: str = "consensus",
        directions: dict[str, float] | None = None,
        reference: str = "fit",
        min_agreement: float = 0.2,
        weighting: str = "agreement",
        anchor: str = "size",
        anchor_share: float = 0.5,
        disagree: str = "drop",
    ):
        self.rule = rule
        self.proxies = proxies
        self.dedup = dedup
        self.orient = orient
        self.directions = directions
        self.reference = reference
        self.min_agreement = min_agreement
        self.weighting = weighting
        self.anchor = anchor
        self.anchor_share = anchor_share
        self.disagree = disagree

    def _check_params(self) -> None:
        if self.rule not in RULES:
            raise RankzcError(f"rankagg: rule must be one of {', '.join(RULES)}, got {self.rule!r}")
        if self.orient not in ORIENTS:
            raise RankzcError(
                f"rankagg: orient must be one of {', '.join(ORIENTS)}, got {self.orient!r}"
            )
        if self.reference not in REFERENCES:
            raise RankzcError(
                f"rankagg: reference must be one of {', '.join(REFERENCES)}, got {self.reference!r}"
            )
        if self.weighting not in WEIGHTINGS:
            raise RankzcError(
                f"rankagg: weighting must be one of {', '.join(WEIGHTINGS)}, got {self.weighting!r}"
            )
        if self.anchor not in ANCHORS:
            raise RankzcError(
                f"rankagg: anchor must be one of {', '.join(ANCHORS)}, got {self.anchor!r}"
            )
        if self.disagree not in DISAGREE:
            raise RankzcError(
                f"rankagg: disagree must be one of {', '.join(DISAGREE)}, got {self.disagree!r}"
            )
        share = self.anchor_share
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
            raise RankzcError(f"rankagg: anchor_share must be in [0, 1], got {share!r}")
        if self.dedup is not None and not 0 < float(self.dedup) <= 1:
            raise RankzcError(f"rankagg: dedup must be in (0, 1] or None, got {self.dedup!r}")

    def fit(self, X, y=None) -> RankAggRanker:
        """Choose proxies and directions from ``X`` alone; ``y`` is accepted and ignored."""
        from rankzc.ranking.features import is_proxy_column

        self._check_params()
        X, names = as_matrix(X, fitting=True)
        self.feature_names_in_ = names
        if self.proxies is not None:
            wanted = [str(p) for p in self.proxies]
            unknown = [p for p in wanted if p not in names]
            if unknown:
                raise RankzcError(f"rankagg: proxies not among the features: {', '.join(unknown)}")
        else:
            wanted = [n for n in names if is_proxy_column(n)]
        cols = [names.index(p) for p in wanted]
        cols = [k for k in cols if len(np.unique(X[np.isfinite(X[:, k]), k])) > 1]
        if not cols:
            raise RankzcError("rankagg: no proxy column varies across the architectures")
        refs = [_reference(X[:, k]) for k in cols]
        U = _rank_matrix(X[:, cols], refs)
        dirs = dict(self.directions or {})
        prior = np.array([-1.0 if float(dirs.get(names[k], 1.0)) < 0 else 1.0 for k in cols])
        size = np.array([self.anchor == "size" and names[k] in SIZE_MEASURES for k in cols])
        anchored = self.orient == "consensus" and bool(size.any())
        if anchored:
            sign, agree, rho = anchored_directions(
                U,
                prior,
                size,
                float(self.min_agreement or 0.0),
                float(self.anchor_share),
                self.disagree,
            )
        else:
            _, rho = consensus_directions(U, prior)
            sign = prior.copy()
            if self.orient == "consensus":
                sign = np.where(np.nan_to_num(rho) < 0, -prior, prior)
            agree = np.abs(np.nan_to_num(rho)) >= float(self.min_agreement or 0.0)
        if not agree.any():  # nothing agrees with anything: keep the most central proxy
            agree[int(np.argmax(np.abs(np.nan_to_num(rho))))] = True
        keep = [k for k in range(len(cols)) if agree[k]]
        # near-duplicates share one vote: weight 1 / (proxies within dedup of this one)
        weights = np.ones(len(keep))
        if self.dedup is not None and len(keep) > 1:
            for a, k in enumerate(keep):
                dups = sum(
                    abs(np.nan_to_num(_spearman_u(U[:, k], U[:, j]))) > float(self.dedup)
                    for j in keep
                    if j != k
                )
                weights[a] = 1.0 / (1 + dups)
        if self.weighting == "agreement" and len(keep) > 2:
            if anchored:  # agreement with the anchored consensus of the other votes
                agreed = weights * np.clip(rho[keep], 0.0, None)
            else:
                agreed = weights * _agreement(U[:, keep], sign[keep], weights, self.rule)
            if agreed.sum() > 0:  # else no proxy agrees with the others: equal votes
                weights = agreed
        self.columns_ = [int(cols[k]) for k in keep]
        self.sign_ = np.array([sign[k] for k in keep], dtype=float)
        self.weights_ = weights
        self.consensus_rho_ = np.array([rho[k] for k in keep], dtype=float)
        self.references_ = [refs[k] for k in keep]
        self.dropped_ = [names[cols[k]] for k in range(len(cols)) if k not in set(keep)]
        return self

    @property
    def proxies_(self) -> list[str]:
        """The aggregated proxies, in column order."""
        return [self.feature_names_in_[k] for k in self.columns_]

    def predict(self, X) -> np.ndarray:
        self._check_fitted("columns_")
        X, _ = as_matrix(X, self.feature_names_in_)
        sub = X[:, self.columns_]
        refs = (
            self.references_
            if self.reference == "fit"
            else [_reference(sub[:, k]) for k in range(sub.shape[1])]
        )
        U = np.column_stack(
            [
                normalised_ranks(sub[:, k], r) if len(r) else np.full(len(sub), np.nan)
                for k, r in enumerate(refs)
            ]
        )
        V = _votes(U, self.sign_, self.rule)
        worst = np.log(0.5 / (max(len(r) for r in refs) + 1.0)) if self.rule == "log" else 0.0
        # an architecture with no finite kept proxy ranks below every other
        return np.nan_to_num(_scores(V, self.weights_), nan=worst - 1.0)

    def _export(self):
        arrays = {f"ref.{i}": r for i, r in enumerate(self.references_)}
        arrays["sign"] = self.sign_
        arrays["weights"] = self.weights_
        arrays["consensus_rho"] = self.consensus_rho_
        config = {"columns": list(self.columns_), "dropped": list(self.dropped_)}
        return config, arrays, {}

    def _import(self, config, arrays, texts) -> None:
        self.columns_ = [int(c) for c in config["columns"]]
        self.dropped_ = list(config.get("dropped", []))
        self.references_ = [np.asarray(arrays[f"ref.{i}"]) for i in range(len(self.columns_))]
        self.sign_ = np.asarray(arrays["sign"], dtype=float)
        self.weights_ = np.asarray(arrays["weights"], dtype=float)
        self.consensus_rho_ = np.asarray(arrays["consensus_rho"], dtype=float)
