r"""Batch normalization as pure functions of arrays (no state, no layers).

For a batch :math:`x` with channel axis ``axis`` (1 by default, as in PyTorch),
every channel :math:`c` is normalized over the other axes, whose sizes multiply
to the effective batch :math:`m` (``m = N`` for ``(N, D)``, ``m = N*H*W`` for
``(N, C, H, W)``):

.. math::

    \mu_c = \frac1m \sum_i x_{ic}, \qquad
    \sigma^2_c = \frac1m \sum_i (x_{ic} - \mu_c)^2, \qquad
    \hat x_{ic} = \frac{x_{ic} - \mu_c}{\sqrt{\sigma^2_c + \epsilon}}, \qquad
    y_{ic} = \gamma_c \hat x_{ic} + \beta_c .

Conventions (the same as PyTorch's ``BatchNorm``):

* training mode normalizes with the **biased** batch variance (divide by ``m``);
  the running variance stores the **unbiased** one (``m / (m - 1)`` times it);
* ``momentum`` weighs the *new* batch:
  ``running = (1 - momentum) * running + momentum * batch`` (default 0.1);
* ``eps`` sits **inside** the square root (default 1e-5);
* NaN or Inf in ``x`` is not hidden: it propagates to the whole channel's
  output and gradients (the layer offers an opt-in check that raises);
* float32 and float64 are computed and returned in their own dtype; float16 is
  computed in float32 and returned as float16.

The functions take their array module from the input (the array API standard,
``array_api_compat.array_namespace``), so NumPy, CuPy and ``array_api_strict``
all work. NumPy arrays take a faster path (:mod:`bnbook._bn_numpy`): BLAS sums
and few passes when the channels are the rows or columns of one matrix ((N, D),
or channel axis 0), otherwise the same quantities block by block while the data
sit in cache. The tests check that all paths agree.
"""
import math
from typing import Any, NamedTuple

import array_api_compat.numpy as _np_api
import numpy as np

from . import _bn_numpy
from .backend import array_namespace as _array_namespace

__all__ = ["Cache", "forward", "backward", "inference", "update_running", "fold",
           "batch_stats"]



class Cache(NamedTuple):
    """What :func:`backward` needs, named after the symbols of the equations.

    Per-channel arrays have shape ``(C,)``. ``k`` is a value of each channel in
    the compute dtype and close to its mean (the NumPy path: the mean of the
    first block; the array-API path: the first sample) that the sums are shifted
    by, so that large offsets such as ``1e6 + N(0, 1)`` do not cancel;
    ``mu_k = mu - k``. The property ``x_hat`` gives the normalized input.
    """

    x: Any          # input in the compute dtype, shape as given
    x_k: Any        # x - k, the shifted input the sums and gradients use
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
        b = _bcast_fn(self.x_k.ndim, self.axis)
        return (self.x_k - b(self.mu_k)) * b(self.inv_std)


# --------------------------------------------------------------------------- checks
def _namespace(*arrays):
    if all(type(a) is np.ndarray for a in arrays):    # the common case, without the
        return _np_api                                   # cost of a full look-up
    try:
        return _array_namespace(*arrays)
    except TypeError as err:
        kinds = ", ".join(type(a).__name__ for a in arrays)
        raise TypeError(f"expected arrays of one array library (NumPy, CuPy or an "
                        f"array-API namespace), got {kinds}: {err}") from None


def _check_float(xp, a, name):
    ok = a.dtype.kind == "f" if type(a) is np.ndarray else xp.isdtype(a.dtype, "real floating")
    if not ok:
        raise TypeError(f"{name} must be a real floating-point array (float16, float32 "
                        f"or float64), got dtype {a.dtype}")


def _check_x(xp, x, axis):
    """Validate ``x`` and ``axis``; return the non-negative axis."""
    _check_float(xp, x, "x")
    if x.ndim not in (2, 4):
        raise ValueError(f"x must be 2-D (N, D) or 4-D (N, C, H, W), got shape "
                         f"{tuple(x.shape)} ({x.ndim}-D)")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) \
            or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis must be an int in [{-x.ndim}, {x.ndim - 1}] for a "
                         f"{x.ndim}-D input, got {axis!r}")
    return int(axis) % x.ndim


