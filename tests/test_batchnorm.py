"""bnbook.batchnorm: the reference equations (finite differences, staged = compact,
array_api_strict), the fast NumPy path against the reference, PyTorch in float64,
bad input, numerics (offsets, constant channels, NaN), running statistics, folding.

Three implementations are checked: the public ``forward`` / ``backward`` on NumPy
arrays (the fast kernels, default blocks), the same with 64-byte blocks (many
blocks, rows split along Q) and the array-API path (``_paths.forward_xp``: the
reference in float64, what CuPy and ``array_api_strict`` run), here on NumPy
through ``array_api_compat.numpy``.
"""
import array_api_compat.numpy as np_api
import numpy as np
import pytest

from bnbook import batchnorm as bn
from bnbook.batchnorm import _kernels as K
from bnbook.batchnorm import _paths
from bnbook.batchnorm import reference as R
from bnbook.batchnorm._checks import prepare
from bnbook.gradcheck import compare, numerical_grad, upstream
from conftest import require


def _xp_forward(x, g, b, eps=1e-5, axis=1):
    xp, axis, eps, C, m = prepare(x, g, b, eps, axis, training=True)
    return _paths.forward_xp(np_api, x, g, b, eps, axis, m)


def _xp_backward(dy, cache):
    return _paths.backward_xp(np_api, dy, cache)


def _small_blocks(f):
    """``f`` with 64-byte blocks: many blocks, and rows split along Q."""
    def run(*args, **kwargs):
        old, K.BLOCK_BYTES = K.BLOCK_BYTES, 64
        try:
            return f(*args, **kwargs)
        finally:
            K.BLOCK_BYTES = old
    return run


PATHS = {
    "numpy": (bn.forward, bn.backward),
    "numpy_blocks": (_small_blocks(bn.forward), _small_blocks(bn.backward)),
    "array_api": (_xp_forward, _xp_backward),
}
SHAPES = [(2, 3), (5, 4), (2, 3, 1, 1), (3, 2, 2, 3), (2, 4, 3, 2)]


def _data(shape, seed=0, offset=0.0, scale=1.0, axis=1, dtype=np.float64):
    gen = np.random.default_rng(seed)
    C = shape[axis]
    x = offset + scale * gen.standard_normal(shape)
    gamma = 1 + 0.5 * gen.standard_normal(C)
    beta = gen.standard_normal(C)
    return x.astype(dtype), gamma.astype(dtype), beta.astype(dtype)


def _check(name, ours, theirs, rtol, atol):
    c = compare(name, ours, theirs, rtol=rtol, atol=atol)
    assert c.ok, str(c)


def _reference(x, gamma, beta, eps=1e-5, axis=1):
    """The oracle: :func:`bnbook.batchnorm.reference.forward` (two passes, float64)."""
    return R.forward(x, gamma, beta, eps, axis)


# ------------------------------------------------------------- finite differences
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shape", SHAPES)
def test_gradients_match_finite_differences(path, shape):
    fwd, bwd = PATHS[path]
    x, gamma, beta = _data(shape, seed=len(shape) + shape[0])
    dy = upstream(shape, seed=1)                      # random, never all ones
    y, cache = fwd(x, gamma, beta)
    dx, dgamma, dbeta = bwd(dy, cache)
    _check("dx", dx, numerical_grad(lambda v: fwd(v, gamma, beta)[0], x, dy), 1e-5, 1e-8)
    _check("dgamma", dgamma, numerical_grad(lambda g: fwd(x, g, beta)[0], gamma, dy),
           1e-5, 1e-8)
    _check("dbeta", dbeta, numerical_grad(lambda b: fwd(x, gamma, b)[0], beta, dy),
           1e-5, 1e-8)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shape", [(3, 4, 2, 2), (3, 5)])
def test_channel_axis_0_finite_differences(path, shape):
    """The batch-innermost layouts (C, H, W, N) and (D, N) with axis=0."""
    fwd, bwd = PATHS[path]
    x, gamma, beta = _data(shape, seed=3, axis=0)
    dy = upstream(shape, seed=4)
    y, cache = fwd(x, gamma, beta, axis=0)
    _check("y", y, _reference(x, gamma, beta, axis=0), 1e-12, 1e-12)
    dx, dgamma, _ = bwd(dy, cache)
    _check("dx", dx, numerical_grad(lambda v: fwd(v, gamma, beta, axis=0)[0], x, dy),
           1e-5, 1e-8)
    _check("dgamma", dgamma,
           numerical_grad(lambda g: fwd(x, g, beta, axis=0)[0], gamma, dy), 1e-5, 1e-8)


def test_axis_0_equals_axis_1_on_the_transposed_layout():
    x, gamma, beta = _data((4, 3, 2, 5), seed=5)
    dy = upstream(x.shape, seed=6)
    y1, c1 = bn.forward(x, gamma, beta)
    dx1, dg1, db1 = bn.backward(dy, c1)
    to_chwn = (1, 2, 3, 0)
    y0, c0 = bn.forward(x.transpose(to_chwn), gamma, beta, axis=0)
    dx0, dg0, db0 = bn.backward(dy.transpose(to_chwn), c0)
    _check("y", y0, y1.transpose(to_chwn), 1e-12, 1e-12)
    _check("dx", dx0, dx1.transpose(to_chwn), 1e-10, 1e-12)
    _check("dgamma", dg0, dg1, 1e-10, 1e-12)


# ---------------------------------------------------------------- PyTorch oracle
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shape", [(2, 3), (16, 5), (2, 3, 1, 1), (8, 4, 5, 3)])
def test_training_forward_backward_match_torch_float64(torch, path, shape):
    fwd, bwd = PATHS[path]
    x, gamma, beta = _data(shape, seed=7, offset=2.0, scale=3.0)
    dy = upstream(shape, seed=8)
    y, cache = fwd(x, gamma, beta)
    dx, dgamma, dbeta = bwd(dy, cache)
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    ty = torch.nn.functional.batch_norm(tx, None, None, tg, tb, training=True, eps=1e-5)
    ty.backward(torch.tensor(dy))
    _check("y", y, ty.detach().numpy(), 1e-10, 1e-12)
    _check("dx", dx, tx.grad.numpy(), 1e-9, 1e-12)
    _check("dgamma", dgamma, tg.grad.numpy(), 1e-9, 1e-12)
    _check("dbeta", dbeta, tb.grad.numpy(), 1e-10, 1e-12)


