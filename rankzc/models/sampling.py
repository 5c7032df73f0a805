r"""Gaussian draws that are the same numbers on every CPU.

Initial weights (:mod:`rankzc.models.init`) and zen's Gaussian inputs are drawn with
``torch.Tensor.normal_``. For a contiguous ``float32`` tensor of at least 16 elements, ATen
turns its uniform draws into Gaussian ones (Box-Muller) with two different kernels:

- on x86 CPUs with AVX2 or AVX-512 (``torch.backends.cpu.get_cpu_capability()``), a
  vectorised kernel with Cephes-style polynomial ``log``, ``sin`` and ``cos`` in float32;
- everywhere else (ARM, e.g. Apple silicon; x86 without AVX2), the C library's
  ``std::log``, ``std::cos`` and ``std::sin``.

The two differ in the last bits (38 % of a million standard draws, by at most
:math:`2.3 \cdot 10^{-6}`), so the same seed gave slightly different networks on the two
kinds of CPU. That is enough to move the sign- and correlation-based proxies (grad_sign,
epe_nas) by about :math:`2 \cdot 10^{-4}` relative: measured on this project's shipped
store with ATen's portable kernels (``ATEN_CPU_CAPABILITY=default``).

:func:`normal_` therefore defines the draw as the vectorised kernel's, and computes it
itself where ATen would not: the uniforms come from ``torch.rand`` (integer arithmetic,
the same on every machine, and the same generator stream as ``normal_``), and the
transform repeats the vectorised kernel's float32 operations in NumPy, each rounded as
the kernel rounds it (:func:`_fma`: the fused multiply-adds of the compiled kernel). On
a CPU that runs the vectorised kernel it simply calls ``normal_``; the tests compare the
two bit for bit on a million draws, and pin the first draws of a seed.

The Box-Muller step, per block of 16 uniforms :math:`u_0..u_{15}`, for :math:`j < 8`:

.. math::
    r_j = \sqrt{-2 \log(1 - u_j)}, \quad \theta_j = 2\pi u_{j+8}, \quad
    x_j = \mu + \sigma\, r_j \cos\theta_j, \quad x_{j+8} = \mu + \sigma\, r_j \sin\theta_j

and, when the number of elements is not a multiple of 16, the last 16 elements are drawn
again from 16 fresh uniforms (ATen's rule).
"""

from __future__ import annotations

import math

import numpy as np
import torch

_F32 = np.float32

#: ATen CPU capabilities whose ``normal_`` runs the vectorised kernel
NATIVE_CAPABILITIES = frozenset({"AVX2", "AVX512"})


def native() -> bool:
    """Whether this process's ``torch.Tensor.normal_`` is the vectorised kernel (so
    :func:`normal_` can call it)."""
    return torch.backends.cpu.get_cpu_capability() in NATIVE_CAPABILITIES


def _fma(a: np.ndarray, b, c) -> np.ndarray:
    """float32 ``a * b + c`` rounded once (a fused multiply-add).

    The product of two float32 numbers is exact in float64, and so is its float64 sum
    with ``c`` unless that sum is rounded; rounding it again to float32 is then wrong
    only where the float64 sum lands exactly on a float32 tie (or in float32's subnormal
    range). Those few entries are redone with the exact error of the sum (two-sum)."""
    p = np.asarray(a, dtype=np.float64) * np.asarray(b, dtype=np.float64)
    s = p + np.asarray(c, dtype=np.float64)
    bits = np.ascontiguousarray(s).view(np.int64)
    # a float32 tie: 1 then 28 zero bits below float32's last mantissa bit
    suspect = ((bits & 0x1FFFFFFF) == 0x10000000) | (np.abs(s) < 2.0**-125)
    r = s.astype(_F32)
    if suspect.any():
        i = np.nonzero(suspect)
        c = np.broadcast_to(np.asarray(c, dtype=np.float64), s.shape)
        r[i] = _fma_exact(np.broadcast_to(p, s.shape)[i], c[i])
    return r


def _fma_exact(p: np.ndarray, c: np.ndarray) -> np.ndarray:
    """float32 of ``p + c`` (float64 ``p`` exact) rounded once: the float64 sum nudged by
    one float64 step towards its exact error where it sits on a float32 tie."""
    s = p + c
    v = s - p  # two-sum: e is the exact error of s
    e = (p - (s - v)) + (c - v)
    r = s.astype(_F32)
    lo = r.astype(np.float64)
    other = np.nextafter(r, np.where(s > lo, _F32(np.inf), _F32(-np.inf))).astype(np.float64)
    tie = (s == (lo + other) / 2) & (e != 0)
    s = np.where(tie, np.nextafter(s, np.where(e > 0, np.inf, -np.inf)), s)
    return s.astype(_F32)


def _consts(*values: float) -> list[np.float32]:
    return [_F32(v) for v in values]


