"""Small batches: BN, Batch Renormalization, GroupNorm, recalibrated and gathered BN.

An MLP on flat MNIST is trained with one of five normalizations at a given
batch size ``b`` and then tested in eval mode and with batch statistics:

* ``"bn"``: :class:`~bnbook.layers.BatchNorm`, SGD batches of ``b``;
* ``"recal"``: the same trained BN network with its running statistics
  replaced by population estimates (:func:`bn_statistics.recalibrate`);
* ``"brn"``: :class:`~bnbook.layers.BatchRenorm` with the limits of
  :func:`renorm_limits` relaxed from (1, 0) during training;
* ``"gn"``: :class:`~bnbook.layers.GroupNorm` (no batch statistics at all);
* ``"gathered"``: BN whose statistics are gathered over ``k`` micro-batches of
  ``b``, i.e. BN trained on batches of ``k b``: what synchronized BN over ``k``
  devices of ``b`` samples each computes.

The rate follows the linear scaling rule: ``lr`` is the rate at a batch of
``lr_batch`` and a step on ``n`` samples uses ``lr * n / lr_batch``.
"""
import numpy as np

from .. import train
from ..layers import BatchRenorm
from ..models.mlp import mlp
from .bn_statistics import recalibrate

METHODS = ("bn", "recal", "brn", "gn", "gathered")


def _check_batch(batch_size, n):
    """batch_size an int in [2, n]; else a ValueError saying why."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or not 2 <= batch_size <= n:
        raise ValueError(f"batch_size must be an int from 2 (BN needs two values) to "
                         f"the {n} training samples, got {batch_size!r}")


def renorm_limits(step, steps, r_max=3.0, d_max=5.0, hold=0.1, ramp_end=0.5):
    """(r_max, d_max) at ``step`` of ``steps``: plain BN, then a linear ramp.

    The limits are (1, 0) for the first ``hold`` fraction of the steps, grow
    linearly to (r_max, d_max) at the ``ramp_end`` fraction and stay there:
    Ioffe's schedule (1 and 0 for 5k steps, then relaxed) compressed to a
    short run.
    """
    if not 0 <= hold < ramp_end <= 1:
        raise ValueError(f"need 0 <= hold < ramp_end <= 1, got hold={hold}, "
                         f"ramp_end={ramp_end}")
    frac = np.clip((step / steps - hold) / (ramp_end - hold), 0.0, 1.0)
    return 1.0 + frac * (r_max - 1.0), frac * d_max


def renorm_schedule(model, steps, **kwargs):
    """A ``step_callback`` for :func:`bnbook.train.fit_steps` that sets the
    limits of every BatchRenorm layer of ``model`` by :func:`renorm_limits`."""
    layers = [m for m in model.modules() if isinstance(m, BatchRenorm)]

    def callback(step, model, xb, yb):
        r_max, d_max = renorm_limits(step, steps, **kwargs)
        for layer in layers:
            layer.r_max, layer.d_max = r_max, d_max
    return callback


def build(method, width=64, depth=2, groups=8, seed=0):
    """The MLP 784 -> width (x depth) -> 10 with ``method``'s normalization.

    ``"bn"``, ``"recal"`` and ``"gathered"`` are the same BN network (they
    differ in training and in the statistics used at test time).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: expected one of {METHODS}")
    norm = {"brn": "bn", "gn": "gn"}.get(method, "bn")
    model = mlp([784] + [width] * depth + [10], norm=norm, rng=seed,
                norm_kwargs={"num_groups": groups} if norm == "gn" else None)
    if method == "brn":                       # same weights, BN layers swapped
        seq = model.layers
        for i, layer in enumerate(seq):
            if type(layer).__name__ == "BatchNorm":
                seq[i] = BatchRenorm(layer.num_features)
    return model


def train_eval_accuracy(model, x, y, batch_size):
    """Test accuracy with batch statistics (consecutive batches of
    ``batch_size``, training-mode forward, buffers put back) and in eval mode."""
    hits = [train.predict(model, x, batch_size, training=t).argmax(1) == y
            for t in (True, False)]
    return float(hits[0].mean()), float(hits[1].mean())


