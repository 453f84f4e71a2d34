"""Tests for bnbook.gradcheck: finite differences and readable comparisons."""
import numpy as np
import pytest

from bnbook.gradcheck import compare, numerical_grad, upstream


def _standardize(x):
    # (N, D) per-column standardization, the core of BN without gamma, beta
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    return (x - mu) / np.sqrt(var + 1e-5)


def test_numerical_grad_matches_a_known_gradient():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3))
    w = rng.standard_normal((3, 5))
    dy = upstream((4, 5), seed=2)
    f = lambda a: np.sin(a) @ w                      # noqa: E731
    exact = (dy @ w.T) * np.cos(x)
    got = numerical_grad(f, x, dy)
    assert compare("dx", got, exact, rtol=1e-7, atol=1e-9).ok


def test_numerical_grad_leaves_x_unchanged_and_accepts_views():
    rng = np.random.default_rng(3)
    base = rng.standard_normal((6, 4))
    x = base[::2]                                     # non-contiguous view
    before = x.copy()
    dy = upstream(x.shape, seed=4)
    got = numerical_grad(lambda a: a ** 3, x, dy)
    np.testing.assert_array_equal(x, before)
    assert compare("dx", got, 3 * x ** 2 * dy, rtol=1e-7, atol=1e-9).ok


def test_all_ones_upstream_hides_the_normalization_gradient():
    # Σ standardize(x) is 0 for every x, so dy = ones gives dx = 0 whatever the formula.
    x = np.random.default_rng(5).standard_normal((8, 3))
    ones = numerical_grad(_standardize, x, np.ones_like(x))
    assert np.max(np.abs(ones)) < 1e-8
    rand = numerical_grad(_standardize, x, upstream(x.shape, seed=6))
    assert np.max(np.abs(rand)) > 1e-2


@pytest.mark.parametrize("bad", [np.zeros((2, 2), np.float32), [[1.0, 2.0]]])
def test_numerical_grad_rejects_non_float64_x(bad):
    with pytest.raises(TypeError, match="x must be"):
        numerical_grad(lambda a: a, bad, np.zeros((2, 2)))


def test_numerical_grad_rejects_non_float64_dy():
    with pytest.raises(TypeError, match="dy must be float64"):
        numerical_grad(lambda a: a, np.zeros((2, 2)), np.zeros((2, 2), np.float32))


def test_numerical_grad_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"f\(x\) has shape \(2, 2\) but dy has shape \(3,\)"):
        numerical_grad(lambda a: a, np.zeros((2, 2)), np.zeros(3))


@pytest.mark.parametrize("h", [0.0, -1e-6, float("nan")])
def test_numerical_grad_rejects_bad_step(h):
    with pytest.raises(ValueError, match="h must be positive"):
        numerical_grad(lambda a: a, np.zeros(2), np.zeros(2), h=h)


def test_upstream_is_seeded_random_float64():
    a, b, c = upstream((5, 3), seed=7), upstream((5, 3), seed=7), upstream((5, 3), seed=8)
    assert a.dtype == np.float64 and a.shape == (5, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.unique(a).size == a.size                # never constant


def test_compare_reports_the_worst_entry():
    theirs = np.arange(12.0).reshape(3, 4)
    ours = theirs.copy()
    ours[2, 1] += 1e-3
    res = compare("dx", ours, theirs, rtol=1e-6, atol=1e-9)
    assert not res.ok
    assert res.worst == (2, 1)
    assert res.max_abs == pytest.approx(1e-3, rel=1e-6)
    assert res.ours == pytest.approx(9.001) and res.theirs == 9.0
    line = str(res)
    assert "FAIL" in line and "dx" in line and "(2, 1)" in line
    assert compare("dx", theirs, theirs).ok
    assert "ok" in str(compare("dx", theirs, theirs))


def test_compare_flags_nan_and_inf():
    res = compare("dx", np.array([1.0, np.nan]), np.array([1.0, 2.0]))
    assert not res.ok and res.worst == (1,)
    assert not compare("dx", np.array([np.inf]), np.array([1.0])).ok


def test_compare_rejects_shape_mismatch_and_empty():
    with pytest.raises(ValueError, match=r"ours has shape \(2,\) but theirs has shape \(3,\)"):
        compare("dx", np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="nothing to compare"):
        compare("dx", np.zeros(0), np.zeros(0))
