"""The NumPy paths of :mod:`bnbook.batchnorm` (same equations, same ``Cache``).

Two private paths; :mod:`bnbook.batchnorm` checks the arguments and picks one.

**The matrix path** (``layout``, ``forward``, ``backward``) takes the two
layouts that need no copy and no blocking:

* ``"rows"``: channel axis 0 of a C-contiguous array, viewed as ``(C, M)``
  (the batch-innermost (C, H, W, N) and (D, N) layouts of the LeNet model);
* ``"cols"``: a C-contiguous ``(N, D)`` with channel axis 1, viewed as ``(M, C)``.

Why it is faster than the blocked general path: in the rows layout the
per-channel sums are a pairwise ``sum`` and BLAS dot products, there are few
Python calls, and the elementwise work writes into the
output array (``out=``) without temporaries.
BLAS accumulates float32 sums with many partial sums, which kept the relative
error of a 50,000-term sum of squares below 1e-7 here (NumPy's ``einsum``
accumulating one float32 running sum per lane: 1.6e-6).

Accuracy rule: plain sums of ``x`` and ``x*x`` are kept only where
``mu^2 <= T var`` in every channel. ``E[x^2] - E[x]^2`` then has a relative
error of about ``(1 + 3T) d``, with ``d`` the relative error of the float32 sums:
``T = 3`` (as in the blocked path) for the column sums, ``T = 16`` for the rows
layout, whose BLAS sums had ``d <= 1e-7`` (so at most about 5e-6 on the
variance, tested at m = 50,176; LeNet's first BN layer has ``mu^2 / var`` of
about 4 on random images, and takes the one-pass route). Otherwise the sums are
redone on ``x - k`` with ``k`` the first value of each channel (exact for a constant
channel, within a few standard deviations of the mean otherwise), so offsets
such as ``1e6 + N(0, 1)`` do not cancel. NaN and Inf fail the check and
propagate through ``k`` to their own channel only.

**The blocked path** (``forward_blocked``, ``backward_blocked``) takes any
layout, e.g. (N, C, H, W) with channel axis 1: it views ``x`` as (P, C, Q) and
computes the sums block by block while a block is in cache, float32 inside a
block and float64 across blocks, optionally on several threads.
"""
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_PLAIN_RATIO = {"rows": 16.0, "cols": 3.0}     # T: plain sums where mu^2 <= T var


def layout(x, axis):
    """``"rows"``, ``"cols"`` or None (use the general path) for ``x`` and ``axis``."""
    if type(x) is not np.ndarray or x.dtype not in _FLOATS or not x.flags.c_contiguous \
            or x.ndim not in (2, 4) or x.size == 0 or type(axis) is not int:
        return None
    if axis == 0 or axis == -x.ndim:
        return "rows"
    if x.ndim == 2 and axis in (1, -1):
        return "cols"
    return None


def _matrix(a, lay):
    """``a`` as (C, M) for "rows" or (M, C) for "cols" (a view: ``a`` is contiguous)."""
    return a.reshape(a.shape[0], -1) if lay == "rows" else a


def _bcast(v, lay):
    """A (C,) vector broadcasting along the channels of the matrix view."""
    return v[:, None] if lay == "rows" else v


def _sums(a, b, lay):
    """Per-channel ``sum a`` and ``sum a*b`` as float64 (C,) vectors.

    Rows: NumPy's pairwise sum and C BLAS dot products (``vecdot``). Not a
    matrix-vector product with ones: OpenBLAS runs gemv on several threads, whose
    busy-waiting workers made the interleaved benchmark 10x slower next to
    PyTorch's own threads; its dot is single-threaded. Columns: NumPy's reduction
    along axis 0 and a column einsum.
    """
    if lay == "rows":                           # (C, M)
        s1 = a.sum(axis=1)                      # pairwise summation
        s2 = np.vecdot(a, b)
    else:                                       # (M, C)
        s1 = a.sum(axis=0)
        s2 = np.einsum("pc,pc->c", a, b)
    return s1.astype(np.float64), s2.astype(np.float64)


