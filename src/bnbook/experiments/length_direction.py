"""Length-direction decoupling (Kohler et al., 2019): BN as ``w~ = g * w / ||w||_S``.

For a linear unit ``x^T w`` with centred input of covariance ``S``, batch
normalization divides by ``||w||_S = sqrt(w^T S w)``, so training ``(w, g)``
amounts to training ``w~ = g w / ||w||_S``: ``g`` is its length, ``w`` only its
direction. Everything here works on a loss ``F(w~)`` given as a :class:`Problem`
(its gradient, ``S`` and a smoothness constant ``beta``) and compares

* plain gradient descent on ``w~``: ``w~ <- w~ - (scale / beta) grad F(w~)``;
* GDNP (gradient descent in normalized parametrization): per step, the length
  ``g`` by bisection on ``d f / d g = 0``, then a gradient step on the direction
  ``w <- w - s_t grad_w f(w, g)`` with ``s_t = scale * ||w||_S^2 / (beta g^2)``.
  For least squares, with the length at its optimum, this is gradient descent on
  the Rayleigh quotient ``rho(w) = -(u^T w)^2 / ||w||_S^2`` with the step
  ``||w||_S^2 / (2 L |rho(w)|)``, ``L = lambda_max(S)``.
"""
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass
class Problem:
    """A loss ``F(w~)`` with ``grad``, input covariance ``S``, smoothness ``beta``, optimum."""

    loss: Callable
    grad: Callable
    S: np.ndarray
    beta: float
    w_opt: np.ndarray
    f_opt: float


def _check_dims(d, cond):
    if not isinstance(d, (int, np.integer)) or d < 2:
        raise ValueError(f"d must be an int >= 2, got {d!r}")
    if not cond >= 1:
        raise ValueError(f"cond (condition number of S) must be >= 1, got {cond}")


def covariance(d, cond, seed=0):
    """A random SPD ``S`` (d, d) with eigenvalues log-spaced from 1 down to 1/cond."""
    _check_dims(d, cond)
    gen = np.random.default_rng(seed)
    q, _ = np.linalg.qr(gen.standard_normal((d, d)))
    return (q * np.logspace(0, -math.log10(cond), d)) @ q.T


def least_squares(d=50, cond=1000.0, noise=0.1, seed=0):
    """``F(w~) = E (y - x^T w~)^2 = c - 2 u^T w~ + w~^T S w~`` in closed form.

    ``x`` has covariance ``S`` (:func:`covariance`), ``y = x^T w* + noise``,
    ``u = E[y x] = S w*``, ``c = E y^2``. Only ``S``, ``u`` and ``c`` enter, so
    the input distribution beyond its covariance does not matter here.
    """
    S = covariance(d, cond, seed)
    w_star = np.random.default_rng(seed + 1).standard_normal(d)
    u, c = S @ w_star, float(w_star @ S @ w_star + noise ** 2)
    return Problem(loss=lambda wt: float(c - 2 * u @ wt + wt @ S @ wt),
                   grad=lambda wt: 2 * (S @ wt - u), S=S,
                   beta=2 * float(np.linalg.eigvalsh(S)[-1]), w_opt=w_star,
                   f_opt=float(noise ** 2))


def s_norm(w, S):
    """``||w||_S = sqrt(w^T S w)``."""
    return math.sqrt(float(w @ S @ w))


def bisect_length(problem, w, steps=60, bound=None):
    """The length ``g`` with ``d/dg F(g w / ||w||_S) = 0``, by ``steps`` bisections.

    ``F`` is convex, so ``d/dg`` is non-decreasing in ``g``; the search interval is
    ``[-bound, bound]`` (default: 10 times the optimum's S-norm, plus one).
    """
    direction = w / s_norm(w, problem.S)
    lo = -(bound or 10 * s_norm(problem.w_opt, problem.S) + 1)
    hi = -lo
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        if direction @ problem.grad(mid * direction) > 0:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def start_point(problem, w0, bisection_steps=60):
    """``w0`` rescaled to its best length: the common starting point of GD and GDNP."""
    w0 = np.asarray(w0, dtype=np.float64)
    return bisect_length(problem, w0, bisection_steps) * w0 / s_norm(w0, problem.S)


def gd(problem, w0, iters, scale=1.0):
    """Plain GD on ``w~`` with step ``scale / beta``; excess loss per iteration (iters + 1,)."""
    wt, out = np.array(w0, dtype=np.float64), []
    with np.errstate(all="ignore"):
        for _ in range(iters + 1):
            out.append(problem.loss(wt) - problem.f_opt)
            wt = wt - (scale / problem.beta) * problem.grad(wt)
    return _clean(out)


def gdnp(problem, w0, iters, scale=1.0, bisection_steps=60):
    """GDNP: bisection on the length, then one step on the direction; excess loss per step."""
    w, out = np.array(w0, dtype=np.float64), []
    S = problem.S
    with np.errstate(all="ignore"):
        for _ in range(iters + 1):
            norm = s_norm(w, S) if np.all(np.isfinite(w)) else math.nan
            if not norm > 0:
                out.append(math.nan)
                continue
            g = bisect_length(problem, w, bisection_steps)
            wt = g * w / norm
            out.append(problem.loss(wt) - problem.f_opt)
            grad_f = problem.grad(wt)
            grad_w = (g / norm) * (grad_f - (S @ w) * (w @ grad_f) / norm ** 2)
            w = w - scale * norm ** 2 / (problem.beta * g * g) * grad_w
    return _clean(out)


def _clean(values):
    # diverged runs: inf/nan become nan so plots stop there
    values = np.array(values, dtype=np.float64)
    values[~np.isfinite(values)] = np.nan
    return values


def step_sweep(problem, w0, iters, scales, bisection_steps=60):
    """Relative excess loss after ``iters`` steps for each step multiplier: dict of arrays."""
    w0 = start_point(problem, w0, bisection_steps)
    start = problem.loss(w0) - problem.f_opt
    out = {"scale": np.asarray(scales, dtype=np.float64)}
    out["gd"] = np.array([gd(problem, w0, iters, s)[-1] for s in scales]) / start
    out["gdnp"] = np.array([gdnp(problem, w0, iters, s, bisection_steps)[-1]
                            for s in scales]) / start
    return out


def cosine(a, b, S=None):
    """Cosine of the angle between ``a`` and ``b`` (in the S inner product if given)."""
    S = np.eye(len(a)) if S is None else S
    return float(a @ S @ b / math.sqrt(float(a @ S @ a) * float(b @ S @ b)))


def rate(errors, start, stop):
    """Per-iteration contraction ``exp(slope)`` of ``log errors[start:stop]`` (a line fit)."""
    errors = np.asarray(errors, dtype=np.float64)[start:stop]
    if errors.size < 2 or not np.all(np.isfinite(errors) & (errors > 0)):
        raise ValueError(f"need at least 2 positive finite errors in [{start}:{stop}], "
                         f"got {errors.size} values")
    return float(np.exp(np.polyfit(np.arange(errors.size), np.log(errors), 1)[0]))
