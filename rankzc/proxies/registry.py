"""Registry of zero-cost proxies.

A proxy is a function ``fn(ctx: ProxyContext) -> float`` registered with :func:`proxy`::

    @proxy("synflow", higher_is_better=True, needs_data=False)
    def synflow(ctx): ...

``needs`` names the shared passes of :mod:`rankzc.proxies.context` whose results the proxy
reads (``"forward"``, ``"loss_grad"``, ``"fisher"``, ``"jacobian"``, ``"relu_codes"``,
``"hessian_grad"``); :func:`~rankzc.proxies.compute.compute_proxies` runs each shared pass
once for every proxy that needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from rankzc.proxies.context import ProxyContext

#: Shared-pass parts a proxy may declare in ``needs``.
SHARED_PARTS: tuple[str, ...] = (
    "forward",
    "relu_codes",
    "loss_grad",
    "fisher",
    "jacobian",
    "hessian_grad",
    "bn_free_signs",
    "bn_free_jacobian",
)

#: Version of the proxy definitions. Recorded in every :class:`ProxySettings`, so scores
#: computed under an older definition can be told apart from today's.
DEFINITIONS = 4

#: The proxies whose definition changed in each version (see docs/proxies.md).
DEFINITION_CHANGES: dict[int, tuple[str, ...]] = {
    # version 2 follows the study's code (issue 17): synflow keeps the fixed graph
    # operators signed; grad_sign and epe_nas run without BatchNorm; nwot has one code
    # per person, an absolute ridge and log|det|; zen reads block 9 of 10 and counts
    # BatchNorm2d layers only.
    2: ("epe_nas", "grad_sign", "nwot", "synflow", "zen"),
    # version 3 makes the values independent of the thread count and the machine
    # (issue 22): synflow follows the tie rule in the attention softmaxes and treats
    # them as constants; the BatchNorm-free pass of grad_sign and epe_nas runs in
    # float64 and grad_sign counts entries within 1e-9 of a tensor's largest as 0.
    3: ("epe_nas", "grad_sign", "synflow"),
    # version 4: in the float64 BatchNorm-free pass the attention softmaxes' backward
    # subtracts the column's largest entry's gradient first, so saturated softmaxes give
    # the exact gradients instead of rounding noise (which differed between x86 and ARM:
    # grad_sign of a shipped depth-10 architecture 3.07699 against 3.07537). epe_nas's
    # values did not change (to 1e-13) and it keeps version 3.
    4: ("grad_sign",),
}


def changed_since(version: int) -> list[str]:
    """The proxies whose definition changed after definitions ``version``."""
    out: set[str] = set()
    for v, names in DEFINITION_CHANGES.items():
        if v > int(version):
            out.update(names)
    return sorted(out)


@dataclass(frozen=True)
class ProxySpec:
    """A registered proxy.

    Attributes:
        name: registry name (as in the study, e.g. ``"synflow"``).
        fn: ``fn(ctx) -> float``.
        higher_is_better: whether a larger score predicts a better architecture.
        needs_data: whether the score depends on the minibatch values (not only its shape).
        needs: shared-pass parts the proxy reads (see :data:`SHARED_PARTS`).
        doc: first line of the function's docstring.
        labels: whether the score depends on the minibatch's labels.
        gradients: whether it needs a backward pass.
        paper: where the proxy comes from.
    """

    name: str
    fn: Callable[[ProxyContext], float]
    higher_is_better: bool
    needs_data: bool
    needs: tuple[str, ...]
    doc: str
    labels: bool = False
    gradients: bool = False
    paper: str = ""


PROXIES: dict[str, ProxySpec] = {}


def proxy(
    name: str,
    *,
    higher_is_better: bool = True,
    needs_data: bool = True,
    needs: tuple[str, ...] = (),
    labels: bool = False,
    gradients: bool = False,
    paper: str = "",
) -> Callable[[Callable[[ProxyContext], float]], Callable[[ProxyContext], float]]:
    """Register ``fn(ctx) -> float`` as the proxy ``name`` (a decorator)."""
    unknown = set(needs) - set(SHARED_PARTS)
    if unknown:
        raise ValueError(f"proxy {name!r}: unknown shared parts {sorted(unknown)}")

    def register(fn: Callable[[ProxyContext], float]) -> Callable[[ProxyContext], float]:
        if name in PROXIES:
            raise KeyError(f"proxy {name!r} is registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        PROXIES[name] = ProxySpec(
            name=name,
            fn=fn,
            higher_is_better=higher_is_better,
            needs_data=needs_data,
            needs=tuple(needs),
            doc=doc[0] if doc else "",
            labels=labels,
            gradients=gradients,
            paper=paper,
        )
        return fn

    return register


def _load_all() -> None:
    """Import every proxy module (they register themselves; they import torch)."""
    import rankzc.proxies.compute  # noqa: F401


def registered() -> dict[str, ProxySpec]:
    """:data:`PROXIES` with every proxy module imported."""
    _load_all()
    return PROXIES


def proxy_names() -> list[str]:
    """Names of all registered proxies, sorted."""
    _load_all()
    return sorted(PROXIES)


def get_proxy(name: str) -> ProxySpec:
    """The :class:`ProxySpec` of ``name``; raises RankzcError for an unknown name."""
    from rankzc.errors import RankzcError

    _load_all()

    try:
        return PROXIES[name]
    except KeyError:
        raise RankzcError(f"unknown proxy {name!r}; known: {', '.join(proxy_names())}") from None
