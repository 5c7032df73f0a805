"""Memory needed to score proxies, estimated before running them.

Scoring the study's network at its input size on a CPU can need more memory than the
machine has (the loss gradients keep every activation of the minibatch; grasp's double
backward keeps them twice), and a process that runs out of host memory is killed or
swaps rather than raising. So :func:`plan_scoring` estimates the peak of every pass from a
forward pass of one sample without a graph (a fraction of a second at the study's size),
and splits the minibatch of the shared passes, or refuses with a one-line message,
before any work.

Estimate of one pass: the bytes of every tensor that the network's forward pass creates
(views excluded), times a factor for what the pass keeps for its backward
(:data:`PASS_FACTORS`), plus the parameters (and their gradients) and a fixed overhead.
The factors are the growth of the peak resident memory over the forward's created
bytes, measured one pass at a time on the ``ntu60`` preset at the study's input size
(depth 4, a minibatch of 4, one thread, CPU; ``benchmarks/proxies.py --memory``):
loss gradients 0.61, grasp's pass 1.61, grad_sign's per-sample pass 0.85 (of one
sample), synflow 0.62 (of its float64 forward), zen 0.22 and nwot 0.28 (no graph); the
factors below add about 10%. Measured base (torch, model, minibatch): 0.4 GB.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

#: Multiples of the forward pass's created bytes that each pass holds at its peak.
PASS_FACTORS: dict[str, float] = {
    "grad": 0.7,  # loss gradients / input Jacobian: the autograd graph of one forward
    "hessian": 1.8,  # grasp: a graph built with create_graph, then differentiated again
    "sample": 0.95,  # grad_sign / epe_nas: one sample's graph (of a one-sample forward)
    "float64": 0.7,  # synflow: one all-ones sample in float64 (of that forward)
    "nograd": 0.35,  # zen, nwot alone: forwards without a graph (the live tensors)
}
#: Bytes every scoring process needs besides the passes (torch, the model, the batch).
BASE_BYTES = 500 * 2**20


@dataclass
class ScoringPlan:
    """What :func:`plan_scoring` decided.

    Attributes:
        peak_bytes: estimated peak with ``splits`` chunks.
        unsplit_bytes: estimated peak of the whole minibatch in one chunk.
        available_bytes: memory available to the process (None when unknown).
        splits: chunks of the shared passes' minibatch (1 = whole).
        passes: estimated bytes of each pass with ``splits`` chunks.
    """

    peak_bytes: int
    unsplit_bytes: int
    available_bytes: int | None
    splits: int = 1
    passes: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        parts = ", ".join(f"{k} {_gb(v)}" for k, v in sorted(self.passes.items()))
        avail = "unknown" if self.available_bytes is None else _gb(self.available_bytes)
        return (
            f"estimated peak {_gb(self.peak_bytes)} with the minibatch in {self.splits} "
            f"chunk(s) ({parts}); available {avail}"
        )


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB"


def available_memory(device: Any = "cpu") -> int | None:
    """Bytes available for a new allocation: free GPU memory on CUDA, else the host's
    ``MemAvailable`` (Linux), else ``None``."""
    if str(device).startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def forward_bytes(model_fn, input_shape: tuple[int, ...], dtype=None) -> tuple[int, int]:
    """``(created, params)``: bytes of the tensors a forward pass creates (views
    excluded) and of the parameters, for the model that ``model_fn()`` builds, run on
    the CPU without a graph on a zero input of ``input_shape`` (one sample: fast, and
    the meta device would be slower, its kernels being Python)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    dtype = dtype or torch.float32
    created = [0]

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if any(r.alias_info is not None for r in func._schema.returns):
                return out  # a view: no new memory
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    created[0] += t.numel() * t.element_size()
            return out

    with torch.random.fork_rng(devices=[]):
        model = model_fn()  # on the CPU (a few MB of weights); the global RNG is kept
    model = model.to(dtype=dtype)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    x = torch.zeros(input_shape, dtype=dtype)
    model.train()
    with torch.no_grad(), Count():
        model(x)
    return created[0], params


