"""Ranker names and constructors: ``single``, ``vote``, ``wam``, ``ranknet``, ``lambdarank``, ``rankagg``, ``gnn``."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rankzc.errors import RankzcError

if TYPE_CHECKING:  # the CLI lists RANKERS without importing scikit-learn
    from rankzc.ranking.base import BaseRanker

__all__ = ["RANKERS", "make_ranker", "ranker_class"]

#: name -> "module:Class" (imported lazily so that torch and LightGBM load only when used)
RANKERS: dict[str, str] = {
    "single": "rankzc.ranking.single:SingleProxyRanker",
    "vote": "rankzc.ranking.vote:MajorityVoteRanker",
    "wam": "rankzc.ranking.wam:WeightedMeanRanker",
    "ranknet": "rankzc.ranking.ranknet:RankNetRanker",
    "lambdarank": "rankzc.ranking.lambdarank:LambdaRankRanker",
    "rankagg": "rankzc.ranking.rankagg:RankAggRanker",
    "gnn": "rankzc.ranking.gnn:GNNRanker",
}


def ranker_class(name: str) -> type[BaseRanker]:
    if name not in RANKERS:
        raise RankzcError(f"unknown model {name!r}; choose from {', '.join(RANKERS)}")
    module, cls = RANKERS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_ranker(name: str, **params: Any) -> BaseRanker:
    """A new, unfitted ranker ``name`` with ``params``."""
    return ranker_class(name)(**params)
