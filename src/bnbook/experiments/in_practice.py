"""Experiments for the chapter "Batch normalization in practice".

Each function trains small MLPs on the MNIST subset (flattened, see
:func:`bnbook.experiments.common.flat_mnist`) and returns plain dicts of NumPy
arrays, deterministic for a seed:

- :func:`batch_size_sweep`: BN vs LayerNorm vs GroupNorm vs none over batch sizes.
- :func:`lr_sweep`: with and without BN over learning rates at one batch size.
- :func:`init_scale_sweep`: accuracy after training against the weight-init scale.
- :func:`running_stats_study`: how BN's running statistics follow training for
  several momenta, and what recalibrating them after training does.
- :func:`unrepresentative_batches`: BN evaluated or trained on batches that hold
  one class only.
- :func:`over_seeds`: any of these for several seeds, results stacked seed-first.
"""
import itertools

import numpy as np

from .. import train
from ..models import mlp
from .bn_statistics import (bn_layers, class_sorted_batches, recalibrate, record_stats,
                            replay, set_running, stop_recording, train_mode_accuracy)
from .common import flat_mnist, loss_and_grads

__all__ = ["NORMS", "batch_size_sweep", "bn_layers", "class_sorted_batches",
           "init_scale_sweep", "loss_and_grads", "lr_sweep", "make_mlp", "norm_name",
           "over_seeds", "recalibrate",
           "running_stats_study", "train_mode_accuracy", "unrepresentative_batches"]

NORMS = (None, "bn", "ln", "gn")


def norm_name(norm):
    """Label of a normalization for plots: 'none', 'BN', 'LN', 'GN'."""
    return {None: "none", "bn": "BN", "ln": "LN", "gn": "GN"}[norm]


def make_mlp(norm, hidden=(100, 100), seed=0, init_scale=1.0, activation="relu"):
    """784 -> hidden -> 10 ReLU MLP with ``norm`` before each activation.

    ``init_scale`` multiplies every Kaiming-initialized weight matrix.
    """
    model = mlp([784, *hidden, 10], activation=activation, norm=norm, rng=seed)
    for p in model.parameters():
        if p.data.ndim == 2:
            p.data *= init_scale
    return model


