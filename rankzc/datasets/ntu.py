"""Loaders for NTU RGB+D skeletons in the formats people have.

Every loader returns one *part* (``"train"`` or ``"val"``) of a data set as a
:class:`~rankzc.datasets.skeleton.SkeletonSet` in the canonical layout
``(N, 3, T, 25, 2)`` (see :mod:`rankzc.datasets.skeleton`). Coordinates are
left as stored (no centring or view alignment).

Formats:

* **raw** ``.skeleton`` text files (a directory of them), the NTU release:
  frame count; per frame a body count; per body 10 info fields (``bodyID``
  first), a joint count (25) and 25 lines of 12 values of which the first three
  are x, y, z (metres). Bodies are followed by ``bodyID``; the two most active
  are kept, activity being the sum over x, y, z of the standard deviation of
  the body's joints over its tracked frames (as 2s-AGCN's preprocessing does).
  Frames are zero-padded or truncated to ``max_frame`` (300); samples named in
  a missing-skeleton list are skipped. Parts come from the file names
  ``SsssCcccPpppRrrrAaaa`` (setup, camera, performer, replication, action).
* **npy** from ST-GCN / 2s-AGCN: ``{part}_data[_joint].npy`` ``(N, C, T, V, M)``
  opened with ``mmap_mode='r'`` and ``{part}_label.pkl`` holding
  ``(sample_names, labels)``.
* **npz** from CTR-GCN: ``x_train`` ``(N, T, 150)`` (2 bodies x 25 joints x xyz),
  one-hot ``y_train``, and ``x_test``/``y_test``.
* **pkl** from PYSKL: ``{"split": {name: [frame_dir, ...]}, "annotations": [{
  "frame_dir", "label", "keypoint": (M, T, V, C), "total_frames"}, ...]}``.

Cross-subject (``xsub``) and cross-view (``xview``) use the NTU-60 protocol:
performers :data:`NTU60_TRAIN_SUBJECTS` and cameras 2, 3 train. ``xsub120``
and ``xset120`` are the NTU-120 protocols (training performers
:data:`NTU120_TRAIN_SUBJECTS`; even setup numbers train).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rankzc.datasets.safe_pickle import load_data_pickle
from rankzc.datasets.skeleton import (
    MAX_BODIES,
    NUM_JOINTS,
    LoadReport,
    SkeletonSet,
    check_canonical,
)
from rankzc.errors import RankzcError

NTU60_TRAIN_SUBJECTS: tuple[int, ...] = (
    1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38,
)  # fmt: skip
NTU120_TRAIN_SUBJECTS: tuple[int, ...] = NTU60_TRAIN_SUBJECTS + (
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83,
    84, 85, 86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103,
)  # fmt: skip
NTU_TRAIN_CAMERAS: tuple[int, ...] = (2, 3)
SPLITS: tuple[str, ...] = ("xsub", "xview", "xsub120", "xset120")
PARTS: tuple[str, ...] = ("train", "val")
MAX_FRAME = 300
_NAME_RE = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")


@dataclass(frozen=True)
class NTUName:
    """The fields of an NTU sample name ``SsssCcccPpppRrrrAaaa``."""

    setup: int
    camera: int
    subject: int
    replication: int
    action: int

    @classmethod
    def parse(cls, name: str) -> NTUName | None:
        """Fields of ``name`` (a file name or path is fine), or ``None``."""
        m = _NAME_RE.search(Path(str(name)).name)
        return None if m is None else cls(*(int(g) for g in m.groups()))


def is_training(names: list[str], split: str, source: str = "") -> np.ndarray:
    """Boolean mask: which samples belong to the training part of ``split``."""
    if split not in SPLITS:
        raise RankzcError(f"{source}: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    out = np.zeros(len(names), bool)
    for i, name in enumerate(names):
        f = NTUName.parse(name)
        if f is None:
            raise RankzcError(
                f"{source}: sample name {name!r} is not SsssCcccPpppRrrrAaaa; cannot split by {split}"
            )
        if split == "xsub":
            out[i] = f.subject in NTU60_TRAIN_SUBJECTS
        elif split == "xview":
            out[i] = f.camera in NTU_TRAIN_CAMERAS
        elif split == "xsub120":
            out[i] = f.subject in NTU120_TRAIN_SUBJECTS
        else:
            out[i] = f.setup % 2 == 0
    return out


def _check_part(part: str) -> None:
    if part not in PARTS:
        raise RankzcError(f"part must be 'train' or 'val', got {part!r}")


# ------------------------------------------------------------------------ raw text
def read_skeleton(path: str | Path) -> tuple[dict[str, tuple[list[int], np.ndarray]], int]:
    """Parse one ``.skeleton`` file.

    Returns ``({bodyID: (frame indices, joints (F_b, 25, 3))}, frame count)``.
    A truncated or malformed file raises :class:`RankzcError` naming the file
    and line.
    """
    path = Path(path)
    lines = path.read_text().split("\n")
    pos = 0

    def take(what: str) -> str:
        nonlocal pos
        while pos < len(lines) and not lines[pos].strip():
            pos += 1  # tolerate blank lines
        if pos >= len(lines):
            raise RankzcError(f"{path}: truncated at line {pos + 1}: expected {what}")
        pos += 1
        return lines[pos - 1]

    def integer(what: str) -> int:
        text = take(what)
        try:
            return int(text.split()[0])
        except (ValueError, IndexError):
            raise RankzcError(
                f"{path}: line {pos}: expected {what}, got {text.strip()!r}"
            ) from None

    n_frames = integer("the frame count")
    bodies: dict[str, tuple[list[int], list[np.ndarray]]] = {}
    for f in range(n_frames):
        for _ in range(integer(f"the body count of frame {f + 1}")):
            info = take("a body info line").split()
            if len(info) != 10:
                raise RankzcError(f"{path}: line {pos}: body info has {len(info)} fields, not 10")
            n_joints = integer("the joint count")
            if n_joints != NUM_JOINTS:
                raise RankzcError(f"{path}: line {pos}: {n_joints} joints, expected {NUM_JOINTS}")
            rows = [take(f"joint {k + 1} of 25") for k in range(NUM_JOINTS)]
            try:
                joints = np.array(" ".join(rows).split(), dtype=np.float32).reshape(NUM_JOINTS, 12)
            except ValueError:
                raise RankzcError(
                    f"{path}: lines {pos - NUM_JOINTS + 1}-{pos}: joints must have 12 numbers each"
                ) from None
            frames, arrays = bodies.setdefault(info[0], ([], []))
            frames.append(f)
            arrays.append(joints[:, :3])
    return {k: (fr, np.stack(a)) for k, (fr, a) in bodies.items()}, n_frames


def _activity(joints: np.ndarray) -> float:
    """Sum over x, y, z of the std of a body's joints over its non-zero frames."""
    s = joints[np.abs(joints).sum((1, 2)) != 0]
    return 0.0 if len(s) == 0 else float(sum(s[..., c].std() for c in range(3)))


