"""Feature matrices for the rankers, built from a benchmark store.

Feature sets:

* ``proxies``: one column per proxy scored after ``epoch`` (-1 = at initialisation);
* ``arch``: the architecture's encoding. For ``gcn-nas`` it is
  :meth:`rankzc.space.Architecture.encoding` (80 switches padded to 10 blocks, depth,
  8 operator counts). For other spaces (NAS-Bench-Suite-Zero stores integer-tuple strings
  such as ``"(0, 2, 3, 2, 3, 1)"``, and NAS-Bench-301's compact genotype, flattened to 32
  integers) it is a positional one-hot: column ``pos<k>=<v>`` is 1 when position ``k``
  holds ``v``. For NAS-Bench-101, -301 and TransNAS-Bench-101 micro/macro the columns carry
  the graph rule as a prefix (``nasbench101.pos3=1``) so that the ``gnn`` ranker, which
  reads only the columns, builds the right graph;
* ``graph``: simple properties of the architecture graph (operation counts, input-to-output
  path lengths, per-operation path counts; for GCN-NAS also the mean depth position and the
  fraction of blocks of every operator), see :mod:`rankzc.ranking.graphs`. A space whose
  encoding cannot be turned into a graph raises a one-line error;
* ``all``: proxies, then ``arch``, then ``graph`` (left out with a one-line warning where
  the space has no graph form).
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rankzc.errors import RankzcError

__all__ = [
    "FEATURE_SETS",
    "FeatureSet",
    "feature_matrix",
    "arch_features",
    "parse_tuple",
    "flat_encoding",
    "unflatten_encoding",
    "is_proxy_column",
    "encoding_features",
    "parse_proxy_list",
    "check_proxy_subset",
]

FEATURE_SETS = ("proxies", "arch", "graph", "all")


#: names of architecture-encoding and graph-feature columns (anything else is a proxy)
_ARCH_COLUMN = re.compile(
    r"^((?:[a-z0-9_]+\.)?pos\d+=-?\d+|b\d{2}_(L1|Ln4|L4|L3|L2|M_S|M_T|M_ST)|depth"
    r"|n_(L1|Ln4|L4|L3|L2|M_S|M_T|M_ST)|g_.+)$"
)


def is_proxy_column(name: str) -> bool:
    """True unless ``name`` is an ``arch`` encoding column or a ``graph`` feature (``g_*``)."""
    return _ARCH_COLUMN.match(str(name)) is None


@dataclass
class FeatureSet:
    """Features ``X`` (index arch_id), labels ``y`` (None when unlabelled), ``depth`` (or None)."""

    X: pd.DataFrame
    y: pd.Series | None
    depth: pd.Series | None
    space: str
    features: str
    proxies: list[str]


def parse_tuple(text: str) -> tuple[int, ...]:
    """Parse ``"(0, 2, 3)"`` (or ``"0,2,3"``, ``"[0, 2, 3]"``) to a tuple of ints."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        raise RankzcError(
            f"encoding {text!r}: expected an integer tuple such as '(0, 2, 3)'"
        ) from None
    if isinstance(value, int):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, int) for v in value):
        raise RankzcError(f"encoding {text!r}: expected an integer tuple such as '(0, 2, 3)'")
    return tuple(int(v) for v in value)


def _gcn_encoding(encodings: Sequence[str]) -> pd.DataFrame:
    from rankzc.space import Architecture

    rows = [Architecture.parse(e).encoding() for e in encodings]
    return pd.DataFrame(
        np.vstack(rows) if rows else np.zeros((0, len(Architecture.encoding_names()))),
        columns=Architecture.encoding_names(),
    )


#: graph rules whose ``arch`` columns carry the rule as a prefix (``nasbench301.pos3=2``),
#: so that a ranker (``gnn``) reading the columns knows the space; NAS-Bench-201 and spaces
#: without a graph form keep the plain ``pos<k>=<v>`` names
PREFIXED_KINDS = ("nasbench101", "nasbench301", "transbench101_micro", "transbench101_macro")
_PREFIXED = re.compile(r"^(?:(?P<kind>[a-z0-9_]+)\.)?pos(?P<k>\d+)=(?P<v>-?\d+)$")


