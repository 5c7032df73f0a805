"""Compute many zero-cost proxies of one model on one minibatch, sharing work.

Guarantees:

* shared passes (:class:`~rankzc.proxies.context.ProxyContext`) serve every proxy
  that needs the loss gradients, Fisher hooks, input Jacobian or ReLU codes: one pass
  for the proxy that hooks the forward (fisher) and one for the rest (the loss
  gradients of grad_norm, snip, plain and grasp, grasp's Hessian product, the input
  Jacobian of jacov and, from its forward, nwot's codes), see :func:`share_groups`;
  grad_sign and epe_nas share one pass over a BatchNorm-free copy of the network (as
  the study computes them);
* after every proxy the model is restored exactly (weights, buffers incl. BatchNorm
  running statistics, train/eval flags, ``requires_grad``, ``.grad``), so scores do not
  depend on the order of ``names``;
* a proxy that raises, or gives NaN/inf, is recorded as missing (``score=None``) with
  the reason and a :func:`warnings.warn`; the others go on;
* nwot's codes come from a forward over the whole minibatch: the gradient pass's own
  forward when that pass runs unsplit, else a forward of their own without a graph, so
  they never force the gradient passes to run unsplit;
* ``recompute=True`` runs the gradient pass on the whole minibatch while keeping only
  each block's input (activations recomputed in the backward: the same values, a
  fraction of the memory), and grasp's Hessian-vector product in ``hess_splits``
  chunks; :func:`rankzc.proxies.memory.plan_scoring` chooses these;
* on out-of-memory the shared pass is retried with the minibatch split in 2, 4, ...
  chunks (gradients accumulated, exact for models without batch coupling; with
  BatchNorm each chunk has its own statistics); other proxies that run out of memory
  become missing;
* randomness (zen's Gaussian inputs, dropout) is seeded with ``seed``, without
  touching the global RNG state.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from rankzc.errors import describe_error as _describe

# importing the proxy modules registers them
from rankzc.proxies import (  # noqa: F401
    epe_nas,
    fisher,
    flops,
    grad_norm,
    grad_sign,
    grasp,
    jacov,
    l2_norm,
    nwot,
    params,
    plain,
    snip,
    synflow,
    zen,
)
from rankzc.proxies.context import (
    LossFn,
    ModelState,
    ProxyContext,
    is_oom,
    now,
    reports_outputs,
)
from rankzc.proxies.registry import get_proxy, proxy_names


@dataclass(frozen=True)
class ProxyResult:
    """One proxy's outcome: ``score`` (None when missing), ``seconds``, ``error``."""

    score: float | None
    seconds: float
    error: str | None = None

    def as_tuple(self) -> tuple[float | None, float, str | None]:
        return (self.score, self.seconds, self.error)


def _resolve_names(names: Iterable[str] | str | None) -> list[str]:
    if names is None:
        return proxy_names()
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    out = []
    for name in names:
        spec = get_proxy(name.strip())
        if spec.name not in out:
            out.append(spec.name)
    return out


def compute_proxies(
    model: nn.Module,
    batch: tuple[torch.Tensor, torch.Tensor],
    loss_fn: LossFn | None = None,
    names: Iterable[str] | str | None = None,
    *,
    split_on_oom: bool = True,
    max_splits: int = 16,
    seed: int = 0,
    share: bool = True,
    options: dict | None = None,
    splits: int = 1,
    recompute: bool = False,
    hess_splits: int | None = None,
    progress: Callable[[str, ProxyResult], None] | None = None,
) -> dict[str, ProxyResult]:
    """Score ``model`` with the proxies ``names`` (default: all) on ``batch``.

    Args:
        model: the network; left exactly as it was.
        batch: ``(inputs, targets)``; targets are class indices.
        loss_fn: mean-reduced loss, default :func:`torch.nn.functional.cross_entropy`.
        names: proxy names (a list or a comma-separated string); default all registered.
        split_on_oom: on out-of-memory in the shared pass, retry with the batch split.
        max_splits: largest number of chunks tried.
        seed: seed of all random draws.
        share: share passes between proxies (:func:`share_groups`; ``False``: one pass
            per proxy, for benchmarking).
        splits: chunks of the shared passes' minibatch from the start (e.g. as chosen by
            :func:`rankzc.proxies.memory.plan_scoring`); more are tried on out-of-memory.
            Exact only without batch coupling (BatchNorm: statistics per chunk).
        recompute: recompute each block's activations in the backward of the gradient
            pass instead of keeping them (exact; see
            :func:`~rankzc.proxies.context.recompute_blocks`).
        hess_splits: chunks of grasp's Hessian-vector pass (default ``splits``; exact
            without batch coupling, as ``splits``).
        progress: called as ``progress(name, result)`` after each proxy.
        options: proxy options: ``synflow_bn`` ("identity"|"eval"), ``nwot_ridge``,
            ``zen_block`` ("study"|"last"), ``zen_batch`` (int), ``flops_per`` ("sample"|"batch"), ``n_classes`` (for epe_nas; default: the
            model's ``num_classes``, else ``max(targets) + 1``).

    Returns:
        ``{name: ProxyResult}`` in the order of ``names``.
    """
    if loss_fn is None:
        loss_fn = nn.functional.cross_entropy
    names = _resolve_names(names)
    inputs, targets = batch
    options = dict(options or {})
    if "n_classes" not in options:
        options["n_classes"] = _guess_classes(model)
    state = ModelState(model)
    results: dict[str, ProxyResult] = {}
    try:
        if share:
            for group in share_groups(names, model):
                wants = {part for n in group for part in get_proxy(n).needs}
                ctx = ProxyContext(
                    model, inputs, targets, loss_fn, seed=seed, wants=wants, options=options
                )
                ctx.recompute, ctx.hess_splits = recompute, hess_splits
                results.update(_run(ctx, group, state, split_on_oom, max_splits, splits, progress))
            results = {n: results[n] for n in names}
        else:
            for name in names:
                ctx = ProxyContext(
                    model,
                    inputs,
                    targets,
                    loss_fn,
                    seed=seed,
                    wants=set(get_proxy(name).needs),
                    options=options,
                )
                ctx.recompute, ctx.hess_splits = recompute, hess_splits
                results.update(_run(ctx, [name], state, split_on_oom, max_splits, splits, progress))
    finally:
        state.restore()
    return results


