"""The synthetic NTU-layout generator."""

from __future__ import annotations

import numpy as np
import pytest

from rankzc.datasets import INWARD_BONES, generate, is_training
from rankzc.datasets.synthetic import (
    ACTIONS,
    PARENTS,
    TEMPLATE,
    action_pool,
    forward_kinematics,
)
from rankzc.errors import RankzcError


def test_same_seed_same_arrays_and_threads_do_not_matter():
    a = generate(n=1100, frames=12, seed=3, threads=1)
    b = generate(n=1100, frames=12, seed=3, threads=2)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.names == b.names
    c = generate(n=1100, frames=12, seed=4, threads=1)
    assert not np.array_equal(a.data, c.data)
    assert not np.array_equal(a.labels, c.labels)


def test_shapes_labels_and_metadata():
    s = generate(n=300, classes=12, frames=20, seed=0)
    assert s.data.shape == (300, 3, 20, 25, 2) and s.data.dtype == np.float32
    assert s.labels.dtype == np.int64 and s.labels.min() >= 0 and s.labels.max() < 12
    assert set(np.unique(s.labels)) == set(range(12))
    assert s.num_classes == 12 and len(s.class_names) == 12
    assert np.isfinite(s.data).all()
    assert (
        set(np.unique(s.cameras)) <= {1, 2, 3} and s.subjects.min() >= 1 and s.subjects.max() <= 40
    )
    assert all(len(n) == 20 and n.startswith("S001C") for n in s.names)
    # Training subjects are drawn twice as often: about 2/3 of samples train in xsub.
    assert 0.55 < is_training(s.names, "xsub").mean() < 0.8


def test_second_body_only_for_interactions():
    s = generate(n=400, classes=12, frames=16, seed=1)
    pairs = np.array([a[1] for a in action_pool(12)])[s.labels]
    has_second = np.abs(s.data[..., 1]).reshape(len(s), -1).sum(1) > 0
    np.testing.assert_array_equal(has_second, pairs)
    one = generate(n=50, classes=8, frames=16, persons=1)
    assert one.data.shape[-1] == 1
    assert not any(a[1] for a in action_pool(8, persons=1))


def test_body_is_plausible_at_zero_difficulty():
    s = generate(n=200, frames=16, difficulty=0.0, seed=2)
    x = s.data[..., 0]  # (n, 3, T, 25)
    tracked = np.abs(x).sum(axis=(1, 3)) > 0  # frames not dropped out
    upper_arm = np.linalg.norm(x[:, :, :, 4] - x[:, :, :, 5], axis=1)[tracked]  # joints 5-6
    shin = np.linalg.norm(x[:, :, :, 13] - x[:, :, :, 14], axis=1)[tracked]  # joints 14-15
    assert 0.2 < np.median(upper_arm) < 0.34 and 0.3 < np.median(shin) < 0.5
    head_above_feet = x[:, 1, :, 3] - x[:, 1, :, 15]
    assert np.median(head_above_feet[tracked]) > 1.2  # standing people, y up
    depth = x[:, 2, :, 0][tracked]
    assert 2.0 < depth.min() and depth.max() < 5.0  # in front of the camera


def test_forward_kinematics_rest_pose_is_template():
    pos = forward_kinematics(np.zeros((13, 3, 1, 2), np.float32), TEMPLATE[None])
    for j in range(1, 25):
        bone = pos[j, :, 0, 0] - pos[PARENTS[j], :, 0, 0]
        np.testing.assert_allclose(bone, TEMPLATE[j], atol=1e-6)
    # Same undirected edges as the GCN graph, except that hand tips hang from the hand.
    tree = {frozenset((j + 1, int(PARENTS[j]) + 1)) for j in range(1, 25)}
    graph = {frozenset(e) for e in INWARD_BONES}
    assert tree ^ graph == {frozenset(e) for e in ((22, 23), (24, 25), (22, 8), (24, 12))}


def test_difficulty_makes_noisier_data():
    easy = generate(n=200, frames=16, difficulty=0.0, seed=5).data
    hard = generate(n=200, frames=16, difficulty=1.0, seed=5).data
    jitter = [np.abs(np.diff(d[..., 0], axis=2)).mean() for d in (easy, hard)]
    assert jitter[1] > 2 * jitter[0]


@pytest.mark.parametrize(
    "kwargs", [dict(difficulty=1.5), dict(persons=3), dict(classes=1), dict(classes=121), dict(n=0)]
)
def test_bad_arguments(kwargs):
    with pytest.raises(RankzcError, match="synthetic"):
        generate(**kwargs)


def test_many_classes_use_procedural_actions():
    s = generate(n=240, classes=60, frames=12, seed=0)
    assert s.num_classes == 60 and s.labels.max() < 60
    assert s.class_names[: len(ACTIONS)] == tuple(a[0] for a in ACTIONS)
    assert s.class_names[-1] == "procedural action 60"
    one = action_pool(30, persons=1)
    assert len(one) == 30 and not any(a[1] for a in one)
    # Procedural classes are fixed per class number, whatever the data seed.
    a = [generate(n=120, classes=25, frames=8, seed=k, difficulty=0.0) for k in (0, 1)]
    assert a[0].class_names == a[1].class_names
