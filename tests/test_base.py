"""bnbook.layers.base: parameters, buffers, children, train/eval, state to .npz."""
import numpy as np
import pytest

from bnbook import layers
from bnbook.layers.base import Module, Parameter, Sequential


class Scale(Module):
    """y = w * x with one parameter and one buffer (a call counter)."""

    _buffers = ("calls",)

    def __init__(self, n):
        self.w = Parameter(np.arange(1.0, n + 1))
        self.calls = np.zeros(())

    def forward(self, x):
        self.x = x
        self.calls += 1
        return x * self.w.data

    def backward(self, dy):
        self.w.grad = (dy * self.x).sum(axis=0)
        return dy * self.w.data


class Pair(Module):
    """Children in an attribute and in a list."""

    def __init__(self):
        self.first = Scale(2)
        self.rest = [Scale(2), Sequential(Scale(2))]
        self.b = Parameter(np.zeros(2))


def test_named_parameters_and_buffers_use_dotted_names():
    net = Pair()
    assert [k for k, _ in net.named_parameters()] == [
        "b", "first.w", "rest.0.w", "rest.1.layers.0.w"]
    assert [k for k, _ in net.named_buffers()] == [
        "first.calls", "rest.0.calls", "rest.1.layers.0.calls"]
    assert len(net.parameters()) == 4
    assert all(isinstance(p, Parameter) for p in net.parameters())


def test_train_and_eval_propagate_to_every_child():
    net = Sequential(Pair(), layers.BatchNorm(2), Sequential(layers.ReLU()))
    modules = [net, net[0], net[0].first, net[0].rest[0], net[0].rest[1],
               net[0].rest[1][0], net[1], net[2], net[2][0]]
    assert net.eval() is net
    assert not any(m.training for m in modules)
    net.train()
    assert all(m.training for m in modules)
    net.train(False)
    assert not any(m.training for m in modules)


def test_state_dict_save_load_roundtrip(tmp_path):
    net = Sequential(Scale(3), layers.Linear(3, 2, rng=0), layers.BatchNorm(2))
    net.forward(np.ones((4, 3), np.float32))
    state = net.state_dict()
    assert set(state) == {"layers.0.w", "layers.0.calls", "layers.1.weight", "layers.1.bias",
                          "layers.2.gamma", "layers.2.beta", "layers.2.running_mean",
                          "layers.2.running_var", "layers.2.num_batches_tracked"}
    assert all(isinstance(v, np.ndarray) for v in state.values())
    path = tmp_path / "net.npz"
    net.save(path)
    other = Sequential(Scale(3), layers.Linear(3, 2, rng=1), layers.BatchNorm(2))
    assert not np.array_equal(other[1].weight.data, net[1].weight.data)
    assert other.load(path) is other
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[k], v, err_msg=k)
    assert float(other[0].calls) == 1.0


def test_load_state_dict_writes_into_the_parameters():
    net = Scale(2)
    net.load_state_dict({"w": np.array([5.0, 6.0]), "calls": np.array(2.0)})
    np.testing.assert_array_equal(net.w.data, [5.0, 6.0])


def test_load_rejects_missing_unexpected_and_misshaped_entries():
    net = Scale(2)
    with pytest.raises(ValueError, match=r"missing \['calls'\], unexpected \[\]"):
        net.load_state_dict({"w": np.zeros(2)})
    with pytest.raises(ValueError, match=r"unexpected \['v'\]"):
        net.load_state_dict({"w": np.zeros(2), "calls": np.zeros(()), "v": np.zeros(1)})
    with pytest.raises(ValueError, match=r"w: saved shape \(3,\) but the module expects \(2,\)"):
        net.load_state_dict({"w": np.zeros(3), "calls": np.zeros(())})


def test_sequential_runs_forward_in_order_and_backward_in_reverse():
    a, b = Scale(2), Scale(2)
    net = Sequential(a, b)
    x = np.array([[1.0, 1.0], [2.0, -1.0]])
    y = net.forward(x)
    np.testing.assert_array_equal(y, x * a.w.data * b.w.data)
    dy = np.array([[0.5, -1.0], [2.0, 3.0]])
    dx = net.backward(dy)
    np.testing.assert_array_equal(dx, dy * a.w.data * b.w.data)
    np.testing.assert_array_equal(b.w.grad, (dy * x * a.w.data).sum(0))
    np.testing.assert_array_equal(a.w.grad, (dy * b.w.data * x).sum(0))
    assert len(net) == 2 and net[1] is b and "Sequential(" in repr(net)


def test_backward_overwrites_gradients_and_zero_grad_clears_them():
    net = Scale(2)
    x = np.ones((1, 2))
    net.forward(x)
    net.backward(np.ones((1, 2)))
    net.backward(np.ones((1, 2)))
    np.testing.assert_array_equal(net.w.grad, [1.0, 1.0])       # not accumulated
    net.zero_grad()
    assert net.w.grad is None


def test_parameter_repr_and_shape():
    p = Parameter(np.zeros((2, 3), np.float32))
    assert p.shape == (2, 3) and p.grad is None
    assert repr(p) == "Parameter(shape=(2, 3), dtype=float32)"
