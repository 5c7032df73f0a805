"""Zero-cost proxies: score an untrained architecture from one minibatch.

>>> from rankzc.proxies import compute_proxies, proxy_names
>>> results = compute_proxies(model, (x, y), names=["synflow", "snip"])  # doctest: +SKIP

Each proxy lives in its own module and registers itself with
:func:`~rankzc.proxies.registry.proxy`; :func:`compute_proxies` runs them sharing one
forward/backward pass. :func:`score_architectures` scores architectures of the search
space with recorded :class:`ProxySettings`.

The names below are loaded on first use, so that importing a torch-free part of this
package (:mod:`rankzc.proxies.catalog`, :mod:`rankzc.proxies.registry`) does not import
torch: commands that only read a store stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "compute_proxies": "rankzc.proxies.compute",
    "ProxyResult": "rankzc.proxies.compute",
    "ProxySettings": "rankzc.proxies.features",
    "score_architectures": "rankzc.proxies.features",
    "PROXIES": "rankzc.proxies.registry",
    "ProxySpec": "rankzc.proxies.registry",
    "get_proxy": "rankzc.proxies.registry",
    "proxy": "rankzc.proxies.registry",
    "proxy_names": "rankzc.proxies.registry",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rankzc.proxies' has no attribute {name!r}")
    importlib.import_module("rankzc.proxies.compute")  # registers every proxy
    return getattr(importlib.import_module(module), name)
