"""Training for a number of steps, evaluating every ``eval_every`` steps: :func:`fit_steps`.

The experiments that count steps (Ioffe & Szegedy's Figure 1, the landscape
probes, the sweeps of the practice chapter) train this way: every step sees a
batch of the same size, and the test set is evaluated at fixed step counts.
"""
import math

import numpy as np

from .. import backend
from ..optim import SGD
from ._checks import check_callbacks, check_int, check_lr, check_model_and_data
from ._core import StopTraining, minibatches, sgd_step
from .evaluation import evaluate


def _check_args(model, data, steps, lr, batch_size, eval_every, eval_batch_size, batches):
    check_model_and_data(model, data)
    check_int("steps", steps, 1)
    check_int("batch_size", batch_size, 1)
    check_int("eval_batch_size", eval_batch_size, 1)
    if eval_every is not None:
        check_int("eval_every", eval_every, 1)
    check_lr(lr)
    if batches is None:
        return None
    try:
        return iter(batches)
    except TypeError:
        raise TypeError("batches must be None or an iterable of index arrays, got "
                        f"{type(batches).__name__}") from None


def _evaluate_into(history, model, data, done, eval_batch_size, pending):
    loss, acc = evaluate(model, data[2], data[3], eval_batch_size)
    history["eval_steps"].append(done)
    history["test_loss"].append(loss)
    history["test_acc"].append(acc)
    history["train_loss"].append(float(np.mean(pending)) if pending else math.nan)


def fit_steps(model, data, steps, lr, batch_size=64, seed=0, momentum=0.0, weight_decay=0.0,
              eval_every=None, eval_batch_size=1000, batches=None, callback=None,
              step_callback=None):
    """Train ``model`` for ``steps`` SGD steps on softmax cross-entropy.

    Parameters
    ----------
    model, data, lr, momentum, weight_decay, eval_batch_size : as :func:`fit`
    steps : int >= 1
    batch_size, seed : the default batches are :func:`minibatches` of
        ``batch_size`` drawn with ``np.random.default_rng(seed)``: reshuffled
        every epoch, an epoch's incomplete last batch dropped
    eval_every : None (default: no evaluation) or int >= 1: the test set is
        evaluated before the first step, after every ``eval_every`` steps and
        after the last step
    batches : None, or an iterable of index arrays into ``x_train`` used instead
        of the default batches (for example ``itertools.cycle`` of a fixed list)
    callback : optional ``callback(step, model, history)`` after each evaluation,
        ``step`` the number of steps done
    step_callback : optional ``step_callback(step, model, xb, yb)`` before each
        step, ``step`` counted from 0; a probe must leave the model as it found it

    Returns
    -------
    dict
        ``step_loss``: the loss of every step done, in order. ``eval_steps``,
        ``test_loss``, ``test_acc`` (eval mode) and ``train_loss`` (mean step
        loss since the previous evaluation, NaN at step 0): one entry per
        evaluation. ``diverged`` is True if a loss became NaN or infinite;
        training then stopped before that step's update and ``diverged_at``
        holds its number (from 1), which is not in ``step_loss``. ``stopped``
        is None, or the number of steps done when a callback raised
        :class:`StopTraining`. The settings are kept too.
    """
    gen = _check_args(model, data, steps, lr, batch_size, eval_every, eval_batch_size, batches)
    check_callbacks(callback=callback, step_callback=step_callback)
    if gen is None:
        gen = minibatches(len(data[0]), batch_size, np.random.default_rng(seed))
    optimizer = SGD(model.parameters(), lr, momentum=momentum, weight_decay=weight_decay)
    history = {"step_loss": [], "eval_steps": [], "test_loss": [], "test_acc": [],
               "train_loss": [], "diverged": False, "diverged_at": None, "stopped": None,
               "steps": steps, "lr": float(lr), "batch_size": batch_size, "seed": seed,
               "momentum": float(momentum), "weight_decay": float(weight_decay)}
    xp, pending = backend.xp(), []
    model.train()
    for done in range(steps + 1):
        try:
            if eval_every is not None and (done % eval_every == 0 or done == steps):
                _evaluate_into(history, model, data, done, eval_batch_size, pending)
                pending = []
                if callback is not None:
                    callback(done, model, history)
                    model.train()
            if done == steps:
                break
            idx = next(gen, None)
            if idx is None:
                raise ValueError(f"batches ran out after {done} of {steps} steps")
            xb, yb = xp.asarray(data[0][idx]), xp.asarray(data[1][idx])
            if step_callback is not None:
                step_callback(done, model, xb, yb)
        except StopTraining:
            history["stopped"] = done
            break
        with np.errstate(over="ignore", invalid="ignore"):     # divergence is recorded
            loss, _ = sgd_step(model, optimizer, xb, yb)
        if not math.isfinite(loss):
            history.update(diverged=True, diverged_at=done + 1)
            break
        history["step_loss"].append(float(loss))
        pending.append(float(loss))
    return history
