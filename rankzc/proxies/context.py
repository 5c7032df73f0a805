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
  during that same backward (which, where no other part needs the loss gradients,
  runs to the layer outputs only: no weight gradient is computed). The layer outputs
  come from the network's output taps where it reports them
  (:mod:`rankzc.models.taps`: the GCN-NAS network on its fused path, whose
  convolutions run several at a time), else from forward hooks on every layer (which
  make the GCN-NAS network take its unfused path, so that fisher then gets a pass of
  its own, :func:`~rankzc.proxies.compute.share_groups`). Where several layers' outputs
  are summed in one tensor (the three ``conv_d`` branches), each branch's own output is
  recomputed without a graph inside the hook: one convolution per branch instead of a
  second forward and backward of the whole network;
* ``hessian_grad``: ``H g`` by double backward through the loss gradient graph (GraSP),
  the same graph that gives ``loss_grad``;
* ``jacobian``: ``d sum(out) / d x`` for every sample (jacov).

nwot's binary codes need one forward of the whole minibatch (they depend on BatchNorm's
batch statistics, so that forward is never split). Where the gradient pass runs the
whole minibatch at once on the unhooked network (no chunks, no recomputation, no fisher
hooks), its own forward gives them: the same operations on the same values as a forward
of their own, so the same kernel. Otherwise they come from a forward of their own
without a graph (:meth:`ProxyContext._codes_pass`), which, keeping no graph, fits where
the gradient passes do not. With ``recompute`` the gradient pass keeps only each
block's input and recomputes the block in the backward (:func:`recompute_blocks`; same
values, a fraction of the memory); grasp's ``H g`` then runs in a pass of its own, in
``hess_splits`` chunks where needed.

A second, BatchNorm-free pass (the study computes grad_sign and epe_nas on its
``bn=False`` copy, see :func:`bn_free_copy`) serves both of them from one copy of the
network: one forward per sample gives that sample's loss gradient signs
(``bn_free_signs``, grad_sign) and its input Jacobian (``bn_free_jacobian``, epe_nas;
without BatchNorm nothing couples the samples, so this is the Jacobian of the whole
minibatch). It runs one sample at a time whichever of the two asks, so a score does not
depend on which proxies share the pass; it needs no splitting on out-of-memory. It runs
in float64 (definitions version 3), so that signs and Jacobians do not depend on the
summation order (threads, machine); see :func:`exact_sign`. The signs of many samples
are taken at once (:func:`sign_counts`, the same values).

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

from rankzc.models.taps import output_taps

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


#: The clock of every ``seconds`` figure of the shared passes and of
#: :func:`~rankzc.proxies.compute.compute_proxies` (wall time); a benchmark on a loaded
#: machine may set :func:`time.process_time`.
TIMER: Callable[[], float] = time.perf_counter


def now() -> float:
    """:data:`TIMER`'s current reading."""
    return TIMER()


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


#: Bytes of the gradient rows (float64, with :func:`sign_counts`'s temporaries: 32 bytes
#: per weight and row) that the BatchNorm-free pass buffers before taking their signs;
#: at least one row.
SIGN_CHUNK_BYTES = 64 * 2**20


