"""Training loop: :func:`fit` with SGD and softmax cross-entropy, :func:`evaluate`.

``fit`` shuffles with ``np.random.default_rng(seed)``, so the same model state,
data and seed give the same history bit for bit. A loss that becomes NaN or
infinite stops training and is recorded (``history['diverged']``) instead of
raising: a learning-rate sweep needs to see where training breaks.
"""
import math
import numbers
import sys
import time

import numpy as np

from . import backend
from .losses import softmax_cross_entropy
from .optim import SGD

HISTORY_KEYS = ("train_loss", "train_acc", "test_loss", "test_acc", "seconds")


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _check_xy(x, y, what):
    if not hasattr(x, "shape") or not hasattr(y, "shape"):
        raise TypeError(f"{what}: images and labels must be arrays, got "
                        f"{type(x).__name__} and {type(y).__name__}")
    if y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"{what}: expected labels (N,) matching images (N, ...), got "
                         f"images {tuple(x.shape)} and labels {tuple(y.shape)}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{what}: labels must be integers, got dtype {y.dtype}")
    if len(y) == 0:
        raise ValueError(f"{what}: no examples")


def predict(model, x, batch_size=1000):
    """Logits of ``model`` on ``x`` in eval mode, as a host NumPy array (N, K).

    The model's previous train/eval mode is restored afterwards.
    """
    _check_int("batch_size", batch_size, 1)
    was_training = model.training
    model.eval()
    xp = backend.xp()
    try:
        out = [backend.to_numpy(model.forward(xp.asarray(x[i:i + batch_size])))
               for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(out)


def evaluate(model, x, y, batch_size=1000):
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)`` in eval mode.

    Returns ``(loss, accuracy)`` as floats; restores the model's previous mode.
    """
    _check_xy(x, y, "evaluate")
    logits = predict(model, x, batch_size)
    labels = backend.to_numpy(y)
    loss, _ = softmax_cross_entropy(logits.astype(np.float64), labels)
    return float(loss), float((logits.argmax(axis=1) == labels).mean())


def _progress_bar(progress, total, desc):
    """A tqdm bar if asked (True), or if None and stderr is a terminal; else None."""
    if progress is None:
        progress = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, leave=False, unit="batch")


def _check_fit_args(model, data, epochs, lr, batch_size, eval_batch_size, callback):
    for name in ("forward", "backward", "parameters", "train", "eval"):
        if not callable(getattr(model, name, None)):
            raise TypeError(f"model must be a bnbook Module with {name}(), "
                            f"got {type(model).__name__}")
    if not isinstance(data, tuple) or len(data) != 4:
        raise TypeError("data must be a Dataset (x_train, y_train, x_test, y_test), "
                        f"got {type(data).__name__}")
    _check_xy(data[0], data[1], "training data")
    _check_xy(data[2], data[3], "test data")
    _check_int("epochs", epochs, 1)
    _check_int("batch_size", batch_size, 1)
    _check_int("eval_batch_size", eval_batch_size, 1)
    if not isinstance(lr, numbers.Real) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")


def train_epoch(model, optimizer, x, y, batch_size, gen, bar=None):
    """One pass over ``(x, y)`` in a random order; returns (mean loss, accuracy, steps).

    Loss and accuracy are averaged over the batches as they were trained (the
    model changes during the epoch). Stops early, returning a NaN loss, at the
    first batch whose loss is not finite.
    """
    xp = backend.xp()
    order = gen.permutation(len(x))
    loss_sum, correct, seen = 0.0, 0, 0
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        xb, yb = xp.asarray(x[idx]), xp.asarray(y[idx])
        logits = model.forward(xb)                       # (B, K)
        loss, dlogits = softmax_cross_entropy(logits, yb)
        if not math.isfinite(loss):
            return math.nan, correct / max(seen, 1), start // batch_size + 1
        model.backward(dlogits)
        optimizer.step()
        loss_sum += loss * len(idx)
        correct += int((logits.argmax(axis=1) == yb).sum())
        seen += len(idx)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
    return loss_sum / seen, correct / seen, -(-len(x) // batch_size)


def fit(model, data, epochs, lr, batch_size=64, seed=0, momentum=0.0, weight_decay=0.0,
        progress=None, eval_batch_size=1000, callback=None):
    """Train ``model`` with SGD on softmax cross-entropy; return the history.

    Parameters
    ----------
    model : bnbook Module mapping a batch of ``data.x_train`` to logits (B, K)
    data : Dataset ``(x_train, y_train, x_test, y_test)``, labels int in [0, K)
    epochs : int >= 1
    lr, momentum, weight_decay : SGD settings (PyTorch's convention, see :class:`SGD`)
    batch_size : training batch size; the last batch of an epoch may be smaller
    seed : seeds the shuffling, ``np.random.default_rng(seed)``
    progress : None (a tqdm bar only when stderr is a terminal), True or False
    eval_batch_size : batch size of the test-set evaluation after each epoch
    callback : optional ``callback(epoch, model, history)`` after each epoch

    Returns
    -------
    dict
        Lists with one entry per finished epoch: ``train_loss``, ``train_acc``
        (running averages over the epoch, training mode), ``test_loss``,
        ``test_acc`` (eval mode, after the epoch), ``seconds`` (training time of
        the epoch, evaluation excluded). ``diverged`` is True if a loss became
        NaN or infinite; training then stopped and ``diverged_at`` holds
        ``(epoch, step)``, both counted from 1. The settings are kept too.
        NumPy's overflow/invalid warnings are silenced while training, since
        a non-finite loss is detected and recorded instead.
    """
    _check_fit_args(model, data, epochs, lr, batch_size, eval_batch_size, callback)
    x_train, y_train, x_test, y_test = data
    optimizer = SGD(model.parameters(), lr, momentum=momentum, weight_decay=weight_decay)
    gen = np.random.default_rng(seed)
    history = {key: [] for key in HISTORY_KEYS}
    history.update(diverged=False, diverged_at=None, epochs=epochs, lr=float(lr),
                   batch_size=batch_size, seed=seed, momentum=float(momentum),
                   weight_decay=float(weight_decay))
    steps = -(-len(x_train) // batch_size)
    model.train()
    for epoch in range(1, epochs + 1):
        bar = _progress_bar(progress, steps, f"epoch {epoch}/{epochs}")
        start = time.perf_counter()
        try:
            with np.errstate(over="ignore", invalid="ignore"):   # divergence is recorded
                loss, acc, step = train_epoch(model, optimizer, x_train, y_train,
                                              batch_size, gen, bar)
        finally:
            if bar is not None:
                bar.close()
        seconds = time.perf_counter() - start
        if not math.isfinite(loss):
            history.update(diverged=True, diverged_at=(epoch, step))
            break
        test_loss, test_acc = evaluate(model, x_test, y_test, eval_batch_size)
        for key, value in zip(HISTORY_KEYS, (loss, acc, test_loss, test_acc, seconds)):
            history[key].append(float(value))
        if callback is not None:
            callback(epoch, model, history)
    return history
