"""Budgets for what a ranker file may make rankzc build or compute.

A ranker file is user input: every count or width it declares is checked against these
limits *before* anything is built (a network, a LightGBM model, a data set), and a
violation names the limit in a one-line :class:`~rankzc.errors.RankzcError`. The limits
are far above what ``rankzc fit`` produces with its defaults (``gnn`` 3 layers of 32,
``ranknet`` 64-32, ``lambdarank`` 500 trees of 15 leaves) and far below what hangs or
exhausts memory (``layers = 10**8``, ``hidden = [1] * 100000``, a million trees).

The data a ranker scores new architectures with is the user's choice, not the file's:
recorded settings naming a data *path* (``ntu:PATH``) are refused unless the user gives
``--data``, and recorded synthetic data may hold at most :data:`MAX_RANKER_DATA_VALUES`
numbers (``n x frames x persons x 25 joints x 3``).
"""

from __future__ import annotations

from typing import Any

from rankzc.errors import RankzcError

__all__ = [
    "MAX_LAYERS",
    "MAX_WIDTH",
    "MAX_INPUTS",
    "MAX_TREES",
    "MAX_TOTAL_LEAVES",
    "MAX_RANKER_DATA_VALUES",
    "check_count",
    "check_ranker_data",
]

#: most hidden layers of a network (gnn ``layers``, ranknet ``len(hidden)``)
MAX_LAYERS = 64
#: most units of one layer (gnn ``hidden``, each ranknet ``hidden`` width)
MAX_WIDTH = 4096
#: most inputs of a network (feature columns, gnn node kinds)
MAX_INPUTS = 100_000
#: most trees of a LightGBM model
MAX_TREES = 20_000
#: most leaves of all the trees of a LightGBM model together
MAX_TOTAL_LEAVES = 2_000_000
#: most numbers in the synthetic data a ranker's recorded settings may make ``score``
#: generate (64 Mi float32 = 256 MiB; the cpu recipe's data holds 12 M)
MAX_RANKER_DATA_VALUES = 64 * 2**20


def check_count(value: Any, limit: int, what: str, minimum: int = 1) -> int:
    """``value`` as an int if it is an integer in ``minimum..limit``; else a one-line error
    naming ``what`` and the limit."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= limit:
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise RankzcError(
            f"{what} {shown} outside {minimum}..{limit} (the limit for a ranker file)"
        )
    return int(value)


def check_ranker_data(data: Any) -> None:
    """Refuse data that recorded settings (not the user) would make ``score`` read.

    Allowed: synthetic data of at most :data:`MAX_RANKER_DATA_VALUES` numbers, and
    ``study:`` names (no data is read for those). Refused: anything naming a path.

    Raises:
        RankzcError: one line naming the data and the rule, and the way out (``--data``).
    """
    from rankzc.datasets.spec import SYNTHETIC_DEFAULTS, parse_data_spec

    text = str(data).strip()
    if text.startswith("study:"):
        return
    spec = None
    if not text.startswith("ntu:"):  # a path is refused unparsed (parsing looks at it)
        try:
            spec = parse_data_spec(text)
        except RankzcError as err:
            raise RankzcError(f"recorded data {text[:80]!r}: {err}") from None
    if spec is None or spec.kind != "synthetic":
        raise RankzcError(
            f"the ranker's recorded settings name data {text[:80]!r}: a ranker file may not "
            "choose a path to read; pass --data (e.g. the same spec) to read it"
        )
    opts = {**SYNTHETIC_DEFAULTS, **spec.opts}
    try:
        n, frames, persons = int(opts["n"]), int(opts["frames"]), int(opts["persons"])
    except (TypeError, ValueError):
        raise RankzcError(
            f"recorded data {text[:80]!r}: n, frames and persons must be integers"
        ) from None
    values = n * frames * persons * 25 * 3
    if values > MAX_RANKER_DATA_VALUES:
        raise RankzcError(
            f"the ranker's recorded settings ask for synthetic data of {values:,} numbers "
            f"(n={n}, frames={frames}, persons={persons}; the limit for data a ranker file "
            f"chooses is {MAX_RANKER_DATA_VALUES:,}); pass --data to choose it"
        )
