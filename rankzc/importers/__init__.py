"""Importers that turn published benchmark files into rankzc stores.

* :mod:`rankzc.importers.thesis`: the GCN-NAS study's per-architecture JSON files.
* :mod:`rankzc.importers.nbsz`: NAS-Bench-Suite-Zero ``zc_*.json`` files.

Both read and validate everything first and then write in one transaction, so a bad
file leaves an existing store unchanged, and importing the same data again adds nothing.
"""

from rankzc.importers.common import ImportReport
from rankzc.importers.nbsz import import_nbsz
from rankzc.importers.thesis import import_thesis

__all__ = ["ImportReport", "import_nbsz", "import_thesis"]
