"""Experiments for the chapter "Batch normalization in practice".

Each function trains small MLPs on the MNIST subset (flattened, see
:func:`bnbook.experiments.common.flat_mnist`) and returns plain dicts of NumPy
arrays, deterministic for a seed:

- :func:`batch_size_sweep`: BN vs LayerNorm vs GroupNorm vs none over batch sizes.
- :func:`init_scale_sweep`: accuracy after training against the weight-init scale.
- :func:`running_stats_study`: how BN's running statistics follow training for
  several momenta, and what recalibrating them after training does.
- :func:`unrepresentative_batches`: BN evaluated or trained on batches that hold
  one class only.
"""
import numpy as np

from .. import batchnorm as F
from ..layers import BatchNorm, Flatten, Sequential
from ..models import mlp
from .common import accuracy, flat_mnist, loss_and_grads, minibatches
from ..optim import SGD

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


def bn_layers(model):
    """The BatchNorm layers of ``model`` in forward order."""
    found = []

    def walk(m):
        if isinstance(m, BatchNorm):
            found.append(m)
        for _, child in m.named_children():
            walk(child)
    walk(model)
    return found


def train_steps(model, data, steps, lr, batch_size, seed=0, order=None):
    """``steps`` SGD steps (batches from ``minibatches``, or ``order``: a list of index
    arrays cycled through). Returns the list of training losses (NaN stops early)."""
    x_train, y_train = data[0], data[1]
    batches = minibatches(len(x_train), batch_size, np.random.default_rng(seed))
    opt = SGD(model.parameters(), lr=lr)
    model.train()
    losses = []
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            idx = order[t % len(order)] if order is not None else next(batches)
            loss, _ = loss_and_grads(model, x_train[idx], y_train[idx])
            losses.append(loss)
            if not np.isfinite(loss):
                break
            opt.step()
    return losses