@pytest.mark.parametrize("shape", [(1, 3), (6, 4), (1, 3, 1, 1), (5, 2, 3, 3)])
def test_inference_matches_torch_eval_float64(torch, shape):
    x, gamma, beta = _data(shape, seed=9)
    gen = np.random.default_rng(10)
    running_mean = gen.standard_normal(shape[1])
    running_var = gen.uniform(0.5, 2.0, shape[1])
    y = bn.inference(x, running_mean, running_var, gamma, beta)
    ty = torch.nn.functional.batch_norm(
        torch.tensor(x), torch.tensor(running_mean), torch.tensor(running_var),
        torch.tensor(gamma), torch.tensor(beta), training=False, eps=1e-5)
    _check("y", y, ty.numpy(), 1e-12, 1e-12)


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 2, 5)])
def test_running_statistics_match_torch_after_several_steps(torch, shape):
    C = shape[1]
    running_mean, running_var = np.zeros(C), np.ones(C)
    t_mean, t_var = torch.zeros(C, dtype=torch.float64), torch.ones(C, dtype=torch.float64)
    gamma, beta = np.ones(C), np.zeros(C)
    for step in range(5):
        x, _, _ = _data(shape, seed=20 + step, offset=step, scale=1 + step)
        _, cache = bn.forward(x, gamma, beta)
        running_mean, running_var = bn.update_running(running_mean, running_var, cache, 0.1)
        # torch updates running_mean / running_var in place in training mode
        torch.nn.functional.batch_norm(torch.tensor(x), t_mean, t_var, training=True,
                                       momentum=0.1, eps=1e-5)
    _check("running_mean", running_mean, t_mean.numpy(), 1e-12, 1e-12)
    _check("running_var", running_var, t_var.numpy(), 1e-12, 1e-12)


@pytest.mark.parametrize("shape,to_torch", [((3, 4, 5, 6), (3, 0, 1, 2)), ((5, 7), (1, 0))])
def test_inference_with_channel_axis_0_matches_torch_eval(torch, shape, to_torch):
    """The batch-innermost (C, H, W, N) and (D, N) layouts, float64, eval mode."""
    x, gamma, beta = _data(shape, seed=70, offset=1.5, axis=0)
    gen = np.random.default_rng(71)
    running_mean = gen.standard_normal(shape[0])
    running_var = gen.uniform(0.5, 2.0, shape[0])
    y = bn.inference(x, running_mean, running_var, gamma, beta, axis=0)
    ty = torch.nn.functional.batch_norm(
        torch.tensor(x.transpose(to_torch).copy()), torch.tensor(running_mean),
        torch.tensor(running_var), torch.tensor(gamma), torch.tensor(beta),
        training=False, eps=1e-5)
    _check("y", y.transpose(to_torch), ty.numpy(), 1e-12, 1e-12)


@pytest.mark.parametrize("source", ["cache", "batch"])
@pytest.mark.parametrize("shape,to_torch", [((3, 4, 5, 6), (3, 0, 1, 2)), ((5, 7), (1, 0))])
def test_update_running_with_channel_axis_0_matches_torch(torch, shape, to_torch, source):
    C = shape[0]
    running_mean, running_var = np.zeros(C), np.ones(C)
    t_mean, t_var = torch.zeros(C, dtype=torch.float64), torch.ones(C, dtype=torch.float64)
    for step in range(5):
        x, gamma, beta = _data(shape, seed=72 + step, offset=step, scale=1 + step, axis=0)
        _, cache = bn.forward(x, gamma, beta, axis=0)
        arg = cache if source == "cache" else x
        running_mean, running_var = bn.update_running(running_mean, running_var, arg, 0.3,
                                                      axis=0)
        torch.nn.functional.batch_norm(torch.tensor(x.transpose(to_torch).copy()), t_mean,
                                       t_var, training=True, momentum=0.3, eps=1e-5)
    _check("running_mean", running_mean, t_mean.numpy(), 1e-12, 1e-12)
    _check("running_var", running_var, t_var.numpy(), 1e-12, 1e-12)


def test_float32_matches_torch_float32(torch):
    x, gamma, beta = _data((16, 8, 6, 6), seed=11, offset=1.0, dtype=np.float32)
    dy = upstream(x.shape, seed=12).astype(np.float32)
    y, cache = bn.forward(x, gamma, beta)
    dx, _, _ = bn.backward(dy, cache)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.batch_norm(tx, None, None, torch.tensor(gamma),
                                        torch.tensor(beta), training=True)
    ty.backward(torch.tensor(dy))
    _check("y", y, ty.detach().numpy(), 1e-4, 1e-5)
    _check("dx", dx, tx.grad.numpy(), 1e-3, 1e-5)


# --------------------------------------------------------- the reference itself
REF_CASES = [((5, 4), 1), ((3, 2, 2, 3), 1), ((3, 4, 2, 2), 0), ((4, 6), 0), ((2, 3, 2, 4), 3)]


@pytest.mark.parametrize("backward", [R.backward_staged, R.backward])
@pytest.mark.parametrize("shape,axis", REF_CASES)
def test_reference_gradients_match_finite_differences(shape, axis, backward):
    x, gamma, beta = _data(shape, seed=60, offset=1.0, scale=2.0, axis=axis)
    dy = upstream(shape, seed=61)                     # random, never all ones
    dx, dgamma, dbeta = backward(dy, x, gamma, 1e-5, axis)
    _check("dx", dx, numerical_grad(lambda v: R.forward(v, gamma, beta, 1e-5, axis), x, dy),
           1e-5, 1e-8)
    _check("dgamma", dgamma,
           numerical_grad(lambda g: R.forward(x, g, beta, 1e-5, axis), gamma, dy), 1e-5, 1e-8)
    _check("dbeta", dbeta,
           numerical_grad(lambda b: R.forward(x, gamma, b, 1e-5, axis), beta, dy), 1e-5, 1e-8)


@pytest.mark.parametrize("shape,axis", REF_CASES + [((2, 3), 1), ((64, 3, 5, 5), 1)])
def test_reference_staged_and_compact_backward_agree(shape, axis):
    x, gamma, _ = _data(shape, seed=62, offset=-3.0, scale=0.5, axis=axis)
    dy = upstream(shape, seed=63)
    for name, a, b in zip(("dx", "dgamma", "dbeta"), R.backward_staged(dy, x, gamma, 1e-3, axis),
                          R.backward(dy, x, gamma, 1e-3, axis)):
        _check(name, a, b, 1e-11, 1e-12)


