"""bnbook.layers.BatchNorm: state (parameters, running buffers), train/eval, .npz
save/load, the opt-in finite check, and PyTorch's BatchNorm1d/2d as an oracle."""
import numpy as np
import pytest

from bnbook import layers, models
from bnbook.gradcheck import compare, upstream


def _check(name, ours, theirs, rtol=1e-10, atol=1e-12):
    c = compare(name, ours, theirs, rtol=rtol, atol=atol)
    assert c.ok, str(c)


def _batch(shape, seed, offset=0.0, scale=1.0, dtype=np.float64):
    gen = np.random.default_rng(seed)
    return (offset + scale * gen.standard_normal(shape)).astype(dtype)


@pytest.mark.parametrize("shape", [(16, 5), (4, 3, 5, 5)])
def test_layer_matches_torch_over_training_steps_then_eval(torch, shape):
    C = shape[1]
    ours = layers.BatchNorm(C, momentum=0.2, dtype=np.float64)
    theirs = (torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d)(
        C, momentum=0.2, dtype=torch.float64)
    gen = np.random.default_rng(0)
    gamma, beta = 1 + gen.standard_normal(C), gen.standard_normal(C)
    ours.gamma.data[...] = gamma
    ours.beta.data[...] = beta
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(gamma))
        theirs.bias.copy_(torch.tensor(beta))
    for step in range(4):
        x = _batch(shape, seed=step, offset=step - 1.0, scale=1 + step)
        dy = upstream(shape, seed=10 + step)
        y = ours.forward(x)
        dx = ours.backward(dy)
        tx = torch.tensor(x, requires_grad=True)
        theirs.zero_grad()
        ty = theirs(tx)
        ty.backward(torch.tensor(dy))
        _check(f"y step {step}", y, ty.detach().numpy())
        _check(f"dx step {step}", dx, tx.grad.numpy(), 1e-9)
        _check("dgamma", ours.gamma.grad, theirs.weight.grad.numpy(), 1e-9)
        _check("dbeta", ours.beta.grad, theirs.bias.grad.numpy(), 1e-9)
    _check("running_mean", ours.running_mean, theirs.running_mean.numpy())
    _check("running_var", ours.running_var, theirs.running_var.numpy())
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 4
    ours.eval()
    theirs.eval()
    x = _batch(shape, seed=99, offset=0.5)
    _check("eval y", ours.forward(x), theirs(torch.tensor(x)).detach().numpy())


def test_eval_uses_running_statistics_and_does_not_update_them():
    bn = layers.BatchNorm(3)
    bn.forward(_batch((8, 3), seed=1, offset=2.0, dtype=np.float32))
    state = {k: v.copy() for k, v in bn.state_dict().items()}
    bn.eval()
    x = _batch((5, 3), seed=2, dtype=np.float32)
    y = bn.forward(x)
    for k, v in bn.state_dict().items():
        np.testing.assert_array_equal(v, state[k], err_msg=k)
    expected = (x - bn.running_mean) / np.sqrt(bn.running_var + 1e-5)
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
    # eval is per sample: one sample alone gives the same row
    np.testing.assert_allclose(bn.forward(x[2:3]), y[2:3], rtol=1e-6)
    bn.train()
    assert bn.training
    bn.forward(x)
    assert int(bn.num_batches_tracked) == 2


def test_running_buffers_start_at_zero_and_one_and_follow_momentum():
    bn = layers.BatchNorm(2, momentum=0.5, dtype=np.float64)
    np.testing.assert_array_equal(bn.running_mean, [0, 0])
    np.testing.assert_array_equal(bn.running_var, [1, 1])
    x = _batch((6, 2), seed=3, offset=4.0)
    bn.forward(x)
    np.testing.assert_allclose(bn.running_mean, 0.5 * x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, 0.5 + 0.5 * x.var(0, ddof=1), rtol=1e-12)


def test_save_and_load_roundtrip(tmp_path):
    bn = layers.BatchNorm(4, momentum=0.3)
    for seed in range(3):
        bn.forward(_batch((10, 4, 3, 3), seed=seed, offset=seed, dtype=np.float32))
    bn.gamma.data[...] = np.arange(1, 5)
    bn.beta.data[...] = -0.5
    path = tmp_path / "bn.npz"
    bn.save(path)
    with np.load(path) as f:
        assert sorted(f.files) == ["beta", "gamma", "num_batches_tracked", "running_mean",
                                   "running_var"]
    other = layers.BatchNorm(4).load(path)
    for k, v in bn.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[k], v, err_msg=k)
    assert other.running_mean.dtype == np.float32
    x = _batch((2, 4, 3, 3), seed=7, dtype=np.float32)
    np.testing.assert_array_equal(other.eval().forward(x), bn.eval().forward(x))
    with pytest.raises(ValueError, match="saved shape"):
        layers.BatchNorm(5).load(path)


def test_check_finite_raises_and_default_propagates():
    x = _batch((4, 3), seed=4, dtype=np.float32)
    for bad in (np.nan, np.inf):
        x_bad = x.copy()
        x_bad[1, 2] = bad
        with pytest.raises(ValueError, match="input contains NaN or Inf"):
            layers.BatchNorm(3, check_finite=True).forward(x_bad)
        with pytest.raises(ValueError, match="input contains NaN or Inf"):
            layers.BatchNorm(3, check_finite=True).eval().forward(x_bad)
        with np.errstate(invalid="ignore"):
            y = layers.BatchNorm(3).forward(x_bad)
        assert not np.isfinite(y[:, 2]).any() and np.isfinite(y[:, :2]).all()
    layers.BatchNorm(3, check_finite=True).forward(x)      # finite input passes


