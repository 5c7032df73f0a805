"""Read data pickles without running code from them, and within bounds.

The 2s-AGCN / ST-GCN label files (``(sample_names, labels)``) and PYSKL annotation files
(a dict of lists, strings, numbers and numpy arrays) are pickles by convention. The
standard unpickler calls whatever a file names, and even numpy's own reconstructors are
unsafe on hostile bytes (a pickled ``dtype`` whose flags claim "no Python objects" over
an object layout makes numpy read attacker bytes as pointers: a native crash). So
:func:`load_data_pickle` does not use :mod:`pickle` at all: :class:`DataUnpickler` is a
small interpreter of the pickle opcodes (protocols 0-5) that builds only

* ``None``, bools, ints, floats, strings, bytes, bytearrays, lists, tuples, dicts,
  sets and frozensets (dict keys and set items: strings, bytes, numbers, ``None`` or flat
  tuples of those);
* numpy arrays and scalars of fixed-size numeric or string dtypes (``b1``, ``i1..i8``,
  ``u1..u8``, ``f2/f4/f8``, ``c8/c16``, ``S<n>``, ``U<n>``), rebuilt by rankzc itself:
  the names numpy's pickles use (``numpy.dtype``, ``..._reconstruct``, ``...scalar``,
  ``..._frombuffer``, ``numpy.ndarray``, under numpy 1 and numpy 2 module names) resolve
  to rankzc's own stand-ins, which check the dtype string against that list, ignore the
  pickled flags, check that shape x itemsize equals the number of data bytes and build
  the array with ``np.frombuffer(...).copy()``. numpy's reconstructors are never called.

Anything else (``os.system``, ``posix.system``, ``builtins.eval``, ``builtins.getattr``,
a class of some package, ``bytearray(<size>)``, an object dtype, a structured dtype,
persistent ids, out-of-band buffers) stops the load with a one-line
:class:`~rankzc.errors.RankzcError` naming the file and what was refused; nothing it names
is imported or called.

Bounds, checked before anything is allocated: a string or bytes opcode may not declare
more bytes than the file still holds (so a 31-byte file cannot ask for 1.5 GB); the
result may be nested at most :data:`MAX_DEPTH` levels, arrays at most :data:`MAX_NDIM`
dimensions; and the result, counted as a tree (an object referenced twice counts twice,
as anything that walks it sees it), may hold at most :data:`NODES_PER_BYTE` objects per
byte of the file plus :data:`NODES_SLACK` (so a memo DAG that would expand exponentially
is refused before any caller walks it).
"""

from __future__ import annotations

import _compat_pickle
import codecs
import collections
import mmap
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

from rankzc.errors import RankzcError

__all__ = [
    "DataUnpickler",
    "load_data_pickle",
    "loads_data_pickle",
    "ALLOWED",
    "MAX_DEPTH",
    "MAX_NDIM",
    "NODES_PER_BYTE",
    "NODES_SLACK",
]

#: deepest nesting of containers in a data pickle (PYSKL needs 4)
MAX_DEPTH = 32
#: most dimensions of an array
MAX_NDIM = 32
#: the result, counted as a tree, may hold this many objects per byte of the file ...
NODES_PER_BYTE = 8
#: ... plus this many
NODES_SLACK = 10_000

_WHAT = (
    "data pickles may hold only lists, dicts, tuples, strings, bytes, numbers, bools, None "
    "and numpy arrays of numeric or string dtypes"
)


class RefusedPickle(Exception):
    """The pickle asks for something a data pickle may not hold (the message says what)."""


class _Malformed(Exception):
    """Not a pickle, or a broken one (the message says why)."""


# ------------------------------------------------------------------ numpy stand-ins
_DTYPE_SIZES = {
    "b": {1},
    "i": {1, 2, 4, 8},
    "u": {1, 2, 4, 8},
    "f": {2, 4, 8},
    "c": {8, 16},
}
_FLEXIBLE_MAX = 1 << 20  # characters (U) or bytes (S) per item
_DTYPE_RE = re.compile(r"([<>|=]?)([biufcSU])([0-9]{1,7})")