def test_reference_is_the_definition():
    x, gamma, beta = _data((6, 3, 2, 2), seed=64, offset=5.0, scale=3.0)
    mu, var = R.stats(x)
    mu_np, var_np = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))    # biased
    _check("mu", mu, mu_np, 1e-14, 1e-14)
    _check("var", var, var_np, 1e-13, 1e-14)
    b = (slice(None), None, None)
    expected = gamma[b] * (x - mu_np[b]) / np.sqrt(var_np[b] + 1e-5) + beta[b]
    _check("y", R.forward(x, gamma, beta), expected, 1e-13, 1e-13)
    _, _, inv_std, x_hat = R.normalize(x)
    _check("inv_std", inv_std, 1 / np.sqrt(var_np + 1e-5), 1e-14, 0)
    _check("mean of x_hat", x_hat.mean(axis=(0, 2, 3)), np.zeros(3), 0, 1e-14)


def test_reference_runs_on_array_api_strict():
    xps = require("array_api_strict")
    x, gamma, beta = _data((6, 3, 2, 2), seed=65, offset=2.0)
    dy = upstream(x.shape, seed=66)
    sx, sg, sb, sdy = (xps.asarray(a) for a in (x, gamma, beta, dy))
    y = R.forward(sx, sg, sb)
    assert type(y) is type(sx) and y.dtype == xps.float64
    _check("y", np.asarray(y), R.forward(x, gamma, beta), 1e-14, 1e-14)
    for staged, local in ((R.backward_staged(sdy, sx, sg), R.backward_staged(dy, x, gamma)),
                          (R.backward(sdy, sx, sg), R.backward(dy, x, gamma))):
        for a, b in zip(staged, local):
            assert type(a) is type(sx)
            _check("gradient", np.asarray(a), b, 1e-14, 1e-14)
    y32 = R.forward(xps.asarray(x.astype(np.float32)), sg, sb, 1e-5, 1)
    assert y32.dtype == xps.float64                     # float64 accumulation


# --------------------------------------------- the fast path against the reference
FAST_CASES = [((7, 3), 1), ((2, 3, 1, 1), 1), ((5, 4, 9, 7), 1), ((5, 4, 3, 7), 0),
              ((6, 9), 0), ((1024, 8), 1), ((6, 28, 28, 16), 0), ((3, 5, 4, 6), 3),
              ((4, 3, 5, 2), 2)]


@pytest.mark.parametrize("path", ["numpy", "numpy_blocks"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("offset", [0.0, -10.0, 1e3])     # plain sums; shifted; shifted
@pytest.mark.parametrize("shape,axis", FAST_CASES)
def test_fast_path_agrees_with_the_reference(shape, axis, offset, dtype, path):
    x, gamma, beta = _data(shape, seed=42, offset=offset, scale=2.0, axis=axis, dtype=dtype)
    dy = upstream(shape, seed=43).astype(dtype)
    fwd, bwd = PATHS[path]
    y, c = fwd(x, gamma, beta, axis=axis)
    dx, dg, db = bwd(dy, c)
    assert y.dtype == dx.dtype == dtype and y.shape == dx.shape == shape
    dx_r, dg_r, db_r = R.backward(dy, x, gamma, 1e-5, axis)
    mu_r, var_r, _, x_hat_r = R.normalize(x, 1e-5, axis)
    shifted = mu_r**2 > K.T * var_r                     # the shift rule, exact statistics
    np.testing.assert_array_equal(c.k != 0, shifted)
    assert np.shares_memory(c.x_k, x) == (not shifted.any())
    if c.m > 2:                                # m = 2: mu^2 > 8 var happens by chance
        assert shifted.any() == (offset != 0.0)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    _check("y", y, R.forward(x, gamma, beta, 1e-5, axis), tol, tol)
    _check("x_hat", c.x_hat, x_hat_r, tol, tol)
    dx_size = np.abs(gamma).max() * np.max(1 / np.sqrt(var_r + 1e-5)) * np.abs(dy).max()
    _check("dx", dx, dx_r, tol, tol * dx_size)         # dx itself can be ~0 (m = 2)
    scale = np.abs(db_r).max() + np.abs(dg_r).max()     # sums over m terms: absolute scale
    _check("dgamma", dg, dg_r, tol, tol * scale)
    _check("dbeta", db, db_r, tol, tol * scale)
    _check("mu", c.mu, mu_r, tol, tol * (1 + abs(offset)))
    _check("var", c.var, var_r, tol, tol)


@pytest.mark.parametrize("shape,axis,block", [
    ((2, 64, 40, 40), 1, 1 << 17), ((6, 28, 28, 64), 0, 1 << 19), ((1000, 7), 1, 4096),
    ((2, 2, 300, 300), 1, 1 << 19), ((3, 50000), 0, 1 << 17),
    ((50, 3), 1, 64), ((3, 2, 2, 5), 3, 64)])
def test_blocks_cover_the_view_once(shape, axis, block, monkeypatch):
    monkeypatch.setattr(K, "BLOCK_BYTES", block)
    v = K.view(np.zeros(shape, np.float32), axis)
    count = np.zeros(v.shape, int)
    idx = K.blocks(v)
    for b in idx:
        count[b] += 1
    assert len(idx) > 1 and (count == 1).all()
    widths = [b[2].stop - b[2].start for b in idx if len(b) == 3 and b[2].stop < v.shape[2]]
    assert all(w <= K.MAX_DOT or w % K.MAX_DOT == 0 for w in widths)   # whole dots
    if v.ndim == 2 and block // v[0].nbytes > K.ROWS:   # whole runs of ROWS rows
        assert all((b[0].stop - b[0].start) % K.ROWS == 0 for b in idx)


@pytest.mark.parametrize("q", [5, K.MAX_DOT, 3 * K.MAX_DOT + 5])
def test_block_sums_in_dots_of_at_most_max_dot_values(q):
    """Long rows are summed as dots of MAX_DOT values (OpenBLAS threads longer ones)."""
    gen = np.random.default_rng(57)
    a, b = gen.standard_normal((2, 3, q)), gen.standard_normal((2, 3, q))
    s1, s2 = K._sums(a, b)
    _check("sum a", s1, a.sum(axis=(0, 2)), 1e-12, 1e-12)
    _check("sum a*b", s2, (a * b).sum(axis=(0, 2)), 1e-12, 1e-12)


def test_rows_split_along_q_are_accurate(monkeypatch):
    """(2, 64, 40, 40) float32: a sample is 400 KiB, so 128 KiB blocks cut rows."""
    monkeypatch.setattr(K, "BLOCK_BYTES", 1 << 17)
    x, gamma, beta = _data((2, 64, 40, 40), seed=15, offset=3.0, dtype=np.float32)
    assert len(K.blocks(K.view(x, 1))[0]) == 3                  # a (p, :, q) block
    dy = upstream(x.shape, seed=16).astype(np.float32)
    y, c = bn.forward(x, gamma, beta)
    dx, dg, db = bn.backward(dy, c)
    dx_r, dg_r, db_r = R.backward(dy, x, gamma)
    _check("y", y, R.forward(x, gamma, beta), 1e-5, 1e-5)
    _check("dx", dx, dx_r, 1e-5, 1e-5 * np.abs(dx_r).max())
    _check("dgamma", dg, dg_r, 1e-5, 1e-5 * np.abs(dg_r).max())


def test_array_api_strict_runs_every_function():
    xps = require("array_api_strict")
    x, gamma, beta = _data((6, 3, 2, 2), seed=17)
    dy = upstream(x.shape, seed=18)
    rm, rv = np.linspace(-1, 1, 3), np.linspace(0.5, 2, 3)
    W, b = np.random.default_rng(19).standard_normal((3, 2, 3, 3)), np.arange(3.0)
    s = {k: xps.asarray(v) for k, v in dict(x=x, g=gamma, b=beta, dy=dy, rm=rm, rv=rv,
                                            W=W, bias=b).items()}
    y, cache = bn.forward(s["x"], s["g"], s["b"])
    dx, dg, db = bn.backward(s["dy"], cache)
    y_np, c_np = bn.forward(x, gamma, beta)
    dx_np, dg_np, db_np = bn.backward(dy, c_np)
    assert type(y) is type(s["x"]) and type(dx) is type(s["x"])
    for name, a, ref in [("y", y, y_np), ("dx", dx, dx_np), ("dgamma", dg, dg_np),
                         ("dbeta", db, db_np)]:
        _check(name, np.asarray(a), ref, 1e-12, 1e-12)
    y_eval = bn.inference(s["x"], s["rm"], s["rv"], s["g"], s["b"])
    _check("inference", np.asarray(y_eval), bn.inference(x, rm, rv, gamma, beta),
           1e-12, 1e-12)
    new = bn.update_running(s["rm"], s["rv"], s["x"], 0.1)
    new_np = bn.update_running(rm, rv, x, 0.1)
    for a, ref in zip(new, new_np):
        _check("running", np.asarray(a), ref, 1e-12, 1e-12)
    for a, ref in zip(bn.fold(s["W"], s["bias"], s["g"], s["b"], s["rm"], s["rv"]),
                      bn.fold(W, b, gamma, beta, rm, rv)):
        _check("fold", np.asarray(a), ref, 1e-12, 1e-12)
    for a, ref in zip(bn.batch_stats(s["x"]), bn.batch_stats(x)):
        _check("batch_stats", np.asarray(a), ref, 1e-12, 1e-12)


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize("shape", [(4,), (4, 3, 2), (2, 3, 2, 2, 2), ()])
def test_wrong_ndim_is_a_value_error(shape):
    x = np.ones(shape)
    with pytest.raises(ValueError, match=r"2-D \(N, D\) or 4-D \(N, C, H, W\)"):
        bn.forward(x, np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match="2-D"):
        bn.inference(x, np.zeros(3), np.ones(3), np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match="2-D"):
        bn.batch_stats(x)


@pytest.mark.parametrize("path", PATHS)
def test_gamma_or_beta_of_the_wrong_shape(path):
    fwd, _ = PATHS[path]
    x = np.ones((4, 3))
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\).*got \(4,\)"):
        fwd(x, np.ones(4), np.zeros(3))
    with pytest.raises(ValueError, match=r"beta must have shape \(3,\).*got \(3, 1\)"):
        fwd(x, np.ones(3), np.zeros((3, 1)))


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.bool_, np.complex128])
def test_non_real_float_dtypes_are_type_errors(dtype):
    with pytest.raises(TypeError, match="x must be a real floating-point array"):
        bn.forward(np.ones((4, 3), dtype=dtype), np.ones(3), np.zeros(3))
    with pytest.raises(TypeError, match="gamma must be a real floating-point array"):
        bn.forward(np.ones((4, 3)), np.ones(3, dtype=dtype), np.zeros(3))
    with pytest.raises(TypeError, match="x must be a real floating-point array"):
        bn.inference(np.ones((4, 3), dtype=dtype), np.zeros(3), np.ones(3), np.ones(3),
                     np.zeros(3))


