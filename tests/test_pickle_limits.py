"""Data pickles (issue 24, item 1 and 8): no numpy reconstruction from pickled bytes, size
and depth limits checked before allocation, no native crash.

The payloads are written at the opcode level (bytes), so that they hold exactly what an
attacker would write, including names that only exist on some systems (``posix.system``).
"""

from __future__ import annotations

import pickle
import struct
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from rankzc.datasets import load_skeletons
from rankzc.datasets.ntu import read_label_pkl
from rankzc.datasets.safe_pickle import (
    MAX_DEPTH,
    load_data_pickle,
    loads_data_pickle,
)
from rankzc.errors import RankzcError

V = 25

#: the issue's 101-byte file: numpy.scalar of an object dtype over raw bytes (exit 139)
CRASH = (
    b"\x80\x03cnumpy._core.multiarray\nscalar\n(cnumpy\ndtype\n(X\x02\x00\x00\x00O8\x89\x88tR"
    b"(K\x03X\x01\x00\x00\x00|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbB\x08\x00\x00\x00"
    b"AAAAAAAAtR."
)


def _u(text: str) -> bytes:
    """BINUNICODE opcode."""
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _su(text: str) -> bytes:
    """SHORT_BINUNICODE opcode."""
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    code = "import sys; from rankzc.cli import main; sys.argv[0] = 'rankzc'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _refused(data: bytes, match: str = "refused to unpickle") -> str:
    with pytest.raises(RankzcError, match=match) as err:
        loads_data_pickle(data, "x.pkl")
    msg = str(err.value)
    assert msg.startswith("x.pkl: ") and "\n" not in msg
    return msg


def test_the_crash_payload_is_101_bytes_and_uses_numpy_names():
    assert len(CRASH) == 101
    assert b"numpy._core.multiarray\nscalar" in CRASH and b"O8" in CRASH


def test_crash_payload_gives_one_line_and_exit_1_in_a_subprocess(tmp_path):
    """`rankzc data inspect ntu:evil.pkl` crashed with SIGSEGV (exit 139) while unpickling."""
    (tmp_path / "evil.pkl").write_bytes(CRASH)
    res = _cli("data", "inspect", "ntu:evil.pkl", cwd=tmp_path)
    assert res.returncode == 1, (res.returncode, res.stderr[-500:])
    lines = res.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith("Error: ")
        and "evil.pkl: refused to unpickle" in lines[0]
    )
    assert "numpy dtype 'O8'" in lines[0] and "Traceback" not in res.stderr