@pytest.mark.parametrize("shape", [(4, 2), (4, 3, 2), (4, 2, 3, 3), (4,)])
def test_wrong_input_shape(shape):
    with pytest.raises(ValueError, match=r"BatchNorm\(3.*expects 2-D or 4-D input with 3 "
                                         r"channels on axis 1"):
        layers.BatchNorm(3).forward(np.ones(shape, np.float32))


def test_backward_needs_a_training_forward():
    bn = layers.BatchNorm(3)
    with pytest.raises(RuntimeError, match="needs a training-mode forward"):
        bn.backward(np.ones((4, 3), np.float32))
    bn.eval().forward(np.ones((4, 3), np.float32))
    with pytest.raises(RuntimeError, match="needs a training-mode forward"):
        bn.backward(np.ones((4, 3), np.float32))


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(num_features=0), ValueError, "num_features must be a positive int"),
    (dict(num_features=2.0), ValueError, "num_features must be a positive int"),
    (dict(num_features=2, momentum=1.5), ValueError, r"momentum must be a number in \[0, 1\]"),
    (dict(num_features=2, eps=-1.0), ValueError, "eps must be a finite number >= 0"),
    (dict(num_features=2, dtype=np.int32), TypeError, "dtype must be float32 or float64"),
    (dict(num_features=2, axis="1"), ValueError, "axis must be an int"),
])
def test_constructor_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        layers.BatchNorm(**kwargs)


def test_axis_0_layer_on_the_batch_innermost_layout():
    x = _batch((6, 3, 4, 4), seed=5, offset=1.0, dtype=np.float32)
    dy = upstream(x.shape, seed=6).astype(np.float32)
    nchw, chwn = layers.BatchNorm(3), layers.BatchNorm(3, axis=0)
    y1, y0 = nchw.forward(x), chwn.forward(np.ascontiguousarray(x.transpose(1, 2, 3, 0)))
    np.testing.assert_allclose(y0, y1.transpose(1, 2, 3, 0), rtol=1e-5, atol=1e-5)
    dx1 = nchw.backward(dy)
    dx0 = chwn.backward(np.ascontiguousarray(dy.transpose(1, 2, 3, 0)))
    np.testing.assert_allclose(dx0, dx1.transpose(1, 2, 3, 0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(chwn.running_var, nchw.running_var, rtol=1e-6)
    np.testing.assert_allclose(chwn.gamma.grad, nchw.gamma.grad, rtol=1e-4, atol=1e-5)
    x2 = _batch((3, 3, 4, 4), seed=7, dtype=np.float32)
    np.testing.assert_allclose(chwn.eval().forward(np.ascontiguousarray(x2.transpose(1, 2, 3, 0))),
                               nchw.eval().forward(x2).transpose(1, 2, 3, 0), rtol=1e-5, atol=1e-5)


def test_float64_input_through_float32_parameters():
    bn = layers.BatchNorm(3)
    x = _batch((5, 3), seed=8)
    y = bn.forward(x)
    dx = bn.backward(upstream(x.shape, seed=9))
    assert y.dtype == dx.dtype == np.float64
    assert bn.gamma.grad.dtype == bn.running_mean.dtype == np.float32


def test_mlp_with_bn_trains_and_switches_modes():
    net = models.mlp([4, 8, 3], norm="bn", rng=0)
    bns = [m for m in net.layers if isinstance(m, layers.BatchNorm)]
    assert len(bns) == 1
    x = _batch((16, 4), seed=10, dtype=np.float32)
    out = net.forward(x)
    net.backward(upstream(out.shape, seed=11).astype(np.float32))
    assert bns[0].gamma.grad is not None and int(bns[0].num_batches_tracked) == 1
    net.eval()
    assert not bns[0].training
    net.forward(x)
    assert int(bns[0].num_batches_tracked) == 1
    assert any(k.endswith("running_var") for k in net.state_dict())


@pytest.mark.parametrize("momentum", [np.float32(0.1), np.float64(0.25), 0.5, 1])
def test_numpy_scalar_momentum_is_accepted_and_used(momentum):
    bn = layers.BatchNorm(3, momentum=momentum, dtype=np.float64)
    assert type(bn.momentum) is float and bn.momentum == pytest.approx(float(momentum))
    x = _batch((8, 3), seed=12, offset=1.0)
    bn.forward(x)
    m = float(momentum)
    np.testing.assert_allclose(bn.running_mean, m * x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(bn.running_var, (1 - m) + m * x.var(0, ddof=1), rtol=1e-6)
    assert "momentum=" in repr(bn)


@pytest.mark.parametrize("momentum", [np.float32(1.5), np.bool_(True), "0.1", None])
def test_bad_momentum_types_are_rejected(momentum):
    with pytest.raises(ValueError, match=r"momentum must be a number in \[0, 1\]"):
        layers.BatchNorm(3, momentum=momentum)
