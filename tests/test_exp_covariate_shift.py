"""Tests of bnbook.experiments.covariate_shift and the NoiseInjection layer (tiny settings)."""
import numpy as np
import pytest

from bnbook import layers
from bnbook.experiments import covariate_shift as cs
from bnbook.experiments.common import flat_mnist, preserved, loss_and_grads
from bnbook.train import minibatches


@pytest.fixture(scope="module")
def tiny_data():
    """400 training and 200 test digits of the real MNIST subset."""
    x_train, y_train, x_test, y_test = flat_mnist()
    return x_train[:400], y_train[:400], x_test[:200], y_test[:200]


def run(variant, data, **kw):
    args = dict(steps=40, lr=0.5, batch_size=20, data=data, record_every=10, eval_every=20,
                probe_size=100, ics_every=20, sizes=(784, 16, 16, 16, 10))
    args.update(kw)
    return cs.train_mlp(variant, **args)


def test_train_mlp_shapes_and_determinism(tiny_data):
    a = run("noisy", tiny_data)
    b = run("noisy", tiny_data)
    assert a["record_steps"].tolist() == [0, 10, 20, 30]
    assert a["percentiles"].shape == (4, 3, 16)
    assert a["unit_values"].shape == (4, 100)
    assert a["eval_steps"].tolist() == [0, 20, 40]
    assert a["ics_l2"].shape == a["ics_cos"].shape == (2, 3)
    for key in ("test_acc", "train_loss", "percentiles", "ics_l2", "ics_cos"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not np.array_equal(run("noisy", tiny_data, seed=1)["percentiles"], a["percentiles"])


def test_bn_percentiles_stay_in_a_band(tiny_data):
    # BN before the sigmoid: on the probe, a unit's input has mean beta and standard
    # deviation at most gamma. Cantelli's inequality puts the 15th and 85th percentiles
    # within beta -+ 2.38 gamma (1 / (1 + 2.38^2) = 0.15), and the median lies within one
    # standard deviation of the mean. After 60 steps at lr 0.2, gamma and beta are still
    # near 1 and 0 (checked below), so the band is about [-2.4, 2.4].
    bn = run("bn", tiny_data, steps=60, lr=0.2)
    model = cs.make_mlp("bn", sizes=(784, 16, 16, 16, 10))
    p = bn["percentiles"]                         # (R, 3, D)
    assert np.all(p[:, 0, :] > -2.6) and np.all(p[:, 2, :] < 2.6), (p.min(), p.max())
    assert np.all(np.abs(p[:, 1, :]) < 1.1), np.abs(p[:, 1, :]).max()
    assert np.all(p[:, 2, :] - p[:, 0, :] > 0.5)             # not collapsed
    assert isinstance(model.layers[-3], layers.BatchNorm)
    # shift_summary: the range of each unit's median over the records
    np.testing.assert_allclose(cs.shift_summary(p), p[:, 1].max(0) - p[:, 1].min(0))


def test_gradient_shift_is_zero_for_zero_lr_and_leaves_model_unchanged(tiny_data):
    x, y = tiny_data[0][:30], tiny_data[1][:30]
    model = cs.make_mlp("bn", sizes=(784, 8, 8, 10), seed=3)
    before = model.state_dict()
    l2, cos = cs.gradient_shift(model, lambda m: loss_and_grads(m, x, y), lr=0.0)
    np.testing.assert_allclose(l2, 0.0, atol=1e-12)
    np.testing.assert_allclose(cos, 1.0, rtol=1e-6)
    l2, cos = cs.gradient_shift(model, lambda m: loss_and_grads(m, x, y), lr=1.0)
    assert np.all(l2 > 0) and np.all(cos < 1)
    after = model.state_dict()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k], err_msg=k)