def test_crash_payload_as_a_label_pickle_in_a_subprocess(tmp_path):
    """The same bytes as the label file of an ``.npy`` data directory."""
    np.save(tmp_path / "train_data_joint.npy", np.zeros((2, 3, 4, V, 2), np.float32))
    (tmp_path / "train_label.pkl").write_bytes(CRASH)
    res = _cli("data", "inspect", f"ntu:{tmp_path}", cwd=tmp_path)
    assert res.returncode == 1, (res.returncode, res.stderr[-500:])
    assert res.stderr.count("\n") == 1 and "train_label.pkl: refused to unpickle" in res.stderr


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        # protocol 0: GLOBAL posix.system, tuple of a quoted STRING, REDUCE
        ("posix.system", b"cposix\nsystem\n(S'touch MARKER'\ntR."),
        ("nt.system", b"cnt\nsystem\n(S'touch MARKER'\ntR."),
        ("os.system", b"\x80\x02cos\nsystem\nX\x0c\x00\x00\x00touch MARKER\x85R."),
        # protocol 4: STACK_GLOBAL from two strings
        (
            "builtins.eval",
            b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x19open('MARKER','w').close()\x85R.",
        ),
        (
            "builtins.getattr",
            b"\x80\x04\x8c\x08builtins\x8c\x07getattr\x93\x8c\x08builtins\x8c\x04open\x93"
            b"\x8c\x07__new__\x86R.",
        ),
        ("builtins.exec", b"c__builtin__\nexec\n(Vopen('MARKER','w')\ntR."),
        ("subprocess.Popen", b"\x80\x02csubprocess\nPopen\n]X\x05\x00\x00\x00touch\x85R."),
        # numpy names that are no longer stand-ins: the real module objects are unreachable
        ("numpy.core.multiarray._reconstruct", None),
        ("numpy.frombuffer", b"\x80\x02cnumpy\nfrombuffer\nC\x08AAAAAAAA\x85R."),
        ("numpy.load", b"\x80\x02cnumpy\nload\nX\x01\x00\x00\x00x\x85R."),
        ("copyreg._reconstructor", b"\x80\x02ccopy_reg\n_reconstructor\n)R."),
    ],
)
def test_named_callables_are_refused(tmp_path, monkeypatch, name, payload):
    monkeypatch.chdir(tmp_path)
    if payload is None:  # _reconstruct of a class that is not numpy.ndarray
        payload = (
            b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncos\nsystem\nK\x00\x85C\x01b\x87R."
        )
        _refused(payload, "refused to unpickle os.system")
        return
    payload = payload.replace(b"MARKER", b"marker")
    (tmp_path / "l.pkl").write_bytes(payload)
    shown = name.replace("copyreg", "copy_reg").replace("builtins.exec", "__builtin__.exec")
    with pytest.raises(RankzcError, match=f"refused to unpickle {shown}"):
        load_data_pickle(tmp_path / "l.pkl")
    assert not (tmp_path / "marker").exists()


def test_the_names_run_code_with_the_standard_unpickler(tmp_path, monkeypatch):
    """The posix.system payload is real (the refusal test could otherwise pass vacuously)."""
    if sys.platform != "linux":
        pytest.skip("posix.system")
    monkeypatch.chdir(tmp_path)
    pickle.loads(b"cposix\nsystem\n(S'touch marker'\ntR.")
    assert (tmp_path / "marker").exists()


def test_bytearray_of_a_size_is_refused_without_allocating():
    """31 bytes asking for bytearray(1_500_000_000) took 1.7 GB."""
    payload = b"\x80\x04cbuiltins\nbytearray\nJ\x00/hY\x85R."
    assert len(payload) <= 31 and struct.unpack("<i", b"\x00/hY")[0] == 1_500_000_000
    tracemalloc.start()
    try:
        _refused(payload, r"builtins.bytearray\(int\)")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20


@pytest.mark.parametrize(
    "payload",
    [
        b"\x80\x04\x8e\x00\x00\x00\x00\x00\x01\x00\x00AAAA.",  # BINBYTES8 of 2**40 bytes
        b"\x80\x05\x96\x00\x00\x00\x00\x00\x01\x00\x00AAAA.",  # BYTEARRAY8
        b"\x80\x04\x8d\x00\x00\x00\x00\x00\x01\x00\x00AAAA.",  # BINUNICODE8
        b"\x80\x03B\xff\xff\xff\x7fAAAA.",  # BINBYTES of 2 GiB
        b"\x80\x02\x8b\xff\xff\xff\x7fAAAA.",  # LONG4 of 2 GiB
        b"\x80\x02T\xff\xff\xff\x7fAAAA.",  # BINSTRING of 2 GiB
        b"\x80\x04\x95\x00\x00\x00\x00\x00\x01\x00\x00N.",  # FRAME longer than the file
    ],
)
def test_declared_lengths_beyond_the_file_are_refused_before_reading(payload):
    tracemalloc.start()
    try:
        _refused(payload, "not a readable pickle")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20


def _memo_dag(levels: int) -> bytes:
    """[x, x] where x = [y, y] ... ``levels`` deep, by memo references: ~7 bytes a level,
    2**levels leaves when walked."""
    out = b"\x80\x02K\x07q\x00"  # leaf 7 in memo 0
    for i in range(levels):
        out += b"(h" + bytes([i]) + b"h" + bytes([i]) + b"lq" + bytes([i + 1]) + b"0"
    return out + b"h" + bytes([levels]) + b"."


