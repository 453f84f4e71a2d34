"""Gradient explosion experiment (tiny settings): shapes, determinism, one property each."""
import math

import numpy as np
import pytest

from bnbook import layers
from bnbook.experiments import gradient_explosion as ge
from bnbook.gradcheck import compare, numerical_grad, upstream
from bnbook.models import Residual, residual_mlp

TINY = dict(depth=14, width=48, batch=32, seeds=(0, 1))


def test_profile_shapes_and_determinism():
    a = ge.profiles(**TINY)
    b = ge.profiles(**TINY)
    assert a["sq_norms"].shape == (2, TINY["depth"] + 1)
    assert a["growth"].shape == (2,)
    np.testing.assert_array_equal(a["sq_norms"], b["sq_norms"])


def test_bn_explodes_plain_and_residual_do_not():
    bn = ge.profiles(**TINY)["growth"].mean()
    plain = ge.profiles(norm=None, **TINY)["growth"].mean()
    res = ge.profiles(residual=True, **TINY)["growth"].mean()
    assert bn > 1.3, bn
    assert plain < 1.1 and res < bn - 0.2, (plain, res, bn)


def test_identity_bn_hidden_gradients_vanish_only_for_a_shared_output_gradient():
    # with g_b = c for every sample, sum_b y_b does not depend on the hidden weights
    # of a linear BN net, so their gradient is zero up to rounding; a per-sample g
    # gives gradients of order one
    kw = dict(depth=12, width=16, batch=8, seeds=(0, 1), activation="linear",
              dtype=np.float64)
    shared = ge.profiles(output_grad="shared", **kw)["sq_norms"][:, :-1]
    per_sample = ge.profiles(**kw)["sq_norms"][:, :-1]
    assert shared.max() < 1e-20, shared.max()
    assert per_sample.min() > 1e-2, per_sample.min()


def test_per_sample_is_the_default_and_identity_bn_does_not_grow():
    kw = dict(depth=30, width=64, batch=128, seeds=(0, 1, 2))
    default = ge.profiles(activation="linear", **kw)
    explicit = ge.profiles(activation="linear", output_grad="per-sample", **kw)
    np.testing.assert_array_equal(default["sq_norms"], explicit["sq_norms"])
    assert abs(default["growth"].mean() - 1) < 0.05, default["growth"]


def test_groupnorm_group_count_reaches_the_layers_and_small_groups_grow_more():
    net = ge.build(3, 16, norm="gn", groups=4)
    assert [m.num_groups for m in net.layers if isinstance(m, layers.GroupNorm)] == [4] * 3
    kw = dict(depth=20, width=32, batch=16, seeds=(0, 1, 2), norm="gn")
    small = ge.profiles(groups=8, **kw)["growth"]       # groups of 4 units
    large = ge.profiles(groups=1, **kw)["growth"]       # one group: LayerNorm
    assert small.min() > large.max(), (small, large)


def test_width_sweep_shapes():
    res = ge.width_sweep((16, 24), depth=12, batch=8, seeds=(0, 1, 2))
    assert res["growth"].shape == (2, 3)
    np.testing.assert_array_equal(res["width"], (16, 24))


def test_frozen_statistics_still_explode():
    # the finding the chapter reports: the growth comes from the forward scaling 1/sigma_B
    frozen = ge.profiles(frozen=True, **TINY)["growth"].mean()
    assert frozen > 1.3, frozen


def test_more_linear_activation_explodes_less_and_matches_theory_order():
    relu = ge.profiles(**TINY)["growth"].mean()
    leaky = ge.profiles(activation="leaky", slope=0.5, **TINY)["growth"].mean()
    assert leaky < relu
    assert ge.theory_growth("leaky", 0.5) < ge.theory_growth("tanh") < ge.theory_growth("relu")


def _gauss_expectation(f):
    """E[f(z)] for z ~ N(0, 1), by adaptive quadrature (independent of the closed forms)."""
    from scipy import integrate
    value, _ = integrate.quad(lambda z: f(z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi),
                              -np.inf, np.inf, limit=200)
    return value


@pytest.mark.parametrize("activation, phi, dphi", [
    ("relu", lambda z: max(z, 0.0), lambda z: float(z > 0)),
    ("leaky", lambda z: max(z, 0.2 * z), lambda z: 1.0 if z > 0 else 0.2),
    ("tanh", math.tanh, lambda z: 1 - math.tanh(z) ** 2),
    ("linear", lambda z: z, lambda z: 1.0),
])
def test_theory_growth_equals_the_gaussian_integrals(activation, phi, dphi):
    """E[phi'(z)^2] / Var phi(z) by numerical integration, not by the implementation's formula."""
    second = _gauss_expectation(lambda z: dphi(z) ** 2)
    var = _gauss_expectation(lambda z: phi(z) ** 2) - _gauss_expectation(phi) ** 2
    assert ge.theory_growth(activation, slope=0.2) == pytest.approx(second / var, rel=1e-7)


