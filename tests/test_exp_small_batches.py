"""Tiny-setting tests of bnbook.experiments.small_batches."""
import numpy as np
import pytest

from bnbook.experiments import small_batches as sb
from bnbook.layers import BatchRenorm, GroupNorm


def tiny_data(n=64, n_test=32, seed=0):
    """Random flat 'digits': two well-separated classes, 784 features."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n + n_test)
    x = (rng.standard_normal((n + n_test, 784)) + 2.0 * y[:, None]).astype(np.float32)
    return x[:n], y[:n], x[n:], y[n:]


def test_limits_schedule():
    assert sb.renorm_limits(0, 100) == (1.0, 0.0)
    assert sb.renorm_limits(10, 100) == (1.0, 0.0)          # end of the hold
    r, d = sb.renorm_limits(30, 100)                        # half-way up the ramp
    assert r == pytest.approx(2.0) and d == pytest.approx(2.5)
    assert sb.renorm_limits(50, 100) == (3.0, 5.0)
    assert sb.renorm_limits(99, 100) == (3.0, 5.0)
    with pytest.raises(ValueError, match="hold < ramp_end"):
        sb.renorm_limits(0, 10, hold=0.6, ramp_end=0.5)


def test_schedule_sets_every_renorm_layer():
    model = sb.build("brn")
    renorms = [m for m in model.modules() if isinstance(m, BatchRenorm)]
    assert len(renorms) == 2
    hook = sb.renorm_schedule(model, 100)
    hook(0, model, None, None)
    assert all((m.r_max, m.d_max) == (1.0, 0.0) for m in renorms)
    hook(80, model, None, None)
    assert all((m.r_max, m.d_max) == (3.0, 5.0) for m in renorms)


def test_build_same_weights_and_right_layers():
    bn, brn, gn = (sb.build(m, seed=3) for m in ("bn", "brn", "gn"))
    for a, b in zip(bn.parameters(), brn.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    assert sum(isinstance(m, GroupNorm) for m in gn.modules()) == 2
    with pytest.raises(ValueError, match="unknown method 'ln'"):
        sb.build("ln")


def test_run_measures_all_and_bn_recal_share_training():
    data = tiny_data()
    res = sb.run("bn", 4, 0.1, 0, data, epochs=1, recal_batch=16)
    assert res["steps"] == 16 and set(res) == {"steps", "bn", "recal"}
    for name in ("bn", "recal"):
        r = res[name]
        assert 0 <= r["eval_acc"] <= 1 and 0 <= r["batch_acc"] <= 1
        assert r["gap"] == pytest.approx(r["batch_acc"] - r["eval_acc"])
    # batch statistics do not depend on the running ones: same batch accuracy
    assert res["bn"]["batch_acc"] == res["recal"]["batch_acc"]
    gathered = sb.run("gathered", 4, 0.1, 0, data, epochs=1, k=2)
    assert gathered["steps"] == 8                     # batches of k b = 8
    gn = sb.run("gn", 4, 0.1, 0, data, epochs=1)["gn"]
    assert gn["gap"] == 0.0                           # no batch statistics


def test_run_rejects_bad_input():
    data = tiny_data()
    with pytest.raises(ValueError, match="from 2"):
        sb.run("bn", 1, 0.1, 0, data)
    with pytest.raises(ValueError, match="from 2"):
        sb.run("bn", 65, 0.1, 0, data)
    with pytest.raises(ValueError, match="k .* int >= 1"):
        sb.run("gathered", 4, 0.1, 0, data, k=0)


def test_sweep_fills_recal_from_bn_and_best_rate():
    data = tiny_data()
    out = sb.sweep(["bn", "recal", "gn"], [4], [0.01, 0.1], [0, 1], data,
                   epochs=1, recal_batch=16)
    assert out["eval_acc"].shape == (3, 1, 2, 2)
    assert not np.isnan(out["eval_acc"]).any()
    np.testing.assert_array_equal(out["batch_acc"][0], out["batch_acc"][1])
    acc = np.array([[[0.5, 0.6], [0.9, 0.8], [np.nan, 0.7]]])   # (1, lr, seed)
    i, lr, mean = sb.best_rate(acc, [0.1, 0.3, 1.0])
    assert (i, lr) == (1, 0.3) and mean[2] < mean[0]      # NaN counts as worst
    with pytest.raises(ValueError, match="rates"):
        sb.best_rate(acc, [0.1, 0.3])


def test_linear_scaling_rule(monkeypatch):
    seen = []
    real = sb.train.fit_steps

    def spy(model, data, steps, lr, batch_size, **kw):
        seen.append((batch_size, lr, steps))
        return real(model, data, steps, lr, batch_size=batch_size, **kw)
    monkeypatch.setattr(sb.train, "fit_steps", spy)
    data = tiny_data()
    sb.run("bn", 4, 0.1, 0, data, epochs=1, lr_batch=8)
    sb.run("gathered", 4, 0.1, 0, data, epochs=1, k=4, lr_batch=8)
    assert seen[0] == (4, pytest.approx(0.05), 16)
    assert seen[1] == (16, pytest.approx(0.2), 4)


def test_ghost_layers_normalize_each_micro_batch():
    from bnbook.experiments.ghost import GhostBatchNorm, GhostBatchRenorm
    from bnbook.layers import BatchNorm
    rng = np.random.default_rng(0)
    x, dy = rng.normal(2.0, 3.0, (8, 3)), rng.standard_normal((8, 3))
    for cls, base in ((GhostBatchNorm, BatchNorm), (GhostBatchRenorm, BatchRenorm)):
        ghost, ref = cls(3, dtype=np.float64), base(3, dtype=np.float64)
        ghost.size = 2
        y, dx = ghost.forward(x), ghost.backward(dy)
        dgamma = 0
        for i in range(0, 8, 2):            # one plain layer, micro-batch by micro-batch
            np.testing.assert_allclose(y[i:i + 2], ref.forward(x[i:i + 2]), atol=1e-12)
            np.testing.assert_allclose(dx[i:i + 2], ref.backward(dy[i:i + 2]), atol=1e-12)
            dgamma = dgamma + ref.gamma.grad
        np.testing.assert_allclose(ghost.gamma.grad, dgamma, atol=1e-12)
        np.testing.assert_allclose(ghost.running_var, ref.running_var)
        assert not np.allclose(y, ref.forward(x))    # not BN over all 8
    assert ghost.r.shape == (4, 3)                  # r of every micro-batch


def test_ghost_and_clip_shares_in_run():
    data = tiny_data()
    res = sb.run("ghost_brn", 4, 0.1, 0, data, epochs=2, k=2)
    assert res["steps"] == 16                         # SGD batches of k b = 8
    r = res["ghost_brn"]
    assert all(0 <= r[key] <= 1 for key in sb.KEYS if key != "gap")
    assert np.isnan(sb.run("bn", 4, 0.1, 0, data, epochs=1)["bn"]["r_low"])
    model = sb.build("brn")
    rec = sb.clip_recorder(model, 4)
    for layer in model.modules():
        if isinstance(layer, BatchRenorm):
            layer.r, layer.d = np.array([1 / 3, 1.0, 3.0, 1.0]), np.array([0, 5, 0, 1.0])
    rec(3, model, None, None)                     # limits (3, 5) at step 3 of 4
    assert rec.shares[0] == [0.25, 0.25, 0.25]
