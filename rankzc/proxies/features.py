"""Score architectures of the search space at initialisation, reproducibly.

:class:`ProxySettings` is everything that fixes a score: model preset, data spec,
minibatch size, seed, device, proxy names and proxy options. Stored with the scores
(store ``proxy_settings``, CSV sidecar or parquet metadata), it lets a ranker score new
architectures the same way later with :func:`score_architectures`.

Reproducibility: the minibatch is the same for every architecture (``batch_size``
training samples drawn by :func:`minibatch_index` with ``seed``); each model is
initialised from torch's generator seeded with ``seed`` just before it is built, so one
architecture gets the same weights whatever else is scored with it and in whatever
order. ``rankzc bench build`` scores its initialisation proxies with exactly these rules
(:func:`minibatch_index`, the same seeding, ``resample=False``), so a ranker fitted on a
built benchmark scores new architectures the way its training data was scored.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import pandas as pd
import torch

from rankzc.device import resolve_device
from rankzc.errors import RankzcError
from rankzc.proxies import catalog
from rankzc.proxies.catalog import (  # noqa: F401  (re-exported)
    STUDY_DATASETS,
    STUDY_PREFIX,
    data_reading,
    study_dataset,
)
from rankzc.proxies.compute import ProxyResult, compute_proxies
from rankzc.proxies.registry import DEFINITIONS, changed_since, get_proxy, proxy_names

DEVICES = ("auto", "cpu", "cuda")


def _settings_dict(settings: ProxySettings | dict[str, Any]) -> dict[str, Any]:
    return settings.to_dict() if isinstance(settings, ProxySettings) else dict(settings)


def unreproducible(settings: ProxySettings | dict[str, Any]) -> list[str]:
    """:func:`rankzc.proxies.catalog.unreproducible` of settings or their recorded dict."""
    return catalog.unreproducible(_settings_dict(settings))


def unreproducible_message(names: list[str], settings: ProxySettings | dict[str, Any]) -> str:
    """:func:`rankzc.proxies.catalog.unreproducible_message` of settings or their dict."""
    return catalog.unreproducible_message(names, _settings_dict(settings))


#: Keys a settings record may hold that describe the scores without changing how rankzc
#: computes them (``input_shape`` and ``loss`` are recorded by ``rankzc import thesis``).
RECORD_ONLY = frozenset(
    {"rankzc_version", "num_classes", "num_frames", "source", "input_shape", "loss"}
)


@dataclass(frozen=True)
class ProxySettings:
    """How proxies are scored (recorded with every score).

    Attributes:
        preset: model size (``tiny``, ``cpu``, ``ntu60``; see :mod:`rankzc.models`).
        data: data spec (:func:`rankzc.datasets.parse_data_spec`).
        batch_size: samples in the minibatch (the study used 20).
        seed: seed of the minibatch draw, model initialisations and proxy randomness.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        proxies: proxy names; empty = all registered.
        options: proxy options passed to :func:`compute_proxies` (e.g. ``synflow_bn``).
        resample: resample every sample to the preset's frame count (``True``), or keep
            the data's own frames (``False``, as ``rankzc bench build`` trains and scores).
        definitions: version of the proxy definitions the scores follow
            (:data:`~rankzc.proxies.registry.DEFINITIONS`; a record without this field
            is version 1, from before the definitions followed the study's code).
    """

    preset: str = "cpu"
    data: str = "synthetic"
    batch_size: int = 20
    seed: int = 0
    device: str = "auto"
    proxies: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    resample: bool = True
    definitions: int = DEFINITIONS

    def __post_init__(self) -> None:
        from rankzc.models import PRESETS

        if self.preset not in PRESETS:
            raise RankzcError(f"preset: must be one of {sorted(PRESETS)}, got {self.preset!r}")
        if int(self.batch_size) < 2:
            raise RankzcError(f"batch_size: must be >= 2, got {self.batch_size}")
        if self.device not in DEVICES:
            raise RankzcError(f"device: must be one of {list(DEVICES)}, got {self.device!r}")
        study_dataset(self.data)  # an unknown study: name raises here
        names = self.proxies
        if isinstance(names, str):
            names = tuple(n.strip() for n in names.split(",") if n.strip())
        object.__setattr__(self, "proxies", tuple(get_proxy(n).name for n in names))
        version = self.definitions
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise RankzcError(f"definitions: must be a positive integer, got {version!r}")
        if version > DEFINITIONS:
            raise RankzcError(
                f"definitions: these settings use proxy definitions version {version}; "
                f"this rankzc knows versions up to {DEFINITIONS} (upgrade rankzc)"
            )

    def stale_proxies(self) -> list[str]:
        """Proxies of these settings whose definition changed since ``definitions``:
        scores recorded under these settings differ from what this rankzc computes."""
        return [n for n in changed_since(self.definitions) if n in self.names]

    @property
    def names(self) -> list[str]:
        """The proxies to compute (all registered when ``proxies`` is empty)."""
        return list(self.proxies) or proxy_names()

    def resolved_device(self) -> torch.device:
        return resolve_device(self.device, what="device")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``proxies`` resolved to the names actually computed)."""
        out = asdict(self)
        out["proxies"] = self.names
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProxySettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - RECORD_ONLY)
        if unknown:
            raise RankzcError(f"proxy settings: unknown fields {unknown}")
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs.setdefault("definitions", 1)  # recorded before the field existed
        if "proxies" in kwargs:
            kwargs["proxies"] = tuple(kwargs["proxies"])
        return cls(**kwargs)