def test_theory_values():
    assert ge.theory_growth("relu") == pytest.approx(math.pi / (math.pi - 1), rel=1e-12)
    assert ge.theory_growth("linear") == pytest.approx(1.0, rel=1e-12)
    # tanh by quadrature: stable when the number of nodes changes
    assert ge.theory_growth("tanh", points=100) == pytest.approx(ge.theory_growth("tanh", points=200),
                                                                rel=1e-6)


def test_frozen_stats_backward_is_the_derivative_with_the_statistics_held_fixed():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 5)) * 3 + 1
    bn = layers.BatchNorm(5, dtype=np.float64)
    bn.gamma.data[...] = rng.uniform(0.5, 2, 5)
    bn.beta.data[...] = rng.standard_normal(5)
    frozen = ge.FrozenStats(bn)
    dy = upstream((16, 5), seed=1)
    # the function whose derivative "frozen statistics" means: BN with mu_B and
    # sigma_B^2 taken at x and then held constant, differentiated by finite differences
    mu, var = x.mean(axis=0), x.var(axis=0)

    def bn_with_fixed_statistics(z):
        return bn.gamma.data * (z - mu) / np.sqrt(var + bn.eps) + bn.beta.data
    np.testing.assert_allclose(frozen.forward(x), bn_with_fixed_statistics(x), rtol=1e-12)
    dx = frozen.backward(dy)
    expected = numerical_grad(bn_with_fixed_statistics, x, dy)
    cmp = compare("dx", dx, expected, rtol=1e-6, atol=1e-9)
    assert cmp.ok, str(cmp)
    # and it is not BN's true backward, which also flows through mu_B and sigma_B
    true_bn = layers.BatchNorm(5, dtype=np.float64)
    true_bn.gamma.data[...], true_bn.beta.data[...] = bn.gamma.data, bn.beta.data
    true_bn.forward(x)
    assert not np.allclose(dx, true_bn.backward(dy), rtol=1e-3)
    assert bn.beta.grad is not None and bn.gamma.grad is not None
    net = ge.build(6, 8, frozen=True)
    assert sum(isinstance(m, ge.FrozenStats) for m in net.layers) == 6


def test_residual_block_finite_differences():
    net = residual_mlp(4, 6, 2, 3, norm="bn", rng=0, dtype=np.float64)
    assert sum(isinstance(m, Residual) for m in net.layers) == 2
    x = np.random.default_rng(1).standard_normal((5, 4))
    dy = upstream((5, 3), seed=2)
    net.forward(x)
    dx = net.backward(dy)
    cmp = compare("dx", dx, numerical_grad(net.forward, x, dy), rtol=1e-5, atol=1e-8)
    assert cmp.ok, str(cmp)


def test_one_step_shrinks_dynamic_range():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 20))
    y = rng.integers(0, 10, 64)
    out = ge.one_step(x, y, depth=20, width=48, lr=0.1)
    assert out["before"].shape == out["after"].shape == (21,)
    assert ge.dynamic_range(out["after"]) < ge.dynamic_range(out["before"])


@pytest.mark.parametrize("call,err,match", [
    (lambda: ge.build(3, 8, activation="gelu"), ValueError, "activation"),
    (lambda: ge.build(3, 8, norm=None, frozen=True), ValueError, "frozen"),
    (lambda: ge.growth_factor(np.ones(6)), ValueError, "layers"),
    (lambda: ge.grad_profile(ge.build(3, 8), np.ones((4, 8), np.float32), np.ones(3)),
     ValueError, "g must have shape"),
    (lambda: ge.profiles(16, 8, 4, output_grad="mean"), ValueError, "output_grad"),
    (lambda: ge.build(3, 8, groups=2), ValueError, "groups"),
    (lambda: ge.build(3, 8, norm="gn", residual=True, groups=2), ValueError, "groups"),
    (lambda: ge.one_step(np.ones((4, 3, 2)), np.zeros(4, int), 3, 8), ValueError, "x must"),
    (lambda: ge.LeakyReLU(1.5), ValueError, "slope"),
    (lambda: ge.theory_growth("gelu"), ValueError, "activation"),
    (lambda: ge.FrozenStats(layers.BatchNorm(3)).forward(np.ones((2, 3, 1, 1))), ValueError,
     "FrozenStats"),
    (lambda: residual_mlp(4, 0, 2, 3), ValueError, "width"),
    (lambda: residual_mlp(4, 6, 2, 3, activation="gelu"), ValueError, "activation"),
])
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()
