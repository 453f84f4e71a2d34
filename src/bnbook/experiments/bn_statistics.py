"""BN's running statistics under the microscope: recording, replaying, recalibrating.

Helpers of :mod:`bnbook.experiments.in_practice`: they find a model's BatchNorm
layers, record the batch statistics of every training step, replay the running
averages for another momentum with :func:`bnbook.batchnorm.update_running`,
recalibrate the running averages on a data set, and build one-class batches.
"""
import numpy as np

from .. import batchnorm as F
from .. import train
from ..layers import BatchNorm


def bn_layers(model):
    """The BatchNorm layers of ``model`` in forward order."""
    return [m for m in model.modules() if isinstance(m, BatchNorm)]


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
    for k in range(len(x) // batch_size):
        for layer in layers:
            layer.momentum = 1.0 / (k + 1)
        model.forward(x[k * batch_size:(k + 1) * batch_size])
    for layer, momentum in zip(layers, saved):
        layer.momentum = momentum
    return model


def record_stats(layers):
    """Make each BN layer append ``(mu, var, m)`` of every training forward to a list.

    Returns the lists, one per layer; :func:`stop_recording` undoes it.
    """
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


def stop_recording(layers):
    for layer in layers:
        del layer.forward


def set_running(layers, stats):
    """Set each layer's running (mean, var) to ``stats``, keeping the buffers' dtype."""
    for layer, (mean, var) in zip(layers, stats):
        layer.running_mean = mean.astype(layer.running_mean.dtype)
        layer.running_var = var.astype(layer.running_var.dtype)


def replay(layers, stores, upto, momentum):
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

    Batches are consecutive full slices of ``order`` (default: a fixed random
    permutation, since data sets are often stored sorted by class); a last
    incomplete batch is left out. Mode and running buffers are put back
    (:func:`bnbook.train.predict` with ``training=True``).
    """
    order = np.random.default_rng(0).permutation(len(x)) if order is None else order
    idx = order[:len(order) // batch_size * batch_size]
    logits = train.predict(model, x[idx], batch_size, training=True)
    return float((logits.argmax(axis=1) == labels[idx]).mean())


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