def run(method, batch_size, lr, seed, data, epochs=2, k=4, recal_batch=100,
        lr_batch=8):
    """Train one network and measure it.

    Parameters
    ----------
    method : one of :data:`METHODS`; ``"bn"`` and ``"recal"`` train the same
        network and both are measured (the recalibration comes after BN's test)
    batch_size : the per-device batch ``b`` (int >= 2); ``"gathered"`` trains on
        ``k b`` samples per step
    lr : SGD rate (no momentum) at a batch of ``lr_batch``; a step on ``n``
        samples uses ``lr * n / lr_batch`` (the linear scaling rule)
    seed : seeds the weights and the batch order
    data : flat ``(x_train, y_train, x_test, y_test)``
    epochs : passes over ``x_train``; a run takes ``epochs * N // batch`` steps
    recal_batch : batch size of the recalibration pass over ``x_train``

    Returns
    -------
    dict
        method name -> ``{"eval_acc": eval mode, "batch_acc": consecutive test
        batches of the normalization batch (``b``, or ``k b`` for
        ``"gathered"``) normalized with their own statistics, "gap": batch_acc
        - eval_acc}`` (NaN if training diverged), and ``"steps"``.
    """
    x_train = data[0]
    _check_batch(batch_size, len(x_train))
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k (micro-batches gathered) must be an int >= 1, "
                         f"got {k!r}")
    model = build(method, seed=seed)
    step_b = k * batch_size if method == "gathered" else batch_size
    rate = lr * step_b / lr_batch
    steps = epochs * len(x_train) // step_b
    hook = renorm_schedule(model, steps) if method == "brn" else None
    hist = train.fit_steps(model, data, steps, rate, batch_size=step_b,
                           seed=seed, step_callback=hook)
    names = ("bn", "recal") if method in ("bn", "recal") else (method,)
    out = {"steps": steps}
    for name in names:
        if name == "recal" and not hist["diverged"]:
            recalibrate(model, x_train, recal_batch)
        acc = (np.nan, np.nan) if hist["diverged"] else \
            train_eval_accuracy(model, data[2], data[3], step_b)
        out[name] = {"batch_acc": acc[0], "eval_acc": acc[1],
                     "gap": acc[0] - acc[1]}
    return out


def sweep(methods, batch_sizes, lrs, seeds, data, **kwargs):
    """:func:`run` over a grid: ``{key: array (method, batch, lr, seed)}``.

    ``methods`` may hold ``"bn"`` and ``"recal"`` together; they then come
    from the same trained networks (one training per seed).
    """
    shape = (len(methods), len(batch_sizes), len(lrs), len(seeds))
    out = {key: np.full(shape, np.nan) for key in ("eval_acc", "batch_acc", "gap")}
    for i, method in enumerate(methods):
        if method == "recal" and "bn" in methods[:i]:
            continue                         # filled in by "bn"'s runs
        for j, b in enumerate(batch_sizes):
            for l, lr in enumerate(lrs):
                for s, seed in enumerate(seeds):
                    res = run(method, b, lr, seed, data, **kwargs)
                    for name in set(res) & set(methods):
                        for key in out:
                            out[key][methods.index(name), j, l, s] = \
                                res[name][key]
    return out


def best_rate(acc, lrs):
    """The rate of ``lrs`` with the highest mean of ``acc`` (..., lr, seed):
    returns ``(index, rate, mean accuracy per rate)``; NaN (diverged) counts
    as worst."""
    if acc.shape[-2] != len(lrs):
        raise ValueError(f"acc has {acc.shape[-2]} rates on axis -2, lrs has {len(lrs)}")
    mean = np.nan_to_num(acc, nan=-1.0).mean(axis=-1)
    mean = mean.reshape(-1, len(lrs)).mean(axis=0)
    i = int(np.argmax(mean))
    return i, lrs[i], mean
