"""LayerNorm / GroupNorm: finite differences, PyTorch float64 oracle, properties, bad input."""
import numpy as np
import pytest

from bnbook import layernorm as F
from bnbook.gradcheck import compare, numerical_grad, upstream
from bnbook.layers import GroupNorm, LayerNorm
from bnbook.layers.groupnorm import default_groups
from bnbook.models import mlp

SHAPES = [((5, 6), 3), ((2, 6), 2), ((3, 4, 3, 2), 2), ((2, 6, 2, 3), 6), ((4, 8), 1)]


def _inputs(shape, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = rng.standard_normal(shape) * 2.0 + 0.5
    return x, 1.0 + 0.3 * rng.standard_normal(c), 0.2 * rng.standard_normal(c)


def _assert(cmp):
    assert cmp.ok, str(cmp)


@pytest.mark.parametrize("shape,groups", SHAPES)
def test_finite_differences_random_upstream(shape, groups):
    x, gamma, beta = _inputs(shape)
    dy = upstream(shape, seed=1)
    _, cache = F.group_norm(x, gamma, beta, groups)
    dx, dgamma, dbeta = F.backward(dy, cache)
    _assert(compare("dx", dx, numerical_grad(lambda v: F.group_norm(v, gamma, beta, groups)[0],
                                             x, dy), rtol=1e-5, atol=1e-8))
    _assert(compare("dgamma", dgamma, numerical_grad(
        lambda g: F.group_norm(x, g, beta, groups)[0], gamma, dy), rtol=1e-5, atol=1e-8))
    _assert(compare("dbeta", dbeta, numerical_grad(
        lambda b: F.group_norm(x, gamma, b, groups)[0], beta, dy), rtol=1e-5, atol=1e-8))


@pytest.mark.parametrize("shape,groups", SHAPES)
def test_against_torch_group_norm_float64(shape, groups):
    torch = pytest.importorskip("torch")
    x, gamma, beta = _inputs(shape, seed=2)
    dy = upstream(shape, seed=3)
    y, cache = F.group_norm(x, gamma, beta, groups, eps=1e-5)
    dx, dgamma, dbeta = F.backward(dy, cache)
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    ty = torch.nn.functional.group_norm(tx, groups, tg, tb, eps=1e-5)
    ty.backward(torch.tensor(dy))
    for name, ours, theirs in (("y", y, ty), ("dx", dx, tx.grad), ("dgamma", dgamma, tg.grad),
                               ("dbeta", dbeta, tb.grad)):
        _assert(compare(name, ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-12))


def test_layer_norm_against_torch_layer_norm_float64():
    torch = pytest.importorskip("torch")
    x, gamma, beta = _inputs((6, 10), seed=4)
    dy = upstream((6, 10), seed=5)
    layer = LayerNorm(10, dtype=np.float64)
    layer.gamma.data[...] = gamma
    layer.beta.data[...] = beta
    y = layer.forward(x)
    dx = layer.backward(dy)
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    ty = torch.nn.functional.layer_norm(tx, (10,), tg, tb, eps=1e-5)
    ty.backward(torch.tensor(dy))
    for name, ours, theirs in (("y", y, ty), ("dx", dx, tx.grad),
                               ("dgamma", layer.gamma.grad, tg.grad),
                               ("dbeta", layer.beta.grad, tb.grad)):
        _assert(compare(name, ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-12))


def test_properties_per_sample_and_group():
    x, _, _ = _inputs((4, 6, 3, 3), seed=6)
    c = x.shape[1]
    y, cache = F.group_norm(x, np.ones(c), np.zeros(c), 3)
    groups = y.reshape(4, 3, -1)
    np.testing.assert_allclose(groups.mean(axis=2), 0, atol=1e-12)
    np.testing.assert_allclose(groups.var(axis=2), 1, rtol=1e-5)
    dy = upstream(x.shape, seed=7)
    dx, _, dbeta = F.backward(dy, cache)
    np.testing.assert_allclose(dx.reshape(4, 3, -1).sum(axis=2), 0, atol=1e-10)
    np.testing.assert_allclose(dbeta, dy.sum(axis=(0, 2, 3)), rtol=1e-12)
    # each sample alone: the output of a sample does not depend on the others
    y0, _ = F.group_norm(x[:1], np.ones(c), np.zeros(c), 3)
    np.testing.assert_allclose(y0, y[:1], rtol=1e-12)


def test_layers_float32_train_eval_same_and_grads_overwritten():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 8, 2, 2)).astype(np.float32)
    layer = GroupNorm(4, 8)
    y_train = layer.train().forward(x)
    y_eval = layer.eval().forward(x)
    assert y_train.dtype == np.float32
    np.testing.assert_array_equal(y_train, y_eval)
    layer.backward(np.ones_like(x))
    first = layer.beta.grad.copy()
    layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(layer.beta.grad, first)   # overwritten, not accumulated


