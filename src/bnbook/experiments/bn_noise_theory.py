"""BN as noise, the theory side: moments of i.i.d. polynomials and Monte Carlo.

* :func:`expect`: the expectation of a polynomial in i.i.d. variables, term by
  term from their moments (SymPy), for a concrete number of variables;
* :func:`draw`: standardized samples (mean 0, variance 1) of a named law;
* :func:`mc_stats` and :func:`mc_xhat`: batch statistics and the normalized
  value of one fixed sample, computed by :mod:`bnbook.batchnorm` with one
  Monte Carlo replicate per channel;
* :func:`var_se`: the standard error of a sample variance;
* :func:`xhat_noise`: the measured variance of x_hat of fixed samples of a
  layer's pre-activations, over random ghost batches.
"""
import numpy as np
import sympy as sp

from .. import batchnorm

#: skewness and kurtosis (E z^3, E z^4) of the standardized laws of draw()
LAWS = {"gauss": (0.0, 3.0), "exp": (2.0, 9.0)}


def expect(expr, xs, moments):
    """E[expr] for independent, identically distributed ``xs``.

    ``expr`` is a polynomial in the SymPy symbols ``xs``; ``moments[k]`` is
    E[x^k] (``k >= 1``; E[x^0] = 1). Each monomial's expectation is the
    product of the moments of its exponents, by independence.
    """
    poly = sp.Poly(sp.expand(expr), *xs)
    total = 0
    for powers, coeff in poly.terms():
        term = coeff
        for k in powers:
            if k:
                if k not in moments:
                    raise ValueError(f"moment E[x^{k}] needed but not given")
                term *= moments[k]
        total += term
    return sp.expand(total)


def draw(law, shape, rng):
    """Samples of mean 0 and variance 1: ``"gauss"`` or ``"exp"`` (Exp(1) - 1)."""
    if law == "gauss":
        return rng.standard_normal(shape)
    if law == "exp":
        return rng.exponential(size=shape) - 1.0
    raise ValueError(f"unknown law {law!r}: expected one of {sorted(LAWS)}")


def mc_stats(m, n, law, rng):
    """``n`` batches of ``m`` standardized values: (mu_B, sigma2_B), each (n,).

    The batches are the channels of one (m, n) array, so
    :func:`bnbook.batchnorm.batch_stats` returns every batch's mean and
    biased variance at once.
    """
    if m < 2:
        raise ValueError(f"a batch needs m >= 2 values, got m = {m}")
    return batchnorm.batch_stats(draw(law, (m, n), rng))


def mc_xhat(z, m, n, law, rng):
    """x_hat of a fixed value ``z`` that is one of ``m`` batch values, the
    other m - 1 drawn afresh in each of ``n`` batches: an array (n,).

    Computed by :func:`bnbook.batchnorm.forward` (eps = 0 would be the
    formula's; the library's default 1e-5 is used, a relative change of
    5e-6 in x_hat at variance 1).
    """
    x = draw(law, (m, n), rng)
    x[0] = z
    y, _ = batchnorm.forward(x, np.ones(n), np.zeros(n))
    return y[0]


def var_se(v):
    """Standard error of the sample variance of ``v`` (large-sample formula
    sqrt((m4 - s^4) / n), m4 the sample fourth central moment)."""
    d = v - v.mean()
    s2, m4 = (d ** 2).mean(), (d ** 4).mean()
    return float(np.sqrt((m4 - s2 ** 2) / len(v)))


def xhat_noise(h, g, rng, fixed=20, draws=400):
    """Mean variance of x_hat of a fixed sample over random ghost batches.

    ``h`` (N, C): a layer's pre-activations on the training set. For each of
    ``fixed`` random rows, ``draws`` ghost batches are formed from it and
    ``g - 1`` other random rows, normalized by :func:`bnbook.batchnorm.forward`;
    the variance of the fixed row's x_hat over the draws is averaged over rows
    and channels. This is the noise BN adds at ghost size ``g``.
    """
    if g < 2 or g > len(h):
        raise ValueError(f"ghost size must lie in [2, {len(h)}], got {g}")
    out = []
    for i in rng.choice(len(h), fixed, replace=False):
        others = np.delete(np.arange(len(h)), i)
        idx = np.stack([rng.choice(others, g - 1, replace=False)
                        for _ in range(draws)])             # (draws, g - 1)
        batch = np.concatenate([np.broadcast_to(h[i], (draws, 1, h.shape[1])),
                                h[idx]], axis=1)             # (draws, g, C)
        x = batch.transpose(1, 0, 2).reshape(g, -1)          # (g, draws * C)
        y, _ = batchnorm.forward(x, np.ones(x.shape[1]), np.zeros(x.shape[1]))
        out.append(y[0].reshape(draws, -1).var(axis=0).mean())
    return float(np.mean(out))
