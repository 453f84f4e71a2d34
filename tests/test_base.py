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


@pytest.mark.parametrize("value, error, match", [
    (np.array([1.0, np.nan]), ValueError, r"w: holds 1 non-finite value\(s\)"),
    (np.array([np.inf, -np.inf]), ValueError, r"w: holds 2 non-finite"),
    (np.array([1, 2]), TypeError, r"w: expected floating-point values for a float64 array, "
                                  r"got dtype int64"),
    (np.array([True, False]), TypeError, "w: expected floating-point values"),
])
def test_load_rejects_non_finite_and_integer_weights(value, error, match):
    net = Scale(2)
    with pytest.raises(error, match=match):
        net.load_state_dict({"w": value, "calls": np.array(0.0)})
    np.testing.assert_array_equal(net.w.data, [1.0, 2.0])      # nothing was written


def test_load_rejects_a_float_count_for_an_integer_buffer():
    bn = layers.BatchNorm(2)
    state = bn.state_dict() | {"num_batches_tracked": np.array(1.5)}
    with pytest.raises(TypeError, match="num_batches_tracked: expected integers"):
        bn.load_state_dict(state)


@pytest.mark.parametrize("content", [b"not an archive at all", b"",
                                     b"\x93NUMPY\x01\x00v\x00{'descr': '<f8'"])
def test_load_rejects_a_file_that_is_not_an_npz(tmp_path, content):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"model.npz is not an \.npz file"):
        Scale(2).load(path)


def test_load_rejects_a_broken_archive_and_keeps_os_errors(tmp_path):
    path = tmp_path / "cut.npz"
    Scale(2).save(path)
    path.write_bytes(path.read_bytes()[:40])                   # truncated zip
    with pytest.raises(ValueError, match="cut.npz is not a readable .npz file"):
        Scale(2).load(path)
    with pytest.raises(FileNotFoundError):
        Scale(2).load(tmp_path / "missing.npz")
    np.save(tmp_path / "plain.npy", np.zeros(2))
    with pytest.raises(ValueError, match="plain.npy is not an .npz file"):
        Scale(2).load(tmp_path / "plain.npy")


def test_modules_lists_each_module_once_parents_first():
    net = Pair()
    shared = Scale(2)
    top = Sequential(net, shared, Sequential(shared))
    mods = top.modules()
    assert mods[:3] == [top, net, net.first] and mods.count(shared) == 1
    assert len(mods) == 8                  # top, Pair, 3 Scale, inner Seq, shared, last Seq
    leaf = Scale(1)
    assert leaf.modules() == [leaf]


def test_astype_converts_parameters_and_float_buffers():
    net = Sequential(layers.Linear(3, 2, rng=0), layers.BatchNorm(2))
    x = np.random.default_rng(0).standard_normal((4, 3))
    net.forward(x.astype(np.float32))
    net.backward(np.ones((4, 2), np.float32))
    before = net.state_dict()
    assert net.astype(np.float64) is net
    for name, p in net.named_parameters():
        assert p.data.dtype == np.float64 and p.grad is None, name
        np.testing.assert_array_equal(p.data, before[name].astype(np.float64))
    assert net[1].running_var.dtype == np.float64
    assert net[1].num_batches_tracked.dtype == np.int64         # a count stays an integer
    y = net.forward(x)
    assert y.dtype == np.float64
    net.astype("float32")
    assert all(p.data.dtype == np.float32 for p in net.parameters())
    with pytest.raises(TypeError, match="float32 or float64, got float16"):
        net.astype(np.float16)
    with pytest.raises(TypeError, match="float32 or float64, got int64"):
        net.astype(int)


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


def test_backward_overwrites_gradients():
    net = Scale(2)
    x = np.ones((1, 2))
    net.forward(x)
    net.backward(np.ones((1, 2)))
    net.backward(np.ones((1, 2)))
    np.testing.assert_array_equal(net.w.grad, [1.0, 1.0])       # not accumulated


def test_parameter_repr_and_shape():
    p = Parameter(np.zeros((2, 3), np.float32))
    assert p.shape == (2, 3) and p.grad is None
    assert repr(p) == "Parameter(shape=(2, 3), dtype=float32)"
