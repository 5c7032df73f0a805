"""JSON helpers: reading files with one-line errors, and the one cleaner for writing JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rankzc.errors import RankzcError


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a file that is not JSON is a one-line error naming it.

    Raises:
        FileNotFoundError: missing file.
        RankzcError: not UTF-8 text or not valid JSON.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as err:
        raise RankzcError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    except UnicodeDecodeError:
        raise RankzcError(f"{path}: not valid JSON (not UTF-8 text)") from None


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