def pass_bytes(
    per_sample: int, params: int, batch: int, names: list[str], zen_batch: int
) -> dict[str, int]:
    """Estimated peak bytes of each pass that the proxies ``names`` run (see the module
    docstring), for the whole minibatch of ``batch`` samples, from the bytes that one
    sample's forward pass creates and the parameters' bytes (:func:`forward_bytes`)."""
    from rankzc.proxies.registry import get_proxy

    needs = {part for n in names for part in get_proxy(n).needs}
    # float64 (synflow): every floating-point tensor twice as large
    out: dict[str, int] = {}
    grad_params = 2 * params  # weights and their gradients

    def act(n: int, factor: float) -> int:
        return int(per_sample * n * factor)

    if needs & {"loss_grad", "jacobian", "fisher"}:
        out["shared"] = act(batch, PASS_FACTORS["grad"]) + grad_params
    elif "relu_codes" in needs:
        out["shared"] = act(batch, PASS_FACTORS["nograd"]) + params
    if "hessian_grad" in needs:
        out["grasp"] = act(batch, PASS_FACTORS["hessian"]) + 3 * params
    if needs & {"bn_free_signs", "bn_free_jacobian"}:
        out["per-sample"] = act(1, PASS_FACTORS["sample"]) + 3 * params
    if "synflow" in names:
        out["synflow"] = act(2, PASS_FACTORS["float64"]) + 4 * params
    if "zen" in names:
        out["zen"] = act(zen_batch, PASS_FACTORS["nograd"]) + 2 * params
    return out


#: Passes whose minibatch can be split (gradients accumulate over the chunks).
SPLITTABLE = ("shared", "grasp")


def plan_scoring(
    per_sample: int,
    params: int,
    batch: int,
    names: list[str],
    *,
    device: Any = "cpu",
    available: int | None = None,
    max_splits: int = 16,
    what: str = "",
    zen_batch: int | None = None,
) -> ScoringPlan:
    """Estimate the peak memory of scoring ``names`` and choose the chunks.

    ``per_sample`` and ``params``: see :func:`forward_bytes`. ``zen_batch``: zen's
    Gaussian samples (option ``zen_batch``; default ``batch``).

    Splits the shared passes' minibatch into 2, 4, ... chunks (at most ``max_splits``)
    until the estimate fits in ``available`` (default: :func:`available_memory`).
    Raises :class:`~rankzc.errors.RankzcError` with the estimate when it cannot fit:
    nwot needs its minibatch in one pass, and per-sample passes cannot be split.
    """
    from rankzc.errors import RankzcError

    if available is None:
        available = available_memory(device)
    passes = pass_bytes(per_sample, params, batch, names, zen_batch=zen_batch or batch)
    unsplit = BASE_BYTES + max(passes.values(), default=0)
    plan = ScoringPlan(unsplit, unsplit, available, 1, dict(passes))
    if available is None or unsplit <= available:
        return plan
    splits = 1
    while True:
        scaled = {k: (int(v / splits) if k in SPLITTABLE else v) for k, v in passes.items()}
        peak = BASE_BYTES + max(scaled.values(), default=0)
        if peak <= available:
            break
        if splits * 2 > max(1, min(max_splits, batch)):
            plan = ScoringPlan(peak, unsplit, available, splits, scaled)
            raise RankzcError(
                f"not enough memory to score {what or 'these architectures'}: "
                f"{plan.describe()}; use a smaller --batch-size, fewer proxies or a GPU"
            )
        splits *= 2
    if splits > 1 and "nwot" in names:
        raise RankzcError(
            f"not enough memory to score {what or 'these architectures'} with nwot, which "
            f"needs the whole minibatch in one pass: estimated {_gb(unsplit)}, available "
            f"{_gb(available)}; use a smaller --batch-size or leave nwot out"
        )
    return ScoringPlan(peak, unsplit, available, splits, scaled)