def _check_channel(xp, v, name, C):
    _check_float(xp, v, name)
    if tuple(v.shape) != (C,):
        raise ValueError(f"{name} must have shape ({C},), one value per channel of x, "
                         f"got {tuple(v.shape)}")


def _check_eps(eps):
    if not isinstance(eps, (int, float, np.floating)) or not 0 <= float(eps) < np.inf:
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    return float(eps)


def _compute_dtype(xp, dtype):
    f16 = getattr(xp, "float16", None)          # not in the array API standard
    return xp.float32 if f16 is not None and dtype == f16 else dtype


def _bcast_fn(ndim, axis):
    """A function reshaping a (C,) vector so it broadcasts along ``axis``."""
    shape = tuple(-1 if i == axis else 1 for i in range(ndim))

    def b(v):
        return _namespace(v).reshape(v, shape)
    return b


def _prepare(x, gamma, beta, eps, axis, training):
    """Checks shared by forward and inference; returns (xp, axis, eps, C, m)."""
    xp = _namespace(x, gamma, beta)
    axis = _check_x(xp, x, axis)
    C = x.shape[axis]
    _check_channel(xp, gamma, "gamma", C)
    _check_channel(xp, beta, "beta", C)
    eps = _check_eps(eps)
    m = (math.prod(x.shape) // C) if C else 0
    if training and m < 2:
        raise ValueError(f"training-mode batch norm needs at least 2 values per channel "
                         f"(the batch variance is undefined otherwise); x of shape "
                         f"{tuple(x.shape)} has m = {m} along channel axis {axis}")
    return xp, axis, eps, C, m


# ------------------------------------------------------------------- array-API path
def _stats_xp(xc, axis, xp):
    """Shifted sums in float64: x - k, k, mu - k (compute dtype), mu, var (float64)."""
    axes = tuple(i for i in range(xc.ndim) if i != axis)
    first = tuple(slice(None) if i == axis else 0 for i in range(xc.ndim))
    k = xc[first]                                   # (C,) one sample per channel
    d = xc - _bcast_fn(xc.ndim, axis)(k)            # exact near k (Sterbenz)
    m = xc.size // xc.shape[axis]
    mean_d = xp.sum(d, axis=axes, dtype=xp.float64) / m
    var = xp.sum(d * d, axis=axes, dtype=xp.float64) / m - mean_d * mean_d
    var = xp.where(var < 0, xp.zeros_like(var), var)   # rounding; NaN stays NaN
    mu = xp.astype(k, xp.float64) + mean_d
    return d, k, xp.astype(mean_d, xc.dtype), mu, var


def _forward_xp(x, gamma, beta, eps, axis):
    xp, axis, eps, C, m = _prepare(x, gamma, beta, eps, axis, training=True)
    ct = _compute_dtype(xp, x.dtype)
    xc, g, bt = (xp.astype(a, ct, copy=False) for a in (x, gamma, beta))
    x_k, k, mu_k, mu, var = _stats_xp(xc, axis, xp)
    inv_std = xp.astype(1.0 / xp.sqrt(var + eps), ct)
    cache = Cache(xc, x_k, k, mu_k, mu, var, inv_std, g, m, axis, eps, x.dtype, gamma.dtype)
    b = _bcast_fn(x.ndim, axis)
    y = b(g) * cache.x_hat + b(bt)
    return xp.astype(y, x.dtype), cache


def _backward_xp(dy, cache):
    xp = _namespace(dy)
    c = cache
    axes = tuple(i for i in range(dy.ndim) if i != c.axis)
    dyc = xp.astype(dy, c.x_k.dtype)
    x_hat = c.x_hat
    dbeta = xp.sum(dyc, axis=axes, dtype=xp.float64)                # sum dy
    dgamma = xp.sum(dyc * x_hat, axis=axes, dtype=xp.float64)       # sum dy * x_hat
    b = _bcast_fn(dy.ndim, c.axis)
    ct = c.x_k.dtype
    dx = b(c.gamma * c.inv_std / c.m) * (
        c.m * dyc - b(xp.astype(dbeta, ct)) - x_hat * b(xp.astype(dgamma, ct)))
    return (xp.astype(dx, c.dtype), xp.astype(dgamma, c.param_dtype),
            xp.astype(dbeta, c.param_dtype))


# ----------------------------------------------------------------------- NumPy paths
# The lean matrix path and the blocked path live in bnbook._bn_numpy; the checks and
# the Cache stay here.
def _forward_np(x, gamma, beta, eps, axis):
    """The blocked NumPy path (any layout); see :func:`bnbook._bn_numpy.forward_blocked`."""
    xp, axis, eps, C, m = _prepare(x, gamma, beta, eps, axis, training=True)
    return _bn_numpy.forward_blocked(x, gamma, beta, eps, axis, m, Cache)


def _backward_np(dy, cache):
    return _bn_numpy.backward_blocked(dy, cache)


def _is_numpy(*arrays):
    return all(type(a) is np.ndarray for a in arrays)


# --------------------------------------------------------------------- public API
def forward(x, gamma, beta, eps=1e-5, axis=1):
    r"""Training-mode batch normalization: normalize with the batch's statistics.

    .. math::

        y = \gamma \, \frac{x - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}} + \beta,
        \qquad \sigma_B^2 = \frac1m \sum_i (x_i - \mu_B)^2 \ \text{(biased)} .

    Parameters
    ----------
    x : array, (N, D) or (N, C, H, W) (any layout with the channels on ``axis``)
        Real floating point; float16 is computed in float32.
    gamma, beta : arrays of shape (C,)
        Per-channel scale and shift.
    eps : float, default 1e-5
        Added to the variance inside the square root.
    axis : int, default 1
        The channel axis (0 for a batch-innermost (C, H, W, N) layout).

    Returns
    -------
    y : array like ``x`` (same shape and dtype)
    cache : Cache
        The intermediate quantities (``x_hat``, ``mu``, ``var``, ``inv_std``, ``m``...)
        for :func:`backward`, :func:`update_running` and for inspection.

    Raises
    ------
    TypeError
        Non-floating (integer, bool, complex) input, or mixed array libraries.
    ValueError
        ``x`` not 2-D or 4-D, bad ``axis``, ``gamma``/``beta`` not of shape (C,),
        fewer than 2 values per channel, or ``eps`` negative.

    Notes
    -----
    The statistics are sums of ``x - k`` with ``k`` a value near each channel's
    mean, accumulated in float64, so a large common offset does not cancel the
    variance away (the one-pass formula ``E[x^2] - E[x]^2`` does). NaN or Inf
    in a channel makes that channel's output NaN (not a finite number).
    """
    if _is_numpy(x, gamma, beta):
        lay = _bn_numpy.layout(x, axis)           # (C, M) or (M, C) matrix: lean path
        out = lay and _bn_numpy.forward(x, gamma, beta, eps, axis, lay, Cache)
        return out or _forward_np(x, gamma, beta, eps, axis)
    return _forward_xp(x, gamma, beta, eps, axis)


def backward(dy, cache):
    r"""Gradients of training-mode batch normalization (the compact form).

    .. math::

        \frac{\partial L}{\partial \beta} = \sum_i dy_i, \qquad
        \frac{\partial L}{\partial \gamma} = \sum_i dy_i \hat x_i, \qquad
        dx_i = \frac{\gamma}{m\sqrt{\sigma_B^2 + \epsilon}}
        \Big(m\,dy_i - \sum_j dy_j - \hat x_i \sum_j dy_j \hat x_j\Big).

    The batch statistics depend on ``x``, which is why ``dx`` is not just
    ``gamma * inv_std * dy``. Sums are accumulated in float64.

    Parameters
    ----------
    dy : array, same shape as the ``x`` given to :func:`forward`
    cache : Cache from :func:`forward`

    Returns
    -------
    dx : array like ``x``; dgamma, dbeta : arrays (C,) in gamma's dtype
    """
    if not isinstance(cache, Cache):
        raise TypeError(f"cache must be the Cache returned by forward(), got "
                        f"{type(cache).__name__}")
    xp = _namespace(dy)
    _check_float(xp, dy, "dy")
    if tuple(dy.shape) != tuple(cache.x_k.shape):
        raise ValueError(f"dy must have the shape of forward's x {tuple(cache.x_k.shape)}, "
                         f"got {tuple(dy.shape)}")
    if _is_numpy(dy, cache.x_k):
        lay = _bn_numpy.layout(cache.x_k, cache.axis)
        if lay:
            return _bn_numpy.backward(dy, cache, lay)
        return _backward_np(dy, cache)
    return _backward_xp(dy, cache)


def batch_stats(x, axis=1):
    r"""Per-channel batch mean and **biased** variance (divide by m).

    Computed from shifted sums accumulated in float64, so ``1e6 + N(0, 1)`` in
    float32 still gives the variance of the noise. Returned in the compute
    dtype: float64 for float64 input, float32 otherwise.
    """
    xp = _namespace(x)
    axis = _check_x(xp, x, axis)
    if x.size // max(x.shape[axis], 1) < 1:
        raise ValueError(f"x of shape {tuple(x.shape)} has no values per channel")
    ct = _compute_dtype(xp, x.dtype)
    _, _, _, mu, var = _stats_xp(xp.astype(x, ct, copy=False), axis, xp)
    return xp.astype(mu, ct), xp.astype(var, ct)


def inference(x, running_mean, running_var, gamma, beta, eps=1e-5, axis=1):
    r"""Eval-mode batch normalization with stored (running) statistics.

    .. math::

        y = \gamma \, \frac{x - \hat\mu}{\sqrt{\hat\sigma^2 + \epsilon}} + \beta,

    where :math:`\hat\mu, \hat\sigma^2` are the running mean and the running
    (unbiased) variance. A per-channel affine map: each sample's output depends
    on that sample only. Shapes, dtypes and errors as in :func:`forward`, except
    that one value per channel is enough.
    """
    xp, axis, eps, C, m = _prepare(x, gamma, beta, eps, axis, training=False)
    _check_channel(xp, running_mean, "running_mean", C)
    _check_channel(xp, running_var, "running_var", C)
    ct = _compute_dtype(xp, x.dtype)
    rm, rv, g, bt = (xp.astype(a, xp.float64) for a in (running_mean, running_var,
                                                        gamma, beta))
    scale = g / xp.sqrt(rv + eps)
    b = _bcast_fn(x.ndim, axis)
    y = (xp.astype(x, ct, copy=False) - b(xp.astype(rm, ct))) * b(xp.astype(scale, ct)) \
        + b(xp.astype(bt, ct))
    return xp.astype(y, x.dtype)


def update_running(running_mean, running_var, x_or_stats, momentum=0.1, axis=1):
    r"""New running statistics after one training batch (PyTorch's convention).

    .. math::

        \hat\mu \leftarrow (1 - \text{momentum})\,\hat\mu + \text{momentum}\,\mu_B, \qquad
        \hat\sigma^2 \leftarrow (1 - \text{momentum})\,\hat\sigma^2
            + \text{momentum}\,\frac{m}{m - 1}\,\sigma_B^2 .

    ``momentum`` weighs the **new** batch (PyTorch; default 0.1). Keras'
    ``momentum`` weighs the old value: Keras 0.99 is PyTorch 0.01. The running
    variance is **unbiased** (``m / (m - 1)``) although training normalizes with
    the biased one.

    Parameters
    ----------
    running_mean, running_var : arrays (C,)
    x_or_stats : array, Cache, or tuple ``(mean, biased_var, m)``
        The batch (its statistics are computed along ``axis``), the cache of
        :func:`forward`, or the statistics themselves.
    momentum : float in [0, 1]
    axis : int, channel axis when ``x_or_stats`` is an array

    Returns
    -------
    (mean, var) : new arrays in the dtype of the running buffers (inputs untouched)
    """
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float, np.floating)) \
            or not 0 <= momentum <= 1:
        raise ValueError(f"momentum must be a number in [0, 1] (PyTorch convention: the "
                         f"weight of the new batch), got {momentum!r}")
    if isinstance(x_or_stats, Cache):
        mu, var, m = x_or_stats.mu, x_or_stats.var, x_or_stats.m
    elif isinstance(x_or_stats, tuple):
        if len(x_or_stats) != 3:
            raise ValueError("statistics must be a tuple (mean, biased_var, m), got "
                             f"{len(x_or_stats)} items")
        mu, var, m = x_or_stats
    else:
        xp = _namespace(x_or_stats)
        ax = _check_x(xp, x_or_stats, axis)
        m = x_or_stats.size // max(x_or_stats.shape[ax], 1)
        mu, var = batch_stats(x_or_stats, axis)
    xp = _namespace(running_mean, running_var, mu, var)
    C = running_mean.shape[0] if running_mean.ndim == 1 else -1
    for name, v in (("running_mean", running_mean), ("running_var", running_var),
                    ("batch mean", mu), ("batch var", var)):
        _check_channel(xp, v, name, C)
    if int(m) < 2:
        raise ValueError(f"the unbiased running variance needs m >= 2 values per channel, "
                         f"got m = {m}")
    dt = running_mean.dtype
    if xp is _np_api:                # NumPy: the same arithmetic without the wrappers
        mean = (1 - momentum) * running_mean.astype(np.float64) + momentum * mu
        var_new = (1 - momentum) * running_var.astype(np.float64) \
            + momentum * (m / (m - 1)) * var.astype(np.float64)
        return mean.astype(dt), var_new.astype(running_var.dtype)
    f64 = xp.float64
    unbiased = xp.astype(var, f64) * (m / (m - 1))
    mean = (1 - momentum) * xp.astype(running_mean, f64) + momentum * xp.astype(mu, f64)
    var_new = (1 - momentum) * xp.astype(running_var, f64) + momentum * unbiased
    return xp.astype(mean, dt), xp.astype(var_new, running_var.dtype)


