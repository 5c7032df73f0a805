"""What a proxy sees: the model, one minibatch, and passes shared between proxies.

Layers are found by the shape of their weights, not by class: a *layer* is any module
with a parameter ``weight`` of ``ndim >= 2`` (``nn.Conv*d``, ``nn.Linear``,
``torch_geometric.nn.Linear``, ...). Layer-wise proxies (as in zero-cost-nas / NASLib)
score these weights only; biases, BatchNorm affine parameters and free parameters are
not scored.

The shared pass (:meth:`ProxyContext.shared`) runs ONE forward pass of the minibatch in
train mode and, from that one graph, every part that the requested proxies need:

* ``relu_codes``: every ReLU call (module or functional, see :class:`relu_calls`)
  adds its binary codes to the NAS-WOT kernel;
* ``loss_grad``: gradients of the loss w.r.t. the layer weights;
* ``fisher``: tensor hooks on the layer outputs accumulate activation x gradient
  during that same backward;
* ``hessian_grad``: ``H g`` by double backward through the loss gradient graph (GraSP);
* ``jacobian``: ``d sum(out) / d x`` for every sample (jacov, EPE-NAS).

nwot's binary codes come from a forward of their own over the whole minibatch without a
graph (:meth:`ProxyContext._codes_pass`): the codes depend on BatchNorm's batch
statistics, so that forward is never split, and, keeping no graph, it fits where the
gradient passes do not. With ``recompute`` the gradient pass keeps only each block's
input and recomputes the block in the backward (:func:`recompute_blocks`; same values,
a fraction of the memory); grasp's ``H g`` then runs in a pass of its own, in
``hess_splits`` chunks where needed.

A second, BatchNorm-free pass (the study computes grad_sign and epe_nas on its
``bn=False`` copy, see :func:`bn_free_copy`) serves both of them from one copy of the
network: one forward per sample gives that sample's loss gradient signs
(``bn_free_signs``, grad_sign) and its input Jacobian (``bn_free_jacobian``, epe_nas;
without BatchNorm nothing couples the samples, so this is the Jacobian of the whole
minibatch). It runs one sample at a time whichever of the two asks, so a score does not
depend on which proxies share the pass; it needs no splitting on out-of-memory. It runs
in float64 (definitions version 3), so that signs and Jacobians do not depend on the
summation order (threads, machine); see :func:`exact_sign`.

Its seconds are attributed to proxies as follows: the forward time is split equally
between all proxies that use the pass; the time of each backward part is split
equally between the proxies that need that part.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


#: Relative dead zone of :func:`exact_sign`.
SIGN_RTOL = 1e-9


def exact_sign(g: torch.Tensor, rtol: float = SIGN_RTOL) -> torch.Tensor:
    """float32 ``sign(g)`` of a float64 gradient, entries within ``rtol * max|g|`` of 0 as 0.

    An entry that is zero in exact arithmetic (terms that cancel) comes out of a
    backward pass as rounding noise whose sign follows the summation order, so the
    thread count and the machine. In float64 that noise is about 1e-16 of the
    tensor's largest entry, far below the dead zone; real gradients are far above it.
    """
    scale = g.abs().amax()
    keep = g.abs() > rtol * scale
    return torch.where(keep, torch.sign(g), torch.zeros_like(g)).float()


def find_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules whose parameter ``weight`` has ``ndim >= 2`` (conv- or linear-like)."""
    layers = []
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if (
            isinstance(weight, nn.Parameter)
            and not isinstance(weight, nn.parameter.UninitializedParameter)
            and weight.ndim >= 2
        ):
            layers.append((name, module))
    return layers


