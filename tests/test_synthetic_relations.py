"""The synthetic ``relations`` task: classes defined by which body parts move and in which order."""

from __future__ import annotations

import numpy as np
import pytest

from rankzc.datasets import parse_data_spec
from rankzc.datasets.synthetic import RELATION_CLASSES, generate, relation_classes
from rankzc.errors import RankzcError
from rankzc.training.config import resolve_data_spec


def test_default_task_keeps_old_spec_strings_and_run_keys():
    assert "task" not in str(parse_data_spec("synthetic"))
    assert "task" not in resolve_data_spec("synthetic", "cpu")
    assert str(parse_data_spec("synthetic:task=relations,classes=12")).endswith("task=relations")


def test_relations_classes_pair_each_order_with_its_reverse():
    names = relation_classes()
    assert len(names) == RELATION_CLASSES == 12
    for a, b in zip(names[::2], names[1::2], strict=True):
        first, second = a.split(", then ")
        assert b == f"{second}, then {first}"
    with pytest.raises(RankzcError, match="relations has 2..12"):
        relation_classes(13)
    with pytest.raises(RankzcError, match="relations has"):
        parse_data_spec("synthetic:task=relations,classes=20")
    with pytest.raises(RankzcError, match="task must be one of"):
        parse_data_spec("synthetic:task=dance")


def test_relations_is_deterministic_and_reversing_time_swaps_the_order():
    a = generate(n=300, classes=12, frames=16, task="relations", persons=1, difficulty=0.0)
    b = generate(n=300, classes=12, frames=16, task="relations", persons=1, difficulty=0.0)
    np.testing.assert_array_equal(a.data, b.data)
    assert a.class_names == relation_classes(12)
    assert set(np.unique(a.labels)) == set(range(12))
    # which limb moves first: the time of the largest hand movement against the knee's,
    # for class 0 (hand, then knee) and class 1 (knee, then hand)
    x = a.data[..., 0]
    rel = x - x[:, :, :, :1]  # relative to the spine base
    hands = np.maximum(rel[:, 1, :, 7], rel[:, 1, :, 11])  # height of the higher hand
    knees = np.maximum(rel[:, 1, :, 13], rel[:, 1, :, 17])
    t_hand = hands.argmax(1)
    t_knee = knees.argmax(1)
    first_hand = t_hand < t_knee
    assert first_hand[a.labels == 0].mean() > 0.8
    assert first_hand[a.labels == 1].mean() < 0.2


def test_actions_task_unchanged_by_the_new_option():
    # fingerprint of the generator before the relations task existed (same draws):
    # shipped stores' run keys and labels depend on these data staying the same
    a = generate(n=50, classes=10, frames=8, persons=1)
    assert a.labels[:4].tolist() == [8, 6, 5, 2]
    sums = np.abs(a.data[:4]).sum((1, 2, 3, 4))
    np.testing.assert_allclose(sums, [755.973, 583.553, 817.868, 604.044], rtol=1e-4)
