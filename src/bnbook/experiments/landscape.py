"""The loss landscape along the gradient (Santurkar et al., 2018, Section 3).

At checkpoints during training, :func:`probe_along_gradient` takes a mini-batch,
computes the gradient ``g`` of the loss at the weights ``w`` and moves to
``w - eta * g`` for every ``eta`` in ``step_sizes``. There it records

* the loss (its range over eta is the "variation of the loss"),
* the gradient predictiveness ``||grad L(w) - grad L(w - eta g)||``,
* the ratio ``||grad L(w) - grad L(w - eta g)|| / ||eta g||``, whose maximum over
  eta is the "effective beta-smoothness".

:func:`landscape_run` averages these over several mini-batches per checkpoint;
:func:`stability_grid` and :func:`largest_stable` choose the shared learning
rate; :func:`compare_checkpoints` counts checkpoints against the seed spread.
The single-layer statements (Theorems 4.1, 4.2, Lemma 4.5) are checked in
:mod:`bnbook.experiments.landscape_theory`.
"""
import numpy as np

from .. import train
from .common import flat, flat_mnist, loss_and_grads, preserved, step_history
from .covariate_shift import make_mlp
from .landscape_theory import bn_gradient_bound  # noqa: F401  (re-exported)

MEASURES = ("loss", "grad_dist", "beta")


def _check_step_sizes(step_sizes):
    step_sizes = np.asarray(step_sizes, dtype=np.float64)
    if step_sizes.ndim != 1 or len(step_sizes) == 0 or np.any(step_sizes <= 0):
        raise ValueError("step_sizes must be a non-empty 1-D array of positive "
                         f"numbers, got {step_sizes!r}")
    return step_sizes