def skeleton_to_array(path: str | Path, max_frame: int = MAX_FRAME) -> tuple[np.ndarray, dict]:
    """One ``.skeleton`` file as ``(3, max_frame, 25, 2)`` plus facts about it."""
    bodies, n_frames = read_skeleton(path)
    ranked = sorted(bodies.values(), key=lambda b: _activity(b[1]), reverse=True)
    out = np.zeros((3, max_frame, NUM_JOINTS, MAX_BODIES), np.float32)
    for m, (frames, joints) in enumerate(ranked[:MAX_BODIES]):
        keep = np.asarray(frames) < max_frame
        out[..., m][:, np.asarray(frames)[keep]] = joints[keep].transpose(2, 0, 1)
    facts = {"frames": n_frames, "bodies": len(bodies)}
    return out, facts


def read_missing_list(path: str | Path) -> set[str]:
    """Names in a missing-skeleton list (one per line, extension optional)."""
    path = Path(path)
    if not path.is_file():
        raise RankzcError(f"{path}: missing-skeleton list not found")
    return {Path(s.strip()).name.split(".")[0] for s in path.read_text().split() if s.strip()}


def load_skeleton_dir(
    path: str | Path,
    part: str = "train",
    split: str = "xsub",
    missing: str | Path | None = None,
    max_frame: int = MAX_FRAME,
) -> SkeletonSet:
    """The ``part`` of ``split`` from a directory of raw ``.skeleton`` files.

    ``missing`` is a missing-skeleton list; by default a ``*missing*.txt`` file
    in the directory is used when there is exactly one.
    """
    _check_part(part)
    path = Path(path)
    files = sorted(path.glob("*.skeleton"))
    if not files:
        raise RankzcError(f"{path}: no .skeleton files")
    if missing is None:
        found = sorted(path.glob("*missing*.txt"))
        missing = found[0] if len(found) == 1 else None
    skip = read_missing_list(missing) if missing is not None else set()
    names = [f.stem for f in files]
    actions = [NTUName.parse(n) for n in names]
    bad = [n for n, a in zip(names, actions, strict=True) if a is None]
    if bad:
        raise RankzcError(f"{path / bad[0]}.skeleton: name is not SsssCcccPpppRrrrAaaa")
    report = LoadReport(source=str(path), format="skeleton")
    listed = np.array([n in skip for n in names], bool)
    in_part = is_training(names, split, str(path)) == (part == "train")
    report.dropped_missing = int((listed & in_part).sum())
    arrays, keep = [], []
    for i in np.flatnonzero(in_part & ~listed):
        arr, facts = skeleton_to_array(files[i], max_frame)
        if facts["frames"] == 0 or facts["bodies"] == 0:
            report.dropped_empty += 1
            continue
        report.truncated += facts["frames"] > max_frame
        report.extra_bodies += facts["bodies"] > MAX_BODIES
        arrays.append(arr)
        keep.append(i)
    data = np.stack(arrays) if arrays else np.zeros((0, 3, max_frame, NUM_JOINTS, 2), np.float32)
    kept = [actions[i] for i in keep]
    n_actions = max(a.action for a in actions if a is not None)
    report.n_samples = len(keep)
    return SkeletonSet(
        data=data,
        labels=np.array([a.action - 1 for a in kept], np.int64),
        num_classes=60 if n_actions <= 60 else 120,
        names=[names[i] for i in keep],
        subjects=np.array([a.subject for a in kept], np.int64),
        cameras=np.array([a.camera for a in kept], np.int64),
        report=report,
    )


