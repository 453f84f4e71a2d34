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


def test_deep_linear_measures_with_its_own_step_and_records_gradient_norms():
    kw = dict(steps=20, depth=6, width=4, n_samples=50, ics_every=5)
    a = cs.train_deep_linear(False, lr=1e-3, **kw)
    b = cs.train_deep_linear(False, lr=1e-3, ics_lr=2e-3, **kw)
    z = cs.train_deep_linear(False, lr=1e-3, ics_lr=0.0, **kw)
    np.testing.assert_array_equal(a["loss"], b["loss"])      # same training
    np.testing.assert_allclose(z["ics_l2"], 0, atol=0)         # zero step
    # to first order the change is linear in the measuring step
    np.testing.assert_allclose(b["ics_l2"], 2 * a["ics_l2"], rtol=0.05)
    assert a["ics_gnorm"].shape == a["ics_l2"].shape
    assert np.all(a["ics_gnorm"] > 0)
    with pytest.raises(ValueError, match="ics_lr must be >= 0"):
        cs.train_deep_linear(False, lr=1e-3, ics_lr=-1.0, **kw)


def test_per_sample_noise_differs_per_sample_and_step_and_is_off_in_eval():
    layer = layers.NoiseInjection(50, rng=0)
    x = np.zeros((4, 50), dtype=np.float32)
    y1, y2 = layer.forward(x), layer.forward(x)
    assert not np.allclose(y1[0], y1[1])          # two samples of a batch differ
    assert not np.allclose(y1, y2)                # redrawn at each step
    dy = np.random.default_rng(1).standard_normal((4, 50)).astype(np.float32)
    np.testing.assert_allclose(layer.backward(dy), dy * layer.scale, rtol=1e-6)
    assert layer.forward(np.ones((2, 50, 3, 3), dtype=np.float32)).shape == (2, 50, 3, 3)
    layer.eval()
    np.testing.assert_array_equal(layer.forward(x + 1), x + 1)
    np.testing.assert_array_equal(layer.backward(dy), dy)


def test_per_sample_noise_has_the_stated_mean_and_variance():
    # y = x * scale + shift with scale ~ N(c_j, 0.2^2), shift ~ N(m_j, 0.3^2), and
    # this step's centres m_j ~ U(-0.5, 0.5), c_j ~ U(1, 1.5); at x = 2 the batch
    # mean of unit j is 2 c_j + m_j and its variance 4 * 0.2^2 + 0.3^2 = 0.25
    layer = layers.NoiseInjection(20, rng=0)
    x = np.full((20000, 20), 2.0)
    centres = []
    for _ in range(5):
        y = layer.forward(x)
        np.testing.assert_allclose(y.mean(0), 2 * layer.centre_scale + layer.centre_shift,
                                   atol=0.02)
        np.testing.assert_allclose(y.var(0), 0.25, rtol=0.05)
        centres.append(layer.centre_shift.copy())
    centres = np.concatenate(centres)                          # 100 draws of U(-0.5, 0.5)
    assert np.all(np.abs(centres) <= 0.5) and 0.2 < centres.std() < 0.38


def test_shared_noise_is_one_draw_per_unit_for_the_batch():
    layer = layers.NoiseInjection(30, per_sample=False, rng=0)
    y = layer.forward(np.zeros((6, 30), dtype=np.float32))
    np.testing.assert_array_equal(y[0], y[5])
    assert layer.scale.shape == (1, 30)
    y4 = layer.forward(np.zeros((2, 30, 3, 3), dtype=np.float32))
    np.testing.assert_array_equal(y4[0, :, 0, 0], y4[1, :, 2, 1])


def test_held_noise_keeps_the_step():
    layer = layers.NoiseInjection(10, rng=0)
    x = np.zeros((5, 10), dtype=np.float32)
    layer.forward(x)
    layer.hold = True
    first = layer.forward(x)
    np.testing.assert_array_equal(layer.forward(x), first)
    centre = layer.centre_shift.copy()
    layer.forward(np.zeros((7, 10), dtype=np.float32))        # new shape: same step
    np.testing.assert_array_equal(layer.centre_shift, centre)


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
    (dict(num_features=4, shift_std=-0.1), "stds"),
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


