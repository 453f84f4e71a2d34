"""A lean trainer for Ioffe & Szegedy's Figure 1 MLP, several seeds at once.

Figure 1 needs 50,000 SGD steps of batch 60 per run; the generic Module stack
spends most of a step on Python bookkeeping. :func:`train_fig1` does the same
math (Linear -> [BN -> [noise]] -> sigmoid, softmax cross-entropy, plain SGD,
the batches of :func:`bnbook.train.minibatches`) on arrays stacked over seeds,
``(S, N, D)``, so one NumPy call serves every seed. It starts from the weights
of :func:`~bnbook.experiments.covariate_shift.make_mlp` and is checked against
the library's layers in the tests. Noise comes from the library's
:class:`~bnbook.layers.NoiseInjection` (one layer per seed and hidden layer).
"""
import numpy as np
from threadpoolctl import threadpool_limits

from .. import layers
from ..train import minibatches
from .covariate_shift import VARIANTS, PERCENTILES, make_mlp

EPS, MOMENTUM = 1e-5, 0.1          # the library BatchNorm's defaults


def stack_params(variant, seeds, sizes, noise=None):
    """Parameters of ``make_mlp(variant, sizes, seed)`` stacked over ``seeds``.

    Returns a dict of lists (one entry per Linear): ``W`` (S, in, out), ``b``
    (S, 1, out) or None, and for BN ``gamma``, ``beta``, ``rmean``, ``rvar``
    (S, 1, out); ``noise``: per seed, that model's NoiseInjection layers (one per
    hidden layer; empty lists unless ``variant == 'noisy'``).
    """
    models = [make_mlp(variant, sizes=sizes, seed=s, noise=noise) for s in seeds]
    p = {"W": [], "b": [], "gamma": [], "beta": [], "rmean": [], "rvar": [], "noise": []}
    for k in range(len(sizes) - 1):
        lin = [[m for m in mod.layers if isinstance(m, layers.Linear)][k] for mod in models]
        p["W"].append(np.stack([m.weight.data.T for m in lin]))
        p["b"].append(None if lin[0].bias is None else
                      np.stack([m.bias.data[None] for m in lin]))
    bn = [[m for m in mod.layers if isinstance(m, layers.BatchNorm)] for mod in models]
    for k in range(len(bn[0])):
        bns = [per_model[k] for per_model in bn]
        for key, attr in (("gamma", "gamma"), ("beta", "beta")):
            p[key].append(np.stack([getattr(m, attr).data[None] for m in bns]))
        p["rmean"].append(np.stack([m.running_mean[None] for m in bns]))
        p["rvar"].append(np.stack([m.running_var[None] for m in bns]))
    p["noise"] = [[m for m in mod.layers if isinstance(m, layers.NoiseInjection)]
                  for mod in models]
    return p


def forward(p, x, train=True):
    """Logits (S, N, 10) and the caches; ``x`` (S, N, 784). Train mode uses
    batch statistics (and updates the running ones) and draws noise."""
    h, caches = x, []
    for k, w in enumerate(p["W"]):
        a = h @ w                                             # (S, N, out)
        if p["b"][k] is not None:
            a += p["b"][k]
        if k == len(p["W"]) - 1:
            return a, caches
        c = {"h": h}
        if p["gamma"]:
            if train:
                mu, var = a.mean(1, keepdims=True), a.var(1, keepdims=True)
                n = a.shape[1]
                p["rmean"][k] += MOMENTUM * (mu - p["rmean"][k])
                p["rvar"][k] += MOMENTUM * (var * n / (n - 1) - p["rvar"][k])
            else:
                mu, var = p["rmean"][k], p["rvar"][k]
            c["inv_std"] = 1 / np.sqrt(var + EPS)
            c["x_hat"] = (a - mu) * c["inv_std"]
            a = p["gamma"][k] * c["x_hat"] + p["beta"][k]
            if train and p["noise"][0]:
                sc = np.stack([nz[k].forward(a[s]) for s, nz in enumerate(p["noise"])])
                c["scale"] = np.stack([nz[k].scale_b for nz in p["noise"]])
                a = sc
        c["z"] = a                                            # sigmoid input
        h = 1 / (1 + np.exp(-a))
        c["s"] = h
        caches.append(c)