def test_an_exponential_memo_dag_is_refused():
    """An 806-byte DAG took 5.6 GB before MemoryError (when walked by np.asarray)."""
    payload = _memo_dag(28)
    assert len(payload) < 300
    tracemalloc.start()
    try:
        _refused(payload, "shared references expanding to over")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20


def test_a_small_shared_structure_still_loads():
    obj = loads_data_pickle(_memo_dag(4))
    assert obj[0][1][0] == [7, 7] and obj[1][0][1][1] == 7


def test_an_exponential_memo_dag_as_labels_is_one_line(tmp_path):
    names = b"]q\xc8(" + b"".join(_u(f"S001C001P001R001A{i:03d}") for i in range(2)) + b"e"
    dag = _memo_dag(28)[:-3]  # without the final GET and STOP
    payload = dag + names + b"h\x1c\x86."  # (names, labels = the DAG)
    (tmp_path / "train_label.pkl").write_bytes(payload)
    with pytest.raises(RankzcError, match="train_label.pkl: refused to unpickle shared"):
        read_label_pkl(tmp_path / "train_label.pkl")


def test_deep_nesting_and_cycles_are_refused():
    deep = b"\x80\x02" + b"(" * (MAX_DEPTH + 5) + b"l" * (MAX_DEPTH + 5) + b"."
    _refused(deep, f"nested deeper than {MAX_DEPTH} levels")
    # a list that contains itself: [[...]]
    _refused(b"\x80\x02]q\x00h\x00a.", f"nested deeper than {MAX_DEPTH} levels")
    ok = b"\x80\x02" + b"(" * 10 + b"l" * 10 + b"."
    assert loads_data_pickle(ok) == [[[[[[[[[[]]]]]]]]]]


def test_unhashable_or_deep_keys_are_refused():
    # {((1,), (1,)): 0}: a tuple of tuples as a key (hashing a DAG of tuples is exponential)
    _refused(b"\x80\x02}K\x01\x85q\x00h\x00\x86K\x00s.", "a tuple as a dict key")
    _refused(b"\x80\x02}]K\x00s.", "a list as a dict key")
    assert loads_data_pickle(b"\x80\x02}K\x01K\x02\x86K\x00s.") == {(1, 2): 0}


def _dtype_ops(spec: str, state: bytes) -> bytes:
    return b"cnumpy\ndtype\n" + _u(spec) + b"\x89\x88\x87R" + state + b"b"


