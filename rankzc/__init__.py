"""rankzc: rank GCN architectures with zero-cost proxies, without training them.

Public entry points (imported lazily, so ``import rankzc`` stays cheap):

* :class:`rankzc.space.Architecture` and :func:`rankzc.space.sample_architectures`;
* :func:`rankzc.models.build_model`;
* :func:`rankzc.proxies.compute_proxies`;
* :class:`rankzc.store.Benchmark`;
* :func:`load_ranker` (``rankzc.ranking.io.load_ranker``): ``load_ranker(path).score(archs)``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rankzc")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.1.0"


def load_ranker(path):
    """Load a ranker saved by ``rankzc fit``; see :func:`rankzc.ranking.io.load_ranker`."""
    from rankzc.ranking.io import load_ranker as _load

    return _load(path)


__all__ = ["__version__", "load_ranker"]
