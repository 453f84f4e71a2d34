"""bnbook.train: fit and fit_steps learn, are deterministic, record divergence, call back,
stop on StopTraining, validate input; evaluate/predict restore the mode even on error."""
import itertools
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
        model = net(seed=3, norm="bn")
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
    (dict(step_callback=3), TypeError, "step_callback must be callable"),
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



class Failing(Module):
    """Raises in forward after ``ok`` calls (a bad batch in the middle of an evaluation)."""

    def __init__(self, inner, ok):
        self.inner, self.ok = inner, ok

    def forward(self, x):
        if self.ok == 0:
            raise RuntimeError("boom")
        self.ok -= 1
        return self.inner.forward(x)


@pytest.mark.parametrize("start_mode", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_predict_restores_mode_when_forward_raises(small, start_mode, training):
    model = Failing(net(norm="bn"), ok=1)
    model.train(start_mode)
    with pytest.raises(RuntimeError, match="boom"):
        train.predict(model, small.x_test, batch_size=50, training=training)
    assert model.training is start_mode and model.inner[1][1].training is start_mode
    model.ok = 1
    with pytest.raises(RuntimeError, match="boom"):
        train.evaluate(model, small.x_test, small.y_test, batch_size=50)
    assert model.training is start_mode


def test_predict_in_training_mode_uses_batch_statistics_and_restores_buffers(small):
    model = net(norm="bn")
    train.fit(model, small, epochs=1, lr=0.1)
    before = weights(model)
    x = small.x_test[:64]
    batch = train.predict(model, x, batch_size=32, training=True)
    after = weights(model)
    for key in before:
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)
    assert "layers.1.layers.1.num_batches_tracked" in after           # the buffers were checked
    # each half normalized with its own statistics: differs from eval mode and from one batch
    assert not np.allclose(batch, train.predict(model, x, batch_size=32))
    assert not np.allclose(batch, train.predict(model, x, batch_size=64, training=True))
    assert model.training


def test_step_callback_sees_every_step_and_its_batch(small):
    seen = []

    def probe(step, model, xb, yb):
        seen.append((step, len(xb), int(yb[0]), model.training))
    train.fit(net(), small, epochs=2, lr=0.1, batch_size=64, step_callback=probe)
    assert [s for s, *_ in seen] == list(range(20))                 # 10 batches an epoch
    assert [n for _, n, *_ in seen] == ([64] * 9 + [24]) * 2 and all(t for *_, t in seen)
    order = np.random.default_rng(0).permutation(600)               # fit's shuffle, seed 0
    assert seen[0][2] == small.y_train[order[0]]


@pytest.mark.parametrize("where, stopped, epochs_done", [
    ("step", (2, 3), 1),          # raised before the 14th step: 3 steps of epoch 2 done
    ("epoch", (2, 10), 2),        # raised after epoch 2: both epochs finished
])
def test_stop_training_returns_the_finished_epochs(small, where, stopped, epochs_done):
    def step_cb(step, model, xb, yb):
        if where == "step" and step == 13:
            raise train.StopTraining

    def epoch_cb(epoch, model, history):
        if where == "epoch" and epoch == 2:
            raise train.StopTraining
    model = Recorder(net())
    history = train.fit(model, small, epochs=4, lr=0.1, step_callback=step_cb,
                        callback=epoch_cb)
    assert history["stopped"] == stopped and not history["diverged"]
    assert all(len(history[k]) == epochs_done for k in train.HISTORY_KEYS)
    assert len(model.sizes) == 10 * (stopped[0] - 1) + stopped[1]  # no step after the stop
    assert train.fit(net(), small, epochs=1, lr=0.1)["stopped"] is None


def test_an_error_in_a_callback_propagates(small):
    def bad(step, model, xb, yb):
        raise KeyError("probe failed")
    with pytest.raises(KeyError, match="probe failed"):
        train.fit(net(), small, epochs=1, lr=0.1, step_callback=bad)


