r"""Batch Renormalization (Ioffe, 2017): BN whose training output is corrected
toward the running statistics.

In training mode, with the batch statistics :math:`\mu_B, \sigma_B^2` (biased)
and the running ones :math:`\hat\mu, \hat\sigma^2` *before* this batch's update,

.. math::

    \sigma_B = \sqrt{\sigma_B^2 + \epsilon}, \quad
    \sigma = \sqrt{\hat\sigma^2 + \epsilon}, \quad
    r = \operatorname{clip}_{[1/r_{\max},\, r_{\max}]}\!\Big(\frac{\sigma_B}{\sigma}\Big),
    \quad
    d = \operatorname{clip}_{[-d_{\max},\, d_{\max}]}\!\Big(\frac{\mu_B - \hat\mu}{\sigma}\Big),

    y = \gamma \Big( r \, \frac{x - \mu_B}{\sigma_B} + d \Big) + \beta ,

and ``r``, ``d`` are constants of the backward pass (no gradient flows through
them). Unclipped, :math:`y = \gamma (x - \hat\mu) / \sigma + \beta`: exactly the
eval-mode output, which is the point of the method. With ``r_max = 1`` and
``d_max = 0`` it is :class:`BatchNorm` in training mode.
"""
import numpy as np

from .. import batchnorm as F
from ..batchnorm._checks import namespace
from .norm import BatchNorm


def _check_limit(name, value, lowest):
    """A finite real number >= lowest, as a Python float; else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                         np.floating)) \
            or not np.isfinite(value) or value < lowest:
        raise ValueError(f"{name} must be a finite number >= {lowest:g}, got {value!r}")
    return float(value)


class BatchRenorm(BatchNorm):
    r"""Batch Renormalization for (N, D) or (N, C, H, W) input (channel axis 1).

    The same parameters, buffers, ``train()``/``eval()`` and state dict as
    :class:`BatchNorm`; eval mode is identical to it. Training mode is the
    formula of the module docstring. ``r_max`` and ``d_max`` are plain
    attributes, so a schedule may raise them during training (Ioffe starts at
    1 and 0, i.e. plain BN, and relaxes them).

    Which running statistic :math:`\sigma` is: ``running_var`` holds the
    *unbiased* running variance (PyTorch's convention, as in :class:`BatchNorm`)
    and :math:`\sigma = \sqrt{\text{running\_var} + \epsilon}`, the very
    normalizer of eval mode. The paper keeps a moving average of
    :math:`\sigma_B` itself instead. Either way the unclipped training output
    equals that convention's eval output; this one was chosen so that both
    layers share one eval path and one state dict (a BatchNorm state loads
    into a BatchRenorm and back). Its cost: :math:`\sigma_B` uses the biased
    batch variance and :math:`\sigma` estimates the population's, so at small
    batches ``r`` sits below 1 on average (for Gaussian data at m = 2,
    :math:`E[\sigma_B/\sigma] = 1/\sqrt{\pi} \approx 0.56`) and its lower
    limit ``1 / r_max`` is reached more often than with the paper's average.

    Parameters
    ----------
    num_features, eps, momentum, axis, dtype, check_finite
        As for :class:`BatchNorm`.
    r_max : number >= 1, default 3.0
        ``r`` is clipped to ``[1 / r_max, r_max]``.
    d_max : number >= 0, default 5.0
        ``d`` is clipped to ``[-d_max, d_max]``.

    Attributes
    ----------
    r, d : arrays (C,) or None
        The correction factors of the last training-mode forward (float64).
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, r_max=3.0, d_max=5.0,
                 axis=1, dtype=np.float32, check_finite=False):
        super().__init__(num_features, eps, momentum, axis, dtype, check_finite)
        self.r_max, self.d_max = r_max, d_max
        self.r = self.d = None

    def __setattr__(self, name, value):
        if name in ("r_max", "d_max"):
            value = _check_limit(name, value, 1.0 if name == "r_max" else 0.0)
        super().__setattr__(name, value)

    def corrections(self, mu_b, var_b):
        """r and d (float64, per channel) for batch statistics mu_b, var_b (biased)."""
        xp = namespace(mu_b)
        sigma = xp.sqrt(xp.astype(self.running_var, xp.float64) + self.eps)
        sigma_b = xp.sqrt(var_b + self.eps)
        r = xp.clip(sigma_b / sigma, 1.0 / self.r_max, self.r_max)
        d = xp.clip((mu_b - xp.astype(self.running_mean, xp.float64)) / sigma,
                    -self.d_max, self.d_max)
        return r, d

    def forward(self, x):
        if not self.training:
            self.r = self.d = None
            return super().forward(x)
        self._check(x)
        xp = namespace(x)
        mu_b, var_b = F.batch_stats(x, self.axis)
        self.r, self.d = self.corrections(xp.astype(mu_b, xp.float64),
                                          xp.astype(var_b, xp.float64))
        g = xp.astype(self.gamma.data, xp.float64)
        dt = self.gamma.data.dtype
        # y = (gamma r) x_hat + (gamma d + beta):
        # BN with an effective scale and shift
        y, self.cache = F.forward(x, xp.astype(g * self.r, dt),
                                  xp.astype(g * self.d, dt) + self.beta.data,
                                  self.eps, self.axis)
        self.running_mean, self.running_var = F.update_running(
            self.running_mean, self.running_var, self.cache, self.momentum)
        self.num_batches_tracked += 1
        return y

    def backward(self, dy):
        """dx with r and d held constant; dgamma, dbeta by the chain rule."""
        dx = super().backward(dy)       # grads of the effective scale a and shift b
        xp = namespace(dx)
        da, db = self.gamma.grad, self.beta.grad
        dt = da.dtype
        # a = gamma r, b = gamma d + beta  =>  dgamma = r da + d db, dbeta = db
        self.gamma.grad = xp.astype(self.r * xp.astype(da, xp.float64)
                                    + self.d * xp.astype(db, xp.float64), dt)
        return dx

    def __repr__(self):
        return (f"BatchRenorm({self.num_features}, eps={self.eps:g}, "
                f"momentum={self.momentum:g}, r_max={self.r_max:g}, d_max={self.d_max:g}"
                + (f", axis={self.axis}" if self.axis != 1 else "") + ")")