_F4_STATE = b"(K\x03" + _u("<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t"


def _array_ops(dtype_ops: bytes, shape: tuple[int, ...], raw: bytes) -> bytes:
    shp = b"(" + b"".join(b"J" + struct.pack("<i", d) for d in shape) + b"t"
    return (
        b"\x80\x03cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R"
        + b"(K\x01"
        + shp
        + dtype_ops
        + b"\x89B"
        + struct.pack("<I", len(raw))
        + raw
        + b"tb."
    )


def test_a_handwritten_float_array_loads():
    raw = np.arange(6, dtype="<f4").tobytes()
    arr = loads_data_pickle(_array_ops(_dtype_ops("f4", _F4_STATE), (2, 3), raw))
    assert arr.dtype == np.float32 and arr.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert arr.flags.writeable  # a copy (np.frombuffer over the file's bytes is read-only)


@pytest.mark.parametrize(
    ("spec", "state", "match"),
    [
        ("O8", _F4_STATE, "numpy dtype 'O8'"),
        ("V8", _F4_STATE, "numpy dtype 'V8'"),
        ("M8", _F4_STATE, "numpy dtype 'M8'"),
        ("f16", _F4_STATE, "numpy dtype 'f16'"),
        ("i3", _F4_STATE, "numpy dtype 'i3'"),
        # a structured dtype: a field at offset 2**30 inside an 8-byte item
        (
            "V8",
            b"(K\x03" + _u("|") + b"N(" + _u("a") + b"t}" + _u("a") + b"cnumpy\ndtype\n"
            + _u("f8") + b"\x89\x88\x87R" + _F4_STATE + b"bJ\x00\x00\x00@\x86sK\x08K\x01K\x10t",
            "numpy dtype 'V8'",
        ),
        # f4 with a state claiming fields / a sub-array / another item size / bad order
        ("f4", b"(K\x03" + _u("|") + b"N(" + _u("a") + b"t}NNNt", "structured"),
        ("f4", b"(K\x03" + _u("<") + b"N)}J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t", "structured"),
        ("f4", b"(K\x03" + _u("<") + b"NNNK\x08K\x04K\x00t", "claiming 8 bytes per item"),
        ("f4", b"(K\x03" + _u("!") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t", "order"),
    ],
)  # fmt: skip
def test_unsafe_dtypes_are_refused(spec, state, match):
    _refused(_array_ops(_dtype_ops(spec, state), (1,), b"\x00" * 8), match)


def test_object_flags_in_a_dtype_state_are_ignored():
    """The pickled flags (here NPY_ITEM_REFCOUNT | NPY_ITEM_HASOBJECT) never reach numpy."""
    state = b"(K\x03" + _u("<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x3ft"
    arr = loads_data_pickle(_array_ops(_dtype_ops("f8", state), (1,), b"\x00" * 8))
    assert arr.dtype == np.float64 and not arr.dtype.hasobject and arr.tolist() == [0.0]


@pytest.mark.parametrize(
    ("shape", "raw"),
    [((1_000_000_000,), b"\x00" * 8), ((3,), b"\x00" * 8), ((2, 2), b"\x00" * 12)],
)
def test_shape_must_match_the_bytes(shape, raw):
    tracemalloc.start()
    try:
        _refused(_array_ops(_dtype_ops("f4", _F4_STATE), shape, raw), "needs .* bytes")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20


def test_an_array_without_its_state_is_refused():
    payload = (
        b"\x80\x03cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R."
    )
    _refused(payload, "a numpy array without its data")
    _refused(b"\x80\x02cnumpy\ndtype\n.", "numpy.dtype as a value")


def test_scalar_needs_exactly_itemsize_bytes():
    payload = (
        b"\x80\x03cnumpy._core.multiarray\nscalar\n"
        + _dtype_ops("i8", _F4_STATE)
        + b"C\x04AAAA\x86R."
    )
    _refused(payload, "needs 8 bytes, the pickle holds 4")
    good = payload.replace(b"C\x04AAAA", b"C\x08\x03\x00\x00\x00\x00\x00\x00\x00")
    value = loads_data_pickle(good)
    assert isinstance(value, np.int64) and value == 3


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize(
    "dtype", ["b1", "<i1", ">i2", "<u4", "<i8", "<f2", ">f4", "<f8", "<c16", "<U3", "S2"]
)
def test_numpy_arrays_of_every_allowed_dtype_round_trip(protocol, dtype):
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 50, size=(3, 4)).astype(dtype)
    for a in (arr, np.asfortranarray(arr), arr[:, ::2], arr[0, 0]):
        back = loads_data_pickle(pickle.dumps(a, protocol=protocol))
        assert back.dtype == a.dtype and np.shape(back) == np.shape(a)
        np.testing.assert_array_equal(back, a)


def test_pyskl_with_hostile_values_is_one_line(tmp_path):
    def ann(label, kp=None):
        kp = np.zeros((1, 4, V, 3), np.float32) if kp is None else kp
        return {"frame_dir": "S001C001P001R001A001", "label": label, "keypoint": kp}

    cases = {
        "label 10**30": ({"split": {"xsub_train": ["S001C001P001R001A001"]},
                          "annotations": [ann(10**30)]}, "label .* outside"),
        "label -1": ({"split": {"xsub_train": ["S001C001P001R001A001"]},
                      "annotations": [ann(-1)]}, "label -1 outside"),
        "keypoint str": ({"split": {"xsub_train": ["S001C001P001R001A001"]},
                          "annotations": [ann(0, "abc")]}, "malformed PYSKL"),
        "split of ints": ({"split": {"xsub_train": [[1]]},
                           "annotations": [ann(0)]}, "malformed PYSKL"),
    }  # fmt: skip
    for name, (obj, match) in cases.items():
        path = tmp_path / "a.pkl"
        path.write_bytes(pickle.dumps(obj, protocol=4))
        with pytest.raises(RankzcError, match=match) as err:
            load_skeletons(f"ntu:{path}", "train")
        assert "a.pkl" in str(err.value) and "\n" not in str(err.value), name


def test_pyskl_with_one_annotation_shared_many_times_is_refused(tmp_path):
    a = {"frame_dir": "S001C001P001R001A001", "label": 0,
         "keypoint": np.zeros((1, 4, V, 3), np.float32)}  # fmt: skip
    obj = {"split": {"xsub_train": ["S001C001P001R001A001"]}, "annotations": [a] * 1000}
    path = tmp_path / "a.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=4))
    with pytest.raises(RankzcError, match="an annotation appears more than once"):
        load_skeletons(f"ntu:{path}", "train")


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ((5, [1]), "sample names must be a list of strings"),
        ((["a"], 5), "labels must be a list"),
        ((["a"], [10**30]), "labels must be integers"),
        ((["a"], [[1, 2]]), "one integer per sample"),
        (([1], [0]), "sample names must be a list of strings"),
    ],
)
def test_label_pickle_with_wrong_types_is_one_line(tmp_path, obj, match):
    path = tmp_path / "train_label.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(RankzcError, match=match):
        read_label_pkl(path)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflowing fuzzed coordinates
