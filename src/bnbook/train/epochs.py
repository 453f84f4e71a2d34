"""Training for a number of epochs: :func:`fit`.

One training step is: ``step_callback`` (if any), forward, softmax cross-entropy,
backward, SGD update. A loss that is not finite stops training before its
backward pass and is recorded (``diverged``, ``diverged_at``); NumPy's overflow
and invalid-value warnings are silenced while training, since that case is
detected and recorded instead. A callback that raises :class:`StopTraining`
ends training cleanly: the history of what finished is returned, with
``stopped`` saying where.
"""
import math
import sys
import time

import numpy as np

from .. import backend
from ..optim import SGD
from ._checks import check_callbacks, check_int, check_lr, check_model_and_data
from ._core import StopTraining, sgd_step
from .evaluation import evaluate

#: per-epoch lists in the history :func:`fit` returns
HISTORY_KEYS = ("train_loss", "train_acc", "test_loss", "test_acc", "seconds")


def _progress_bar(progress, total, desc):
    """A tqdm bar if asked (True), or if None and stderr is a terminal; else None."""
    if progress is None:
        progress = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, leave=False, unit="batch")


def _epoch(model, optimizer, data, batch_size, gen, first_step, step_callback, bar):
    """One pass over the training data in a random order.

    Returns ``(mean loss, accuracy, steps done, stopped)``; the loss is NaN if a
    step's loss was not finite (training then ends at that step), ``stopped``
    is True if ``step_callback`` raised :class:`StopTraining`. Loss and accuracy
    are averaged over the batches as they were trained (the model changes).
    """
    xp = backend.xp()
    x, y = data[0], data[1]
    order = gen.permutation(len(x))
    loss_sum, correct, seen, done = 0.0, 0, 0, 0
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        xb, yb = xp.asarray(x[idx]), xp.asarray(y[idx])
        if step_callback is not None:
            try:
                step_callback(first_step + done, model, xb, yb)
            except StopTraining:
                return math.nan, math.nan, done, True
        loss, logits = sgd_step(model, optimizer, xb, yb)
        done += 1
        if not math.isfinite(loss):
            return math.nan, math.nan, done, False
        loss_sum += loss * len(idx)
        correct += int((logits.argmax(axis=1) == yb).sum())
        seen += len(idx)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
    return loss_sum / seen, correct / seen, done, False


def fit(model, data, epochs, lr, batch_size=64, seed=0, momentum=0.0, weight_decay=0.0,
        progress=None, eval_batch_size=1000, callback=None, step_callback=None):
    """Train ``model`` for ``epochs`` epochs with SGD on softmax cross-entropy.

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
        (``epoch`` counted from 1, ``history`` already holding that epoch)
    step_callback : optional ``step_callback(step, model, xb, yb)`` before each
        training step, ``step`` the number of steps done so far (from 0, over
        all epochs), ``xb, yb`` that step's batch. A probe must leave the model
        as it found it (see :func:`bnbook.experiments.common.preserved`).

    Returns
    -------
    dict
        Lists with one entry per finished epoch: ``train_loss``, ``train_acc``
        (running averages over the epoch, training mode), ``test_loss``,
        ``test_acc`` (eval mode, after the epoch), ``seconds`` (training time of
        the epoch, evaluation excluded). ``diverged`` is True if a loss became
        NaN or infinite; training then stopped and ``diverged_at`` holds
        ``(epoch, step)``, both counted from 1, ``step`` within the epoch.
        ``stopped`` is None, or ``(epoch, steps)`` if a callback raised
        :class:`StopTraining`: the epoch (from 1) during or after which it
        was raised and the number of steps finished in that epoch. Only
        finished epochs are in the lists. The settings are kept too.
    """
    check_model_and_data(model, data)
    check_int("epochs", epochs, 1)
    check_int("batch_size", batch_size, 1)
    check_int("eval_batch_size", eval_batch_size, 1)
    check_lr(lr)
    check_callbacks(callback=callback, step_callback=step_callback)
    optimizer = SGD(model.parameters(), lr, momentum=momentum, weight_decay=weight_decay)
    gen = np.random.default_rng(seed)
    history = {key: [] for key in HISTORY_KEYS}
    history.update(diverged=False, diverged_at=None, stopped=None, epochs=epochs,
                   lr=float(lr), batch_size=batch_size, seed=seed,
                   momentum=float(momentum), weight_decay=float(weight_decay))
    steps, done = -(-len(data[0]) // batch_size), 0
    model.train()
    for epoch in range(1, epochs + 1):
        bar = _progress_bar(progress, steps, f"epoch {epoch}/{epochs}")
        start = time.perf_counter()
        try:
            with np.errstate(over="ignore", invalid="ignore"):   # divergence is recorded
                loss, acc, in_epoch, stopped = _epoch(model, optimizer, data, batch_size, gen,
                                                      done, step_callback, bar)
        finally:
            if bar is not None:
                bar.close()
        seconds, done = time.perf_counter() - start, done + in_epoch
        if stopped:
            history["stopped"] = (epoch, in_epoch)
            break
        if not math.isfinite(loss):
            history.update(diverged=True, diverged_at=(epoch, in_epoch))
            break
        test_loss, test_acc = evaluate(model, data[2], data[3], eval_batch_size)
        for key, value in zip(HISTORY_KEYS, (loss, acc, test_loss, test_acc, seconds)):
            history[key].append(float(value))
        if callback is not None:
            try:
                callback(epoch, model, history)
            except StopTraining:
                history["stopped"] = (epoch, in_epoch)
                break
            model.train()
    return history
