"""Read data pickles without running code from them.

The 2s-AGCN / ST-GCN label files (``(sample_names, labels)``) and PYSKL annotation files
(a dict of lists, strings, numbers and numpy arrays) are pickles by convention. The
standard unpickler calls whatever a file names, so a crafted file can run code. Here
:class:`DataUnpickler` resolves only an allowlist of names: Python's plain containers and
scalars, and what numpy needs to rebuild arrays, dtypes and scalars (``ndarray``,
``dtype``, ``_reconstruct``, ``scalar``, ``_frombuffer``, under both numpy 1 and numpy 2
module names). Anything else (``os.system``, ``builtins.eval``, a class of some package,
``copyreg._reconstructor``) stops the load with a one-line :class:`RankzcError` naming the
file and the refused name; nothing it names is imported or called.
"""

from __future__ import annotations

import _compat_pickle
import builtins
import codecs
import collections
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from rankzc.errors import RankzcError

__all__ = ["DataUnpickler", "load_data_pickle", "ALLOWED"]

_BUILTINS = (
    "bool",
    "bytearray",
    "bytes",
    "complex",
    "dict",
    "float",
    "frozenset",
    "int",
    "list",
    "range",
    "set",
    "slice",
    "str",
    "tuple",
)


def _numpy_names() -> dict[tuple[str, str], Any]:
    core = getattr(np, "_core", None) or np.core  # numpy 2 / numpy 1
    multiarray, numeric = core.multiarray, core.numeric
    out: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for pkg in ("numpy.core", "numpy._core"):  # a file written under either numpy
        out[(f"{pkg}.multiarray", "_reconstruct")] = multiarray._reconstruct
        out[(f"{pkg}.multiarray", "scalar")] = multiarray.scalar
        if hasattr(numeric, "_frombuffer"):  # pickle protocol 5 arrays
            out[(f"{pkg}.numeric", "_frombuffer")] = numeric._frombuffer
    return out


#: (module, name) -> the object a data pickle may refer to; nothing else is resolved
ALLOWED: dict[tuple[str, str], Any] = {
    **{("builtins", n): getattr(builtins, n) for n in _BUILTINS},
    # bytes in protocol 0-2 pickles written by Python 3 are rebuilt with codecs.encode
    ("_codecs", "encode"): codecs.encode,
    ("collections", "OrderedDict"): collections.OrderedDict,
    **_numpy_names(),
}


class RefusedPickle(pickle.UnpicklingError):
    """The pickle names something outside :data:`ALLOWED`."""


class DataUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the names in :data:`ALLOWED`."""

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key not in ALLOWED:  # Python 2 names (__builtin__.set, ...)
            key = _compat_pickle.NAME_MAPPING.get(key, key)
            key = (_compat_pickle.IMPORT_MAPPING.get(key[0], key[0]), key[1])
        if key in ALLOWED:
            return ALLOWED[key]
        raise RefusedPickle(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedPickle("a persistent id")


def load_data_pickle(path: str | Path) -> Any:
    """Unpickle a data file with :class:`DataUnpickler` (Python 2 files read as latin-1).

    Raises:
        RankzcError: missing file, not a pickle, or a pickle that names anything but plain
            containers, numbers, strings and numpy arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise RankzcError(f"{path}: file not found")
    for encoding in ("ASCII", "latin1"):
        try:
            with open(path, "rb") as fh:
                return DataUnpickler(fh, encoding=encoding).load()
        except RefusedPickle as err:
            raise RankzcError(
                f"{path}: refused to unpickle {err} (data pickles may hold only lists, "
                "dicts, strings, numbers and numpy arrays)"
            ) from None
        except UnicodeDecodeError:
            continue  # a Python 2 pickle of numpy arrays: retry as latin-1
        except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file
            raise RankzcError(f"{path}: not a readable pickle ({type(err).__name__})") from None
    raise RankzcError(f"{path}: not a readable pickle (undecodable Python 2 strings)")