def test_non_arrays_and_mixed_libraries_are_type_errors():
    with pytest.raises(TypeError, match="expected arrays"):
        bn.forward([[1.0, 2.0], [3.0, 4.0]], np.ones(2), np.zeros(2))
    xps = require("array_api_strict")
    with pytest.raises(TypeError, match="expected arrays of one array library"):
        bn.forward(xps.ones((4, 2)), np.ones(2), np.zeros(2))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1, 1), (0, 3)])
def test_fewer_than_two_values_per_channel_in_training(path, shape):
    fwd, _ = PATHS[path]
    with pytest.raises(ValueError, match="at least 2 values per channel"):
        fwd(np.ones(shape), np.ones(3), np.zeros(3))


def test_one_value_per_channel_is_fine_at_inference():
    y = bn.inference(np.full((1, 3), 2.0), np.ones(3), np.full(3, 4.0), np.ones(3),
                     np.zeros(3), eps=0.0)
    np.testing.assert_allclose(y, np.full((1, 3), 0.5))


@pytest.mark.parametrize("axis", [2, -3, 1.0, True, "1"])
def test_bad_axis(axis):
    with pytest.raises(ValueError, match="axis must be an int"):
        bn.forward(np.ones((4, 3)), np.ones(3), np.zeros(3), axis=axis)


@pytest.mark.parametrize("eps", [-1e-5, float("nan"), float("inf"), "1e-5", None])
def test_bad_eps(eps):
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        bn.forward(np.ones((4, 3)), np.ones(3), np.zeros(3), eps=eps)


def test_backward_checks_its_arguments():
    x, gamma, beta = _data((4, 3), seed=21)
    _, cache = bn.forward(x, gamma, beta)
    with pytest.raises(ValueError, match=r"dy must have the shape of forward's x \(4, 3\)"):
        bn.backward(np.ones((4, 2)), cache)
    with pytest.raises(TypeError, match="cache must be the Cache returned by forward"):
        bn.backward(np.ones((4, 3)), (x,))
    with pytest.raises(TypeError, match="dy must be a real floating-point array"):
        bn.backward(np.ones((4, 3), dtype=int), cache)


@pytest.mark.parametrize("missing", ["x", "gamma", "beta"])
def test_none_instead_of_an_array_is_a_type_error_naming_it(missing):
    args = dict(x=np.ones((4, 3)), gamma=np.ones(3), beta=np.zeros(3))
    args[missing] = None
    with pytest.raises(TypeError, match=f"{missing} must be an array, got None"):
        bn.forward(**args)
    with pytest.raises(TypeError, match=f"{missing} must be an array, got None"):
        bn.inference(args["x"], np.zeros(3), np.ones(3), args["gamma"], args["beta"])


