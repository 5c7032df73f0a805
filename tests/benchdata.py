"""Small benchmark files in the exact formats of the study and of NAS-Bench-Suite-Zero.

Tests write these instead of reading ../shared, so every feature is tested without it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from rankzc.space import Architecture, sample_architectures

#: Weights matrix of the study's first file in sorted order (006b3152...json), as recorded;
#: its ``params`` score is 3,341,748.
STUDY_FIRST_WEIGHTS = [
    [0.1189648947385359, 0.08465773121475041, 0.10477972078847028, 0.1426073532975796,
     0.09773141054229283, 0.13984239530206966, 0.13668913764743193, 0.10950650675297534],
    [0.12491513215202572, 0.08785179570643242, 0.12144677310516273, 0.05685085861418468,
     0.10501738796519036, 0.1279031732468518, 0.09851248283381289, 0.09220603202332445],
    [0.131471807993311, 0.08385702821201649, 0.13861098404711952, 0.12234644244610911,
     0.14504747169363502, 0.10533723899315661, 0.05613135533212868, 0.13309133183121985],
    [0.10925451524134375, 0.062278145833513765, 0.1349464578382048, 0.14124861976088288,
     0.13397429991017945, 0.10895988689570035, 0.13965991534482436, 0.06469398022442037],
]  # fmt: skip

PROXIES = (
    "epe_nas",
    "fisher",
    "flops",
    "grad_norm",
    "grad_sign",
    "grasp",
    "jacov",
    "l2_norm",
    "nwot",
    "params",
    "plain",
    "snip",
    "synflow",
    "zen",
)


def arch_weights(arch: Architecture, rng: np.random.Generator) -> list[list[float]]:
    """A weights matrix in the study's style: on in (0.1, 0.15], off in [0.05, 0.1]."""
    on = rng.uniform(0.1001, 0.15, size=(arch.depth, 8))
    off = rng.uniform(0.05, 0.1, size=(arch.depth, 8))
    bits = np.array(arch.blocks, dtype=bool)
    return np.where(bits, on, off).tolist()


def write_thesis_dir(
    directory: Path, n: int = 12, seed: int = 0, epochs: tuple[int, ...] = (0, 1, 2)
) -> list[dict]:
    """Write ``n`` architecture files; accuracy grows with depth and a noisy 'zen'."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    archs = sample_architectures(n, seed=seed)
    written = []
    for i, arch in enumerate(archs):
        quality = arch.depth / 10 + rng.normal(0, 0.05)
        acc = 0.90 + 0.05 * quality
        scores = {p: {"score": float(rng.normal()), "time": 0.1} for p in PROXIES}
        scores["zen"]["score"] = float(quality * 100 + rng.normal(0, 1))
        scores["params"]["score"] = int(1000 * arch.depth + i)
        if i == 0:
            scores["grasp"]["score"] = "Nan"
        rec = {
            "weights": arch_weights(arch, rng),
            "val_acc": acc,
            "time": 1000.0 + i,
            "zero_cost_scores": scores,
        }
        for e in epochs:
            rec[f"zero_cost_scores_{e}"] = {
                p: {
                    "score": v["score"] if isinstance(v["score"], str) else v["score"] + e,
                    "time": 0.1,
                }
                for p, v in scores.items()
            }
        key = hashlib.sha256(str(arch).encode()).hexdigest()
        (directory / f"{key}.json").write_text(json.dumps({key: rec}))
        written.append({"arch": arch, "val_acc": acc, "zen": scores["zen"]["score"]})
    return written


def write_nbsz_file(
    path: Path, n: int = 20, seed: int = 0, nested: bool = False, bare: bool = False
) -> dict:
    """A zc_nasbench201_cifar10.json-style file; ``nested`` adds the search-space level,
    ``bare`` stores proxies as numbers instead of {score, time}."""
    rng = np.random.default_rng(seed)
    table = {}
    for i in range(n):
        ops = tuple(int(v) for v in rng.integers(0, 5, size=6))
        arch = str(ops)
        acc = float(80 + sum(ops) + rng.normal())
        rec = {"idx": str(i), "arch": arch, "val_accuracy": acc}
        for p in PROXIES[:-1]:
            score = float(sum(ops) + rng.normal()) if p == "nwot" else float(rng.normal())
            rec[p] = score if bare else {"score": score, "time": 0.01}
        table[arch] = rec
    data = {"cifar10": table}
    if nested:
        data = {"nasbench201": data}
    path.write_text(json.dumps(data))
    return table


def write_gcn_store(path, archs, label, scores, *, settings=None, seed: int = 0) -> Path:
    """A gcn-nas store of ``archs``: one finished run each, labelled ``label(arch, rng)``
    (``label=None``: no runs, an unlabelled store), with initialisation proxies
    ``scores(arch, rng)`` (``{name: (score, seconds, error)}``) recorded under
    ``settings``. ``rng`` is one ``default_rng(seed)``, drawn from in the order label,
    scores, architecture by architecture."""
    from rankzc.store import Benchmark

    rng = np.random.default_rng(seed)
    with Benchmark.create(path, space="gcn-nas", dataset="toy", source="test") as b:
        b.add_architectures(
            {"arch_id": a.arch_id, "space": "gcn-nas", "encoding": str(a), "depth": a.depth}
            for a in archs
        )
        for a in archs:
            if label is not None:
                run, _, _ = b.get_or_create_run(a.arch_id, 0, {"toy": True})
                b.finish_run(run, val_acc=float(label(a, rng)), train_seconds=1)
            b.record_proxies(a.arch_id, -1, scores(a, rng), settings=settings)
    return Path(path)


#: Proxy settings recorded with :func:`ops_scores` (the tiny preset, synthetic data).
OPS_SETTINGS = {
    "preset": "tiny",
    "data": "synthetic",
    "batch_size": 4,
    "seed": 0,
    "device": "cpu",
    "proxies": ["params", "nwot", "zen"],
    "options": {},
}


def ops_label(arch: Architecture, rng: np.random.Generator) -> float:
    """A toy label: 0.5 plus 0.01 per switched-on operator, plus a little noise."""
    return 0.5 + 0.01 * sum(arch.op_counts().values()) + 0.01 * rng.normal()


def ops_scores(arch: Architecture, rng: np.random.Generator) -> dict:
    """Toy initial scores of params (the operator count), nwot (noise) and zen (count +
    noise), as ``write_gcn_store`` takes them."""
    n_ops = sum(arch.op_counts().values())
    return {
        "params": (1e4 * n_ops, 0.1, None),
        "nwot": (float(rng.normal()), 0.1, None),
        "zen": (n_ops + float(rng.normal()), 0.1, None),
    }
