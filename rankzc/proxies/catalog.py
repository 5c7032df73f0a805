"""What store-only commands need to know about the proxies, without importing torch.

The registry (:mod:`rankzc.proxies.registry`) fills as the proxy modules are imported,
and they import torch; ``fit``, ``evaluate`` and ``import`` must not. This module names
the 14 proxies, says which read the minibatch's values, and describes the studies'
datasets that rankzc cannot load. ``tests/test_proxy_catalog.py`` checks it against the
registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rankzc.errors import RankzcError

#: Every registered proxy, in the registry's order.
PROXY_NAMES: tuple[str, ...] = (
    "epe_nas",
    "fisher",
    "flops",
    "grad_norm",
    "grad_sign",
    "grasp",
    "jacov",
    "l2_norm",
    "nwot",
    "params",
    "plain",
    "snip",
    "synflow",
    "zen",
)

#: Proxies whose score depends on the minibatch's shape only, not its values.
DATA_FREE: frozenset[str] = frozenset({"flops", "l2_norm", "params", "synflow", "zen"})

#: Prefix of a data spec naming data rankzc cannot load: the data behind imported scores
#: (``rankzc import thesis`` records ``study:ntu60-xview``). Proxies that read data need
#: a loadable spec in its place (``rankzc score --data ntu:PATH``); data-free proxies
#: read only the minibatch's shape, so they run on a placeholder minibatch of the
#: recorded shape.
STUDY_PREFIX = "study:"

#: The datasets of imported studies: what they were, the shape of one sample
#: (channels, frames, joints, persons), classes, and the data spec that replaces them.
STUDY_DATASETS: dict[str, dict[str, Any]] = {
    "ntu60-xview": {
        "description": "NTU RGB+D 60, cross-view",
        "input_shape": (3, 300, 25, 2),
        "num_classes": 60,
        "kind": "ntu",
        "split": "xview",
        "replace": "ntu:PATH (NTU RGB+D 60, cross-view split)",
    },
}


def study_dataset(data: str) -> dict[str, Any] | None:
    """The :data:`STUDY_DATASETS` entry of a ``study:NAME`` data spec, None for loadable data.

    Raises:
        RankzcError: ``study:`` with a name rankzc does not know.
    """
    text = str(data).strip()
    if not text.startswith(STUDY_PREFIX):
        return None
    name = text[len(STUDY_PREFIX) :]
    if name not in STUDY_DATASETS:
        raise RankzcError(
            f"data {text!r}: unknown study dataset; known: "
            + ", ".join(STUDY_PREFIX + k for k in STUDY_DATASETS)
        )
    return STUDY_DATASETS[name]


def data_reading(names: Iterable[str]) -> list[str]:
    """The proxies among ``names`` whose score depends on the minibatch's values; the
    others read only its shape."""
    return [n for n in names if n not in DATA_FREE]


def _names(settings: Mapping[str, Any]) -> list[str]:
    return list(settings.get("proxies") or ()) or list(PROXY_NAMES)


def unreproducible(settings: Mapping[str, Any]) -> list[str]:
    """Proxies of ``settings`` (a recorded settings dict) that cannot be recomputed:
    those that read data when the recorded data is a study's (``study:...``), which
    rankzc cannot load. Empty when every proxy can be recomputed as recorded."""
    if study_dataset(settings.get("data", "")) is None:
        return []
    return data_reading(_names(settings))


def unreproducible_message(names: list[str], settings: Mapping[str, Any]) -> str:
    """One line: which proxies need the study's data and how to do without them."""
    data = settings.get("data", "")
    info = study_dataset(data) or {}
    free = [n for n in _names(settings) if n not in set(names)]
    leave = f"--proxies {','.join(free)}" if free else "--features arch"
    reads = "y reads" if len(names) == 1 else "ies read"
    return (
        f"{len(names)} prox{reads} the study's data ({info.get('description', data)}), "
        f"which rankzc cannot load: {', '.join(names)}; give --data "
        f"{info.get('replace', 'ntu:PATH')} to score with them, or fit without them "
        f"({leave})"
    )