class _Sentinel:
    """``numpy.ndarray`` as named in a pickle: only valid as ``_reconstruct``'s argument."""

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "numpy.ndarray"


_NDARRAY = _Sentinel()


class _DType:
    """A dtype named by a pickle: a validated dtype string; the pickled state may only
    choose the byte order (its flags, fields and sizes are never given to numpy)."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, kind: str, size: int, order: str = "="):
        self.kind, self.size, self.order = kind, size, order

    @property
    def itemsize(self) -> int:
        return self.size * 4 if self.kind == "U" else self.size

    def build(self) -> np.dtype:
        order = "=" if self.order == "|" else self.order
        dt = np.dtype(f"{self.kind}{self.size}").newbyteorder(order)
        # defence in depth: only plain fixed-size numeric or string dtypes come out
        if dt.hasobject or dt.fields is not None or dt.subdtype is not None:
            raise RefusedPickle(f"dtype {dt.str}")
        if dt.itemsize != self.itemsize:
            raise RefusedPickle(f"dtype {dt.str}")
        return dt

    def setstate(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)):
            raise RefusedPickle("a numpy dtype state other than version 3/4 (8 or 9 fields)")
        endian, subarray, names, fields, elsize = state[1:6]
        if endian not in ("<", ">", "|", "="):
            raise RefusedPickle(f"a numpy dtype byte order {endian!r}")
        if subarray is not None or names is not None or fields is not None:
            raise RefusedPickle("a structured or sub-array numpy dtype")
        if len(state) == 9 and state[8] is not None:
            raise RefusedPickle("numpy dtype metadata")
        if not isinstance(elsize, int) or elsize not in (-1, self.itemsize):
            raise RefusedPickle(
                f"a numpy dtype {self.kind}{self.size} claiming {elsize!r} bytes per item"
            )
        self.order = endian


def _dtype(obj: Any, align: Any = False, copy: Any = True) -> _DType:
    m = _DTYPE_RE.fullmatch(obj) if isinstance(obj, str) else None
    if m is None:
        raise RefusedPickle(f"numpy dtype {str(obj)[:40]!r} (only fixed-size numeric or string)")
    order, kind, size = m.group(1) or "=", m.group(2), int(m.group(3))
    if kind in "SU":
        if not 1 <= size <= _FLEXIBLE_MAX:
            raise RefusedPickle(f"numpy dtype {obj!r} (string size outside 1..{_FLEXIBLE_MAX})")
    elif size not in _DTYPE_SIZES[kind]:
        raise RefusedPickle(f"numpy dtype {obj!r}")
    if type(align) not in (bool, int) or type(copy) not in (bool, int):
        raise RefusedPickle("numpy dtype arguments other than (str, bool, bool)")
    return _DType(kind, size, order)


def _raw_bytes(raw: Any, what: str) -> bytes | bytearray:
    if isinstance(raw, (bytes, bytearray)):
        return raw
    if isinstance(raw, str):  # Python 2 pickles and protocol 0-2: latin-1 text
        try:
            return raw.encode("latin1")
        except UnicodeEncodeError:
            raise RefusedPickle(f"{what}: data that is not latin-1 text") from None
    raise RefusedPickle(f"{what}: data of type {type(raw).__name__} (only bytes)")


def _shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    if not (isinstance(shape, tuple) and len(shape) <= MAX_NDIM):
        raise RefusedPickle(f"a numpy array shape that is not a tuple of at most {MAX_NDIM} ints")
    for d in shape:
        if type(d) is not int or not 0 <= d < 2**62:
            raise RefusedPickle(f"a numpy array dimension {str(d)[:30]}")
    return shape


def _array(raw: Any, dtype: Any, shape: Any, fortran: bool, what: str) -> np.ndarray:
    if not isinstance(dtype, _DType):
        raise RefusedPickle(f"{what}: a dtype that is not a pickled numpy dtype")
    shape = _shape(shape)
    raw = _raw_bytes(raw, what)
    dt = dtype.build()
    count = 1
    for d in shape:
        count *= d
    if count * dt.itemsize != len(raw):  # checked before anything is allocated
        raise RefusedPickle(
            f"{what}: shape {shape} of {dt.str} needs {count * dt.itemsize} bytes, "
            f"the pickle holds {len(raw)}"
        )
    flat = np.frombuffer(raw, dtype=dt, count=count).copy() if count else np.empty(0, dt)
    return flat.reshape(shape, order="F" if fortran else "C")


class _ArrayStub:
    """What ``_reconstruct`` returns: replaced by the array when its state is BUILT."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self):
        self.memo_keys: list[Any] = []

    def setstate(self, state: Any) -> np.ndarray:
        if isinstance(state, tuple) and len(state) == 5:
            version, *state = state
            if version != 1:
                raise RefusedPickle(f"a numpy array state version {str(version)[:20]}")
        if not (isinstance(state, (tuple, list)) and len(state) == 4):
            raise RefusedPickle("a numpy array state that is not (shape, dtype, order, data)")
        shape, dtype, fortran, raw = state
        if type(fortran) not in (bool, int):
            raise RefusedPickle("a numpy array order flag that is not a bool")
        return _array(raw, dtype, shape, bool(fortran), "numpy array")


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> _ArrayStub:
    if cls is not _NDARRAY:
        raise RefusedPickle(f"numpy _reconstruct of {type(cls).__name__} (only numpy.ndarray)")
    return _ArrayStub()


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    if order not in ("C", "F"):
        raise RefusedPickle(f"numpy _frombuffer order {str(order)[:10]!r}")
    return _array(buf, dtype, shape, order == "F", "numpy array")


