"""NTU loaders on fixtures written here in each real file format, defects included."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from rankzc.datasets import load_dataset, load_skeletons
from rankzc.datasets.ntu import (
    NTUName,
    infer_format,
    is_training,
    label_path_for,
    read_skeleton,
    skeleton_to_array,
)
from rankzc.errors import RankzcError

V = 25


def joints(seed: int, t: int, moving: float = 0.1) -> np.ndarray:
    """(t, 25, 3) joints: a random pose plus motion of size ``moving``."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(-0.5, 0.5, (1, V, 3)) + np.array([0, 0, 3.0])
    return (base + moving * rng.standard_normal((t, V, 3))).round(4).astype(np.float32)


def write_skeleton(path: Path, frames: list[list[tuple[str, np.ndarray]]]) -> None:
    """Write the NTU .skeleton text format; ``frames[f]`` lists (bodyID, (25, 3) xyz)."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, xyz in bodies:
            lines.append(f"{body_id} 0 1 1 1 1 0 0.1 -0.2 2")
            lines.append("25")
            for x, y, z in xyz:
                lines.append(f"{x} {y} {z} 250.1 200.2 960.3 540.4 0.5 0.1 0.2 0.3 2")
    path.write_text("\r\n".join(lines) + "\r\n")


@pytest.fixture()
def skeleton_dir(tmp_path: Path):
    """Four samples: 2 bodies; a body joining mid-sequence; 3 bodies; one on the missing list."""
    d = tmp_path / "raw"
    d.mkdir()
    a, b = joints(0, 5), joints(1, 5)
    write_skeleton(
        d / "S001C001P001R001A001.skeleton",
        [[("72057594037931101", a[f]), ("72057594037931102", b[f])] for f in range(5)],
    )
    c, e = joints(2, 6), joints(3, 3, moving=0.02)
    frames = [[("11", c[f])] for f in range(3)] + [
        [("11", c[f]), ("12", e[f - 3])] for f in range(3, 6)
    ]
    write_skeleton(d / "S001C002P002R001A002.skeleton", frames)
    still, m1, m2 = joints(4, 4, moving=0.0), joints(5, 4, 0.2), joints(6, 4, 0.3)
    write_skeleton(
        d / "S001C003P003R002A003.skeleton",
        [[("1", still[f]), ("2", m1[f]), ("3", m2[f])] for f in range(4)],
    )
    write_skeleton(d / "S001C002P001R001A004.skeleton", [[("5", joints(7, 1)[0])]])
    (d / "NTU_RGBD_samples_with_missing_skeletons.txt").write_text("S001C002P001R001A004\n")
    expect = {
        "S001C001P001R001A001": np.stack([a, b], -1),
        "S001C002P002R001A002": np.stack(
            [c, np.concatenate([np.zeros((3, V, 3), np.float32), e])], -1
        ),
        "S001C003P003R002A003": np.stack([m2, m1], -1),  # the two most active, most active first
    }
    return d, expect


def canonical(expected: np.ndarray, t: int) -> np.ndarray:
    out = np.zeros((3, t, V, 2), np.float32)
    out[:, : expected.shape[0]] = expected.transpose(2, 0, 1, 3)
    return out


def test_ntu_name_and_splits():
    f = NTUName.parse("/x/S017C003P020R002A060.skeleton")
    assert f == NTUName(17, 3, 20, 2, 60)
    assert NTUName.parse("foo") is None
    names = ["S001C001P001R001A001", "S001C002P003R001A001", "S002C003P045R001A001"]
    assert is_training(names, "xsub").tolist() == [True, False, False]
    assert is_training(names, "xview").tolist() == [False, True, True]
    assert is_training(names, "xsub120").tolist() == [True, False, True]
    assert is_training(names, "xset120").tolist() == [False, False, True]
    with pytest.raises(RankzcError, match="not SsssCccc"):
        is_training(["bad"], "xsub", "labels.pkl")


def test_read_skeleton_tracks_bodies_by_id(skeleton_dir):
    d, expect = skeleton_dir
    bodies, n = read_skeleton(d / "S001C002P002R001A002.skeleton")
    assert n == 6 and set(bodies) == {"11", "12"}
    assert bodies["12"][0] == [3, 4, 5]
    arr, facts = skeleton_to_array(d / "S001C002P002R001A002.skeleton", max_frame=8)
    assert facts == {"frames": 6, "bodies": 2}
    np.testing.assert_allclose(arr, canonical(expect["S001C002P002R001A002"], 8), atol=1e-6)


def test_skeleton_dir_parts_counts_and_arrays(skeleton_dir):
    d, expect = skeleton_dir
    assert infer_format(d) == "skeleton"
    train = load_dataset(f"ntu:{d}:xview:frames=10", "train")
    # xview: cameras 2, 3 train; the camera-2 sample A004 is on the missing list.
    assert train.names == ["S001C002P002R001A002", "S001C003P003R002A003"]
    assert train.labels.tolist() == [1, 2]
    assert train.num_classes == 60
    assert tuple(train.data.shape) == (2, 3, 10, V, 2)
    for i, name in enumerate(train.names):
        np.testing.assert_allclose(train.data[i].numpy(), canonical(expect[name], 10), atol=1e-6)
    r = train.report
    assert (r.dropped_missing, r.extra_bodies, r.padded, r.truncated, r.nan_fixed) == (
        1,
        1,
        2,
        0,
        0,
    )
    val = load_dataset(f"ntu:{d}:xview:frames=3", "val")
    assert val.names == ["S001C001P001R001A001"] and val.report.truncated == 1
    np.testing.assert_allclose(
        val.data[0].numpy(), canonical(expect["S001C001P001R001A001"][:3], 3), atol=1e-6
    )
    # Default split xsub: performers 1, 2 train; 3 is val.
    assert load_skeletons(f"ntu:{d}", "val").names == ["S001C003P003R002A003"]


def test_skeleton_missing_list_option(skeleton_dir, tmp_path):
    d, _ = skeleton_dir
    (d / "NTU_RGBD_samples_with_missing_skeletons.txt").unlink()
    lst = tmp_path / "missing.txt"
    lst.write_text("S001C002P002R001A002\n")
    ds = load_dataset(f"ntu:{d}:xview:missing={lst}", "train")
    assert ds.names == ["S001C002P001R001A004", "S001C003P003R002A003"]
    assert ds.report.dropped_missing == 1


def test_truncated_skeleton_names_file(skeleton_dir):
    d, _ = skeleton_dir
    f = d / "S001C001P001R001A001.skeleton"
    f.write_text("\n".join(f.read_text().splitlines()[:40]))
    with pytest.raises(RankzcError) as err:
        load_dataset(f"ntu:{d}:xview", "val")
    msg = str(err.value)
    assert "S001C001P001R001A001.skeleton" in msg and "truncated" in msg and "\n" not in msg


def test_malformed_skeleton_joint_line(tmp_path):
    d = tmp_path / "raw"
    d.mkdir()
    write_skeleton(d / "S001C001P001R001A001.skeleton", [[("1", joints(0, 1)[0])]])
    lines = (d / "S001C001P001R001A001.skeleton").read_text().splitlines()
    lines[5] = "0.1 0.2"
    (d / "S001C001P001R001A001.skeleton").write_text("\n".join(lines))
    with pytest.raises(RankzcError, match="S001C001P001R001A001.skeleton: lines .* 12 numbers"):
        load_skeletons(f"ntu:{d}", "train")


# ---------------------------------------------------------------------- npy + pkl
def write_npy_set(base: Path, n_train: int = 3, n_val: int = 2, t: int = 8, seed: int = 0):
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for part, n in (("train", n_train), ("val", n_val)):
        x = rng.standard_normal((n, 3, t, V, 2)).astype(np.float32)
        x[:, :, t - 2 :] = 0.0  # padded tail
        names = [f"S001C00{1 + i % 3}P00{1 + i}R001A00{1 + i}.skeleton" for i in range(n)]
        labels = [int(k) for k in rng.integers(0, 7, n)]
        np.save(base / f"{part}_data_joint.npy", x)
        with open(base / f"{part}_label.pkl", "wb") as fh:
            pickle.dump((names, labels), fh)
        out[part] = (x, names, labels)
    return out


def test_npy_dir_nan_repair_and_empty_drop(tmp_path):
    sets = write_npy_set(tmp_path / "xview")
    x = sets["train"][0].copy()
    x[0, :, 3, 4, 0] = np.nan  # one NaN joint in frame 3 of body 0
    x[0, :, 0, :, 1] = np.nan  # a leading NaN frame of body 1
    x[2] = np.nan  # an all-NaN sample
    np.save(tmp_path / "xview" / "train_data_joint.npy", x)
    assert infer_format(tmp_path) == "npy"
    sset = load_skeletons(f"ntu:{tmp_path}:xview", "train")
    assert isinstance(sset.data, np.memmap)
    ds = load_dataset(f"ntu:{tmp_path}:xview", "train")
    assert len(ds) == 2 and ds.labels.tolist() == sets["train"][2][:2]
    r = ds.report
    assert (r.nan_fixed, r.dropped_empty, r.padded) == (1, 1, 2)
    got = ds.data.numpy()
    assert not np.isnan(got).any()
    np.testing.assert_array_equal(got[0, :, 3, :, 0], x[0, :, 2, :, 0])  # copied from frame 2
    np.testing.assert_array_equal(got[0, :, 0, :, 1], x[0, :, 1, :, 1])  # first valid frame
    np.testing.assert_array_equal(got[1], x[1])
    labels = sets["train"][2] + sets["val"][2]
    assert ds.num_classes == max(labels) + 1


def test_npy_file_finds_labels_and_other_part(tmp_path):
    sets = write_npy_set(tmp_path)
    assert label_path_for(tmp_path / "train_data_joint.npy") == tmp_path / "train_label.pkl"
    val = load_dataset(f"ntu:{tmp_path / 'train_data_joint.npy'}", "val")
    np.testing.assert_array_equal(val.data.numpy(), sets["val"][0])
    assert val.names == sets["val"][1]


def test_npy_without_part_word_splits_by_names(tmp_path):
    x = np.ones((3, 3, 4, V, 2), np.float32)
    np.save(tmp_path / "all.npy", x)
    names = ["S001C001P001R001A001", "S001C002P003R001A002", "S001C003P006R001A003"]
    with open(tmp_path / "labels.pkl", "wb") as fh:
        pickle.dump((names, [0, 1, 2]), fh)
    spec = f"ntu:{tmp_path / 'all.npy'}:xsub:label={tmp_path / 'labels.pkl'}"
    assert load_dataset(spec, "train").names == names[:1]
    assert load_dataset(spec, "val").labels.tolist() == [1, 2]


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((2, 3, 4, V), "rank 4"),
        ((2, 2, 4, V, 3), r"looks like N, M, T, V, C"),
        ((2, 3, 4, 18, 2), "18 joints"),
        ((2, 3, 4, V, 4), "4 bodies"),
        ((2, 3, 4, V, 3), "ambiguous: axes 1 and 4 both have size 3"),
    ],
)
def test_npy_bad_shapes_are_refused(tmp_path, shape, match):
    np.save(tmp_path / "train_data_joint.npy", np.zeros(shape, np.float32))
    with open(tmp_path / "train_label.pkl", "wb") as fh:
        pickle.dump((["a", "b"], [0, 1]), fh)
    with pytest.raises(RankzcError, match=match) as err:
        load_skeletons(f"ntu:{tmp_path}", "train")
    assert "train_data_joint.npy" in str(err.value) and "expected (N, 3, T, 25" in str(err.value)


def test_npy_label_length_mismatch(tmp_path):
    write_npy_set(tmp_path)
    with open(tmp_path / "train_label.pkl", "wb") as fh:
        pickle.dump((["a", "b"], [0, 1]), fh)
    with pytest.raises(
        RankzcError, match=r"train_label.pkl: 2 labels but train_data_joint.npy holds 3"
    ):
        load_skeletons(f"ntu:{tmp_path}", "train")
    with open(tmp_path / "train_label.pkl", "wb") as fh:
        pickle.dump((["a", "b", "c"], [0, 1]), fh)
    with pytest.raises(RankzcError, match=r"train_label.pkl: 3 sample names but 2 labels"):
        load_skeletons(f"ntu:{tmp_path}", "train")


def test_missing_paths(tmp_path):
    with pytest.raises(RankzcError, match="nowhere: no such file"):
        load_skeletons(f"ntu:{tmp_path / 'nowhere'}", "train")
    np.save(tmp_path / "train_data.npy", np.zeros((1, 3, 2, V, 2), np.float32))
    with pytest.raises(RankzcError, match="train_label.pkl: file not found"):
        load_skeletons(f"ntu:{tmp_path}", "train")
    with pytest.raises(RankzcError, match="no val data file"):
        load_skeletons(f"ntu:{tmp_path / 'train_data.npy'}", "val")


# --------------------------------------------------------------------------- npz
def test_ctrgcn_npz_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    x = {
        p: rng.standard_normal((n, 3, 6, V, 2)).astype(np.float32)
        for p, n in (("train", 4), ("test", 2))
    }
    y = {p: np.eye(5)[rng.integers(0, 5, len(x[p]))] for p in x}
    # CTR-GCN stores (N, T, M * V * C) with C fastest.
    flat = {f"x_{p}": x[p].transpose(0, 2, 4, 3, 1).reshape(len(x[p]), 6, 150) for p in x}
    np.savez(tmp_path / "NTU60_CS.npz", **flat, **{f"y_{p}": y[p] for p in y})
    ds = load_dataset(f"ntu:{tmp_path / 'NTU60_CS.npz'}", "val")
    np.testing.assert_array_equal(ds.data.numpy(), x["test"])
    assert ds.labels.tolist() == y["test"].argmax(1).tolist() and ds.num_classes == 5
    assert len(load_dataset(f"ntu:{tmp_path / 'NTU60_CS.npz'}", "train")) == 4


def test_npz_bad_arrays(tmp_path):
    np.savez(tmp_path / "a.npz", x_train=np.zeros((2, 6, 100)), y_train=np.eye(2))
    with pytest.raises(
        RankzcError, match=r"a.npz: x_train has shape \(2, 6, 100\); expected \(N, T, 150\)"
    ):
        load_skeletons(f"ntu:{tmp_path / 'a.npz'}", "train")
    np.savez(tmp_path / "b.npz", x_train=np.zeros((2, 6, 150)), y_train=np.eye(3))
    with pytest.raises(RankzcError, match="b.npz: x_train has 2 samples but y_train has 3"):
        load_skeletons(f"ntu:{tmp_path / 'b.npz'}", "train")
    with pytest.raises(RankzcError, match="b.npz: needs arrays x_test and y_test"):
        load_skeletons(f"ntu:{tmp_path / 'b.npz'}", "val")


# ------------------------------------------------------------------------- pyskl
def test_pyskl_pickle(tmp_path):
    k0 = joints(0, 5).astype(np.float32)[None]  # 1 body, 5 frames
    k1 = np.stack([joints(1, 7, 0.0), joints(2, 7, 0.3), joints(3, 7, 0.1)])  # 3 bodies
    k1[1, 2, 4] = np.nan  # a NaN joint in frame 2 of the most active body
    k2 = joints(4, 4)[None]
    anns = [
        {"frame_dir": "S001C001P001R001A001", "label": 0, "keypoint": k0, "total_frames": 5},
        {"frame_dir": "S001C001P001R001A002", "label": 1, "keypoint": k1, "total_frames": 7},
        {"frame_dir": "S001C001P003R001A009", "label": 8, "keypoint": k2, "total_frames": 4},
    ]
    split = {
        "xsub_train": ["S001C001P001R001A001", "S001C001P001R001A002"],
        "xsub_val": ["S001C001P003R001A009"],
    }
    with open(tmp_path / "ntu60_3danno.pkl", "wb") as fh:
        pickle.dump({"split": split, "annotations": anns}, fh)
    ds = load_dataset(f"ntu:{tmp_path / 'ntu60_3danno.pkl'}:xsub:frames=6", "train")
    assert ds.names == split["xsub_train"] and ds.labels.tolist() == [0, 1]
    assert ds.num_classes == 9 and tuple(ds.data.shape) == (2, 3, 6, V, 2)
    r = ds.report
    assert (r.extra_bodies, r.truncated, r.nan_fixed, r.padded) == (1, 1, 1, 1)
    two = np.concatenate([k0, np.zeros_like(k0)])
    np.testing.assert_array_equal(ds.data[0].numpy(), canonical(two.transpose(1, 2, 3, 0), 6))
    want = np.stack([k1[1, :6], k1[2, :6]], -1)
    want[2] = want[1]  # the NaN frame of body 0 copies frame 1 ...
    want[2, :, :, 1] = k1[2, 2]  # ... body 1 keeps its own frame 2
    np.testing.assert_array_equal(ds.data[1].numpy(), canonical(want, 6))
    with pytest.raises(
        RankzcError, match=r"no split 'xview_train'; found \['xsub_train', 'xsub_val'\]"
    ):
        load_skeletons(f"ntu:{tmp_path / 'ntu60_3danno.pkl'}:xview", "train")


def test_pyskl_bad_keypoints(tmp_path):
    ann = {
        "frame_dir": "S001C001P001R001A001",
        "label": 0,
        "keypoint": np.zeros((1, 5, 17, 2)),
        "total_frames": 5,
    }
    with open(tmp_path / "p.pkl", "wb") as fh:
        pickle.dump({"split": {"xsub_train": [ann["frame_dir"]]}, "annotations": [ann]}, fh)
    with pytest.raises(
        RankzcError,
        match=r"p.pkl: annotation 'S001C001P001R001A001': keypoint shape \(1, 5, 17, 2\); expected \(M, T, 25, 3\)",
    ):
        load_skeletons(f"ntu:{tmp_path / 'p.pkl'}", "train")
    with open(tmp_path / "q.pkl", "wb") as fh:
        pickle.dump([1, 2, 3], fh)
    with pytest.raises(RankzcError, match="q.pkl: expected a PYSKL dict"):
        load_skeletons(f"ntu:{tmp_path / 'q.pkl'}", "train")
