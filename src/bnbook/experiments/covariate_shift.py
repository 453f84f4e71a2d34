"""Internal covariate shift: Ioffe & Szegedy's Figure 1, noisy BN, and gradient-based ICS.

* :func:`train_mlp` trains the 784-100-100-100-10 sigmoid MLP (plain, BN before
  each sigmoid, or BN followed by :class:`~bnbook.layers.NoiseInjection`) and
  records test accuracy, the pre-sigmoid inputs of the last hidden layer on a
  fixed probe batch, and optionally the gradient-based ICS measure.
* :func:`gradient_shift` is that measure (Santurkar et al., 2018): for layer i,
  ``G`` = dL/dW_i now and ``G'`` = dL/dW_i on the same batch after every earlier
  layer took its SGD step; returns ||G - G'|| and cos(G, G').
* :func:`train_deep_linear` runs it on a deep linear network trained by
  full-batch gradient descent on ``mean_n ||W_L...W_1 x_n - A x_n||^2``.
"""
import numpy as np

from .. import layers, train
from ..models import mlp
from .common import flat, flat_mnist, loss_and_grads, preserved, step_history

VARIANTS = ("plain", "bn", "noisy")
PERCENTILES = (15, 50, 85)


def make_mlp(variant, sizes=(784, 100, 100, 100, 10), seed=0, init="lecun", noise=None):
    """The sigmoid MLP of Ioffe & Szegedy's Figure 1 as a Sequential.

    ``variant``: 'plain' (Linear with bias -> sigmoid), 'bn' (Linear -> BatchNorm
    -> sigmoid) or 'noisy' (Linear -> BatchNorm -> NoiseInjection -> sigmoid,
    ``noise`` a dict of NoiseInjection keyword arguments; by default per-sample
    noise, Santurkar et al.'s noisy BN; ``per_sample=False`` shares it over
    the batch). The weights depend
    only on ``seed``, so the three variants start from the same weights.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    model = mlp(list(sizes), activation="sigmoid", norm=None if variant == "plain" else "bn",
                init=init, rng=seed)
    if variant == "noisy":
        gen = np.random.default_rng([seed, 1])
        out = []
        for layer in model.layers:
            out.append(layer)
            if isinstance(layer, layers.BatchNorm):
                out.append(layers.NoiseInjection(layer.gamma.data.shape[0], rng=gen,
                                                 **(noise or {})))
        model.layers = out
    return model


def linear_indices(model):
    """Positions of the Linear layers in ``model.layers``."""
    return [i for i, layer in enumerate(model.layers) if isinstance(layer, layers.Linear)]


def sigmoid_input(model, x):
    """Input of the last activation layer (the last hidden layer's pre-sigmoid), (N, D)."""
    last = max(i for i, layer in enumerate(model.layers)
               if isinstance(layer, (layers.Sigmoid, layers.Tanh, layers.ReLU)))
    for layer in model.layers[:last]:
        x = layer.forward(x)
    return x


def gradient_shift(model, grad_fn, lr, which=None):
    """Santurkar et al.'s ICS measure for the Linear layers ``which`` (positions).

    ``grad_fn(model)`` must run forward and backward on one fixed batch (filling
    ``.grad``). ``G_i`` is the weight gradient of layer i at the current
    parameters; ``G'_i`` the same after every parameter of the layers *before*
    position i took the plain SGD step ``w -= lr * grad``. Returns
    ``(l2, cos)``, arrays over ``which`` (default: every Linear but the first).
    The model is left unchanged.
    """
    which = linear_indices(model)[1:] if which is None else list(which)
    l2, cos = [], []
    with preserved(model):
        grad_fn(model)
        grads = [(p, p.grad.copy()) for p in model.parameters()]
        before = [layer.weight.grad.copy() for layer in (model.layers[i] for i in which)]
        start = [p.data.copy() for p, _ in grads]
        for i, g in zip(which, before):
            earlier = {id(p) for layer in model.layers[:i] for p in layer.parameters()}
            for (p, gp), s in zip(grads, start):
                p.data[...] = s - lr * gp if id(p) in earlier else s
            grad_fn(model)
            a, b = flat([g]), flat([model.layers[i].weight.grad])
            l2.append(np.linalg.norm(a - b))
            cos.append(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-300))
    return np.asarray(l2), np.asarray(cos)


