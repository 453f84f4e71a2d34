"""Argument checks shared by the public functions, and the :class:`Cache`.

Every check raises with a message naming the argument and what was expected.
"""
import math
from typing import Any, NamedTuple

import array_api_compat.numpy as np_api
import numpy as np

from ..backend import array_namespace

_NUMBER = (int, float, np.integer, np.floating)


class Cache(NamedTuple):
    """What :func:`~bnbook.batchnorm.backward` needs, named after the symbols.

    Per-channel arrays have shape ``(C,)``. ``k`` is the shift of each channel
    (the rule of :func:`bnbook.batchnorm._kernels.shift`, on every path): 0 where
    ``mu^2 <= 8 var``, else the channel's first value; ``x_k = x - k`` and
    ``mu_k = mu - k``, so that ``x_hat`` stays accurate under a large offset.
    The NumPy path sums ``x_k``; the array-API path computes ``mu`` and ``var``
    by :mod:`bnbook.batchnorm.reference` and keeps ``k`` for ``x_hat`` only.
    The property ``x_hat`` gives the normalized input, in the compute dtype.
    """

    x: Any          # input in the compute dtype, shape as given
    x_k: Any        # x - k (x itself where k = 0 in every channel)
    k: Any          # (C,) shift, compute dtype
    mu_k: Any       # (C,) mu - k, compute dtype (small, so accurate)
    mu: Any         # (C,) batch mean, float64
    var: Any        # (C,) biased batch variance, float64
    inv_std: Any    # (C,) 1 / sqrt(var + eps), compute dtype
    gamma: Any      # (C,) scale, compute dtype
    m: int          # values per channel (effective batch size)
    axis: int       # channel axis, non-negative
    eps: float
    dtype: Any      # dtype of x as given (dx has it)
    param_dtype: Any  # dtype of gamma as given (dgamma, dbeta have it)

    @property
    def x_hat(self):
        """The normalized input, :math:`(x - \\mu) / \\sqrt{\\sigma^2 + \\epsilon}`."""
        c = per_channel(self.x_k.ndim, self.axis)
        return (self.x_k - c(self.mu_k)) * c(self.inv_std)


def namespace(*arrays):
    """The array-API namespace of ``arrays``; a TypeError if there is none."""
    if all(type(a) is np.ndarray for a in arrays):    # the common case, without the
        return np_api                                    # cost of a full look-up
    try:
        return array_namespace(*arrays)
    except TypeError as err:
        kinds = ", ".join(type(a).__name__ for a in arrays)
        raise TypeError(f"expected arrays of one array library (NumPy, CuPy or an "
                        f"array-API namespace), got {kinds}: {err}") from None


def check_float(xp, a, name):
    ok = a.dtype.kind == "f" if type(a) is np.ndarray else xp.isdtype(a.dtype, "real floating")
    if not ok:
        raise TypeError(f"{name} must be a real floating-point array (float16, float32 "
                        f"or float64), got dtype {a.dtype}")


def check_x(xp, x, axis):
    """Validate ``x`` and ``axis``; return the non-negative axis."""
    check_float(xp, x, "x")
    if x.ndim not in (2, 4):
        raise ValueError(f"x must be 2-D (N, D) or 4-D (N, C, H, W), got shape "
                         f"{tuple(x.shape)} ({x.ndim}-D)")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) \
            or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis must be an int in [{-x.ndim}, {x.ndim - 1}] for a "
                         f"{x.ndim}-D input, got {axis!r}")
    return int(axis) % x.ndim


def check_channel(xp, v, name, C):
    if v is None:
        raise TypeError(f"{name} must be an array of shape ({C},), got None")
    check_float(xp, v, name)
    if tuple(v.shape) != (C,):
        raise ValueError(f"{name} must have shape ({C},), one value per channel of x, "
                         f"got {tuple(v.shape)}")


def check_eps(eps):
    if isinstance(eps, bool) or not isinstance(eps, _NUMBER) or not 0 <= float(eps) < np.inf:
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    return float(eps)


def check_momentum(momentum):
    """A number in [0, 1] (NumPy scalars too); returned as a Python float."""
    if isinstance(momentum, bool) or not isinstance(momentum, _NUMBER) \
            or not 0 <= momentum <= 1:
        raise ValueError(f"momentum must be a number in [0, 1] (PyTorch convention: the "
                         f"weight of the new batch), got {momentum!r}")
    return float(momentum)


def compute_dtype(xp, dtype):
    """float16 is computed in float32; float32 and float64 in themselves."""
    f16 = getattr(xp, "float16", None)          # not in the array API standard
    return xp.float32 if f16 is not None and dtype == f16 else dtype


def per_channel(ndim, axis):
    """A function reshaping a (C,) vector so that it broadcasts along ``axis``."""
    shape = tuple(-1 if i == axis else 1 for i in range(ndim))

    def c(v):
        return namespace(v).reshape(v, shape)
    return c


def prepare(x, gamma, beta, eps, axis, training):
    """Checks shared by forward and inference; returns (xp, axis, eps, C, m)."""
    for name, a in (("x", x), ("gamma", gamma), ("beta", beta)):
        if a is None:
            raise TypeError(f"{name} must be an array, got None")
    xp = namespace(x, gamma, beta)
    axis = check_x(xp, x, axis)
    C = x.shape[axis]
    check_channel(xp, gamma, "gamma", C)
    check_channel(xp, beta, "beta", C)
    eps = check_eps(eps)
    m = (math.prod(x.shape) // C) if C else 0
    if training and m < 2:
        raise ValueError(f"training-mode batch norm needs at least 2 values per channel "
                         f"(the batch variance is undefined otherwise); x of shape "
                         f"{tuple(x.shape)} has m = {m} along channel axis {axis}")
    return xp, axis, eps, C, m
