"""Run a model on data in batches: :func:`predict` (logits) and :func:`evaluate`.

Both put the model's train/eval mode back in a ``finally``, so an error inside a
forward pass (a bad batch, a training-mode batch of one) never leaves a model in
the wrong mode.
"""
import numpy as np

from .. import backend
from ..losses import softmax_cross_entropy
from ._checks import check_int, check_xy


def predict(model, x, batch_size=1000, training=False):
    """Logits of ``model`` on ``x`` in batches, as a host NumPy array (N, K).

    Parameters
    ----------
    model : bnbook Module
    x : array (N, ...)
    batch_size : int >= 1
        Consecutive slices of ``x``; the last one may be smaller.
    training : bool, default False
        False: eval mode (BN uses its running statistics, so a sample's output
        does not depend on its batch). True: training mode, every batch
        normalized with its own statistics, which is what forgetting
        ``model.eval()`` does; the buffers such a pass moves (BN's running
        statistics) are put back afterwards.

    The model's previous mode (and, with ``training=True``, its buffers) is
    restored in a ``finally``, also when a forward pass raises.
    """
    check_int("batch_size", batch_size, 1)
    was_training = model.training
    saved = {k: backend.to_numpy(v).copy() for k, v in model.named_buffers()} \
        if training else None
    xp = backend.xp()
    model.train(bool(training))
    try:
        out = [backend.to_numpy(model.forward(xp.asarray(x[i:i + batch_size])))
               for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
        if saved is not None:
            for name, buf in model.named_buffers():     # BN replaces its arrays: write into
                buf[...] = xp.asarray(saved[name])      # the current ones
    return np.concatenate(out)


def evaluate(model, x, y, batch_size=1000):
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)`` in eval mode.

    Returns ``(loss, accuracy)`` as floats; the loss is computed in float64. The
    model's previous mode is restored (see :func:`predict`).
    """
    check_xy(x, y, "evaluate")
    logits = predict(model, x, batch_size)
    labels = backend.to_numpy(y)
    loss, _ = softmax_cross_entropy(logits.astype(np.float64), labels)
    return float(loss), float((logits.argmax(axis=1) == labels).mean())
