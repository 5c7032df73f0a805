"""Memory needed to score proxies, estimated before running them.

Scoring the study's network at its input size on a CPU can need more memory than the
machine has (the loss gradients keep every activation of the minibatch; grasp's double
backward keeps them twice), and a process that runs out of host memory is killed or
swaps rather than raising. So :func:`plan_scoring` estimates the peak of every pass from a
forward pass of one sample without a graph (a fraction of a second at the study's size)
and chooses, pass by pass, the first way that fits a target (8 GB, or less when less is
available; ``RANKZC_MEMORY_GB``): the gradient pass whole, then with each block's
activations recomputed in the backward (exact), then in chunks; grasp's Hessian pass
whole, then in chunks (with BatchNorm, chunks have their own statistics). nwot's codes
come from a graph-free forward of the whole minibatch and never force a split. It
refuses with a one-line message, before any work, only when a pass cannot fit.

Estimate of one pass: the bytes of every tensor that the network's forward pass creates
(views excluded), times a factor for what the pass keeps for its backward
(:data:`PASS_FACTORS`), plus the parameters (and their gradients) and a fixed overhead.
The factors are the growth of the peak resident memory over the forward's created
bytes, measured one pass at a time on the ``ntu60`` preset at the study's input size
(one thread, CPU; ``benchmarks/proxies.py --memory`` and issue 22): depth 4, a minibatch
of 4: loss gradients 0.61, grasp's pass 1.61, grad_sign's per-sample pass 0.85 (of one
sample), synflow 0.62 (of its float64 forward); depth 10 (every switch on), a minibatch
of 4 or 8: loss gradients 0.49, with recomputed blocks 0.28, no graph (nwot, zen) 0.06
(0.28 at depth 4: the live tensors do not grow with the depth, so those two factors
scale as ``1/depth``, :func:`depth_factor`). Measured base (torch, model, minibatch):
0.4 GB. grasp's factor was measured again in round 12, on the channels-last fused path of
issue 26 (where the round-5 factor let a depth-10 run at the study's size reach 9.5 GB
against a plan of 7.7): 2.39 at depth 4 (chunks of 4 samples), 2.49 and 2.87 at depth 10
(chunks of 5 and 3; the fixed part weighs more in a small chunk), so 2.9.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

#: Multiples of the forward pass's created bytes that each pass holds at its peak.
PASS_FACTORS: dict[str, float] = {
    "grad": 0.7,  # loss gradients / input Jacobian: the autograd graph of one forward
    "hessian": 2.9,  # grasp: a graph built with create_graph, then differentiated again
    "sample": 0.95,  # grad_sign / epe_nas: one sample's graph (of a one-sample forward)
    "float64": 0.7,  # synflow: one all-ones sample in float64 (of that forward)
    "nograd": 0.12,  # zen, nwot: forwards without a graph (live tensors; at depth 10)
    "recompute": 0.28,  # gradient pass, blocks recomputed (measured at depth 10)
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
    recompute: bool = False
    hess_splits: int = 1
    target_bytes: int | None = None

    def describe(self) -> str:
        parts = ", ".join(f"{k} {_gb(v)}" for k, v in sorted(self.passes.items()))
        avail = "unknown" if self.available_bytes is None else _gb(self.available_bytes)
        ways = f"the minibatch in {self.splits} chunk(s)"
        if self.recompute:
            ways += ", block activations recomputed"
        if self.hess_splits > 1:
            ways += f", grasp's Hessian pass in {self.hess_splits} chunks"
        target = "" if self.target_bytes is None else f", target {_gb(self.target_bytes)}"
        return (
            f"estimated peak {_gb(self.peak_bytes)} with {ways} ({parts}); "
            f"available {avail}{target}"
        )

    @property
    def exact(self) -> bool:
        """Whether every proxy is computed as without a plan (no chunks; recomputation
        is exact)."""
        return self.splits == 1 and self.hess_splits == 1


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


def depth_factor(name: str, depth: int | None) -> float:
    """:data:`PASS_FACTORS` of ``name``, for the passes whose factor falls with the depth
    (what they keep is one block's graph or the live tensors, not every block's):
    measured at depth 10, scaled as ``1/depth`` below it (``depth`` None: 4)."""
    base = PASS_FACTORS[name]
    if name not in ("recompute", "nograd"):
        return base
    d = max(4, int(depth or 4))
    return min(PASS_FACTORS["grad"], base * 10 / d)


def pass_bytes(
    per_sample: int,
    params: int,
    batch: int,
    names: list[str],
    zen_batch: int,
    *,
    recompute: bool = False,
    hess_splits: int = 1,
    splits: int = 1,
    depth: int | None = None,
) -> dict[str, int]:
    """Estimated peak bytes of each pass that the proxies ``names`` run (see the module
    docstring), for a minibatch of ``batch`` samples, from the bytes that one sample's
    forward pass creates and the parameters' bytes (:func:`forward_bytes`): the gradient
    pass in ``splits`` chunks, its activations recomputed or not, grasp's pass in
    ``hess_splits`` chunks."""
    from rankzc.proxies.registry import get_proxy

    needs = {part for n in names for part in get_proxy(n).needs}
    # float64 (synflow): every floating-point tensor twice as large
    out: dict[str, int] = {}
    grad_params = 2 * params  # weights and their gradients

    def act(n: float, factor: float) -> int:
        return int(per_sample * n * factor)

    chunk = -(-batch // max(1, splits))
    if needs & {"loss_grad", "jacobian", "fisher"}:
        factor = depth_factor("recompute", depth) if recompute else PASS_FACTORS["grad"]
        out["shared"] = act(chunk, factor) + grad_params
    if "relu_codes" in needs:
        out["nwot"] = act(batch, depth_factor("nograd", depth)) + params
    if "hessian_grad" in needs:
        hchunk = -(-batch // max(1, hess_splits))
        out["grasp"] = act(hchunk, PASS_FACTORS["hessian"]) + 3 * params
    if needs & {"bn_free_signs", "bn_free_jacobian"}:
        out["per-sample"] = act(1, PASS_FACTORS["sample"]) + 3 * params
        if "bn_free_signs" in needs:
            # the float64 gradient rows whose signs are taken together (32 bytes per
            # weight and row, temporaries included; params counts float32 bytes)
            from rankzc.proxies.context import sign_rows

            weights = params // 4
            out["per-sample"] += 32 * weights * sign_rows(batch, weights)
    if "synflow" in names:
        out["synflow"] = act(2, PASS_FACTORS["float64"]) + 4 * params
    if "zen" in names:
        out["zen"] = act(zen_batch, depth_factor("nograd", depth)) + 2 * params
    return out


#: Passes whose minibatch can be split (gradients accumulate over the chunks).
SPLITTABLE = ("shared", "grasp")

#: Memory a plan aims at, at most (the available memory when that is less); the
#: environment variable ``RANKZC_MEMORY_GB`` overrides it.
DEFAULT_BUDGET = 8 * 2**30


def memory_budget(available: int | None) -> int | None:
    """Bytes a plan may use: ``RANKZC_MEMORY_GB`` (else :data:`DEFAULT_BUDGET`), or the
    available memory when that is less."""
    from rankzc.errors import RankzcError

    env = os.environ.get("RANKZC_MEMORY_GB", "").strip()
    budget = DEFAULT_BUDGET
    if env:
        try:
            gb = float(env)
        except ValueError:
            gb = math.nan
        if not (math.isfinite(gb) and 0 < gb <= 2**20):
            raise RankzcError(
                f"RANKZC_MEMORY_GB: must be a number of GB in (0, 1048576], got {env!r}"
            )
        budget = int(gb * 2**30)
    return budget if available is None else min(budget, available)


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
    depth: int | None = None,
    budget: int | None = None,
) -> ScoringPlan:
    """Estimate the peak memory of scoring ``names`` and choose how to run the passes.

    ``per_sample`` and ``params``: see :func:`forward_bytes`. ``zen_batch``: zen's
    Gaussian samples (option ``zen_batch``; default ``batch``). ``depth``: blocks of the
    network (the recomputed and graph-free passes scale with it).

    The target is ``budget`` (default :func:`memory_budget` of ``available``, itself by
    default :func:`available_memory`). Each pass gets the first of its ways that fits:
    the gradient pass unsplit, then with its blocks' activations recomputed (exact), then
    recomputed in 2, 4, ... chunks (at most ``max_splits``; BatchNorm statistics then
    come from each chunk); grasp's Hessian-vector pass whole, then in 2, 4, ... chunks
    (the same caveat). nwot's graph-free forward, the per-sample, synflow and zen passes
    are not split. Raises :class:`~rankzc.errors.RankzcError` with the estimate when a
    pass cannot fit.
    """
    from rankzc.errors import RankzcError

    if available is None:
        available = available_memory(device)
    target = budget if budget is not None else memory_budget(available)
    zb = zen_batch or batch

    def estimate(**kw) -> dict[str, int]:
        return pass_bytes(per_sample, params, batch, names, zen_batch=zb, depth=depth, **kw)

    passes = estimate()
    unsplit = BASE_BYTES + max(passes.values(), default=0)
    if target is None or unsplit <= target:
        return ScoringPlan(unsplit, unsplit, available, 1, dict(passes))

    def fits(v: int) -> bool:
        return BASE_BYTES + v <= target

    limit = max(1, min(max_splits, batch))
    counts = [1]
    while counts[-1] * 2 <= limit:
        counts.append(counts[-1] * 2)
    shared_ways = [(1, False)] + [(k, True) for k in counts]
    splits, recompute = shared_ways[-1]
    for k, rec in shared_ways:
        if "shared" not in passes or fits(estimate(splits=k, recompute=rec).get("shared", 0)):
            splits, recompute = k, rec
            break
    hess_splits = counts[-1]
    for k in counts:
        if "grasp" not in passes or fits(estimate(hess_splits=k).get("grasp", 0)):
            hess_splits = k
            break
    chosen = estimate(splits=splits, recompute=recompute, hess_splits=hess_splits)
    peak = BASE_BYTES + max(chosen.values(), default=0)
    plan = ScoringPlan(
        peak, unsplit, available, splits, chosen, recompute=recompute, hess_splits=hess_splits
    )
    plan.target_bytes = target
    if peak > target:
        over = sorted(k for k, v in chosen.items() if not fits(v))
        raise RankzcError(
            f"not enough memory to score {what or 'these architectures'}: "
            f"{plan.describe()}; {', '.join(over)} cannot fit in {_gb(target)} "
            "(RANKZC_MEMORY_GB sets the target); use a smaller --batch-size, fewer proxies "
            "or a GPU"
        )
    return plan
