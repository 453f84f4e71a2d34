"""BN as noise: batch, population and ghost-batch statistics, with or without dropout.

The MLP 784 -> width -> width -> 10 (``Linear -> norm -> ReLU [-> Dropout]``
per hidden layer) is trained with SGD on flat MNIST in one of three ways:

* ``"plain"``: no normalization (the Linear layers keep their biases);
* ``"bn"``: :class:`GhostBN`, batch statistics over consecutive ghost batches
  of ``ghost`` samples of each SGD batch (``ghost = None``: ordinary BN); the
  same computation as :class:`~bnbook.experiments.ghost.GhostBatchNorm`,
  vectorized over the ghost batches (tests compare the two);
* ``"pop"``: :class:`PopulationBatchNorm`, normalized with statistics of the
  *whole training set* at the current weights, recomputed every ``every``
  steps by :func:`refresh_population` and held constant in the backward pass
  (no batch noise; the function is the same as BN's on a batch of all N).
"""
import numpy as np

from .. import batchnorm as F
from .. import train
from ..layers import BatchNorm, Linear, Module, ReLU, Sequential

KINDS = ("plain", "bn", "pop")
KEYS = ("train_acc", "test_acc", "train_loss", "test_loss", "gap_acc", "gap_loss")


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


def build(kind, ghost=None, dropout=0.0, width=100, seed=0):
    """The MLP 784 -> width -> width -> 10 for ``kind`` (see the module).

    The weights depend on ``seed`` only, so ``"bn"`` and ``"pop"`` (and every
    ghost size and dropout rate) start from the same weights; ``"plain"``
    draws the same weight matrices and adds zero biases.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: expected one of {KINDS}")
    gen = np.random.default_rng(seed)
    out, sizes = [], (784, width, width)
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        out.append(Linear(d_in, d_out, bias=kind == "plain", init="kaiming",
                          rng=gen))
        if kind == "bn":
            norm = GhostBN(d_out)
            norm.size = ghost
            out.append(norm)
        elif kind == "pop":
            out.append(PopulationBatchNorm(d_out))
        out.append(ReLU())
        if dropout:
            out.append(Dropout(dropout, rng=seed * 1000 + i))
    out.append(Linear(width, 10, init="kaiming", rng=gen))
    return Sequential(*out)


def check_ghost(ghost, batch_size):
    """A ValueError unless ghost is None or an int >= 2 dividing batch_size."""
    if ghost is None:
        return
    if isinstance(ghost, bool) or not isinstance(ghost, (int, np.integer)) \
            or ghost < 2 or batch_size % ghost:
        raise ValueError(f"ghost size must be an int >= 2 that divides the SGD "
                         f"batch {batch_size}, got {ghost!r}")


def run(kind, data, lr, steps, seed=0, batch_size=128, ghost=None, dropout=0.0,
        every=1, width=100):
    """Train one network; return the final KEYS as a dict of floats.

    Train and test accuracy and loss are measured in eval mode on the whole
    sets at the end; ``gap_acc = train_acc - test_acc`` and ``gap_loss =
    test_loss - train_loss``. For ``"pop"`` the statistics are refreshed on
    all of ``x_train`` before the first step, every ``every`` steps and after
    the last one (so eval mode uses the final weights' statistics).
    """
    check_ghost(ghost, batch_size)
    model = build(kind, ghost, dropout, width, seed)
    callback = None
    if kind == "pop":
        refresh_population(model, data[0])

        def callback(step, model, xb, yb):
            if step % every == 0:
                refresh_population(model, data[0])
    train.fit_steps(model, data, steps, lr, batch_size=batch_size, seed=seed,
                    step_callback=callback)
    if kind == "pop":
        refresh_population(model, data[0])
    tr_loss, tr_acc = train.evaluate(model, data[0], data[1])
    te_loss, te_acc = train.evaluate(model, data[2], data[3])
    return dict(train_acc=tr_acc, test_acc=te_acc, train_loss=tr_loss,
                test_loss=te_loss, gap_acc=tr_acc - te_acc,
                gap_loss=te_loss - tr_loss)


def sweep(configs, seeds, data, **common):
    """:func:`run` for every config (a dict of run's keyword arguments,
    merged over ``common``) and seed: ``{key: array (len(configs), len(seeds))}``."""
    out = {k: np.zeros((len(configs), len(seeds))) for k in KEYS}
    for i, config in enumerate(configs):
        for j, seed in enumerate(seeds):
            res = run(data=data, seed=seed, **{**common, **config})
            for k in KEYS:
                out[k][i, j] = res[k]
    return out
