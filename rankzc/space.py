"""The GCN-NAS search space: architectures as on/off switch patterns.

An architecture has :math:`L \\in \\{4, 6, 8, 10\\}` blocks; each block has 8 switches,
in the order of :data:`OPS`: five fixed graph operators ``L1, Ln4, L4, L3, L2`` and three
dynamic-graph modules ``M_S, M_T, M_ST``. Rule: every block has at least one dynamic module
on, so each block has :math:`2^5 \\cdot 7 = 224` valid patterns.

The study stores an architecture as an :math:`L \\times 8` float matrix ``weights``; a switch
is on exactly when its value is :math:`> 0.1` (:meth:`Architecture.from_weights`).

The canonical string joins the blocks' 8-bit strings with ``-``, e.g.
``"10000101-01100011-..."``; :attr:`Architecture.arch_id` is the first 16 hex digits of
``sha256("gcn-nas:" + canonical)``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rankzc.errors import RankzcError
from rankzc.jsonfile import read_json

SPACE = "gcn-nas"
OPS: tuple[str, ...] = ("L1", "Ln4", "L4", "L3", "L2", "M_S", "M_T", "M_ST")
FIXED_OPS: tuple[str, ...] = OPS[:5]
DYNAMIC_OPS: tuple[str, ...] = OPS[5:]
DEPTHS: tuple[int, ...] = (4, 6, 8, 10)
MAX_DEPTH = max(DEPTHS)
THRESHOLD = 0.1
#: Valid switch patterns of one block: any fixed operators, at least one dynamic module.
PATTERNS_PER_BLOCK = 2 ** len(FIXED_OPS) * (2 ** len(DYNAMIC_OPS) - 1)


def _as_bit(value: Any, where: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and int(value) in (0, 1):
        return bool(value)
    raise RankzcError(f"{where}: switch must be 0/1 or a bool, got {value!r}")


@dataclass(frozen=True)
class Architecture:
    """One architecture of the GCN-NAS space (immutable, hashable).

    Args:
        blocks: one tuple of 8 booleans per block, in the order of :data:`OPS`.
            Lists and 0/1 integers are accepted and normalised to tuples of bools.

    Raises:
        RankzcError: depth not in :data:`DEPTHS`, a block without 8 switches, or a block
            with none of ``M_S, M_T, M_ST`` on (the message names the rule and block).
    """

    blocks: tuple[tuple[bool, ...], ...]

    def __post_init__(self) -> None:
        try:
            raw = list(self.blocks)
        except TypeError:
            raise RankzcError(
                f"blocks must be a sequence of blocks, got {type(self.blocks).__name__}"
            ) from None
        if len(raw) not in DEPTHS:
            raise RankzcError(
                f"rule depth: an architecture has {'/'.join(map(str, DEPTHS))} blocks, got {len(raw)}"
            )
        blocks = []
        for b, block in enumerate(raw, start=1):
            if isinstance(block, (str, bytes)) or not isinstance(block, Iterable):
                raise RankzcError(f"block {b}: expected 8 switches, got {block!r}")
            bits = tuple(_as_bit(v, f"block {b}") for v in block)
            if len(bits) != len(OPS):
                raise RankzcError(f"block {b}: expected {len(OPS)} switches, got {len(bits)}")
            if not any(bits[len(FIXED_OPS) :]):
                raise RankzcError(f"rule dynamic-module: block {b} has none of M_S, M_T, M_ST on")
            blocks.append(bits)
        object.__setattr__(self, "blocks", tuple(blocks))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_weights(cls, matrix: Any, threshold: float = THRESHOLD) -> Architecture:
        """Architecture from the study's ``L x 8`` float matrix (on when value > threshold)."""
        try:
            w = np.asarray(matrix, dtype=float)
        except (TypeError, ValueError):
            raise RankzcError("weights: matrix must hold numbers only") from None
        if w.ndim != 2 or w.shape[1] != len(OPS):
            raise RankzcError(f"weights: expected shape (L, {len(OPS)}), got {w.shape}")
        if not np.all(np.isfinite(w)):
            raise RankzcError("weights: matrix holds non-finite values")
        return cls(tuple(tuple(bool(v > threshold) for v in row) for row in w))

    @classmethod
    def parse(cls, text: str) -> Architecture:
        """Parse a canonical string such as ``"10000101-01100011-10100100-00011001"``."""
        if not isinstance(text, str):
            raise RankzcError(f"architecture string expected, got {type(text).__name__}")
        parts = text.strip().split("-")
        blocks = []
        for b, part in enumerate(parts, start=1):
            if len(part) != len(OPS) or set(part) - {"0", "1"}:
                raise RankzcError(
                    f"block {b}: expected {len(OPS)} characters 0/1, got {part!r} in {text.strip()!r}"
                )
            blocks.append(tuple(c == "1" for c in part))
        return cls(tuple(blocks))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Architecture:
        """Inverse of :meth:`to_dict`; also accepts ``{"weights": matrix}``."""
        if not isinstance(data, dict):
            raise RankzcError(f"architecture dict expected, got {type(data).__name__}")
        space = data.get("space", SPACE)
        if space != SPACE:
            raise RankzcError(f"space: expected {SPACE!r}, got {space!r}")
        if "blocks" not in data:
            if "weights" in data:
                return cls.from_weights(data["weights"])
            raise RankzcError("architecture dict needs a 'blocks' (or 'weights') field")
        arch = cls(data["blocks"])
        if "depth" in data and data["depth"] != arch.depth:
            raise RankzcError(
                f"depth: field says {data['depth']!r} but there are {arch.depth} blocks"
            )
        return arch

    # ------------------------------------------------------------------ views
    @property
    def depth(self) -> int:
        """Number of blocks."""
        return len(self.blocks)

    def __str__(self) -> str:
        return "-".join("".join("1" if v else "0" for v in block) for block in self.blocks)

    def __repr__(self) -> str:
        return f"Architecture.parse({str(self)!r})"

    @property
    def arch_id(self) -> str:
        """Stable id: first 16 hex digits of ``sha256("gcn-nas:" + canonical string)``."""
        return hashlib.sha256(f"{SPACE}:{self}".encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """JSON form ``{"space": "gcn-nas", "depth": L, "blocks": [[0/1 x 8] x L]}``."""
        return {
            "space": SPACE,
            "depth": self.depth,
            "blocks": [[int(v) for v in block] for block in self.blocks],
        }

    def op_counts(self) -> dict[str, int]:
        """Number of blocks in which each operator is on."""
        return {op: sum(block[i] for block in self.blocks) for i, op in enumerate(OPS)}

    def encoding(self) -> np.ndarray:
        """Float vector of length 89: 80 switches (padded with zeros to 10 blocks), the
        depth, then the number of blocks using each of the 8 operators."""
        bits = np.zeros((MAX_DEPTH, len(OPS)))
        bits[: self.depth] = np.asarray(self.blocks, dtype=float)
        counts = bits.sum(axis=0)
        return np.concatenate([bits.ravel(), [float(self.depth)], counts])

    @staticmethod
    def encoding_names() -> list[str]:
        """Names of the :meth:`encoding` entries: ``b01_L1 .. b10_M_ST, depth, n_L1 .. n_M_ST``."""
        names = [f"b{b:02d}_{op}" for b in range(1, MAX_DEPTH + 1) for op in OPS]
        return names + ["depth"] + [f"n_{op}" for op in OPS]


# ---------------------------------------------------------------------- sampling


def parse_depths(depths: str | Iterable[int]) -> tuple[int, ...]:
    """Sorted distinct depths from ``"4,6"`` or an iterable, checked against :data:`DEPTHS`."""
    try:
        if isinstance(depths, str):
            out = tuple(sorted({int(d) for d in depths.split(",") if d.strip()}))
        else:
            out = tuple(sorted({int(d) for d in depths}))
    except (TypeError, ValueError):
        raise RankzcError(f"depths: expected integers like 4,6,8,10, got {depths!r}") from None
    if not out:
        raise RankzcError("depths: at least one depth is needed")
    bad = [d for d in out if d not in DEPTHS]
    if bad:
        raise RankzcError(f"rule depth: depths must be among {DEPTHS}, got {bad}")
    return out


def _exclusion_keys(exclude: Iterable[Architecture | str]) -> set[str]:
    """Canonical strings of the excluded architectures (objects, canonical strings or ids)."""
    keys: set[str] = set()
    for item in exclude:
        if isinstance(item, Architecture):
            keys.add(str(item))
        elif isinstance(item, str) and "-" not in item and len(item) == 16:
            keys.add("id:" + item)
        else:
            keys.add(str(Architecture.parse(item)))
    return keys


#: How :func:`sample_architectures` draws an architecture's switches.
SAMPLINGS = ("uniform", "density")


def sample_architectures(
    n: int,
    depths: Iterable[int] = DEPTHS,
    seed: int = 0,
    exclude: Iterable[Architecture | str] = (),
    sampling: str = "uniform",
) -> list[Architecture]:
    r"""Draw ``n`` distinct valid architectures, reproducibly for a given ``seed``.

    Each draw picks a depth uniformly from ``depths``. With ``sampling="uniform"`` each
    block then picks its five fixed switches uniformly and its dynamic-module pattern
    uniformly among the 7 non-empty ones (so every valid architecture of a given depth is
    equally likely). The share of switches on is then close to one half in every
    architecture (its standard deviation over architectures is about 0.07 at the
    space's depths), so uniform samples cover few of the sparse and dense architectures.

    ``sampling="density"`` spans them: each architecture draws a switch density
    :math:`p \sim U(0, 1)`; every fixed switch of every block is on with probability
    :math:`p`, and each block's dynamic-module pattern is drawn among the 7 non-empty
    ones with probability :math:`\propto p^k (1-p)^{3-k}` (:math:`k` modules on: the
    density's pattern, conditioned on at least one module).

    Args:
        n: number of architectures.
        depths: depths to draw from (subset of :data:`DEPTHS`).
        seed: seed of the numpy generator.
        exclude: architectures never returned: :class:`Architecture` objects, canonical
            strings or 16-hex ``arch_id`` values.
        sampling: ``"uniform"`` (default) or ``"density"`` (:data:`SAMPLINGS`).

    Raises:
        RankzcError: ``n`` negative or larger than the number of architectures left, or
            an unknown ``sampling``.
    """
    if sampling not in SAMPLINGS:
        raise RankzcError(f"--sampling: must be one of {list(SAMPLINGS)}, got {sampling!r}")
    depths = parse_depths(depths)
    n = int(n)
    if n < 0:
        raise RankzcError(f"n: must be >= 0, got {n}")
    excluded = _exclusion_keys(exclude)
    excluded_ids = {k[3:] for k in excluded if k.startswith("id:")}
    excluded_str = {k for k in excluded if not k.startswith("id:")}
    capacity = sum(PATTERNS_PER_BLOCK**d for d in depths)
    # Ids cannot be mapped back to depths, so they count against every depth (upper bound).
    in_depth = sum(1 for k in excluded_str if k.count("-") + 1 in depths) + len(excluded_ids)
    if n > capacity - in_depth:
        raise RankzcError(
            f"n: cannot draw {n} distinct architectures of depths {list(depths)}; "
            f"at most {capacity - in_depth} are left"
        )
    rng = np.random.default_rng(seed)
    dyn = np.array([[(p >> 2) & 1, (p >> 1) & 1, p & 1] for p in range(1, 8)], dtype=bool)
    seen: set[str] = set()
    out: list[Architecture] = []
    ons = dyn.sum(axis=1)
    while len(out) < n:
        depth = int(depths[rng.integers(len(depths))])
        if sampling == "density":
            p = float(rng.uniform())
            fixed = rng.random(size=(depth, len(FIXED_OPS))) < p
            weights = p**ons * (1.0 - p) ** (3 - ons)
            if not weights.sum() > 0:  # p == 0: the sparsest patterns, one module on
                weights = (ons == 1).astype(float)
            dynamic = dyn[rng.choice(7, size=depth, p=weights / weights.sum())]
        else:
            fixed = rng.integers(0, 2, size=(depth, len(FIXED_OPS))).astype(bool)
            dynamic = dyn[rng.integers(0, 7, size=depth)]
        arch = Architecture(tuple(map(tuple, np.concatenate([fixed, dynamic], axis=1).tolist())))
        key = str(arch)
        if key in seen or key in excluded_str or (excluded_ids and arch.arch_id in excluded_ids):
            continue
        seen.add(key)
        out.append(arch)
    return out


def count_architectures(depths: Iterable[int] = DEPTHS) -> int:
    """Number of valid architectures with the given depths (:math:`\\sum_L 224^L`)."""
    return sum(PATTERNS_PER_BLOCK**d for d in parse_depths(depths))


# ---------------------------------------------------------------------- files


def _item_to_arch(item: Any) -> Architecture:
    if isinstance(item, Architecture):
        return item
    if isinstance(item, str):
        return Architecture.parse(item)
    if isinstance(item, dict):
        return Architecture.from_dict(item)
    if isinstance(item, Sequence):
        return Architecture.from_weights(item)
    raise RankzcError(f"expected a string, a dict or a weights matrix, got {type(item).__name__}")


def load_architectures(path: str | Path) -> list[Architecture]:
    """Read a JSON list of architectures.

    Items may be canonical strings, dicts as written by :meth:`Architecture.to_dict`
    (or ``{"weights": matrix}``), or the study's ``L x 8`` weights matrices.

    Raises:
        FileNotFoundError: missing file.
        RankzcError: not JSON, not a list, or a bad item (message names file and item index).
    """
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, list):
        raise RankzcError(
            f"{path}: expected a JSON list of architectures, got {type(data).__name__}"
        )
    archs = []
    for i, item in enumerate(data):
        try:
            archs.append(_item_to_arch(item))
        except RankzcError as err:
            raise RankzcError(f"{path}: item {i}: {err}") from None
    return archs


def save_architectures(archs: Iterable[Architecture], path: str | Path) -> None:
    """Write architectures as a JSON list of :meth:`Architecture.to_dict` items."""
    from rankzc.atomicfile import write_text

    write_text(path, json.dumps([a.to_dict() for a in archs], indent=1) + "\n")


__all__ = [
    "SPACE",
    "OPS",
    "SAMPLINGS",
    "FIXED_OPS",
    "DYNAMIC_OPS",
    "DEPTHS",
    "PATTERNS_PER_BLOCK",
    "Architecture",
    "sample_architectures",
    "count_architectures",
    "parse_depths",
    "load_architectures",
    "save_architectures",
]
