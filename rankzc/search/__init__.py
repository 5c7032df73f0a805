"""Architecture search with proxies and rankers (``rankzc search``).

One loop (:func:`rankzc.search.loop.run_search`) serves two modes: simulated
(:mod:`rankzc.search.simulate`, the pool is a labelled store) and live
(:mod:`rankzc.search.live`, candidates sampled from the GCN-NAS space are scored with
proxies and the chosen ones trained by the label pipeline). Strategies live in
:mod:`rankzc.search.strategies`.
"""

from rankzc.search.loop import Budget, Step, Trace, run_search
from rankzc.search.pool import Pool, feasible_ids, pool_from_store
from rankzc.search.strategies import label_free_scores, parse_strategy

__all__ = [
    "Budget",
    "Pool",
    "Step",
    "Trace",
    "feasible_ids",
    "label_free_scores",
    "parse_strategy",
    "pool_from_store",
    "run_search",
]
