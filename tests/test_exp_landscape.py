"""Tests of bnbook.experiments.landscape (tiny settings)."""
import numpy as np
import pytest

from bnbook.experiments import landscape as ls
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
              data=tiny_data, eval_every=15)
    a = ls.landscape_run("bn", **kw)
    b = ls.landscape_run("bn", **kw)
    assert a["check_steps"].tolist() == [0, 10, 20]
    for k in ("loss", "grad_dist", "beta"):
        assert a[k].shape == (3, 3)
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert a["grad_norm"].shape == (3,) and np.all(a["grad_norm"] > 0)


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
