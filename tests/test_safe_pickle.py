"""Data pickles (2s-AGCN labels, PYSKL annotations) never run code; .npy/.npz never unpickle.

Every crafted pickle here would write a marker file in ``tmp_path`` when unpickled with
the standard unpickler (checked by :func:`test_the_crafted_pickles_do_run_code_in_pickle`);
loading them through rankzc must refuse with a one-line error and leave no marker.
"""

from __future__ import annotations

import builtins
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rankzc.cli import main
from rankzc.datasets import load_skeletons
from rankzc.datasets.ntu import read_label_pkl
from rankzc.datasets.safe_pickle import load_data_pickle
from rankzc.errors import RankzcError

V = 25


class _Exec:
    """Unpickles as ``builtins.exec(code)``: writes the marker."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


class _System:
    """Unpickles as ``os.system('touch marker')``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Popen:
    """Unpickles as ``subprocess.Popen(['touch', marker])``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.Popen, (["touch", str(self.marker)],))


PAYLOADS = {"exec": _Exec, "os.system": _System, "Popen": _Popen}


def _label_pickles(marker: Path) -> dict[str, object]:
    """2s-AGCN label files with the payload in several places."""
    names = ["S001C001P001R001A001", "S001C002P002R001A002"]
    out = {}
    for kind, cls in PAYLOADS.items():
        out[f"{kind}-whole"] = cls(marker)
        out[f"{kind}-in-labels"] = (names, [0, cls(marker)])
        # inside a numpy object array: the array's items go through the same unpickler
        arr = np.empty(2, dtype=object)
        arr[:] = [0, cls(marker)]
        out[f"{kind}-in-object-array"] = (names, arr)
    return out


def _pyskl(keypoint) -> dict:
    return {
        "split": {"xsub_train": ["S001C001P001R001A001"], "xsub_val": []},
        "annotations": [{"frame_dir": "S001C001P001R001A001", "label": 0, "keypoint": keypoint}],
    }


def test_the_crafted_pickles_do_run_code_in_pickle(tmp_path):
    """The payloads are real: the standard unpickler writes the marker."""
    for kind, cls in PAYLOADS.items():
        marker = tmp_path / f"m-{kind}"
        obj = pickle.loads(pickle.dumps(cls(marker)))
        if kind == "Popen":
            obj.wait()
        assert marker.exists(), kind


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_crafted_label_pickles_are_refused(tmp_path, protocol):
    marker = tmp_path / "marker"
    for name, obj in _label_pickles(marker).items():
        (tmp_path / "train_label.pkl").write_bytes(pickle.dumps(obj, protocol=protocol))
        with pytest.raises(RankzcError, match="refused to unpickle") as err:
            read_label_pkl(tmp_path / "train_label.pkl")
        assert "train_label.pkl" in str(err.value) and "\n" not in str(err.value), name
        assert not marker.exists(), name


def test_crafted_label_pickle_through_the_data_spec(tmp_path):
    marker = tmp_path / "marker"
    np.save(tmp_path / "train_data_joint.npy", np.zeros((2, 3, 4, V, 2), np.float32))
    (tmp_path / "train_label.pkl").write_bytes(pickle.dumps(_System(marker)))
    with pytest.raises(RankzcError, match=r"train_label.pkl: refused to unpickle posix\.system"):
        load_skeletons(f"ntu:{tmp_path}", "train")
    res = CliRunner().invoke(main, ["data", "inspect", f"ntu:{tmp_path}"])
    assert res.exit_code == 1 and res.output.count("\n") == 1
    assert "refused to unpickle" in res.output and "train_label.pkl" in res.output
    assert not marker.exists()


@pytest.mark.parametrize("kind", list(PAYLOADS))
@pytest.mark.parametrize("where", ["whole", "keypoint", "label", "split"])
def test_crafted_pyskl_pickles_are_refused(tmp_path, kind, where):
    marker = tmp_path / "marker"
    evil = PAYLOADS[kind](marker)
    obj = _pyskl(np.zeros((1, 4, V, 3), np.float32))
    if where == "whole":
        obj = evil
    elif where == "keypoint":
        obj["annotations"][0]["keypoint"] = evil
    elif where == "label":
        obj["annotations"][0]["label"] = evil
    else:
        obj["split"]["xsub_train"] = evil
    (tmp_path / "ntu60_3danno.pkl").write_bytes(pickle.dumps(obj))
    with pytest.raises(RankzcError, match="ntu60_3danno.pkl: refused to unpickle"):
        load_skeletons(f"ntu:{tmp_path / 'ntu60_3danno.pkl'}", "train")
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_genuine_data_pickles_still_load(tmp_path, protocol):
    """What these formats contain: lists, tuples, dicts, str, int, numpy arrays/scalars."""
    rng = np.random.default_rng(0)
    kp = rng.standard_normal((2, 6, V, 3)).astype(np.float16)
    obj = _pyskl(kp)
    obj["annotations"][0].update(
        keypoint_score=np.ones((2, 6, V), np.float32),
        total_frames=6,
        img_shape=(1080, 1920),
        label=np.int64(3),
    )
    path = tmp_path / "a.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    back = load_data_pickle(path)
    np.testing.assert_array_equal(back["annotations"][0]["keypoint"], kp)
    assert back["annotations"][0]["label"] == 3 and back["split"] == obj["split"]
    ds = load_skeletons(f"ntu:{path}", "train")
    assert ds.labels.tolist() == [3] and ds.data.shape[0] == 1
    labels = tmp_path / "l.pkl"
    labels.write_bytes(pickle.dumps((["a", "b"], np.array([1, 2])), protocol))
    assert read_label_pkl(labels)[1].tolist() == [1, 2]


def test_python2_label_pickle_loads(tmp_path):
    """A protocol-2 pickle as Python 2 writes it (``__builtin__`` names, byte strings)."""
    # (['S001C001P001R001A001'], [set([1])]) written by Python 2's cPickle, protocol 2
    data = (
        b"\x80\x02]q\x00U\x14S001C001P001R001A001q\x01a]q\x02c__builtin__\nset\nq\x03]"
        b"q\x04K\x01a\x85q\x05Rq\x06a\x86q\x07."
    )
    path = tmp_path / "py2.pkl"
    path.write_bytes(data)
    names, labels = load_data_pickle(path)
    assert names == ["S001C001P001R001A001"] and labels == [{1}]


def test_not_a_pickle_is_one_line(tmp_path):
    path = tmp_path / "x.pkl"
    path.write_bytes(b"\x80\x05garbage")
    with pytest.raises(RankzcError, match="x.pkl: not a readable pickle"):
        load_data_pickle(path)


def test_npy_and_npz_object_arrays_are_not_unpickled(tmp_path):
    marker = tmp_path / "marker"
    evil = np.empty((2, 3, 4, V, 2), dtype=object)
    evil[...] = 0
    evil.flat[0] = _System(marker)
    np.save(tmp_path / "train_data_joint.npy", evil, allow_pickle=True)
    (tmp_path / "train_label.pkl").write_bytes(pickle.dumps((["a", "b"], [0, 1])))
    with pytest.raises(RankzcError, match="train_data_joint.npy: not a readable .npy"):
        load_skeletons(f"ntu:{tmp_path}", "train")
    y = np.empty(2, dtype=object)
    y[:] = [_System(marker), 1]
    np.savez(tmp_path / "c.npz", x_train=np.zeros((2, 6, 150)), y_train=y)
    with pytest.raises(RankzcError, match="c.npz: not a readable .npz"):
        load_skeletons(f"ntu:{tmp_path / 'c.npz'}", "train")
    assert not marker.exists()


def test_crafted_checkpoint_runs_no_code(tmp_path):
    """A training checkpoint is read with torch.load(weights_only=True): a pickle payload in
    it is refused (the run starts over) and writes nothing."""
    from test_training import make_data, run, tiny_config

    from rankzc.space import sample_architectures

    marker = tmp_path / "marker"
    ckpt = tmp_path / "c.pt"
    import torch

    torch.save({"format": _System(marker)}, ckpt)
    arch = sample_architectures(1, seed=3)[0]
    cfg = tiny_config(epochs=1)
    data = make_data()
    ref, _ = run(arch, cfg, data)
    got, recs = run(arch, cfg, data, ckpt)
    assert got.val_acc == ref.val_acc and recs[0].epoch == -1
    assert not marker.exists()