def test_inference_rejects_a_negative_running_variance():
    x, gamma, beta = _data((4, 3), seed=23)
    with pytest.raises(ValueError, match=r"running_var must be >= 0.*got minimum -0\.5"):
        bn.inference(x, np.zeros(3), np.array([1.0, -0.5, 2.0]), gamma, beta)
    with pytest.raises(TypeError, match=r"running_var must be an array of shape \(3,\)"):
        bn.inference(x, np.zeros(3), None, gamma, beta)
    bn.inference(x, np.zeros(3), np.array([1.0, 0.0, 2.0]), gamma, beta)   # zero is fine


def test_update_running_accepts_numpy_scalar_momentum():
    x, _, _ = _data((10, 3), seed=24)
    a = bn.update_running(np.zeros(3), np.ones(3), x, momentum=np.float32(0.25))
    b = bn.update_running(np.zeros(3), np.ones(3), x, momentum=0.25)
    _check("mean", a[0], b[0], 0, 0)
    _check("var", a[1], b[1], 0, 0)


def test_inference_checks_running_statistics():
    x, gamma, beta = _data((4, 3), seed=22)
    with pytest.raises(ValueError, match=r"running_var must have shape \(3,\)"):
        bn.inference(x, np.zeros(3), np.ones(2), gamma, beta)
    with pytest.raises(ValueError, match=r"running_mean must have shape \(3,\)"):
        bn.inference(x, np.zeros((1, 3)), np.ones(3), gamma, beta)


# ------------------------------------------------------------------ numerics
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("offset", [1e4, 1e6])
@pytest.mark.parametrize("shape,axis", [((256, 4), 1), ((16, 3, 8, 8), 1),
                                        ((4, 8, 8, 16), 0), ((4, 256), 0)])
def test_large_offsets_in_float32(path, offset, shape, axis):
    """Within 1e-5 of the float64 reference on the same float32 numbers."""
    fwd, bwd = PATHS[path]
    gen = np.random.default_rng(23)
    x = (offset + gen.standard_normal(shape)).astype(np.float32)
    C = shape[axis]
    gamma, beta = np.ones(C, np.float32), np.zeros(C, np.float32)
    y, cache = fwd(x, gamma, beta, axis=axis)
    assert y.dtype == np.float32
    _check("y", y, R.forward(x, gamma, beta, 1e-5, axis), 0.0, 1e-5)
    dy = upstream(shape, seed=24)
    dx, _, _ = bwd(dy.astype(np.float32), cache)
    dx64 = R.backward(dy, x, gamma, 1e-5, axis)[0]
    _check("dx", dx, dx64, 0.0, 1e-5 * np.abs(dx64).max())


def test_the_one_pass_textbook_formula_fails_the_offset_test():
    """Why the shifted sums: E[x^2] - E[x]^2 in float32 loses the variance at 1e4."""
    x = (1e4 + np.random.default_rng(25).standard_normal((256, 4))).astype(np.float32)
    mu = x.mean(axis=0)
    var = (x * x).mean(axis=0) - mu * mu
    naive = (x - mu) / np.sqrt(np.maximum(var, 0) + np.float32(1e-5))
    ref = _reference(x.astype(np.float64), np.ones(4), np.zeros(4))
    assert np.abs(naive - ref).max() > 1e-3
    assert np.abs(bn.forward(x, np.ones(4, np.float32), np.zeros(4, np.float32))[0]
                  - ref).max() <= 1e-5


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("value", [0.0, 3.7, -1e4])
def test_constant_channel_gives_beta_and_finite_gradients(path, dtype, value):
    fwd, bwd = PATHS[path]
    x, gamma, beta = _data((6, 3, 2, 2), seed=26, dtype=dtype)
    x[:, 1] = value
    y, cache = fwd(x, gamma, beta)
    dy = upstream(x.shape, seed=27).astype(dtype)
    dx, dgamma, dbeta = bwd(dy, cache)
    assert all(np.isfinite(a).all() for a in (y, dx, dgamma, dbeta))
    np.testing.assert_allclose(y[:, 1], np.broadcast_to(beta[1], y[:, 1].shape),
                               rtol=0, atol=1e-6)
    # x_hat = 0 there, so dx = gamma / sqrt(eps) * (dy - mean(dy)): large but finite
    expected = gamma[1] / np.sqrt(1e-5) * (dy[:, 1] - dy[:, 1].mean())
    np.testing.assert_allclose(dx[:, 1], expected, rtol=1e-4, atol=1e-4)
    if path == "array_api":   # the reference's sum(x)/m of a constant: exact to rounding
        assert abs(dgamma[1]) <= 1e-12 * np.abs(dy[:, 1]).sum()
    else:                     # the shift k is a value of the channel: x - k = 0 exactly
        assert dgamma[1] == 0


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 1), (3, 1)])   # first block (the shift) or later
def test_nan_and_inf_propagate_to_their_channel(path, bad, where):
    fwd, bwd = PATHS[path]
    x, gamma, beta = _data((5, 3), seed=28)
    x[where] = bad
    with np.errstate(invalid="ignore", over="ignore"):
        y, cache = fwd(x, gamma, beta)
        dx, dgamma, _ = bwd(upstream(x.shape, seed=29), cache)
    assert not np.isfinite(y[:, 1]).any() and not np.isfinite(dx[:, 1]).any()
    assert not np.isfinite(dgamma[1])
    assert np.isfinite(y[:, [0, 2]]).all() and np.isfinite(dx[:, [0, 2]]).all()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dtypes_are_preserved(path, dtype):
    fwd, bwd = PATHS[path]
    x, gamma, beta = _data((8, 3, 2, 2), seed=30)
    y, cache = fwd(x.astype(dtype), gamma.astype(np.float32), beta.astype(np.float32))
    dx, dgamma, dbeta = bwd(upstream(x.shape, seed=31).astype(dtype), cache)
    assert y.dtype == dx.dtype == dtype
    assert dgamma.dtype == dbeta.dtype == np.float32
    if dtype == np.float16:   # computed in float32: as good as rounding the result
        assert cache.x.dtype == np.float32
        ref = _reference(x.astype(np.float16).astype(np.float64), gamma, beta)
        _check("y float16", y, ref, 2e-3, 2e-3)


# ---------------------------------------------------------------- properties
try:
    from hypothesis import given, strategies as st
except ImportError:          # skips, or fails under BNBOOK_REQUIRE_ORACLES=1
    given = None

