"""Tests of bnbook.experiments.landscape (tiny settings)."""
import numpy as np
import pytest

from bnbook.experiments import landscape as ls
from bnbook.experiments import landscape_theory as lt
from bnbook.experiments.common import flat_mnist, loss_and_grads
from bnbook.experiments.covariate_shift import make_mlp


@pytest.fixture(scope="module")
def tiny_data():
    x_train, y_train, x_test, y_test = flat_mnist()
    return x_train[:300], y_train[:300], x_test[:100], y_test[:100]


def test_probe_matches_a_direct_step_and_leaves_model_unchanged(tiny_data):
    x, y = tiny_data[0][:40], tiny_data[1][:40]
    model = make_mlp("bn", sizes=(784, 12, 10), seed=0)
    before = model.state_dict()
    r = ls.probe_along_gradient(model, x, y, [0.5, 2.0])
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    # redo the eta = 2 point by hand on a copy of the weights
    loss0, _ = loss_and_grads(model, x, y)
    g0 = [p.grad.copy() for p in model.parameters()]
    for p, g in zip(model.parameters(), g0):
        p.data -= 2.0 * g
    loss2, _ = loss_and_grads(model, x, y)
    d = np.sqrt(sum(((p.grad.astype(np.float64) - g) ** 2).sum()
                    for p, g in zip(model.parameters(), g0)))
    gn = np.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in g0))
    assert r["loss0"] == pytest.approx(loss0, rel=1e-6)
    assert r["loss"][1] == pytest.approx(loss2, rel=1e-5)
    assert r["grad_dist"][1] == pytest.approx(d, rel=1e-4)
    assert r["beta"][1] == pytest.approx(d / (2.0 * gn), rel=1e-4)


def test_small_steps_are_predictive(tiny_data):
    # for a smooth loss, ||grad(w - eta g) - grad(w)|| -> 0 as eta -> 0
    x, y = tiny_data[0][:40], tiny_data[1][:40]
    model = make_mlp("plain", sizes=(784, 12, 10), seed=0)
    r = ls.probe_along_gradient(model, x, y, [1e-4, 1e-2, 1.0])
    assert r["grad_dist"][0] < r["grad_dist"][1] < r["grad_dist"][2]
    assert r["loss"][1] < r["loss0"]


def test_landscape_run_shapes_and_determinism(tiny_data):
    kw = dict(steps=30, lr=0.5, step_sizes=[0.25, 0.5, 1.0], every=10, batch_size=20,
              data=tiny_data, eval_every=15, n_batches=3)
    a = ls.landscape_run("bn", **kw)
    b = ls.landscape_run("bn", **kw)
    assert a["check_steps"].tolist() == [0, 10, 20]
    for k in ("loss", "grad_dist", "beta"):
        assert a[k].shape == (3, 3)
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert a["grad_norm"].shape == (3,) and np.all(a["grad_norm"] > 0)
    assert a["step_loss"].shape == (30,)
    one = ls.landscape_run("bn", **dict(kw, n_batches=1))
    assert not np.allclose(one["loss"], a["loss"])     # the extra batches count
    with pytest.raises(ValueError, match="n_batches"):
        ls.landscape_run("bn", **dict(kw, n_batches=0))


def test_probe_batches_is_the_mean_of_single_probes(tiny_data):
    x, y = tiny_data[0], tiny_data[1]
    model = make_mlp("bn", sizes=(784, 12, 10), seed=1)
    batches = [(x[:30], y[:30]), (x[30:60], y[30:60])]
    r = ls.probe_batches(model, batches, [0.5, 1.0])
    one = [ls.probe_along_gradient(model, xb, yb, [0.5, 1.0]) for xb, yb in batches]
    for k in ("loss", "grad_dist", "beta"):
        np.testing.assert_allclose(r[k], (one[0][k] + one[1][k]) / 2, rtol=1e-12)
    assert not np.allclose(one[0]["loss"], one[1]["loss"])   # two batches differ
    with pytest.raises(ValueError, match="at least one"):
        ls.probe_batches(model, [], [0.5])


def test_largest_stable_is_inside_a_grid_that_brackets_it():
    lrs = [0.1, 0.3, 1.0, 3.0]
    loss = np.array([[0.5, 0.6], [0.3, 0.2], [0.2, 1.5], [np.inf, 2.3]])
    lr, stable = ls.largest_stable(lrs, loss, threshold=1.0)
    assert lr == 0.3 and stable.tolist() == [True, True, False, False]
    assert min(lrs) < lr < max(lrs)
    with pytest.raises(ValueError, match="increasing"):
        ls.largest_stable([1.0, 0.3], loss[:2], 1.0)
    with pytest.raises(ValueError, match="no rate"):
        ls.largest_stable(lrs, loss + 10, 1.0)


def test_stability_grid_flags_a_diverging_rate(tiny_data):
    grid = ls.stability_grid(lambda s: make_mlp("plain", sizes=(784, 12, 10), seed=s),
                             tiny_data, [0.1, 1e6], seeds=(0, 1), steps=20, tail=5)
    assert grid.shape == (2, 2)
    assert np.all(grid[0] < 2.5) and np.all(grid[1] > 2.5)
    with pytest.raises(ValueError, match="tail"):
        ls.stability_grid(make_mlp, tiny_data, [0.1], (0,), steps=5, tail=6)


