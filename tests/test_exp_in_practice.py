"""Experiments of the chapter "BN in practice", on tiny settings."""
import numpy as np
import pytest

from bnbook import batchnorm, train
from bnbook.data import load_mnist
from bnbook.experiments import bn_statistics as bs
from bnbook.experiments import in_practice as ip
from bnbook.experiments.common import flat_mnist


@pytest.fixture(scope="module")
def small():
    x_train, y_train, x_test, y_test = flat_mnist(load_mnist())
    rng = np.random.default_rng(0)               # the split is stored sorted by class
    tr, te = rng.permutation(len(x_train))[:512], rng.permutation(len(x_test))[:200]
    return x_train[tr], y_train[tr], x_test[te], y_test[te]


def test_batch_size_sweep_shapes_rule_and_determinism(small):
    kw = dict(batch_sizes=(4, 64), norms=(None, "bn", "ln", "gn"), epochs=1, hidden=(16,))
    a = ip.batch_size_sweep(small, **kw)
    b = ip.batch_size_sweep(small, **kw)
    assert list(a["acc"]) == ["none", "BN", "LN", "GN"]
    assert all(v.shape == (2,) for v in a["acc"].values())
    np.testing.assert_allclose(a["lr"], [0.1 * 4 / 64, 0.1])        # linear scaling rule
    for name in a["acc"]:
        np.testing.assert_array_equal(a["acc"][name], b["acc"][name])
    assert a["acc_recal"]["BN"].shape == (2,)


def test_recalibrate_gives_the_population_average_of_batch_statistics(small):
    x = small[0]
    model = ip.make_mlp("bn", hidden=(8,), seed=3)
    ip.recalibrate(model, x, 128)
    bn = ip.bn_layers(model)[0]
    z = x @ model.layers[0].weight.data.T                            # BN's input, (N, 8)
    stats = [batchnorm.batch_stats(z[k:k + 128]) for k in range(0, 512, 128)]
    mean = np.mean([s[0] for s in stats], axis=0)
    var = np.mean([s[1] for s in stats], axis=0) * 128 / 127         # unbiased, as the paper
    np.testing.assert_allclose(bn.running_mean, mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.running_var, var, rtol=1e-4)
    assert bn.momentum == 0.1                                          # restored


def test_replayed_running_statistics_equal_the_layers_own(small):
    model = ip.make_mlp("bn", hidden=(8, 8), seed=0)
    layers = ip.bn_layers(model)
    stores = bs.record_stats(layers)
    train.fit_steps(model, small, steps=7, lr=0.1, batch_size=32)
    replayed = bs.replay(layers, stores, 7, 0.1)
    for layer, (mean, var) in zip(layers, replayed):
        np.testing.assert_allclose(layer.running_mean, mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(layer.running_var, var, rtol=1e-5)
    assert [len(s) for s in stores] == [7, 7]
    bs.stop_recording(layers)
    model.forward(small[0][:16])
    assert [len(s) for s in stores] == [7, 7]


def test_train_mode_accuracy_uses_full_batches_and_restores_the_buffers(small):
    model = ip.make_mlp("bn", hidden=(8,), seed=0)
    train.fit_steps(model, small, steps=5, lr=0.1, batch_size=32)
    model.eval()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    x, y = small[2], small[3]
    order = np.arange(len(x))[::-1]
    acc = bs.train_mode_accuracy(model, x, y, batch_size=64, order=order)
    idx = order[:192]                                  # 200 test digits: 3 full batches
    model.train()
    hits = sum(int((model.forward(x[idx[i:i + 64]]).argmax(1) == y[idx[i:i + 64]]).sum())
               for i in range(0, 192, 64))
    assert acc == hits / 192
    model.load_state_dict(before)                     # the direct computation moved them
    model.eval()
    bs.train_mode_accuracy(model, x, y, batch_size=64)
    assert not model.training
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_running_stats_study_shapes_and_slow_momentum_lags(small):
    out = ip.running_stats_study(small, momenta=(0.001, 0.1), steps=40, every=20,
                                 hidden=(16,))
    np.testing.assert_array_equal(out["steps"], [0, 20, 40])
    assert out["acc"][0.1].shape == out["acc_recal"].shape == (3,)
    # after 40 steps, momentum 0.001 still mostly remembers mean 0 / var 1
    assert out["acc"][0.001][-1] < out["acc"][0.1][-1]


def test_init_scale_tiny_weights_without_bn_do_not_train(small):
    out = ip.init_scale_sweep(small, scales=(0.1, 1.0), norms=(None, "bn"), depth=4,
                              width=16, epochs=3, lr=0.2, batch_size=32)
    # six orders of magnitude of signal loss: the plain net's loss stays near log(10)
    assert abs(out["final_loss"]["none"][0] - np.log(10)) < 0.05
    assert out["final_loss"]["BN"][0] < out["final_loss"]["none"][0] - 0.3


def test_class_sorted_batches_hold_one_class_each():
    labels = np.repeat(np.arange(3), 10)
    batches = ip.class_sorted_batches(labels, 4, np.random.default_rng(0))
    assert len(batches) == 3 * 2
    assert all(len(set(labels[b])) == 1 and len(b) == 4 for b in batches)
    with pytest.raises(ValueError, match="no class has 11 examples"):
        ip.class_sorted_batches(labels, 11, np.random.default_rng(0))


def test_one_class_test_batches_break_training_mode_bn(small):
    out = ip.unrepresentative_batches(small, norms=("bn",), epochs=2, hidden=(32,),
                                      batch_size=8)
    res = out["BN"]["shuffled"]
    assert res["train mode, one-class batches"] < res["eval mode"] - 0.3


def test_over_seeds_stacks_nested_results_seed_first():
    def fake(seed, n=3):
        return {"acc": {"BN": np.full(n, seed)}, "x": float(seed)}

    out = ip.over_seeds(fake, (4, 7), n=2)
    np.testing.assert_array_equal(out["acc"]["BN"], [[4, 4], [7, 7]])
    np.testing.assert_array_equal(out["x"], [4.0, 7.0])


@pytest.mark.parametrize("seeds", [(), (1, 1)])
def test_over_seeds_rejects_empty_or_repeated_seeds(seeds):
    with pytest.raises(ValueError, match="seeds must be distinct"):
        ip.over_seeds(lambda seed: {}, seeds)


def test_lr_sweep_marks_a_huge_rate_as_failed(small):
    out = ip.lr_sweep(small, lrs=(0.4, 1e4), norms=(None,), epochs=4, hidden=(16,))
    acc = out["acc"]["none"]
    assert acc.shape == (2,) and acc[0] > 0.5
    assert np.isnan(acc[1]) or acc[1] < 0.3                       # diverged or chance
