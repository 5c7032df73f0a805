"""rankzc: rank GCN architectures with zero-cost proxies, without training them."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rankzc")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.1.0"

__all__ = ["__version__"]
