r"""Running statistics and eval mode: ``batch_stats``, ``update_running``,
``inference``, ``fold``.

Conventions (PyTorch's): the running variance stores the **unbiased** batch
variance (``m / (m - 1)`` times the biased one that training normalizes with);
``momentum`` weighs the *new* batch; ``eps`` sits inside the square root.
"""
import numpy as np

from . import _kernels as K
from . import reference
from ._checks import (Cache, check_channel, check_eps, check_float, check_momentum, check_x,
                      compute_dtype, namespace, np_api, per_channel, prepare)
from ._paths import stats_np


def batch_stats(x, axis=1):
    r"""Per-channel batch mean and **biased** variance (divide by m).

    NumPy arrays: the fast path's sums (float32 over short runs, float64 beyond,
    shifted by the rule of :func:`bnbook.batchnorm._kernels.shift`), so
    ``1e6 + N(0, 1)`` in float32 still gives the variance of the noise. Other
    libraries: :func:`bnbook.batchnorm.reference.stats` (two passes, float64).
    Returned in the compute dtype: float64 for float64 input, float32 otherwise.
    """
    xp = namespace(x)
    axis = check_x(xp, x, axis)
    if x.size // max(x.shape[axis], 1) < 1:
        raise ValueError(f"x of shape {tuple(x.shape)} has no values per channel")
    ct = compute_dtype(xp, x.dtype)
    if type(x) is np.ndarray:
        v = K.view(x.astype(ct, copy=False), axis)
        with np.errstate(invalid="ignore", over="ignore"):
            _, k, mean_d, var = stats_np(v, K.blocks(v))
        return (k + mean_d).astype(ct), var.astype(ct)
    mu, var = reference.stats(x, axis)
    return xp.astype(mu, ct), xp.astype(var, ct)


def inference(x, running_mean, running_var, gamma, beta, eps=1e-5, axis=1):
    r"""Eval-mode batch normalization with stored (running) statistics.

    .. math::

        y = \gamma \, \frac{x - \hat\mu}{\sqrt{\hat\sigma^2 + \epsilon}} + \beta,

    where :math:`\hat\mu, \hat\sigma^2` are the running mean and the running
    (unbiased) variance. A per-channel affine map: each sample's output depends
    on that sample only. The per-channel factors are computed in float64, the
    map in the compute dtype. Shapes, dtypes and errors as in :func:`forward`,
    except that one value per channel is enough; a negative running variance
    is a ``ValueError``.
    """
    xp, axis, eps, C, m = prepare(x, gamma, beta, eps, axis, training=False)
    check_channel(xp, running_mean, "running_mean", C)
    check_channel(xp, running_var, "running_var", C)
    if bool(xp.any(running_var < 0)):
        raise ValueError(f"running_var must be >= 0 (a variance), got minimum "
                         f"{float(xp.min(running_var))}")
    ct = compute_dtype(xp, x.dtype)
    rm, rv, g, bt = (xp.astype(a, xp.float64) for a in (running_mean, running_var,
                                                        gamma, beta))
    scale = g / xp.sqrt(rv + eps)
    c = per_channel(x.ndim, axis)
    y = (xp.astype(x, ct, copy=False) - c(xp.astype(rm, ct))) * c(xp.astype(scale, ct)) \
        + c(xp.astype(bt, ct))
    return xp.astype(y, x.dtype)


def _batch(x_or_stats, axis):
    """(mu, biased var, m) from a Cache, a (mean, biased_var, m) tuple or a batch."""
    if isinstance(x_or_stats, Cache):
        return x_or_stats.mu, x_or_stats.var, x_or_stats.m
    if isinstance(x_or_stats, tuple):
        if len(x_or_stats) != 3:
            raise ValueError("statistics must be a tuple (mean, biased_var, m), got "
                             f"{len(x_or_stats)} items")
        return x_or_stats
    ax = check_x(namespace(x_or_stats), x_or_stats, axis)
    m = x_or_stats.size // max(x_or_stats.shape[ax], 1)
    return (*batch_stats(x_or_stats, axis), m)