def test_fuzzed_label_and_pyskl_pickles_give_data_or_one_line_errors(tmp_path):
    """1,200 mutations (byte flips, truncations, insertions, fixed seed) of genuine files:
    every load returns plain data or raises RankzcError; nothing else escapes."""
    genuine = [
        pickle.dumps((["S001C001P001R001A001", "S001C002P002R001A002"], [0, 1]), protocol=p)
        for p in (0, 2, 4)
    ]
    kp = np.arange(1 * 2 * V * 3, dtype=np.float32).reshape(1, 2, V, 3)
    pyskl = {"split": {"xsub_train": ["S001C001P001R001A001"]},
             "annotations": [{"frame_dir": "S001C001P001R001A001", "label": np.int64(2),
                              "keypoint": kp, "total_frames": 2}]}  # fmt: skip
    genuine += [pickle.dumps(pyskl, protocol=p) for p in (2, 4, 5)]
    rng = np.random.default_rng(24)
    outcomes = {"data": 0, "error": 0}
    for case in range(1200):
        data = bytearray(genuine[case % len(genuine)])
        for _ in range(int(rng.integers(1, 4))):
            kind = int(rng.integers(0, 4))
            at = int(rng.integers(0, len(data)))
            if kind == 0:
                data[at] = int(rng.integers(0, 256))
            elif kind == 1:
                del data[at:]
                if not data:
                    data = bytearray(b".")
            elif kind == 2:
                data[at:at] = bytes(rng.integers(0, 256, size=int(rng.integers(1, 9))).tolist())
            else:  # a length field made huge
                data[at : at + 4] = b"\xff\xff\xff\x7f"
        path = tmp_path / f"{case % len(genuine)}.pkl"
        path.write_bytes(bytes(data))
        try:
            load_data_pickle(path)
            if case % len(genuine) < 3:
                read_label_pkl(path)
            else:
                load_skeletons(f"ntu:{path}", "train")
            outcomes["data"] += 1
        except RankzcError as err:
            assert "\n" not in str(err)
            outcomes["error"] += 1
    assert outcomes["error"] > 100 and sum(outcomes.values()) == 1200
