"""One data spec string for training and proxies, parsed here and only here.

Grammar::

    synthetic[:key=value[,key=value...]]
    ntu:PATH[:SPLIT][:key=value[,key=value...]]

``synthetic`` keys (see :mod:`rankzc.datasets.synthetic`): ``n`` samples
(3000), ``classes`` (10), ``frames`` (32), ``seed`` (0), ``difficulty`` in
[0, 1] (0.5), ``persons`` 1 or 2 (2), ``split`` ``xsub`` or ``xview`` (xsub),
``task`` ``actions`` or ``relations`` (actions; see
:func:`rankzc.datasets.synthetic.generate`).

``ntu`` PATH is a directory of ``.skeleton`` files, a directory with
``{train,val}_data[_joint].npy`` (or with ``SPLIT`` subdirectories), a ``.npy``
file (label pickle next to it, or ``label=PATH``), a CTR-GCN ``.npz`` or a
PYSKL ``.pkl``; the format is inferred from PATH. SPLIT is ``xsub``,
``xview``, ``xsub120`` or ``xset120``. Keys: ``label`` (label pickle for a
``.npy``), ``missing`` (missing-skeleton list for ``.skeleton`` files),
``frames`` (frame budget for ``.skeleton`` and PYSKL, 300).

Examples: ``synthetic``, ``synthetic:n=2000,difficulty=0.3``,
``ntu:/data/nturgbd_raw:xview``, ``ntu:/data/ntu/xsub``,
``ntu:/data/ntu60_3danno.pkl:xsub``, ``ntu:/data/NTU60_CS.npz``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from rankzc.datasets import ntu, synthetic
from rankzc.datasets.augment import resample_frames
from rankzc.datasets.clean import repair
from rankzc.datasets.skeleton import LoadReport, SkeletonSet
from rankzc.errors import RankzcError

SYNTHETIC_DEFAULTS: dict[str, Any] = {
    "n": 3000,
    "classes": 10,
    "frames": 32,
    "seed": 0,
    "difficulty": 0.5,
    "persons": 2,
    "split": "xsub",
    "task": "actions",
}
NTU_KEYS: dict[str, type] = {"label": str, "missing": str, "frames": int}


@dataclass(frozen=True)
class DataSpec:
    """A parsed data spec: ``kind`` is ``"synthetic"`` or ``"ntu"``."""

    kind: str
    path: str | None = None
    split: str | None = None
    format: str | None = None
    options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    @property
    def opts(self) -> dict[str, Any]:
        return dict(self.options)

    def __str__(self) -> str:
        # the default task is left out, so specs (and run keys) from before it stay the same
        opts = ",".join(f"{k}={v}" for k, v in self.options if not (k == "task" and v == "actions"))
        if self.kind == "synthetic":
            return "synthetic" + (f":{opts}" if opts else "")
        parts = (
            ["ntu", str(self.path)]
            + ([self.split] if self.split else [])
            + ([opts] if opts else [])
        )
        return ":".join(parts)


def _convert(spec: str, key: str, value: str, typ: type):
    try:
        return typ(value)
    except ValueError:
        raise RankzcError(
            f"data spec {spec!r}: {key}={value!r} is not a{'n' if typ is int else ''} {typ.__name__}"
        ) from None


def _options(spec: str, text: str, allowed: dict[str, type]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        if "=" not in item:
            raise RankzcError(f"data spec {spec!r}: {item!r} is not key=value")
        key, value = (s.strip() for s in item.split("=", 1))
        if key not in allowed:
            raise RankzcError(
                f"data spec {spec!r}: unknown key {key!r}; allowed: {', '.join(allowed)}"
            )
        out[key] = _convert(spec, key, value, allowed[key])
    return out


def parse_data_spec(spec: str | DataSpec) -> DataSpec:
    """Parse ``synthetic[:k=v,...]`` or ``ntu:PATH[:SPLIT][:k=v,...]`` (see the module doc)."""
    if isinstance(spec, DataSpec):
        return spec
    text = str(spec).strip()
    head, _, rest = text.partition(":")
    if head == "synthetic":
        types = {k: type(v) for k, v in SYNTHETIC_DEFAULTS.items()}
        opts = {**SYNTHETIC_DEFAULTS, **_options(text, rest, types)}
        if opts["split"] not in ("xsub", "xview"):
            raise RankzcError(f"data spec {text!r}: split must be xsub or xview")
        if not 0.0 <= opts["difficulty"] <= 1.0:
            raise RankzcError(f"data spec {text!r}: difficulty must be in [0, 1]")
        if opts["task"] not in synthetic.TASKS:
            raise RankzcError(
                f"data spec {text!r}: task must be one of {', '.join(synthetic.TASKS)}"
            )
        if opts["task"] == "relations":
            synthetic.relation_classes(opts["classes"])  # validates classes
        else:
            synthetic.action_pool(opts["classes"], opts["persons"])  # validates classes/persons
        if opts["n"] < 2 or opts["frames"] < 2:
            raise RankzcError(f"data spec {text!r}: n and frames must be >= 2")
        return DataSpec("synthetic", split=opts["split"], options=tuple(opts.items()))
    if head == "ntu":
        if not rest:
            raise RankzcError(f"data spec {text!r}: expected ntu:PATH[:SPLIT][:key=value,...]")
        tokens = rest.split(":")
        opts: dict[str, Any] = {}
        split = None
        while len(tokens) > 1 and ("=" in tokens[-1] or tokens[-1] in ntu.SPLITS):
            tok = tokens.pop()
            if tok in ntu.SPLITS:
                split = tok
            else:
                opts.update(_options(text, tok, NTU_KEYS))
        path = ":".join(tokens)
        fmt = ntu.infer_format(path)
        for key in ("label", "missing"):
            if key in opts and not Path(opts[key]).is_file():
                raise RankzcError(f"{opts[key]}: {key} file not found (data spec {text!r})")
        for key in ("label", "missing"):
            if key in opts:
                opts[key] = str(Path(opts[key]).resolve())
        return DataSpec(
            "ntu",
            path=str(Path(path).resolve()),
            split=split,
            format=fmt,
            options=tuple(sorted(opts.items())),
        )
    raise RankzcError(
        f"data spec {text!r}: expected 'synthetic[:key=value,...]' or 'ntu:PATH[:SPLIT]'"
    )


class SkeletonDataset(Dataset):
    """Skeleton samples held as one float32 tensor ``(N, 3, T, 25, M)`` + int64 labels."""

    def __init__(
        self,
        data: torch.Tensor,
        labels: torch.Tensor,
        num_classes: int,
        names: list[str] | None = None,
        report: LoadReport | None = None,
        class_names: tuple[str, ...] | None = None,
    ) -> None:
        if data.shape[0] != labels.shape[0]:
            raise RankzcError(f"dataset: {data.shape[0]} samples but {labels.shape[0]} labels")
        self.data = data
        self.labels = labels
        self.num_classes = int(num_classes)
        self.names = names
        self.report = report or LoadReport()
        self.class_names = class_names

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index):
        return self.data[index], self.labels[index]

    @property
    def num_frames(self) -> int:
        return int(self.data.shape[2])


@functools.lru_cache(maxsize=2)
def _synthetic_set(options: tuple[tuple[str, Any], ...]) -> SkeletonSet:
    o = dict(options)
    return synthetic.generate(
        n=o["n"],
        classes=o["classes"],
        frames=o["frames"],
        seed=o["seed"],
        difficulty=o["difficulty"],
        persons=o["persons"],
        task=o.get("task", "actions"),
    )


def load_skeletons(spec: str | DataSpec, split: str = "train") -> SkeletonSet:
    """The raw :class:`SkeletonSet` of one part (``"train"`` or ``"val"``), before repairs."""
    ds = parse_data_spec(spec)
    if split not in ntu.PARTS:
        raise RankzcError(f"split must be 'train' or 'val', got {split!r}")
    if ds.kind == "synthetic":
        full = _synthetic_set(ds.options)
        train = ntu.is_training(full.names, ds.split, "synthetic")
        index = np.flatnonzero(train == (split == "train"))
        report = LoadReport(source=str(ds), format="synthetic", n_samples=len(index))
        return SkeletonSet(
            data=full.data[index],
            labels=full.labels[index],
            num_classes=full.num_classes,
            names=[full.names[i] for i in index],
            subjects=full.subjects[index],
            cameras=full.cameras[index],
            class_names=full.class_names,
            report=report,
        )
    o = ds.opts
    return ntu.load_ntu(
        ds.path,
        split,
        ds.split,
        label=o.get("label"),
        missing=o.get("missing"),
        max_frame=o.get("frames", ntu.MAX_FRAME),
    )


def load_dataset(
    spec: str | DataSpec,
    split: str = "train",
    num_frames: int | None = None,
    limit: int | None = None,
    chunk: int = 512,
) -> SkeletonDataset:
    """Load one part of the data set named by ``spec`` as a :class:`SkeletonDataset`.

    Samples are repaired (:mod:`rankzc.datasets.clean`) and, when ``num_frames``
    is given, each sample's valid frames are resampled to ``num_frames``; this
    is done ``chunk`` samples at a time so that a memory-mapped source is never
    copied whole. ``limit`` keeps the first ``limit`` samples. The dataset's
    ``report`` adds the repair counts of this part to the loader's.
    """
    sset = load_skeletons(spec, split)
    n = len(sset) if limit is None else min(limit, len(sset))
    report = sset.report
    t_out = num_frames or sset.data.shape[2]
    parts, label_parts, names = [], [], []
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        x = np.array(sset.data[lo:hi], dtype=np.float32)  # a writable copy
        x, keep, stats = repair(x)
        report.nan_fixed += stats.nan_fixed
        report.dropped_empty += stats.dropped_empty
        report.padded += stats.padded
        xt = torch.from_numpy(x[keep])
        if num_frames is not None:
            xt = resample_frames(xt, num_frames)
        parts.append(xt)
        label_parts.append(torch.from_numpy(np.asarray(sset.labels[lo:hi])[keep]))
        if sset.names is not None:
            names.extend(np.asarray(sset.names[lo:hi], dtype=object)[keep].tolist())
    data = (
        torch.cat(parts)
        if parts
        else torch.zeros((0, 3, t_out, *sset.data.shape[3:]), dtype=torch.float32)
    )
    labels = torch.cat(label_parts).long() if label_parts else torch.zeros(0, dtype=torch.long)
    report.n_samples = int(labels.shape[0])
    return SkeletonDataset(
        data,
        labels,
        sset.num_classes,
        names=names if sset.names is not None else None,
        report=report,
        class_names=sset.class_names,
    )