# ---------------------------------------------------------------------- npy + pkl
def _load_pickle(path: Path):
    # restricted: plain containers, numbers, strings and numpy arrays only (no code runs)
    return load_data_pickle(path)


def read_label_pkl(path: str | Path) -> tuple[list[str], np.ndarray]:
    """``(sample names, int64 labels)`` from an ST-GCN / 2s-AGCN label pickle."""
    path = Path(path)
    obj = _load_pickle(path)
    if not (isinstance(obj, (tuple, list)) and len(obj) == 2):
        raise RankzcError(f"{path}: expected a pickled pair (sample_names, labels)")
    names, labels = obj
    if not isinstance(names, (list, tuple, np.ndarray)) or not all(
        isinstance(n, (str, bytes, np.str_, np.bytes_)) for n in names
    ):
        raise RankzcError(f"{path}: sample names must be a list of strings")
    if not isinstance(labels, (list, tuple, np.ndarray)):
        raise RankzcError(f"{path}: labels must be a list of integers")
    if len(names) != len(labels):
        raise RankzcError(f"{path}: {len(names)} sample names but {len(labels)} labels")
    try:
        lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        raise RankzcError(f"{path}: labels must be integers") from None
    if len(lab) != len(names):
        raise RankzcError(f"{path}: labels must be one integer per sample name")
    names = [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]
    return names, lab