def minibatch_index(n: int, batch_size: int, seed: int) -> torch.Tensor:
    """Indices of the proxy minibatch: ``batch_size`` of ``n`` samples, without replacement."""
    gen = torch.Generator().manual_seed(int(seed) + 7919)
    return torch.randperm(int(n), generator=gen)[: int(batch_size)]


def load_minibatch(settings: ProxySettings) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The seeded minibatch ``(x, y, num_classes)`` of ``settings`` (training split).

    With ``settings.resample`` samples are resampled to the preset's frame count;
    ``batch_size`` of them are drawn by :func:`minibatch_index`.
    """
    from rankzc.datasets import load_dataset
    from rankzc.models import PRESETS

    study = study_dataset(settings.data)
    if study is not None:
        return _placeholder_batch(settings, study)
    frames = int(PRESETS[settings.preset]["num_frames"]) if settings.resample else None
    data = load_dataset(settings.data, "train", num_frames=frames)
    if len(data) < settings.batch_size:
        raise RankzcError(
            f"data {settings.data!r}: {len(data)} training samples, fewer than "
            f"batch_size {settings.batch_size}"
        )
    index = minibatch_index(len(data), settings.batch_size, settings.seed)
    return data.data[index].clone(), data.labels[index].clone(), int(data.num_classes)


def _placeholder_batch(
    settings: ProxySettings, study: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """A zero minibatch of the study's sample shape, for proxies that read only the shape
    (refuses, naming them, when some proxy of ``settings`` reads the data)."""
    reading = data_reading(settings.names)
    if reading:
        raise RankzcError(unreproducible_message(reading, settings))
    channels, frames, joints, persons = study["input_shape"]
    if settings.resample:
        from rankzc.models import PRESETS

        frames = int(PRESETS[settings.preset]["num_frames"])
    x = torch.zeros((settings.batch_size, channels, frames, joints, persons))
    y = torch.zeros(settings.batch_size, dtype=torch.long)
    return x, y, int(study["num_classes"])


def iter_scores(
    archs: Iterable[Any],
    settings: ProxySettings,
    *,
    batch: tuple[torch.Tensor, torch.Tensor, int] | None = None,
    report: Callable[[str], None] | None = None,
    check_memory: bool = True,
    plan: Any = None,
) -> Iterator[tuple[Any, dict[str, ProxyResult]]]:
    """Yield ``(arch, {name: ProxyResult})`` for every architecture, in order.

    Before any work (when called, not when first iterated), the peak memory is
    estimated for the deepest architecture with every switch on
    (:func:`~rankzc.proxies.memory.plan_scoring`): the shared passes' minibatch is split
    when that makes it fit, and a :class:`RankzcError` says what would be needed when
    nothing does. When the estimate is 2 GB or more (the study's scale), ``report`` gets
    that estimate and one line per proxy as it finishes. ``plan``: a plan made before
    (:func:`check_memory` of a whole pool, so that every part of the pool scored apart,
    e.g. by worker processes, follows the same one); used as it is, without warnings.
    """
    from rankzc import threads

    threads.ensure()  # library use gets the commands' default (one thread per process)
    archs = list(archs)
    stale = settings.stale_proxies()
    if stale:
        warnings.warn(
            f"the proxy settings record definitions version {settings.definitions}; "
            f"changed since: {', '.join(stale)}; this rankzc computes them with version "
            f"{DEFINITIONS}, so they differ from the recorded scores",
            RuntimeWarning,
            stacklevel=2,
        )
    device = settings.resolved_device()
    x, y, num_classes = _prepared_batch(settings, batch, device)
    heavy = plan is not None and plan.unsplit_bytes >= HEAVY_BYTES
    if plan is None and check_memory and archs:
        plan = _memory_plan(archs, settings, x, num_classes, device)
        heavy = plan.unsplit_bytes >= HEAVY_BYTES
        if report is not None and (heavy or not plan.exact or plan.recompute):
            report(f"memory: {plan.describe()}")
        if not plan.exact:
            which = "grasp differs" if plan.splits == 1 else "the gradient proxies differ"
            warnings.warn(
                f"the minibatch is split into {max(plan.splits, plan.hess_splits)} chunks "
                f"to fit in memory ({plan.describe()}); BatchNorm statistics then come "
                f"from each chunk, so {which} slightly from an unsplit run",
                RuntimeWarning,
                stacklevel=2,
            )
    return _iter_scores(archs, settings, x, y, num_classes, device, plan, heavy, report)


def check_memory(
    archs: Iterable[Any],
    settings: ProxySettings,
    batch: tuple[torch.Tensor, torch.Tensor, int] | None = None,
):
    """The memory plan of scoring ``archs`` under ``settings``
    (:class:`~rankzc.proxies.memory.ScoringPlan`); raises :class:`RankzcError` when it
    cannot fit. For commands that check before they start showing progress."""
    archs = list(archs)
    device = settings.resolved_device()
    x, _, num_classes = _prepared_batch(settings, batch, device)
    return _memory_plan(archs, settings, x, num_classes, device) if archs else None


def _prepared_batch(settings: ProxySettings, batch, device):
    from rankzc.models import PRESETS

    x, y, data_classes = batch if batch is not None else load_minibatch(settings)
    num_classes = max(int(PRESETS[settings.preset]["num_classes"]), int(data_classes))
    return x.to(device), y.to(device), num_classes


def _iter_scores(archs, settings, x, y, num_classes, device, plan, heavy, report):
    from rankzc.models import build_model

    options = dict(settings.options)
    options.setdefault("n_classes", num_classes)
    for i, arch in enumerate(archs, 1):
        progress = None
        if heavy and report is not None:

            def progress(name, res, i=i, arch=arch):
                state = f"{res.seconds:.1f} s" if res.error is None else f"missing ({res.error})"
                report(f"architecture {i}/{len(archs)} (depth {arch.depth}): {name} {state}")

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(settings.seed))
            model = build_model(
                arch,
                settings.preset,
                num_classes=num_classes,
                num_person=int(x.shape[-1]),
                num_frames=int(x.shape[2]),
            )
        model.to(device)
        results = compute_proxies(
            model,
            (x, y),
            names=settings.names,
            seed=settings.seed,
            options=options,
            splits=plan.splits if plan else 1,
            recompute=plan.recompute if plan else False,
            hess_splits=plan.hess_splits if plan else 1,
            progress=progress,
        )
        yield arch, results
        del model


#: Estimated peak from which scoring reports per proxy (the study's scale on a CPU).
HEAVY_BYTES = 2 * 2**30


def _memory_plan(archs: list, settings: ProxySettings, x: torch.Tensor, num_classes: int, device):
    """The memory plan of the deepest architecture with every switch on (an upper bound
    over the architectures of that depth)."""
    from rankzc.proxies.memory import plan_scoring

    depth = max(a.depth for a in archs)
    per_sample, params = _forward_bytes(
        settings.preset, depth, tuple(int(v) for v in x.shape[1:]), num_classes
    )
    return plan_scoring(
        per_sample,
        params,
        int(x.shape[0]),
        settings.names,
        device=device,
        zen_batch=settings.options.get("zen_batch"),
        depth=depth,
        what=f"{len(archs)} architecture(s) of depth up to {depth} with the {settings.preset} "
        f"preset and a minibatch of {int(x.shape[0])}",
    )


@functools.lru_cache(maxsize=64)
def _forward_bytes(
    preset: str, depth: int, sample_shape: tuple[int, ...], num_classes: int
) -> tuple[int, int]:
    from rankzc.models import build_model
    from rankzc.proxies.memory import forward_bytes
    from rankzc.space import OPS, Architecture

    worst = Architecture(tuple((True,) * len(OPS) for _ in range(depth)))
    return forward_bytes(
        lambda: build_model(
            worst,
            preset,
            num_classes=num_classes,
            num_person=sample_shape[-1],
            num_frames=sample_shape[1],
        ),
        (1, *sample_shape),
    )


def score_architectures(
    archs: Iterable[Any],
    settings: ProxySettings | dict[str, Any] | None = None,
    *,
    progress: Callable[[Any, dict[str, ProxyResult]], None] | None = None,
    report: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Score ``archs`` (:class:`~rankzc.space.Architecture`) at initialisation.

    ``settings`` may be a :class:`ProxySettings` or its recorded dict form
    (:meth:`ProxySettings.to_dict`, as stored with earlier scores).

    Returns a frame indexed by ``arch_id`` with columns ``depth``, ``arch`` (canonical
    string) and one column per proxy (NaN = missing). ``df.attrs`` holds ``settings``
    (:meth:`ProxySettings.to_dict`), ``seconds`` and ``errors`` (``{arch_id: {name:
    ...}}``). ``progress(arch, results)`` is called after each architecture; ``report``
    gets the memory estimate and per-proxy lines at the study's scale (:func:`iter_scores`).
    """
    if isinstance(settings, dict):
        settings = ProxySettings.from_dict(settings)
    settings = settings or ProxySettings()
    names = settings.names
    rows, seconds, errors = [], {}, {}
    for arch, results in iter_scores(archs, settings, report=report):
        row = {"arch_id": arch.arch_id, "depth": arch.depth, "arch": str(arch)}
        row.update({n: results[n].score for n in names})
        rows.append(row)
        seconds[arch.arch_id] = {n: results[n].seconds for n in names}
        errs = {n: results[n].error for n in names if results[n].error}
        if errs:
            errors[arch.arch_id] = errs
        if progress is not None:
            progress(arch, results)
    df = pd.DataFrame(rows, columns=["arch_id", "depth", "arch", *names])
    df[names] = df[names].astype(float)
    df = df.set_index("arch_id")
    df.attrs.update(settings=settings.to_dict(), seconds=seconds, errors=errors)
    return df


def settings_json(settings: ProxySettings) -> str:
    """The settings as canonical JSON."""
    return json.dumps(settings.to_dict(), sort_keys=True)
