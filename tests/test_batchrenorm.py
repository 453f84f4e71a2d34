"""bnbook.layers.BatchRenorm (Ioffe, 2017): BN exactly at r_max = 1, d_max = 0;
the eval-mode output when unclipped; clipping; the backward with r and d held
constant against finite differences; argument checks; state dicts."""
import numpy as np
import pytest

from bnbook import layers
from bnbook.gradcheck import upstream


def _batch(shape, seed, offset=0.0, scale=1.0, dtype=np.float64):
    gen = np.random.default_rng(seed)
    return (offset + scale * gen.standard_normal(shape)).astype(dtype)


def _pair(C, dtype, **renorm):
    """A BatchNorm and a BatchRenorm with the same random gamma and beta."""
    gen = np.random.default_rng(1)
    bn = layers.BatchNorm(C, momentum=0.2, dtype=dtype)
    brn = layers.BatchRenorm(C, momentum=0.2, dtype=dtype, **renorm)
    for layer in (bn, brn):
        layer.gamma.data[...] = 1 + gen.standard_normal(C) if layer is bn else bn.gamma.data
        layer.beta.data[...] = gen.standard_normal(C) if layer is bn else bn.beta.data
    return bn, brn


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5, 5)])
def test_r_max_1_d_max_0_is_batchnorm_exactly(shape, dtype):
    bn, brn = _pair(shape[1], dtype, r_max=1.0, d_max=0.0)
    for step in range(4):
        x = _batch(shape, seed=step, offset=2.0 * step, scale=1 + step, dtype=dtype)
        dy = upstream(shape, seed=10 + step).astype(dtype)
        np.testing.assert_array_equal(brn.forward(x), bn.forward(x))
        np.testing.assert_array_equal(brn.backward(dy), bn.backward(dy))
        np.testing.assert_array_equal(brn.gamma.grad, bn.gamma.grad)
        np.testing.assert_array_equal(brn.beta.grad, bn.beta.grad)
        np.testing.assert_array_equal(brn.running_mean, bn.running_mean)
        np.testing.assert_array_equal(brn.running_var, bn.running_var)
    assert int(brn.num_batches_tracked) == 4
    brn.eval(), bn.eval()
    x = _batch(shape, seed=9, dtype=dtype)
    np.testing.assert_array_equal(brn.forward(x), bn.forward(x))


@pytest.mark.parametrize("shape", [(16, 4), (4, 4, 3, 3)])
def test_unclipped_training_output_is_the_eval_output(shape):
    """With wide limits y = gamma (x - running_mean) / sigma + beta, the eval map
    of the buffers *before* the update: the statistics of the batch cancel."""
    _, brn = _pair(shape[1], np.float64, r_max=1e6, d_max=1e6)
    brn.running_mean[...] = [0.5, -1.0, 2.0, 0.0]
    brn.running_var[...] = [0.3, 2.0, 1.0, 5.0]
    before = brn.state_dict()
    x = _batch(shape, seed=3, offset=1.0, scale=2.0)
    y_train = brn.forward(x)
    ref = layers.BatchRenorm(shape[1], dtype=np.float64)
    ref.load_state_dict(before)
    ref.eval()
    np.testing.assert_allclose(y_train, ref.forward(x), rtol=1e-12, atol=1e-12)
    # and it is not plain BN's output: the correction did something
    assert np.max(np.abs(brn.r - 1)) > 0.1 and np.max(np.abs(brn.d)) > 0.1


def test_corrections_are_clipped():
    brn = layers.BatchRenorm(2, r_max=3.0, d_max=5.0, dtype=np.float64)
    brn.running_mean[...] = [0.0, 0.0]
    brn.running_var[...] = [1.0, 1.0]
    x = np.zeros((32, 2))
    x[:, 0] = np.where(np.arange(32) % 2, 20.0, -20.0) + 100.0   # sigma_B = 20, mu_B = 100
    x[:, 1] = np.where(np.arange(32) % 2, 0.01, -0.01) - 2.0      # sigma_B ~ 0.01, mu_B = -2
    brn.forward(x)
    np.testing.assert_allclose(brn.r, [3.0, 1 / 3.0])
    sigma = np.sqrt(1.0 + brn.eps)
    np.testing.assert_allclose(brn.d, [5.0, -2.0 / sigma])