def bn_free_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every BatchNorm layer replaced by the identity.

    This is the study's ``bn=False`` copy (as NASLib's ``get_prunable_copy(bn=False)``),
    used by synflow, grad_sign and epe_nas. ``model`` itself is not changed.
    """
    net = copy.deepcopy(model)
    _strip_batchnorm(net)
    return net


def _strip_batchnorm(net: nn.Module) -> None:
    for name, child in list(net.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(net, name, nn.Identity())
        else:
            _strip_batchnorm(child)


_RELUS = (
    torch.nn.functional.relu,
    torch.nn.functional.relu_,
    torch.relu,
    torch.relu_,
    torch.Tensor.relu,
    torch.Tensor.relu_,
)


class relu_calls(TorchFunctionMode):
    """Context manager calling ``callback(output)`` after every ReLU of a forward pass.

    Catches ``nn.ReLU`` modules and functional calls (``F.relu``, ``torch.relu``,
    ``Tensor.relu``, in place or not) alike, so models need not use ReLU modules.
    """

    def __init__(self, callback: Callable[[torch.Tensor], None]) -> None:
        super().__init__()
        self.callback = callback

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in _RELUS and isinstance(out, torch.Tensor):
            self.callback(out)
        return out


@contextlib.contextmanager
def recompute_blocks(model: nn.Module, phase: list | None = None):
    """Inside the block, every child of an ``nn.ModuleList`` of ``model`` (the blocks of
    the GCN-NAS network) keeps only its input for the backward and recomputes its
    activations there (:func:`torch.utils.checkpoint.checkpoint`, non-reentrant, the
    random state of its first forward restored). The recomputation runs the same
    operations on the same values (the whole minibatch, so the same BatchNorm
    statistics), so gradients are the same as without; the memory is one block's graph
    plus every block's input instead of every block's graph. ``phase[0]`` is
    ``"first"`` during a block's first forward, ``"recompute"`` during its recomputation,
    else unchanged (for hooks that must not keep activations)."""
    from torch.utils.checkpoint import checkpoint

    phase = phase if phase is not None else [None]
    blocks = [b for m in model.modules() if isinstance(m, nn.ModuleList) for b in m]
    patched = []

    def wrap(block: nn.Module):
        forward = block.forward
        calls = [0]

        def run(*args, **kwargs):
            before = phase[0]
            phase[0] = "first" if calls[0] == 0 else "recompute"
            calls[0] += 1
            try:
                return forward(*args, **kwargs)
            finally:
                phase[0] = before

        def checkpointed(*args, **kwargs):
            calls[0] = 0
            return checkpoint(run, *args, use_reentrant=False, **kwargs)

        return checkpointed

    try:
        for block in blocks:
            if "forward" not in block.__dict__:
                block.forward = wrap(block)
                patched.append(block)
        with torch.utils.checkpoint.set_checkpoint_early_stop(False):
            yield
    finally:
        for block in patched:
            del block.forward


def is_oom(err: BaseException) -> bool:
    """Whether ``err`` is an out-of-memory error (CUDA or host)."""
    if isinstance(err, torch.OutOfMemoryError):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


class ModelState:
    """A snapshot of everything a proxy may change on a model, and its restore.

    Saves parameters and buffers (``state_dict`` incl. BatchNorm running stats), each
    module's train/eval flag, each parameter's ``requires_grad`` and ``.grad``.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.state = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
        self.training = {m: m.training for m in model.modules()}
        self.params = list(model.parameters())
        self.requires_grad = [p.requires_grad for p in self.params]
        self.grads = [None if p.grad is None else p.grad.detach().clone() for p in self.params]

    @torch.no_grad()
    def restore(self) -> None:
        current = self.model.state_dict(keep_vars=True)
        for key, value in self.state.items():
            target = current[key]
            if target.dtype != value.dtype or target.shape != value.shape:
                target.data = value.clone()
            else:
                target.copy_(value)
        for module, flag in self.training.items():
            module.training = flag
        for p, flag, grad in zip(self.params, self.requires_grad, self.grads, strict=True):
            p.requires_grad_(flag)
            p.grad = None if grad is None else grad.clone()


@dataclass
class SharedResult:
    """Results of the shared pass (see the module docstring)."""

    loss_grads: list[torch.Tensor | None] | None = None
    fisher: list[float] | None = None
    hessian_grads: list[torch.Tensor | None] | None = None
    jacobian: torch.Tensor | None = None
    nwot_kernel: torch.Tensor | None = None
    bn_free_signs: list[torch.Tensor] | None = None
    bn_free_jacobian: torch.Tensor | None = None
    relu_count: int = 0
    relu_error: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)