def _scalar(dtype: Any, raw: Any = None) -> Any:
    if not isinstance(dtype, _DType):
        raise RefusedPickle("numpy scalar of a dtype that is not a pickled numpy dtype")
    return _array(raw, dtype, (), False, "numpy scalar")[()]


def _encode(text: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
    # Python 3 writes bytes as _codecs.encode(latin-1 text, "latin1") in protocols 0-2
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise RefusedPickle("_codecs.encode other than (str, 'latin1')")
    return _raw_bytes(text, "_codecs.encode")


def _bytes(*args: Any) -> bytes:
    if not args:
        return b""
    if len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
        return bytes(args[0])
    raise RefusedPickle("builtins.bytes other than bytes() or bytes(<bytes>)")


def _bytearray(*args: Any) -> bytearray:
    if not args:
        return bytearray()
    if len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
        return bytearray(args[0])
    if len(args) == 2 and isinstance(args[0], str) and args[1] in ("latin1", "latin-1"):
        return bytearray(_raw_bytes(args[0], "builtins.bytearray"))
    shown = ", ".join(type(a).__name__ for a in args)
    raise RefusedPickle(f"builtins.bytearray({shown}) (only bytearray(<bytes>))")


def _set(items: Any = ()) -> set:
    if not isinstance(items, (list, tuple)):
        raise RefusedPickle("builtins.set of something other than a list")
    return {_key(k) for k in items}


def _frozenset(items: Any = ()) -> frozenset:
    return frozenset(_set(items))


def _ordered_dict(*args: Any) -> collections.OrderedDict:
    if args:
        raise RefusedPickle("collections.OrderedDict with arguments")
    return collections.OrderedDict()


class _Callable:
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, name: str, fn):
        self.name, self.fn = name, fn

    def __repr__(self) -> str:
        return self.name


def _allowed() -> dict[tuple[str, str], Any]:
    out: dict[tuple[str, str], Any] = {("numpy", "ndarray"): _NDARRAY}
    plain = {
        ("numpy", "dtype"): _dtype,
        ("_codecs", "encode"): _encode,
        ("builtins", "bytes"): _bytes,
        ("builtins", "bytearray"): _bytearray,
        ("builtins", "set"): _set,
        ("builtins", "frozenset"): _frozenset,
        ("collections", "OrderedDict"): _ordered_dict,
    }
    for pkg in ("numpy.core", "numpy._core"):  # a file written under either numpy
        plain[(f"{pkg}.multiarray", "_reconstruct")] = _reconstruct
        plain[(f"{pkg}.multiarray", "scalar")] = _scalar
        plain[(f"{pkg}.numeric", "_frombuffer")] = _frombuffer
    for (module, name), fn in plain.items():
        out[(module, name)] = _Callable(f"{module}.{name}", fn)
    return out


