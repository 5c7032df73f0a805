"""Reading JSON files with one-line errors that name the file."""

from __future__ import annotations

import json
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
