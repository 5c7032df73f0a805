r"""Training recipes: :class:`TrainConfig` and the presets' budgets.

The ``ntu60`` recipe is the study's: SGD with Nesterov momentum 0.9, learning rate
0.1, weight decay :math:`6\cdot10^{-4}`, learning rate :math:`\times 0.1` at epochs
30, 45 and 60, batch 40, 70 epochs. The CPU presets keep the optimiser and scale the
budget: fewer epochs (milestones at the same fractions :math:`30/70, 45/70, 60/70`
of the run), fewer synthetic samples and frames:

=======  ======  ======  =====  ====================================================
preset   epochs  batch   lr     synthetic data (train+val samples, frames)
=======  ======  ======  =====  ====================================================
ntu60    70      40      0.1    ``synthetic:n=6000,frames=300,classes=60``
cpu      16      32      0.08   ``synthetic:n=20000,frames=8,classes=10,difficulty=0.3,
                                persons=1``: train on the first 800 of the 13372
                                training samples, validate on all 6628 after the last
                                epoch only; model width 1/8 (the ``cpu`` model preset);
                                learning-rate warm-up over the first 2 epochs
tiny     2       20      0.1    ``synthetic:n=120,frames=16,classes=5``
=======  ======  ======  =====  ====================================================

The ``cpu`` recipe was chosen by measured label quality only, never by the correlation
the proxies reach on it (``benchmarks/label_recipe.py``; ``benchmarks/output/
label_recipe_*``), at a fixed cost of about 13,000 training samples per run so that the
shipped benchmark (240 runs) builds in under two hours on two cores:

* the learning rate is the study's 0.1 scaled linearly to the batch (0.08 at batch 32);
  with 0.1 at batch 16 the first phase did not learn;
* accuracy has levelled off at every depth: between epochs 12 and 16 the curves move by
  at most 0.3 points (2 architectures per depth, validated every 4 epochs);
* seed noise is below the differences between architectures: the same 8 architectures
  (2 per depth) under seeds 0 and 1 gave a seed standard deviation of 1.44 points against
  2.52 points between architectures (intraclass correlation 0.76, Spearman 0.52) with 800
  samples x 16 epochs, against 2.08 / 0.00 with 400 x 32 (batch 16) and 4.82 / 0.00 with
  1600 x 8; the previous recipe (400 x 12, width 1/4) had 2.2 points between seeds and a
  seed-to-seed Spearman of 0.16 over 10 architectures. The shipped benchmark measured
  the chosen recipe on 40 architectures: seed-to-seed Spearman 0.38, so the 8-architecture
  check was optimistic (README, "The shipped benchmark"). Width 1/8 cuts the cost of a
  training sample by about a third against 1/4 (batch 64, one thread: 1.6 / 3.7 ms at
  depths 4 / 10 against 2.5 / 5.7 ms) and buys the 800 samples;
* validation noise is at most a quarter of the labels' spread: 6628 validation samples
  give a binomial 0.5 points at 75 % accuracy. The first 800 training samples are the
  same for every ``n`` (the generator draws in fixed blocks), so only the validation set
  grows with ``n``. ``benchmarks/build_default.py`` prints both figures for the built
  benchmark.

One person per sample (``persons=1``) halves the cost of every step; validation is
forward-only and runs once.

The learning rate rises linearly over the first 2 epochs (``lr_warmup_epochs``, round 8,
issue 25): without it, 3 depth-10 runs of the previous shipped benchmark never got going
before the first learning-rate drop (labels 0.36-0.60 against 0.72-0.76 for their other
seed); with it, none of the 16 runs of ``benchmarks/output/label_recipe_d05_warmup.json``
stuck. A run count of ``epochs`` not above the warm-up (``--epochs 2``) trains without it.

The label of an architecture is the top-1 validation accuracy after the **last**
epoch (not the best epoch), as in the study.

:meth:`TrainConfig.to_dict` is the run configuration stored with every run and hashed
into the run key: everything that changes the result (preset, data, epochs, schedule,
batch size, precision, proxies and their batch), nothing that does not (device,
workers, executor).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rankzc.errors import RankzcError

#: The study's learning-rate milestones as fractions of its 70 epochs.
STUDY_EPOCHS = 70
STUDY_MILESTONES = (30, 45, 60)
PRECISIONS = ("fp32", "bf16")

#: Per preset: training budget and the synthetic data options filled in when
#: ``--data synthetic`` leaves them out.
RECIPES: dict[str, dict[str, Any]] = {
    "ntu60": dict(
        epochs=70,
        batch_size=40,
        synthetic=dict(n=6000, frames=300, classes=60),
    ),
    "cpu": dict(
        epochs=16,
        batch_size=32,
        lr=0.08,
        lr_warmup_epochs=2,
        train_samples=800,
        validate_last_only=True,
        synthetic=dict(n=20000, frames=8, classes=10, difficulty=0.3, persons=1),
    ),
    "tiny": dict(
        epochs=2,
        batch_size=20,
        synthetic=dict(n=120, frames=16, classes=5),
    ),
}


def scaled_milestones(epochs: int) -> tuple[int, ...]:
    """The study's milestones 30/45/60 of 70 scaled to ``epochs`` (rounded, kept < epochs)."""
    out = []
    for m in STUDY_MILESTONES:
        e = int(round(m * epochs / STUDY_EPOCHS))
        if 0 < e < epochs and e not in out:
            out.append(e)
    return tuple(out)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines one training run's result (besides arch and seed).

    Args:
        preset: model size (:data:`rankzc.models.PRESETS`).
        data: resolved data specification (see :func:`resolve_data_spec`).
        epochs: training epochs; the label is the validation accuracy after the last.
        warmup_epochs: proxies are scored at initialisation (epoch -1) and after
            each of epochs ``0 .. warmup_epochs-1``.
        batch_size, lr, momentum, nesterov, weight_decay: SGD settings.
        milestones, gamma: the learning rate is multiplied by ``gamma`` at each milestone.
        precision: ``fp32`` or ``bf16`` (autocast of the forward pass).
        proxies: names scored during warm-up.
        proxy_batch_size: size of the fixed seeded minibatch the proxies see.
        model: overrides of the preset's model settings (e.g. ``width``).
        train_samples: train on the first ``train_samples`` samples of the training
            split only (``None``: all of it); the validation split is used whole, so a
            large data set gives a large validation set while training stays cheap.
            The proxy minibatch is drawn from the whole training split, as
            ``rankzc score`` draws it.
        val_every: validate after every ``val_every``-th epoch and always after the
            last (the label); epochs in between record no validation accuracy. A large
            validation set costs a forward pass over it per validation.
        lr_warmup_epochs: the learning rate rises linearly, step by step, from
            ``lr / steps`` to ``lr`` over the first ``lr_warmup_epochs`` epochs (0: no
            warm-up), so that a deep network's first steps do not leave it stuck.
    """

    preset: str = "cpu"
    data: str = "synthetic"
    epochs: int = 5
    warmup_epochs: int = 0
    batch_size: int = 40
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 6e-4
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    precision: str = "fp32"
    proxies: tuple[str, ...] = ()
    proxy_batch_size: int = 20
    model: dict[str, Any] = field(default_factory=dict)
    train_samples: int | None = None
    val_every: int = 1
    lr_warmup_epochs: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        from rankzc.models import PRESETS

        if self.preset not in PRESETS:
            raise RankzcError(f"--preset: must be one of {sorted(PRESETS)}, got {self.preset!r}")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise RankzcError(f"--epochs: must be an integer >= 1, got {self.epochs!r}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise RankzcError(
                f"--warmup-epochs: must be in [0, epochs={self.epochs}], got {self.warmup_epochs}"
            )
        if self.batch_size < 1 or self.proxy_batch_size < 1:
            raise RankzcError("batch_size: must be >= 1")
        for name in ("lr", "momentum", "weight_decay", "gamma"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise RankzcError(f"{name}: must be a finite number >= 0, got {value!r}")
        if any(not 0 < m < self.epochs for m in self.milestones):
            raise RankzcError(f"milestones: must lie in (0, {self.epochs}), got {self.milestones}")
        if self.train_samples is not None and (
            not isinstance(self.train_samples, int)
            or isinstance(self.train_samples, bool)
            or self.train_samples < 2
        ):
            raise RankzcError(
                f"train_samples: must be an integer >= 2 or None, got {self.train_samples!r}"
            )
        if (
            not isinstance(self.val_every, int)
            or isinstance(self.val_every, bool)
            or (self.val_every < 1)
        ):
            raise RankzcError(f"val_every: must be an integer >= 1, got {self.val_every!r}")
        if (
            not isinstance(self.lr_warmup_epochs, int)
            or isinstance(self.lr_warmup_epochs, bool)
            or not 0 <= self.lr_warmup_epochs < self.epochs
        ):
            raise RankzcError(
                f"lr_warmup_epochs: must be an integer in [0, epochs={self.epochs}), "
                f"got {self.lr_warmup_epochs!r}"
            )
        if self.precision not in PRECISIONS:
            raise RankzcError(f"--precision: must be one of {PRECISIONS}, got {self.precision!r}")

    @classmethod
    def for_preset(
        cls,
        preset: str = "cpu",
        *,
        data: str = "synthetic",
        epochs: int | None = None,
        warmup_epochs: int = 0,
        precision: str = "fp32",
        proxies: Iterable[str] | str | None = None,
        **changes: Any,
    ) -> TrainConfig:
        """The recipe of ``preset`` with the study's optimiser and a scaled budget.

        ``epochs`` (default: the preset's) also rescales the milestones unless
        ``milestones`` is given; ``data`` is resolved with :func:`resolve_data_spec`.
        """
        if preset not in RECIPES:
            raise RankzcError(f"--preset: must be one of {sorted(RECIPES)}, got {preset!r}")
        recipe = RECIPES[preset]
        if epochs is None:
            epochs = recipe["epochs"]
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise RankzcError(f"--epochs: must be an integer >= 1, got {epochs!r}")
        changes.setdefault("milestones", scaled_milestones(epochs))
        changes.setdefault("batch_size", recipe["batch_size"])
        if "lr" in recipe:
            changes.setdefault("lr", recipe["lr"])
        if recipe.get("lr_warmup_epochs") and epochs > recipe["lr_warmup_epochs"]:
            changes.setdefault("lr_warmup_epochs", recipe["lr_warmup_epochs"])
        if recipe.get("validate_last_only"):
            changes.setdefault("val_every", epochs)
        spec = resolve_data_spec(data, preset)
        if "train_samples" in recipe and spec.startswith("synthetic"):
            changes.setdefault("train_samples", recipe["train_samples"])
        return cls(
            preset=preset,
            data=spec,
            epochs=epochs,
            warmup_epochs=warmup_epochs,
            precision=precision,
            proxies=resolve_proxies(proxies),
            **changes,
        )

    def lr_at(self, epoch: int, step: int | None = None, steps: int = 1) -> float:
        """Learning rate during ``epoch`` (0-based); with ``step`` (0-based, of ``steps``
        per epoch), at that step, the warm-up included."""
        lr = self.lr * self.gamma ** sum(1 for m in self.milestones if epoch >= m)
        if step is not None and epoch < self.lr_warmup_epochs:
            total = self.lr_warmup_epochs * max(1, steps)
            lr *= (epoch * max(1, steps) + step + 1) / total
        return lr

    def to_dict(self) -> dict[str, Any]:
        """JSON form, stored with every run; its hash is part of the run key."""
        out = dataclasses.asdict(self)
        out["milestones"] = list(self.milestones)
        out["proxies"] = list(self.proxies)
        out["optimizer"] = "sgd"
        # configurations from before these fields keep their key
        if self.train_samples is None:
            del out["train_samples"]
        if self.val_every == 1:
            del out["val_every"]
        if self.lr_warmup_epochs == 0:
            del out["lr_warmup_epochs"]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = {k: v for k, v in data.items() if k != "optimizer"}
        data["milestones"] = tuple(data.get("milestones", ()))
        data["proxies"] = tuple(data.get("proxies", ()))
        return cls(**data)


def resolve_proxies(names: Iterable[str] | str | None) -> tuple[str, ...]:
    """Canonical proxy names; ``None`` or ``"all"`` means every registered proxy, ``"none"`` none."""
    from rankzc.proxies import get_proxy, proxy_names

    if names is None:
        return tuple(proxy_names())
    if isinstance(names, str):
        text = names.strip()
        if text in ("", "none"):
            return ()
        if text == "all":
            return tuple(proxy_names())
        names = text.split(",")
    out: list[str] = []
    for name in names:
        name = name.strip()
        if not name:
            continue
        try:
            spec = get_proxy(name)
        except (KeyError, ValueError):
            raise RankzcError(
                f"--proxies: unknown proxy {name!r} (known: {', '.join(proxy_names())})"
            ) from None
        if spec.name not in out:
            out.append(spec.name)
    return tuple(out)


def _split_spec(spec: str) -> tuple[str, list[str]]:
    kind, _, rest = spec.partition(":")
    return kind.strip(), [p for p in rest.split(",") if p.strip()] if rest else []


def resolve_data_spec(spec: str, preset: str) -> str:
    """Fill in the preset's synthetic options (samples, frames, classes) that ``spec`` leaves out.

    ``"synthetic"`` with the ``cpu`` preset becomes e.g.
    ``"synthetic:classes=10,frames=16,n=1000"`` (options sorted, user options win).
    The result is the canonical form of :func:`rankzc.datasets.parse_data_spec` (every
    option spelled out), so equal data give equal run keys. Other specs are
    validated and returned in canonical form.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise RankzcError("--data: empty data specification")
    spec = spec.strip()
    kind, parts = _split_spec(spec)
    if kind != "synthetic":
        from rankzc.datasets import parse_data_spec

        return str(parse_data_spec(spec))
    options: dict[str, str] = {}
    for part in parts:
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise RankzcError(f"--data: option {part!r} is not key=value in {spec!r}")
        options[key.strip()] = value.strip()
    for key, value in RECIPES[preset]["synthetic"].items():
        options.setdefault(key, str(value))
    from rankzc.datasets import parse_data_spec

    merged = "synthetic:" + ",".join(f"{k}={options[k]}" for k in sorted(options))
    return str(parse_data_spec(merged))
