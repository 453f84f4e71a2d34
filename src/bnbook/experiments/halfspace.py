"""Learning a halfspace (Kohler et al., 2019): ``min E phi(z^T w~)``, ``z = -y x``.

Two problems, both as :class:`~bnbook.experiments.length_direction.Problem`:

* :func:`logistic`: the convex logistic loss on a finite sample whose inputs
  may be Gaussian, skewed or heavy-tailed (:func:`sample_inputs`);
* :func:`sigmoid_gaussian`: the paper's setting, a smooth non-convex loss
  (the sigmoid, ``phi(t) = 1 / (1 + exp(-t))``) under its Gaussian assumption
  ``z ~ N(u, S - u u^T)`` with ``u = E z`` and ``S = E z z^T``, plus a weight
  decay ``lam / 2 * ||w~||_S^2 = lam / 2 * g^2`` on the length. The
  expectations are one-dimensional (``z^T w~`` is Gaussian) and computed by
  quadrature, so loss and gradient are the population ones, not a sample's.

:func:`gdnp_path` runs GDNP with the paper's direction step
``s_t = -||w||_S^3 / (L g h)``, ``h = c_1(w~) u^T w`` (see :func:`coefficients`),
and :func:`gd_path` plain GD; both return the excess loss, the gradient norm
``||grad F(w~)||_{S^-1}`` and the direction error ``rho(w) - rho*`` per step.
:func:`gdnp_bisect_once` runs the same direction steps and bisects only for
the output.
"""
import math
from dataclasses import dataclass

import numpy as np

from .length_direction import Problem, _check_dims, bisect_length, covariance, s_norm

# standard-normal quadrature: trapezoid rule on [-12, 12] (spectrally accurate
# for the analytic integrands here)
_XI = np.linspace(-12.0, 12.0, 1201)
_WEIGHT = np.exp(-0.5 * _XI ** 2) * (_XI[1] - _XI[0]) / math.sqrt(2 * math.pi)
SIGMOID_CURVATURE = 1 / (6 * math.sqrt(3))          # max |phi''| of the sigmoid


def sample_inputs(n, d, cond, dist="gaussian", seed=0):
    """``n`` centred inputs (n, d) with covariance about :func:`covariance`'s ``S``.

    ``dist``: 'gaussian'; 'skewed' (standardized exponential coordinates, skewness 2);
    'heavy' (standardized Student t with 3 degrees of freedom: infinite 4th moment).
    """
    _check_dims(d, cond)
    gen = np.random.default_rng(seed)
    if dist == "gaussian":
        z = gen.standard_normal((n, d))
    elif dist == "skewed":
        z = gen.exponential(size=(n, d)) - 1.0
    elif dist == "heavy":
        z = gen.standard_t(3, size=(n, d)) / math.sqrt(3.0)
    else:
        raise ValueError(f"unknown dist {dist!r}: expected 'gaussian', 'skewed' or 'heavy'")
    root = np.linalg.cholesky(covariance(d, cond, seed))
    x = z @ root.T
    return x - x.mean(axis=0)