def probe_along_gradient(model, x, labels, step_sizes):
    """Loss, gradient distance and distance ratio at ``w - eta * g`` for each eta.

    Training mode (batch statistics of ``x``); the model is left unchanged.
    Returns a dict of arrays (S,): ``loss``, ``grad_dist``, ``beta``; and the
    floats ``loss0`` and ``grad_norm`` at ``w``.
    """
    step_sizes = _check_step_sizes(step_sizes)
    params = model.parameters()
    out = {k: [] for k in MEASURES}
    with preserved(model):
        loss0, _ = loss_and_grads(model, x, labels)
        g = [p.grad.copy() for p in params]
        w = [p.data.copy() for p in params]
        g0 = flat(g)
        for eta in step_sizes:
            for p, wp, gp in zip(params, w, g):
                p.data[...] = wp - eta * gp
            loss, _ = loss_and_grads(model, x, labels)
            dist = np.linalg.norm(flat(p.grad for p in params) - g0)
            out["loss"].append(loss)
            out["grad_dist"].append(dist)
            out["beta"].append(dist / (eta * np.linalg.norm(g0)))
    out = {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
    out.update(loss0=float(loss0), grad_norm=float(np.linalg.norm(g0)))
    return out


def probe_batches(model, batches, step_sizes):
    """:func:`probe_along_gradient` on each ``(x, labels)`` of ``batches``,
    averaged: each batch's own gradient, the mean over batches of every array
    (S,) and of ``grad_norm``."""
    runs = [probe_along_gradient(model, x, y, step_sizes) for x, y in batches]
    if not runs:
        raise ValueError("batches must hold at least one (x, labels) pair")
    out = {k: np.mean([r[k] for r in runs], axis=0) for k in MEASURES}
    out["grad_norm"] = float(np.mean([r["grad_norm"] for r in runs]))
    return out


def landscape_run(variant, steps, lr, step_sizes, every=100, batch_size=60,
                  seed=0, data=None, eval_every=100, model=None, n_batches=1):
    """Train a network and probe the landscape every ``every`` steps.

    By default the network is the sigmoid MLP ``make_mlp(variant, seed=seed)``
    on ``flat_mnist()``; pass ``model`` (any Module with softmax logits, e.g. a
    :func:`bnbook.models.lenet`) and matching ``data`` to probe another one.
    Training is :func:`bnbook.train.fit_steps` (plain SGD, batches drawn with
    ``seed``). At a checkpoint the probe uses the step's own mini-batch and
    ``n_batches - 1`` more of ``batch_size`` training examples drawn with
    ``default_rng([seed, step])``, and averages (:func:`probe_batches`).

    Returns the training history (``eval_steps``, ``test_acc``, ``train_loss``)
    plus ``step_loss`` (steps,), ``check_steps`` (C,), arrays (C, S) ``loss``,
    ``grad_dist``, ``beta`` and ``grad_norm`` (C,).
    """
    if n_batches < 1:
        raise ValueError(f"n_batches must be >= 1, got {n_batches}")
    step_sizes = _check_step_sizes(step_sizes)
    data = flat_mnist() if data is None else data
    model = make_mlp(variant, seed=seed) if model is None else model
    rec = {k: [] for k in ("check_steps", "grad_norm") + MEASURES}

    def probe(t, model, xb, yb):
        if t % every:
            return
        rng = np.random.default_rng([seed, t])
        idx = [rng.choice(len(data[0]), batch_size, replace=False)
               for _ in range(n_batches - 1)]
        batches = [(xb, yb)] + [(data[0][i], data[1][i]) for i in idx]
        r = probe_batches(model, batches, step_sizes)
        rec["check_steps"].append(t)
        for k in ("grad_norm",) + MEASURES:
            rec[k].append(r[k])

    h = train.fit_steps(model, data, steps, lr, batch_size=batch_size,
                        seed=seed, eval_every=eval_every, step_callback=probe)
    hist = step_history(h)
    hist["step_loss"] = np.asarray(h["step_loss"])
    hist.update({k: np.asarray(v) for k, v in rec.items()})
    hist.update(step_sizes=step_sizes, variant=variant)
    return hist


def summaries(run):
    """Per-checkpoint summaries (C,) of one :func:`landscape_run`: the loss
    range over eta, the largest gradient change and ``beta_eff`` (max ratio)."""
    return {"loss_range": np.ptp(run["loss"], axis=1),
            "grad_dist": run["grad_dist"].max(axis=1),
            "beta": run["beta"].max(axis=1)}


def stability_grid(make_model, data, lrs, seeds, steps, batch_size=60, tail=100):
    """Train ``make_model(seed)`` at every rate and seed; the final loss table.

    Returns an array (len(lrs), len(seeds)): the mean step loss over the last
    ``tail`` steps (``inf`` if training diverged to NaN or infinity).
    """
    if tail < 1 or tail > steps:
        raise ValueError(f"need 1 <= tail <= steps, got tail={tail}, "
                         f"steps={steps}")
    out = np.empty((len(lrs), len(seeds)))
    for i, lr in enumerate(lrs):
        for j, s in enumerate(seeds):
            h = train.fit_steps(make_model(s), data, steps, lr,
                                batch_size=batch_size, seed=s)
            tail_loss = np.mean(h["step_loss"][-tail:])
            out[i, j] = np.inf if h["diverged"] else tail_loss
    return out


def largest_stable(lrs, final_loss, threshold):
    """The largest rate whose final loss is below ``threshold`` on every seed.

    ``final_loss`` (len(lrs), seeds) as from :func:`stability_grid`. Raises
    ValueError if ``lrs`` is not increasing or no rate is stable.
    """
    lrs, final_loss = np.asarray(lrs, float), np.asarray(final_loss, float)
    if lrs.ndim != 1 or np.any(np.diff(lrs) <= 0):
        raise ValueError(f"lrs must be strictly increasing, got {lrs!r}")
    if final_loss.shape[0] != len(lrs):
        raise ValueError(f"final_loss needs one row per rate ({len(lrs)}), "
                         f"got shape {final_loss.shape}")
    stable = np.all(final_loss < threshold, axis=1)
    if not stable.any():
        raise ValueError(f"no rate has final loss < {threshold} on every seed")
    return float(lrs[np.flatnonzero(stable)[-1]]), stable


def compare_checkpoints(a, b):
    """Count checkpoints where ``a`` is below ``b``; arrays (seeds, C).

    Returns ``(smaller, beyond, larger_beyond)``: checkpoints where the seed
    mean of ``a`` is the smaller; where every seed of ``a`` lies below every
    seed of ``b`` (beyond the seed spread); where every seed of ``a`` lies above.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError("a and b must be arrays (seeds, checkpoints) of one "
                         f"shape, got {a.shape} and {b.shape}")
    smaller = int((a.mean(0) < b.mean(0)).sum())
    beyond = int((a.max(0) < b.min(0)).sum())
    return smaller, beyond, int((a.min(0) > b.max(0)).sum())
