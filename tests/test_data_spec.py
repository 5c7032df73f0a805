"""Data spec grammar, load_dataset, batched augmentation and `rankzc data inspect`."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from rankzc.cli import main
from rankzc.datasets import (
    DataSpec,
    augment,
    load_dataset,
    parse_data_spec,
    resample_frames,
    valid_lengths,
)
from rankzc.errors import RankzcError

SMALL = "synthetic:n=240,frames=12,classes=6"


def test_parse_synthetic_defaults_and_options():
    d = parse_data_spec("synthetic")
    assert d.kind == "synthetic" and d.opts["n"] == 3000 and d.opts["difficulty"] == 0.5
    d = parse_data_spec("synthetic:n=100, difficulty=0.25,split=xview")
    assert d.opts["n"] == 100 and d.opts["difficulty"] == 0.25 and d.split == "xview"
    assert parse_data_spec(str(d)) == d
    assert parse_data_spec(d) is d


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("synthetic:foo=1", "unknown key 'foo'"),
        ("synthetic:n=abc", "n='abc' is not an int"),
        ("synthetic:difficulty=2", r"difficulty must be in \[0, 1\]"),
        ("synthetic:split=random", "split must be xsub or xview"),
        ("synthetic:classes=500", "classes=500 out of range"),
        ("synthetic:n", "'n' is not key=value"),
        ("imagenet", "expected 'synthetic"),
        ("ntu:", r"expected ntu:PATH"),
        ("ntu:/no/such/place:xsub", "/no/such/place: no such file or directory"),
    ],
)
def test_bad_specs_give_one_line_errors(spec, match):
    with pytest.raises(RankzcError, match=match) as err:
        parse_data_spec(spec)
    assert "\n" not in str(err.value)


def test_parse_ntu_path_split_and_options(tmp_path):
    np.save(tmp_path / "train_data_joint.npy", np.zeros((1, 3, 2, 25, 2), np.float32))
    lab = tmp_path / "train_label.pkl"
    with open(lab, "wb") as fh:
        pickle.dump((["S001C001P001R001A001"], [0]), fh)
    d = parse_data_spec(f"ntu:{tmp_path}:xview:label={lab},frames=50")
    assert d == DataSpec(
        "ntu", str(tmp_path), "xview", "npy", (("frames", 50), ("label", str(lab)))
    )
    assert parse_data_spec(str(d)) == d
    assert parse_data_spec(f"ntu:{tmp_path / 'train_data_joint.npy'}").format == "npy"
    with pytest.raises(RankzcError, match="missing file not found"):
        parse_data_spec(f"ntu:{tmp_path}:missing={tmp_path / 'nope.txt'}")
    with pytest.raises(RankzcError, match="unknown key 'n'"):
        parse_data_spec(f"ntu:{tmp_path}:n=3")


def test_load_dataset_synthetic_parts_and_resampling():
    train, val = load_dataset(SMALL, "train"), load_dataset(SMALL, "val")
    assert len(train) + len(val) == 240 and len(train) > len(val) > 0
    assert train.data.dtype == torch.float32 and train.labels.dtype == torch.int64
    assert tuple(train.data.shape[1:]) == (3, 12, 25, 2) and train.num_classes == 6
    assert not set(train.names) & set(val.names)  # xsub: disjoint performers
    x, y = train[3]
    assert x.shape == (3, 12, 25, 2) and int(y) == int(train.labels[3])
    short = load_dataset(SMALL, "train", num_frames=6, limit=10)
    assert tuple(short.data.shape) == (10, 3, 6, 25, 2)
    full = train.data[:10]
    lengths = valid_lengths(full)
    expect = resample_frames(full, 6, length=lengths)
    torch.testing.assert_close(short.data, expect)
    with pytest.raises(RankzcError, match="split must be 'train' or 'val'"):
        load_dataset(SMALL, "test")


def test_xview_split_by_camera():
    val = load_dataset(SMALL + ",split=xview", "val")
    assert all(n[4:8] == "C001" for n in val.names)


def test_resample_frames_nearest():
    x = torch.arange(8, dtype=torch.float32).view(1, 1, 8, 1, 1).expand(2, 3, 8, 25, 2).clone()
    x[1, :, 4:] = 0  # second sample has 4 valid frames
    out = resample_frames(x, 4)
    assert out[0, 0, :, 0, 0].tolist() == [0, 2, 4, 6]
    assert out[1, 0, :, 0, 0].tolist() == [0, 1, 2, 3]


def test_augment_rotation_and_crop():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 10, 25, 2)
    x[:, :, 7:] = 0
    x[0, ..., 1] = 0
    y = augment(x, g, rotate=30.0)
    assert y.shape == x.shape and not torch.equal(x, y)
    torch.testing.assert_close(y.norm(dim=1), x.norm(dim=1))  # rotations keep lengths
    assert (y[0, ..., 1] == 0).all() and (y[:, :, 7:] == 0).all()
    y2 = augment(x, torch.Generator().manual_seed(0), rotate=30.0)
    torch.testing.assert_close(y, y2)
    c = augment(x, torch.Generator().manual_seed(1), crop=(0.5, 0.8))
    assert c.shape == x.shape
    # Every output frame is one of the input's valid frames.
    frames = x[:, :, :7].permute(0, 2, 1, 3, 4).reshape(4, 7, -1)
    out = c.permute(0, 2, 1, 3, 4).reshape(4, 10, -1)
    match = (out[:, :, None] == frames[:, None]).all(-1).any(-1)
    assert match.all()
    assert augment(x) is not x and torch.equal(augment(x), x)
    with pytest.raises(ValueError, match="crop ratios"):
        augment(x, crop=(0.9, 0.5))


def test_cli_inspect_synthetic_and_errors():
    runner = CliRunner()
    res = runner.invoke(main, ["data", "inspect", SMALL, "--format", "json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["num_classes"] == 6
    parts = out["parts"]
    assert parts["train"]["samples"] + parts["val"]["samples"] == 240
    assert parts["train"]["shape"][1:] == [3, 12, 25, 2]
    res = runner.invoke(main, ["data", "inspect", SMALL, "--frames", "5"])
    assert res.exit_code == 0 and "x3x5x25x2" in res.output and "load report" in res.output
    res = runner.invoke(main, ["data", "inspect", "synthetic:bogus=1"])
    assert res.exit_code == 1
    assert res.output.strip().count("\n") == 0 and res.output.startswith("Error: data spec")
    assert "Traceback" not in res.output


def test_cli_inspect_ntu_npz(tmp_path):
    x = np.random.default_rng(0).standard_normal((3, 4, 150)).astype(np.float32)
    np.savez(
        tmp_path / "d.npz", x_train=x, y_train=np.eye(4)[:3], x_test=x[:1], y_test=np.eye(4)[:1]
    )
    res = CliRunner().invoke(main, ["data", "inspect", f"ntu:{tmp_path / 'd.npz'}"])
    assert res.exit_code == 0, res.output
    assert "npz" in res.output and "3x3x4x25x2" in res.output
