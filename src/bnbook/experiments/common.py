"""Small helpers the experiment modules share: data, mini-batches, a training loop.

Everything here is seeded and deterministic: the same arguments give the same
arrays. Helpers that probe a model (forward passes that are not training steps)
put its parameters, running statistics and injected noise back as they found them.
"""
import contextlib

import numpy as np

from .. import backend
from ..losses import softmax_cross_entropy
from ..optim import SGD


def flat_mnist(data=None):
    """MNIST as flat rows: ``(x_train (N, 784), y_train, x_test (M, 784), y_test)``.

    ``data`` is a :class:`bnbook.data.Dataset` (default: :func:`bnbook.data.load_mnist`).
    """
    if data is None:
        from ..data import load_mnist
        data = load_mnist()
    x_train, y_train, x_test, y_test = data
    return (np.ascontiguousarray(x_train.reshape(len(x_train), -1)), y_train,
            np.ascontiguousarray(x_test.reshape(len(x_test), -1)), y_test)


def minibatches(n, batch_size, rng):
    """Endless index batches of ``batch_size`` from ``range(n)``, reshuffled every epoch.

    A last incomplete batch of an epoch is dropped, so every batch has the same size.
    """
    if not 0 < batch_size <= n:
        raise ValueError(f"batch_size must lie in [1, {n}] (the data size), got {batch_size}")
    while True:
        order = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start:start + batch_size]


def loss_and_grads(model, x, labels):
    """Forward, softmax cross-entropy and backward; returns ``(loss, logits)``.

    Afterwards every parameter's ``.grad`` holds the gradient of the mean loss.
    """
    logits = model.forward(x)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    model.backward(dlogits)
    return loss, logits


def accuracy(model, x, labels, batch_size=1000):
    """Fraction of ``x`` classified as ``labels`` in eval mode (mode restored after)."""
    was_training = model.training
    model.eval()
    hits = 0
    for start in range(0, len(x), batch_size):
        logits = backend.to_numpy(model.forward(x[start:start + batch_size]))
        hits += int((logits.argmax(axis=1) == labels[start:start + batch_size]).sum())
    model.train(was_training)
    return hits / len(x)


def _modules(model):
    yield model
    for _, child in model.named_children():
        yield from _modules(child)


@contextlib.contextmanager
def preserved(model):
    """Run probes on ``model`` and leave it as it was.

    Restores parameter values and gradients and buffers (BN running statistics)
    on exit, and holds injected noise fixed (``hold = True`` on every module
    that has that attribute) while inside.
    """
    params = model.parameters()
    data = [p.data.copy() for p in params]
    grads = [None if p.grad is None else p.grad.copy() for p in params]
    buffers = {k: v.copy() for k, v in model.named_buffers()}
    noisy = [m for m in _modules(model) if hasattr(m, "hold")]
    holds = [m.hold for m in noisy]
    for m in noisy:
        m.hold = True
    try:
        yield model
    finally:
        for p, d, g in zip(params, data, grads):
            p.data[...] = d
            p.grad = g
        for m, h in zip(noisy, holds):
            m.hold = h
        model.load_state_dict({**{k: p.data for k, p in model.named_parameters()},
                               **buffers})


def flat(arrays):
    """Concatenate arrays (e.g. gradients of several parameters) into one float64 vector."""
    return np.concatenate([np.asarray(backend.to_numpy(a), dtype=np.float64).ravel()
                           for a in arrays])


def train_classifier(model, data, steps, lr, batch_size=60, seed=0, callbacks=(),
                     eval_every=100):
    """Plain SGD (no momentum) on softmax cross-entropy; returns a history dict.

    ``data`` is ``flat_mnist()`` output. Before step ``t`` (0-based) each callback
    is called as ``cb(t, model, xb, yb)`` with that step's batch; callbacks probe
    the model and must leave it unchanged (use :func:`preserved`). The history
    has ``eval_steps`` (steps done when test accuracy was taken, 0 and every
    ``eval_every``), ``test_acc`` and ``train_loss`` (mean training loss of the
    steps since the previous evaluation; NaN at step 0).
    """
    x_train, y_train, x_test, y_test = data
    rng = np.random.default_rng(seed)
    batches = minibatches(len(x_train), batch_size, rng)
    opt = SGD(model.parameters(), lr=lr)
    model.train()
    hist = {"eval_steps": [0], "test_acc": [accuracy(model, x_test, y_test)],
            "train_loss": [float("nan")]}
    running = []
    for t in range(steps):
        idx = next(batches)
        xb, yb = x_train[idx], y_train[idx]
        for cb in callbacks:
            cb(t, model, xb, yb)
        loss, _ = loss_and_grads(model, xb, yb)
        running.append(loss)
        opt.step()
        if (t + 1) % eval_every == 0 or t + 1 == steps:
            hist["eval_steps"].append(t + 1)
            hist["test_acc"].append(accuracy(model, x_test, y_test))
            hist["train_loss"].append(float(np.mean(running)))
            running = []
    return {k: np.asarray(v) for k, v in hist.items()}