class ProxyContext:
    """Model, minibatch and shared passes for one call of ``compute_proxies``.

    Args:
        model: the network (left exactly as it was after every proxy).
        inputs: the minibatch inputs, first axis = samples.
        targets: class labels (int64), one per sample.
        loss_fn: a mean-reduced loss ``loss_fn(outputs, targets)``.
        seed: seed of every random draw a proxy makes.
        wants: shared-pass parts needed by the proxies of this call.
        options: proxy options (e.g. ``synflow_bn``, ``nwot_ridge``).
    """

    def __init__(
        self,
        model: nn.Module,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        loss_fn: LossFn,
        *,
        seed: int = 0,
        wants: set[str] | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.inputs = inputs
        self.targets = targets
        self.loss_fn = loss_fn
        self.seed = seed
        self.wants = set(wants or ())
        self.options = dict(options or {})
        self.layers = find_layers(model)
        self.splits = 1
        #: chunks of grasp's Hessian-vector pass (None: as ``splits``)
        self.hess_splits: int | None = None
        #: recompute each block's activations in the backward (see :func:`recompute_blocks`)
        self.recompute = False
        self._shared: SharedResult | None = None

    @property
    def weights(self) -> list[nn.Parameter]:
        return [m.weight for _, m in self.layers]

    @property
    def batch_size(self) -> int:
        return int(self.inputs.shape[0])

    def generator(self, offset: int = 0) -> torch.Generator:
        """A CPU generator seeded with ``seed + offset``."""
        return torch.Generator().manual_seed(int(self.seed) + int(offset))

    @contextlib.contextmanager
    def seeded(self):
        """Seed torch's global generators (CPU and the input's CUDA device) with ``seed``
        inside the block, and restore their previous states afterwards."""
        device = self.inputs.device
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(self.seed))
            yield

    def shared(self) -> SharedResult:
        """The shared pass, computed once (on the first call) for all ``wants``."""
        if self._shared is None:
            self._shared = self._run_shared(self.wants, self.splits)
        return self._shared

    def reset_shared(self, splits: int) -> None:
        """Forget the shared pass; the next :meth:`shared` runs it in ``splits`` chunks."""
        self._shared = None
        self.splits = splits

    # ------------------------------------------------------------------ shared pass
    def _run_shared(self, wants: set[str], splits: int) -> SharedResult:
        res = SharedResult()
        seconds: dict[str, float] = defaultdict(float)
        if "relu_codes" in wants:
            t0 = time.perf_counter()
            self._codes_pass(res)
            seconds["codes"] += time.perf_counter() - t0
        main_parts = {"loss_grad", "fisher", "hessian_grad", "jacobian"}
        if main_parts & wants:
            self._main_pass(wants, splits, res, seconds)
        want_signs = "bn_free_signs" in wants
        want_bn_free_jac = "bn_free_jacobian" in wants
        if want_signs or want_bn_free_jac:
            t0 = time.perf_counter()
            self._bn_free_pass(want_signs, want_bn_free_jac, res)
            seconds["bn_free"] += time.perf_counter() - t0
        res.seconds = dict(seconds)
        return res

    def _bn_free_pass(self, want_signs: bool, want_jac: bool, res: SharedResult) -> None:
        """The BatchNorm-free pass (see the module docstring), on a copy of the model."""
        net = bn_free_copy(self.model).double()
        net.train()
        weights = [m.weight for _, m in find_layers(net)]
        for p in net.parameters():
            p.requires_grad_(False)
        for w in weights:
            w.requires_grad_(want_signs)
        n = self.batch_size
        bounds = list(range(n + 1))  # one sample at a time, whoever asks
        signs = [torch.zeros_like(w, dtype=torch.float32) for w in weights] if want_signs else None
        jac_rows: list[torch.Tensor] = []
        with self.seeded():
            for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
                if stop <= start:
                    continue
                x = self.inputs[start:stop].detach().double().requires_grad_(want_jac)
                out = net(x)
                if want_signs:
                    loss = self.loss_fn(out, self.targets[start:stop])
                    grads = torch.autograd.grad(
                        loss, weights, retain_graph=want_jac, allow_unused=True
                    )
                    for acc, g in zip(signs, grads, strict=True):
                        if g is not None:
                            acc.add_(exact_sign(g.detach()))
                if want_jac:
                    (jx,) = torch.autograd.grad(
                        out,
                        x,
                        grad_outputs=torch.ones_like(out),
                        allow_unused=True,
                        materialize_grads=True,
                    )
                    jac_rows.append(jx.detach().float().reshape(jx.shape[0], -1))
                del out
        if want_signs:
            res.bn_free_signs = signs
        if want_jac:
            res.bn_free_jacobian = torch.cat(jac_rows, 0)

    def _codes_pass(self, res: SharedResult) -> None:
        """The NAS-WOT kernel: one forward of the whole minibatch without a graph.

        The codes depend on BatchNorm's batch statistics (train mode), so the minibatch is
        never split here; without a graph this forward keeps only the live tensors
        (about a tenth of what the loss gradients keep), so it fits where the gradient
        passes need recomputation or chunks.
        """
        n = self.batch_size
        kernel: list[torch.Tensor] = []
        count = [0]

        def code_hook(a: torch.Tensor) -> None:
            # one binary code per row of the ReLU's input (per person in the GCN-NAS
            # network, whose persons are folded into the batch axis), as in the study
            if res.relu_error is not None:
                return
            rows = int(a.shape[0])
            if rows % n:
                res.relu_error = (
                    f"a ReLU input has {rows} rows, not a multiple of the batch size {n}"
                )
                return
            if not kernel:
                kernel.append(torch.zeros(rows, rows, dtype=torch.float64, device=a.device))
            elif kernel[0].shape[0] != rows:
                res.relu_error = (
                    f"ReLU inputs have {kernel[0].shape[0]} and {rows} rows; one code per "
                    "row needs the same number of rows in every ReLU"
                )
                return
            x = (a.detach().reshape(rows, -1) > 0).to(torch.float64)  # relu(a) > 0 iff a > 0
            kernel[0].add_(x @ x.T).add_((1.0 - x) @ (1.0 - x).T)
            count[0] += 1

        self.model.train()
        try:
            with self.seeded(), torch.no_grad(), relu_calls(code_hook):
                self.model(self.inputs.detach())
        except Exception as err:
            if not is_oom(err):
                raise
            # the codes cannot be split (BatchNorm statistics): nwot alone goes missing
            res.relu_error = (
                "the NAS-WOT kernel needs the whole minibatch in one forward pass: "
                f"{type(err).__name__}: {err}"
            )
            return
        res.nwot_kernel = kernel[0] if kernel else None
        res.relu_count = count[0]

    def _main_pass(
        self, wants: set[str], splits: int, res: SharedResult, seconds: dict[str, float]
    ) -> None:
        """The gradient pass on the model as it is (train mode, BatchNorm active).

        With :attr:`recompute` (and one chunk) the whole minibatch runs at once but each
        block keeps only its input, and recomputes its activations in the backward
        (:func:`recompute_blocks`): the same operations on the same values, so the same
        results as without. Chunks (``splits > 1``) are exact only for models without
        batch coupling: BatchNorm's statistics then come from each chunk.
        """
        model, weights = self.model, self.weights
        n = self.batch_size
        want_fisher = "fisher" in wants
        want_hess = "hessian_grad" in wants
        want_grad = "loss_grad" in wants or want_fisher or want_hess
        want_jac = "jacobian" in wants
        hess_splits = self.hess_splits or splits
        # GraSP in the same graph (one double backward) or in a pass of its own
        hess_inline = want_hess and splits == 1 and hess_splits == 1 and not self.recompute

        grads: list[torch.Tensor | None] = [None] * len(weights)
        hgrads: list[torch.Tensor | None] = [None] * len(weights)
        fisher = [0.0] * len(weights)
        jac_rows: list[torch.Tensor] = []
        fisher_on = [False]
        chunk_frac = [1.0]
        phase = [None]  # inside a recomputed block: "first" forward or "recompute"
        saved_acts: dict[int, torch.Tensor] = {}

        def fisher_hook_factory(index: int, linear_like: bool):
            def fwd_hook(module, inp, out):
                if not isinstance(out, torch.Tensor) or not out.requires_grad:
                    return
                if phase[0] == "recompute":
                    # the activation this layer's gradient hook reads (same values as
                    # in the first forward, which does not keep it)
                    saved_acts[index] = out.detach()
                    return
                kept = None if phase[0] == "first" else out.detach()

                def grad_hook(grad):
                    if not fisher_on[0]:
                        return
                    act = kept if kept is not None else saved_acts.pop(index)
                    g = act * grad.detach()
                    if linear_like:
                        g = g.reshape(g.shape[0], -1, g.shape[-1]).sum(1)
                    elif g.ndim > 2:
                        g = g.flatten(2).sum(2)
                    rows = g.shape[0]
                    fisher_k = 0.5 * g.double().pow(2).sum(0) * chunk_frac[0] / rows
                    w = weights[index]
                    per_channel = w[0].numel()
                    fisher[index] += float(fisher_k.sum()) * per_channel

                out.register_hook(grad_hook)

            return fwd_hook

        handles = []
        recompute = self.recompute and (want_grad or want_jac)
        blocks = recompute_blocks(model, phase) if recompute else contextlib.nullcontext()
        try:
            if want_fisher:
                for i, (_, layer) in enumerate(self.layers):
                    hook = fisher_hook_factory(i, layer.weight.ndim == 2)
                    handles.append(layer.register_forward_hook(hook))
            model.train()
            for w in weights:
                w.requires_grad_(True)
            bounds = torch.linspace(0, n, splits + 1).round().long().tolist()
            with self.seeded(), blocks:
                for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
                    if stop <= start:
                        continue
                    chunk_frac[0] = (stop - start) / n
                    t0 = time.perf_counter()
                    x = self.inputs[start:stop].detach().clone().requires_grad_(want_jac)
                    with torch.set_grad_enabled(want_grad or want_jac):
                        out = model(x)
                    seconds["forward"] += time.perf_counter() - t0
                    g = None
                    if want_grad:
                        t0 = time.perf_counter()
                        loss = self.loss_fn(out, self.targets[start:stop]) * chunk_frac[0]
                        fisher_on[0] = want_fisher
                        g = torch.autograd.grad(
                            loss,
                            weights,
                            retain_graph=want_jac or hess_inline,
                            create_graph=hess_inline,
                            allow_unused=True,
                        )
                        fisher_on[0] = False
                        saved_acts.clear()
                        for i, gi in enumerate(g):
                            if gi is not None:
                                gi_d = gi.detach()
                                grads[i] = gi_d.clone() if grads[i] is None else grads[i] + gi_d
                        seconds["loss_grad"] += time.perf_counter() - t0
                    if want_jac:
                        t0 = time.perf_counter()
                        (jx,) = torch.autograd.grad(
                            out,
                            x,
                            grad_outputs=torch.ones_like(out),
                            retain_graph=hess_inline,
                            allow_unused=True,
                            materialize_grads=True,
                        )
                        jac_rows.append(jx.detach().reshape(jx.shape[0], -1))
                        seconds["jacobian"] += time.perf_counter() - t0
                    if hess_inline:
                        t0 = time.perf_counter()
                        hgrads = self._hessian_grad(g, [gi for gi in grads])
                        seconds["hessian_grad"] += time.perf_counter() - t0
                    del out, g
            if want_hess and not hess_inline:
                t0 = time.perf_counter()
                hgrads = self._hessian_grad_chunked(grads, hess_splits)
                seconds["hessian_grad"] += time.perf_counter() - t0
        finally:
            for h in handles:
                h.remove()
        if want_grad:
            res.loss_grads = grads
        if want_fisher:
            res.fisher = fisher
        if want_hess:
            res.hessian_grads = hgrads
        if want_jac:
            res.jacobian = torch.cat(jac_rows, 0)

    def _hessian_grad_chunked(
        self, g_full: list[torch.Tensor | None], splits: int
    ) -> list[torch.Tensor | None]:
        """GraSP's ``H g`` in a pass of its own, after the whole minibatch's ``g``:
        ``sum_c d/dw (stopgrad(g) . g_c(w))`` over ``splits`` chunks ``c`` (each chunk's
        loss weighted by its share of the minibatch). One chunk gives exactly the
        single-pass value; more are exact without batch coupling (with BatchNorm each
        chunk's ``g_c`` uses that chunk's statistics)."""
        n = self.batch_size
        weights = self.weights
        hgrads: list[torch.Tensor | None] = [None] * len(weights)
        bounds = torch.linspace(0, n, splits + 1).round().long().tolist()
        with self.seeded():
            for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
                if stop <= start:
                    continue
                frac = (stop - start) / n
                out = self.model(self.inputs[start:stop].detach())
                loss = self.loss_fn(out, self.targets[start:stop])
                if splits > 1:
                    loss = loss * frac
                gc = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
                part = self._hessian_grad(gc, g_full)
                hgrads = [
                    a if b is None else (b if a is None else a + b)
                    for a, b in zip(hgrads, part, strict=True)
                ]
                del out, loss, gc, part
        return hgrads

    def _hessian_grad(
        self, g_graph: tuple[torch.Tensor | None, ...], g_stop: list[torch.Tensor | None]
    ) -> list[torch.Tensor | None]:
        """``H g``: gradient of ``sum(stopgrad(g) * g(w))`` w.r.t. the layer weights."""
        z = None
        for gi, si in zip(g_graph, g_stop, strict=True):
            if gi is not None and si is not None and gi.requires_grad:
                term = (si.detach() * gi).sum()
                z = term if z is None else z + term
        if z is None:
            return [None] * len(g_stop)
        hg = torch.autograd.grad(z, self.weights, allow_unused=True)
        return [None if h is None else h.detach() for h in hg]