def test_compare_checkpoints_counts_against_the_spread():
    a = np.array([[1.0, 1.0, 5.0], [2.0, 1.5, 6.0]])      # (seeds, checkpoints)
    b = np.array([[3.0, 1.2, 1.0], [4.0, 2.0, 2.0]])
    # mean smaller at checkpoints 0 and 1; beyond the spread only at 0;
    # above beyond the spread at 2
    assert ls.compare_checkpoints(a, b) == (2, 1, 1)
    with pytest.raises(ValueError, match="same shape|one shape"):
        ls.compare_checkpoints(a, b[:, :2])


def test_bn_gradient_bound_holds_with_1_over_m_and_is_tight_without_eps():
    rng = np.random.default_rng(0)
    for m in (3, 5, 64):     # m = 2 is degenerate: both sides vanish
        for _ in range(20):
            y = rng.standard_normal(m) * rng.uniform(0.1, 10) + rng.normal(0, 5)
            g = rng.standard_normal(m)
            gamma = rng.uniform(0.1, 3)
            lhs, rhs, _ = ls.bn_gradient_bound(y, g, gamma, eps=1e-5)
            assert lhs <= rhs * (1 + 1e-12)
            lhs0, rhs0, rhs_sqrt = ls.bn_gradient_bound(y, g, gamma, eps=0.0)
            assert lhs0 == pytest.approx(rhs0, rel=1e-9, abs=0)     # an identity when eps = 0
            assert lhs0 > rhs_sqrt                           # the 1/sqrt(m) reading fails


def test_theorem_42_is_an_identity_without_eps():
    rng = np.random.default_rng(1)
    for m in (3, 8, 40):
        y = rng.normal(1.0, 2.0, m)
        a = rng.standard_normal((m, m))
        loss = lt.quadratic_tanh_loss((a + a.T) / 2, rng.standard_normal(m))
        lhs, rhs, first, second = lt.bn_hessian_along_gradient(y, 1.7, loss)
        assert first + second == pytest.approx(rhs)
        assert abs(lhs - rhs) < 1e-6 * (abs(first) + abs(second))
        assert abs(second) > 1e-3 * abs(first)        # the second term matters


def test_quadratic_tanh_loss_derivatives_match_differences():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((4, 4))
    loss = lt.quadratic_tanh_loss((a + a.T) / 2, rng.standard_normal(4))
    z, d, h = rng.standard_normal(4), rng.standard_normal(4), 1e-5
    _, g, H = loss(z)
    assert (loss(z + h * d)[0] - loss(z - h * d)[0]) / (2 * h) == pytest.approx(g @ d)
    np.testing.assert_allclose((loss(z + h * d)[1] - loss(z - h * d)[1]) / (2 * h),
                               H @ d, rtol=1e-6)


def test_lemma_45_ray_point_is_a_bn_optimum_and_closer():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 3)) + rng.normal(0, 2, 3)
    t = x @ rng.standard_normal(3) + 0.2 * rng.standard_normal(40)
    r = lt.init_distance(x, t, rng.standard_normal(3))
    w0 = r["w_star"] * 0.3 + rng.standard_normal(3) * 0.1   # <w0, w*> > 0
    r = lt.init_distance(x, t, w0)
    assert r["k"] > 0
    assert r["ray"] == pytest.approx(r["rhs"], rel=1e-10)
    assert r["ray"] < r["plain"]
    loss, grad = lt.bn_unit_loss_and_grad(x, t, r["k"] * r["w_star"], r["gamma"], r["beta"])
    plain_opt = np.mean((x @ r["w_star"] - (x.mean(0) @ r["w_star"]) + t.mean() - t) ** 2)
    assert loss == pytest.approx(plain_opt, rel=1e-10)
    assert np.abs(grad).max() < 1e-10
    with pytest.raises(ValueError, match="w0"):
        lt.init_distance(x, t, np.ones(2))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="step_sizes"):
        ls.probe_along_gradient(make_mlp("plain", sizes=(4, 3, 2)), np.zeros((5, 4), np.float32),
                                np.zeros(5, np.int64), [0.1, -1.0])
    with pytest.raises(ValueError, match="same length"):
        ls.bn_gradient_bound(np.ones(4), np.ones(3), 1.0)


def test_landscape_run_accepts_another_model():
    # a LeNet-5 on image-shaped data: same records, same determinism
    from bnbook.data import load_mnist
    from bnbook.models import lenet
    d = load_mnist()
    images = d.x_train[:120], d.y_train[:120], d.x_test[:60], d.y_test[:60]
    kw = dict(steps=4, lr=0.1, step_sizes=[0.05, 0.1], every=2, batch_size=30, data=images,
              eval_every=4)
    a = ls.landscape_run("bn", model=lenet(bn=True, rng=0), **kw)
    b = ls.landscape_run("bn", model=lenet(bn=True, rng=0), **kw)
    assert a["loss"].shape == (2, 2) and a["check_steps"].tolist() == [0, 2]
    np.testing.assert_array_equal(a["beta"], b["beta"])