#: Shared-pass parts that hook into the forward pass: fisher's activation hooks make the
#: network take its unfused (per-convolution) path.
HOOKED_PARTS = frozenset({"fisher"})


def share_groups(names: list[str], model: nn.Module | None = None) -> list[list[str]]:
    """The proxies that share one pass: all of them where ``model`` reports its layer
    outputs to taps (:mod:`rankzc.models.taps`, the GCN-NAS network), else those that
    hook the forward (fisher) and the rest.

    Forward hooks make the GCN-NAS network call every convolution on its own (its
    unfused path) and slow every backward that runs through their graph, the loss
    gradients and grasp's double backward included; there one extra forward/backward
    for fisher cost less (measured with the ``cpu`` preset on one thread: all 14
    proxies took 4.69-4.88 s in two passes against 4.91-5.29 s in one at depth 10, and
    the same at depth 4). Taps need no hook: fisher then reads the fused path's layer
    outputs in the one shared pass. nwot shares the unhooked pass either way: its codes
    come from that pass's forward, which is the forward of nwot's own codes pass (the
    whole minibatch, the fused path), so its kernel is the one it gets alone.
    """
    if model is not None and reports_outputs(model):
        return [list(names)] if names else []
    hooked = [n for n in names if HOOKED_PARTS & set(get_proxy(n).needs)]
    rest = [n for n in names if n not in hooked]
    return [g for g in (hooked, rest) if g]


def _guess_classes(model: nn.Module) -> int | None:
    n = getattr(model, "num_classes", None)
    return int(n) if isinstance(n, int) else None


def _run(
    ctx: ProxyContext,
    names: list[str],
    state: ModelState,
    split_on_oom: bool,
    max_splits: int,
    splits: int = 1,
    progress: Callable[[str, ProxyResult], None] | None = None,
) -> dict[str, ProxyResult]:
    shared_users = [n for n in names if get_proxy(n).needs]
    shared_error: str | None = None
    if shared_users:
        shared_error = _run_shared(ctx, state, split_on_oom, max_splits, splits)
    shared_seconds = _attribute(ctx, shared_users) if shared_error is None else {}

    results: dict[str, ProxyResult] = {}
    for name in names:
        spec = get_proxy(name)
        if spec.needs and shared_error is not None:
            results[name] = _missing(name, shared_error, 0.0)
            continue
        t0 = now()
        try:
            score = float(spec.fn(ctx))
            error = None if math.isfinite(score) else f"non-finite score {score}"
        except Exception as err:  # noqa: BLE001 - one proxy must not stop the others
            score, error = None, _describe(err)
            if is_oom(err) and torch.cuda.is_available():
                torch.cuda.empty_cache()
        finally:
            state.restore()
        seconds = now() - t0 + shared_seconds.get(name, 0.0)
        if error is not None:
            results[name] = _missing(name, error, seconds)
        else:
            results[name] = ProxyResult(score, seconds, None)
        if progress is not None:
            progress(name, results[name])
    return results


def _run_shared(
    ctx: ProxyContext, state: ModelState, split_on_oom: bool, max_splits: int, splits: int = 1
) -> str | None:
    """Run the shared pass, splitting on OOM; return an error message or None."""
    splits = max(1, min(int(splits), ctx.batch_size))
    while True:
        ctx.reset_shared(splits)
        try:
            ctx.shared()
            return None
        except Exception as err:  # noqa: BLE001
            if not is_oom(err):
                return _describe(err)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if not split_on_oom or splits * 2 > max(1, min(max_splits, ctx.batch_size)):
                return _describe(err)
            splits *= 2
            if ctx.hess_splits is not None:
                ctx.hess_splits = max(ctx.hess_splits, splits)
        finally:
            state.restore()


def _attribute(ctx: ProxyContext, users: list[str]) -> dict[str, float]:
    """Split the shared pass's seconds between the proxies that used it."""
    out = dict.fromkeys(users, 0.0)
    if not users:
        return out
    shared = ctx.shared()
    bn_free = {"bn_free_signs", "bn_free_jacobian"}
    parts = {
        "forward": lambda needs: bool(set(needs) - bn_free - {"forward", "relu_codes"}),
        "codes": lambda needs: "relu_codes" in needs,
        "loss_grad": lambda needs: bool({"loss_grad", "fisher", "hessian_grad"} & set(needs)),
        "jacobian": lambda needs: "jacobian" in needs,
        "hessian_grad": lambda needs: "hessian_grad" in needs,
        "bn_free": lambda needs: bool(bn_free & set(needs)),
    }
    for part, uses in parts.items():
        seconds = shared.seconds.get(part, 0.0)
        who = [n for n in users if uses(get_proxy(n).needs)]
        for name in who:
            out[name] += seconds / len(who)
    return out


def _missing(name: str, error: str, seconds: float) -> ProxyResult:
    warnings.warn(f"proxy {name!r} is missing: {error}", RuntimeWarning, stacklevel=3)
    return ProxyResult(None, seconds, error)
