"""The one device resolver: ``auto`` / ``cpu`` / ``cuda`` (or ``cuda:N``) to a torch device.

Used by training (``bench build --device``), proxy scoring (``ProxySettings.device``) and
the benchmarks. torch is imported only when a device is resolved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rankzc.errors import RankzcError

if TYPE_CHECKING:
    import torch

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device = "auto", *, what: str = "--device") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cpu``/``cuda[:N]`` as given.

    Raises:
        RankzcError: CUDA asked for but not available, or not a CPU/CUDA device
            (``what`` names the option or field in the message).
    """
    import torch

    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise RankzcError(f"{what}: must be auto, cpu or cuda, got {device!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise RankzcError(f"{what}: must be auto, cpu or cuda, got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RankzcError(f"{what} cuda: no CUDA device is available (use {what} cpu or auto)")
    return dev