def _renorm_output(x, gamma, beta, r, d, eps):
    """y of the training forward with r and d given (the backward's constants)."""
    mu = x.mean(axis=0)
    sigma_b = np.sqrt(x.var(axis=0) + eps)
    return gamma * (r * (x - mu) / sigma_b + d) + beta


def test_backward_matches_finite_differences_with_r_and_d_fixed():
    gen = np.random.default_rng(5)
    brn = layers.BatchRenorm(3, r_max=1.5, d_max=0.5, dtype=np.float64)
    brn.running_mean[...] = [0.2, -0.3, 0.1]
    brn.running_var[...] = [1.5, 4.0, 1.0]
    brn.gamma.data[...] = [1.5, -0.7, 0.9]
    brn.beta.data[...] = [0.1, 0.2, -0.4]
    x, dy = gen.standard_normal((6, 3)) * [1.0, 1.0, 3.0], gen.standard_normal((6, 3))
    y = brn.forward(x)
    r, d = brn.r.copy(), brn.d.copy()
    assert np.any(r == 1.5) and np.any((r > 1 / 1.5) & (r < 1.5))   # clipped and not
    g, b = brn.gamma.data.copy(), brn.beta.data.copy()
    np.testing.assert_allclose(y, _renorm_output(x, g, b, r, d, brn.eps), rtol=1e-12)
    dx = brn.backward(dy)

    def loss(args):
        return np.sum(dy * _renorm_output(*args, r, d, brn.eps))

    h = 1e-6
    for k, ours in enumerate((dx, brn.gamma.grad, brn.beta.grad)):
        num = np.zeros_like(ours)
        for i in np.ndindex(ours.shape):
            plus, minus = [x, g, b], [x, g, b]
            plus[k], minus[k] = plus[k].copy(), minus[k].copy()
            plus[k][i] += h
            minus[k][i] -= h
            num[i] = (loss(plus) - loss(minus)) / (2 * h)
        np.testing.assert_allclose(ours, num, rtol=1e-6, atol=1e-8,
                                   err_msg=("dx", "dgamma", "dbeta")[k])

def test_gradient_differs_from_batchnorm_when_corrections_bite():
    bn, brn = _pair(3, np.float64, r_max=2.0, d_max=1.0)
    for layer in (bn, brn):
        layer.running_var[...] = 4.0
        layer.running_mean[...] = 1.0
    x, dy = _batch((8, 3), seed=2), upstream((8, 3), seed=3)
    bn.forward(x), brn.forward(x)
    assert not np.allclose(brn.backward(dy), bn.backward(dy))
    np.testing.assert_allclose(brn.backward(dy), brn.r * bn.backward(dy), rtol=1e-12)


@pytest.mark.parametrize("kw", [{"r_max": 0.5}, {"r_max": np.nan}, {"r_max": "3"},
                                {"r_max": True}, {"d_max": -1.0}, {"d_max": np.inf}])
def test_bad_limits_are_rejected(kw):
    name = next(iter(kw))
    with pytest.raises(ValueError, match=name):
        layers.BatchRenorm(3, **kw)
    layer = layers.BatchRenorm(3)
    with pytest.raises(ValueError, match=name):
        setattr(layer, name, kw[name])


def test_state_dict_is_batchnorms_and_repr():
    bn = layers.BatchNorm(3)
    bn.forward(_batch((5, 3), seed=0, dtype=np.float32))
    brn = layers.BatchRenorm(3)
    brn.load_state_dict(bn.state_dict())
    assert set(brn.state_dict()) == set(bn.state_dict())
    np.testing.assert_array_equal(brn.running_var, bn.running_var)
    assert repr(brn) == "BatchRenorm(3, eps=1e-05, momentum=0.1, r_max=3, d_max=5)"
    with pytest.raises(RuntimeError, match="backward"):
        layers.BatchRenorm(3).backward(np.ones((2, 3)))
    with pytest.raises(ValueError, match="3 channels"):
        brn.forward(np.ones((2, 4)))
