"""bnbook.train: fit learns, is deterministic, records divergence, validates input."""
import math

import numpy as np
import pytest

from bnbook import data, layers, train
from bnbook.layers import Module
from bnbook.losses import softmax_cross_entropy
from bnbook.models import mlp


@pytest.fixture(scope="module")
def mnist():
    return data.load_mnist()


@pytest.fixture(scope="module")
def small(mnist):
    """600 training and 200 test digits: enough to learn, quick to run."""
    return data.Dataset(mnist.x_train[:600], mnist.y_train[:600],
                        mnist.x_test[:200], mnist.y_test[:200])


def net(seed=0, norm=None):
    return layers.Sequential(layers.Flatten(), mlp([784, 64, 10], "tanh", norm=norm, rng=seed))


def weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


class Recorder(Module):
    """Identity that records the mode of every forward call and the batch sizes."""

    def __init__(self, inner, nan_after=None):
        self.inner, self.modes, self.sizes, self.nan_after = inner, [], [], nan_after

    def forward(self, x):
        self.modes.append(self.training)
        if self.training:
            self.sizes.append(len(x))
        y = self.inner.forward(x)
        if self.nan_after is not None and len(self.sizes) > self.nan_after:
            y = y * np.nan
        return y

    def backward(self, dy):
        return self.inner.backward(dy)


def test_fit_learns_mnist(mnist):
    history = train.fit(net(), mnist, epochs=3, lr=0.1)
    assert set(train.HISTORY_KEYS) <= set(history)
    assert all(len(history[k]) == 3 for k in train.HISTORY_KEYS)
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["test_acc"][-1] > 0.85, history["test_acc"]
    assert all(s > 0 for s in history["seconds"]) and not history["diverged"]


def test_history_matches_evaluate(small):
    model = net()
    history = train.fit(model, small, epochs=1, lr=0.1)
    loss, acc = train.evaluate(model, small.x_test, small.y_test, batch_size=37)
    assert math.isclose(loss, history["test_loss"][0], rel_tol=1e-6)
    assert acc == history["test_acc"][0]


def test_fit_is_deterministic_for_a_seed(small):
    runs = []
    for fit_seed in (0, 0, 1):
        model = net(seed=3, norm="bn") if hasattr(layers, "BatchNorm") else net(seed=3)
        history = train.fit(model, small, epochs=2, lr=0.1, seed=fit_seed)
        history.pop("seconds")
        runs.append((history, weights(model)))
    assert runs[0][0] == runs[1][0]
    for key, value in runs[0][1].items():
        np.testing.assert_array_equal(value, runs[1][1][key], err_msg=key)
    assert runs[0][0]["train_loss"] != runs[2][0]["train_loss"]   # another shuffle


def test_every_example_is_seen_once_per_epoch(small):
    model = Recorder(net())
    train.fit(model, small, epochs=2, lr=0.1, batch_size=64)
    assert model.sizes == ([64] * 9 + [600 - 9 * 64]) * 2


def test_evaluate_runs_in_eval_mode_and_restores_mode(small):
    model = Recorder(net())
    for start_mode in (True, False):
        model.train(start_mode)
        model.modes.clear()
        train.evaluate(model, small.x_test, small.y_test, batch_size=100)
        assert model.modes == [False, False] and model.training is start_mode


def test_evaluate_against_a_direct_computation(small):
    model = net()
    logits = model.eval().forward(small.x_test)
    loss, _ = softmax_cross_entropy(logits.astype(np.float64), small.y_test)
    acc = (logits.argmax(1) == small.y_test).mean()
    assert np.allclose(train.evaluate(model, small.x_test, small.y_test, 64), (loss, acc))
    assert train.predict(model, small.x_test, 64).shape == (200, 10)


def test_divergence_is_recorded_not_raised(small):
    model = Recorder(net(), nan_after=12)           # NaN logits from the 13th batch on
    history = train.fit(model, small, epochs=4, lr=0.1, batch_size=64)
    assert history["diverged"] and history["diverged_at"] == (2, 3)   # 10 batches an epoch
    assert len(history["train_loss"]) == 1 and len(history["test_acc"]) == 1


def test_large_learning_rate_diverges_on_relu(small):
    model = layers.Sequential(layers.Flatten(), mlp([784, 64, 64, 10], "relu", rng=0))
    history = train.fit(model, small, epochs=3, lr=1e20)   # float32 overflows to inf
    assert history["diverged"], history["train_loss"]


def test_callback_sees_each_epoch(small):
    seen = []
    train.fit(net(), small, epochs=3, lr=0.1,
              callback=lambda epoch, model, h: seen.append((epoch, len(h["test_acc"]))))
    assert seen == [(1, 1), (2, 2), (3, 3)]


def test_progress_bar_only_when_asked_or_on_a_terminal(small, capsys):
    train.fit(net(), small, epochs=1, lr=0.1)                 # stderr is not a terminal
    assert capsys.readouterr().err == ""
    train.fit(net(), small, epochs=1, lr=0.1, progress=True)
    assert "epoch 1/1" in capsys.readouterr().err
    train.fit(net(), small, epochs=1, lr=0.1, progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(epochs=0), ValueError, "epochs must be >= 1"),
    (dict(epochs=1.5), TypeError, "epochs must be an int"),
    (dict(lr=0.0), ValueError, "lr must be a positive finite number"),
    (dict(lr=float("nan")), ValueError, "lr must be a positive finite number"),
    (dict(lr=-1), ValueError, "lr must be a positive"),
    (dict(batch_size=0), ValueError, "batch_size must be >= 1"),
    (dict(batch_size=True), TypeError, "batch_size must be an int"),
    (dict(eval_batch_size=0), ValueError, "eval_batch_size must be >= 1"),
    (dict(momentum=1.0), ValueError, "momentum"),
    (dict(weight_decay=-0.1), ValueError, "weight_decay"),
    (dict(callback=3), TypeError, "callback must be callable"),
])
def test_fit_rejects_bad_arguments(small, kwargs, error, match):
    args = dict(epochs=1, lr=0.1) | kwargs
    with pytest.raises(error, match=match):
        train.fit(net(), small, **args)


def test_fit_rejects_bad_data_and_models(small):
    with pytest.raises(TypeError, match="data must be a Dataset"):
        train.fit(net(), small[:2], 1, 0.1)
    bad = small._replace(y_train=small.y_train[:-1])
    with pytest.raises(ValueError, match=r"training data: .*images \(600, 1, 28, 28\) "
                                         r"and labels \(599,\)"):
        train.fit(net(), bad, 1, 0.1)
    with pytest.raises(TypeError, match="test data: labels must be integers"):
        train.fit(net(), small._replace(y_test=small.y_test.astype(float)), 1, 0.1)
    with pytest.raises(ValueError, match="training data: no examples"):
        train.fit(net(), small._replace(x_train=small.x_train[:0],
                                        y_train=small.y_train[:0]), 1, 0.1)
    with pytest.raises(TypeError, match="model must be a bnbook Module"):
        train.fit(lambda x: x, small, 1, 0.1)
    with pytest.raises(TypeError, match="evaluate: images and labels must be arrays"):
        train.evaluate(net(), [[0.0]], [0])

