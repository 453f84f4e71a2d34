"""Scale invariance, weight decay and the effective learning rate.

A Linear layer followed by BatchNorm computes the same function for ``W`` and
``c W`` (c > 0, exactly when eps = 0), one output unit (one row of ``W``) at a
time. :func:`train` runs SGD on such a network with weight decay on these
scale-invariant weights only, or with the exponentially growing learning rate
that Li & Arora (2020) show equivalent, and records per layer ``||W||^2``,
``||grad||^2`` and the effective learning rate ``lr / mean_r ||w_r||^2``.
"""
import math
import numbers

import numpy as np

from .. import backend, layers
from ..losses import softmax_cross_entropy
from ..models import mlp
from ..optim import SGD
from ..train import evaluate, minibatches
from ..train._checks import check_lr


def bn_mlp(width=100, depth=2, seed=0, dtype=np.float32, eps=1e-5):
    """``784 -> width (x depth) -> 10``, each hidden block Linear (no bias) -> BN -> ReLU.

    Kaiming-normal weights seeded by ``seed``; ``eps`` is every BatchNorm's.
    """
    return mlp([784] + [width] * depth + [10], norm="bn", rng=seed, dtype=dtype,
               norm_kwargs={"eps": eps})


def scale_invariant(model):
    """The weights of the Linear layers that a BatchNorm follows directly, in order."""
    seq = getattr(model, "layers", None)
    if seq is None:
        raise TypeError(f"model must be a Sequential, got {type(model).__name__}")
    return [a.weight for a, b in zip(seq[:-1], seq[1:])
            if isinstance(a, layers.Linear) and isinstance(b, layers.BatchNorm)]


def norm_after_step(w, grad, lr, weight_decay=0.0):
    """``||w'||^2`` for ``w' = (1 - lr wd) w - lr grad`` when ``grad`` is orthogonal to ``w``.

    ``(1 - lr wd)^2 ||w||^2 + lr^2 ||grad||^2``: with ``wd = 0`` the norm only grows.
    """
    w, grad = np.asarray(w, np.float64), np.asarray(grad, np.float64)
    if w.shape != grad.shape:
        raise ValueError(f"w and grad must have the same shape, got {w.shape} "
                         f"and {grad.shape}")
    return (1 - lr * weight_decay) ** 2 * np.sum(w * w) + lr ** 2 * np.sum(grad * grad)


def exp_lr(lr, decay, t):
    """Li & Arora's rate ``lr (1 - lr decay)^(-2t-1)`` at step ``t`` (from 0)."""
    return lr * (1 - lr * decay) ** (-2 * t - 1)


