"""LeNet-5: the fast batch-innermost model against PyTorch, the NCHW reference layers
and finite differences; modes, state, activations, errors, and the benchmark."""
import numpy as np
import pytest

from bnbook import layers
from bnbook.gradcheck import compare, upstream
from bnbook.losses import softmax_cross_entropy
from bnbook.models import lenet
from bnbook.models.lenet import reference_lenet
from bnbook.optim import SGD

F64 = dict(dtype=np.float64)
VARIANTS = [(False, "before", "tanh"), (True, "before", "tanh"), (True, "after", "tanh"),
            (True, "before", "relu"), (False, "before", "sigmoid")]


def assert_close(name, ours, theirs, rtol=1e-9, atol=1e-11):
    result = compare(name, ours, theirs, rtol=rtol, atol=atol)
    assert result.ok, str(result)


def images(n, seed=0):
    return np.random.default_rng(seed).random((n, 1, 28, 28))


def perturb(model, seed=1):
    """Move every parameter off its initial value (BN's gamma = 1, beta = 0, biases = 0)."""
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.data += 0.1 * rng.standard_normal(p.shape).astype(p.data.dtype)


@pytest.mark.parametrize("bn, position, activation", VARIANTS)
def test_matches_nchw_reference_layers(bn, position, activation):
    model = lenet(bn=bn, position=position, activation=activation, rng=0, **F64)
    perturb(model)
    ref = reference_lenet(model)
    model.input_grad = True
    x = images(6)
    y, y_ref = model.forward(x), ref.forward(x)
    dy = upstream(y.shape, 2)
    dx, dx_ref = model.backward(dy), ref.backward(dy)
    assert_close("logits", y, y_ref)
    assert_close("dx", dx, dx_ref)
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        assert_close(name, p.grad, q.grad)
    model.eval(), ref.eval()                       # running statistics, same updates
    assert_close("eval logits", model.forward(x), ref.forward(x))