def update_running(running_mean, running_var, x_or_stats, momentum=0.1, axis=1):
    r"""New running statistics after one training batch (PyTorch's convention).

    .. math::

        \hat\mu \leftarrow (1 - \text{momentum})\,\hat\mu + \text{momentum}\,\mu_B, \qquad
        \hat\sigma^2 \leftarrow (1 - \text{momentum})\,\hat\sigma^2
            + \text{momentum}\,\frac{m}{m - 1}\,\sigma_B^2 .

    ``momentum`` weighs the **new** batch (PyTorch; default 0.1). Keras'
    ``momentum`` weighs the old value: Keras 0.99 is PyTorch 0.01. The running
    variance is **unbiased** (``m / (m - 1)``) although training normalizes with
    the biased one. Computed in float64, returned in the buffers' dtype.

    Parameters
    ----------
    running_mean, running_var : arrays (C,)
    x_or_stats : array, Cache, or tuple ``(mean, biased_var, m)``
        The batch (its statistics are computed along ``axis``), the cache of
        :func:`forward`, or the statistics themselves.
    momentum : number in [0, 1] (Python or NumPy scalar)
    axis : int, channel axis when ``x_or_stats`` is an array

    Returns
    -------
    (mean, var) : new arrays in the dtype of the running buffers (inputs untouched)
    """
    momentum = check_momentum(momentum)
    mu, var, m = _batch(x_or_stats, axis)
    xp = namespace(running_mean, running_var, mu, var)
    C = running_mean.shape[0] if running_mean.ndim == 1 else -1
    for name, v in (("running_mean", running_mean), ("running_var", running_var),
                    ("batch mean", mu), ("batch var", var)):
        check_channel(xp, v, name, C)
    if int(m) < 2:
        raise ValueError(f"the unbiased running variance needs m >= 2 values per channel, "
                         f"got m = {m}")
    if xp is np_api:                     # NumPy: the same arithmetic, fewer calls
        mu, var = np.asarray(mu, np.float64), np.asarray(var, np.float64)
        mean = (1 - momentum) * running_mean.astype(np.float64) + momentum * mu
        var_new = (1 - momentum) * running_var.astype(np.float64) \
            + (momentum * m / (m - 1)) * var
        return mean.astype(running_mean.dtype), var_new.astype(running_var.dtype)
    f64 = xp.float64
    unbiased = xp.astype(var, f64) * (m / (m - 1))
    mean = (1 - momentum) * xp.astype(running_mean, f64) + momentum * xp.astype(mu, f64)
    var_new = (1 - momentum) * xp.astype(running_var, f64) + momentum * unbiased
    return xp.astype(mean, running_mean.dtype), xp.astype(var_new, running_var.dtype)


def fold(weight, bias, gamma, beta, running_mean, running_var, eps=1e-5):
    r"""Fold eval-mode batch norm into the Linear or Conv2d layer before it.

    With :math:`s = \gamma / \sqrt{\hat\sigma^2 + \epsilon}` per output channel,

    .. math::

        W' = s \, W, \qquad b' = s\,(b - \hat\mu) + \beta,

    so that ``layer'(x) == bn_eval(layer(x))``: one layer instead of two at
    inference. Computed in float64.

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
    xp = namespace(*arrays)
    if weight is None or weight.ndim not in (2, 4):
        raise ValueError(f"weight must be (out, in) for a Linear or (out, in, kh, kw) for "
                         f"a Conv2d, got {None if weight is None else tuple(weight.shape)}")
    check_float(xp, weight, "weight")
    out = weight.shape[0]
    for name, v in (("bias", bias), ("gamma", gamma), ("beta", beta),
                    ("running_mean", running_mean), ("running_var", running_var)):
        if v is not None or name != "bias":
            check_channel(xp, v, name, out)
    eps = check_eps(eps)
    f64 = xp.float64
    g, bt, rm, rv = (xp.astype(a, f64) for a in (gamma, beta, running_mean, running_var))
    b = xp.zeros(out, dtype=f64) if bias is None else xp.astype(bias, f64)
    s = g / xp.sqrt(rv + eps)                                     # (out,)
    w = xp.astype(weight, f64) * xp.reshape(s, (-1,) + (1,) * (weight.ndim - 1))
    return xp.astype(w, weight.dtype), xp.astype(s * (b - rm) + bt, weight.dtype)
