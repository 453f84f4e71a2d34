"""Santurkar et al.'s single-layer statements, both sides computed in float64.

* :func:`bn_gradient_bound`: Theorem 4.1, the gradient of one BN unit.
* :func:`bn_hessian_along_gradient`: Theorem 4.2, the quadratic form of the
  loss Hessian along the gradient, the left side by finite differences of the
  exact BN backward (no autograd).
* :func:`init_distance`: Lemma 4.5, the distance from an initialization to the
  closest optimum of a least-squares unit with and without BN.
"""
import numpy as np

from .. import batchnorm


def _bn_unit(y, gamma, eps):
    y = np.asarray(y, dtype=np.float64).reshape(-1, 1)       # (m, 1)
    if y.shape[0] < 2:
        raise ValueError(f"y must hold m >= 2 values, got {y.shape[0]}")
    gam = np.full(1, gamma, dtype=np.float64)
    return y, gam


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
    y, gam = _bn_unit(y, gamma, eps)
    g = np.asarray(g, dtype=np.float64).reshape(-1, 1)
    if y.shape != g.shape:
        raise ValueError("y and g must be 1-D of the same length m >= 2, got "
                         f"shapes {y.shape[:1]} and {g.shape[:1]}")
    m = y.shape[0]
    _, cache = batchnorm.forward(y, gam, np.zeros(1), eps=eps)
    dy, _, _ = batchnorm.backward(g, cache)
    lhs = float((dy ** 2).sum())
    sigma2 = y.var() + eps
    y_hat = (y - y.mean()) / np.sqrt(sigma2)
    base = float((g ** 2).sum() - g.sum() ** 2 / m)
    proj = float((g * y_hat).sum() ** 2)
    scale = gamma ** 2 / sigma2
    return lhs, scale * (base - proj / m), scale * (base - proj / np.sqrt(m))


def quadratic_tanh_loss(S, c):
    """``L(z) = z^T S z / 2 + c^T z + sum(log cosh z)`` with its exact gradient
    and Hessian: a smooth loss with an indefinite Hessian when ``S`` is."""
    S, c = np.asarray(S, np.float64), np.asarray(c, np.float64)

    def loss(z):
        t = np.tanh(z)
        value = 0.5 * z @ S @ z + c @ z + np.sum(np.log(np.cosh(z)))
        return value, S @ z + c + t, S + np.diag(1 - t ** 2)
    return loss


def bn_hessian_along_gradient(y, gamma, loss, eps=0.0, h=1e-4):
    """Both sides of Theorem 4.2 for one BN unit (beta = 0).

    ``L_hat(y) = L(z)`` with ``z = gamma * y_hat`` and ``loss(z)`` returning
    ``(L, g_hat, H)``: the value, gradient and Hessian at ``z``. With
    ``v = grad_y L_hat`` (exact BN backward)::

        lhs = v^T (d^2 L_hat / dy^2) v     central differences of grad_y L_hat
                                           at y +- h * v * sigma / max|v|
        rhs = gamma^2/sigma^2 v^T H v - gamma/(m sigma^2) <g_hat, y_hat> ||v||^2

    Returns ``(lhs, rhs, first, second)``, the last two the terms of ``rhs``.
    """
    y, gam = _bn_unit(y, gamma, eps)
    m, sigma2 = y.shape[0], y.var() + eps

    def grad(yy):
        z, cache = batchnorm.forward(yy, gam, np.zeros(1), eps=eps)
        _, g_hat, H = loss(z[:, 0])
        return batchnorm.backward(g_hat[:, None], cache)[0], g_hat, H, cache

    v, g_hat, H, cache = grad(y)
    step = h * np.sqrt(sigma2) / np.abs(v).max()
    dv = grad(y + step * v)[0] - grad(y - step * v)[0]
    lhs = float((v * dv).sum() / (2 * step))
    y_hat = cache.x_hat[:, 0]
    first = float(gamma ** 2 / sigma2 * (v[:, 0] @ H @ v[:, 0]))
    second = float(-gamma / (m * sigma2) * (g_hat @ y_hat) * (v ** 2).sum())
    return lhs, first + second, first, second


def init_distance(x, t, w0):
    """Lemma 4.5 for one linear unit ``x @ w`` fitted to ``t`` by least squares.

    Without BN the unit has a bias; with BN (batch statistics of all N rows)
    its output is ``gamma * (x w - mean) / std + beta``. ``w_star`` is the
    unique plain optimum; every ``k * w_star`` (k > 0) with ``gamma =
    std(x w_star)``, ``beta = mean(t)`` is a BN optimum. Returns a dict:
    ``plain`` = ||w0 - w*||^2, ``ray`` = min over k of ||w0 - k w*||^2 (an
    upper bound on the squared distance to the closest BN optimum),
    ``rhs`` = ||w0 - w*||^2 - (||w*||^2 - <w*, w0>)^2 / ||w*||^2, ``k``,
    ``w_star``, ``gamma``, ``beta``.
    """
    x, t = np.asarray(x, np.float64), np.asarray(t, np.float64)
    w0 = np.asarray(w0, np.float64)
    if x.ndim != 2 or t.shape != (len(x),) or w0.shape != (x.shape[1],):
        raise ValueError("need x (N, d), t (N,) and w0 (d,), got "
                         f"{x.shape}, {t.shape}, {w0.shape}")
    xc = x - x.mean(axis=0)
    w_star = np.linalg.lstsq(xc, t - t.mean(), rcond=None)[0]
    ww, w0w = w_star @ w_star, w_star @ w0
    k = w0w / ww                           # closest point of the ray
    return dict(plain=float((w0 - w_star) @ (w0 - w_star)),
                ray=float((w0 - k * w_star) @ (w0 - k * w_star)),
                rhs=float((w0 - w_star) @ (w0 - w_star) - (ww - w0w) ** 2 / ww),
                k=float(k), w_star=w_star, gamma=float((x @ w_star).std()),
                beta=float(t.mean()))


def bn_unit_loss_and_grad(x, t, w, gamma, beta):
    """Mean squared error of the BN unit of :func:`init_distance` and its
    gradient in ``w`` (exact BN backward, eps = 0)."""
    y = (np.asarray(x, np.float64) @ w)[:, None]              # (N, 1)
    z, cache = batchnorm.forward(y, np.full(1, gamma), np.full(1, beta),
                                 eps=0.0)
    r = z[:, 0] - t
    dy = batchnorm.backward((2 * r / len(t))[:, None], cache)[0]
    return float(np.mean(r ** 2)), x.T @ dy[:, 0]