@pytest.mark.parametrize("bn, position, activation", VARIANTS)
def test_matches_torch_float64(bn, position, activation, torch):
    from bnbook.bench.lenet import torch_lenet
    model = lenet(bn=bn, position=position, activation=activation, rng=0, **F64)
    perturb(model)
    net = torch_lenet(model, torch)
    model.input_grad = True
    x = images(5)
    labels = np.array([3, 1, 4, 1, 5])
    loss, dlogits = softmax_cross_entropy(model.forward(x), labels)
    dx = model.backward(dlogits)
    xt = torch.tensor(x, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(net(xt), torch.tensor(labels))
    lt.backward()
    assert abs(loss - lt.item()) < 1e-12
    assert_close("dx", dx, xt.grad.numpy())
    for (name, p), q in zip(model.named_parameters(), net.parameters()):
        assert_close(name, p.grad, q.grad.numpy())
    if bn:                                          # running statistics as PyTorch's
        bns = [m for m in net if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        for i, m in enumerate(bns, start=1):
            ours = getattr(model, f"bn{i}")
            assert_close(f"bn{i}.running_mean", ours.running_mean, m.running_mean.numpy())
            assert_close(f"bn{i}.running_var", ours.running_var, m.running_var.numpy())
        model.eval(), net.eval()
        assert_close("eval logits", model.forward(x), net(xt).detach().numpy())


@pytest.mark.parametrize("bn", [False, True])
def test_directional_finite_difference(bn):
    """d/dt L(theta + t v) at t = 0 equals <grad L, v> for a random direction v."""
    model = lenet(bn=bn, rng=0, **F64)
    perturb(model)
    x, labels = images(4), np.array([0, 7, 2, 9])
    params = model.parameters()
    v = [np.random.default_rng(5).standard_normal(p.shape) for p in params]

    def loss_at(t):
        saved = [p.data.copy() for p in params]
        for p, d in zip(params, v):
            p.data += t * d
        value = softmax_cross_entropy(model.forward(x), labels)[0]
        for p, s in zip(params, saved):
            p.data[...] = s
        return value
    h = 1e-6
    numeric = (loss_at(h) - loss_at(-h)) / (2 * h)
    loss, dlogits = softmax_cross_entropy(model.forward(x), labels)
    model.backward(dlogits)
    analytic = sum(float(np.sum(p.grad * d)) for p, d in zip(params, v))
    assert abs(numeric - analytic) < 1e-6 * max(1.0, abs(analytic)), (numeric, analytic)


def test_reference_copies_weights_buffers_and_mode():
    model = lenet(bn=True, rng=0, **F64)
    x = images(4)
    model.forward(x)                               # running buffers move off their start
    model.eval()
    ref = reference_lenet(model)
    assert not ref.training and not ref[1].training
    assert_close("eval logits", ref.forward(x), model.forward(x))
    ref[0].weight.data[...] = 0                    # a copy: the model keeps its weights
    assert np.any(model.conv1.weight.data != 0)
    with pytest.raises(TypeError, match="expected a LeNet5"):
        reference_lenet(layers.Sequential())


@pytest.mark.parametrize("bn, position, activation", VARIANTS)
def test_one_specification_behind_all_three_builds(bn, position, activation, torch):
    from bnbook.bench.lenet import torch_lenet
    from bnbook.models.lenet import lenet_spec
    model = lenet(bn=bn, position=position, activation=activation, rng=0)
    spec = lenet_spec(bn, position, activation)
    assert model.spec == spec and [n for n, _, _ in spec] == model._order
    ref, net = reference_lenet(model), torch_lenet(model, torch)
    assert len(ref) == len(net) == len(spec)
    kinds = {"conv": (layers.Conv2d, torch.nn.Conv2d), "linear": (layers.Linear, torch.nn.Linear),
             "pool": (layers.AvgPool2d, torch.nn.AvgPool2d),
             "bn2d": (layers.BatchNorm, torch.nn.BatchNorm2d),
             "bn1d": (layers.BatchNorm, torch.nn.BatchNorm1d),
             "flatten": (layers.Flatten, torch.nn.Flatten),
             activation: ({"tanh": layers.Tanh, "relu": layers.ReLU,
                           "sigmoid": layers.Sigmoid}[activation],
                          {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU,
                           "sigmoid": torch.nn.Sigmoid}[activation])}
    for (name, kind, kwargs), a, b in zip(spec, ref.layers, net):
        assert isinstance(a, kinds[kind][0]) and isinstance(b, kinds[kind][1]), name
    assert [k for _, k, _ in spec].count("conv") == 3 and spec[0][2]["padding"] == 2
    with pytest.raises(ValueError, match="position must be"):
        lenet_spec(True, "middle")


def test_float32_default_and_shapes():
    model = lenet(rng=0)
    x = images(3).astype(np.float32)
    logits = model.forward(x)
    assert logits.shape == (3, 10) and logits.dtype == np.float32
    assert all(p.data.dtype == np.float32 for p in model.parameters())
    assert model.backward(np.ones((3, 10), np.float32) / 3) is None  # no input gradient
    assert all(p.grad.shape == p.shape and p.grad.dtype == np.float32
               for p in model.parameters())
    shapes = {n: p.shape for n, p in model.named_parameters()}
    assert shapes == {"conv1.weight": (6, 1, 5, 5), "conv1.bias": (6,),
                      "conv2.weight": (16, 6, 5, 5), "conv2.bias": (16,),
                      "conv3.weight": (120, 16, 5, 5), "conv3.bias": (120,),
                      "fc1.weight": (84, 120), "fc1.bias": (84,),
                      "fc2.weight": (10, 84), "fc2.bias": (10,)}
    assert sum(int(np.prod(s)) for s in shapes.values()) == 61706


def test_bias_dropped_only_before_bn():
    names = [n for n, _ in lenet(bn=True, position="before").named_parameters()]
    assert "conv1.bias" not in names and "fc1.bias" not in names and "fc2.bias" in names
    names = [n for n, _ in lenet(bn=True, position="after").named_parameters()]
    assert "conv1.bias" in names and "bn1.gamma" in names


def test_same_seed_same_model():
    a, b = lenet(bn=True, rng=3), lenet(bn=True, rng=3)
    for p, q in zip(a.parameters(), b.parameters()):
        assert np.array_equal(p.data, q.data)
    assert not np.array_equal(lenet(rng=4).conv1.weight.data, a.conv1.weight.data)


def test_eval_mode_uses_running_statistics():
    model = lenet(bn=True, rng=0, **F64)
    x = images(8)
    model.forward(x)                               # one training step's statistics
    model.eval()
    assert not model.bn1.training
    full = model.forward(x)
    alone = model.forward(x[:1])                   # no batch dependence in eval mode
    assert_close("eval sample", alone, full[:1], rtol=1e-12, atol=1e-13)
    model.train()
    assert not np.allclose(model.forward(x[:2])[:1], model.forward(x[:1].repeat(2, 0))[:1])


def test_state_dict_save_load_round_trip(tmp_path):
    model = lenet(bn=True, rng=0)
    opt = SGD(model.parameters(), lr=0.1)
    for seed in range(3):                          # move weights and running buffers
        x = images(8, seed).astype(np.float32)
        _, d = softmax_cross_entropy(model.forward(x), np.arange(8) % 10)
        model.backward(d)
        opt.step()
    model.save(tmp_path / "lenet.npz")
    other = lenet(bn=True, rng=1).load(tmp_path / "lenet.npz")
    model.eval(), other.eval()
    x = images(4, 9).astype(np.float32)
    assert np.array_equal(model.forward(x), other.forward(x))
    with pytest.raises(ValueError, match="state keys do not match"):
        lenet(bn=False).load(tmp_path / "lenet.npz")


def test_activations_are_copies_in_pytorch_layout():
    model = lenet(bn=True, rng=0, **F64)
    with pytest.raises(RuntimeError, match="call forward first"):
        model.activations()
    model.forward(images(3))
    post = model.activations()
    assert list(post) == ["conv1", "conv2", "conv3", "fc1"]
    assert {k: v.shape for k, v in post.items()} == {
        "conv1": (3, 6, 28, 28), "conv2": (3, 16, 10, 10), "conv3": (3, 120), "fc1": (3, 84)}
    assert all(np.abs(v).max() <= 1 for v in post.values())          # tanh outputs
    post["conv1"][...] = 7                         # copies: the model is unaffected
    assert not np.any(model.activations()["conv1"] == 7)


@pytest.mark.parametrize("bn", [False, True])
def test_activations_match_reference_layout(bn):
    model = lenet(bn=bn, rng=0, **F64)
    ref = reference_lenet(model)
    x = images(2)
    model.forward(x)
    h = x
    outputs = []
    for layer in ref.layers:
        h = layer.forward(h)
        if isinstance(layer, layers.Tanh):
            outputs.append(h)
    for (name, ours), theirs in zip(model.activations().items(), outputs):
        assert_close(name, ours, theirs.reshape(ours.shape))


def test_training_reduces_loss():
    """A few SGD steps on one fixed batch must fit it better (both variants)."""
    x = images(32).astype(np.float32)
    labels = np.arange(32) % 10
    for bn in (False, True):
        model = lenet(bn=bn, rng=0)
        opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
        losses = []
        for _ in range(30):
            loss, d = softmax_cross_entropy(model.forward(x), labels)
            model.backward(d)
            opt.step()
            losses.append(loss)
        assert losses[-1] < 0.5 * losses[0], (bn, losses[0], losses[-1])


@pytest.mark.parametrize("x, err, match", [
    (np.zeros((2, 28, 28), np.float32), ValueError, r"\(N, 1, 28, 28\)"),
    (np.zeros((2, 1, 32, 32), np.float32), ValueError, r"\(N, 1, 28, 28\)"),
    (np.zeros((2, 3, 28, 28), np.float32), ValueError, r"\(N, 1, 28, 28\)"),
    (np.zeros((2, 1, 28, 28), np.uint8), TypeError, "floating-point"),
    (np.zeros((0, 1, 28, 28), np.float32), ValueError, "at least one image"),
    ([[0.0]], ValueError, r"\(N, 1, 28, 28\)"),
])
def test_bad_input(x, err, match):
    with pytest.raises(err, match=match):
        lenet().forward(x)


@pytest.mark.parametrize("first_batch", [3, 5])
def test_backward_uses_the_most_recent_forward(first_batch):
    """Reused buffers hold the latest forward, like every layer's cache."""
    x, labels = images(5, 3), np.arange(5)
    a, b = lenet(bn=True, rng=0, **F64), lenet(bn=True, rng=0, **F64)
    a.forward(images(first_batch, 4))              # same or different batch size
    _, d = softmax_cross_entropy(a.forward(x), labels)
    a.backward(d)
    _, d = softmax_cross_entropy(b.forward(x), labels)
    b.backward(d)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert_close(name, p.grad, q.grad, rtol=1e-12, atol=1e-14)


def test_backward_checks():
    model = lenet(rng=0)
    with pytest.raises(RuntimeError, match="forward"):
        model.backward(np.zeros((2, 10), np.float32))
    model.forward(images(2).astype(np.float32))
    with pytest.raises(ValueError, match=r"logits' shape \(2, 10\)"):
        model.backward(np.zeros((3, 10), np.float32))


def test_bad_arguments():
    with pytest.raises(ValueError, match="position must be 'before' or 'after'"):
        lenet(bn=True, position="middle")
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        lenet(activation="gelu")
    with pytest.raises(TypeError, match="float32 or float64"):
        lenet(dtype=np.float16)


def test_benchmark_runs_and_checks_equality(torch, capsys):
    from bnbook.bench import lenet as bench
    assert bench.main(["--repeats", "1", "--steps", "1", "--batch", "8", "--threads", "1",
                       "--reference"]) == 0
    out = capsys.readouterr().out
    assert "plain" in out and "with BN" in out and "NCHW ref ratio" in out
    funcs, (dloss, dgrad) = bench._contenders(True, 8, 1, 0.01, torch)
    assert dloss < 1e-5 and dgrad < 1e-4           # float32: same loss and gradients
