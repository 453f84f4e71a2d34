"""The loss landscape along the gradient (Santurkar et al., 2018, Section 3).

At checkpoints during training, :func:`probe_along_gradient` takes the current
mini-batch, computes the gradient ``g`` of the loss at the weights ``w`` and
moves to ``w - eta * g`` for every ``eta`` in ``step_sizes``. There it records

* the loss (its range over eta is the "variation of the loss"),
* the gradient predictiveness ``||grad L(w) - grad L(w - eta g)||``,
* the ratio ``||grad L(w) - grad L(w - eta g)|| / ||eta g||``, whose maximum over
  eta is the "effective beta-smoothness".

:func:`bn_gradient_bound` checks the gradient-magnitude bound of a single BN
layer (Santurkar et al., Theorem 4.1) on one instance.
"""
import numpy as np

from .. import batchnorm, train
from .common import flat, flat_mnist, loss_and_grads, preserved, step_history
from .covariate_shift import make_mlp


def probe_along_gradient(model, x, labels, step_sizes):
    """Loss, gradient distance and distance ratio at ``w - eta * g`` for each eta.

    Training mode (batch statistics of ``x``); the model is left unchanged.
    Returns a dict of arrays (S,): ``loss``, ``grad_dist``, ``beta``; and the
    floats ``loss0`` and ``grad_norm`` at ``w``.
    """
    step_sizes = np.asarray(step_sizes, dtype=np.float64)
    if step_sizes.ndim != 1 or len(step_sizes) == 0 or np.any(step_sizes <= 0):
        raise ValueError(f"step_sizes must be a non-empty 1-D array of positive numbers, "
                         f"got {step_sizes!r}")
    params = model.parameters()
    out = {"loss": [], "grad_dist": [], "beta": []}
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
    out = {k: np.asarray(v) for k, v in out.items()}
    out.update(loss0=float(loss0), grad_norm=float(np.linalg.norm(g0)))
    return out


def landscape_run(variant, steps, lr, step_sizes, every=100, batch_size=60, seed=0,
                  data=None, eval_every=100, model=None):
    """Train a network and probe the landscape every ``every`` steps.

    By default the network is the sigmoid MLP ``make_mlp(variant, seed=seed)`` on
    ``flat_mnist()``; pass ``model`` (any Module with softmax logits, e.g. a
    :func:`bnbook.models.lenet`) and matching ``data`` to probe another one.
    Training is :func:`bnbook.train.fit_steps` (plain SGD). Returns the training
    history (:func:`~bnbook.experiments.common.step_history`) plus ``check_steps`` (C,) and arrays (C, S)
    ``loss``, ``grad_dist``, ``beta`` from :func:`probe_along_gradient`, and
    ``grad_norm`` (C,).
    """
    data = flat_mnist() if data is None else data
    model = make_mlp(variant, seed=seed) if model is None else model
    rec = {"check_steps": [], "loss": [], "grad_dist": [], "beta": [], "grad_norm": []}

    def probe(t, model, xb, yb):
        if t % every == 0:
            r = probe_along_gradient(model, xb, yb, step_sizes)
            rec["check_steps"].append(t)
            for k in ("loss", "grad_dist", "beta", "grad_norm"):
                rec[k].append(r[k])

    hist = step_history(train.fit_steps(model, data, steps, lr, batch_size=batch_size, seed=seed,
                                        eval_every=eval_every, step_callback=probe))
    hist.update({k: np.asarray(v) for k, v in rec.items()})
    hist["step_sizes"] = np.asarray(step_sizes, dtype=np.float64)
    hist["variant"] = variant
    return hist


def bn_gradient_bound(y, g, gamma, eps=0.0):
    """Both sides of Theorem 4.1 for one BN unit, with the exact BN backward.

    ``y`` (m,): the unit's pre-BN activations over the batch; ``g`` (m,): the
    gradient arriving at the BN output ``z = gamma * y_hat + beta`` (what the
    network without BN would see as dL/dy); ``gamma`` a constant. With
    ``sigma = sqrt(var(y) + eps)`` and ``y_hat = (y - mean) / sigma``::

        lhs     = ||dL_hat/dy||^2            (from bnbook.batchnorm.backward)
        rhs(c)  = gamma^2/sigma^2 * (||g||^2 - <1,g>^2/m - c * <g,y_hat>^2)

    Returns ``(lhs, rhs_m, rhs_sqrt_m)`` with ``c = 1/m`` and ``c = 1/sqrt(m)``.
    """
    y = np.asarray(y, dtype=np.float64).reshape(-1, 1)
    g = np.asarray(g, dtype=np.float64).reshape(-1, 1)
    if y.shape != g.shape or y.shape[0] < 2:
        raise ValueError(f"y and g must be 1-D of the same length m >= 2, got shapes "
                         f"{y.shape[:1]} and {g.shape[:1]}")
    m = y.shape[0]
    gam = np.full(1, gamma, dtype=np.float64)
    _, cache = batchnorm.forward(y, gam, np.zeros(1), eps=eps)
    dy, _, _ = batchnorm.backward(g, cache)
    lhs = float((dy ** 2).sum())
    sigma2 = y.var() + eps
    y_hat = (y - y.mean()) / np.sqrt(sigma2)
    base = float((g ** 2).sum() - g.sum() ** 2 / m)
    proj = float((g * y_hat).sum() ** 2)
    scale = gamma ** 2 / sigma2
    return lhs, scale * (base - proj / m), scale * (base - proj / np.sqrt(m))
