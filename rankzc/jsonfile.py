"""JSON helpers: reading files with one-line errors, and the one cleaner for writing JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rankzc.errors import RankzcError

#: deepest nesting of arrays and objects in a JSON file rankzc reads (its formats need 4)
MAX_JSON_DEPTH = 64
#: integer literals longer than this are read as floats (huge ones as inf, refused as
#: non-finite where a finite number is needed) instead of overflowing later
MAX_INT_DIGITS = 30


def _parse_int(text: str) -> int | float:
    return int(text) if len(text) <= MAX_INT_DIGITS else float(text)


def check_depth(value: Any, where: str, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse ``value`` (parsed JSON) nested deeper than ``limit`` levels (walked
    iteratively: a deep value cannot exhaust the stack here, and is refused before any
    recursive code sees it)."""
    todo = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if not isinstance(item, (dict, list)):
            continue
        if depth >= limit:
            raise RankzcError(f"{where}: JSON nested deeper than {limit} levels")
        todo.extend((c, depth + 1) for c in (item.values() if isinstance(item, dict) else item))


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a file that is not JSON is a one-line error naming it.

    Nesting is limited to :data:`MAX_JSON_DEPTH` levels; integers of more than
    :data:`MAX_INT_DIGITS` digits are read as floats (``1e400`` reads as inf).

    Raises:
        FileNotFoundError: missing file.
        RankzcError: not UTF-8 text, not valid JSON, or nested too deeply.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh, parse_int=_parse_int)
    except json.JSONDecodeError as err:
        raise RankzcError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    except UnicodeDecodeError:
        raise RankzcError(f"{path}: not valid JSON (not UTF-8 text)") from None
    except RecursionError:
        raise RankzcError(f"{path}: JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as err:  # e.g. a number the parser cannot convert
        raise RankzcError(f"{path}: not valid JSON ({err})") from None
    check_depth(data, str(path))
    return data


def jsonable(value: Any, *, nan: bool = False) -> Any:
    """``value`` with only JSON types: numpy scalars and arrays become Python numbers and
    lists, tuples lists, dict keys strings, and NaN/inf ``None`` (kept when ``nan``, for
    files that Python reads back, such as ranker manifests).

    The one cleaner behind every JSON rankzc writes (``--format json``, sidecars, reports,
    ranker manifests).
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v, nan=nan) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, nan=nan) for v in value]
    if isinstance(value, (str, bytes, bool, int)) or value is None:
        return value
    if hasattr(value, "tolist"):  # numpy scalar or array
        return jsonable(value.tolist(), nan=nan)
    if isinstance(value, float) and not nan and not math.isfinite(value):
        return None
    return value