def label_path_for(data_path: str | Path) -> Path:
    """The label pickle that goes with an ST-GCN/2s-AGCN data file.

    ``train_data_joint.npy`` -> ``train_label.pkl``; ``val_data.npy`` -> ``val_label.pkl``.
    """
    p = Path(data_path)
    stem = re.sub(r"_(joint|bone|motion|joint_motion|bone_motion)$", "", p.stem)
    stem = stem.replace("data", "label") if "data" in stem else stem + "_label"
    return p.with_name(stem + ".pkl")


def _open_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise RankzcError(f"{path}: file not found")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as err:
        raise RankzcError(f"{path}: not a readable .npy array ({err})") from None


_PART_WORDS = {"train": ("train",), "val": ("val", "test")}


def _npy_part_file(path: Path, part: str, split: str | None) -> Path | None:
    """The data file of ``part`` for a directory or a part-named file; ``None`` if absent."""
    if path.is_dir():
        base = path / split if split and (path / split).is_dir() else path
        for cand in (base / f"{part}_data_joint.npy", base / f"{part}_data.npy"):
            if cand.is_file():
                return cand
        return None
    if any(w in path.name for w in _PART_WORDS[part]):
        return path
    src = next(w for w in ("train", "val", "test") if w in path.name)
    for w in _PART_WORDS[part]:
        cand = path.with_name(path.name.replace(src, w, 1))
        if cand.is_file():
            return cand
    return None


def load_npy(
    path: str | Path,
    part: str = "train",
    split: str | None = None,
    label: str | Path | None = None,
) -> SkeletonSet:
    """ST-GCN / 2s-AGCN arrays.

    ``path`` is a ``.npy`` file or a directory holding ``{part}_data_joint.npy``
    or ``{part}_data.npy`` (a ``split`` names a subdirectory such as ``xview``
    when there is one). A file whose name says ``train``/``val``/``test`` is one
    part and its sibling the other; any other file holds all samples and is
    split by their NTU names (``split``, default ``xsub``). ``label`` overrides
    the label pickle of the file given.
    """
    _check_part(part)
    path = Path(path)
    by_names = not path.is_dir() and not re.search(r"train|val|test", path.name)
    data_path = path if by_names else _npy_part_file(path, part, split)
    if data_path is None:
        where = path if path.is_dir() else path.parent
        raise RankzcError(f"{where}: no {part} data file for {path.name} ({part}_data*.npy)")
    data = _open_npy(data_path)
    check_canonical(data, str(data_path))
    lab_path = Path(label) if label is not None and data_path == path else label_path_for(data_path)
    names, labels = read_label_pkl(lab_path)
    if len(labels) != data.shape[0]:
        raise RankzcError(
            f"{lab_path}: {len(labels)} labels but {data_path.name} holds {data.shape[0]} samples"
        )
    # Number of classes from the label files of both parts (cheap: labels only).
    maxima = [int(labels.max())] if len(labels) else []
    if not by_names:
        other = _npy_part_file(path, "val" if part == "train" else "train", split)
        if other is not None and label_path_for(other).is_file():
            other_labels = read_label_pkl(label_path_for(other))[1]
            maxima += [int(other_labels.max())] if len(other_labels) else []
    num_classes = max(maxima) + 1 if maxima else 0
    report = LoadReport(source=str(data_path), format="npy")
    index = np.arange(len(labels))
    if by_names:
        train = is_training(names, split or "xsub", str(lab_path))
        index = np.flatnonzero(train == (part == "train"))
        report.notes.append(f"split by sample names ({split or 'xsub'})")
    return _subset(data, labels, names, index, num_classes, report)


def _subset(data, labels, names, index, num_classes, report) -> SkeletonSet:
    if len(index) == len(labels):
        sub = data  # keep the memory map whole
    else:
        sub = data[index] if len(index) else data[:0]
    parsed = [NTUName.parse(names[i]) for i in index] if names is not None else None
    report.n_samples = len(index)
    return SkeletonSet(
        data=sub,
        labels=np.asarray(labels)[index].astype(np.int64),
        num_classes=num_classes,
        names=[names[i] for i in index] if names is not None else None,
        subjects=None if parsed is None else np.array([p.subject if p else -1 for p in parsed]),
        cameras=None if parsed is None else np.array([p.camera if p else -1 for p in parsed]),
        report=report,
    )