def train_mlp(variant, steps, lr, batch_size=60, seed=0, data=None, record_every=50,
              eval_every=100, probe_size=500, unit=0, ics_every=None, noise=None,
              sizes=(784, 100, 100, 100, 10)):
    """Train the sigmoid MLP with plain SGD and record what Figure 1 plots.

    Every ``record_every`` steps (before the step) the last hidden layer's
    pre-sigmoid input is computed, in training mode, on a fixed probe of
    ``probe_size`` training digits (BN then uses the probe's statistics; noisy
    BN the noise of that step); running statistics are left untouched.

    Training is :func:`bnbook.train.fit_steps` (plain SGD). Returns a dict:
    ``eval_steps``, ``test_acc``, ``train_loss`` (as arrays, see
    :func:`~bnbook.experiments.common.step_history`), ``record_steps`` (R,),
    ``percentiles`` (R, 3, D): the 15th/50th/85th percentiles of every unit,
    ``unit_values`` (R, probe_size): the probe values of unit ``unit``; with
    ``ics_every``: ``ics_steps`` (K,), ``ics_l2`` and ``ics_cos`` (K, layers 2..L).
    """
    data = flat_mnist() if data is None else data
    if steps < 1 or lr <= 0:
        raise ValueError(f"need steps >= 1 and lr > 0, got steps={steps}, lr={lr}")
    model = make_mlp(variant, sizes=sizes, seed=seed, noise=noise)
    probe = data[0][np.random.default_rng([seed, 2]).choice(len(data[0]), probe_size,
                                                            replace=False)]
    rec = {"record_steps": [], "percentiles": [], "unit_values": [],
           "ics_steps": [], "ics_l2": [], "ics_cos": []}

    def record(t, model, xb, yb):
        if t % record_every == 0:
            with preserved(model):
                z = np.asarray(sigmoid_input(model, probe), dtype=np.float64)  # (P, D)
            rec["record_steps"].append(t)
            rec["percentiles"].append(np.percentile(z, PERCENTILES, axis=0))
            rec["unit_values"].append(z[:, unit])
        if ics_every and t % ics_every == 0:
            l2, cos = gradient_shift(model, lambda m: loss_and_grads(m, xb, yb), lr)
            rec["ics_steps"].append(t)
            rec["ics_l2"].append(l2)
            rec["ics_cos"].append(cos)

    hist = step_history(train.fit_steps(model, data, steps, lr, batch_size=batch_size, seed=seed,
                                        eval_every=eval_every, step_callback=record))
    hist.update({k: np.asarray(v) for k, v in rec.items() if v})
    hist["variant"] = variant
    return hist


def shift_summary(percentiles, skip=0):
    """How far each unit's median moved: max minus min over records, per unit (D,).

    ``percentiles`` as returned by :func:`train_mlp` (R, 3, D); the first ``skip``
    records are left out.
    """
    med = np.asarray(percentiles)[skip:, 1, :]
    return med.max(axis=0) - med.min(axis=0)


def make_deep_linear(depth=25, width=10, bn=False, seed=0, init="lecun"):
    """A deep linear net ``W_depth ... W_1 x`` (no biases), as a Sequential.

    With ``bn`` a BatchNorm (with its gamma, beta) follows every linear map but
    the last, so the output layer stays a plain linear map onto the target.
    """
    if depth < 2:
        raise ValueError(f"depth must be at least 2, got {depth}")
    return mlp([width] * (depth + 1), activation="linear", norm="bn" if bn else None,
               init=init, bias=False, rng=seed)


def train_deep_linear(bn, steps, lr, depth=25, width=10, n_samples=1000, seed=0,
                      ics_every=10, which=None, ics_lr=None):
    """Full-batch GD on ``L = mean_n ||f(x_n) - A x_n||^2`` with a random A, recording ICS.

    ``x_n ~ N(0, I)`` and ``A`` (width x width) with N(0, 1/width) entries, both
    from ``seed``. The network trains at ``lr``; :func:`gradient_shift` measures
    with the step ``ics_lr`` (default ``lr``), so that two networks trained at
    different rates can be measured with the same step. Returns ``loss``
    (steps + 1,), ``ics_steps`` (K,), ``ics_l2``, ``ics_cos`` and ``ics_gnorm``
    (K, len(which); the last is ``||G_i||``) and ``which`` (layer numbers,
    1-based).
    """
    ics_lr = lr if ics_lr is None else ics_lr
    if ics_lr < 0:
        raise ValueError(f"ics_lr must be >= 0, got {ics_lr}")
    gen = np.random.default_rng([seed, 3])
    a = (gen.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
    x = gen.standard_normal((n_samples, width)).astype(np.float32)
    target = x @ a.T
    model = make_deep_linear(depth, width, bn, seed)
    lin = linear_indices(model)
    which = lin[1:] if which is None else [lin[k - 1] for k in which]
    model.train()

    def grad_fn(m):
        diff = m.forward(x) - target                     # (N, width)
        m.backward(2 * diff / n_samples)
        return float((diff.astype(np.float64) ** 2).sum() / n_samples)

    params = model.parameters()
    out = {"loss": [], "ics_steps": [], "ics_l2": [], "ics_cos": [],
           "ics_gnorm": []}
    for t in range(steps + 1):
        if ics_every and t % ics_every == 0 and t < steps:
            l2, cos = gradient_shift(model, grad_fn, ics_lr, which)
            out["ics_steps"].append(t)
            out["ics_l2"].append(l2)
            out["ics_cos"].append(cos)
        out["loss"].append(grad_fn(model))
        if ics_every and t % ics_every == 0 and t < steps:
            out["ics_gnorm"].append([np.linalg.norm(model.layers[i].weight.grad)
                                     for i in which])
        if t < steps:
            for p in params:
                p.data -= lr * p.grad
    out = {k: np.asarray(v) for k, v in out.items()}
    out["which"] = np.asarray([lin.index(i) + 1 for i in which])
    return out