if given is None:
    def test_properties_need_hypothesis():
        require("hypothesis")
else:
    _cases = st.fixed_dictionaries({
        "shape": st.sampled_from([(2, 1), (3, 4), (9, 2), (2, 3, 1, 1), (3, 2, 2, 3)]),
        "seed": st.integers(0, 2**31 - 1),
        "log_scale": st.floats(-3, 3),
        "offset": st.floats(-1e3, 1e3),
        "path": st.sampled_from(sorted(PATHS)),
    })


    def _case(c):
        x, gamma, beta = _data(c["shape"], seed=c["seed"], offset=c["offset"],
                               scale=10.0 ** c["log_scale"])
        return x, gamma, beta, upstream(c["shape"], seed=c["seed"] + 1), PATHS[c["path"]]


    def _per_channel(a, f):
        return f(np.moveaxis(a, 1, -1).reshape(-1, a.shape[1]), axis=0)


    def _dx_scale(gamma, cache, dy):
        """The natural size of dx, |gamma| / sigma * |dy| (dx itself can be 0: N = 2)."""
        return np.abs(gamma).max() * np.max(cache.inv_std) * np.abs(dy).max()

    @given(_cases)
    def test_property_mean_zero_variance_one(c):
        x, _, _, _, (fwd, _) = _case(c)
        C = x.shape[1]
        y, cache = fwd(x, np.ones(C), np.zeros(C), eps=0.0)
        np.testing.assert_allclose(_per_channel(y, np.mean), 0, atol=1e-9)
        np.testing.assert_allclose(_per_channel(y, np.var), 1, rtol=1e-9)


    @given(_cases, st.floats(1e-2, 1e2), st.floats(-1e2, 1e2))
    def test_property_invariant_to_positive_affine_maps(c, a, b):
        x, gamma, beta, dy, (fwd, bwd) = _case(c)
        y1, c1 = fwd(x, gamma, beta, eps=0.0)
        y2, c2 = fwd(a * x + b, gamma, beta, eps=0.0)
        _check("y", y2, y1, 1e-6, 1e-7)
        # dx scales by 1/a (the chain rule through x -> a x + b); a * dx is invariant
        dx1, dx2 = bwd(dy, c1)[0], bwd(dy, c2)[0]
        scale = _dx_scale(gamma, c1, dy)
        _check("a * dx", a * dx2 / scale, dx1 / scale, 1e-6, 1e-6)


    @given(_cases)
    def test_property_gradient_identities(c):
        x, gamma, beta, dy, (fwd, bwd) = _case(c)
        # eps = 0: with eps > 0, sum(dx * x_hat) = gamma inv_std sum(dy x_hat) eps/(var+eps)
        y, cache = fwd(x, gamma, beta, eps=0.0)
        dx, dgamma, dbeta = bwd(dy, cache)
        x_hat = cache.x_hat
        np.testing.assert_allclose(dbeta, _per_channel(dy, np.sum), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dgamma, _per_channel(dy * x_hat, np.sum), rtol=1e-9,
                                   atol=1e-9)
        size = _dx_scale(gamma, cache, dy) * cache.m
        np.testing.assert_allclose(_per_channel(dx, np.sum) / size, 0, atol=1e-10)
        np.testing.assert_allclose(_per_channel(dx * x_hat, np.sum) / size, 0, atol=1e-10)


