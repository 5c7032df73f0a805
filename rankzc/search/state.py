"""The live search's state in a store's ``meta``, validated on every read (#24).

:class:`rankzc.search.live.LiveSearch` keeps one JSON object per strategy and seed under
``search:<strategy>:<seed>``::

    {"settings": {...},                       # the options the search was started with
     "trained": [[arch_id, label, seconds]],  # every trained architecture, in order
     "pending": [arch_id, ...],               # the planned batch not yet trained
     "added":   [encoding, ...]}              # candidates a local search added

A store is a file anyone can edit, so :func:`read_state` checks that text against
:data:`STATE_KEYS` before the search uses any of it: the types, every key present and no
other, finite numbers, three-item ``trained`` entries, no duplicated entry, every
``trained`` and ``pending`` architecture registered in the store, every ``added``
encoding valid, and every ``trained`` label equal to the store's own run (same training
recipe and seed): a forged label is refused, never reported as the best architecture.
Each violation is one line naming the store, the key and the entry.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Container, Mapping
from typing import Any

from rankzc.errors import RankzcError
from rankzc.jsonfile import MAX_INT_DIGITS, check_depth

#: the keys of a search state, each required, no other allowed
STATE_KEYS = ("settings", "trained", "pending", "added")
#: most entries a state's list may hold (a search trains far fewer architectures)
MAX_ENTRIES = 1_000_000


def _parse_int(text: str) -> int | float:
    return int(text) if len(text) <= MAX_INT_DIGITS else float(text)


def _finite(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def read_state(
    raw: Any,
    where: str,
    *,
    archs: Container[str],
    labels: Mapping[str, float | None],
    check_settings: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """The search state held as JSON text ``raw``, checked (see the module docstring).

    Args:
        raw: the ``meta`` value (text).
        where: names the store and key in errors, e.g. ``"s.db: search:random:0"``.
        archs: the arch_ids registered in the store.
        labels: arch_id -> the store's label (``val_acc`` of the finished run of the
            search's training recipe and seed; None or absent when there is none).

    Raises:
        RankzcError: ``"<where>: damaged search state (<what>); ..."``, one line.
    """

    def bad(what: str) -> RankzcError:
        return RankzcError(
            f"{where}: damaged search state ({what}); the store was edited: use another --out"
        )

    if not isinstance(raw, str):
        raise bad("not text")
    try:
        state = json.loads(raw, parse_int=_parse_int)
    except RecursionError:
        raise bad("JSON nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, a number the parser cannot convert
        raise bad(f"not valid JSON: {str(err).splitlines()[0] if str(err) else err}") from None
    try:
        check_depth(state, "state", limit=8)
    except RankzcError:
        raise bad("JSON nested deeper than 8 levels") from None
    if not isinstance(state, dict):
        raise bad(f"not a JSON object but {_kind(state)}")
    for key in STATE_KEYS:
        if key not in state:
            raise bad(f"no {key!r}")
    extra = sorted(set(state) - set(STATE_KEYS))
    if extra:
        raise bad(f"unknown key {extra[0]!r}")
    settings = state["settings"]
    if not isinstance(settings, dict):
        raise bad(f"'settings' must be an object, not {_kind(settings)}")
    for key, value in settings.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise bad(f"settings[{key!r}] is {value}, not a finite number")
    if check_settings is not None:
        check_settings(settings)
    for key in ("trained", "pending", "added"):
        if not isinstance(state[key], list):
            raise bad(f"{key!r} must be a list, not {_kind(state[key])}")
        if len(state[key]) > MAX_ENTRIES:
            raise bad(f"{key!r} holds {len(state[key])} entries (limit {MAX_ENTRIES})")

    seen: set[str] = set()
    for i, entry in enumerate(state["trained"]):
        at = f"trained[{i}]"
        if not isinstance(entry, list):
            raise bad(f"{at} must be a list [arch_id, label, seconds], not {_kind(entry)}")
        if len(entry) != 3:
            raise bad(f"{at} holds {len(entry)} items, not 3 [arch_id, label, seconds]")
        arch_id, label, seconds = entry
        _check_arch(arch_id, at, archs, bad)
        if arch_id in seen:
            raise bad(f"{at}: {arch_id} is listed twice")
        seen.add(arch_id)
        for name, value in (("label", label), ("seconds", seconds)):
            if value is not None and not _finite(value):
                shown = value if type(value) in (int, float) else _kind(value)
                raise bad(f"{at}: {name} {shown} is not a finite number or null")
        if seconds is not None and seconds < 0:
            raise bad(f"{at}: seconds {seconds} is negative")
        if label is not None:
            held = labels.get(arch_id)
            if held is None or not math.isclose(float(label), float(held), rel_tol=1e-9):
                store = "no finished run" if held is None else f"{held!r}"
                raise bad(f"{at}: label {label!r} for {arch_id}, but the store holds {store}")

    pending: set[str] = set()
    for i, arch_id in enumerate(state["pending"]):
        at = f"pending[{i}]"
        _check_arch(arch_id, at, archs, bad)
        if arch_id in pending:
            raise bad(f"{at}: {arch_id} is listed twice")
        pending.add(arch_id)

    from rankzc.space import Architecture

    added: set[str] = set()
    for i, text in enumerate(state["added"]):
        at = f"added[{i}]"
        if not isinstance(text, str):
            raise bad(f"{at} must be an architecture encoding (a string), not {_kind(text)}")
        try:
            arch_id = Architecture.parse(text).arch_id
        except (RankzcError, ValueError) as err:
            raise bad(f"{at}: not an architecture ({str(err).splitlines()[0]})") from None
        if arch_id in added:
            raise bad(f"{at}: {text} is listed twice")
        added.add(arch_id)
    return state


def _check_arch(arch_id: Any, at: str, archs: Container[str], bad) -> None:
    if not isinstance(arch_id, str):
        raise bad(f"{at}: the architecture must be an arch_id (a string), not {_kind(arch_id)}")
    if arch_id not in archs:
        shown = arch_id if len(arch_id) <= 40 else arch_id[:40] + "..."
        raise bad(f"{at}: architecture {shown!r} is not in the store")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names.update({list: "a list", dict: "an object"})
    return names.get(type(value), type(value).__name__)