# ---- the lean Figure 1 trainer (bnbook.experiments.ics_fig1) ----------------
from bnbook.experiments import ics_fig1 as f1, ics_measures as im

SMALL = (784, 16, 16, 16, 10)


@pytest.mark.parametrize("variant", ["plain", "bn", "noisy"])
def test_lean_steps_match_the_library_layers(tiny_data, variant):
    model = cs.make_mlp(variant, sizes=SMALL, seed=3)
    p = f1.stack_params(variant, [3], SMALL)
    batches = minibatches(400, 20, np.random.default_rng(0))
    x, y = tiny_data[0], tiny_data[1]
    for _ in range(4):
        idx = next(batches)
        loss, _ = loss_and_grads(model, x[idx], y[idx])
        for q in model.parameters():
            q.data -= 0.5 * q.grad
        logits, caches = f1.forward(p, x[idx][None])
        lean = f1.backward_step(p, caches, logits, y[idx][None], 0.5)
        np.testing.assert_allclose(lean[0], loss, rtol=1e-5)
    lins = [m for m in model.layers if isinstance(m, layers.Linear)]
    for k, lin in enumerate(lins):
        np.testing.assert_allclose(p["W"][k][0], lin.weight.data.T, atol=1e-5)
    bns = [m for m in model.layers if isinstance(m, layers.BatchNorm)]
    for k, bn in enumerate(bns):
        np.testing.assert_allclose(p["gamma"][k][0, 0], bn.gamma.data, atol=1e-5)
        np.testing.assert_allclose(p["rvar"][k][0, 0], bn.running_var, rtol=1e-5)


@pytest.mark.parametrize("variant", ["plain", "bn"])
def test_percentiles_tracked_on_the_probe(tiny_data, variant):
    out = f1.train_fig1(variant, 6, 0.5, tiny_data, seeds=(0, 1), batch_size=20,
                        record_every=3, probe_size=50, eval_every=3, sizes=SMALL,
                        train_eval=100)
    assert out["record_steps"].tolist() == [0, 3, 6]
    assert out["percentiles"].shape == (2, 3, 3, 16)
    assert out["test_acc"].shape == (2, 3) and out["loss"].shape == (2, 6)
    probe = tiny_data[0][np.random.default_rng(12345).choice(400, 50, replace=False)]
    model = cs.make_mlp(variant, sizes=SMALL, seed=1)                 # seed 1, step 0
    z = cs.sigmoid_input(model, probe)
    np.testing.assert_allclose(out["percentiles"][1, 0],
                               np.percentile(z, (15, 50, 85), axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["unit_values"][1, 0], z[:, 0], rtol=1e-4, atol=1e-5)
    assert not np.allclose(out["percentiles"][:, 2], out["percentiles"][:, 0])


def test_lean_trainer_rejects_bad_input(tiny_data):
    with pytest.raises(ValueError, match="variant"):
        f1.train_fig1("ln", 5, 0.1, tiny_data)
    with pytest.raises(ValueError, match="lr > 0"):
        f1.train_fig1("bn", 5, 0.0, tiny_data)


def test_best_rate_and_inside():
    lrs = [0.1, 1.0, 10.0]
    assert im.best_rate(lrs, [[3, 3], [1, 2], [np.nan, 0.5]]) == (1.0, True)
    assert im.best_rate(lrs, [[3, 3], [1, 2], [0.1, 0.5]]) == (10.0, False)
    with pytest.raises(ValueError, match="increasing"):
        im.best_rate([1.0, 0.1, 3.0], np.ones((3, 2)))
    with pytest.raises(ValueError, match="shape"):
        im.best_rate(lrs, np.ones((2, 2)))


def test_median_drift():
    perc = np.zeros((2, 3, 4))                        # (R, 3, D)
    perc[1, 1] = [1.0, -1.0, 2.0, 0.0]
    np.testing.assert_allclose(im.median_drift(perc), [1.0])
    with pytest.raises(ValueError, match="2 records"):
        im.median_drift(perc[:1])


def test_dln_grid_shape_and_divergence():
    out = im.dln_grid(False, [1e-3, 1e3], steps=5, seeds=(0, 1), depth=4, width=3,
                      n_samples=20)
    assert out.shape == (2, 2) and np.all(np.isfinite(out[0]))
    assert not np.all(np.isfinite(out[1])) or np.all(out[1] > out[0])
