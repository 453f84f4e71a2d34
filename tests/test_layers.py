"""Layers, loss, optimizer and initializers.

Oracles: central finite differences in float64 with a random upstream gradient
(never all ones), and PyTorch CPU in float64 in the same (training) mode. The
fast batch-innermost layers must agree with the readable NCHW reference layers.
"""
import math

import numpy as np
import pytest

from bnbook import init, layers
from bnbook.gradcheck import compare, numerical_grad, upstream
from bnbook.models import _lenet_fast as fast
from bnbook.layers.conv import col2im, im2col
from bnbook.losses import softmax_cross_entropy
from bnbook.optim import SGD

F64 = dict(dtype=np.float64)


def assert_close(name, ours, theirs, rtol=1e-7, atol=1e-9):
    result = compare(name, ours, theirs, rtol=rtol, atol=atol)
    assert result.ok, str(result)


def check_layer_fd(layer, x, seed=0, h=1e-6):
    """dx and every parameter gradient of ``layer`` against finite differences."""
    y = layer.forward(x)
    dy = upstream(y.shape, seed)
    dx = layer.backward(dy)
    grads = {name: p.grad.copy() for name, p in layer.named_parameters()}
    assert_close("dx", dx, numerical_grad(layer.forward, x, dy, h), rtol=1e-6, atol=1e-8)
    for name, p in layer.named_parameters():
        def f(w, p=p):
            saved = p.data.copy()
            p.data[...] = w
            out = layer.forward(x)
            p.data[...] = saved
            return out
        assert_close(name, grads[name], numerical_grad(f, p.data.copy(), dy, h),
                     rtol=1e-6, atol=1e-8)


def torch_grads(torch, fn, x, params, dy):
    """Output, dx and parameter gradients of a torch function in float64."""
    xt = torch.tensor(x, requires_grad=True)
    pt = [torch.tensor(p, requires_grad=True) for p in params]
    yt = fn(xt, *pt)
    yt.backward(torch.tensor(dy))
    return yt.detach().numpy(), xt.grad.numpy(), [p.grad.numpy() for p in pt]


# --------------------------------------------------------------- basic layers
@pytest.mark.parametrize("bias", [True, False])
def test_linear_finite_differences(bias):
    layer = layers.Linear(5, 3, bias=bias, rng=0, **F64)
    if bias:
        layer.bias.data[...] = np.random.default_rng(1).standard_normal(3)
    check_layer_fd(layer, np.random.default_rng(2).standard_normal((4, 5)))


def test_linear_matches_torch(torch):
    layer = layers.Linear(6, 4, rng=0, **F64)
    layer.bias.data[...] = np.random.default_rng(1).standard_normal(4)
    x = np.random.default_rng(2).standard_normal((5, 6))
    y = layer.forward(x)
    dy = upstream(y.shape, 3)
    dx = layer.backward(dy)
    yt, dxt, (dwt, dbt) = torch_grads(torch, torch.nn.functional.linear, x,
                                      [layer.weight.data, layer.bias.data], dy)
    for name, a, b in [("y", y, yt), ("dx", dx, dxt), ("dW", layer.weight.grad, dwt),
                       ("db", layer.bias.grad, dbt)]:
        assert_close(name, a, b, rtol=1e-12, atol=1e-12)


def test_linear_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        layers.Linear(5, 3).forward(np.zeros((2, 4), np.float32))


@pytest.mark.parametrize("name, torch_name", [("Tanh", "tanh"), ("ReLU", "relu"),
                                              ("Sigmoid", "sigmoid"), ("Identity", None)])
def test_activations(name, torch_name, torch):
    x = np.random.default_rng(0).standard_normal((4, 3, 2))
    x[np.abs(x) < 1e-3] = 0.1                 # ReLU's kink is not differentiable
    layer = getattr(layers, name)()
    check_layer_fd(layer, x)
    y = layer.forward(x)
    dy = upstream(y.shape, 1)
    dx = layer.backward(dy)
    fn = getattr(torch, torch_name) if torch_name else (lambda t: t * 1)
    yt, dxt, _ = torch_grads(torch, fn, x, [], dy)
    assert_close("y", y, yt, rtol=1e-12, atol=1e-15)
    assert_close("dx", dx, dxt, rtol=1e-12, atol=1e-15)