def forward(x, gamma, beta, eps, axis, lay, cache_type):
    """Training-mode forward on a fast layout; returns ``(y, cache)``.

    The caller has checked ``x`` (see :func:`layout`); ``gamma``, ``beta``, ``eps``
    and the batch size are checked here, and anything unusual returns None so that
    the general path raises its error message.
    """
    C = x.shape[0] if lay == "rows" else x.shape[1]
    m = x.size // C
    if gamma.shape != (C,) or beta.shape != (C,) or gamma.dtype.kind != "f" \
            or beta.dtype.kind != "f" or m < 2 or type(eps) is not float \
            or not 0 <= eps < np.inf:
        return None
    ct = x.dtype
    x2 = _matrix(x, lay)
    with np.errstate(invalid="ignore", over="ignore"):
        s1, s2 = _sums(x2, x2, lay)
        mean, var = s1 / m, s2 / m - (s1 / m) ** 2
        if (mean * mean <= _PLAIN_RATIO[lay] * var).all():   # plain sums are accurate
            x_k, k, mean_d = x2, np.zeros(C, ct), mean
        else:                                           # shift by a value of each channel
            k = (x2[:, 0] if lay == "rows" else x2[0]).copy()
            x_k = np.subtract(x2, _bcast(k, lay))
            s1, s2 = _sums(x_k, x_k, lay)
            mean_d = s1 / m
            var = np.maximum(s2 / m - mean_d * mean_d, 0.0)     # NaN stays NaN
        inv_std = 1.0 / np.sqrt(var + eps)                      # float64
        scale = gamma * inv_std                                 # y = (x - k) scale + shift
        shift = beta - scale * mean_d
        y = np.multiply(x_k, _bcast(scale.astype(ct), lay))
        y += _bcast(shift.astype(ct), lay)
    cache = cache_type(x, x_k.reshape(x.shape), k, mean_d.astype(ct), k + mean_d, var,
                       inv_std.astype(ct), gamma.astype(ct), m, axis % x.ndim, eps,
                       x.dtype, gamma.dtype)
    return y.reshape(x.shape), cache


def backward(dy, c, lay):
    r"""Gradients on a fast layout: ``dx = A (dy + B' (x - k) + C')`` per channel.

    With :math:`A = \gamma/\sigma`, :math:`B' = -\mathrm{d}\gamma/(m\sigma)` and
    :math:`C' = -\mathrm{d}\beta/m - B'(\mu - k)`, the compact form
    :math:`\frac{\gamma}{m\sigma}(m\,dy - \sum dy - \hat x \sum dy\,\hat x)` expanded.
    """
    ct = c.x_k.dtype
    d2 = _matrix(c.x_k, lay)                                    # x - k
    dy2 = _matrix(np.ascontiguousarray(dy, dtype=ct), lay)
    sum_dy, sum_dy_d = _sums(dy2, d2, lay)
    inv_std = c.inv_std.astype(np.float64)
    mu_k = c.mu_k.astype(np.float64)
    dbeta = sum_dy
    dgamma = inv_std * (sum_dy_d - mu_k * sum_dy)               # sum dy * x_hat
    A = c.gamma * inv_std
    B = -inv_std * dgamma / c.m
    C = -dbeta / c.m - B * mu_k
    dx = np.multiply(d2, _bcast(B.astype(ct), lay))
    dx += dy2
    dx += _bcast(C.astype(ct), lay)
    dx *= _bcast(A.astype(ct), lay)
    return (dx.reshape(dy.shape).astype(c.dtype, copy=False), dgamma.astype(c.param_dtype),
            dbeta.astype(c.param_dtype))


# ---------------------------------------------------------------- the blocked path
_THREADS = None       # None: BNBOOK_THREADS, default 1 (set 2 to share blocks out)
_MIN_SPLIT = 1 << 16  # arrays above 64 KiB are shared out over the threads
_POOL = None
# Blocks of 1 MiB: the sums of a block run while it is still in cache, and there are
# few enough blocks that Python's per-call cost stays small. Measured here (CPU time,
# forward + backward): 128 KiB to 1 MiB blocks, 1 MiB fastest by a few per cent.
_BLOCK_BYTES = 1 << 20