def recalibrate(model, x, batch_size):
    """Replace every BN layer's running statistics by population estimates.

    Passes ``x`` through the model in training mode in batches of ``batch_size``
    and averages the batch statistics with equal weights (momentum 1/k at the
    k-th batch): running_mean = E_B[mu_B], running_var = m/(m-1) E_B[sigma_B^2],
    the inference rule of Ioffe & Szegedy. Parameters are not changed.
    """
    layers = bn_layers(model)
    saved = [layer.momentum for layer in layers]
    model.train()
    n_batches = len(x) // batch_size
    for k in range(n_batches):
        for layer in layers:
            layer.momentum = 1.0 / (k + 1)
        model.forward(x[k * batch_size:(k + 1) * batch_size])
    for layer, momentum in zip(layers, saved):
        layer.momentum = momentum
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
            losses = train_steps(model, data, epochs * (len(x_train) // b), float(lr), b, seed)
            diverged.append(not np.isfinite(losses[-1]))
            accs.append(accuracy(model, x_test, y_test))
            if norm == "bn":
                recal.append(accuracy(recalibrate(model, x_train, 256), x_test, y_test))
        out["acc"][name], out["diverged"][name] = np.asarray(accs), np.asarray(diverged)
        if norm == "bn":
            out["acc_recal"][name] = np.asarray(recal)
    return out


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
            losses = train_steps(model, data, steps, lr, batch_size, seed)
            finals.append(float(np.mean(losses[-20:])) if np.isfinite(losses[-1]) else np.nan)
            accs.append(accuracy(model, x_test, y_test) if np.isfinite(losses[-1]) else np.nan)
        out["acc"][norm_name(norm)] = np.asarray(accs)
        out["final_loss"][norm_name(norm)] = np.asarray(finals)
    return out


def _record_stats(layers):
    """Make each BN layer append ``(mu, var, m)`` of every training forward to a list."""
    stores = [[] for _ in layers]
    for layer, store in zip(layers, stores):
        original = layer.forward

        def forward(x, layer=layer, store=store, original=original):
            y = original(x)
            if layer.training:
                c = layer.cache
                store.append((np.array(c.mu), np.array(c.var), c.m))
            return y
        layer.forward = forward                       # instance attribute shadows the method
    return stores


def _set_running(layers, stats):
    for layer, (mean, var) in zip(layers, stats):
        layer.running_mean = mean.astype(layer.running_mean.dtype)
        layer.running_var = var.astype(layer.running_var.dtype)


def _replay(layers, stores, upto, momentum):
    """Running (mean, var) of each layer after the first ``upto`` steps at ``momentum``,
    starting from the layers' initial buffers (mean 0, variance 1)."""
    result = []
    for layer, store in zip(layers, stores):
        mean, var = np.zeros(layer.num_features), np.ones(layer.num_features)
        for stats in store[:upto]:
            mean, var = F.update_running(mean, var, stats, momentum)
        result.append((mean, var))
    return result


def train_mode_accuracy(model, x, labels, batch_size=64, order=None):
    """Accuracy when the test set is passed in training mode (batch statistics).

    Batches are consecutive slices of ``order`` (default: a fixed random
    permutation, since data sets are often stored sorted by class). BN's running
    buffers are put back afterwards.
    """
    layers = bn_layers(model)
    saved = [(layer.running_mean.copy(), layer.running_var.copy()) for layer in layers]
    order = np.random.default_rng(0).permutation(len(x)) if order is None else order
    was_training = model.training
    model.train()
    hits = 0
    for start in range(0, len(order) - batch_size + 1, batch_size):
        idx = order[start:start + batch_size]
        hits += int((model.forward(x[idx]).argmax(axis=1) == labels[idx]).sum())
    _set_running(layers, saved)
    model.train(was_training)
    return hits / (len(order) // batch_size * batch_size)


def running_stats_study(data=None, momenta=(0.001, 0.01, 0.1, 0.5), steps=600, every=30,
                        lr=0.1, batch_size=64, hidden=(100, 100), seed=0):
    """Eval-mode test accuracy along training for several BN momenta.

    BN's momentum only changes the running buffers, never the training
    trajectory (training mode normalizes with batch statistics), so the network
    is trained once; the batch statistics of every step are recorded and the
    running buffers of each momentum are replayed with
    :func:`bnbook.batchnorm.update_running` at each checkpoint.

    Returns ``steps`` (checkpoints), ``acc`` (dict momentum -> accuracies),
    ``acc_train_mode`` (test batches of ``batch_size`` in training mode) and
    ``acc_recal`` (after :func:`recalibrate` on the training set).
    """
    data = flat_mnist(data) if data is None or data[0].ndim != 2 else data
    x_train, y_train, x_test, y_test = data
    model = make_mlp("bn", hidden, seed)
    layers = bn_layers(model)
    stores = _record_stats(layers)
    batches = minibatches(len(x_train), batch_size, np.random.default_rng(seed))
    opt = SGD(model.parameters(), lr=lr)
    out = {"steps": [], "acc": {mom: [] for mom in momenta}, "acc_train_mode": [],
           "acc_recal": []}
    for t in range(steps + 1):
        if t % every == 0:
            snapshot = model.state_dict()
            out["steps"].append(t)
            for mom in momenta:
                _set_running(layers, _replay(layers, stores, t, mom))
                out["acc"][mom].append(accuracy(model, x_test, y_test))
            n_recorded = [len(s) for s in stores]
            out["acc_train_mode"].append(train_mode_accuracy(model, x_test, y_test,
                                                             batch_size))
            out["acc_recal"].append(accuracy(recalibrate(model, x_train, 256), x_test, y_test))
            for store, n in zip(stores, n_recorded):      # probes are not training steps
                del store[n:]
            model.load_state_dict(snapshot)
        if t == steps:
            break
        model.train()
        idx = next(batches)
        loss_and_grads(model, x_train[idx], y_train[idx])
        opt.step()
    for layer in layers:
        del layer.forward
    out["steps"] = np.asarray(out["steps"])
    out["acc"] = {k: np.asarray(v) for k, v in out["acc"].items()}
    out["acc_train_mode"] = np.asarray(out["acc_train_mode"])
    out["acc_recal"] = np.asarray(out["acc_recal"])
    return out


def class_sorted_batches(labels, batch_size, rng):
    """Index batches that each hold one class only, in a random order (non-i.i.d. data)."""
    batches = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        batches += [members[i:i + batch_size]
                    for i in range(0, len(members) - batch_size + 1, batch_size)]
    if not batches:
        raise ValueError(f"no class has {batch_size} examples, so no one-class batch of "
                         f"that size exists; use a smaller batch_size")
    return [batches[i] for i in rng.permutation(len(batches))]


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
            train_steps(model, data, steps, lr, batch_size, seed, order=order)
            result = {"eval mode": accuracy(model, x_test, y_test)}
            if norm == "bn":
                result["train mode, shuffled batches"] = train_mode_accuracy(
                    model, x_test, y_test, batch_size, test_shuffled)
                result["train mode, one-class batches"] = train_mode_accuracy(
                    model, x_test, y_test, batch_size, test_sorted)
            out[norm_name(norm)][training] = result
    return out
