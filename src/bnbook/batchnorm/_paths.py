"""The two implementations behind :func:`forward` and :func:`backward`.

NumPy arrays take the fast path (:mod:`._kernels`); every other array library
(CuPy, ``array_api_strict``) takes :mod:`.reference` itself, in float64, with the
results cast back to the input's dtype. Both build the same :class:`Cache`. The
callers have checked the arguments.
"""
import numpy as np

from . import _kernels as K
from . import reference
from ._checks import Cache, compute_dtype, per_channel


def stats_np(v, idx):
    """Shifted statistics of a view: ``(d, k, mean_d, var)``, float64 ``mean_d, var``.

    ``d = v - k`` (``v`` itself when ``k = 0`` everywhere), ``k`` by the rule of
    :func:`._kernels.shift`, ``mean_d = mu - k``. Call it under
    ``np.errstate(invalid="ignore", over="ignore")``: NaN and Inf propagate.
    """
    mean, var = K.batch_norm_stats(v, idx)              # plain sums: k = 0
    k = K.shift(v, mean, var)
    if k is None:
        return v, np.zeros(v.shape[1], v.dtype), mean, var
    d = np.empty_like(v)                                # sums of d = x - k
    mean, var = K.batch_norm_stats(v, idx, k, out=d)
    return d, k, mean, np.maximum(var, 0.0)             # rounding; NaN stays NaN


def forward_np(x, gamma, beta, eps, axis, m):
    """Fast training-mode forward of a NumPy array; returns ``(y, cache)``."""
    ct = np.float32 if x.dtype == np.float16 else x.dtype
    v = K.view(x.astype(ct, copy=False), axis)          # (P, C, Q) or (P, C)
    idx = K.blocks(v)
    with np.errstate(invalid="ignore", over="ignore"):
        d, k, mean, var = stats_np(v, idx)
        inv_std = 1.0 / np.sqrt(var + eps)              # float64
        scale = gamma * inv_std                         # y = (x - k) scale + shift
        y = K.batch_norm_elemt(d, scale, beta - scale * mean, idx)
    cache = Cache(v.reshape(x.shape), d.reshape(x.shape), k, mean.astype(ct), k + mean,
                  var, inv_std.astype(ct), gamma.astype(ct, copy=False), m, axis, eps,
                  x.dtype, gamma.dtype)
    return y.reshape(x.shape).astype(x.dtype, copy=False), cache


def backward_np(dy, c):
    r"""Fast gradients: ``dx = A (dy + B (x - k) + C)`` per channel.

    With :math:`A = \gamma/\sigma`, :math:`B = -\mathrm{d}\gamma/(m\sigma)` and
    :math:`C = -\mathrm{d}\beta/m - B(\mu - k)`, the compact form (3.3) expanded;
    :math:`\mathrm{d}\gamma = \sum dy\,\hat x = (\sum dy\,(x - k) - (\mu - k)\sum dy)/\sigma`.
    """
    ct = c.x_k.dtype
    d = K.view(c.x_k, c.axis)                           # x - k
    g = K.view(np.asarray(dy, dtype=ct), c.axis)
    idx = K.blocks(d)
    sum_dy, sum_dy_d = K.batch_norm_backward_reduce(g, d, idx)
    inv_std, mu_k = c.inv_std.astype(np.float64), c.mu_k.astype(np.float64)
    dbeta = sum_dy
    dgamma = inv_std * (sum_dy_d - mu_k * sum_dy)       # sum dy * x_hat
    A = c.gamma * inv_std
    B = -inv_std * dgamma / c.m
    dx = K.batch_norm_backward_elemt(g, d, A, B, -dbeta / c.m - B * mu_k, idx)
    return (dx.reshape(dy.shape).astype(c.dtype, copy=False),
            dgamma.astype(c.param_dtype), dbeta.astype(c.param_dtype))


def forward_xp(xp, x, gamma, beta, eps, axis, m):
    """The reference forward on any array-API library; the Cache by the shift rule."""
    ct = compute_dtype(xp, x.dtype)
    xc, g = xp.astype(x, ct), xp.astype(gamma, ct)
    y = reference.forward(xc, gamma, beta, eps, axis)
    mu, var = reference.stats(xc, axis)                 # float64, two passes
    first = xc[tuple(slice(None) if i == axis else 0 for i in range(x.ndim))]
    far = ~(mu * mu <= K.T * var)                       # the rule of _kernels.shift
    k = xp.where(far, first, xp.zeros_like(first))
    x_k = xc - per_channel(x.ndim, axis)(k)
    mu_k = xp.astype(mu - xp.astype(k, xp.float64), ct)
    inv_std = xp.astype(1.0 / xp.sqrt(var + eps), ct)
    cache = Cache(xc, x_k, k, mu_k, mu, var, inv_std, g, m, axis, eps, x.dtype,
                  gamma.dtype)
    return xp.astype(y, x.dtype), cache


def backward_xp(xp, dy, c):
    """The reference (compact) backward on any array-API library."""
    dx, dgamma, dbeta = reference.backward(dy, c.x, c.gamma, c.eps, c.axis)
    return (xp.astype(dx, c.dtype), xp.astype(dgamma, c.param_dtype),
            xp.astype(dbeta, c.param_dtype))
