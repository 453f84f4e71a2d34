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
  devices of ``b`` samples each computes;
* ``"ghost_bn"``, ``"ghost_brn"``: SGD batches of ``k b`` whose ``k``
  micro-batches of ``b`` are normalized separately (ghost batches, or ``k``
  devices that do not synchronize; Ioffe's small-minibatch set-up) with BN or
  Batch Renormalization.

The rate follows the linear scaling rule: ``lr`` is the rate at a batch of
``lr_batch`` and a step on ``n`` samples uses ``lr * n / lr_batch``.
"""
import numpy as np

from .. import train
from ..layers import BatchNorm, BatchRenorm
from ..models.mlp import mlp
from .bn_statistics import recalibrate
from .ghost import GhostBatchNorm, GhostBatchRenorm

METHODS = ("bn", "recal", "brn", "gn", "gathered", "ghost_bn", "ghost_brn")
KEYS = ("eval_acc", "batch_acc", "gap", "train_acc", "r_low", "r_high", "d_clip")


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


def build(method, width=64, depth=2, groups=8, seed=0, micro=None):
    """The MLP 784 -> width (x depth) -> 10 with ``method``'s normalization.

    Every method but ``"gn"`` starts from the same weights for one ``seed``;
    ``"bn"``, ``"recal"`` and ``"gathered"`` are the same BN network (they
    differ in training and in the statistics used at test time). ``micro``:
    the micro-batch size of the ghost methods.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: expected one of {METHODS}")
    norm = "gn" if method == "gn" else "bn"
    model = mlp([784] + [width] * depth + [10], norm=norm, rng=seed,
                norm_kwargs={"num_groups": groups} if norm == "gn" else None)
    cls = {"brn": BatchRenorm, "ghost_bn": GhostBatchNorm,
           "ghost_brn": GhostBatchRenorm}.get(method)
    seq = model.layers
    for i, layer in enumerate(seq):           # same weights, BN layers swapped
        if cls is not None and type(layer) is BatchNorm:
            seq[i] = cls(layer.num_features)
            seq[i].size = micro
    return model


def clip_recorder(model, steps, start=0.5):
    """A ``step_callback`` that sets the renorm limits and records, after
    ``start`` of the steps, the share of ``layer.r`` at its lower and upper
    limit and of ``|layer.d|`` at ``d_max`` (appended to ``.shares``)."""
    layers = [m for m in model.modules() if isinstance(m, BatchRenorm)]
    schedule = renorm_schedule(model, steps)

    def callback(step, model, xb, yb):
        if step > start * steps:              # r, d of the previous step
            for m in layers:
                callback.shares.append([np.mean(m.r <= 1 / m.r_max + 1e-9),
                                        np.mean(m.r >= m.r_max - 1e-9),
                                        np.mean(np.abs(m.d) >= m.d_max - 1e-9)])
        schedule(step, model, xb, yb)
    callback.shares = []
    return callback


def train_eval_accuracy(model, x, y, batch_size):
    """Test accuracy with batch statistics (consecutive batches of
    ``batch_size``, training-mode forward, buffers put back) and in eval mode."""
    hits = [train.predict(model, x, batch_size, training=t).argmax(1) == y
            for t in (True, False)]
    return float(hits[0].mean()), float(hits[1].mean())


def run(method, batch_size, lr, seed, data, epochs=2, k=4, recal_batch=100,
        lr_batch=8, n_train_acc=1000):
    """Train one network and measure it.

    Parameters
    ----------
    method : one of :data:`METHODS`; ``"bn"`` and ``"recal"`` train the same
        network and both are measured (the recalibration comes after BN's test)
    batch_size : the normalization batch ``b`` (int >= 2); ``"gathered"`` and
        the ghost methods take SGD steps on ``k b`` samples
    lr : SGD rate at a batch of ``lr_batch``; a step on ``n`` samples uses
        ``lr * n / lr_batch`` (the linear scaling rule)
    seed : seeds the weights and the batch order
    data : flat ``(x_train, y_train, x_test, y_test)``
    epochs : passes over ``x_train``; ``epochs * N // (SGD batch)`` steps
    n_train_acc : ``train_acc`` uses the first ``n_train_acc`` training samples

    Returns
    -------
    dict
        ``"steps"`` and, per measured method, ``{"eval_acc": test accuracy in
        eval mode, "batch_acc": test accuracy on consecutive batches of the
        normalization batch with their own statistics, "gap": batch_acc -
        eval_acc, "train_acc": as batch_acc on training samples, "r_low",
        "r_high", "d_clip": shares of r at 1/r_max, at r_max and of |d| at
        d_max in the second half of training (NaN but for BatchRenorm)}``.
        Accuracies are NaN if training diverged.
    """
    _check_batch(batch_size, len(data[0]))
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k (micro-batches per SGD batch) must be an int "
                         f">= 1, got {k!r}")
    model = build(method, seed=seed, micro=batch_size)
    plain = method in ("bn", "recal", "brn", "gn")
    step_b = batch_size if plain else k * batch_size
    norm_b = k * batch_size if method == "gathered" else batch_size
    steps = epochs * len(data[0]) // step_b
    hook = clip_recorder(model, steps) if "brn" in method else None
    hist = train.fit_steps(model, data, steps, lr * step_b / lr_batch,
                           batch_size=step_b, seed=seed, step_callback=hook)
    shares = np.mean(hook.shares, axis=0) if hook else np.full(3, np.nan)
    out = {"steps": steps}
    for name in ("bn", "recal") if method in ("bn", "recal") else (method,):
        if name == "recal" and not hist["diverged"]:
            recalibrate(model, data[0], recal_batch)
        out[name] = dict(zip(KEYS[4:], shares))
        out[name].update(_accuracies(model, data, norm_b, n_train_acc,
                                     hist["diverged"]))
    return out


def _accuracies(model, data, norm_b, n_train_acc, diverged):
    """eval_acc, batch_acc, gap and train_acc of :func:`run`."""
    if diverged:
        return dict.fromkeys(KEYS[:4], np.nan)
    batch_acc, eval_acc = train_eval_accuracy(model, data[2], data[3], norm_b)
    x, y = data[0][:n_train_acc], data[1][:n_train_acc]
    train_acc = train_eval_accuracy(model, x, y, norm_b)[0]
    return {"eval_acc": eval_acc, "batch_acc": batch_acc,
            "gap": batch_acc - eval_acc, "train_acc": train_acc}


def sweep(methods, batch_sizes, lrs, seeds, data, **kwargs):
    """:func:`run` over a grid: ``{key: array (method, batch, lr, seed)}``.

    ``methods`` may hold ``"bn"`` and ``"recal"`` together; they then come
    from the same trained networks (one training per seed).
    """
    shape = (len(methods), len(batch_sizes), len(lrs), len(seeds))
    out = {key: np.full(shape, np.nan) for key in KEYS}
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