# Cephes single-precision coefficients (Moshier), as the vectorised kernel uses them
_LOG_P = _consts(
    7.0376836292e-2,
    -1.1514610310e-1,
    1.1676998740e-1,
    -1.2420140846e-1,
    1.4249322787e-1,
    -1.6668057665e-1,
    2.0000714765e-1,
    -2.4999993993e-1,
    3.3333331174e-1,
)
_LOG_Q1, _LOG_Q2, _SQRT_HALF = _consts(-2.12194440e-4, 0.693359375, 0.707106781186547524)
_DP = _consts(-0.78515625, -2.4187564849853515625e-4, -3.77489497744594108e-8)
_SIN_P = _consts(-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1)
_COS_P = _consts(2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2)
_FOUR_OVER_PI = _F32(1.27323954473516)
_MIN_NORMAL = np.array([0x00800000], dtype=np.int32).view(_F32)[0]


def _log(x: np.ndarray) -> np.ndarray:
    """The kernel's float32 natural logarithm (``x > 0``): exponent and mantissa in
    :math:`[\\sqrt{1/2}, \\sqrt 2)`, then a degree-9 polynomial."""
    x = np.maximum(x, _MIN_NORMAL)
    bits = x.view(np.int32)
    e = ((bits >> 23) - 0x7F).astype(_F32) + _F32(1)
    m = ((bits & np.int32(~0x7F800000)) | np.int32(0x3F000000)).view(_F32)
    small = m < _SQRT_HALF
    x = (m - _F32(1)) + np.where(small, m, _F32(0))
    e = e - np.where(small, _F32(1), _F32(0))
    z = x * x
    y = np.full_like(x, _LOG_P[0])
    for p in _LOG_P[1:]:
        y = _fma(y, x, p)
    y = y * x
    y = _fma(y, z, e * _LOG_Q1)
    y = _fma(z, _F32(-0.5), y)
    return _fma(e, _LOG_Q2, x + y)


def _sincos(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's float32 sine and cosine: reduction by multiples of :math:`\\pi/4` in
    three parts, then one polynomial per octant."""
    negative = np.signbit(x)
    x = np.abs(x)
    j = (x * _FOUR_OVER_PI).astype(np.int32)
    j = (j + 1) & ~1
    y = j.astype(_F32)
    for dp in _DP:
        x = _fma(y, dp, x)
    sin_negative = negative ^ ((j & 4) != 0)
    cos_negative = (~(j - 2) & 4) != 0
    first = (j & 2) == 0
    z = x * x
    yc = _fma(np.full_like(z, _COS_P[0]), z, _COS_P[1])
    yc = _fma(yc, z, _COS_P[2])
    yc = _fma(yc * z, z, -(z * _F32(0.5))) + _F32(1)
    ys = _fma(np.full_like(z, _SIN_P[0]), z, _SIN_P[1])
    ys = _fma(ys, z, _SIN_P[2])
    ys = _fma(ys * z, x, x)
    s = np.where(first, ys, yc)
    c = np.where(first, yc, ys)
    return np.where(sin_negative, -s, s), np.where(cos_negative, -c, c)


def _box_muller(u: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Blocks of 16 float32 uniforms (rows) to Gaussian draws."""
    u = u.reshape(-1, 16)
    radius = np.sqrt(_F32(-2) * _log(_F32(1) - u[:, :8]))
    s, c = _sincos(_F32(2.0 * math.pi) * u[:, 8:])
    out = np.empty_like(u)
    out[:, :8] = _fma(radius * c, _F32(std), _F32(mean))
    out[:, 8:] = _fma(radius * s, _F32(std), _F32(mean))
    return out.reshape(-1)


def normal_values(
    n: int, mean: float = 0.0, std: float = 1.0, generator: torch.Generator | None = None
) -> np.ndarray:
    """``n >= 16`` float32 draws, as the vectorised ``normal_`` gives them, computed in
    NumPy (the generator advances as ``normal_`` advances it)."""
    if n < 16:
        raise ValueError(f"normal_values: at least 16 draws, got {n}")
    u = torch.rand(n, generator=generator).numpy()
    out = u.copy()
    full = n - n % 16
    out[:full] = _box_muller(u[:full], mean, std)
    if n % 16:
        out[n - 16 :] = _box_muller(torch.rand(16, generator=generator).numpy(), mean, std)
    return out


def normal_(
    tensor: torch.Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``tensor.normal_(mean, std, generator=generator)``, the same numbers on every CPU
    (see the module docstring). In place, without recording a gradient."""
    portable = (
        tensor.dtype == torch.float32
        and tensor.device.type == "cpu"
        and tensor.is_contiguous()
        and tensor.numel() >= 16
        and not native()
    )
    with torch.no_grad():
        if not portable:  # the vectorised kernel itself, or ATen's one draw-at-a-time path
            return tensor.normal_(mean, std, generator=generator)
        values = normal_values(tensor.numel(), mean, std, generator)
        return tensor.copy_(torch.from_numpy(values).view_as(tensor))


def randn(
    shape, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``torch.randn(shape, generator=generator, dtype=dtype)`` on the CPU, the same numbers
    on every CPU."""
    return normal_(torch.empty(tuple(shape), dtype=dtype), 0.0, 1.0, generator)


def kaiming_normal_(
    tensor: torch.Tensor, mode: str = "fan_in", nonlinearity: str = "leaky_relu", a: float = 0
) -> torch.Tensor:
    """``torch.nn.init.kaiming_normal_`` with :func:`normal_`'s draws."""
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    std = torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std)
