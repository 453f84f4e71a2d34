"""Gradient explosion at initialization in deep batch-normalized MLPs (Yang et al., 2019).

A stack of ``Linear -> BatchNorm -> activation`` blocks, Kaiming-initialized,
is fed a Gaussian batch, and the output gradient ``g_b = dl/dy_b`` is drawn at
random *for every sample* (the mean-field analysis's setting). We record the
squared norm of the gradient of every weight matrix, fit
``log ||∇W_l||² ≈ a - l log λ`` over the middle layers and report the per-layer
growth factor ``λ`` (from the output back to the input). A gradient *shared*
by the batch (``g_b = c``, the loss ``Σ_b c · y_b``) is available to show why
it is the wrong probe: BN's backward pass removes it.

Variants (the networks are built in :mod:`.deep_mlp`): no normalization, BN
statistics *frozen* in the backward pass (the batch mean and standard deviation
treated as constants: ``dx = gamma * dy / sigma``; :class:`FrozenStats`), other
activations (:class:`LeakyReLU`, tanh, identity), residual connections
(:func:`bnbook.models.residual_mlp`), and the gradient profile before and after
one SGD step on real data.
"""
import math

import numpy as np

from .. import losses, optim
from .deep_mlp import (ACTIVATIONS, FrozenStats, LeakyReLU,  # noqa: F401
                       build, weights)


def grad_profile(net, x, g):
    """Squared Frobenius norms ``||∇W_l||²`` per layer for output gradient g.

    ``g`` is ``dl/dy`` at the output: shape (batch, outputs) for one gradient
    per sample, or (outputs,) for one vector ``c`` shared by every sample
    (the loss ``Σ_b c · y_b``).
    """
    y = net.forward(x)
    if g.shape not in (y.shape, y.shape[1:]):
        raise ValueError(f"g must have shape {y.shape} (one gradient per "
                         f"sample) or ({y.shape[1]},) (shared), "
                         f"got {g.shape}")
    net.backward(np.broadcast_to(g.astype(y.dtype), y.shape).copy())
    return np.array([float(np.sum(np.square(w.grad, dtype=np.float64)))
                     for w in weights(net)])


def growth_factor(sq_norms, skip=4):
    """``λ = exp(-slope)`` of a least-squares line.

    The line is fitted through ``log sq_norms[skip:-skip]`` over the layer.
    """
    sq_norms = np.asarray(sq_norms, dtype=np.float64)
    if sq_norms.ndim != 1 or sq_norms.size - 2 * skip < 2:
        raise ValueError(f"need a 1-D profile with more than {2 * skip + 1} "
                         f"layers, got shape {sq_norms.shape}")
    layer = np.arange(sq_norms.size)[skip:-skip]
    slope = np.polyfit(layer, np.log(sq_norms[skip:-skip]), 1)[0]
    return float(np.exp(-slope))


OUTPUT_GRADS = ("per-sample", "shared")


def profiles(depth, width, batch, seeds=(0,), output_grad="per-sample", **build_kw):
    """Gradient profiles over ``seeds``: ``{'sq_norms': (S, L), 'growth': (S,)}``.

    Each seed draws the weights, a Gaussian batch ``x`` (batch, width) and the
    output gradient: standard normal, (batch, 10) for ``output_grad=
    'per-sample'`` or one (10,) vector for ``'shared'``. ``build_kw`` go to
    :func:`build` (activation, norm, residual, frozen, slope, dtype).
    """
    if output_grad not in OUTPUT_GRADS:
        raise ValueError(f"unknown output_grad {output_grad!r}: expected one of "
                         f"{OUTPUT_GRADS}")
    rows = []
    for seed in seeds:
        net = build(depth, width, seed=seed, **build_kw)
        gen = np.random.default_rng(10_000 + seed)
        dtype = weights(net)[0].data.dtype
        x = gen.standard_normal((batch, width)).astype(dtype)
        shape = (batch, 10) if output_grad == "per-sample" else (10,)
        rows.append(grad_profile(net, x, gen.standard_normal(shape)))
    sq = np.array(rows)
    return {"sq_norms": sq, "growth": np.array([growth_factor(r) for r in sq])}


def batch_sweep(batch_sizes, depth, width, seeds=(0,), **build_kw):
    """Growth factor per batch size: ``{'batch': (K,), 'growth': (K, S)}``."""
    growth = [profiles(depth, width, b, seeds, **build_kw)["growth"]
              for b in batch_sizes]
    return {"batch": np.array(batch_sizes), "growth": np.array(growth)}


def width_sweep(widths, depth, batch, seeds=(0,), **build_kw):
    """Growth factor per width: ``{'width': (K,), 'growth': (K, S)}``."""
    growth = [profiles(depth, n, batch, seeds, **build_kw)["growth"] for n in widths]
    return {"width": np.array(widths), "growth": np.array(growth)}


def theory_growth(activation="relu", slope=0.2, points=150):
    """Large-batch, infinite-width growth ``E[φ'(z)²] / Var φ(z)``.

    Here z ~ N(0, 1). Piecewise-linear activations (relu, leaky, linear)
    in closed form, with ``E[φ'²] = E[φ²] = (1 + a²)/2`` and
    ``E[φ] = (1 - a)/sqrt(2π)`` for slope ``a`` (ReLU: π/(π-1), derived
    symbolically in the chapter); tanh by Gauss-Hermite quadrature with
    ``points`` nodes (it is smooth, so that converges).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: expected one "
                         f"of {ACTIVATIONS}")
    if activation != "tanh":
        a = {"relu": 0.0, "leaky": slope, "linear": 1.0}[activation]
        second = (1 + a * a) / 2
        return second / (second - (1 - a) ** 2 / (2 * math.pi))
    z, w = np.polynomial.hermite_e.hermegauss(points)
    w = w / math.sqrt(2 * math.pi)      # weights of the N(0, 1) density
    phi, dphi = np.tanh(z), 1 - np.tanh(z) ** 2
    return float((w @ dphi ** 2) / (w @ phi ** 2 - (w @ phi) ** 2))


def one_step(x, y, depth, width, lr=0.1, classes=10, seed=0, dtype=np.float32):
    """Per-layer gradient norms of the cross-entropy before and after one SGD step.

    ``x`` (N, features) and integer labels ``y`` (N,) form one batch; the same
    batch is used for the step and both measurements. Returns ``{'before',
    'after'}`` squared gradient norms per layer, the weight norms before and
    after, and the loss before and after.
    """
    x, y = np.asarray(x, dtype=dtype), np.asarray(y)
    if x.ndim != 2 or y.shape != (len(x),):
        raise ValueError(f"x must be (N, features) with one label per row, got x {x.shape} "
                         f"and y {y.shape}")
    net = build(depth, width, in_features=x.shape[1], out_features=classes,
                seed=seed, dtype=dtype)
    out = {}
    for when in ("before", "after"):
        loss, dlogits = losses.softmax_cross_entropy(net.forward(x), y)
        net.backward(dlogits)
        out[when] = np.array([float(np.sum(np.square(w.grad, dtype=np.float64)))
                              for w in weights(net)])
        out[f"weight_norm_{when}"] = np.array([float(np.linalg.norm(w.data))
                                               for w in weights(net)])
        out[f"loss_{when}"] = float(loss)
        if when == "before":
            optim.SGD(net.parameters(), lr=lr).step()
    return out


def dynamic_range(sq_norms):
    """``log10(max / min)`` of the gradient norms (half the range of the squares)."""
    sq_norms = np.asarray(sq_norms, dtype=np.float64)
    return float(0.5 * np.log10(sq_norms.max() / sq_norms.min()))
