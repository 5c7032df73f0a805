r"""Synthetic skeleton actions in the NTU RGB+D layout, generated in numpy.

A sample is one or two bodies built from a template skeleton with Kinect-like
bone lengths (metres), scaled per subject, posed by forward kinematics from
joint-angle trajectories that define the action class, placed in the room and
seen by one of three cameras (NTU style: rotations about the vertical axis),
then spoilt by sensor noise and tracking drop-outs. Output:
``(N, 3, T, 25, M)`` float32 in camera coordinates (x to the sensor's left,
y up, z away from the sensor), the NTU joint order, the second body zero for
one-person actions as NTU pads it.

Forward kinematics: joint ``j`` with parent ``p`` sits at

.. math::  x_j = x_p + R_p\, s\, o_j, \qquad R_j = R_p\, R_y(\psi_j) R_x(\theta_j) R_z(\phi_j),

where ``o_j`` is the template offset, ``s`` the subject scale and
``(\psi, \theta, \phi)`` the joint's yaw, pitch and roll at that frame (zero
for joints without degrees of freedom). Each frame's body is then shifted
vertically so that its lowest foot joint stands on the floor (squats and
sitting lower the pelvis, kicks lift one foot), plus a jump offset.

Timing: with frame time :math:`t\in[0,1]`, every sample draws a start ``a`` and
a duration ``l``; the action runs on the phase :math:`u=\mathrm{clip}((t-a)/l,0,1)`
with sample-specific speed (number of oscillations) and amplitude.

``difficulty`` ``d`` in ``[0, 1]`` (default 0.5) scales every nuisance at once:

=================================  =============================================
sensor noise (std, metres)         ``0.005 + 0.08 d``
amplitude factor                   ``U(1 - s, 1 + s)``, ``s = 0.2 + 0.6 d``, times
                                   a per-subject style factor
start / duration of the action     start ``U(0, 0.1 + 0.4 d)``, duration
                                   ``U(0.9 - 0.5 d, 1)`` of the clip
speed (oscillation count factor)   ``U(1 - 0.5 d, 1 + 0.6 d)``
view about the camera's direction  ``±(10 + 150 d)`` degrees; tilt std ``2 + 15 d``
class overlap                      a random class's motion blended in with
                                   weight ``U(0, 1.5 d)`` (above 1 it dominates)
idle sway of every joint           amplitude up to ``3 + 30 d`` degrees
tracking drop-outs                 probability ``0.1 + 0.6 d`` per sample: a
                                   chunk of frames zeroed, or 3 distal joints
                                   jittered (std 8 cm) over a chunk
=================================  =============================================

Measured separability (``benchmarks/synthetic_data.py --separability``, 3000
samples, 10 classes, 32 frames, cross-subject): a logistic regression on the
flattened coordinates scores 0.998 / 0.975 / 0.836 / 0.631 / 0.498 on the
validation part at ``d`` = 0 / 0.25 / 0.5 / 0.75 / 1 (chance 0.11).

``task="relations"`` replaces the actions by classes that only relations define: an
ordered pair of two sub-movements ("a hand raised forward, then a knee lifted" against
the reverse; see :func:`_relations`), under the same view, sway, noise and drop-outs.
Its measured separability and what the GCN-NAS network learns of it at the ``cpu``
budget are in ``benchmarks/output/relations/README.md``.

Classes: the first 20 are the named :data:`ACTIONS` (6 of them two-person
interactions, with the partner facing the actor); more classes (up to
:data:`MAX_CLASSES`) are procedural one-person actions, fixed per class number.

Subjects 1..40 (training subjects of NTU-60 cross-subject drawn twice as often,
so about 2/3 of samples are in the cross-subject training split) and cameras
1..3 (camera 1 at 0 degrees, 2 at +45, 3 at -45; cameras 2 and 3 train the
cross-view split) are stored per sample, with NTU-style names
``S001CcccPpppRrrrAaaa``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from rankzc.datasets.skeleton import NUM_JOINTS, LoadReport, SkeletonSet
from rankzc.errors import RankzcError

# --------------------------------------------------------------------------- body
# Kinematic tree for posing (1-based child -> parent). It differs from the GCN
# graph only for the thumbs and hand tips, which hang from the hand here.
_PARENT_1B = {
    2: 1, 21: 2, 3: 21, 4: 3, 5: 21, 6: 5, 7: 6, 8: 7, 22: 8, 23: 8, 9: 21, 10: 9,
    11: 10, 12: 11, 24: 12, 25: 12, 13: 1, 14: 13, 15: 14, 16: 15, 17: 1, 18: 17,
    19: 18, 20: 19,
}  # fmt: skip

# Template offsets (metres) of each joint from its parent, body frame: +x the
# person's right, +y up, -z forward. Lengths follow adult Kinect v2 skeletons.
_OFFSET_1B = {
    1: (0.0, 0.0, 0.0),
    2: (0.0, 0.26, 0.0),
    21: (0.0, 0.24, 0.0),
    3: (0.0, 0.08, 0.0),
    4: (0.0, 0.13, 0.0),
    5: (-0.17, -0.05, 0.0),
    6: (0.0, -0.27, 0.0),
    7: (0.0, -0.24, 0.0),
    8: (0.0, -0.07, 0.0),
    22: (0.0, -0.07, 0.0),
    23: (0.025, -0.04, -0.03),
    9: (0.17, -0.05, 0.0),
    10: (0.0, -0.27, 0.0),
    11: (0.0, -0.24, 0.0),
    12: (0.0, -0.07, 0.0),
    24: (0.0, -0.07, 0.0),
    25: (-0.025, -0.04, -0.03),
    13: (-0.08, -0.06, 0.0),
    14: (0.0, -0.42, 0.0),
    15: (0.0, -0.40, 0.0),
    16: (0.0, -0.05, -0.10),
    17: (0.08, -0.06, 0.0),
    18: (0.0, -0.42, 0.0),
    19: (0.0, -0.40, 0.0),
    20: (0.0, -0.05, -0.10),
}

#: 0-based parent per joint (-1 for the root).
PARENTS = np.array([_PARENT_1B.get(j, 0) - 1 for j in range(1, NUM_JOINTS + 1)])
TEMPLATE = np.array([_OFFSET_1B[j] for j in range(1, NUM_JOINTS + 1)], dtype=np.float32)

# Joints with degrees of freedom (1-based) and their column in the angle array.
_DOF_1B = (2, 21, 3, 5, 6, 7, 9, 10, 11, 13, 14, 17, 18)
_DOF_COL = {j: k for k, j in enumerate(_DOF_1B)}
_SIDE = {5: -1.0, 6: -1.0, 7: -1.0, 13: -1.0, 14: -1.0, 9: 1.0, 10: 1.0, 11: 1.0, 17: 1.0, 18: 1.0}
# Topological order (0-based): parents before children.
_ORDER: list[int] = []
_seen = {0}
_ORDER.append(0)
while len(_ORDER) < NUM_JOINTS:
    for _j in range(NUM_JOINTS):
        if _j not in _seen and int(PARENTS[_j]) in _seen:
            _ORDER.append(_j)
            _seen.add(_j)
_FEET = np.array([14, 15, 18, 19])  # 0-based ankles and feet
_ARMS = np.array([4, 5, 6, 7, 8, 9, 10, 11, 21, 22, 23, 24])
_LEGS = np.array([12, 13, 14, 15, 16, 17, 18, 19])
_DISTAL = np.array([7, 11, 15, 19, 21, 22, 23, 24, 6, 10])  # hands, feet, tips, wrists

# NTU-60 cross-subject training subjects and cross-view training cameras.
_TRAIN_SUBJECTS = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
_CAMERA_YAW = {1: 0.0, 2: 45.0, 3: -45.0}
N_SUBJECTS = 40


# -------------------------------------------------------------------- time shapes
def _clip01(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 1.0)


def _bump(u: np.ndarray) -> np.ndarray:
    """0 -> 1 -> 0 over u in [0, 1] (sin^2)."""
    return np.sin(np.pi * _clip01(u)) ** 2


def _smooth(u: np.ndarray) -> np.ndarray:
    """Smoothstep 0 -> 1 over u in [0, 1]."""
    u = _clip01(u)
    return u * u * (3.0 - 2.0 * u)


def _hold(u: np.ndarray, r: float = 0.25) -> np.ndarray:
    """Rise over [0, r], hold, fall over [1 - r, 1]."""
    return _smooth(u / r) * _smooth((1.0 - u) / r)


@dataclass
class _Ctx:
    u: np.ndarray  # (n, T) phase in [0, 1]
    amp: np.ndarray  # (n, 1) amplitude factor
    cyc: np.ndarray  # (n, 1) speed factor (multiplies oscillation counts)
    phi: np.ndarray  # (n, 1) random phase


@dataclass
class _Motion:
    """Joint angles (degrees) keyed by (1-based joint, axis 0 yaw/1 pitch/2 roll)."""

    a: dict
    b: dict | None = None  # second person
    root: np.ndarray | None = None  # (n, T, 3) body-frame translation of person A
    lift: np.ndarray | None = None  # (n, T) vertical offset (jumps)
    dist: np.ndarray | None = None  # (n, T) distance between the two persons
    face_away: bool = False


def _osc(c: _Ctx, cycles: float, shift: float = 0.0) -> np.ndarray:
    return np.sin(2 * np.pi * cycles * c.cyc * c.u + c.phi * shift)


def _arms(d: dict, pitch: np.ndarray, elbow: np.ndarray, inward=None, abd=None, sides=(5, 9)):
    for s in sides:
        d[(s, 1)] = pitch
        d[(s + 1, 1)] = elbow
        if inward is not None:
            d[(s, 0)] = _SIDE[s] * inward
        if abd is not None:
            d[(s, 2)] = _SIDE[s] * abd


def _gait(c: _Ctx, d: dict, w: np.ndarray, cycles: float = 2.5) -> None:
    g = _osc(c, cycles) * w
    k = (0.5 + 0.5 * np.sin(2 * np.pi * cycles * c.cyc * c.u + 1.2)) * w
    d[(13, 1)] = 28 * g
    d[(17, 1)] = -28 * g
    d[(14, 1)] = -45 * k
    d[(18, 1)] = -45 * (0.5 + 0.5 * np.sin(2 * np.pi * cycles * c.cyc * c.u + 1.2 + np.pi)) * w
    d[(5, 1)] = -22 * g
    d[(9, 1)] = 22 * g
    d[(6, 1)] = 15 * w
    d[(10, 1)] = 15 * w


def _wave(c: _Ctx) -> _Motion:
    h = _hold(c.u) * c.amp
    o = _osc(c, 3.0)
    return _Motion({(9, 1): 30 * h, (9, 2): (125 + 15 * o) * h, (10, 1): (55 + 30 * o) * h})


def _kick(c: _Ctx) -> _Motion:
    b = _bump((c.u - 0.3) / 0.45) * c.amp
    w = _bump(c.u)
    return _Motion({(17, 1): 80 * b, (18, 1): -55 * w * (1 - 0.8 * b / c.amp), (5, 1): 15 * b})


def _squat(c: _Ctx) -> _Motion:
    h = _hold(c.u, 0.35) * c.amp
    d = {(13, 1): 95 * h, (17, 1): 95 * h, (14, 1): -120 * h, (18, 1): -120 * h, (2, 1): -20 * h}
    _arms(d, 70 * h, 10 * h)
    return _Motion(d)


def _raise_hands(c: _Ctx) -> _Motion:
    h = _hold(c.u) * c.amp
    d: dict = {}
    _arms(d, 165 * h, 10 * h)
    return _Motion(d)


def _bow(c: _Ctx) -> _Motion:
    h = _hold(c.u, 0.3) * c.amp
    return _Motion({(2, 1): -45 * h, (21, 1): -30 * h, (3, 1): -15 * h})


def _clap(c: _Ctx) -> _Motion:
    h = _hold(c.u) * c.amp
    d: dict = {}
    _arms(d, 75 * h, 35 * h, inward=(-4 + 16 * _osc(c, 4.0)) * h)
    return _Motion(d)


def _punch(c: _Ctx) -> _Motion:
    h = _hold(c.u) * c.amp
    e = 0.5 - 0.5 * np.cos(2 * np.pi * 2 * c.cyc * c.u)
    return _Motion({(9, 1): 85 * h, (10, 1): 110 * h * (1 - e) + 5, (21, 0): 15 * e * h})


def _jump(c: _Ctx) -> _Motion:
    crouch = (_bump(c.u / 0.4) + 0.7 * _bump((c.u - 0.7) / 0.3)) * c.amp
    air = _bump((c.u - 0.35) / 0.35) * c.amp
    d = {(13, 1): 35 * crouch, (17, 1): 35 * crouch, (14, 1): -60 * crouch, (18, 1): -60 * crouch}
    _arms(d, 120 * air - 20 * crouch, 10 * air)
    return _Motion(d, lift=0.3 * air)


def _touch_head(c: _Ctx) -> _Motion:
    h = _hold(c.u) * c.amp
    d: dict = {}
    _arms(d, 50 * h, 140 * h, abd=60 * h)
    return _Motion(d)


def _sit_down(c: _Ctx) -> _Motion:
    r = _smooth(c.u / 0.6) * c.amp
    d = {(13, 1): 90 * r, (17, 1): 90 * r, (14, 1): -90 * r, (18, 1): -90 * r, (2, 1): -10 * r}
    root = np.zeros(c.u.shape + (3,), np.float32)
    root[..., 2] = 0.25 * r
    return _Motion(d, root=root)


def _throw(c: _Ctx) -> _Motion:
    p1 = _bump(c.u / 0.55) * c.amp
    p2 = _bump((c.u - 0.5) / 0.35) * c.amp
    return _Motion(
        {
            (9, 1): 160 * p1 + 80 * p2,
            (10, 1): 100 * p1 + 10 * p2,
            (21, 0): 20 * p2 - 10 * p1,
            (13, 1): 20 * p2,
        }
    )


def _phone_call(c: _Ctx) -> _Motion:
    h = _hold(c.u) * c.amp
    return _Motion({(9, 1): 35 * h, (9, 2): 25 * h, (10, 1): 145 * h, (3, 2): 10 * h})


def _pick_up(c: _Ctx) -> _Motion:
    b = _bump(c.u) * c.amp
    d = {(2, 1): -50 * b, (21, 1): -25 * b, (14, 1): -30 * b, (18, 1): -30 * b}
    d.update({(13, 1): 30 * b, (17, 1): 30 * b, (9, 1): 60 * b, (10, 1): 10 * b})
    return _Motion(d)


def _walk(c: _Ctx) -> _Motion:
    w = _hold(c.u, 0.1)
    d: dict = {}
    _gait(c, d, w)
    root = np.zeros(c.u.shape + (3,), np.float32)
    root[..., 2] = -1.6 * c.u * c.amp  # towards the camera
    return _Motion(d, root=root)


def _handshake(c: _Ctx) -> _Motion:
    h = _hold(c.u) * c.amp
    o = 10 * _osc(c, 3.0) * h

    def arm() -> dict:
        return {(9, 1): 55 * h, (9, 0): 15 * h, (10, 1): 30 * h + o}

    return _Motion(arm(), b=arm(), dist=np.full_like(c.u, 0.85))


def _push(c: _Ctx) -> _Motion:
    h = _hold(c.u) * c.amp
    f = _smooth((c.u - 0.4) / 0.2)
    a: dict = {}
    _arms(a, 85 * h, 70 * (1 - f) * h)
    b = {(2, 1): 15 * f * _bump((c.u - 0.4) / 0.6), (5, 1): 20 * f * h, (9, 1): 20 * f * h}
    return _Motion(a, b=b, dist=0.75 + 0.45 * f * c.amp)


def _hug(c: _Ctx) -> _Motion:
    r = _smooth(c.u / 0.5) * _smooth((1 - c.u) / 0.15) * c.amp

    def arm() -> dict:
        d: dict = {}
        _arms(d, 85 * r, 60 * r, inward=30 * r)
        return d

    return _Motion(arm(), b=arm(), dist=1.2 - 0.85 * r)


def _walk_towards(c: _Ctx) -> _Motion:
    w = _hold(c.u, 0.1)
    a: dict = {}
    b: dict = {}
    _gait(c, a, w)
    _gait(c, b, w)
    return _Motion(a, b=b, dist=3.2 - 2.2 * c.u * c.amp)


def _walk_apart(c: _Ctx) -> _Motion:
    m = _walk_towards(c)
    m.dist = 1.0 + 2.2 * c.u * c.amp
    m.face_away = True
    return m


def _punch_other(c: _Ctx) -> _Motion:
    m = _punch(c)
    e = 0.5 - 0.5 * np.cos(2 * np.pi * 2 * c.cyc * c.u)
    h = _hold(c.u) * c.amp
    m.b = {(2, 1): 20 * e * h, (3, 1): 15 * e * h, (5, 1): 30 * h, (9, 1): 30 * h}
    m.dist = 0.9 + 0.1 * e * h
    return m


#: (name, two-person?, motion) in the order classes are taken: ``classes=k``
#: uses the first k, which mixes one- and two-person actions.
ACTIONS: tuple[tuple[str, bool, Callable[[_Ctx], _Motion]], ...] = (
    ("hand waving", False, _wave),
    ("kicking something", False, _kick),
    ("handshaking", True, _handshake),
    ("squat down", False, _squat),
    ("hands up (both hands)", False, _raise_hands),
    ("pushing other person", True, _push),
    ("bow", False, _bow),
    ("clapping", False, _clap),
    ("hugging other person", True, _hug),
    ("punch (in the air)", False, _punch),
    ("jump up", False, _jump),
    ("walking towards each other", True, _walk_towards),
    ("touch head", False, _touch_head),
    ("sitting down", False, _sit_down),
    ("throw", False, _throw),
    ("walking apart from each other", True, _walk_apart),
    ("make a phone call", False, _phone_call),
    ("pickup", False, _pick_up),
    ("punching other person", True, _punch_other),
    ("walking", False, _walk),
)


MAX_CLASSES = 120
# Degrees of freedom procedural actions move: (joint, axis, lowest, highest) in degrees.
_PROC_DOFS = (
    (5, 1, 20, 160), (9, 1, 20, 160), (5, 2, 20, 110), (9, 2, 20, 110),
    (5, 0, -40, 40), (9, 0, -40, 40), (6, 1, 30, 140), (10, 1, 30, 140),
    (13, 1, 20, 90), (17, 1, 20, 90), (14, 1, -110, -20), (18, 1, -110, -20),
    (2, 1, -50, 15), (21, 0, -35, 35), (3, 1, -30, 20), (3, 2, -25, 25),
)  # fmt: skip


def _procedural(k: int) -> Callable[[_Ctx], _Motion]:
    """Action number ``k`` (0-based, after the named ones): 2-4 random joint motions, fixed per ``k``."""
    r = np.random.default_rng([k, 271828])
    picks = r.choice(len(_PROC_DOFS), size=int(r.integers(2, 5)), replace=False)
    parts = []
    for i in picks:
        j, axis, lo, hi = _PROC_DOFS[i]
        parts.append(
            (j, axis, float(r.uniform(lo, hi)), int(r.integers(0, 4)), float(r.uniform(1, 4)))
        )

    def motion(c: _Ctx) -> _Motion:
        out: dict = {}
        for j, axis, size, shape, cycles in parts:
            if shape == 0:
                prof = _hold(c.u)
            elif shape == 1:
                prof = _bump(c.u)
            elif shape == 2:
                prof = _hold(c.u) * (0.5 + 0.5 * _osc(c, cycles))
            else:
                prof = _smooth(c.u / 0.6)
            out[(j, axis)] = out.get((j, axis), 0.0) + size * prof * c.amp
        return _Motion(out)

    return motion


def action_pool(classes: int, persons: int = 2) -> list[tuple[str, bool, Callable]]:
    """The ``(name, two-person?, motion)`` of each of ``classes`` classes.

    The first come from :data:`ACTIONS` (only one-person ones when ``persons=1``);
    beyond them, procedural one-person actions (see :func:`_procedural`) fill up
    to :data:`MAX_CLASSES`, so NTU-sized label sets (60, 120) are possible.
    """
    named = [a for a in ACTIONS if persons == 2 or not a[1]]
    if not 2 <= classes <= MAX_CLASSES:
        raise RankzcError(f"synthetic: classes={classes} out of range; 2..{MAX_CLASSES}")
    extra = [
        (f"procedural action {k + 1}", False, _procedural(k)) for k in range(len(named), classes)
    ]
    return (named + extra)[:classes]


# ------------------------------------------------------------- the relations task
#: Tasks of :func:`generate`: ``actions`` (named and procedural actions) and
#: ``relations`` (classes defined only by which far-apart limbs move and in which
#: order; see :func:`_relations`).
TASKS = ("actions", "relations")

# The relations task's sub-movements: name and angles (1-based joint, axis) ->
# degrees; "side" moves pick the left or the right limb per sample.
_SUBMOVES = (
    ("a hand raised forward", {(9, 1): 120.0, (10, 1): 20.0}, True),
    ("a knee lifted", {(17, 1): 75.0, (18, 1): -95.0}, True),
    ("a bow", {(2, 1): -40.0, (21, 1): -25.0, (3, 1): -20.0}, False),
    ("both arms spread", {(9, 2): _SIDE[9] * 80.0, (5, 2): _SIDE[5] * 80.0}, False),
)
# the left-side joint of each right-side joint used above
_MIRROR = {9: 5, 10: 6, 17: 13, 18: 14}
# Ordered pairs (first, second), each pair followed by its reverse.
_PAIRS = tuple(p for i in range(4) for j in range(i + 1, 4) for p in ((i, j), (j, i)))
RELATION_CLASSES = len(_PAIRS)


def relation_classes(classes: int = RELATION_CLASSES) -> tuple[str, ...]:
    """Names of the ``relations`` task's classes ``0 .. classes-1`` (at most 12).

    Class ``2m`` is "A, then B" and class ``2m + 1`` "B, then A" for the ``m``-th
    unordered pair of the four sub-movements, so any even number of classes holds
    both orders of its pairs.
    """
    if not 2 <= classes <= RELATION_CLASSES:
        raise RankzcError(
            f"synthetic: task=relations has 2..{RELATION_CLASSES} classes, got {classes}"
        )
    return tuple(f"{_SUBMOVES[i][0]}, then {_SUBMOVES[j][0]}" for i, j in _PAIRS[:classes])


def _relations(
    rng: np.random.Generator, labels: np.ndarray, t: np.ndarray, amp: np.ndarray, d: float
) -> dict:
    r"""Joint angles (degrees, keyed like :class:`_Motion`) of the ``relations`` task.

    A class is an ordered pair of two of four sub-movements (a hand raised
    forward, a knee lifted, a bow, both arms spread; the hand and the knee on a
    random side per sample): the first starts anywhere in the clip's first
    half, the second ``0.2 .. 0.35`` of the clip later; each lasts 0.3 of the
    clip (a :func:`_bump`). *Which* sub-movements happen is a first-order cue
    that pooled features read; which came *first* is not: the network has to
    compare the timing of two body parts (a hand and a knee are up to 9 bones
    apart) before it pools over time and joints, so it depends on the temporal
    receptive field and on the operators that join far joints.

    Nuisances on top of :func:`generate`'s view, sway, noise and drop-outs: the
    sides, the sizes (``x U(0.7, 1.3)`` on the sample's amplitude) and the
    timing of the two sub-movements.
    """
    n = len(labels)
    pairs = np.array(_PAIRS)[labels]  # (n, 2)
    side = rng.integers(0, 2, (n, 1)).astype(bool)  # True: the left limb
    start = rng.uniform(0.0, 0.5, (n, 1))
    gap = rng.uniform(0.2, 0.35, (n, 1))
    scale = amp * rng.uniform(0.7, 1.3, (n, 2))
    first = _bump((t - start) / 0.3) * scale[:, :1]
    second = _bump((t - start - gap) / 0.3) * scale[:, 1:]
    out: dict = {}
    for k, (_, angles, sided) in enumerate(_SUBMOVES):
        prof = np.where(pairs[:, :1] == k, first, 0.0) + np.where(pairs[:, 1:] == k, second, 0.0)
        for (joint, axis), deg in angles.items():
            if sided:
                left = (_MIRROR[joint], axis)
                out[left] = out.get(left, 0.0) + np.where(side, deg * prof, 0.0)
                out[(joint, axis)] = out.get((joint, axis), 0.0) + np.where(side, 0.0, deg * prof)
            else:
                out[(joint, axis)] = out.get((joint, axis), 0.0) + deg * prof
    return out


# ----------------------------------------------------------------------- geometry
def _rot_y(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(a.shape + (3, 3))


def _rot_x(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([o, z, z, z, c, -s, z, s, c], -1).reshape(a.shape + (3, 3))


# Rotations inside the kinematics are kept as 9 arrays (row-major entries), each
# (n, T): elementwise arithmetic on large arrays is far faster in numpy than
# batched 3x3 products.
_Rot = list


def _euler(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> _Rot:
    """Entries of ``R_y(yaw) R_x(pitch) R_z(roll)`` (radians), closed form."""
    ca, sa = np.cos(yaw), np.sin(yaw)
    cb, sb = np.cos(pitch), np.sin(pitch)
    cc, sc = np.cos(roll), np.sin(roll)
    sasb, casb = sa * sb, ca * sb
    return [
        ca * cc + sasb * sc,
        sasb * cc - ca * sc,
        sa * cb,
        cb * sc,
        cb * cc,
        -sb,
        casb * sc - sa * cc,
        sa * sc + casb * cc,
        ca * cb,
    ]


def _matmul(a: _Rot, b: _Rot) -> _Rot:
    return [
        a[3 * i] * b[k] + a[3 * i + 1] * b[3 + k] + a[3 * i + 2] * b[6 + k]
        for i in range(3)
        for k in range(3)
    ]


def forward_kinematics(angles: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Joint positions ``(25, 3, n, T)`` from DOF angles ``(13, 3, n, T)`` (radians).

    Angles are (yaw, pitch, roll) of the joints in ``_DOF_1B``; ``offsets``
    ``(n, 25, 3)`` are each sample's bone vectors in its rest pose; the root
    (base of spine) stays at the origin.
    """
    _, _, n, t = angles.shape
    rot: dict[int, _Rot | None] = {}
    pos = np.zeros((NUM_JOINTS, 3, n, t), np.float32)
    for j in _ORDER:
        p = int(PARENTS[j])
        r = None if p < 0 else rot[p]
        if p >= 0:
            o = offsets[:, j, :, None]  # (n, 3, 1)
            if r is None:
                pos[j] = pos[p] + o.transpose(1, 0, 2)
            else:
                for i in range(3):
                    pos[j, i] = pos[p, i] + r[3 * i] * o[:, 0] + r[3 * i + 1] * o[:, 1]
                    pos[j, i] += r[3 * i + 2] * o[:, 2]
        col = _DOF_COL.get(j + 1)
        if col is not None:
            local = _euler(*angles[col])
            r = local if r is None else _matmul(r, local)
        rot[j] = r
    return pos


# ---------------------------------------------------------------------- generator
BLOCK = 1024  # samples per independently seeded block (fixed: results do not depend on threads)


def generate(
    n: int = 3000,
    classes: int = 10,
    frames: int = 32,
    seed: int = 0,
    difficulty: float = 0.5,
    persons: int = 2,
    threads: int | None = None,
    task: str = "actions",
) -> SkeletonSet:
    """Generate ``n`` synthetic actions; same arguments give identical arrays.

    Returns a :class:`SkeletonSet` with ``data`` ``(n, 3, frames, 25, persons)``
    float32, ``labels`` in ``[0, classes)``, per-sample ``subjects`` (1..40),
    ``cameras`` (1..3) and NTU-style ``names``. Samples are made in blocks of
    :data:`BLOCK`, block ``b`` from the random stream ``(seed, b)``, on up to
    ``threads`` threads (default: the CPU count, at most 4); the result does not
    depend on ``threads``.
    """
    if n < 1 or frames < 2:
        raise RankzcError(f"synthetic: need n >= 1 and frames >= 2, got n={n}, frames={frames}")
    if persons not in (1, 2):
        raise RankzcError(f"synthetic: persons must be 1 or 2, got {persons}")
    if not 0.0 <= difficulty <= 1.0:
        raise RankzcError(f"synthetic: difficulty must be in [0, 1], got {difficulty}")
    if task not in TASKS:
        raise RankzcError(f"synthetic: task must be one of {', '.join(TASKS)}, got {task!r}")
    if task == "relations":
        names = relation_classes(classes)
        pool = [(name, False, None) for name in names]
    else:
        pool = action_pool(classes, persons)
    # Subjects: overall scale, limb proportions and motion style, fixed per id.
    srng = np.random.default_rng([seed, 7919])
    subject_table = (
        np.clip(srng.normal(1.0, 0.06, N_SUBJECTS + 1), 0.82, 1.18),
        np.clip(srng.normal(1.0, 0.04, (N_SUBJECTS + 1, 2)), 0.9, 1.1),
        np.clip(srng.normal(1.0, 0.08, N_SUBJECTS + 1), 0.8, 1.2),
    )
    x = np.empty((n, 3, frames, NUM_JOINTS, persons), np.float32)
    meta = np.empty((n, 4), np.int64)  # label, subject, camera, replication
    blocks = [(b, slice(lo, min(n, lo + BLOCK))) for b, lo in enumerate(range(0, n, BLOCK))]

    def run(block: tuple[int, slice]) -> None:
        b, sl = block
        rng = np.random.default_rng([seed, b])
        meta[sl] = _block(x[sl], rng, pool, float(difficulty), subject_table, task)

    workers = threads or min(4, os.cpu_count() or 1)
    if workers > 1 and len(blocks) > 1:
        with ThreadPoolExecutor(workers) as ex:
            list(ex.map(run, blocks))
    else:
        for block in blocks:
            run(block)
    labels, subjects, cameras, replication = meta.T
    names = [
        f"S001C{c:03d}P{p:03d}R{r:03d}A{a + 1:03d}"
        for c, p, r, a in zip(cameras, subjects, replication, labels, strict=True)
    ]
    report = LoadReport(source="synthetic", format="synthetic", n_samples=n)
    return SkeletonSet(
        data=x,
        labels=labels.copy(),
        num_classes=classes,
        names=names,
        subjects=subjects.copy(),
        cameras=cameras.copy(),
        class_names=tuple(a[0] for a in pool),
        report=report,
    )


def _block(
    x: np.ndarray,
    rng: np.random.Generator,
    pool: list,
    d: float,
    subject_table: tuple,
    task: str = "actions",
) -> np.ndarray:
    """Fill ``x`` ``(n, 3, T, 25, M)`` with actions; return (label, subject, camera, rep) rows."""
    n, _, frames, _, persons = x.shape
    classes = len(pool)
    f32 = np.float32
    sub_scale, sub_limbs, sub_style = subject_table

    labels = rng.integers(0, classes, n)
    w_sub = np.array([2.0 if s in _TRAIN_SUBJECTS else 1.0 for s in range(1, N_SUBJECTS + 1)])
    subjects = rng.choice(np.arange(1, N_SUBJECTS + 1), size=n, p=w_sub / w_sub.sum())
    partners = rng.integers(1, N_SUBJECTS + 1, n)
    cameras = rng.integers(1, 4, n)
    replication = rng.integers(1, 3, n)

    def offsets(ids: np.ndarray) -> np.ndarray:
        o = np.broadcast_to(TEMPLATE, (len(ids), NUM_JOINTS, 3)).copy()
        o[:, _ARMS] *= sub_limbs[ids, 0, None, None]
        o[:, _LEGS] *= sub_limbs[ids, 1, None, None]
        return (o * sub_scale[ids, None, None]).astype(f32)

    # Timing and amplitude.
    t = np.linspace(0.0, 1.0, frames, dtype=f32)[None]
    start = rng.uniform(0.0, 0.1 + 0.4 * d, (n, 1))
    dur = rng.uniform(0.9 - 0.5 * d, 1.0, (n, 1))
    u = np.clip((t - start) / dur, 0.0, 1.0).astype(f32)
    spread = 0.2 + 0.6 * d
    amp = (rng.uniform(1 - spread, 1 + spread, (n, 1)) * sub_style[subjects, None]).astype(f32)
    cyc = rng.uniform(1 - 0.5 * d, 1 + 0.6 * d, (n, 1)).astype(f32)
    phi = rng.uniform(0, 2 * np.pi, (n, 1)).astype(f32)

    dof = len(_DOF_1B)
    ang_a = np.zeros((dof, 3, n, frames), f32)
    ang_b = np.zeros((dof, 3, n, frames), f32)
    root_a = np.zeros((n, frames, 3), f32)
    lift_a = np.zeros((n, frames), f32)
    dist = np.zeros((n, frames), f32)
    face_away = np.zeros(n, bool)
    pair = np.array([a[1] for a in pool])[labels]

    def add(ang: np.ndarray, motion: dict, idx: np.ndarray, w) -> None:
        for (j, axis), val in motion.items():
            ang[_DOF_COL[j], axis, idx] += np.radians(val, dtype=f32) * w

    # Main motion per class, then a blended distractor class ("class overlap").
    if task == "relations":
        add(ang_a, _relations(rng, labels, t, amp, d), np.arange(n), 1.0)
    distract = rng.integers(0, classes, n)
    w_dis = rng.uniform(0.0, 1.5 * d, n).astype(f32)
    for k in range(classes if task == "actions" else 0):
        fn = pool[k][2]
        for lab, weight in ((labels, None), (distract, w_dis)):
            idx = np.flatnonzero(lab == k)
            if idx.size == 0:
                continue
            m = fn(_Ctx(u[idx], amp[idx], cyc[idx], phi[idx]))
            if weight is not None:
                add(ang_a, m.a, idx, weight[idx, None])
                continue
            add(ang_a, m.a, idx, 1.0)
            if m.b is not None:
                add(ang_b, m.b, idx, 1.0)
            if m.root is not None:
                root_a[idx] += m.root
            if m.lift is not None:
                lift_a[idx] += m.lift
            if m.dist is not None:
                dist[idx] = m.dist
            face_away[idx] = m.face_away

    # Idle sway of every degree of freedom (person B reuses A's draws, reversed).
    sway = (np.radians(3 + 30 * d) * rng.uniform(0, 1, (dof, 3, n, 1))).astype(f32)
    freq = rng.uniform(0.3, 1.5, (dof, 3, n, 1)).astype(f32)
    ph = rng.uniform(0, 2 * np.pi, (dof, 3, n, 1)).astype(f32)
    wave = sway * np.sin(2 * np.pi * freq * t + ph)
    ang_a += wave
    if persons == 2:
        ang_b += wave[::-1]

    # Camera: view yaw (+ jitter), tilt, position of the scene.
    cam_yaw = np.array([_CAMERA_YAW[c] for c in (1, 2, 3)])[cameras - 1]
    yaw = np.radians(cam_yaw + rng.uniform(-1, 1, n) * (10 + 150 * d)).astype(f32)
    tilt = np.radians(rng.normal(0.0, 2 + 15 * d, n)).astype(f32)
    view = _rot_x(tilt) @ _rot_y(yaw)  # (n, 3, 3)
    cam_off = np.stack(
        [rng.uniform(-0.5, 0.5, n), -rng.uniform(0.7, 1.1, n), rng.uniform(2.6, 3.8, n)], -1
    ).astype(f32)

    def place(m: int, ang, ids, root, lift, body_yaw, shift) -> None:
        pos = forward_kinematics(ang, offsets(ids))  # (25, 3, n, T)
        floor = pos[_FEET, 1].min(0)  # (n, T): lowest foot joint on the floor
        pos[:, 1] -= floor - lift
        pos += root.transpose(2, 0, 1)[None]
        rot = (view @ _rot_y(body_yaw)).astype(f32)  # (n, 3, 3)
        move = np.einsum("nij,ntj->int", view, shift) + cam_off.T[:, :, None]  # (3, n, T)
        for i in range(3):
            out = rot[None, :, i, 0, None] * pos[:, 0]
            out += rot[None, :, i, 1, None] * pos[:, 1]
            out += rot[None, :, i, 2, None] * pos[:, 2]
            out += move[i][None]
            x[:, i, :, :, m] = out.transpose(1, 2, 0)

    zero = np.zeros((n, 1), f32)
    half = np.zeros((n, frames, 3), f32)
    half[..., 0] = dist / 2
    yaw_a = np.where(pair, np.where(face_away, np.pi / 2, -np.pi / 2), 0.0).astype(f32)
    place(0, ang_a, subjects, root_a, lift_a, yaw_a, -half)
    if persons == 2:
        place(1, ang_b, partners, np.zeros_like(root_a), zero, -yaw_a, half)
        x[~pair, ..., 1] = 0.0

    # Sensor noise on tracked bodies, then tracking drop-outs.
    present = np.ones((n, persons), f32)
    if persons == 2:
        present[:, 1] = pair
    noise = rng.standard_normal(x.shape, dtype=f32)
    noise *= f32(0.005 + 0.08 * d)
    noise *= present[:, None, None, None]
    x += noise
    drop = rng.uniform(0, 1, n) < 0.1 + 0.6 * d
    kind = rng.integers(0, 2, n)  # 0: frames lost (zeros), 1: joints jitter
    c_start = rng.integers(0, frames, n)[:, None]
    c_len = rng.integers(2, max(3, int(0.2 * frames) + 1), n)[:, None]
    frame = np.arange(frames)[None]
    chunk = (frame >= c_start) & (frame < c_start + c_len) & drop[:, None]
    ni, ti = np.nonzero(chunk & (kind[:, None] == 0))
    x[ni, :, ti] = 0.0
    jit_joints = np.zeros((n, NUM_JOINTS), bool)
    pick = rng.integers(0, len(_DISTAL), (n, 3))
    jit_joints[np.arange(n)[:, None], _DISTAL[pick]] = True
    ni, ti, vi = np.nonzero((chunk & (kind[:, None] == 1))[:, :, None] & jit_joints[:, None, :])
    noise = rng.standard_normal((ni.size, 3, persons), dtype=f32) * f32(0.08)
    x[ni, :, ti, vi] += noise * present[ni][:, None, :]

    return np.stack([labels, subjects, cameras, replication], 1)
