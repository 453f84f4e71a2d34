"""bnbook.experiments.bn_noise and bn_noise_theory on tiny settings."""
import numpy as np
import pytest
import sympy as sp

from bnbook.data import Dataset
from bnbook.experiments import bn_noise as bnn
from bnbook.experiments import bn_noise_theory as th
from bnbook.experiments.ghost import GhostBatchNorm
from bnbook.layers import BatchNorm


def _tiny_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 784)).astype(np.float32)
    y = rng.integers(0, 10, n)
    return Dataset(x[:48], y[:48], x[48:], y[48:])


def test_population_bn_equals_batch_bn_on_the_whole_set():
    x = np.random.default_rng(1).normal(2.0, 3.0, (40, 6))
    pop, bn = bnn.PopulationBatchNorm(6, dtype=np.float64), BatchNorm(6, dtype=np.float64)
    pop.refresh = True
    y_pop = pop.forward(x)
    pop.refresh = False
    np.testing.assert_allclose(y_pop, bn.forward(x), atol=1e-12)
    np.testing.assert_allclose(pop.forward(x), y_pop, atol=1e-12)   # now held fixed


def test_population_bn_backward_treats_statistics_as_constants():
    rng = np.random.default_rng(2)
    x, dy = rng.normal(size=(10, 3)), rng.normal(size=(10, 3))
    pop = bnn.PopulationBatchNorm(3, dtype=np.float64)
    pop.refresh = True
    pop.forward(x)
    pop.refresh = False
    pop.gamma.data[...] = [0.5, 2.0, -1.0]
    pop.forward(x)
    dx = pop.backward(dy)
    h = 1e-6                  # finite differences with the statistics frozen
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        num[idx] = ((pop.forward(xp) - pop.forward(xm)) * dy).sum() / (2 * h)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8)


def test_population_bn_needs_statistics():
    with pytest.raises(RuntimeError, match="refresh_population"):
        bnn.PopulationBatchNorm(3).forward(np.ones((4, 3), np.float32))


@pytest.mark.parametrize("g", [2, 4, 8, 32])
def test_vectorized_ghost_bn_matches_ghost_module(g):
    rng = np.random.default_rng(g)
    x, dy = rng.normal(1.0, 2.0, (32, 5)), rng.normal(size=(32, 5))
    a, b = GhostBatchNorm(5, dtype=np.float64), bnn.GhostBN(5, dtype=np.float64)
    a.size = b.size = g
    for _ in range(2):
        np.testing.assert_allclose(b.forward(x), a.forward(x), atol=1e-12)
        np.testing.assert_allclose(b.backward(dy), a.backward(dy), atol=1e-12)
    np.testing.assert_allclose(b.gamma.grad, a.gamma.grad, atol=1e-12)
    np.testing.assert_allclose(b.running_var, a.running_var, atol=1e-12)
    np.testing.assert_allclose(b.running_mean, a.running_mean, atol=1e-12)
    assert int(b.num_batches_tracked) == int(a.num_batches_tracked)


def test_ghost_size_must_divide_the_batch():
    with pytest.raises(ValueError, match="divides the SGD batch 128"):
        bnn.run("bn", _tiny_data(), 0.1, 1, batch_size=128, ghost=48)
    with pytest.raises(ValueError, match="ghost size"):
        bnn.check_ghost(1, 16)
    layer = bnn.GhostBN(4)
    layer.size = 3
    with pytest.raises(ValueError, match="multiple of the ghost size 3"):
        layer.forward(np.ones((8, 4), np.float32))


def test_bad_kind_and_dropout_rate():
    with pytest.raises(ValueError, match="unknown kind"):
        bnn.build("ln")
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        bnn.Dropout(1.0)


def test_dropout_mask_mean_and_eval_identity():
    drop = bnn.Dropout(0.25, rng=0)
    x = np.ones((2000, 50))
    y = drop.forward(x)
    assert abs((y == 0).mean() - 0.25) < 0.01 and abs(y.mean() - 1) < 0.02
    np.testing.assert_array_equal(drop.backward(x), y)
    drop.eval()
    assert drop.forward(x) is x


def test_drop_last_puts_one_dropout_before_the_last_linear():
    every = bnn.build("bn", dropout=0.3, seed=0).layers
    last = bnn.build("bn", dropout=0.3, seed=0, drop_last=True).layers
    assert sum(isinstance(m, bnn.Dropout) for m in every) == 2
    assert [type(m).__name__ for m in last[-2:]] == ["Dropout", "Linear"]
    assert sum(isinstance(m, bnn.Dropout) for m in last) == 1


def test_run_and_sweep_tiny():
    data = _tiny_data()
    res = bnn.sweep([dict(kind="pop", lr=0.1), dict(kind="bn", ghost=4, dropout=0.2)],
                    [0, 1], data, lr=0.1, steps=3, batch_size=16)
    assert res["test_acc"].shape == (2, 2)
    np.testing.assert_allclose(res["gap_acc"], res["train_acc"] - res["test_acc"])
    same = bnn.sweep([dict(kind="bn")], [0], data, lr=0.1, steps=3, batch_size=16)
    again = bnn.sweep([dict(kind="bn", ghost=16)], [0], data, lr=0.1, steps=3,
                      batch_size=16)
    assert same["test_loss"][0, 0] == again["test_loss"][0, 0]   # ghost = batch: BN
    one = bnn.run("bn", data, 1e-9, 3, batch_size=16)     # barely learns
    assert one["step_loss"] > 0 and abs(one["step_loss"] - np.log(10)) < 1.5


def test_bn_and_pop_start_as_the_same_function():
    x = _tiny_data().x_train
    bn, pop = bnn.build("bn", seed=3), bnn.build("pop", seed=3)
    bnn.refresh_population(pop, x)
    np.testing.assert_allclose(pop.forward(x), bn.forward(x), rtol=1e-4, atol=1e-5)


def test_expect_gives_the_biased_variance_mean():
    xs = sp.symbols("x1:5")
    s2 = sp.Symbol("s2", positive=True)
    mean = sum(xs) / 4
    var_b = sum((x - mean) ** 2 for x in xs) / 4
    assert sp.simplify(th.expect(var_b, xs, {1: 0, 2: s2}) - sp.Rational(3, 4) * s2) == 0
    with pytest.raises(ValueError, match="moment"):
        th.expect(var_b, xs, {1: 0})


def test_batch_variance_variance_against_sampling():
    rng = np.random.default_rng(0)
    for law, (_, kurt) in th.LAWS.items():
        m = 4
        _, var_b = th.mc_stats(m, 200_000, law, rng)
        exact = (m - 1) ** 2 / m ** 3 * (kurt - (m - 3) / (m - 1))
        assert abs(var_b.var() - exact) < 4 * th.var_se(var_b)


def test_mc_xhat_and_noise_inputs():
    rng = np.random.default_rng(0)
    xh = th.mc_xhat(0.5, 8, 1000, "gauss", rng)
    assert xh.shape == (1000,) and np.all(np.abs(xh) <= np.sqrt(7))
    with pytest.raises(ValueError, match="unknown law"):
        th.draw("cauchy", 3, rng)
    with pytest.raises(ValueError, match="m >= 2"):
        th.mc_stats(1, 10, "gauss", rng)
    h = rng.normal(size=(50, 3))
    with pytest.raises(ValueError, match=r"ghost size must lie in \[2, 50\]"):
        th.xhat_noise(h, 1, rng)
    small, large = th.xhat_noise(h, 4, rng, 5, 200), th.xhat_noise(h, 32, rng, 5, 200)
    assert small > 2 * large                   # noise falls with the ghost size
