"""Training and evaluation, the one copy every chapter, experiment and the command line use.

* :func:`fit` trains for a number of *epochs* (every example once per epoch) and
  evaluates on the test set after each epoch;
* :func:`fit_steps` trains for a number of *steps* and evaluates every ``eval_every``
  steps (the experiments that count steps);
* :func:`evaluate` (mean loss and accuracy) and :func:`predict` (logits) run a model
  on data in batches and put its train/eval mode back afterwards, even on error;
* :class:`StopTraining`, raised from a callback, ends training cleanly.

Both loops use plain SGD (momentum and weight decay optional, :class:`bnbook.optim.SGD`)
on softmax cross-entropy, shuffle with ``np.random.default_rng(seed)`` (the same
model, data and seed give the same history bit for bit) and record a loss that
becomes NaN or infinite instead of raising: a learning-rate sweep needs to see
where training breaks.
"""
from .evaluation import evaluate, predict
from ._core import StopTraining, minibatches
from .epochs import HISTORY_KEYS, fit
from .steps import fit_steps

__all__ = ["HISTORY_KEYS", "StopTraining", "evaluate", "fit", "fit_steps", "minibatches",
           "predict"]