# ------------------------------------------------------- statistics and folding
def test_cache_holds_the_named_quantities():
    x, gamma, beta = _data((4, 3, 5, 2), seed=32, offset=1.5)
    _, cache = bn.forward(x, gamma, beta, eps=1e-3)
    mu = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))
    assert cache.m == 4 * 5 * 2 and cache.axis == 1 and cache.eps == 1e-3
    np.testing.assert_allclose(cache.mu, mu, rtol=1e-12)
    np.testing.assert_allclose(cache.var, var, rtol=1e-12)
    np.testing.assert_allclose(cache.inv_std, 1 / np.sqrt(var + 1e-3), rtol=1e-12)
    np.testing.assert_allclose(
        cache.x_hat, (x - mu[:, None, None]) / np.sqrt(var[:, None, None] + 1e-3),
        rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_batch_stats(offset):
    x = (offset + np.random.default_rng(33).standard_normal((64, 3, 4, 4)))
    mu, var = bn.batch_stats(x.astype(np.float32))
    x64 = x.astype(np.float32).astype(np.float64)
    assert mu.dtype == var.dtype == np.float32
    np.testing.assert_allclose(mu, x64.mean(axis=(0, 2, 3)), rtol=1e-7, atol=1e-6)
    np.testing.assert_allclose(var, x64.var(axis=(0, 2, 3)), rtol=1e-5)
    mu0, var0 = bn.batch_stats(x.transpose(1, 2, 3, 0), axis=0)
    np.testing.assert_allclose(var0, x.var(axis=(0, 2, 3)), rtol=1e-12)


def test_update_running_follows_the_pytorch_convention():
    x, _, _ = _data((10, 3), seed=34, offset=2.0)
    rm, rv = np.full(3, 0.5), np.full(3, 2.0)
    rm_copy, rv_copy = rm.copy(), rv.copy()
    mean, var = bn.update_running(rm, rv, x, momentum=0.25)
    np.testing.assert_allclose(mean, 0.75 * 0.5 + 0.25 * x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(var, 0.75 * 2.0 + 0.25 * x.var(0, ddof=1), rtol=1e-12)
    assert (rm == rm_copy).all() and (rv == rv_copy).all()        # inputs untouched
    stats = (x.mean(0), x.var(0), 10)                               # biased var and m
    _, cache = bn.forward(x, np.ones(3), np.zeros(3))
    for other in (bn.update_running(rm, rv, stats, 0.25),
                  bn.update_running(rm, rv, cache, 0.25)):
        np.testing.assert_allclose(other[0], mean, rtol=1e-12)
        np.testing.assert_allclose(other[1], var, rtol=1e-12)
    keep = bn.update_running(rm, rv, x, momentum=0.0)
    np.testing.assert_array_equal(keep[0], rm)
    f32 = bn.update_running(rm.astype(np.float32), rv.astype(np.float32), x)
    assert f32[0].dtype == f32[1].dtype == np.float32


@pytest.mark.parametrize("momentum", [-0.1, 1.5, None, True])
def test_update_running_rejects_bad_momentum(momentum):
    with pytest.raises(ValueError, match=r"momentum must be a number in \[0, 1\]"):
        bn.update_running(np.zeros(3), np.ones(3), np.ones((4, 3)), momentum=momentum)


def test_update_running_rejects_bad_statistics():
    with pytest.raises(ValueError, match=r"\(mean, biased_var, m\)"):
        bn.update_running(np.zeros(3), np.ones(3), (np.zeros(3), np.ones(3)))
    with pytest.raises(ValueError, match="needs m >= 2"):
        bn.update_running(np.zeros(3), np.ones(3), (np.zeros(3), np.ones(3), 1))
    with pytest.raises(ValueError, match=r"batch mean must have shape \(3,\)"):
        bn.update_running(np.zeros(3), np.ones(3), np.ones((4, 2)))


def _conv2d(x, w, b):
    """Direct 'valid' convolution (cross-correlation), stride 1: the test's own oracle."""
    kh, kw = w.shape[2:]
    patches = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    return np.einsum("nchwij,ocij->nohw", patches, w) + b[None, :, None, None]


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_fold_conv_then_bn_eval(dtype, rtol, with_bias):
    gen = np.random.default_rng(35)
    x = gen.standard_normal((2, 3, 7, 6)).astype(dtype)
    w = gen.standard_normal((4, 3, 3, 3)).astype(dtype)
    b = gen.standard_normal(4).astype(dtype) if with_bias else None
    gamma, beta = gen.uniform(0.5, 2, 4).astype(dtype), gen.standard_normal(4).astype(dtype)
    rm, rv = gen.standard_normal(4).astype(dtype), gen.uniform(0.1, 3, 4).astype(dtype)
    z = _conv2d(x.astype(np.float64), w.astype(np.float64),
                np.zeros(4) if b is None else b.astype(np.float64))
    ref = bn.inference(z, rm.astype(np.float64), rv.astype(np.float64),
                       gamma.astype(np.float64), beta.astype(np.float64))
    wf, bf = bn.fold(w, b, gamma, beta, rm, rv)
    assert wf.dtype == bf.dtype == dtype and wf.shape == w.shape and bf.shape == (4,)
    folded = _conv2d(x, wf, bf)
    np.testing.assert_allclose(folded, ref, rtol=rtol, atol=rtol * np.abs(ref).max())


def test_fold_linear_then_bn_eval():
    gen = np.random.default_rng(36)
    x, w, b = gen.standard_normal((5, 4)), gen.standard_normal((3, 4)), gen.standard_normal(3)
    gamma, beta, rm = gen.standard_normal(3), gen.standard_normal(3), gen.standard_normal(3)
    rv = gen.uniform(0.1, 3, 3)
    wf, bf = bn.fold(w, b, gamma, beta, rm, rv, eps=1e-3)
    np.testing.assert_allclose(x @ wf.T + bf,
                               bn.inference(x @ w.T + b, rm, rv, gamma, beta, eps=1e-3),
                               rtol=1e-12, atol=1e-12)


def test_fold_checks_shapes_and_types():
    w = np.ones((4, 3, 3, 3))
    ones, zeros = np.ones(4), np.zeros(4)
    with pytest.raises(ValueError, match=r"\(out, in\) for a Linear or \(out, in, kh, kw\)"):
        bn.fold(np.ones((4, 3, 3)), None, ones, zeros, zeros, ones)
    with pytest.raises(ValueError, match=r"gamma must have shape \(4,\)"):
        bn.fold(w, None, np.ones(3), zeros, zeros, ones)
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        bn.fold(w, np.ones(5), ones, zeros, zeros, ones)
    with pytest.raises(TypeError, match="weight must be a real floating-point array"):
        bn.fold(w.astype(int), None, ones, zeros, zeros, ones)


# ------------------------------------------------ the benchmark (smoke, not timed)
def test_timing_helpers():
    from bnbook.bench import timing
    calls = []
    t = timing.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                           repeats=3, warmup=1)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]    # warm-up, then rotating
    assert sorted(t) == ["a", "b"] and all(len(v) == 3 and (v >= 0).all() for v in t.values())
    assert timing.median_ms(np.array([0.001, 0.003, 0.002])) == pytest.approx(2.0)
    assert timing.copy_bandwidth(nbytes=1 << 20, repeats=3) > 0
    table = timing.format_table(["name", "ms"], [["x", 1.234], ["longer", 0.001]])
    lines = table.splitlines()
    assert len({len(line) for line in lines[:1] + lines[2:]}) == 1     # aligned
    assert "1.23" in table and "0.001" in table
    with pytest.raises(ValueError, match="funcs is empty"):
        timing.interleaved({})
    with pytest.raises(ValueError, match="need repeats >= 1"):
        timing.interleaved({"a": lambda: None}, repeats=0)


def test_benchmark_runs_on_small_shapes(capsys):
    from bnbook.bench import __main__ as bench_main
    assert bench_main.main(["batchnorm", "--repeats", "1", "--warmup", "0",
                            "--shapes", "4x3x2x2,6x5"]) == 0
    out = capsys.readouterr().out
    assert "copy bandwidth" in out and "4x3x2x2" in out and "6x5" in out
    with pytest.raises(SystemExit):
        bench_main.main(["batchnorm", "--shapes", "4x3x2"])
    assert bench_main.main(["nope"]) == 2


def test_array_api_strict_float32_with_a_large_offset():
    xps = require("array_api_strict")
    x = (1e6 + np.random.default_rng(37).standard_normal((32, 3, 2, 2))).astype(np.float32)
    g, b = np.ones(3, np.float32), np.zeros(3, np.float32)
    dy = upstream(x.shape, seed=38)                      # random: with ones, dx = 0
    y, cache = bn.forward(xps.asarray(x), xps.asarray(g), xps.asarray(b))
    dx, dg, _ = bn.backward(xps.asarray(dy.astype(np.float32)), cache)
    assert y.dtype == dx.dtype == dg.dtype == xps.float32
    _check("y", np.asarray(y), R.forward(x, g, b), 0.0, 1e-5)
    dx64 = R.backward(dy.astype(np.float32), x, g)[0]
    _check("dx", np.asarray(dx), dx64, 0.0, 1e-5 * np.abs(dx64).max())
    _check("x_hat", np.asarray(cache.x_hat), R.normalize(x)[3], 0.0, 1e-5)


# ------------------------------------------------------------- the shift rule
@pytest.mark.parametrize("ratio,plain", [(0.0, True), (2.5, True), (2.8, True), (2.9, False),
                                         (30.0, False), (3e4, False)])
@pytest.mark.parametrize("shape,axis", [((1024, 8), 1), ((64, 8, 4, 4), 1),
                                        ((4, 28, 28, 64), 0), ((6, 16), 0)])