# -------------------------------------------------------------------------- npz
def load_npz(path: str | Path, part: str = "train") -> SkeletonSet:
    """CTR-GCN ``.npz``: ``x_{train,test}`` ``(N, T, 150 | 75)``, one-hot ``y_*``."""
    _check_part(part)
    path = Path(path)
    if not path.is_file():
        raise RankzcError(f"{path}: file not found")
    key = "train" if part == "train" else "test"
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise RankzcError(f"{path}: not a readable .npz ({err})") from None
    with z:
        if f"x_{key}" not in z or f"y_{key}" not in z:
            raise RankzcError(f"{path}: needs arrays x_{key} and y_{key}, found {sorted(z.files)}")
        try:  # object arrays would need pickle: refused
            x, y = z[f"x_{key}"], z[f"y_{key}"]
        except (ValueError, OSError, EOFError) as err:
            raise RankzcError(f"{path}: not a readable .npz ({err})") from None
    if x.ndim != 3 or x.shape[2] not in (150, 75):
        raise RankzcError(
            f"{path}: x_{key} has shape {tuple(x.shape)}; expected (N, T, 150) = 2 bodies x 25 joints x xyz"
        )
    if y.ndim == 2:
        num_classes = int(y.shape[1])
        labels = y.argmax(1).astype(np.int64)
    elif y.ndim == 1:
        labels = y.astype(np.int64)
        num_classes = int(labels.max()) + 1 if len(labels) else 0
    else:
        raise RankzcError(f"{path}: y_{key} must be one-hot (N, classes) or (N,)")
    if len(labels) != len(x):
        raise RankzcError(f"{path}: x_{key} has {len(x)} samples but y_{key} has {len(labels)}")
    n, t, f = x.shape
    m = f // (NUM_JOINTS * 3)
    data = x.reshape(n, t, m, NUM_JOINTS, 3).transpose(0, 4, 1, 3, 2)
    if m == 1:
        data = np.concatenate([data, np.zeros_like(data)], axis=-1)
    report = LoadReport(source=str(path), format="npz", n_samples=n)
    return SkeletonSet(data=data, labels=labels, num_classes=num_classes, report=report)


# ------------------------------------------------------------------------- pyskl
#: labels of a PYSKL file must lie in 0..MAX_CLASSES-1 (NTU has 60 or 120 classes)
MAX_CLASSES = 10_000


def load_pyskl(
    path: str | Path, part: str = "train", split: str | None = None, max_frame: int = MAX_FRAME
) -> SkeletonSet:
    """PYSKL annotation pickle; the part is ``split[f"{split}_{part}"]`` (default ``xsub``)."""
    _check_part(part)
    path = Path(path)
    obj = _load_pickle(path)
    if not (isinstance(obj, dict) and "annotations" in obj and "split" in obj):
        raise RankzcError(f"{path}: expected a PYSKL dict with 'split' and 'annotations'")
    if not isinstance(obj["annotations"], list) or not all(
        isinstance(a, dict) for a in obj["annotations"]
    ):
        raise RankzcError(f"{path}: 'annotations' must be a list of dicts")
    if not isinstance(obj["split"], dict):
        raise RankzcError(f"{path}: 'split' must be a dict of sample-name lists")
    try:
        return _pyskl_set(path, obj, part, split, max_frame)
    except RankzcError:
        raise
    except (TypeError, ValueError, KeyError, OverflowError, AttributeError) as err:
        # a hostile or damaged file: wrong types where the format has names and numbers
        raise RankzcError(f"{path}: malformed PYSKL annotations ({type(err).__name__})") from None