def logistic(x, w_true, seed=0, newton_steps=30):
    """Learning a halfspace with the logistic loss, ``F(w~) = mean log(1 + exp(-y x^T w~))``.

    Labels ``y = ±1`` are drawn with ``P(y = 1) = sigmoid(x^T w_true)`` (so a finite
    minimizer exists); the minimizer is found by Newton's method.
    ``beta = lambda_max(S) / 4`` bounds the Hessian.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or w_true.shape != (x.shape[1],):
        raise ValueError(f"x must be (n, d) and w_true (d,), got {x.shape} and {w_true.shape}")
    gen = np.random.default_rng(seed)
    y = np.where(gen.random(len(x)) < 1 / (1 + np.exp(-x @ w_true)), 1.0, -1.0)
    z = -y[:, None] * x                                  # loss = mean softplus(z @ w~)
    S = x.T @ x / len(x)

    def loss(wt):
        return float(np.mean(np.logaddexp(0.0, z @ wt)))

    def grad(wt):
        return z.T @ (0.5 * (1 + np.tanh(0.5 * (z @ wt)))) / len(z)   # sigmoid, stable

    w = np.zeros(x.shape[1])
    for _ in range(newton_steps):
        p = 0.5 * (1 + np.tanh(0.5 * (z @ w)))
        hess = (z * (p * (1 - p))[:, None]).T @ z / len(z)
        w = w - np.linalg.solve(hess, grad(w))
    prob = Problem(loss, grad, S, float(np.linalg.eigvalsh(S)[-1]) / 4, w, loss(w))
    prob.u = x.T @ y / len(x)                            # E[y x], for the alignment check
    return prob


def _sigmoid_derivs(t):
    p = 0.5 * (1 + np.tanh(0.5 * t))                # sigmoid, stable
    return p, p * (1 - p), p * (1 - p) * (1 - 2 * p)


@dataclass
class GaussianHalfspace(Problem):
    """A :class:`Problem` with the Gaussian data ``u``, ``cov`` and ``lam``."""

    u: np.ndarray = None
    cov: np.ndarray = None
    lam: float = 0.0


def _moments(prob, wt):
    # E phi(t), E phi'(t), E phi''(t) for t = z^T w~ ~ N(u^T w~, w~^T cov w~)
    t = prob.u @ wt + math.sqrt(max(float(wt @ prob.cov @ wt), 0.0)) * _XI
    return [float(_WEIGHT @ v) for v in _sigmoid_derivs(t)]


def coefficients(prob, wt):
    """``(c_1, c_2)`` with ``grad F(w~) = c_1 u + c_2 S w~`` (Stein's lemma).

    ``c_1 = E phi'(z^T w~) - E phi''(z^T w~) u^T w~``, ``c_2 = E phi'' + lam``.
    """
    _, d1, d2 = _moments(prob, wt)
    return d1 - d2 * float(prob.u @ wt), d2 + prob.lam


def sigmoid_gaussian(d=10, cond=100.0, margin=1.5, lam=0.01, seed=0):
    """The sigmoid loss under Gaussian ``z`` with mean ``u``, covariance ``cov``.

    ``cov`` is :func:`covariance` ``(d, cond, seed)``; ``u`` is random with
    ``||u||_{cov^-1} = margin`` (its signal-to-noise ratio). ``S = cov + u u^T``.
    ``beta = (max|phi''| + lam) lambda_max(S)`` bounds the Hessian. The minimizer
    lies on the line through ``S^-1 u`` (all critical points do) and is found by
    bisection on that line.
    """
    if not margin > 0 or not lam > 0:
        raise ValueError(f"margin and lam must be > 0, got {margin}, {lam}")
    cov = covariance(d, cond, seed)
    v = np.random.default_rng(seed + 1).standard_normal(d)
    u = margin * v / s_norm(v, np.linalg.inv(cov))
    S = cov + np.outer(u, u)
    prob = GaussianHalfspace(
        loss=None, grad=None, S=S, w_opt=np.linalg.solve(S, u), f_opt=0.0,
        beta=(SIGMOID_CURVATURE + lam) * float(np.linalg.eigvalsh(S)[-1]),
        u=u, cov=cov, lam=lam)
    prob.loss = lambda wt: _moments(prob, wt)[0] + 0.5 * lam * float(wt @ S @ wt)
    prob.grad = lambda wt: np.dot([*coefficients(prob, wt)], [u, S @ wt])
    line = -prob.w_opt                               # the side with u^T w~ < 0
    g = bisect_length(prob, line, steps=200, bound=1.0 / lam)   # root |g| <= 0.25 / lam
    prob.w_opt = g * line / s_norm(line, S)
    prob.f_opt = prob.loss(prob.w_opt)
    return prob


def rho(w, u, S):
    """The Rayleigh quotient ``rho(w) = -(u^T w)^2 / ||w||_S^2``."""
    return -float(u @ w) ** 2 / float(w @ S @ w)


def _record(prob, wt, w, out, rho_opt):
    grad = prob.grad(wt)
    out["loss"].append(prob.loss(wt) - prob.f_opt)
    out["grad"].append(math.sqrt(max(float(grad @ np.linalg.solve(prob.S, grad)), 0)))
    out["rho"].append(rho(w, prob.u, prob.S) - rho_opt)
    return grad


def _finish(out):
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def gd_path(prob, w0, iters, scale=1.0):
    """Plain GD on ``w~`` with step ``scale / beta``, from ``w0`` (d,).

    Returns arrays (iters + 1,): ``loss`` (excess), ``grad``
    (``||grad F||_{S^-1}``), ``rho`` (``rho(w~) - rho*``) and ``evals``
    (gradient evaluations so far: one per step).
    """
    rho_opt = rho(prob.w_opt, prob.u, prob.S)
    wt, out = np.array(w0, dtype=np.float64), {"loss": [], "grad": [], "rho": []}
    for _ in range(iters + 1):
        wt = wt - (scale / prob.beta) * _record(prob, wt, wt, out, rho_opt)
    out["evals"] = np.arange(iters + 1)
    return _finish(out)


def gdnp_path(prob, w0, iters, bisection_steps=30):
    """GDNP with the paper's step, from the direction ``w0`` (d,).

    Per step: the length ``g`` by ``bisection_steps`` halvings (each one
    gradient evaluation; ``d f / d g`` need not be monotone here, the
    bisection keeps a sign change), then, unless ``h = c_1 u^T w`` is 0,
    the direction step ``w <- w - s grad_w f(w, g)`` with
    ``s = -||w||_S^3 / (L g h)``,
    ``L = lambda_max(S)``. Under the Gaussian assumption this is gradient
    descent on ``rho`` with the step ``||w||_S^2 / (2 L |rho(w)|)``.
    Returns the arrays of :func:`gd_path` (``evals``: bisection_steps + 1 per
    step).
    """
    L = float(np.linalg.eigvalsh(prob.S)[-1])
    rho_opt = rho(prob.w_opt, prob.u, prob.S)
    w = np.array(w0, dtype=np.float64)
    out = {"loss": [], "grad": [], "rho": []}
    for _ in range(iters + 1):
        g = bisect_length(prob, w, bisection_steps)
        wt = g * w / s_norm(w, prob.S)
        w = _direction_step(prob, w, g, _record(prob, wt, w, out, rho_opt), L)
    out["evals"] = (bisection_steps + 1) * np.arange(iters + 1)
    return _finish(out)


def _direction_step(prob, w, g, grad, L):
    # w - s grad_w f(w, g), s = -||w||_S^3 / (L g h), h = c_1 u^T w; grad at g w / ||w||_S
    norm = s_norm(w, prob.S)
    h = coefficients(prob, g * w / norm)[0] * float(prob.u @ w)
    if h == 0 or g == 0:
        return w
    # the gradient in w: grad F projected off S w, times g / ||w||_S
    grad_w = (g / norm) * (grad - (prob.S @ w) * (w @ grad) / norm**2)
    return w - (-norm ** 3 / (L * g * h)) * grad_w


def gdnp_bisect_once(prob, w0, iters, bisection_steps=30, every=100):
    """GDNP with the length fixed during the direction steps, bisected once at the end.

    The direction step of :func:`gdnp_path` does not depend on ``g`` (``g`` and
    ``c_1`` cancel), so the steps use the start's length and cost one gradient
    evaluation each. Every ``every`` iterations the output is formed as the
    paper's is, the length by ``bisection_steps`` halvings. Returns ``evals``
    (``t + bisection_steps``: the cost of stopping at iteration ``t``) and
    ``grad`` (``||grad F||_{S^-1}`` of that output), arrays (iters // every + 1,).
    """
    if iters < 0 or every < 1:
        raise ValueError(f"iters must be >= 0 and every >= 1, got {iters}, {every}")
    w, L = np.array(w0, dtype=np.float64), float(np.linalg.eigvalsh(prob.S)[-1])
    g0, evals, norms = bisect_length(prob, w, bisection_steps), [], []
    for t in range(iters + 1):
        if t % every == 0:
            wt = bisect_length(prob, w, bisection_steps) * w / s_norm(w, prob.S)
            grad = prob.grad(wt)
            evals.append(t + bisection_steps)
            norms.append(math.sqrt(max(float(grad @ np.linalg.solve(prob.S, grad)), 0)))
        w = _direction_step(prob, w, g0, prob.grad(g0 * w / s_norm(w, prob.S)), L)
    return {"evals": np.asarray(evals, dtype=np.float64), "grad": np.asarray(norms)}


def hessian(prob, wt, eps=1e-5):
    """The Hessian of ``prob.loss`` at ``wt`` (d, d), by central differences of the gradient."""
    cols = [(prob.grad(wt + eps * e) - prob.grad(wt - eps * e)) / (2 * eps)
            for e in np.eye(len(wt))]
    H = np.array(cols)
    return 0.5 * (H + H.T)