def batch_size_sweep(data=None, batch_sizes=(2, 4, 16, 64, 256), norms=NORMS, epochs=3,
                     base_lr=0.1, base_batch=64, max_lr=0.4, hidden=(100, 100), seed=0):
    """Train each normalization at each batch size for ``epochs`` epochs.

    The learning rate follows the linear scaling rule ``base_lr * B / base_batch``,
    capped at ``max_lr``. BN is evaluated with its running statistics (eval mode)
    and also after :func:`recalibrate` with batches of 256.

    Returns a dict with ``batch_sizes``, ``lr`` and, per norm label, arrays of
    eval-mode test accuracy (``acc``) and, for BN, ``acc_recal``.
    """
    data = flat_mnist(data) if data is None or data[0].ndim != 2 else data
    x_train, _, x_test, y_test = data
    out = {"batch_sizes": np.asarray(batch_sizes),
           "lr": np.asarray([min(base_lr * b / base_batch, max_lr) for b in batch_sizes]),
           "acc": {}, "acc_recal": {}, "diverged": {}}
    for norm in norms:
        name = norm_name(norm)
        accs, recal, diverged = [], [], []
        for b, lr in zip(batch_sizes, out["lr"]):
            model = make_mlp(norm, hidden, seed)
            hist = train.fit_steps(model, data, epochs * (len(x_train) // b), float(lr),
                                   batch_size=b, seed=seed)
            diverged.append(hist["diverged"])
            accs.append(train.evaluate(model, x_test, y_test)[1])
            if norm == "bn":
                recalibrate(model, x_train, 256)
                recal.append(train.evaluate(model, x_test, y_test)[1])
        out["acc"][name], out["diverged"][name] = np.asarray(accs), np.asarray(diverged)
        if norm == "bn":
            out["acc_recal"][name] = np.asarray(recal)
    return out


def lr_sweep(data=None, lrs=(0.1, 0.4, 1.6, 6.4), norms=(None, "bn"), epochs=1,
             batch_size=64, hidden=(100, 100), seed=0):
    """Test accuracy after ``epochs`` epochs at each fixed learning rate.

    Returns ``lrs`` and, per norm label, ``acc`` (NaN where the loss became
    NaN or inf, i.e. training diverged).
    """
    data = flat_mnist(data) if data is None or data[0].ndim != 2 else data
    x_train, _, x_test, y_test = data
    steps = epochs * (len(x_train) // batch_size)
    out = {"lrs": np.asarray(lrs, dtype=np.float64), "acc": {}}
    for norm in norms:
        accs = []
        for lr in lrs:
            model = make_mlp(norm, hidden, seed)
            hist = train.fit_steps(model, data, steps, float(lr),
                                   batch_size=batch_size, seed=seed)
            accs.append(np.nan if hist["diverged"]
                        else train.evaluate(model, x_test, y_test)[1])
        out["acc"][norm_name(norm)] = np.asarray(accs)
    return out


def over_seeds(experiment, seeds=(0, 1, 2), **kwargs):
    """``experiment(seed=s, **kwargs)`` for each seed, stacked seed-first.

    Every array leaf of the (nested) result dicts becomes an array with a new
    leading axis of length ``len(seeds)``; a number leaf becomes a 1-d array.
    """
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and non-empty, got {seeds!r}")
    return _stack([experiment(seed=s, **kwargs) for s in seeds])


def _stack(results):
    if isinstance(results[0], dict):
        return {k: _stack([r[k] for r in results]) for k in results[0]}
    return np.stack([np.asarray(r) for r in results])


def init_scale_sweep(data=None, scales=np.logspace(-1, 1, 9), norms=(None, "bn"), depth=6,
                     width=100, epochs=2, lr=0.05, batch_size=64, seed=0):
    """Test accuracy after ``epochs`` epochs against the init scale of every weight.

    Returns ``scales`` and, per norm label, ``acc`` and ``final_loss`` arrays
    (NaN loss where training diverged).
    """
    data = flat_mnist(data) if data is None or data[0].ndim != 2 else data
    x_train, _, x_test, y_test = data
    steps = epochs * (len(x_train) // batch_size)
    out = {"scales": np.asarray(scales), "acc": {}, "final_loss": {}}
    for norm in norms:
        accs, finals = [], []
        for s in scales:
            model = make_mlp(norm, (width,) * depth, seed, init_scale=float(s))
            hist = train.fit_steps(model, data, steps, lr, batch_size=batch_size, seed=seed)
            ok = not hist["diverged"]
            finals.append(float(np.mean(hist["step_loss"][-20:])) if ok else np.nan)
            accs.append(train.evaluate(model, x_test, y_test)[1] if ok else np.nan)
        out["acc"][norm_name(norm)] = np.asarray(accs)
        out["final_loss"][norm_name(norm)] = np.asarray(finals)
    return out


def running_stats_study(data=None, momenta=(0.001, 0.01, 0.1, 0.5), steps=600, every=30,
                        lr=0.1, batch_size=64, hidden=(100, 100), seed=0):
    """Eval-mode test accuracy along training for several BN momenta.

    BN's momentum only changes the running buffers, never the training
    trajectory (training mode normalizes with batch statistics), so the network
    is trained once; the batch statistics of every step are recorded and the
    running buffers of each momentum are replayed with
    :func:`bnbook.batchnorm.update_running` at each checkpoint (step 0, every
    ``every`` steps and the last step, the evaluations of
    :func:`bnbook.train.fit_steps`).

    Returns ``steps`` (checkpoints), ``acc`` (dict momentum -> accuracies),
    ``acc_train_mode`` (test batches of ``batch_size`` in training mode) and
    ``acc_recal`` (after :func:`recalibrate` on the training set).
    """
    data = flat_mnist(data) if data is None or data[0].ndim != 2 else data
    x_train, _, x_test, y_test = data
    model = make_mlp("bn", hidden, seed)
    layers = bn_layers(model)
    stores = record_stats(layers)
    out = {"steps": [], "acc": {mom: [] for mom in momenta}, "acc_train_mode": [],
           "acc_recal": []}

    def checkpoint(t, model, history):
        snapshot = model.state_dict()
        out["steps"].append(t)
        for mom in momenta:
            set_running(layers, replay(layers, stores, t, mom))
            out["acc"][mom].append(train.evaluate(model, x_test, y_test)[1])
        n_recorded = [len(s) for s in stores]
        out["acc_train_mode"].append(train_mode_accuracy(model, x_test, y_test, batch_size))
        recalibrate(model, x_train, 256)
        out["acc_recal"].append(train.evaluate(model, x_test, y_test)[1])
        for store, n in zip(stores, n_recorded):          # probes are not training steps
            del store[n:]
        model.load_state_dict(snapshot)

    try:
        train.fit_steps(model, data, steps, lr, batch_size=batch_size, seed=seed,
                        eval_every=every, callback=checkpoint)
    finally:
        stop_recording(layers)
    return {"steps": np.asarray(out["steps"]),
            "acc": {k: np.asarray(v) for k, v in out["acc"].items()},
            "acc_train_mode": np.asarray(out["acc_train_mode"]),
            "acc_recal": np.asarray(out["acc_recal"])}


def unrepresentative_batches(data=None, norms=(None, "bn"), epochs=3, lr=0.1, batch_size=64,
                             hidden=(100, 100), seed=0):
    """What one-class batches do to BN, at test time and at training time.

    For each norm, two networks are trained for ``epochs`` epochs: on shuffled
    batches and on one-class batches (:func:`class_sorted_batches`). Each is
    tested in eval mode and, for BN, in training mode on shuffled test batches
    and on one-class test batches.

    Returns ``{norm label: {training: {test setting: accuracy}}}``.
    """
    data = flat_mnist(data) if data is None or data[0].ndim != 2 else data
    x_train, y_train, x_test, y_test = data
    rng = np.random.default_rng(seed)
    sorted_train = class_sorted_batches(y_train, batch_size, rng)
    test_shuffled = rng.permutation(len(x_test))
    test_sorted = np.concatenate(class_sorted_batches(y_test, batch_size, rng))
    steps = epochs * (len(x_train) // batch_size)
    out = {}
    for norm in norms:
        out[norm_name(norm)] = {}
        for training, order in (("shuffled", None), ("one class per batch", sorted_train)):
            model = make_mlp(norm, hidden, seed)
            batches = None if order is None else itertools.cycle(order)
            train.fit_steps(model, data, steps, lr, batch_size=batch_size, seed=seed,
                            batches=batches)
            result = {"eval mode": train.evaluate(model, x_test, y_test)[1]}
            if norm == "bn":
                result["train mode, shuffled batches"] = train_mode_accuracy(
                    model, x_test, y_test, batch_size, test_shuffled)
                result["train mode, one-class batches"] = train_mode_accuracy(
                    model, x_test, y_test, batch_size, test_sorted)
            out[norm_name(norm)][training] = result
    return out