def test_tanh_cached_matches_tanh():
    x = np.random.default_rng(0).standard_normal((3, 4, 5))
    check_layer_fd(fast.TanhCached(), x)
    ref, ours = layers.Tanh(), fast.TanhCached()
    dy = upstream(x.shape, 1)
    assert_close("y", ours.forward(x), ref.forward(x), rtol=0, atol=0)
    assert_close("dx", ours.backward(dy), ref.backward(dy), rtol=1e-15, atol=1e-16)


def test_flatten_round_trip():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    layer = layers.Flatten()
    assert layer.forward(x).shape == (2, 60)
    check_layer_fd(layer, x)


# ------------------------------------------------------------------ im2col, conv
def test_im2col_col2im_are_adjoint():
    """<im2col(x), c> = <x, col2im(c)>: col2im is exactly the transpose of im2col."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6))
    cols = im2col(x, (3, 2), stride=(2, 1), padding=(1, 0))
    c = rng.standard_normal(cols.shape)
    lhs = np.sum(cols * c)
    rhs = np.sum(x * col2im(c, x.shape, (3, 2), stride=(2, 1), padding=(1, 0)))
    assert abs(lhs - rhs) < 1e-12 * max(1.0, abs(lhs))


CONV_CASES = [  # in, out, kernel, stride, padding, H, W
    (1, 2, 3, 1, 0, 6, 6),
    (2, 3, (3, 2), (2, 1), (1, 0), 7, 6),
    (3, 2, 5, 1, 2, 8, 8),
    (2, 2, 4, 2, 1, 9, 8),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_finite_differences(case):
    c_in, c_out, k, s, p, h, w = case
    layer = layers.Conv2d(c_in, c_out, k, stride=s, padding=p, rng=0, **F64)
    layer.bias.data[...] = np.random.default_rng(1).standard_normal(c_out)
    check_layer_fd(layer, np.random.default_rng(2).standard_normal((2, c_in, h, w)))


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_matches_torch(case, bias, torch):
    c_in, c_out, k, s, p, h, w = case
    layer = layers.Conv2d(c_in, c_out, k, stride=s, padding=p, bias=bias, rng=0, **F64)
    x = np.random.default_rng(2).standard_normal((3, c_in, h, w))
    params = [layer.weight.data]
    if bias:
        layer.bias.data[...] = np.random.default_rng(1).standard_normal(c_out)
        params.append(layer.bias.data)
    y = layer.forward(x)
    dy = upstream(y.shape, 3)
    dx = layer.backward(dy)

    def conv(xt, wt, bt=None):
        return torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=p)
    yt, dxt, pgrads = torch_grads(torch, conv, x, params, dy)
    assert_close("y", y, yt, rtol=1e-11, atol=1e-12)
    assert_close("dx", dx, dxt, rtol=1e-11, atol=1e-12)
    assert_close("dW", layer.weight.grad, pgrads[0], rtol=1e-11, atol=1e-12)
    if bias:
        assert_close("db", layer.bias.grad, pgrads[1], rtol=1e-11, atol=1e-12)


def test_conv2d_errors():
    layer = layers.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match=r"3 input channels"):
        layer.forward(np.zeros((1, 2, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        layer.forward(np.zeros((3, 5, 5), np.float32))
    with pytest.raises(TypeError, match="floating-point"):
        layer.forward(np.zeros((1, 3, 5, 5), np.uint8))
    with pytest.raises(ValueError, match="does not fit"):
        layer.forward(np.zeros((1, 3, 2, 5), np.float32))
    for bad in (2.5, (3, 3, 3), True, "3"):
        with pytest.raises(TypeError, match="kernel_size must be an int or a pair"):
            layers.Conv2d(3, 4, bad)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        layers.Conv2d(3, 4, 3, stride=0)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        layers.Conv2d(3, 4, 3, padding=-1)
    with pytest.raises(ValueError, match="channel counts"):
        layers.Conv2d(0, 4, 3)


# ------------------------------------------------------------------------ pools
POOL_CASES = [(2, None, 6, 6), (2, None, 7, 5), (3, 2, 7, 8), (2, 1, 4, 5)]


@pytest.mark.parametrize("kind", ["AvgPool2d", "MaxPool2d"])
@pytest.mark.parametrize("case", POOL_CASES)
def test_pools(kind, case, torch):
    k, s, h, w = case
    layer = getattr(layers, kind)(k, stride=s)
    x = np.random.default_rng(0).standard_normal((2, 3, h, w))
    check_layer_fd(layer, x)
    y = layer.forward(x)
    dy = upstream(y.shape, 1)
    dx = layer.backward(dy)
    fn = {"AvgPool2d": torch.nn.functional.avg_pool2d,
          "MaxPool2d": torch.nn.functional.max_pool2d}[kind]
    yt, dxt, _ = torch_grads(torch, lambda t: fn(t, k, stride=s or k), x, [], dy)
    assert_close("y", y, yt, rtol=1e-12, atol=1e-14)
    assert_close("dx", dx, dxt, rtol=1e-12, atol=1e-14)


def test_maxpool_tie_goes_to_first_in_window():
    layer = layers.MaxPool2d(2)
    layer.forward(np.ones((1, 1, 2, 2)))
    dx = layer.backward(np.full((1, 1, 1, 1), 3.0))
    assert np.array_equal(dx[0, 0], [[3.0, 0.0], [0.0, 0.0]])


def test_pool_errors():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        layers.AvgPool2d(2).forward(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="does not fit"):
        layers.MaxPool2d(3).forward(np.zeros((1, 1, 2, 2), np.float32))
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):
        layers.AvgPool2d(0)


# ------------------------------------------- fast (C, H, W, N) layers vs reference
def chwn(a):
    return np.ascontiguousarray(a.transpose(1, 2, 3, 0))


@pytest.mark.parametrize("c_in, c_out, k, h, bias", [(1, 6, 5, 12, True), (6, 4, 3, 7, False),
                                                     (3, 5, 4, 4, True)])
def test_fast_conv_matches_reference(c_in, c_out, k, h, bias):
    ref = layers.Conv2d(c_in, c_out, k, bias=bias, rng=0, **F64)
    ours = fast.ConvCHWN(c_in, c_out, k, bias=bias, rng=1, **F64)
    ours.weight.data[...] = ref.weight.data
    if bias:
        ref.bias.data[...] = ours.bias.data[...] = np.arange(c_out) / 7.0
    x = np.random.default_rng(2).standard_normal((5, c_in, h, h + 1))
    y_ref = ref.forward(x)
    dy = upstream(y_ref.shape, 3)
    dx_ref = ref.backward(dy)
    y = ours.forward(chwn(x))
    dx = ours.backward(chwn(dy))
    assert_close("y", y, chwn(y_ref), rtol=1e-12, atol=1e-13)
    assert_close("dx", dx, chwn(dx_ref), rtol=1e-12, atol=1e-13)
    assert_close("dW", ours.weight.grad, ref.weight.grad, rtol=1e-12, atol=1e-13)
    if bias:
        assert_close("db", ours.bias.grad, ref.bias.grad, rtol=1e-12, atol=1e-13)
    ours.input_grad = False
    ours.forward(chwn(x))
    assert ours.backward(chwn(dy)) is None
    assert_close("dW", ours.weight.grad, ref.weight.grad, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("k, h, w", [(2, 6, 8), (2, 7, 5), (3, 9, 7), (1, 3, 3)])
def test_fast_avgpool_matches_reference(k, h, w):
    ref, ours = layers.AvgPool2d(k), fast.AvgPoolCHWN(k)
    x = np.random.default_rng(0).standard_normal((3, 2, h, w))
    y_ref = ref.forward(x)
    dy = upstream(y_ref.shape, 1)
    assert_close("y", ours.forward(chwn(x)), chwn(y_ref), rtol=1e-14, atol=1e-15)
    assert_close("dx", ours.backward(chwn(dy)), chwn(ref.backward(dy)), rtol=1e-14,
                 atol=1e-15)


def test_fast_linear_and_flatten_match_reference():
    ref = layers.Linear(12, 4, rng=0, **F64)
    ref.bias.data[...] = np.arange(4.0)
    ours = fast.LinearDN(12, 4, rng=1, **F64)
    ours.weight.data[...], ours.bias.data[...] = ref.weight.data, ref.bias.data
    flat, ref_flat = fast.FlattenCHWN(), layers.Flatten()
    x = np.random.default_rng(2).standard_normal((5, 3, 2, 2))
    y_ref = ref.forward(ref_flat.forward(x))
    dy = upstream(y_ref.shape, 3)
    dx_ref = ref_flat.backward(ref.backward(dy))
    y = ours.forward(flat.forward(chwn(x)))
    dx = flat.backward(ours.backward(np.ascontiguousarray(dy.T)))
    assert_close("y", y.T, y_ref, rtol=1e-13, atol=1e-14)
    assert_close("dx", dx, chwn(dx_ref), rtol=1e-13, atol=1e-14)
    assert_close("dW", ours.weight.grad, ref.weight.grad, rtol=1e-13, atol=1e-14)
    assert_close("db", ours.bias.grad, ref.bias.grad, rtol=1e-13, atol=1e-14)


def test_fast_layers_reject_wrong_layout():
    with pytest.raises(ValueError, match=r"\(C, H, W, N\) with 3 on axis 0"):
        fast.ConvCHWN(3, 4, 3).forward(np.zeros((5, 3, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"\(D, N\) with 12 on axis 0"):
        fast.LinearDN(12, 4).forward(np.zeros((5, 12), np.float32))
    with pytest.raises(ValueError, match=r"\(C, H, W, N\)"):
        fast.AvgPoolCHWN(2).forward(np.zeros((4, 4), np.float32))


# ------------------------------------------------------------------------- loss
def test_softmax_cross_entropy_gradient_and_torch(torch):
    rng = np.random.default_rng(0)
    logits = 3 * rng.standard_normal((6, 5))
    labels = rng.integers(0, 5, 6)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    num = numerical_grad(lambda z: np.array(softmax_cross_entropy(z, labels)[0]), logits,
                         np.array(1.0))
    assert_close("dlogits (FD)", dlogits, num, rtol=1e-6, atol=1e-9)
    zt = torch.tensor(logits, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(zt, torch.tensor(labels))
    lt.backward()
    assert abs(loss - lt.item()) < 1e-12
    assert_close("dlogits (torch)", dlogits, zt.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_softmax_cross_entropy_large_logits_stay_finite():
    loss, d = softmax_cross_entropy(np.array([[1000.0, 0.0], [0.0, -1000.0]]),
                                    np.array([1, 1]))
    assert np.isfinite(loss) and np.all(np.isfinite(d))
    assert abs(loss - 1000.0 / 2 - 1000.0 / 2) < 1e-9


def test_softmax_cross_entropy_errors():
    z = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        softmax_cross_entropy(np.zeros(4), np.zeros(4, int))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        softmax_cross_entropy(z, np.zeros(2, int))
    with pytest.raises(TypeError, match="integers"):
        softmax_cross_entropy(z, np.zeros(3))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        softmax_cross_entropy(z, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        softmax_cross_entropy(z, np.array([0, -1, 1]))


# ---------------------------------------------------------------------- SGD
@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 0.0), (0.0, 0.01),
                                                    (0.8, 0.05)])
def test_sgd_matches_torch(momentum, weight_decay, torch):
    rng = np.random.default_rng(0)
    w0 = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    grads = [[rng.standard_normal(w.shape) for w in w0] for _ in range(4)]
    params = [layers.Parameter(w.copy()) for w in w0]
    opt = SGD(params, lr=0.1, momentum=momentum, weight_decay=weight_decay)
    tparams = [torch.tensor(w, requires_grad=True) for w in w0]
    topt = torch.optim.SGD(tparams, lr=0.1, momentum=momentum, weight_decay=weight_decay)
    for step in grads:
        for p, t, g in zip(params, tparams, step):
            p.grad = g.copy()
            t.grad = torch.tensor(g)
        opt.step()
        topt.step()
    for i, (p, t) in enumerate(zip(params, tparams)):
        assert_close(f"w{i}", p.data, t.detach().numpy(), rtol=1e-13, atol=1e-14)


def test_sgd_skips_parameters_without_grad():
    p, q = layers.Parameter(np.ones(2)), layers.Parameter(np.ones(2))
    p.grad = np.array([1.0, 2.0])
    opt = SGD([p, q], lr=0.5)
    opt.step()
    assert np.array_equal(p.data, [0.5, 0.0]) and np.array_equal(q.data, [1.0, 1.0])


@pytest.mark.parametrize("kwargs, match", [(dict(lr=0), "lr must be positive"),
                                           (dict(lr=0.1, momentum=1.0), "momentum"),
                                           (dict(lr=0.1, momentum=-0.1), "momentum"),
                                           (dict(lr=0.1, weight_decay=-1), "weight_decay")])
def test_sgd_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SGD([], **kwargs)


# ------------------------------------------------------------------ initializers
def test_fans_match_torch(torch):
    for shape in [(6, 1, 5, 5), (120, 16, 5, 5), (84, 120), (3, 4, 2, 3)]:
        expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
        assert init.fans(shape) == expected


@pytest.mark.parametrize("name, variance", [
    ("lecun", lambda fi, fo: 1 / fi),
    ("lecun_uniform", lambda fi, fo: 1 / fi),
    ("glorot", lambda fi, fo: 2 / (fi + fo)),
    ("kaiming", lambda fi, fo: 2 / fi),
    ("pytorch", lambda fi, fo: 1 / (3 * fi)),
])
def test_initializer_variance(name, variance):
    shape = (200, 50, 3, 3)                          # fan_in 450, fan_out 1800
    fan_in, fan_out = init.fans(shape)
    w = init.get(name)(shape, np.random.default_rng(0), np.float64)
    assert w.shape == shape and w.dtype == np.float64
    # 90,000 draws: the sample variance is within a few percent of the target
    assert abs(w.var() / variance(fan_in, fan_out) - 1) < 0.03
    assert abs(w.mean()) < 4 * math.sqrt(variance(fan_in, fan_out) / w.size)


def test_uniform_initializers_respect_their_bounds():
    shape = (30, 20)
    a = math.sqrt(6 / 50)
    w = init.glorot_uniform(shape, np.random.default_rng(0))
    assert w.dtype == np.float32 and np.abs(w).max() <= a and np.abs(w).max() > 0.9 * a
    w = init.lecun_uniform(shape, np.random.default_rng(0))
    assert np.abs(w).max() <= math.sqrt(3 / 20)


def test_pytorch_initializer_matches_torch_default_range(torch):
    layer = torch.nn.Conv2d(16, 120, 5)
    bound = 1 / math.sqrt(16 * 25)
    assert float(layer.weight.detach().abs().max()) <= bound
    w = init.get("pytorch")((120, 16, 5, 5), np.random.default_rng(0))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound


def test_initializer_errors():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.fans((5,))
    with pytest.raises(ValueError, match="unknown initializer 'xavier'"):
        init.get("xavier")
