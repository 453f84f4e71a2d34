"""Length-direction experiment (tiny settings): shapes, determinism, one property each."""
import math

import numpy as np
import pytest

from bnbook.batchnorm import forward
from bnbook.experiments import halfspace as hs
from bnbook.experiments import length_direction as ld


@pytest.fixture(scope="module")
def ols():
    return ld.least_squares(d=8, cond=100.0, seed=0)


def test_bn_of_linear_unit_is_the_reparametrization():
    x = hs.sample_inputs(64, 5, 10.0, seed=0) + 3.0          # uncentred on purpose
    w = np.random.default_rng(1).standard_normal(5)
    gamma = 1.7
    y, _ = forward((x @ w)[:, None], np.array([gamma]), np.array([0.0]), eps=0.0)
    xc = x - x.mean(axis=0)
    S = xc.T @ xc / len(x)                                     # biased, as BN's variance
    np.testing.assert_allclose(y[:, 0], xc @ (gamma * w / ld.s_norm(w, S)), rtol=1e-10)


def test_runs_deterministic_and_shaped(ols):
    w0 = ld.start_point(ols, np.ones(8))
    a, b = ld.gdnp(ols, w0, 20), ld.gdnp(ols, w0, 20)
    assert a.shape == (21,) and ld.gd(ols, w0, 20).shape == (21,)
    np.testing.assert_array_equal(a, b)


def test_gdnp_meets_the_linear_rate_bound(ols):
    w0 = ld.start_point(ols, np.random.default_rng(2).standard_normal(8))
    err = ld.gdnp(ols, w0, 200)
    lam = np.linalg.eigvalsh(ols.S)
    bound = (1 - lam[0] / lam[-1]) ** (2 * np.arange(201)) * err[0]
    assert np.all(err <= bound * (1 + 1e-9) + 1e-13)
    assert err[-1] < 1e-3 * err[0]


def test_gd_diverges_beyond_two_over_beta_and_sweep_shapes(ols):
    w0 = np.random.default_rng(3).standard_normal(8)
    sweep = ld.step_sweep(ols, w0, 100, [0.5, 1.0, 2.5])
    assert sweep["gd"].shape == sweep["gdnp"].shape == (3,)
    assert sweep["gd"][1] < 1e-2 and not sweep["gd"][2] < 1       # nan or growing
    assert sweep["gdnp"][1] < 1e-2


def test_bisection_finds_the_closed_form_length(ols):
    w = np.random.default_rng(4).standard_normal(8)
    u = ols.S @ ols.w_opt                                       # E[y x] of this problem
    assert ld.bisect_length(ols, w) == pytest.approx(u @ w / ld.s_norm(w, ols.S), rel=1e-9)


def test_logistic_alignment_gaussian_vs_skewed():
    w_true = 4 * np.ones(4) / 2
    cos = {}
    for dist in ("gaussian", "skewed"):
        x = hs.sample_inputs(4000, 4, 10.0, dist, seed=1)
        p = hs.logistic(x, w_true, seed=2)
        assert np.linalg.norm(p.grad(p.w_opt)) < 1e-10        # Newton converged
        cos[dist] = ld.cosine(p.w_opt, np.linalg.solve(p.S, p.u), p.S)
    assert 1 - cos["gaussian"] < 1 - cos["skewed"]


def test_rate_and_covariance():
    assert ld.rate(0.5 ** np.arange(10), 0, 10) == pytest.approx(0.5)
    lam = np.linalg.eigvalsh(ld.covariance(6, 1e3, seed=0))
    assert lam[-1] == pytest.approx(1.0) and lam[0] == pytest.approx(1e-3)


@pytest.mark.parametrize("call,match", [
    (lambda: ld.covariance(1, 10.0), "d must"),
    (lambda: ld.covariance(4, 0.5), "cond"),
    (lambda: hs.sample_inputs(10, 3, 10.0, dist="cauchy"), "dist"),
    (lambda: hs.logistic(np.ones((5, 3)), np.ones(2)), "w_true"),
    (lambda: ld.rate([1.0, -1.0], 0, 2), "positive"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.fixture(scope="module")
def sig():
    return hs.sigmoid_gaussian(d=4, cond=10.0, seed=0)


def test_sigmoid_gradient_matches_finite_differences(sig):
    gen = np.random.default_rng(0)
    for _ in range(3):
        w = 2 * gen.standard_normal(4)
        fd = [(sig.loss(w + 1e-6 * e) - sig.loss(w - 1e-6 * e)) / 2e-6 for e in np.eye(4)]
        np.testing.assert_allclose(sig.grad(w), fd, rtol=1e-6, atol=1e-10)


def test_sigmoid_expectations_match_a_large_sample(sig):
    gen = np.random.default_rng(1)
    z = gen.multivariate_normal(sig.u, sig.cov, size=400_000)   # z = -y x
    w = gen.standard_normal(4)
    sample = np.mean(1 / (1 + np.exp(-z @ w))) + 0.5 * sig.lam * w @ sig.S @ w
    assert sig.loss(w) == pytest.approx(sample, abs=3e-3)
    np.testing.assert_allclose(sig.S, z.T @ z / len(z), atol=0.05)


def test_sigmoid_loss_is_non_convex_and_its_minimizer_is_on_the_line(sig):
    wrong_side = 5 * sig.w_opt / -ld.s_norm(sig.w_opt, sig.S)     # u^T w~ > 0
    assert np.linalg.eigvalsh(hs.hessian(sig, wrong_side))[0] < 0
    assert np.linalg.eigvalsh(hs.hessian(sig, sig.w_opt))[0] > 0
    assert np.linalg.norm(sig.grad(sig.w_opt)) < 1e-12
    assert ld.cosine(sig.w_opt, -np.linalg.solve(sig.S, sig.u), sig.S) == pytest.approx(1)


def test_gdnp_step_decreases_loss_and_meets_the_rayleigh_bound(sig):
    w0 = np.random.default_rng(2).standard_normal(4)
    path = hs.gdnp_path(sig, w0, 40)
    assert np.all(np.diff(path["loss"]) < 0)                       # every step helps
    lam = np.linalg.eigvalsh(sig.S)
    bound = (1 - lam[0] / lam[-1]) ** (2 * np.arange(41)) * path["rho"][0]
    assert np.all(path["rho"] <= bound * (1 + 1e-9) + 1e-14)
    assert path["grad"][-1] < 1e-2 * path["grad"][0]          # linear: 40 steps
    assert path["evals"][1] == 31 and hs.gd_path(sig, w0, 3)["evals"][-1] == 3


def test_sigmoid_bad_input():
    with pytest.raises(ValueError, match="margin and lam"):
        hs.sigmoid_gaussian(lam=0.0)


def test_gdnp_bisect_once_matches_bisecting_every_step(sig):
    # the direction steps do not depend on the length: bisecting once at the
    # end gives the output of bisecting every step, at a fraction of the cost
    w0 = np.random.default_rng(2).standard_normal(4)
    path = hs.gdnp_path(sig, w0, 20, bisection_steps=30)
    once = hs.gdnp_bisect_once(sig, w0, 20, bisection_steps=30, every=10)
    np.testing.assert_allclose(once["grad"], path["grad"][::10], rtol=1e-6)
    assert once["evals"].tolist() == [30, 40, 50]
    assert path["evals"][-1] == 620


def test_gdnp_bisect_once_bad_input(sig):
    with pytest.raises(ValueError, match="every >= 1"):
        hs.gdnp_bisect_once(sig, np.ones(4), 10, every=0)
