"""Gradient checks: central finite differences and readable comparisons.

The first oracle for any backward pass (STYLE.md, rule 7): perturb each input
entry by ``±h`` in float64 and measure how the scalar ``L = Σ f(x) * dy``
changes, with a *random* upstream gradient ``dy``. An all-ones ``dy`` is
useless for batch normalization: ``Σ_i y_i`` does not depend on ``x`` (the
normalized batch always sums to ``m·β``), so the true ``dx`` is zero and a wrong
formula that happens to return zero for constant ``dy`` passes.

Functions
---------
numerical_grad   central differences of ``Σ f(x) * dy`` with respect to ``x``
upstream         a seeded random upstream gradient of a given shape (float64)
compare          one line "ours vs theirs" with the largest difference
"""
from dataclasses import dataclass

import numpy as np


def _as_float64(name, a):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(a).__name__}")
    if a.dtype != np.float64:
        raise TypeError(f"{name} must be float64 for finite differences (float32 loses "
                        f"about half its digits to cancellation), got {a.dtype}")
    return a


def numerical_grad(f, x, dy, h=1e-6):
    """Central finite differences of ``L(x) = Σ f(x) * dy``.

    ``dL/dx[k] ≈ (L(x + h e_k) - L(x - h e_k)) / (2h)``, error O(h²).

    Parameters
    ----------
    f : callable
        Maps an array shaped like ``x`` to an array shaped like ``dy``.
    x : float64 ndarray
        The point (left unchanged; a copy is perturbed).
    dy : float64 ndarray
        The upstream gradient (use :func:`upstream`, never all ones).
    h : float
        Step, > 0; 1e-6 balances truncation (h²) and rounding (eps/h) in float64.

    Returns
    -------
    float64 ndarray shaped like ``x``.
    """
    _as_float64("x", x)
    _as_float64("dy", dy)
    if not h > 0:
        raise ValueError(f"h must be positive, got {h}")
    out = np.asarray(f(x))
    if out.shape != dy.shape:
        raise ValueError(f"f(x) has shape {out.shape} but dy has shape {dy.shape}: "
                         "they must match")
    xw = x.copy()                                   # C-contiguous working copy
    flat = xw.reshape(-1)                           # a view of xw
    grad = np.empty(x.size)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + h
        up = float(np.sum(f(xw) * dy))
        flat[k] = old - h
        down = float(np.sum(f(xw) * dy))
        flat[k] = old
        grad[k] = (up - down) / (2 * h)
    return grad.reshape(x.shape)


def upstream(shape, seed=0):
    """A random upstream gradient ``N(0, 1)`` of ``shape`` in float64 (seeded)."""
    return np.random.default_rng(seed).standard_normal(shape)


@dataclass
class Comparison:
    """Result of :func:`compare`; ``str()`` gives one readable line."""

    name: str
    ok: bool
    max_abs: float
    max_rel: float
    worst: tuple
    ours: float
    theirs: float

    def __str__(self):
        verdict = "ok  " if self.ok else "FAIL"
        return (f"{self.name:<14s} {verdict} max|diff| {self.max_abs:.2e}  "
                f"max rel {self.max_rel:.2e}  at {self.worst}: "
                f"ours {self.ours:+.6e} theirs {self.theirs:+.6e}")


def compare(name, ours, theirs, rtol=1e-6, atol=1e-9):
    """Compare two arrays like ``np.allclose`` and report the worst entry.

    Parameters
    ----------
    name : str
        Label for the printed line (e.g. ``'dx'``).
    ours, theirs : array_like of the same shape
    rtol, atol : float
        ``ok`` iff ``|ours - theirs| <= atol + rtol * |theirs|`` everywhere.

    Returns
    -------
    Comparison
        ``ok``, the largest absolute difference, the largest relative
        difference ``|ours - theirs| / max(|theirs|, atol)``, and where it occurs.
    """
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(theirs, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"{name}: ours has shape {a.shape} but theirs has shape {b.shape}")
    if a.size == 0:
        raise ValueError(f"{name}: nothing to compare (empty arrays)")
    diff = np.abs(a - b)
    if not np.all(np.isfinite(diff)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(diff))[0])
        return Comparison(name, False, float("inf"), float("inf"), bad,
                          float(a[bad]), float(b[bad]))
    rel = diff / np.maximum(np.abs(b), atol)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), a.shape))
    ok = bool(np.all(diff <= atol + rtol * np.abs(b)))
    return Comparison(name, ok, float(diff.max()), float(rel.max()), worst,
                      float(a[worst]), float(b[worst]))


__all__ = ["numerical_grad", "upstream", "compare", "Comparison"]
