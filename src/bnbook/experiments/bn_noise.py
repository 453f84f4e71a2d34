"""BN as noise: batch, population and ghost-batch statistics, with or without dropout.

The MLP 784 -> width -> width -> 10 (``Linear -> norm -> ReLU [-> Dropout]``
per hidden layer) is trained with SGD on flat MNIST in one of four ways:

* ``"plain"``: no normalization (the Linear layers keep their biases);
* ``"bn"``: :class:`GhostBN`, batch statistics over consecutive ghost batches
  of ``ghost`` samples of each SGD batch (``ghost = None``: ordinary BN); the
  same computation as :class:`~bnbook.experiments.ghost.GhostBatchNorm`,
  vectorized over the ghost batches (tests compare the two);
* ``"frozen"``: batch statistics in the forward pass, held constant in the
  backward pass (:class:`~bnbook.experiments.deep_mlp.FrozenStats`): BN's
  noise with the population variant's backward;
* ``"pop"``: :class:`PopulationBatchNorm`, normalized with statistics of the
  *whole training set* at the current weights, recomputed every ``every``
  steps by :func:`refresh_population` and held constant in the backward pass
  (no batch noise; the function is the same as BN's on a batch of all N).
"""
import numpy as np

from .. import train
from ..layers import BatchNorm, Linear, ReLU, Sequential
from .bn_noise_layers import Dropout, GhostBN, PopulationBatchNorm, refresh_population
from .deep_mlp import FrozenStats

__all__ = ["Dropout", "GhostBN", "KEYS", "KINDS", "PopulationBatchNorm", "build",
           "check_ghost", "refresh_population", "run", "sweep"]

KINDS = ("plain", "bn", "frozen", "pop")
KEYS = ("train_acc", "test_acc", "train_loss", "test_loss", "gap_acc", "gap_loss",
        "step_loss")


def build(kind, ghost=None, dropout=0.0, width=100, seed=0, drop_last=False):
    """The MLP 784 -> width -> width -> 10 for ``kind`` (see the module).

    Dropout follows every hidden ReLU, or with ``drop_last`` only the last one
    (so that no normalization layer comes after it).

    The weights depend on ``seed`` only, so the normalized kinds (and every
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
        elif kind == "frozen":
            out.append(FrozenStats(BatchNorm(d_out)))
        elif kind == "pop":
            out.append(PopulationBatchNorm(d_out))
        out.append(ReLU())
        if dropout and (not drop_last or i == len(sizes) - 2):
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
        every=1, width=100, drop_last=False):
    """Train one network; return the final KEYS as a dict of floats.

    Train and test accuracy and loss are measured in eval mode on the whole
    sets at the end; ``gap_acc = train_acc - test_acc`` and ``gap_loss =
    test_loss - train_loss``; ``step_loss`` is the mean training-mode loss of
    the last 50 SGD steps (the statistics and dropout of training). For ``"pop"`` the statistics are refreshed on
    all of ``x_train`` before the first step, every ``every`` steps (default
    1: before every step) and after the last one (so eval mode uses the final
    weights' statistics). ``drop_last``: see :func:`build`.
    """
    check_ghost(ghost, batch_size)
    model = build(kind, ghost, dropout, width, seed, drop_last)
    callback = None
    if kind == "pop":
        refresh_population(model, data[0])

        def callback(step, model, xb, yb):
            if step % every == 0:
                refresh_population(model, data[0])
    hist = train.fit_steps(model, data, steps, lr, batch_size=batch_size, seed=seed,
                    step_callback=callback)
    if kind == "pop":
        refresh_population(model, data[0])
    tr_loss, tr_acc = train.evaluate(model, data[0], data[1])
    te_loss, te_acc = train.evaluate(model, data[2], data[3])
    return dict(train_acc=tr_acc, test_acc=te_acc, train_loss=tr_loss,
                test_loss=te_loss, gap_acc=tr_acc - te_acc,
                gap_loss=te_loss - tr_loss,
                step_loss=float(np.mean(hist["step_loss"][-50:])))


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
