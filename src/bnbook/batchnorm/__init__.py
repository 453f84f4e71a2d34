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

Modules: :mod:`.reference` (the equations line by line, float64, array API: the
book shows it and the tests use it as the oracle), ``_kernels`` and ``_paths``
(the NumPy fast path, and which path an array takes), :mod:`.running`
(``batch_stats``, ``update_running``, ``inference``, ``fold``), ``_checks``
(argument checks and :class:`Cache`). NumPy arrays take the fast path; CuPy and
other array-API arrays take the reference itself.
"""
import numpy as np

from . import _paths, reference
from ._checks import Cache, check_float, namespace, np_api, prepare
from .running import batch_stats, fold, inference, update_running

__all__ = ["Cache", "forward", "backward", "inference", "update_running", "fold",
           "batch_stats", "reference"]


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
        ``x``, ``gamma`` or ``beta`` not an array (None, a list), non-floating
        (integer, bool, complex) input, or mixed array libraries.
    ValueError
        ``x`` not 2-D or 4-D, bad ``axis``, ``gamma``/``beta`` not of shape (C,),
        fewer than 2 values per channel, or ``eps`` negative.

    Notes
    -----
    NumPy input (fast path): float32 is summed in float32 over short runs (at
    most 8192 contiguous values, or 32 rows) and in float64 beyond; where the plain sums
    would lose the variance to a large offset (``mu^2 > 8 var``) the sums are
    taken of ``x - k``, ``k`` the first value of the channel (see
    ``bnbook.batchnorm._kernels.shift``). Other array libraries: two passes in
    float64 (:mod:`.reference`). NaN or Inf in a channel makes that channel's
    output NaN.
    """
    xp, axis, eps, C, m = prepare(x, gamma, beta, eps, axis, training=True)
    if xp is np_api:
        return _paths.forward_np(x, gamma, beta, eps, axis, m)
    return _paths.forward_xp(xp, x, gamma, beta, eps, axis, m)


def backward(dy, cache):
    r"""Gradients of training-mode batch normalization (the compact form).

    .. math::

        \frac{\partial L}{\partial \beta} = \sum_i dy_i, \qquad
        \frac{\partial L}{\partial \gamma} = \sum_i dy_i \hat x_i, \qquad
        dx_i = \frac{\gamma}{m\sqrt{\sigma_B^2 + \epsilon}}
        \Big(m\,dy_i - \sum_j dy_j - \hat x_i \sum_j dy_j \hat x_j\Big).

    The batch statistics depend on ``x``, which is why ``dx`` is not just
    ``gamma * inv_std * dy``. Sums as in :func:`forward`: NumPy float32 in
    float32 over short runs and float64 beyond, other libraries in float64.

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
    xp = namespace(dy)
    check_float(xp, dy, "dy")
    if tuple(dy.shape) != tuple(cache.x_k.shape):
        raise ValueError(f"dy must have the shape of forward's x {tuple(cache.x_k.shape)}, "
                         f"got {tuple(dy.shape)}")
    if type(dy) is np.ndarray and type(cache.x_k) is np.ndarray:
        return _paths.backward_np(dy, cache)
    return _paths.backward_xp(xp, dy, cache)

