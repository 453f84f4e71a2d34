"""What both training loops share: :class:`StopTraining`, the batches, one SGD step."""
import math

import numpy as np

from ..losses import softmax_cross_entropy


class StopTraining(Exception):
    """Raise from a ``callback`` or ``step_callback`` to end training cleanly.

    :func:`fit` and :func:`fit_steps` catch it, keep the model as it is after
    the last finished step, and return the history with ``history['stopped']``
    set (see each function). Use it for early stopping, or for a user's Ctrl-C:
    a SIGINT handler sets a flag and a ``step_callback`` raises StopTraining
    when it sees the flag, so training stops between two steps, never inside one.
    """


def minibatches(n, batch_size, rng):
    """Endless index batches of ``batch_size`` from ``range(n)``, reshuffled every epoch.

    ``rng`` is a NumPy Generator (or a seed). A last incomplete batch of an epoch
    is dropped, so every batch has the same size.
    """
    if not 0 < batch_size <= n:
        raise ValueError(f"batch_size must lie in [1, {n}] (the data size), got {batch_size}")
    rng = np.random.default_rng(rng)
    while True:
        order = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start:start + batch_size]


def sgd_step(model, optimizer, xb, yb):
    """Forward, loss, backward, update; returns ``(loss, logits)``, no update if not finite."""
    logits = model.forward(xb)                           # (B, K)
    loss, dlogits = softmax_cross_entropy(logits, yb)
    if math.isfinite(loss):
        model.backward(dlogits)
        optimizer.step()
    return loss, logits