def test_default_groups_and_mlp_integration():
    assert [default_groups(c) for c in (64, 100, 7)] == [32, 25, 7]
    net = mlp([5, 100, 3], norm="gn", rng=0)                # the default group count
    assert [m.num_groups for m in net.layers if isinstance(m, GroupNorm)] == [25]
    net = mlp([5, 12, 12, 3], norm="gn", rng=0, norm_kwargs={"num_groups": 4})
    assert sum(isinstance(m, GroupNorm) and m.num_groups == 4 for m in net.layers) == 2
    net = mlp([5, 12, 3], norm="ln", rng=0)
    assert any(isinstance(m, LayerNorm) for m in net.layers)
    out = net.forward(np.ones((2, 5), np.float32))
    assert out.shape == (2, 3)
    assert net.backward(np.ones_like(out)).shape == (2, 5)


def test_group_norm_layer_takes_pytorchs_argument_order(torch):
    x = np.random.default_rng(11).standard_normal((3, 6, 2, 2))
    ours = GroupNorm(2, 6, dtype=np.float64)
    theirs = torch.nn.GroupNorm(2, 6).double()
    assert (ours.num_groups, ours.num_channels) == (theirs.num_groups, theirs.num_channels)
    expected = theirs(torch.from_numpy(x)).detach().numpy()
    _assert(compare("y", ours.forward(x), expected, rtol=1e-12, atol=1e-12))
    assert repr(ours) == "GroupNorm(2, 6, eps=1e-05)"


def test_runs_on_array_api_strict():
    xps = pytest.importorskip("array_api_strict")
    x, gamma, beta = _inputs((3, 4, 2, 2), seed=9)
    y_ref, cache_ref = F.group_norm(x, gamma, beta, 2)
    dy = upstream(x.shape, seed=10)
    y, cache = F.group_norm(xps.asarray(x), xps.asarray(gamma), xps.asarray(beta), 2)
    dx, _, _ = F.backward(xps.asarray(dy), cache)
    np.testing.assert_allclose(np.asarray(y), y_ref, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(dx), F.backward(dy, cache_ref)[0], rtol=1e-12)


@pytest.mark.parametrize("call,err,match", [
    (lambda: F.group_norm(np.ones(4), np.ones(4), np.zeros(4), 1), ValueError, "at least 2"),
    (lambda: F.group_norm([[1.0]], np.ones(1), np.zeros(1), 1), TypeError, "array"),
    (lambda: F.group_norm(np.ones((2, 4)), np.ones(3), np.zeros(4), 1), ValueError, "gamma"),
    (lambda: F.group_norm(np.ones((2, 4)), np.ones(4), np.zeros(5), 1), ValueError, "beta"),
    (lambda: F.group_norm(np.ones((2, 6)), np.ones(6), np.zeros(6), 4), ValueError, "divisor"),
    (lambda: F.group_norm(np.ones((2, 6)), np.ones(6), np.zeros(6), 0), ValueError, "divisor"),
    (lambda: F.group_norm(np.ones((2, 6)), np.ones(6), np.zeros(6), 2.0), TypeError, "int"),
    (lambda: F.group_norm(np.ones((2, 6)), np.ones(6), np.zeros(6), 2, eps=-1), ValueError,
     "eps"),
    (lambda: F.backward(np.ones((2, 5)), F.layer_norm(np.ones((2, 6)), np.ones(6),
                                                      np.zeros(6))[1]), ValueError, "dy"),
    (lambda: GroupNorm(4, 6), ValueError, "divisor"),
    (lambda: GroupNorm(1, 0), ValueError, "num_channels"),
    (lambda: GroupNorm(2.0, 6), TypeError, "num_groups must be an int"),
    (lambda: LayerNorm(4, dtype=np.int32), TypeError, "dtype"),
    (lambda: LayerNorm(4).forward(np.ones((2, 5), np.float32)), ValueError, r"\(N, 4\)"),
    (lambda: LayerNorm(4).forward(np.ones((2, 4, 3), np.float32)), ValueError, "shape"),
])
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()