def test_gradient_shift_matches_a_direct_computation():
    # two-layer linear net, squared loss: G'_2 after updating W_1 alone, by hand
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 3))
    t = rng.standard_normal((7, 2))
    model = layers.Sequential(layers.Linear(3, 4, bias=False, rng=1, dtype=np.float64),
                              layers.Linear(4, 2, bias=False, rng=2, dtype=np.float64))
    w1, w2 = model[0].weight.data.copy(), model[1].weight.data.copy()

    def grad_fn(m):
        m.backward(m.forward(x) - t)

    l2, cos = cs.gradient_shift(model, grad_fn, lr=0.1)
    r = x @ w1.T @ w2.T - t
    g2, g1 = r.T @ (x @ w1.T), (r @ w2).T @ x
    w1n = w1 - 0.1 * g1
    g2n = (x @ w1n.T @ w2.T - t).T @ (x @ w1n.T)
    np.testing.assert_allclose(l2, [np.linalg.norm(g2 - g2n)], rtol=1e-10)
    np.testing.assert_allclose(cos, [np.sum(g2 * g2n) / np.linalg.norm(g2) / np.linalg.norm(g2n)],
                               rtol=1e-10)


def test_deep_linear_shapes_determinism_and_descent():
    a = cs.train_deep_linear(False, steps=20, lr=1e-3, depth=6, width=4, n_samples=50,
                             ics_every=5)
    b = cs.train_deep_linear(False, steps=20, lr=1e-3, depth=6, width=4, n_samples=50,
                             ics_every=5)
    assert a["loss"].shape == (21,) and a["ics_l2"].shape == (4, 5)
    assert a["which"].tolist() == [2, 3, 4, 5, 6]
    np.testing.assert_array_equal(a["ics_cos"], b["ics_cos"])
    assert a["loss"][-1] < a["loss"][0]
    c = cs.train_deep_linear(True, steps=20, lr=1e-3, depth=6, width=4, n_samples=50,
                             ics_every=5, which=[6])
    assert c["ics_l2"].shape == (4, 1) and c["loss"][-1] < c["loss"][0]


def test_noise_injection_statistics_backward_and_modes():
    layer = layers.NoiseInjection(400, rng=0)
    x = np.zeros((5, 400), dtype=np.float32)
    shifts, scales = [], []
    for _ in range(200):
        layer.forward(x + 1)
        shifts.append(layer.shift)
        scales.append(layer.scale)
    shifts, scales = np.array(shifts), np.array(scales)        # (steps, units)
    mu, sigma = shifts.mean(1), scales.mean(1)
    assert np.all(np.abs(mu) < 0.5 + 0.02) and mu.std() > 0.2   # U(-0.5, 0.5) per step
    assert np.all((sigma > 1 - 0.02) & (sigma < 1.25 + 0.02))  # U(1, 1.25) per step
    np.testing.assert_allclose(np.std(shifts - mu[:, None]), 0.1, rtol=0.05)
    np.testing.assert_allclose(np.std(scales - sigma[:, None]), 0.05, rtol=0.05)
    dy = np.random.default_rng(1).standard_normal((5, 400)).astype(np.float32)
    np.testing.assert_allclose(layer.backward(dy), dy * layer.scale, rtol=1e-6)
    y4 = layer.forward(np.ones((2, 400, 3, 3), dtype=np.float32))
    assert y4.shape == (2, 400, 3, 3)
    layer.eval()
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(dy), dy)
    layer.train()
    layer.hold = True
    first = layer.forward(x)
    np.testing.assert_array_equal(layer.forward(x), first)


def test_preserved_restores_noise_bn_state(tiny_data):
    model = cs.make_mlp("noisy", sizes=(784, 8, 10), seed=0)
    x, y = tiny_data[0][:30], tiny_data[1][:30]
    loss_and_grads(model, x, y)
    before = model.state_dict()
    with preserved(model):
        for p in model.parameters():
            p.data += 1
        model.forward(x)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_features=0), "num_features"),
    (dict(num_features=4, scale_range=(0.0, 1.0)), "scale_range"),
    (dict(num_features=4, mean_range=-1), "mean_range"),
])
def test_noise_injection_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.NoiseInjection(**kwargs)


def test_noise_injection_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        layers.NoiseInjection(4).forward(np.zeros((3, 5), dtype=np.float32))


def test_bad_arguments_raise(tiny_data):
    with pytest.raises(ValueError, match="variant"):
        cs.make_mlp("ln")
    with pytest.raises(ValueError, match="steps"):
        run("bn", tiny_data, steps=0)
    with pytest.raises(ValueError, match="depth"):
        cs.make_deep_linear(depth=1)
    with pytest.raises(ValueError, match="batch_size"):
        next(minibatches(10, 11, np.random.default_rng(0)))