def flat_encoding(text: str, kind: str | None) -> tuple[int, ...]:
    """The integer tuple of an encoding: NAS-Bench-301's compact genotype (two cells of
    eight ``(input, op)`` pairs) flattened cell by cell, pair by pair; else the tuple."""
    if kind == "nasbench301":
        from rankzc.ranking.graphs import _is_darts, _literal

        value = _literal(text)
        if not _is_darts(value):
            raise RankzcError(
                f"encoding {str(text)[:60]!r}: expected NAS-Bench-301's compact genotype, "
                "two cells of eight (input node, operation) pairs"
            )
        return tuple(int(v) for cell in value for pair in cell for v in pair)
    return parse_tuple(text)


def unflatten_encoding(values: Sequence[int], kind: str | None) -> str:
    """Inverse of :func:`flat_encoding`: the encoding string a graph rule reads."""
    if kind == "nasbench301":
        if len(values) != 32:
            raise RankzcError(f"nasbench301: expected 32 integers, got {len(values)}")
        pairs = [(int(values[i]), int(values[i + 1])) for i in range(0, 32, 2)]
        return str([pairs[:8], pairs[8:]])
    return str(tuple(int(v) for v in values))


def arch_kind(encodings: Sequence[str], space: str, dataset: str | None = None) -> str | None:
    """The prefixed graph rule (:data:`PREFIXED_KINDS`) of ``space``, else None."""
    from rankzc.ranking.graphs import graph_space

    try:
        kind = graph_space(space, list(encodings), dataset)
    except RankzcError:
        return None
    return kind if kind in PREFIXED_KINDS else None


def arch_features(
    encodings: Sequence[str] | pd.Series,
    space: str,
    columns: Iterable[str] | None = None,
    dataset: str | None = None,
) -> pd.DataFrame:
    """Encoding features of architectures of ``space``.

    For tuple-encoded spaces, ``columns`` (names ``[<kind>.]pos<k>=<v>``, e.g. from a
    fitted ranker) fixes the one-hot columns; without it every (position, value) seen is
    a column. NAS-Bench-301 genotypes are flattened first (:func:`flat_encoding`).
    """
    index = encodings.index if isinstance(encodings, pd.Series) else None
    encodings = [str(e) for e in encodings]
    if space == "gcn-nas":
        out = _gcn_encoding(encodings)
    else:
        if columns is None:
            kind = arch_kind(encodings, space, dataset) if encodings else None
            tuples = [flat_encoding(e, kind) for e in encodings]
            seen = sorted({(k, v) for t in tuples for k, v in enumerate(t)})
            prefix = f"{kind}." if kind else ""
            cols = [f"{prefix}pos{k}={v}" for k, v in seen]
        else:
            cols = [c for c in columns if _PREFIXED.match(str(c))]
            kinds = {_PREFIXED.match(c).group("kind") for c in cols}
            kind = next(iter(kinds)) if len(kinds) == 1 else None
            tuples = [flat_encoding(e, kind) for e in encodings]
        keys = [(int(m.group("k")), int(m.group("v"))) for m in map(_PREFIXED.match, cols)]
        data = np.zeros((len(tuples), len(cols)))
        for r, t in enumerate(tuples):
            for c, (k, v) in enumerate(keys):
                data[r, c] = float(k < len(t) and t[k] == v)
        out = pd.DataFrame(data, columns=cols)
    if index is not None:
        out.index = index
    return out


def encoding_features(
    encodings: pd.Series,
    space: str,
    features: str,
    *,
    columns: Sequence[str] | None = None,
    dataset: str | None = None,
) -> pd.DataFrame:
    """The ``arch`` and/or ``graph`` columns of ``features`` for ``encodings`` (a Series).

    ``columns`` (e.g. a fitted ranker's inputs) fixes which columns are returned: graph
    features are then computed only when some ``g_*`` column is wanted. Without it,
    ``features="all"`` leaves graph features out with a warning where the space has no
    graph form, and ``features="graph"`` raises.
    """
    from rankzc.ranking.graphs import graph_features

    parts = []
    if features in ("arch", "all"):
        parts.append(arch_features(encodings, space, columns=columns, dataset=dataset))
    want_graph = features == "graph" or (
        features == "all" and (columns is None or any(str(c).startswith("g_") for c in columns))
    )
    if want_graph:
        try:
            parts.append(graph_features(encodings, space, dataset=dataset))
        except RankzcError as err:
            if features == "graph" or columns is not None:
                raise
            warnings.warn(f"{err}; --features all goes on without them", RuntimeWarning, 2)
    if not parts:
        return pd.DataFrame(index=encodings.index)
    out = pd.concat(parts, axis=1)
    if columns is not None:
        wanted = [c for c in columns if not is_proxy_column(c)]
        missing = [c for c in wanted if c not in out.columns]
        for c in missing:  # one-hot columns of values never seen are 0
            if _PREFIXED.match(c):
                out[c] = 0.0
        out = out.loc[:, [c for c in wanted if c in out.columns]]
    return out