def backward_step(p, caches, logits, y, lr):
    """Softmax cross-entropy (mean over the batch) and one SGD step; returns the losses (S,)."""
    s_idx = np.arange(logits.shape[0])[:, None]
    n_idx = np.arange(logits.shape[1])[None, :]
    z = logits - logits.max(2, keepdims=True)
    logp = z - np.log(np.exp(z).sum(2, keepdims=True))
    loss = -logp[s_idx, n_idx, y].mean(1)
    g = np.exp(logp)
    g[s_idx, n_idx, y] -= 1
    g /= logits.shape[1]                                      # dL/dlogits (S, N, 10)
    for k in range(len(p["W"]) - 1, -1, -1):
        h = caches[k - 1]["s"] if k else caches[0]["h"]
        dw = h.transpose(0, 2, 1) @ g
        if p["b"][k] is not None:
            p["b"][k] -= lr * g.sum(1, keepdims=True)
        if k:
            c = caches[k - 1]
            dz = (g @ p["W"][k].transpose(0, 2, 1)) * c["s"] * (1 - c["s"])
            if p["gamma"]:
                dz = dz * c.get("scale", 1)
                dxh = dz * p["gamma"][k - 1]
                p["gamma"][k - 1] -= lr * (dz * c["x_hat"]).sum(1, keepdims=True)
                p["beta"][k - 1] -= lr * dz.sum(1, keepdims=True)
                dz = c["inv_std"] * (dxh - dxh.mean(1, keepdims=True) - c["x_hat"]
                                     * (dxh * c["x_hat"]).mean(1, keepdims=True))
            g = dz
        p["W"][k] -= lr * dw
    return loss


def accuracy(p, x, y):
    """Eval-mode accuracy (S,) on shared data ``x`` (N, 784), ``y`` (N,)."""
    logits, _ = forward(p, np.broadcast_to(x, (len(p["W"][0]),) + x.shape), train=False)
    return (logits.argmax(2) == y).mean(1)


def train_fig1(variant, steps, lr, data, seeds=(0, 1, 2), batch_size=60, record_every=500,
               probe_size=500, unit=0, eval_every=500, sizes=(784, 100, 100, 100, 10),
               noise=None, train_eval=1000):
    """Train ``len(seeds)`` copies of the Figure 1 MLP with plain SGD; seed s uses
    ``make_mlp(variant, seed=s)``'s weights and ``minibatches(..., seed=s)``.

    Every ``record_every`` steps (before the step) a fixed probe of ``probe_size``
    training digits goes through the network in training mode (batch statistics
    of the probe, noise drawn; running statistics untouched), and the 15th/50th/
    85th percentiles of every last-hidden-layer sigmoid input are kept. Every
    ``eval_every`` steps (and at the end) eval-mode accuracy on the test set and
    on the first ``train_eval`` training digits is measured.

    Returns a dict: ``record_steps`` (R,), ``percentiles`` (S, R, 3, D),
    ``unit_values`` (S, R, probe_size) of unit ``unit``, ``eval_steps`` (E,),
    ``test_acc``, ``train_acc`` (S, E), ``loss`` (S, steps) training losses.
    """
    if variant not in VARIANTS or steps < 1 or lr <= 0 or record_every < 1 or eval_every < 1:
        raise ValueError(f"need variant in {VARIANTS}, steps >= 1, lr > 0 and positive "
                         f"intervals; got {variant!r}, {steps}, {lr}, {record_every}, "
                         f"{eval_every}")
    p = stack_params(variant, seeds, sizes, noise)
    # small matrices: one BLAS thread is fastest; a diverging rate may overflow exp
    with threadpool_limits(limits=1, user_api="blas"), np.errstate(over="ignore"):
        return _loop(p, data, steps, lr, seeds, batch_size, record_every, probe_size, unit,
                     eval_every, train_eval)


def _loop(p, data, steps, lr, seeds, batch_size, record_every, probe_size, unit, eval_every,
          train_eval):
    x, y, x_test, y_test = data
    gens = [minibatches(len(x), batch_size, np.random.default_rng(s)) for s in seeds]
    probe = x[np.random.default_rng(12345).choice(len(x), probe_size, replace=False)]
    probe_s = np.broadcast_to(probe, (len(seeds),) + probe.shape)
    out = {"record_steps": [], "percentiles": [], "unit_values": [], "eval_steps": [],
           "test_acc": [], "train_acc": [], "loss": []}
    for t in range(steps + 1):
        if t % record_every == 0:
            running = [a.copy() for a in p["rmean"] + p["rvar"]]
            z = forward(p, probe_s)[1][-1]["z"]                    # (S, P, D)
            for a, r in zip(p["rmean"] + p["rvar"], running):
                a[...] = r
            out["record_steps"].append(t)
            out["percentiles"].append(np.percentile(z, PERCENTILES, axis=1))
            out["unit_values"].append(z[:, :, unit])
        if t % eval_every == 0 or t == steps:
            out["eval_steps"].append(t)
            out["test_acc"].append(accuracy(p, x_test, y_test))
            out["train_acc"].append(accuracy(p, x[:train_eval], y[:train_eval]))
        if t == steps:
            break
        idx = np.stack([next(g) for g in gens])                        # (S, B)
        logits, caches = forward(p, x[idx])
        out["loss"].append(backward_step(p, caches, logits, y[idx], lr))
    res = {k: np.asarray(v) for k, v in out.items()}
    res["percentiles"] = res["percentiles"].transpose(2, 0, 1, 3)       # (S, R, 3, D)
    for k in ("unit_values", "test_acc", "train_acc", "loss"):
        res[k] = np.moveaxis(res[k], 0, 1)
    return res


if __name__ == "__main__":     # python -m bnbook.experiments.ics_fig1 --out ...
    import sys
    from .ics_fig1_run import main
    sys.exit(main())
