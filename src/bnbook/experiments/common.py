"""Small helpers the experiment modules share: flat data, probes that leave a model alone.

Training itself is :mod:`bnbook.train`'s (:func:`~bnbook.train.fit_steps`). Helpers
that probe a model (forward passes that are not training steps) put its
parameters, running statistics and injected noise back as they found them.
"""
import contextlib

import numpy as np

from .. import backend
from ..losses import softmax_cross_entropy


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


def loss_and_grads(model, x, labels):
    """Forward, softmax cross-entropy and backward; returns ``(loss, logits)``.

    Afterwards every parameter's ``.grad`` holds the gradient of the mean loss.
    """
    logits = model.forward(x)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    model.backward(dlogits)
    return loss, logits


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
    noisy = [m for m in model.modules() if hasattr(m, "hold")]
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
        for name, buf in model.named_buffers():   # BN replaces its arrays: write into
            buf[...] = buffers[name]              # the current ones


def flat(arrays):
    """Concatenate arrays (e.g. gradients of several parameters) into one float64 vector."""
    return np.concatenate([np.asarray(backend.to_numpy(a), dtype=np.float64).ravel()
                           for a in arrays])


def step_history(history):
    """The per-evaluation lists of a :func:`bnbook.train.fit_steps` history as arrays:
    ``eval_steps``, ``test_acc`` and ``train_loss``."""
    return {k: np.asarray(history[k]) for k in ("eval_steps", "test_acc", "train_loss")}
