"""Zero-cost proxies: score an untrained architecture from one minibatch.

>>> from rankzc.proxies import compute_proxies, proxy_names
>>> results = compute_proxies(model, (x, y), names=["synflow", "snip"])  # doctest: +SKIP

Each proxy lives in its own module and registers itself with
:func:`~rankzc.proxies.registry.proxy`; :func:`compute_proxies` runs them sharing one
forward/backward pass. :func:`score_architectures` scores architectures of the search
space with recorded :class:`ProxySettings`.
"""

from rankzc.proxies.compute import ProxyResult, compute_proxies
from rankzc.proxies.features import ProxySettings, score_architectures
from rankzc.proxies.registry import PROXIES, ProxySpec, get_proxy, proxy, proxy_names

__all__ = [
    "PROXIES",
    "ProxyResult",
    "ProxySettings",
    "ProxySpec",
    "compute_proxies",
    "get_proxy",
    "proxy",
    "proxy_names",
    "score_architectures",
]