#: (module, name) -> rankzc's stand-in for it; no other name resolves. None of these is a
#: numpy or Python callable: each checks its arguments and builds only plain data.
ALLOWED: dict[tuple[str, str], Any] = _allowed()

_ATOMS = (str, bytes, int, float, bool, type(None))
_KEY_TYPES = frozenset(_ATOMS)


def _key(k: Any) -> Any:
    """``k`` if it may be a dict key or a set item (hashing it is cheap and safe)."""
    t = type(k)
    if t in _KEY_TYPES or (isinstance(k, np.generic) and k.dtype.kind in "biufcSU"):
        return k
    if t is tuple and all(type(x) in _KEY_TYPES for x in k):
        return k
    raise RefusedPickle(f"a {t.__name__} as a dict key or set item")


def _check_tree(obj: Any, budget: int) -> None:
    """Refuse results nested deeper than :data:`MAX_DEPTH` or holding, counted as a tree,
    more than ``budget`` objects; and anything that is not plain data."""
    todo = [(obj, 0)]
    nodes = 0
    while todo:
        o, depth = todo.pop()
        nodes += 1
        t = type(o)
        if t in _KEY_TYPES or t is bytearray or isinstance(o, (np.ndarray, np.generic)):
            continue
        if t in (list, tuple, set, frozenset):
            children = o
        elif t is dict or t is collections.OrderedDict:
            children = [*o.keys(), *o.values()]
        elif isinstance(o, _ArrayStub):
            raise RefusedPickle("a numpy array without its data")
        else:
            raise RefusedPickle(f"{o!r} as a value" if isinstance(o, _Callable) else t.__name__)
        if not children:
            continue
        if depth >= MAX_DEPTH:
            raise RefusedPickle(f"a structure nested deeper than {MAX_DEPTH} levels (the limit)")
        if nodes + len(todo) + len(children) > budget:
            raise RefusedPickle(
                f"shared references expanding to over {budget} objects (the limit is "
                f"{NODES_PER_BYTE} per byte of the file + {NODES_SLACK})"
            )
        todo.extend((c, depth + 1) for c in children)


# ------------------------------------------------------------------------ interpreter
_REFUSED_OPS = {
    b"P": "a persistent id",
    b"Q": "a persistent id",
    b"i": "INST (an instance of a class)",
    b"o": "OBJ (an instance of a class)",
    b"\x81": "NEWOBJ (an instance of a class)",
    b"\x92": "NEWOBJ_EX (an instance of a class)",
    b"\x82": "an extension code",
    b"\x83": "an extension code",
    b"\x84": "an extension code",
    b"\x97": "an out-of-band buffer",
    b"\x98": "an out-of-band buffer",
}


