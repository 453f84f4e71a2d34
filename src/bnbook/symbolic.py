"""Small SymPy helpers for the derivation chapters.

A *symbolic batch* is a list of real SymPy symbols ``x_1 ... x_m``, one per
sample of one feature. :func:`mean` and :func:`variance` build the batch
statistics of Ioffe & Szegedy (2015) on it; :func:`expect` takes exact
expectations over independent zero-mean noise (for the unbiasedness factor of
the variance); :func:`show` displays an equation as MathJax (never a PNG).
"""
import numbers

import sympy as sp


def batch(m, name="x"):
    """Real symbols ``name_1 ... name_m``: one feature over a batch of ``m`` samples."""
    if not isinstance(m, numbers.Integral) or isinstance(m, bool):
        raise TypeError(f"batch size m must be an int, got {type(m).__name__}")
    if m < 1:
        raise ValueError(f"batch size m must be >= 1, got {m}")
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    return list(sp.symbols(f"{name}_1:{m + 1}", real=True))


def _check_batch(xs):
    if isinstance(xs, (str, bytes)) or not hasattr(xs, "__len__"):
        raise TypeError(f"expected a list of SymPy expressions, got {type(xs).__name__}")
    if len(xs) == 0:
        raise ValueError("expected a non-empty batch, got an empty list")
    return [sp.sympify(x) for x in xs]


def mean(xs):
    r"""Batch mean :math:`\mu_B = \frac1m \sum_i x_i`."""
    xs = _check_batch(xs)
    return sp.Add(*xs) / len(xs)


def variance(xs, ddof=0):
    r"""Batch variance :math:`\frac{1}{m - \mathrm{ddof}} \sum_i (x_i - \mu_B)^2`.

    ``ddof=0`` is the biased variance :math:`\sigma_B^2` that training-mode BN
    normalizes with; ``ddof=1`` is the unbiased one the running variance stores.
    """
    xs = _check_batch(xs)
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 (biased, 1/m) or 1 (unbiased, 1/(m-1)), got {ddof!r}")
    if len(xs) <= ddof:
        raise ValueError(f"the unbiased variance needs m >= 2 samples, got m = {len(xs)}")
    mu = mean(xs)
    return sp.Add(*[(x - mu) ** 2 for x in xs]) / (len(xs) - ddof)


def expect(expr, noise, var):
    r"""Exact expectation of a polynomial in independent zero-mean noise variables.

    Each symbol in ``noise`` is taken as independent with :math:`E[e_i] = 0` and
    :math:`E[e_i^2] =` ``var``. Every monomial may hold at most two noise factors
    (enough for means and variances); higher moments raise ``ValueError``.
    """
    noise = list(noise)
    if not all(isinstance(e, sp.Symbol) for e in noise):
        raise TypeError("noise must be a list of SymPy Symbols")
    poly = sp.Poly(sp.expand(expr), *noise)
    total = sp.Integer(0)
    for powers, coeff in poly.terms():
        degree = sum(powers)
        if degree > 2:
            raise ValueError(f"expect handles monomials with at most two noise factors, "
                             f"got degree {degree}")
        if degree == 0:
            total += coeff
        elif degree == 2 and max(powers) == 2:  # E[e_i^2] = var; E[e_i e_j] = 0 for i != j
            total += coeff * var
    return sp.simplify(total)


def latex_math(lhs, rhs=None):
    """``lhs = rhs`` as an :class:`IPython.display.Math` object (MathJax, not a PNG).

    ``lhs`` and ``rhs`` may be LaTeX strings or SymPy objects.
    """
    from IPython.display import Math

    def tex(part):
        return part if isinstance(part, str) else sp.latex(part)

    return Math(tex(lhs) if rhs is None else f"{tex(lhs)} = {tex(rhs)}")


def show(lhs, rhs=None):
    """Display ``lhs = rhs`` as MathJax (see :func:`latex_math`); returns None.

    Returning None keeps a notebook from displaying the equation a second time
    when ``show`` is the last line of a cell.
    """
    from IPython.display import display

    display(latex_math(lhs, rhs))


__all__ = ["batch", "mean", "variance", "expect", "latex_math", "show"]