def parse_proxy_list(text: str | None) -> list[str] | None:
    """``--proxies a,b,c`` as a list of distinct names (None when not given).

    Raises:
        RankzcError: an empty list.
    """
    if text is None:
        return None
    names = list(dict.fromkeys(p.strip() for p in str(text).split(",") if p.strip()))
    if not names:
        raise RankzcError("--proxies: no proxy names given")
    return names


def check_proxy_subset(bench, names: Sequence[str], epoch: int = -1) -> list[str]:
    """``names`` after checking that ``bench`` has scores for each at ``epoch``.

    Raises (one line, naming every offender):
        RankzcError: a name that is neither a registered proxy nor in the store
            (``unknown proxy``), or one the store has no scores for at ``epoch``.
    """
    from rankzc.proxies.catalog import PROXY_NAMES as PROXIES  # torch-free

    stored = bench.features(epoch)
    have = [str(c) for c in stored.columns if stored[c].notna().any()]
    unknown = [n for n in names if n not in PROXIES and n not in bench.proxy_names()]
    if unknown:
        raise RankzcError(
            f"--proxies: unknown prox{'y' if len(unknown) == 1 else 'ies'} "
            f"{', '.join(repr(n) for n in unknown)}; known: {', '.join(sorted(PROXIES))}"
        )
    absent = [n for n in names if n not in have]
    if absent:
        raise RankzcError(
            f"--proxies: {bench.path} has no scores for {', '.join(absent)} at epoch {epoch} "
            f"(it has: {', '.join(have) or 'none'})"
        )
    return list(names)


def feature_matrix(
    bench,
    features: str = "proxies",
    *,
    epoch: int = -1,
    proxies: Iterable[str] | None = None,
    labelled_only: bool = True,
) -> FeatureSet:
    """Features of the architectures in ``bench`` (a :class:`rankzc.store.Benchmark`).

    With ``labelled_only`` (default), only architectures with a finished run are kept and
    ``y`` holds their ``val_acc``. Proxies that are missing for every kept architecture are
    dropped.
    """
    if features not in FEATURE_SETS:
        raise RankzcError(f"features must be one of {', '.join(FEATURE_SETS)}, got {features!r}")
    archs = bench.architectures()
    space = str(bench.meta.get("space", ""))
    labels = bench.labels()
    index = labels.index if labelled_only else archs.index
    if labelled_only and len(index) == 0:
        raise RankzcError(f"{bench.path}: no labelled architectures (no finished runs)")
    parts = []
    names: list[str] = []
    if features in ("proxies", "all"):
        feats = bench.features(epoch, proxies=proxies).reindex(index)
        feats = feats.loc[:, feats.notna().any(axis=0)]
        if feats.shape[1] == 0:
            raise RankzcError(f"{bench.path}: no proxy scores at epoch {epoch}")
        names = [str(c) for c in feats.columns]
        parts.append(feats)
    if features in ("arch", "graph", "all"):
        enc = encoding_features(
            archs["encoding"].reindex(index),
            space,
            features,
            dataset=str(bench.meta.get("dataset") or "") or None,
        )
        if enc.shape[1]:
            parts.append(enc)
    X = pd.concat(parts, axis=1) if len(parts) > 1 else parts[0]
    X.index.name = "arch_id"
    y = labels["val_acc"].reindex(index).astype(float) if labelled_only else None
    depth = archs["depth"].reindex(index)
    depth = None if depth.isna().all() else depth.astype(float)
    return FeatureSet(X=X, y=y, depth=depth, space=space, features=features, proxies=names)