def test_plain_sums_exactly_where_mu2_is_at_most_8_var(shape, axis, ratio, plain):
    """mu / sigma = ratio per channel: plain sums up to mu^2 = 8 var, accurate there."""
    z = np.moveaxis(np.random.default_rng(54).standard_normal(shape), axis, 0)
    axes = tuple(range(1, z.ndim))
    z = (z - z.mean(axis=axes, keepdims=True)) / z.std(axis=axes, keepdims=True)
    x = np.ascontiguousarray(np.moveaxis(ratio + z, 0, axis)).astype(np.float32)
    C = shape[axis]
    ones, zeros = np.ones(C, np.float32), np.zeros(C, np.float32)
    y, cache = bn.forward(x, ones, zeros, axis=axis)
    assert (bool(np.all(cache.k == 0)) and np.shares_memory(cache.x_k, x)) == plain
    if not plain:                             # k: the first value of each channel
        first = np.moveaxis(x, axis, 0).reshape(C, -1)[:, 0]
        np.testing.assert_array_equal(cache.k, first)
    dy = upstream(shape, seed=55)
    dx_r = R.backward(dy, x, ones, 1e-5, axis)[0]
    _check("y", y, R.forward(x, ones, zeros, 1e-5, axis), 0.0, 1e-5)
    _check("dx", bn.backward(dy.astype(np.float32), cache)[0], dx_r, 0.0,
           1e-5 * np.abs(dx_r).max())


def test_shift_rule_is_per_channel():
    """One channel far from zero: only that channel is shifted."""
    x, gamma, beta = _data((64, 3), seed=56, dtype=np.float32)
    x[:, 1] += 1e4
    _, cache = bn.forward(x, gamma, beta)
    assert cache.k[0] == cache.k[2] == 0 and cache.k[1] == x[0, 1]


# ----------------------------------------------------- layouts the fast path takes
@pytest.mark.parametrize("shape,axis,to_torch", [
    ((6, 10, 10, 8), 0, (3, 0, 1, 2)),        # (C, H, W, N) -> (N, C, H, W)
    ((84, 16), 0, (1, 0)),                    # (D, N) -> (N, D)
    ((32, 12), 1, (0, 1)),
    ((4, 5, 6, 3), 3, (0, 3, 1, 2))])         # channels last
def test_layouts_match_torch_float64(torch, shape, axis, to_torch):
    x, gamma, beta = _data(shape, seed=44, offset=2.0, scale=3.0, axis=axis)
    dy = upstream(shape, seed=45)
    y, cache = bn.forward(x, gamma, beta, axis=axis)
    dx, dgamma, dbeta = bn.backward(dy, cache)
    tx = torch.tensor(x.transpose(to_torch).copy(), requires_grad=True)
    tg, tb = (torch.tensor(a, requires_grad=True) for a in (gamma, beta))
    ty = torch.nn.functional.batch_norm(tx, None, None, tg, tb, training=True, eps=1e-5)
    ty.backward(torch.tensor(dy.transpose(to_torch).copy()))
    _check("y", y.transpose(to_torch), ty.detach().numpy(), 1e-10, 1e-12)
    _check("dx", dx.transpose(to_torch), tx.grad.numpy(), 1e-9, 1e-12)
    _check("dgamma", dgamma, tg.grad.numpy(), 1e-9, 1e-12)
    _check("dbeta", dbeta, tb.grad.numpy(), 1e-10, 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("value", [0.0, 3.7, -1e4])
def test_constant_channel_on_the_batch_innermost_layout(dtype, value):
    x, gamma, beta = _data((3, 4, 4, 6), seed=48, axis=0, dtype=dtype)
    x[1] = value
    dy = upstream(x.shape, seed=49).astype(dtype)
    y, cache = bn.forward(x, gamma, beta, axis=0)
    dx, dgamma, dbeta = bn.backward(dy, cache)
    assert all(np.isfinite(a).all() for a in (y, dx, dgamma, dbeta))
    np.testing.assert_allclose(y[1], np.broadcast_to(beta[1], y[1].shape), rtol=0, atol=1e-6)
    expected = gamma[1] / np.sqrt(1e-5) * (dy[1] - dy[1].mean())
    np.testing.assert_allclose(dx[1], expected, rtol=1e-4, atol=1e-4)
    assert dgamma[1] == 0


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("where", [(1, 0, 0, 0), (1, 2, 3, 4)])   # the shift k, or later
def test_nan_and_inf_stay_in_their_channel_batch_innermost(bad, where):
    x, gamma, beta = _data((3, 4, 4, 6), seed=50, axis=0, dtype=np.float32)
    x[where] = bad
    with np.errstate(invalid="ignore", over="ignore"):
        y, cache = bn.forward(x, gamma, beta, axis=0)
        dx, dgamma, _ = bn.backward(upstream(x.shape, seed=51).astype(np.float32), cache)
    assert not np.isfinite(y[1]).any() and not np.isfinite(dx[1]).any()
    assert not np.isfinite(dgamma[1])
    assert np.isfinite(y[[0, 2]]).all() and np.isfinite(dx[[0, 2]]).all()


def test_fast_path_leaves_its_inputs_alone_and_accepts_odd_dy():
    x, gamma, beta = _data((7, 5), seed=52, offset=3.0, dtype=np.float32)
    x0 = x.copy()
    dy = upstream((5, 7), seed=53).T                      # float64, not C-contiguous
    y, cache = bn.forward(x, gamma, beta)
    dx = bn.backward(dy, cache)[0]
    np.testing.assert_array_equal(x, x0)
    assert dx.dtype == np.float32 and dx.flags.c_contiguous
    dx_r = R.backward(dy.astype(np.float32), x, gamma.astype(np.float32))[0]
    _check("dx", dx, dx_r, 1e-5, 1e-5 * np.abs(dx_r).max())
    xt = np.asfortranarray(x)                             # a non-contiguous x is copied
    _check("y of a Fortran-order x", bn.forward(xt, gamma, beta)[0], y, 0, 0)


@pytest.mark.parametrize("x,gamma,eps,match", [
    (np.zeros((4, 3), np.float32), np.ones(2, np.float32), 1e-5, r"gamma must have shape \(3,\)"),
    (np.zeros((1, 3), np.float32), np.ones(3, np.float32), 1e-5, "at least 2 values"),
    (np.zeros((4, 3), np.float32), np.ones(3, np.float32), -1.0, "eps must be"),
    (np.zeros((4, 3), np.float32), np.ones(3, np.float32), float("nan"), "eps must be")])
def test_float32_bad_input_gets_the_full_error(x, gamma, eps, match):
    with pytest.raises(ValueError, match=match):
        bn.forward(x, gamma, np.zeros_like(gamma), eps=eps)