def sign_rows(samples: int, weights: int) -> int:
    """Rows of the BatchNorm-free pass's gradient buffer for ``samples`` samples of
    ``weights`` layer weights: as many as fit in :data:`SIGN_CHUNK_BYTES`, at least 1."""
    return max(1, min(int(samples), SIGN_CHUNK_BYTES // max(1, 32 * int(weights))))


def sign_counts(rows: torch.Tensor, sizes: list[int], rtol: float = SIGN_RTOL) -> torch.Tensor:
    """``sum_r exact_sign(t_r)`` over the rows ``r`` of ``rows``, tensor by tensor.

    Each row holds one sample's gradients, flattened and concatenated, of tensors of
    ``sizes`` entries; the result (float32, one entry per column) is the sum over the
    rows of :func:`exact_sign` of every tensor, each with its own row's scale: the same
    values as calling :func:`exact_sign` per row and tensor (integer sums, exact).
    """
    mag = rows.abs()
    scales = torch.stack(
        [p.amax(1) if p.shape[1] else p.new_zeros(p.shape[0]) for p in mag.split(sizes, dim=1)],
        dim=1,
    )
    limit = torch.repeat_interleave(
        rtol * scales, torch.tensor(sizes, device=rows.device), dim=1, output_size=rows.shape[1]
    )
    signs = torch.where(mag > limit, torch.sign(rows), torch.zeros((), dtype=rows.dtype))
    return signs.sum(0).float()


def code_agreement(codes: torch.Tensor) -> torch.Tensor:
    """``C C^T + (1 - C)(1 - C)^T`` (float64) of binary codes ``C`` (rows x units, bool):
    the number of units where two rows agree.

    Computed as ``2 C C^T - s 1^T - 1 s^T + units`` (``s``: the rows' sums), one product
    instead of two; in float32 when there are fewer than ``2**24`` units, where every
    partial sum is an integer that float32 holds exactly. The entries are integers, so
    the result is exact, whatever the order of summation.
    """
    units = codes.shape[1]
    dtype = torch.float32 if units < 2**24 else torch.float64
    c = codes.to(dtype)
    gram = (c @ c.T).double()
    s = gram.diagonal()  # C C^T's diagonal: the rows' sums
    return 2.0 * gram - s[:, None] - s[None, :] + float(units)


def reports_outputs(model: nn.Module) -> bool:
    """Whether ``model``'s forward reports every layer's output to an output tap
    (:mod:`rankzc.models.taps`; the GCN-NAS network on its fused path)."""
    check = getattr(model, "reports_outputs", None)
    return bool(check()) if callable(check) else False


def fisher_saliency(act: torch.Tensor, grad: torch.Tensor, weight: torch.Tensor) -> float:
    r"""One layer's fisher term from its output ``act`` and that output's gradient:
    :math:`|W[0]| \sum_k \tfrac12 \operatorname{mean}_n (\sum_s a_{nks} g_{nks})^2`
    (channels ``k`` on axis 1 of conv-like outputs, on the last axis where ``weight``
    is 2-D; see :func:`rankzc.proxies.fisher.fisher`)."""
    g = act * grad
    if weight.ndim == 2:
        g = g.reshape(g.shape[0], -1, g.shape[-1]).sum(1)
    elif g.ndim > 2:
        g = g.flatten(2).sum(2)
    fisher_k = 0.5 * g.double().pow(2).sum(0) / g.shape[0]
    return float(fisher_k.sum()) * weight[0].numel()


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


def _tensor_versions(net: nn.Module) -> list[int]:
    """The version counters of ``net``'s parameters and buffers (in-place changes raise
    them)."""
    return [t._version for t in (*net.parameters(), *net.buffers())]


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
        # the BatchNorm-free pass's float64 copy, once that pass is done with it, and
        # the versions of its tensors when it was made (see bn_free_double)
        self._bn_free_net: tuple[nn.Module, list[int]] | None = None

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
        self._bn_free_net = None
        self.splits = splits

    def bn_free_double(self) -> nn.Module:
        """``bn_free_copy(model).double()`` for the caller to change as it likes.

        Where the BatchNorm-free pass has run in this context, its copy (which that pass
        no longer needs) is handed over once instead of making another, provided none of
        its parameters and buffers changed since it was made (their version counters):
        the same values as a fresh copy, without copying. Its modules' train/eval flags
        and ``requires_grad`` are the pass's; the caller sets those it relies on.
        """
        kept, self._bn_free_net = self._bn_free_net, None
        if kept is not None:
            net, versions = kept
            if _tensor_versions(net) == versions:
                return net
        return bn_free_copy(self.model).double()

    # ------------------------------------------------------------------ shared pass
    def _run_shared(self, wants: set[str], splits: int) -> SharedResult:
        res = SharedResult()
        seconds: dict[str, float] = defaultdict(float)
        main_parts = {"loss_grad", "fisher", "hessian_grad", "jacobian"}
        run_main = bool(main_parts & wants)
        # nwot's codes from the gradient pass's own forward when that forward is the
        # codes pass's forward: the whole minibatch at once, on the network's unhooked
        # (fused) path, so the same operations on the same values (see _codes_tap)
        tap_codes = (
            "relu_codes" in wants
            and run_main
            and splits == 1
            and not self.recompute
            and ("fisher" not in wants or reports_outputs(self.model))
        )
        if "relu_codes" in wants and not tap_codes:
            t0 = now()
            self._codes_pass(res)
            seconds["codes"] += now() - t0
        if run_main:
            self._main_pass(wants, splits, res, seconds, tap_codes=tap_codes)
        want_signs = "bn_free_signs" in wants
        want_bn_free_jac = "bn_free_jacobian" in wants
        if want_signs or want_bn_free_jac:
            t0 = now()
            self._bn_free_pass(want_signs, want_bn_free_jac, res)
            seconds["bn_free"] += now() - t0
        res.seconds = dict(seconds)
        return res

    def _bn_free_pass(self, want_signs: bool, want_jac: bool, res: SharedResult) -> None:
        """The BatchNorm-free pass (see the module docstring), on a copy of the model.

        One sample at a time: in float64 on a CPU the convolutions of one sample (small
        im2col products that stay in the cache) cost no more per sample than those of
        the whole minibatch, and the batched alternatives measured slower at depths 4
        and 10 of the ``cpu`` preset on one thread: ``torch.func.vmap`` over ``grad``, or
        over ``vjp`` with both cotangents, in chunks of 1 to 20 samples took 1.05-1.7x
        the loop's time, and one float64 forward of the whole minibatch with hooks for
        the per-sample weight gradients 1.2-2x. What is vectorised is the bookkeeping:
        every sample's gradients go into one flat row of a buffer of up to
        :data:`SIGN_CHUNK_BYTES`, and the signs of all rows are taken together
        (:func:`sign_counts`, the same values as :func:`exact_sign` per sample and
        tensor).
        """
        net = bn_free_copy(self.model).double()
        versions = _tensor_versions(net)
        net.train()
        weights = [m.weight for _, m in find_layers(net)]
        for p in net.parameters():
            p.requires_grad_(False)
        for w in weights:
            w.requires_grad_(want_signs)
        n = self.batch_size
        sizes = [w.numel() for w in weights]
        total = sum(sizes)
        # rows of the gradient buffer: as many samples as fit in SIGN_CHUNK_BYTES
        chunk = sign_rows(n, total)
        buf = counts = None
        if want_signs:
            buf = torch.zeros((chunk, total), dtype=torch.float64, device=self.inputs.device)
            counts = torch.zeros(total, dtype=torch.float32, device=self.inputs.device)
            zeros = [torch.zeros(k, dtype=torch.float64, device=buf.device) for k in sizes]
        jac_rows: list[torch.Tensor] = []
        filled = 0
        with self.seeded():
            for i in range(n):  # one sample at a time, whoever asks
                x = self.inputs[i : i + 1].detach().double().requires_grad_(want_jac)
                out = net(x)
                if want_signs:
                    loss = self.loss_fn(out, self.targets[i : i + 1])
                    grads = torch.autograd.grad(
                        loss, weights, retain_graph=want_jac, allow_unused=True
                    )
                    flat = [
                        z if g is None else g.detach().reshape(-1)
                        for g, z in zip(grads, zeros, strict=True)
                    ]
                    torch.cat(flat, out=buf[filled])
                    filled += 1
                    if filled == chunk:
                        counts.add_(sign_counts(buf, sizes))
                        filled = 0
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
            if filled:
                counts.add_(sign_counts(buf[:filled], sizes))
            res.bn_free_signs = [
                c.view_as(w) for c, w in zip(counts.split(sizes), weights, strict=True)
            ]
        if want_jac:
            res.bn_free_jacobian = torch.cat(jac_rows, 0)
        self._bn_free_net = (net, versions)  # for bn_free_double

    def _codes_tap(self, res: SharedResult):
        """``(hook, finish)``: ``hook`` (for :class:`relu_calls`) adds every ReLU's binary
        codes to the NAS-WOT kernel; ``finish()`` stores the kernel in ``res``.

        One code per row of the ReLU's input (per person in the GCN-NAS network, whose
        persons are folded into the batch axis), as in the study.
        """
        n = self.batch_size
        kernel: list[torch.Tensor] = []
        count = [0]

        def code_hook(a: torch.Tensor) -> None:
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
            kernel[0].add_(code_agreement(a.detach().reshape(rows, -1) > 0))
            count[0] += 1

        def finish() -> None:
            res.nwot_kernel = kernel[0] if kernel else None
            res.relu_count = count[0]

        return code_hook, finish

    def _codes_pass(self, res: SharedResult) -> None:
        """The NAS-WOT kernel: one forward of the whole minibatch without a graph.

        The codes depend on BatchNorm's batch statistics (train mode), so the minibatch is
        never split here; without a graph this forward keeps only the live tensors
        (about a tenth of what the loss gradients keep), so it fits where the gradient
        passes need recomputation or chunks. Where the gradient pass runs the whole
        minibatch at once on the unhooked network, the codes come from its forward
        instead (:meth:`_main_pass`, ``tap_codes``): the same operations on the same
        values, so the same kernel, without this extra forward.
        """
        code_hook, finish = self._codes_tap(res)
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
        finish()

    def _main_pass(
        self,
        wants: set[str],
        splits: int,
        res: SharedResult,
        seconds: dict[str, float],
        tap_codes: bool = False,
    ) -> None:
        """The gradient pass on the model as it is (train mode, BatchNorm active).

        With :attr:`recompute` (and one chunk) the whole minibatch runs at once but each
        block keeps only its input, and recomputes its activations in the backward
        (:func:`recompute_blocks`): the same operations on the same values, so the same
        results as without. Chunks (``splits > 1``) are exact only for models without
        batch coupling: BatchNorm's statistics then come from each chunk.

        With ``tap_codes`` (one chunk, no hooks, no recomputation) its forward also
        gives nwot's codes (:meth:`_codes_tap`). Where fisher is the only part that
        needs the loss's backward, that backward runs to the layer outputs only (the
        gradients fisher reads), not to the weights: no weight gradient is computed.
        """
        model, weights = self.model, self.weights
        n = self.batch_size
        want_fisher = "fisher" in wants
        want_hess = "hessian_grad" in wants
        want_loss_grad = "loss_grad" in wants or want_hess
        want_grad = want_loss_grad or want_fisher
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
        saved_acts: dict[int, tuple] = {}  # by the first layer of an output's parts
        self._fisher_saved = saved_acts  # what is left after the pass (none: tests)
        # gradient edges of the hooked layer outputs (the backward's targets when only
        # fisher needs it)
        out_edges: list = []

        layer_index = {id(m): i for i, (_, m) in enumerate(self.layers)}

        def add_fisher(index: int, act: torch.Tensor, grad: torch.Tensor) -> None:
            fisher[index] += fisher_saliency(act, grad, weights[index]) * chunk_frac[0]

        def tap_output(out: torch.Tensor, parts) -> None:
            """Keep a layer output (or several layers', see rankzc.models.taps) and add
            their fisher saliency when its gradient arrives."""
            if not isinstance(out, torch.Tensor) or not out.requires_grad:
                return
            key = id(parts[0][0])
            if phase[0] == "recompute":
                # the activations this output's gradient hook reads (same values as in
                # the first forward, which does not keep them); only in fisher's
                # backward: another backward (jacov's) recomputes the blocks again, and
                # no hook would take them
                if fisher_on[0]:
                    saved_acts[key] = (out.detach(), parts)
                return
            # what the hook reads, dropped once read (the graph, which holds the hook,
            # may live on through grasp's double backward)
            kept = [] if phase[0] == "first" else [(out.detach(), parts)]

            def grad_hook(grad):
                if not fisher_on[0]:
                    return
                act, kept_parts = kept.pop() if kept else saved_acts.pop(key)
                grad = grad.detach()
                for layer, channels, output in kept_parts:
                    if output is not None:
                        a, g = output(), grad
                    elif channels is None:
                        a, g = act, grad
                    else:
                        a, g = act[:, channels], grad[:, channels]
                    add_fisher(layer_index[id(layer)], a, g)

            out.register_hook(grad_hook)
            out_edges.append(torch.autograd.graph.get_gradient_edge(out))

        def fisher_hook_factory(layer: nn.Module):
            def fwd_hook(module, inp, out):
                tap_output(out, [(layer, None, None)])

            return fwd_hook

        handles = []
        recompute = self.recompute and (want_grad or want_jac)
        blocks = recompute_blocks(model, phase) if recompute else contextlib.nullcontext()
        codes_hook, codes_finish = self._codes_tap(res) if tap_codes else (None, None)
        codes_seconds = [0.0]

        def timed_codes_hook(a: torch.Tensor) -> None:
            t0 = now()
            codes_hook(a)
            codes_seconds[0] += now() - t0

        # fisher: the fused path's output taps where the model reports them, else
        # forward hooks on every layer (which make the GCN-NAS network unfused)
        taps = want_fisher and reports_outputs(model)
        try:
            if want_fisher and not taps:
                for _, layer in self.layers:
                    handles.append(layer.register_forward_hook(fisher_hook_factory(layer)))
            model.train()
            for w in weights:
                w.requires_grad_(True)
            bounds = torch.linspace(0, n, splits + 1).round().long().tolist()
            # the taps stay on through the backward, where recomputed blocks report
            fisher_taps = output_taps(tap_output) if taps else contextlib.nullcontext()
            with self.seeded(), blocks, fisher_taps:
                for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
                    if stop <= start:
                        continue
                    chunk_frac[0] = (stop - start) / n
                    t0 = now()
                    x = self.inputs[start:stop].detach().clone().requires_grad_(want_jac)
                    out_edges.clear()
                    tap = relu_calls(timed_codes_hook) if tap_codes else contextlib.nullcontext()
                    with torch.set_grad_enabled(want_grad or want_jac), tap:
                        out = model(x)
                    if tap_codes:
                        codes_finish()
                    seconds["forward"] += now() - t0
                    g = None
                    if want_grad:
                        t0 = now()
                        loss = self.loss_fn(out, self.targets[start:stop]) * chunk_frac[0]
                        fisher_on[0] = want_fisher
                        # fisher alone: the gradients of the layer outputs, no weight's
                        targets = weights if want_loss_grad else list(out_edges)
                        g = (
                            torch.autograd.grad(
                                loss,
                                targets,
                                retain_graph=want_jac or hess_inline,
                                create_graph=hess_inline,
                                allow_unused=True,
                            )
                            if targets
                            else ()
                        )
                        fisher_on[0] = False
                        saved_acts.clear()
                        if want_loss_grad:
                            for i, gi in enumerate(g):
                                if gi is not None:
                                    gi_d = gi.detach()
                                    grads[i] = gi_d.clone() if grads[i] is None else grads[i] + gi_d
                        seconds["loss_grad"] += now() - t0
                    out_edges.clear()
                    if want_jac:
                        t0 = now()
                        (jx,) = torch.autograd.grad(
                            out,
                            x,
                            grad_outputs=torch.ones_like(out),
                            retain_graph=hess_inline,
                            allow_unused=True,
                            materialize_grads=True,
                        )
                        jac_rows.append(jx.detach().reshape(jx.shape[0], -1))
                        seconds["jacobian"] += now() - t0
                    if hess_inline:
                        t0 = now()
                        hgrads = self._hessian_grad(g, [gi for gi in grads])
                        seconds["hessian_grad"] += now() - t0
                    del out, g
            if want_hess and not hess_inline:
                t0 = now()
                hgrads = self._hessian_grad_chunked(grads, hess_splits)
                seconds["hessian_grad"] += now() - t0
        finally:
            for h in handles:
                h.remove()
        if tap_codes:
            # the ReLU codes' own work, out of the forward's seconds (nwot's share)
            seconds["forward"] -= codes_seconds[0]
            seconds["codes"] += codes_seconds[0]
        if want_loss_grad:
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