def test_fit_steps_schedule_and_history(small):
    model = Recorder(net())
    history = train.fit_steps(model, small, steps=25, lr=0.1, batch_size=64, eval_every=10)
    assert history["eval_steps"] == [0, 10, 20, 25]
    assert model.sizes == [64] * 25                     # 9 full batches an epoch, last dropped
    assert len(history["step_loss"]) == 25 and math.isnan(history["train_loss"][0])
    assert history["train_loss"][1] == pytest.approx(np.mean(history["step_loss"][:10]))
    assert history["train_loss"][3] == pytest.approx(np.mean(history["step_loss"][20:]))
    loss, acc = train.evaluate(model, small.x_test, small.y_test)
    assert (history["test_loss"][-1], history["test_acc"][-1]) == (loss, acc)
    assert history["stopped"] is None and not history["diverged"] and model.training
    quiet = train.fit_steps(net(), small, steps=5, lr=0.1)      # eval_every=None: none
    assert quiet["eval_steps"] == [] and len(quiet["step_loss"]) == 5


def test_fit_steps_batches_follow_minibatches_and_the_seed(small):
    model = Recorder(net())
    ids = []
    train.fit_steps(model, small, steps=12, lr=0.1, batch_size=50, seed=4,
                    step_callback=lambda t, m, xb, yb: ids.append(yb.copy()))
    expected = itertools.islice(train.minibatches(600, 50, np.random.default_rng(4)), 12)
    for got, idx in zip(ids, expected, strict=True):
        np.testing.assert_array_equal(got, small.y_train[idx])
    a = train.fit_steps(net(seed=2), small, steps=15, lr=0.1, seed=1, eval_every=5)
    b = train.fit_steps(net(seed=2), small, steps=15, lr=0.1, seed=1, eval_every=5)
    assert a == b


def test_fit_steps_with_given_batches_and_running_out(small):
    order = [np.arange(0, 32), np.arange(32, 64)]
    model = Recorder(net())
    train.fit_steps(model, small, steps=5, lr=0.1, batches=itertools.cycle(order))
    assert model.sizes == [32] * 5
    with pytest.raises(ValueError, match="batches ran out after 2 of 5 steps"):
        train.fit_steps(net(), small, steps=5, lr=0.1, batches=order)
    with pytest.raises(TypeError, match="batches must be None or an iterable"):
        train.fit_steps(net(), small, steps=5, lr=0.1, batches=3)


def test_fit_steps_stops_and_diverges(small):
    def stop_at_7(step, model, xb, yb):
        if step == 7:
            raise train.StopTraining
    h = train.fit_steps(net(), small, steps=20, lr=0.1, eval_every=5, step_callback=stop_at_7)
    assert h["stopped"] == 7 and len(h["step_loss"]) == 7 and h["eval_steps"] == [0, 5]

    def stop_after_second(step, model, history):
        if len(history["eval_steps"]) == 2:
            raise train.StopTraining
    h = train.fit_steps(net(), small, steps=20, lr=0.1, eval_every=5, callback=stop_after_second)
    assert h["stopped"] == 5 and len(h["step_loss"]) == 5
    h = train.fit_steps(Recorder(net(), nan_after=3), small, steps=20, lr=0.1, eval_every=5)
    assert h["diverged"] and h["diverged_at"] == 4 and len(h["step_loss"]) == 3
    assert h["eval_steps"] == [0]


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(steps=0), ValueError, "steps must be >= 1"),
    (dict(eval_every=0), ValueError, "eval_every must be >= 1"),
    (dict(eval_every=2.0), TypeError, "eval_every must be an int"),
    (dict(lr=float("inf")), ValueError, "lr must be a positive finite number"),
    (dict(step_callback="x"), TypeError, "step_callback must be callable"),
    (dict(callback=1), TypeError, "callback must be callable"),
])
def test_fit_steps_rejects_bad_arguments(small, kwargs, error, match):
    with pytest.raises(error, match=match):
        train.fit_steps(net(), small, **(dict(steps=3, lr=0.1) | kwargs))
