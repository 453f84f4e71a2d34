"""Tiny-setting tests of bnbook.experiments.scale_invariance."""
import numpy as np
import pytest

from bnbook.data import Dataset
from bnbook.experiments import scale_invariance as si
from bnbook.layers import Linear, ReLU, Sequential
from bnbook.losses import softmax_cross_entropy
from bnbook.optim import SGD


def tiny_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 784)).astype(np.float32)
    y = rng.integers(0, 10, n)
    return Dataset(x, y, x[:32], y[:32])


def grads(model, x, y):
    loss, d = softmax_cross_entropy(model.forward(x), y)
    model.backward(d)
    return loss


def test_scale_invariant_finds_the_weights_before_bn():
    model = si.bn_mlp(width=8, depth=3, seed=0)
    found = si.scale_invariant(model)
    assert len(found) == 3
    assert found[0] is model[0].weight and found[-1] is model[6].weight
    assert si.scale_invariant(Sequential(Linear(3, 2), ReLU())) == []


def test_output_unchanged_and_gradient_orthogonal_and_scaled():
    data = tiny_data()
    model = si.bn_mlp(width=8, seed=1, dtype=np.float64, eps=0.0)
    x, y = data[0][:32].astype(np.float64), data[1][:32]
    out = model.forward(x)
    grads(model, x, y)
    w = model[0].weight
    g = w.grad.copy()
    # each row's gradient is orthogonal to the row
    cos = np.sum(w.data * g, 1) / np.linalg.norm(w.data, axis=1) / np.linalg.norm(g, axis=1)
    assert np.max(np.abs(cos)) < 1e-10
    w.data *= 3.0
    np.testing.assert_allclose(model.forward(x), out, rtol=1e-12, atol=1e-12)
    grads(model, x, y)
    np.testing.assert_allclose(w.grad, g / 3.0, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_one_sgd_step_obeys_the_norm_identity(wd):
    data = tiny_data()
    model = si.bn_mlp(width=8, seed=2, dtype=np.float64, eps=0.0)
    x, y = data[0][:32].astype(np.float64), data[1][:32]
    grads(model, x, y)
    w = model[0].weight
    before, g = w.data.copy(), w.grad.copy()
    predicted = si.norm_after_step(before, g, 0.3, wd)
    SGD([w], lr=0.3, weight_decay=wd).step()
    assert np.sum(w.data ** 2) == pytest.approx(predicted, rel=1e-12)
    if wd == 0:
        assert predicted > np.sum(before ** 2)


def test_exponential_schedule_gives_the_weight_decay_directions():
    data = tiny_data()
    a = si.train(si.bn_mlp(width=8, seed=0, dtype=np.float64, eps=0.0), data, 20, 0.2,
                 weight_decay=0.1, batch_size=16, record_every=1)
    c = si.train(si.bn_mlp(width=8, seed=0, dtype=np.float64, eps=0.0), data, 20, 0.2,
                 schedule_decay=0.1, batch_size=16, record_every=1)
    np.testing.assert_allclose(a["loss"], c["loss"], rtol=1e-8)
    np.testing.assert_allclose(a["eff_lr"], c["eff_lr"] * (1 - 0.02), rtol=1e-8)
    assert np.all(si.cosines(a["directions"], c["directions"]) > 1 - 1e-10)
    # without decay the norm never shrinks; with decay it does here
    assert np.all(np.diff(c["w2"], axis=0) > 0)
    assert np.all(a["w2"][-1] < a["w2"][0])


def test_train_records_and_evaluates():
    data = tiny_data()
    r = si.train(si.bn_mlp(width=8, seed=0), data, 7, 0.1, batch_size=16,
                 record_every=3, eval_every=5, snapshot_every=4)
    assert r["step"].tolist() == [0, 3, 6] and r["w2"].shape == (3, 2)
    assert r["eval_step"].tolist() == [0, 5, 7] and len(r["loss"]) == 7
    assert len(r["snapshots"]) == 2
    rows = si.bn_mlp(width=8).layers[0].weight.data.shape[0]
    np.testing.assert_allclose(r["eff_lr"], 0.1 * rows / r["w2"])


def test_run_and_exp_lr():
    runs = si.run({"a": dict(lr=0.1)}, tiny_data(), (0, 1), 2, batch_size=16)
    assert set(runs) == {("a", 0), ("a", 1)}
    assert si.exp_lr(0.1, 0.5, 0) == pytest.approx(0.1 / 0.95)
    assert si.exp_lr(0.1, 0.5, 2) == pytest.approx(0.1 / 0.95 ** 5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(steps=0), "steps"), (dict(lr=-1.0), "lr"), (dict(weight_decay=-0.1), "weight_decay"),
    (dict(weight_decay=20.0), "weight_decay"), (dict(schedule_decay=-1.0), "schedule_decay"),
    (dict(weight_decay=0.1, schedule_decay=0.1), "not both"), (dict(record_every=0), "record_every"),
    (dict(other_lr=0.0), "lr")])
def test_bad_input_raises(kwargs, match):
    args = dict(steps=2, lr=0.1) | kwargs
    with pytest.raises(ValueError, match=match):
        si.train(si.bn_mlp(width=8), tiny_data(), batch_size=16, **args)


def test_bad_models_and_lists_raise():
    with pytest.raises(ValueError, match="no Linear layer followed"):
        si.train(Sequential(Linear(784, 10)), tiny_data(), 2, 0.1, batch_size=16)
    with pytest.raises(TypeError, match="Sequential"):
        si.scale_invariant(Linear(3, 2))
    with pytest.raises(ValueError, match="same shape"):
        si.norm_after_step(np.ones(3), np.ones(2), 0.1)
    with pytest.raises(ValueError, match="differ in length"):
        si.cosines([np.ones((2, 2))], [])
    with pytest.raises(ValueError, match="at least one seed"):
        si.run({"a": dict(lr=0.1)}, tiny_data(), (), 2)