class DataUnpickler:
    """Interpret a pickle's opcodes, building only plain data (see the module docstring).

    ``data`` is the whole pickle (bytes, or an mmap of the file); :meth:`load` returns
    the object or raises :class:`RefusedPickle` / a malformed-pickle error.
    """

    def __init__(self, data: bytes | mmap.mmap):
        self.data = data
        self.n = len(data)
        self.pos = 0

    # -- reading
    def _read(self, k: int) -> bytes:
        if k < 0 or k > self.n - self.pos:  # before any allocation: the file must hold it
            raise _Malformed(
                f"an item declares {k} bytes at offset {self.pos}, "
                f"{self.n - self.pos} remain in the file"
            )
        out = self.data[self.pos : self.pos + k]
        self.pos += k
        return out

    def _line(self) -> bytes:
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            raise _Malformed("truncated (no end of line)")
        out = self.data[self.pos : end]
        self.pos = end + 1
        return out

    def _text_int(self, what: str) -> int:
        line = self._line()
        if line.endswith(b"L"):
            line = line[:-1]
        if not re.fullmatch(rb"[-+]?[0-9]{1,4000}", line):
            raise _Malformed(f"{what}: not an integer")
        return int(line)

    @staticmethod
    def _decode_py2(raw: bytes) -> str:
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:  # Python 2 byte strings (numpy data): latin-1
            return raw.decode("latin1")

    @staticmethod
    def _utf8(raw: bytes) -> str:
        try:
            return raw.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise _Malformed("a string that is not UTF-8") from None

    # -- the machine
    def load(self) -> Any:  # noqa: C901, PLR0912, PLR0915 - one branch per opcode
        stack: list[Any] = []
        marks: list[list[Any]] = []
        memo: dict[int, Any] = {}
        read, line = self._read, self._line
        unpack = struct.unpack

        def pop_mark() -> list[Any]:
            nonlocal stack
            if not marks:
                raise _Malformed("no MARK on the stack")
            items = stack
            stack = marks.pop()
            return items

        def put(index: int) -> None:
            if not stack:
                raise _Malformed("memo store from an empty stack")
            if index < 0:
                raise _Malformed("negative memo index")
            value = stack[-1]
            memo[index] = value
            if type(value) is _ArrayStub:
                value.memo_keys.append(index)

        def get(index: int) -> None:
            try:
                stack.append(memo[index])
            except KeyError:
                raise _Malformed(f"memo key {index} not found") from None

        def setitems(target: Any, items: list[Any]) -> None:
            if type(target) not in (dict, collections.OrderedDict):
                raise RefusedPickle(f"items set on a {type(target).__name__}")
            if len(items) % 2:
                raise _Malformed("odd number of dict items")
            for i in range(0, len(items), 2):
                target[_key(items[i])] = items[i + 1]

        while True:
            op = self.data[self.pos : self.pos + 1]
            if not op:
                raise _Malformed("truncated (no STOP)")
            self.pos += 1
            if op == b"\x94":  # MEMOIZE
                put(len(memo))
            elif op == b"q":  # BINPUT
                put(read(1)[0])
            elif op == b"h":  # BINGET
                get(read(1)[0])
            elif op == b"K":  # BININT1
                stack.append(read(1)[0])
            elif op == b"M":  # BININT2
                stack.append(unpack("<H", read(2))[0])
            elif op == b"J":  # BININT
                stack.append(unpack("<i", read(4))[0])
            elif op == b"\x8c":  # SHORT_BINUNICODE
                stack.append(self._utf8(read(read(1)[0])))
            elif op == b"X":  # BINUNICODE
                stack.append(self._utf8(read(unpack("<I", read(4))[0])))
            elif op == b"\x8d":  # BINUNICODE8
                stack.append(self._utf8(read(unpack("<Q", read(8))[0])))
            elif op == b"C":  # SHORT_BINBYTES
                stack.append(bytes(read(read(1)[0])))
            elif op == b"B":  # BINBYTES
                stack.append(bytes(read(unpack("<I", read(4))[0])))
            elif op == b"\x8e":  # BINBYTES8
                stack.append(bytes(read(unpack("<Q", read(8))[0])))
            elif op == b"\x96":  # BYTEARRAY8
                stack.append(bytearray(read(unpack("<Q", read(8))[0])))
            elif op == b"U":  # SHORT_BINSTRING (Python 2 str)
                stack.append(self._decode_py2(read(read(1)[0])))
            elif op == b"T":  # BINSTRING
                size = unpack("<i", read(4))[0]
                stack.append(self._decode_py2(read(size)))
            elif op == b"S":  # STRING (protocol 0, repr-quoted)
                raw = line().rstrip()
                if len(raw) < 2 or raw[:1] != raw[-1:] or raw[:1] not in (b"'", b'"'):
                    raise _Malformed("STRING opcode argument must be quoted")
                stack.append(self._decode_py2(codecs.escape_decode(raw[1:-1])[0]))
            elif op == b"V":  # UNICODE (protocol 0)
                stack.append(line().decode("raw-unicode-escape"))
            elif op == b"G":  # BINFLOAT
                stack.append(unpack(">d", read(8))[0])
            elif op == b"F":  # FLOAT
                try:
                    stack.append(float(line()))
                except ValueError:
                    raise _Malformed("FLOAT: not a number") from None
            elif op == b"I":  # INT
                raw = line()
                if raw in (b"00", b"01"):
                    stack.append(raw == b"01")
                else:
                    self.pos -= len(raw) + 1
                    stack.append(self._text_int("INT"))
            elif op == b"L":  # LONG
                stack.append(self._text_int("LONG"))
            elif op == b"\x8a":  # LONG1
                stack.append(int.from_bytes(read(read(1)[0]), "little", signed=True))
            elif op == b"\x8b":  # LONG4
                size = unpack("<i", read(4))[0]
                stack.append(int.from_bytes(read(size), "little", signed=True))
            elif op == b"N":
                stack.append(None)
            elif op == b"\x88":
                stack.append(True)
            elif op == b"\x89":
                stack.append(False)
            elif op == b"(":  # MARK
                marks.append(stack)
                stack = []
            elif op == b"]":
                stack.append([])
            elif op == b"}":
                stack.append({})
            elif op == b")":
                stack.append(())
            elif op == b"\x8f":  # EMPTY_SET
                stack.append(set())
            elif op == b"a":  # APPEND
                item = stack.pop() if stack else None
                if not stack or type(stack[-1]) is not list:
                    raise RefusedPickle("APPEND to something other than a list")
                stack[-1].append(item)
            elif op == b"e":  # APPENDS
                items = pop_mark()
                if not stack or type(stack[-1]) is not list:
                    raise RefusedPickle("APPENDS to something other than a list")
                stack[-1].extend(items)
            elif op == b"s":  # SETITEM
                if len(stack) < 3:
                    raise _Malformed("SETITEM needs three items")
                value, key = stack.pop(), stack.pop()
                setitems(stack[-1], [key, value])
            elif op == b"u":  # SETITEMS
                items = pop_mark()
                if not stack:
                    raise _Malformed("SETITEMS without a dict")
                setitems(stack[-1], items)
            elif op == b"\x90":  # ADDITEMS
                items = pop_mark()
                if not stack or type(stack[-1]) is not set:
                    raise RefusedPickle("ADDITEMS to something other than a set")
                stack[-1].update(_key(k) for k in items)
            elif op == b"\x91":  # FROZENSET
                items = pop_mark()  # (before stack.append: pop_mark rebinds the stack)
                stack.append(frozenset(_key(k) for k in items))
            elif op == b"t":
                items = pop_mark()
                stack.append(tuple(items))
            elif op == b"l":
                items = pop_mark()
                stack.append(items)
            elif op == b"d":
                items = pop_mark()
                d: dict = {}
                setitems(d, items)
                stack.append(d)
            elif op in (b"\x85", b"\x86", b"\x87"):  # TUPLE1-3
                k = op[0] - 0x84
                if len(stack) < k:
                    raise _Malformed("TUPLE opcode on a short stack")
                items = stack[-k:]
                del stack[-k:]
                stack.append(tuple(items))
            elif op == b"0":  # POP
                if stack:
                    stack.pop()
                else:
                    pop_mark()
            elif op == b"1":  # POP_MARK
                pop_mark()
            elif op == b"2":  # DUP
                if not stack:
                    raise _Malformed("DUP on an empty stack")
                stack.append(stack[-1])
            elif op == b"j":  # LONG_BINGET
                get(unpack("<I", read(4))[0])
            elif op == b"r":  # LONG_BINPUT
                put(unpack("<I", read(4))[0])
            elif op == b"g":  # GET
                get(self._text_int("GET"))
            elif op == b"p":  # PUT
                put(self._text_int("PUT"))
            elif op == b"c":  # GLOBAL
                module = self._utf8(line())
                name = self._utf8(line())
                stack.append(self._find(module, name))
            elif op == b"\x93":  # STACK_GLOBAL
                if len(stack) < 2:
                    raise _Malformed("STACK_GLOBAL needs two strings")
                name, module = stack.pop(), stack.pop()
                if type(name) is not str or type(module) is not str:
                    raise _Malformed("STACK_GLOBAL needs two strings")
                stack.append(self._find(module, name))
            elif op == b"R":  # REDUCE
                if len(stack) < 2:
                    raise _Malformed("REDUCE needs a callable and its arguments")
                args, fn = stack.pop(), stack.pop()
                if not isinstance(fn, _Callable):
                    raise RefusedPickle(f"a call of {type(fn).__name__} (only rankzc's stand-ins)")
                if type(args) is not tuple:
                    raise _Malformed("REDUCE arguments must be a tuple")
                try:
                    stack.append(fn.fn(*args))
                except TypeError:
                    raise RefusedPickle(f"{fn.name} with {len(args)} arguments") from None
            elif op == b"b":  # BUILD
                if len(stack) < 2:
                    raise _Malformed("BUILD needs an object and its state")
                state, target = stack.pop(), stack[-1]
                if type(target) is _DType:
                    target.setstate(state)
                elif type(target) is _ArrayStub:
                    arr = target.setstate(state)
                    stack[-1] = arr
                    for key in target.memo_keys:
                        if memo.get(key) is target:
                            memo[key] = arr
                    target.memo_keys.clear()
                else:
                    raise RefusedPickle(f"setting the state of a {type(target).__name__}")
            elif op == b"\x80":  # PROTO
                if read(1)[0] > 5:
                    raise _Malformed("unsupported pickle protocol")
            elif op == b"\x95":  # FRAME: advisory, but its length must fit the file
                if unpack("<Q", read(8))[0] > self.n - self.pos:
                    raise _Malformed("a frame longer than the file")
            elif op == b".":  # STOP
                if not stack:
                    raise _Malformed("STOP on an empty stack")
                return stack[-1]
            elif op in _REFUSED_OPS:
                raise RefusedPickle(_REFUSED_OPS[op])
            else:
                raise _Malformed(f"unknown opcode 0x{op[0]:02x} at offset {self.pos - 1}")

    @staticmethod
    def _find(module: str, name: str) -> Any:
        key = (module, name)
        if key not in ALLOWED:  # Python 2 names (__builtin__.set, ...)
            key = _compat_pickle.NAME_MAPPING.get(key, key)
            key = (_compat_pickle.IMPORT_MAPPING.get(key[0], key[0]), key[1])
        if key in ALLOWED:
            return ALLOWED[key]
        raise RefusedPickle(f"{module[:80]}.{name[:80]} ({_WHAT})")


