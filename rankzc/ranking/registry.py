"""Ranker names and constructors: ``single``, ``vote``, ``wam``, ``ranknet``, ``lambdarank``, ``rankagg``, ``gnn``, ``stratified``."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rankzc.errors import RankzcError

if TYPE_CHECKING:  # the CLI lists RANKERS without importing scikit-learn
    from rankzc.ranking.base import BaseRanker

__all__ = ["RANKERS", "make_ranker", "ranker_class", "current_params"]

#: name -> "module:Class" (imported lazily so that torch and LightGBM load only when used)
RANKERS: dict[str, str] = {
    "single": "rankzc.ranking.single:SingleProxyRanker",
    "vote": "rankzc.ranking.vote:MajorityVoteRanker",
    "wam": "rankzc.ranking.wam:WeightedMeanRanker",
    "ranknet": "rankzc.ranking.ranknet:RankNetRanker",
    "lambdarank": "rankzc.ranking.lambdarank:LambdaRankRanker",
    "rankagg": "rankzc.ranking.rankagg:RankAggRanker",
    "gnn": "rankzc.ranking.gnn:GNNRanker",
    "stratified": "rankzc.ranking.stratified:StratifiedRanker",
}


def ranker_class(name: str) -> type[BaseRanker]:
    if name not in RANKERS:
        raise RankzcError(f"unknown model {name!r}; choose from {', '.join(RANKERS)}")
    module, cls = RANKERS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def current_params(cls: type[BaseRanker], params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with renamed parameters under their current names (a class lists them in
    ``RENAMED_PARAMS``, old -> new; e.g. RankNet's ``transform``, now ``input_transform``),
    so old ranker files and ``--param`` spellings keep working."""
    renamed = getattr(cls, "RENAMED_PARAMS", {})
    out = dict(params)
    for old, new in renamed.items():
        if old in out:
            if new in out:
                raise RankzcError(f"{cls.name}: give {new!r} or its old name {old!r}, not both")
            out[new] = out.pop(old)
    return out


def make_ranker(name: str, **params: Any) -> BaseRanker:
    """A new, unfitted ranker ``name`` with ``params`` (old parameter names accepted,
    :func:`current_params`)."""
    cls = ranker_class(name)
    return cls(**current_params(cls, params))