# x is viewed as (P, C, Q) with the channels in the middle, or as (P, C) when Q == 1
# (numpy's inner loops run along the last axis: a last axis of length 1 is slow).
def _view(a, axis):
    """``a`` as a C-contiguous (P, C, Q) or (P, C) array; and its einsum letters."""
    P, C = math.prod(a.shape[:axis]), a.shape[axis]
    Q = math.prod(a.shape[axis + 1:])
    a = np.ascontiguousarray(a)
    return (a.reshape(P, C), "pc") if Q == 1 else (a.reshape(P, C, Q), "pcq")


def _chan(v, sub):
    """A (C,) vector shaped to broadcast along the channel axis of the view."""
    return v[None, :] if sub == "pc" else v[None, :, None]


def _blocks(shape, itemsize):
    """Index tuples cutting the view into blocks of about _BLOCK_BYTES (at least one
    block per thread once the array is larger than _MIN_SPLIT)."""
    total = math.prod(shape) * itemsize
    size = min(_BLOCK_BYTES, max(_MIN_SPLIT, -(-total // _threads())))
    P, row = shape[0], math.prod(shape[1:]) * itemsize
    if row <= size or len(shape) == 2:
        step = max(1, size // max(row, 1))
        return [(slice(p, p + step),) for p in range(0, P, step)]
    step = max(1, size // (shape[1] * itemsize))           # split one row along Q
    return [(slice(p, p + 1), slice(None), slice(q, q + step))
            for p in range(P) for q in range(0, shape[2], step)]


def _threads():
    """Worker threads for the NumPy path: ``_THREADS``, else BNBOOK_THREADS, else 1.

    More than one helps only on an otherwise idle machine (not measured here: the
    machine this was written on was shared), so the default is one thread.
    """
    global _POOL
    n = _THREADS or max(1, int(os.environ.get("BNBOOK_THREADS", "1")))
    if n > 1 and (_POOL is None or _POOL._max_workers != n - 1):
        _POOL = ThreadPoolExecutor(n - 1, thread_name_prefix="bnbook")
    return n


def _run(fn, blocks):
    """``[fn(b) for b in blocks]``, the blocks shared out over the threads in order.

    NumPy releases the GIL inside its loops, so threads run at the same time. Each
    thread takes a contiguous run of blocks; results come back in block order, so
    sums over them are the same whatever the timing (deterministic).
    """
    n = min(_threads(), len(blocks))
    if n == 1:
        return [fn(b) for b in blocks]
    cuts = [len(blocks) * i // n for i in range(n + 1)]
    groups = [blocks[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    futures = [_POOL.submit(lambda g: [fn(b) for b in g], g) for g in groups[1:]]
    first = [fn(b) for b in groups[0]]
    return first + [r for f in futures for r in f.result()]


def _block_sums(xv, sub, blocks, k=None, x_k=None):
    """Per-channel sums of d and d*d, d = x (k None) or x - k written into ``x_k``.

    float32 inside a block (the block is in cache), float64 across blocks.
    """
    def sums(idx):
        d = xv[idx] if k is None else np.subtract(xv[idx], _chan(k, sub), out=x_k[idx])
        return np.einsum(f"{sub}->c", d), np.einsum(f"{sub},{sub}->c", d, d)
    s1 = np.zeros(xv.shape[1])
    s2 = np.zeros(xv.shape[1])
    for p1, p2 in _run(sums, blocks):
        s1 += p1
        s2 += p2
    m = xv.size // xv.shape[1]
    return s1 / m, s2 / m


def _stats_np(xv, sub, blocks):
    """Batch statistics: (x - k, k, mu - k, mu, var), k = 0 when that is accurate.

    First the plain sums of x and x^2. Their variance ``E[x^2] - E[x]^2`` loses
    about ``(mu^2 + var) / var`` times the float32 rounding, so it is kept only
    where ``mu^2 <= 3 var`` in every channel; otherwise the sums are redone on
    ``x - k`` with ``k`` the float64 mean of the first block (the slow, exact path
    that large offsets such as ``1e6 + N(0, 1)`` take; NaN and Inf take it too).
    """
    mean, mean_sq = _block_sums(xv, sub, blocks)
    var = mean_sq - mean * mean
    if np.all(mean * mean <= 3 * var):
        return xv, np.zeros(xv.shape[1], xv.dtype), mean, mean, var
    axes = (0,) if sub == "pc" else (0, 2)
    k = xv[blocks[0]].mean(axis=axes, dtype=np.float64).astype(xv.dtype)   # (C,)
    x_k = np.empty_like(xv)
    mean_d, mean_sq = _block_sums(xv, sub, blocks, k, x_k)
    var = np.maximum(mean_sq - mean_d * mean_d, 0.0)                        # NaN stays NaN
    return x_k, k, mean_d, k + mean_d, var


def forward_blocked(x, gamma, beta, eps, axis, m, cache_type):
    """Training-mode forward, block by block; the caller has checked the arguments."""
    ct = np.float32 if x.dtype == np.float16 else x.dtype
    xv, sub = _view(x.astype(ct, copy=False), axis)
    blocks = _blocks(xv.shape, xv.itemsize)
    with np.errstate(invalid="ignore", over="ignore"):
        x_k, k, mean_d, mu, var = _stats_np(xv, sub, blocks)
        inv_std = 1.0 / np.sqrt(var + eps)                       # float64
        scale = gamma * inv_std                                  # y = (x - k) scale + shift
        shift = beta - scale * mean_d
        scale_b, shift_b = (_chan(v.astype(ct), sub) for v in (scale, shift))
        yv = np.empty_like(xv)

        def block_y(idx):
            out = np.multiply(x_k[idx], scale_b, out=yv[idx])
            out += shift_b
        _run(block_y, blocks)
    cache = cache_type(xv.reshape(x.shape), x_k.reshape(x.shape), k, mean_d.astype(ct), mu, var,
                  inv_std.astype(ct), gamma.astype(ct), m, axis, eps, x.dtype, gamma.dtype)
    return yv.reshape(x.shape).astype(x.dtype, copy=False), cache


def backward_blocked(dy, cache):
    """Gradients block by block: ``dx = A dy + B (x - k) + C`` per channel."""
    c = cache
    ct = c.x_k.dtype
    dv, sub = _view(c.x_k, c.axis)                       # x - k
    dyv, _ = _view(dy.astype(ct, copy=False), c.axis)
    blocks = _blocks(dv.shape, dv.itemsize)

    def block_sums(idx):                                 # sums of dy and dy * (x - k)
        return (np.einsum(f"{sub}->c", dyv[idx]),
                np.einsum(f"{sub},{sub}->c", dyv[idx], dv[idx]))
    sum_dy = np.zeros(dv.shape[1])
    sum_dy_d = np.zeros(dv.shape[1])
    for p1, p2 in _run(block_sums, blocks):
        sum_dy += p1
        sum_dy_d += p2
    inv_std = c.inv_std.astype(np.float64)
    dbeta = sum_dy
    dgamma = inv_std * (sum_dy_d - c.mu_k.astype(np.float64) * sum_dy)   # sum dy * x_hat
    # dx = A dy + B (x - k) + C per channel: the compact form, expanded
    A = c.gamma.astype(np.float64) * inv_std
    B = -A * inv_std * dgamma / c.m
    C = -A * dbeta / c.m - B * c.mu_k.astype(np.float64)
    A_b, B_b, C_b = (_chan(v.astype(ct), sub) for v in (A, B, C))
    dxv = np.empty_like(dv)

    def block_dx(idx):
        out = np.multiply(dyv[idx], A_b, out=dxv[idx])
        out += np.multiply(dv[idx], B_b)                 # one block: a small temporary
        out += C_b
    _run(block_dx, blocks)
    return (dxv.reshape(dy.shape).astype(c.dtype, copy=False),
            dgamma.astype(c.param_dtype), dbeta.astype(c.param_dtype))
