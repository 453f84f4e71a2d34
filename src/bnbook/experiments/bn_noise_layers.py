"""BN as noise, the layers: dropout, population-statistics BN, vectorized ghost BN.

:class:`PopulationBatchNorm` normalizes with statistics of the whole training
set (set by :func:`refresh_population`), :class:`GhostBN` with those of ghost
batches (the computation of :class:`~bnbook.experiments.ghost.GhostBatchNorm`,
vectorized), :class:`Dropout` zeroes random units. :mod:`.bn_noise` builds and
trains the networks.
"""
import numpy as np

from .. import batchnorm as F
from ..layers import BatchNorm, Module


class Dropout(Module):
    """Inverted dropout: in training mode each value is zeroed with probability
    ``p`` and the survivors are scaled by ``1/(1-p)``; eval mode is the identity.
    A fresh mask every forward pass, from ``np.random.default_rng(rng)``."""

    def __init__(self, p, rng=None):
        if not 0 <= p < 1:
            raise ValueError(f"dropout p must lie in [0, 1), got {p!r}")
        self.p, self.gen, self.mask = float(p), np.random.default_rng(rng), None

    def forward(self, x):
        if not self.training or self.p == 0:
            self.mask = None
            return x
        keep = self.gen.random(x.shape) >= self.p
        self.mask = keep.astype(x.dtype) / (1 - self.p)
        return x * self.mask

    def backward(self, dy):
        return dy if self.mask is None else dy * self.mask


class PopulationBatchNorm(BatchNorm):
    r"""BN with fixed statistics: :math:`y = \gamma (x - \mu_P)/\sqrt{\sigma_P^2
    + \epsilon} + \beta` in training *and* eval mode.

    ``mu_P, var_P`` (attributes ``pop_mean``, ``pop_var``; biased variance) are
    set by a training-mode forward with ``refresh = True`` from that batch
    (meant to be the whole training set, :func:`refresh_population`); the
    backward pass treats them as constants: ``dx = gamma * dy / sqrt(var_P +
    eps)``, ``dgamma = sum(dy * x_hat)``, ``dbeta = sum(dy)``.
    """
    refresh = False
    pop_mean = pop_var = None

    def forward(self, x):
        self._check(x)
        if self.refresh:
            self.pop_mean, self.pop_var = F.batch_stats(x)
        if self.pop_mean is None:
            raise RuntimeError(f"{self!r}: no population statistics yet; call "
                               f"refresh_population(model, x_train) first")
        self.inv_std = 1 / np.sqrt(self.pop_var + self.eps)      # (C,)
        self.x_hat = (x - self.pop_mean) * self.inv_std          # (N, C)
        return self.gamma.data * self.x_hat + self.beta.data

    def backward(self, dy):
        self.gamma.grad = (dy * self.x_hat).sum(axis=0)
        self.beta.grad = dy.sum(axis=0)
        return dy * (self.gamma.data * self.inv_std)


class GhostBN(BatchNorm):
    """BN over consecutive ghost batches of ``size`` rows of a (B, C) batch in
    training mode, all ghost batches at once (B must be a multiple of size).

    Each ghost batch is normalized with its own mean and biased variance; the
    running statistics move as after ``B / size`` consecutive BN updates (one
    per ghost batch, in order), as :class:`~.ghost.GhostBatchNorm` does.
    """
    size = None

    def forward(self, x):
        if not self.training or self.size is None or len(x) <= self.size:
            self.parts = None
            return super().forward(x)
        self._check(x)
        if len(x) % self.size:
            raise ValueError(f"batch of {len(x)} is not a multiple of the "
                             f"ghost size {self.size}")
        v = x.reshape(-1, self.size, x.shape[1])             # (k, g, C)
        mu, var = v.mean(axis=1), v.var(axis=1)              # (k, C) each
        inv_std = 1 / np.sqrt(var + self.eps)
        x_hat = (v - mu[:, None]) * inv_std[:, None]
        self.parts = (x_hat, inv_std)
        self._running(mu, var)
        return (self.gamma.data * x_hat + self.beta.data).reshape(x.shape)

    def _running(self, mu, var):
        k, mom, g = len(mu), self.momentum, self.size
        w = mom * (1 - mom) ** np.arange(k - 1, -1, -1)      # batch j's weight
        keep = (1 - mom) ** k
        self.running_mean = (keep * self.running_mean + w @ mu).astype(
            self.running_mean.dtype)
        self.running_var = (keep * self.running_var
                            + w @ var * (g / (g - 1))).astype(
            self.running_var.dtype)
        self.num_batches_tracked += k

    def backward(self, dy):
        if self.parts is None:
            return super().backward(dy)
        x_hat, inv_std = self.parts
        g = dy.reshape(x_hat.shape)                          # (k, g, C)
        self.gamma.grad = (g * x_hat).sum(axis=(0, 1))
        self.beta.grad = g.sum(axis=(0, 1))
        d_hat = g * self.gamma.data                          # dl/dx_hat
        dx = inv_std[:, None] * (d_hat - d_hat.mean(axis=1, keepdims=True)
                                 - x_hat * (d_hat * x_hat).mean(axis=1,
                                                                keepdims=True))
        return dx.reshape(dy.shape)


def refresh_population(model, x):
    """Recompute every :class:`PopulationBatchNorm`'s statistics from ``x``,
    layer after layer in one forward pass (each layer sees the input that the
    refreshed layers before it produce). Parameters are not changed."""
    pops = [m for m in model.modules() if isinstance(m, PopulationBatchNorm)]
    for layer in pops:
        layer.refresh = True
    try:
        model.forward(x)
    finally:
        for layer in pops:
            layer.refresh = False
