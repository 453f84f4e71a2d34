"""Tests for bnbook.symbolic: the SymPy helpers of the derivation chapters."""
import numpy as np
import pytest
import sympy as sp

from bnbook import symbolic


def _subs(expr, xs, values):
    return float(expr.subs(dict(zip(xs, values))))


@pytest.mark.parametrize("m", [1, 2, 5])
def test_batch_names_and_realness(m):
    xs = symbolic.batch(m, "z")
    assert [str(x) for x in xs] == [f"z_{i}" for i in range(1, m + 1)]
    assert all(x.is_real for x in xs)


@pytest.mark.parametrize("m", [2, 3, 7])
def test_mean_and_variance_match_numpy(m):
    rng = np.random.default_rng(m)
    values = rng.normal(3.0, 2.0, size=m)
    xs = symbolic.batch(m)
    np.testing.assert_allclose(_subs(symbolic.mean(xs), xs, values), values.mean(), rtol=1e-12)
    np.testing.assert_allclose(_subs(symbolic.variance(xs), xs, values), values.var(), rtol=1e-12)
    np.testing.assert_allclose(_subs(symbolic.variance(xs, ddof=1), xs, values),
                               values.var(ddof=1), rtol=1e-12)


@pytest.mark.parametrize("m", [2, 3, 4, 6])
def test_expect_gives_the_unbiasedness_factor(m):
    mu, s2 = sp.symbols("mu s2", positive=True)
    es = symbolic.batch(m, "e")
    xs = [mu + e for e in es]
    assert sp.simplify(symbolic.expect(symbolic.mean(xs), es, s2) - mu) == 0
    assert sp.simplify(symbolic.expect(symbolic.variance(xs), es, s2) - (m - 1) * s2 / m) == 0
    assert sp.simplify(symbolic.expect(symbolic.variance(xs, ddof=1), es, s2) - s2) == 0


def test_expect_cross_terms_vanish():
    e1, e2 = symbolic.batch(2, "e")
    s2 = sp.Symbol("s2", positive=True)
    assert symbolic.expect(3 * e1 * e2 + 2 * e1**2 + 5 * e2 + 7, [e1, e2], s2) == 2 * s2 + 7


def test_latex_math_builds_mathjax_latex():
    x = sp.Symbol("x")
    assert symbolic.latex_math(r"\mu", x**2).data == r"\mu = x^{2}"
    assert symbolic.latex_math(sp.Rational(1, 4)).data == r"\frac{1}{4}"


def test_show_displays_once_and_returns_none(capsys):
    assert symbolic.show(r"\mu", sp.Symbol("x")) is None
    assert "Math" in capsys.readouterr().out   # display() outside IPython prints the repr


@pytest.mark.parametrize("m, err", [(0, ValueError), (-3, ValueError), (2.0, TypeError),
                                    ("4", TypeError), (True, TypeError)])
def test_batch_rejects_bad_size(m, err):
    with pytest.raises(err, match="batch size m"):
        symbolic.batch(m)


def test_batch_rejects_bad_name():
    with pytest.raises(TypeError, match="name must be a non-empty str"):
        symbolic.batch(3, "")


def test_mean_rejects_empty_and_non_lists():
    with pytest.raises(ValueError, match="non-empty batch"):
        symbolic.mean([])
    with pytest.raises(TypeError, match="list of SymPy expressions"):
        symbolic.mean("x")


def test_variance_rejects_bad_ddof_and_short_batches():
    xs = symbolic.batch(3)
    with pytest.raises(ValueError, match="ddof must be 0"):
        symbolic.variance(xs, ddof=2)
    with pytest.raises(ValueError, match="needs m >= 2"):
        symbolic.variance(symbolic.batch(1), ddof=1)


def test_expect_rejects_higher_moments_and_non_symbols():
    e1, e2 = symbolic.batch(2, "e")
    with pytest.raises(ValueError, match="at most two noise factors"):
        symbolic.expect(e1**2 * e2, [e1, e2], 1)
    with pytest.raises(TypeError, match="list of SymPy Symbols"):
        symbolic.expect(e1, [e1 + 1], 1)