def _pyskl_set(path: Path, obj: dict, part: str, split: str | None, max_frame: int):
    split = split or "xsub"
    keys = [f"{split}_{part}"] + ([f"{split}_test"] if part == "val" else [])
    key = next((k for k in keys if k in obj["split"]), None)
    if key is None:
        raise RankzcError(f"{path}: no split {keys[0]!r}; found {sorted(obj['split'])}")
    wanted = set(obj["split"][key])
    anns = [a for a in obj["annotations"] if a.get("frame_dir") in wanted]
    if len({id(a) for a in anns}) != len(anns):  # one dict referenced many times: forged
        raise RankzcError(f"{path}: an annotation appears more than once (shared references)")
    all_labels = [int(a["label"]) for a in obj["annotations"]]
    bad = next((v for v in all_labels if not 0 <= v < MAX_CLASSES), None)
    if bad is not None:
        raise RankzcError(f"{path}: label {bad} outside 0..{MAX_CLASSES - 1}")
    data = np.zeros((len(anns), 3, max_frame, NUM_JOINTS, MAX_BODIES), np.float32)
    report = LoadReport(source=str(path), format="pyskl", n_samples=len(anns))
    for i, a in enumerate(anns):
        kp = np.asarray(a["keypoint"], dtype=np.float32)
        where = f"{path}: annotation {a.get('frame_dir')!r}"
        if kp.ndim != 4 or kp.shape[2] != NUM_JOINTS or kp.shape[3] != 3:
            raise RankzcError(
                f"{where}: keypoint shape {tuple(kp.shape)}; expected (M, T, 25, 3) = bodies, frames, joints, xyz"
            )
        if "total_frames" in a and int(a["total_frames"]) != kp.shape[1]:
            raise RankzcError(f"{where}: total_frames {a['total_frames']} != {kp.shape[1]} frames")
        order = sorted(range(len(kp)), key=lambda m: _activity(np.nan_to_num(kp[m])), reverse=True)
        report.extra_bodies += len(kp) > MAX_BODIES
        report.truncated += kp.shape[1] > max_frame
        for m, b in enumerate(order[:MAX_BODIES]):
            seq = kp[b, :max_frame]
            data[i, :, : len(seq), :, m] = seq.transpose(2, 0, 1)
    names = [str(a["frame_dir"]) for a in anns]
    parsed = [NTUName.parse(n) for n in names]
    return SkeletonSet(
        data=data,
        labels=np.array([int(a["label"]) for a in anns], np.int64),
        num_classes=max(all_labels) + 1 if all_labels else 0,
        names=names,
        subjects=np.array([p.subject if p else -1 for p in parsed], np.int64),
        cameras=np.array([p.camera if p else -1 for p in parsed], np.int64),
        report=report,
    )


# ----------------------------------------------------------------------- dispatch
def infer_format(path: str | Path) -> str:
    """``"skeleton"``, ``"npy"``, ``"npz"`` or ``"pkl"`` for ``path``; refuse otherwise."""
    path = Path(path)
    if not path.exists():
        raise RankzcError(f"{path}: no such file or directory")
    if path.is_dir():
        if any(path.glob("*.skeleton")):
            return "skeleton"
        if any(path.glob("*_data*.npy")) or any(path.glob("*/*_data*.npy")):
            return "npy"
        raise RankzcError(f"{path}: directory holds neither .skeleton files nor *_data*.npy")
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz", ".pkl"):
        return suffix[1:]
    if suffix == ".pickle":
        return "pkl"
    raise RankzcError(f"{path}: unknown data format; expected a directory, .npy, .npz or .pkl")


def load_ntu(
    path: str | Path,
    part: str = "train",
    split: str | None = None,
    *,
    label: str | Path | None = None,
    missing: str | Path | None = None,
    max_frame: int = MAX_FRAME,
) -> SkeletonSet:
    """Load one part of an NTU data set, the format inferred from ``path``."""
    if split is not None and split not in SPLITS:
        raise RankzcError(f"{path}: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    fmt = infer_format(path)
    if fmt == "skeleton":
        return load_skeleton_dir(path, part, split or "xsub", missing, max_frame)
    if fmt == "npy":
        return load_npy(path, part, split, label)
    if fmt == "npz":
        out = load_npz(path, part)
        if split:
            out.report.notes.append(f"split {split!r} ignored: the .npz holds its own partition")
        return out
    return load_pyskl(path, part, split, max_frame)