def _load(data: bytes | mmap.mmap) -> Any:
    obj = DataUnpickler(data).load()
    _check_tree(obj, NODES_PER_BYTE * len(data) + NODES_SLACK)
    return obj


def _error(source: str, err: Exception) -> RankzcError:
    if isinstance(err, RefusedPickle):
        return RankzcError(f"{source}: refused to unpickle {err}")
    if isinstance(err, _Malformed):
        return RankzcError(f"{source}: not a readable pickle ({err})")
    if isinstance(err, (struct.error, IndexError)):  # a short read in a fixed-size field
        return RankzcError(f"{source}: not a readable pickle (truncated)")
    return RankzcError(f"{source}: not a readable pickle ({type(err).__name__})")


def loads_data_pickle(data: bytes, source: str = "<bytes>") -> Any:
    """:func:`load_data_pickle` of bytes in memory (``source`` names them in errors)."""
    try:
        return _load(data)
    except (RefusedPickle, _Malformed, struct.error, IndexError, ValueError, MemoryError) as err:
        raise _error(source, err) from None


def load_data_pickle(path: str | Path) -> Any:
    """Unpickle a data file with :class:`DataUnpickler` (the file is mapped, not copied).

    Raises:
        RankzcError: missing file, not a pickle, or a pickle that holds anything but plain
            data (see the module docstring) or breaks a size or depth limit.
    """
    path = Path(path)
    if not path.is_file():
        raise RankzcError(f"{path}: file not found")
    with open(path, "rb") as fh:
        if path.stat().st_size == 0:
            raise RankzcError(f"{path}: not a readable pickle (empty file)")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            try:
                return _load(data)
            except (
                RefusedPickle,
                _Malformed,
                struct.error,
                IndexError,
                ValueError,
                MemoryError,
            ) as err:
                raise _error(str(path), err) from None
