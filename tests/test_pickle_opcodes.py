"""Data pickles written opcode by opcode: names a pickler would never write are refused too.

``pickle.dumps`` writes ``os.system`` as ``posix system`` (its real module) and cannot
write a call of ``builtins.getattr`` on plain data at all, so payloads made with it miss
an allow-list that took ``os.system`` or ``builtins.getattr``. These are written at the
opcode level, with GLOBAL (protocol 0) and STACK_GLOBAL (protocol 4), so ``os system``
really appears in the stream.
"""

from __future__ import annotations

import pickle
import struct

import pytest

from rankzc.datasets.safe_pickle import load_data_pickle, loads_data_pickle
from rankzc.errors import RankzcError


def _short(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw  # SHORT_BINUNICODE


def global_call(module: str, name: str, args: tuple) -> bytes:
    """Protocol 0: GLOBAL 'module name', MARK, the arguments, TUPLE, REDUCE, STOP."""
    out = f"c{module}\n{name}\n(".encode()
    for a in args:
        out += f"I{a}\n".encode() if isinstance(a, int) else f"V{a}\n".encode()
    return out + b"tR."


def stack_global_call(module: str, name: str, args: tuple) -> bytes:
    """Protocol 4: PROTO 4, two strings, STACK_GLOBAL, the arguments, TUPLE, REDUCE, STOP."""
    out = b"\x80\x04" + _short(module) + _short(name) + b"\x93("
    for a in args:
        out += b"J" + struct.pack("<i", a) if isinstance(a, int) else _short(a)
    return out + b"tR."


def payloads(marker) -> dict[str, bytes]:
    touch = f"touch {marker}"
    return {
        "os.system/GLOBAL": global_call("os", "system", (touch,)),
        "os.system/STACK_GLOBAL": stack_global_call("os", "system", (touch,)),
        "posix.system/GLOBAL": global_call("posix", "system", (touch,)),
        # getattr(1, 'real') is plain data (1): only the allow-list stands in the way
        "builtins.getattr/GLOBAL": global_call("builtins", "getattr", (1, "real")),
        "builtins.getattr/STACK_GLOBAL": stack_global_call("builtins", "getattr", (1, "real")),
        "__builtin__.getattr/GLOBAL(Python-2-name)": global_call(
            "__builtin__", "getattr", (1, "real")
        ),
    }


def test_the_payloads_name_what_they_say_and_run_under_pickle(tmp_path):
    marker = tmp_path / "ran"
    p = payloads(marker)
    assert b"cos\nsystem\n" in p["os.system/GLOBAL"]
    assert b"\x8c\x02os\x8c\x06system\x93" in p["os.system/STACK_GLOBAL"]
    assert pickle.loads(p["builtins.getattr/GLOBAL"]) == 1
    assert pickle.loads(p["builtins.getattr/STACK_GLOBAL"]) == 1
    pickle.loads(p["os.system/GLOBAL"])  # the standard unpickler runs the command
    assert marker.exists()


@pytest.mark.parametrize("kind", list(payloads("m")))
def test_opcode_level_payloads_are_refused(kind, tmp_path):
    marker = tmp_path / "ran"
    data = payloads(marker)[kind]
    name = kind.split("/")[0]  # the name as the pickle wrote it
    with pytest.raises(RankzcError, match=rf"refused to unpickle {name}") as err:
        loads_data_pickle(data, "x.pkl")
    assert "\n" not in str(err.value)
    path = tmp_path / "x.pkl"
    path.write_bytes(data)
    with pytest.raises(RankzcError, match="refused to unpickle"):
        load_data_pickle(path)
    assert not marker.exists()