def fold(weight, bias, gamma, beta, running_mean, running_var, eps=1e-5):
    r"""Fold eval-mode batch norm into the Linear or Conv2d layer before it.

    With :math:`s = \gamma / \sqrt{\hat\sigma^2 + \epsilon}` per output channel,

    .. math::

        W' = s \, W, \qquad b' = s\,(b - \hat\mu) + \beta,

    so that ``layer'(x) == bn_eval(layer(x))``: one layer instead of two at
    inference (as darknet-style libraries do).

    Parameters
    ----------
    weight : array (out, in) for Linear or (out, in, kh, kw) for Conv2d
    bias : array (out,) or None (treated as zeros)
    gamma, beta, running_mean, running_var : arrays (out,)
    eps : float, default 1e-5

    Returns
    -------
    (weight, bias) : folded, in ``weight``'s dtype; the bias is always an array
    """
    arrays = [a for a in (weight, bias, gamma, beta, running_mean, running_var)
              if a is not None]
    xp = _namespace(*arrays)
    _check_float(xp, weight, "weight")
    if weight.ndim not in (2, 4):
        raise ValueError(f"weight must be (out, in) for a Linear or (out, in, kh, kw) for "
                         f"a Conv2d, got shape {tuple(weight.shape)}")
    out = weight.shape[0]
    for name, v in (("bias", bias), ("gamma", gamma), ("beta", beta),
                    ("running_mean", running_mean), ("running_var", running_var)):
        if v is not None:
            _check_channel(xp, v, name, out)
    eps = _check_eps(eps)
    f64 = xp.float64
    g, bt, rm, rv = (xp.astype(a, f64) for a in (gamma, beta, running_mean, running_var))
    b = xp.zeros(out, dtype=f64) if bias is None else xp.astype(bias, f64)
    s = g / xp.sqrt(rv + eps)                                     # (out,)
    w = xp.astype(weight, f64) * xp.reshape(s, (-1,) + (1,) * (weight.ndim - 1))
    return xp.astype(w, weight.dtype), xp.astype(s * (b - rm) + bt, weight.dtype)