def _check(steps, lr, weight_decay, schedule_decay, record_every):
    for name, v in (("steps", steps), ("record_every", record_every)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    if not (isinstance(lr, numbers.Real) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    for name, v in (("weight_decay", weight_decay), ("schedule_decay", schedule_decay)):
        if not (isinstance(v, numbers.Real) and 0 <= v and lr * v < 1):
            raise ValueError(f"{name} must be >= 0 with lr * {name} < 1, got {v!r}")
    if weight_decay and schedule_decay:
        raise ValueError("use weight_decay or its equivalent schedule_decay, not both")


def _record(rec, t, lr_t, weights):
    rec["step"].append(t)
    rec["lr"].append(lr_t)
    w2 = [float(np.sum(w.data.astype(np.float64) ** 2)) for w in weights]
    g2 = [float(np.sum(w.grad.astype(np.float64) ** 2)) for w in weights]
    rec["w2"].append(w2)
    rec["g2"].append(g2)
    rec["eff_lr"].append([lr_t * len(w.data) / n for w, n in zip(weights, w2)])


def directions(weights):
    """Each row of each weight divided by its norm (float64 host arrays)."""
    out = []
    for w in weights:
        a = np.asarray(backend.to_numpy(w.data), np.float64)
        out.append(a / np.linalg.norm(a, axis=1, keepdims=True))
    return out


def train(model, data, steps, lr, weight_decay=0.0, schedule_decay=0.0, other_lr=None,
          batch_size=128, seed=0, record_every=10, eval_every=None, snapshot_every=None):
    """SGD on softmax cross-entropy, weight decay on the scale-invariant weights only.

    Parameters
    ----------
    model : Sequential (e.g. :func:`bn_mlp`); data : a Dataset of flat rows
    steps, lr : number of steps, learning rate of the scale-invariant weights
    weight_decay : coupled L2 (``grad += wd * w``) on the weights of
        :func:`scale_invariant` only; the other parameters get none
    schedule_decay : 0, or lam > 0: no weight decay, and the scale-invariant
        weights get the rate :func:`exp_lr` ``(lr, lam, t)`` at step t (the
        schedule equivalent to weight decay lam)
    other_lr : learning rate of every other parameter (BN's gamma and beta,
        the output layer); None means ``lr``
    batch_size, seed : :func:`bnbook.train.minibatches` with this seed
    record_every : record the norms every this many steps (from step 0)
    eval_every : None, or test accuracy every this many steps and at the end
    snapshot_every : None, or keep :func:`directions` every this many steps

    Returns
    -------
    dict of arrays: ``step``, ``lr`` (rate of the scale-invariant weights),
    ``w2`` and ``g2`` (steps, layers): ``||W||_F^2`` before the step and the
    squared norm of that step's loss gradient (decay excluded), ``eff_lr``
    ``lr * rows / ||W||_F^2``; ``loss`` per step; ``eval_step``, ``test_acc``;
    ``directions`` (:func:`directions` at the end); ``snapshots``, a list of
    :func:`directions` at steps ``0, snapshot_every, ...`` (before those steps).
    """
    _check(steps, lr, weight_decay, schedule_decay, record_every)
    if other_lr is not None:
        check_lr(other_lr)
    weights = scale_invariant(model)
    if not weights:
        raise ValueError("model has no Linear layer followed directly by a BatchNorm: "
                         "no scale-invariant weights to train")
    ids = {id(w) for w in weights}
    opt_w = SGD(weights, lr, weight_decay=weight_decay)
    opt_rest = SGD([p for p in model.parameters() if id(p) not in ids],
                   lr if other_lr is None else other_lr)
    rec = {k: [] for k in ("step", "lr", "w2", "g2", "eff_lr", "loss",
                           "eval_step", "test_acc")}
    snaps = []
    batches = minibatches(len(data[0]), batch_size, np.random.default_rng(seed))
    model.train()
    for t in range(steps + 1):
        if eval_every is not None and (t % eval_every == 0 or t == steps):
            rec["eval_step"].append(t)
            rec["test_acc"].append(evaluate(model, data[2], data[3])[1])
            model.train()
        if t == steps:
            break
        idx = next(batches)
        loss, dlogits = softmax_cross_entropy(model.forward(data[0][idx]), data[1][idx])
        model.backward(dlogits)
        opt_w.lr = exp_lr(lr, schedule_decay, t) if schedule_decay else lr
        if snapshot_every is not None and t % snapshot_every == 0:
            snaps.append(directions(weights))
        if t % record_every == 0:
            _record(rec, t, opt_w.lr, weights)
        rec["loss"].append(float(loss))
        if not math.isfinite(loss):
            raise FloatingPointError(f"loss became {loss} at step {t}: lr too large")
        opt_w.step()
        opt_rest.step()
    out = {k: np.asarray(v) for k, v in rec.items()}
    out["directions"], out["snapshots"] = directions(weights), snaps
    return out


def cosines(dirs_a, dirs_b):
    """Mean cosine between matching rows of two :func:`directions` lists, per layer."""
    if len(dirs_a) != len(dirs_b):
        raise ValueError(f"direction lists differ in length: {len(dirs_a)} and {len(dirs_b)}")
    return np.array([np.mean(np.sum(a * b, axis=1)) for a, b in zip(dirs_a, dirs_b)])


def run(configs, data, seeds, steps, **kwargs):
    """:func:`train` a fresh :func:`bn_mlp` (seeded like the batches) per config and seed.

    ``configs`` maps a name to keyword arguments of :func:`train` (``lr`` at
    least); ``kwargs`` go to every call. Returns ``{(name, seed): record}``.
    """
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    return {(name, s): train(bn_mlp(seed=s), data, steps, seed=s, **kwargs, **cfg)
            for name, cfg in configs.items() for s in seeds}
