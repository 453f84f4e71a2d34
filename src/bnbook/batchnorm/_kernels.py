r"""The NumPy fast path: the equations of :mod:`.reference` in few passes over memory.

``x`` is viewed as a C-contiguous ``(P, C, Q)`` array, the channels in the middle:
``(1, C, H*W*N)`` for the batch-innermost ``(C, H, W, N)`` with channel axis 0
(LeNet), ``(N, C, H*W)`` for ``(N, C, H, W)`` with axis 1, and ``(P, C)`` when
``Q == 1`` (``(N, D)``, channels last); any other layout is copied to one of these.
The work goes block by block (``BLOCK_BYTES``, 512 KiB), so that the second and
later operations on a block find it in the L2 cache. One thread.

The kernels, named after PyTorch's: :func:`batch_norm_stats` (per-channel sums),
:func:`batch_norm_elemt` (``y``), :func:`batch_norm_backward_reduce` (the two sums
of the backward pass), :func:`batch_norm_backward_elemt` (``dx``).

Accumulation (float32 input; float64 input is summed in float64 throughout):
float32 only within one block row, i.e. the ``Q`` values of one (p, c), or the
part of them inside a block (at most ``MAX_DOT = 8192``), summed by BLAS dot
products (OpenBLAS keeps several float32 partial sums); or within runs of
``ROWS = 32`` rows when ``Q == 1``.
Those partial sums are added in float64 across rows and blocks. The variance is
``E[d^2] - E[d]^2`` of ``d = x - k``; the shift ``k`` follows :func:`shift`.
"""
import math

import numpy as np

BLOCK_BYTES = 1 << 19   # blocks of 512 KiB: several fit the 2 MiB L2 cache; few calls
ROWS = 32               # float32 runs of 32 rows when Q == 1, float64 beyond
LONG_ROW = 1024         # rows of Q >= 1024 values take a broadcast (C,) operand
MAX_DOT = 8192          # dots of at most 8192 values: OpenBLAS threads longer ones,
#                         and its busy-waiting workers next to PyTorch's threads made
#                         LeNet with BN 6x slower in the 2-thread benchmark
T = 8.0                 # plain sums where mu^2 <= T var (see shift)


def view(a, axis):
    """``a`` as a C-contiguous (P, C, Q), or (P, C) when Q == 1."""
    P, C = math.prod(a.shape[:axis]), a.shape[axis]
    a = np.ascontiguousarray(a)
    return a.reshape(P, C) if a.size == P * C else a.reshape(P, C, -1)


def blocks(v):
    """Index tuples cutting the view ``v`` into blocks of about BLOCK_BYTES."""
    row = v[0].nbytes
    if v.ndim == 2 or row <= BLOCK_BYTES:
        step = max(1, BLOCK_BYTES // row)
        step = step - step % ROWS if step > ROWS and v.ndim == 2 else step
        return [(slice(p, p + step),) for p in range(0, v.shape[0], step)]
    step = max(1, BLOCK_BYTES // (v.shape[1] * v.itemsize))   # split a row along Q,
    step = step - step % MAX_DOT if step > MAX_DOT else step  # in whole dot lengths
    return [(slice(p, p + 1), slice(None), slice(q, q + step))
            for p in range(v.shape[0]) for q in range(0, v.shape[2], step)]


def _sums(a, b):
    """Per-channel float64 ``sum a`` and ``sum a*b`` of one block (see module doc)."""
    if a.ndim == 3:             # (p, C, q): BLAS dots of at most MAX_DOT values along q
        p, C, q = a.shape
        n = q - q % MAX_DOT if q > MAX_DOT else q
        ones = np.ones(min(n, MAX_DOT), a.dtype)
        head = a[..., :n].reshape(p, C, -1, ones.size)
        s1 = np.vecdot(head, ones).sum(axis=(0, 2), dtype=np.float64)
        s2 = np.vecdot(head, b[..., :n].reshape(head.shape)).sum(axis=(0, 2),
                                                                 dtype=np.float64)
        if n < q:                                       # the last q % MAX_DOT values
            t1, t2 = _sums(a[..., n:], b[..., n:])
            s1, s2 = s1 + t1, s2 + t2
        return s1, s2
    n = a.shape[0] - a.shape[0] % ROWS               # (p, C): runs of ROWS rows
    head, hb = a[:n].reshape(-1, ROWS, a.shape[1]), b[:n].reshape(-1, ROWS, a.shape[1])
    s1 = head.sum(axis=1).sum(axis=0, dtype=np.float64)
    s2 = np.einsum("brc,brc->bc", head, hb).sum(axis=0, dtype=np.float64)
    if n < a.shape[0]:                               # the last rows, in float64
        s1 = s1 + a[n:].sum(axis=0, dtype=np.float64)
        s2 = s2 + np.einsum("pc,pc->c", a[n:], b[n:], dtype=np.float64)
    return s1, s2


def _chan(vec, v):
    """A (C,) vector as an operand broadcasting along the channels of the view ``v``.

    NumPy's loop over an operand repeated along the rows costs about 150 ns per row
    (``Q < LONG_ROW`` values), three times the arithmetic on a 784-value row here;
    two contiguous operands run at full speed. So short rows get the vector
    repeated along Q, (1, C, Q), and a 2-D view gets ROWS copies, (ROWS, C), for
    the blocks seen as (n, ROWS, C) by :func:`_part`. Take a block's share with
    :func:`_at`.
    """
    vec = vec.astype(v.dtype)
    if v.ndim == 2:
        return np.broadcast_to(vec, (ROWS, vec.size)).copy()
    if v.shape[2] >= LONG_ROW:
        return vec[None, :, None]
    return vec.repeat(v.shape[2]).reshape(1, v.shape[1], v.shape[2])


def _part(a, b):
    """Block ``b`` of ``a``; a 2-D block of whole runs of ROWS rows as (n, ROWS, C)."""
    a = a[b]
    if a.ndim == 2 and a.shape[0] % ROWS == 0:
        return a.reshape(-1, ROWS, a.shape[1])
    return a


def _at(op, b, part):
    """The share of the operand ``op`` of :func:`_chan` that ``part`` of block b needs."""
    if op.ndim == 2:                                  # (ROWS, C): whole runs, or one row
        return op if part.ndim == 3 else op[:1]
    return op[:, :, b[2]] if len(b) == 3 and op.shape[2] > 1 else op


def shift(v, mean, var):
    r"""The one shift rule: ``k = 0`` where :math:`\mu^2 \le T \sigma^2`, else the
    first value of the channel. Returns ``k`` (C,) in ``v``'s dtype, or None if 0.

    The variance :math:`E[(x-k)^2] - E[x-k]^2` from sums of relative error
    :math:`\delta` has relative error about :math:`(1 + 3r)\delta`, with
    :math:`r = (\mu - k)^2 / \sigma^2`. ``mean`` and ``var`` are the plain-sum
    estimates; where they give ``r = mu^2 / var <= T = 8``, the plain sums stand.
    Elsewhere (large offsets such as ``1e6 + N(0, 1)``, NaN, Inf) the first value
    of the channel is within a few standard deviations of the mean, and exact for
    a constant channel; NaN or Inf there stays in its own channel.
    """
    far = ~(mean * mean <= T * var)                 # NaN compares False: shifted
    if not far.any():
        return None
    first = v[0, :, 0] if v.ndim == 3 else v[0]
    return np.where(far, first, 0).astype(v.dtype)


def batch_norm_stats(v, idx, k=None, out=None):
    """Per-channel float64 mean and biased variance of ``v - k`` (``k`` None: 0).

    With ``k``, ``v - k`` is written to ``out`` block by block and summed there.
    """
    kb = None if k is None else _chan(k, v)
    s1 = s2 = 0.0
    for b in idx:
        if k is None:
            d = v[b]
        else:
            d = _part(out, b)
            np.subtract(_part(v, b), _at(kb, b, d), out=d)
            d = out[b]
        p1, p2 = _sums(d, d)
        s1, s2 = s1 + p1, s2 + p2
    m = v.size // v.shape[1]
    return s1 / m, s2 / m - (s1 / m) ** 2


def batch_norm_elemt(d, scale, shift_, idx):
    """``y = d * scale + shift`` per channel, ``d = x - k``, block by block."""
    y = np.empty_like(d)
    sc, sh = _chan(scale, d), _chan(shift_, d)
    for b in idx:
        out = _part(y, b)
        np.multiply(_part(d, b), _at(sc, b, out), out=out)
        out += _at(sh, b, out)
    return y


def batch_norm_backward_reduce(dy, d, idx):
    """Per-channel float64 ``sum dy`` and ``sum dy * d``, block by block."""
    s1 = s2 = 0.0
    for b in idx:
        p1, p2 = _sums(dy[b], d[b])
        s1, s2 = s1 + p1, s2 + p2
    return s1, s2


def batch_norm_backward_elemt(dy, d, A, B, C, idx):
    """``dx = A (dy + B d + C)`` per channel, block by block (no temporaries)."""
    dx = np.empty_like(d)
    Ab, Bb, Cb = (_chan(v, d) for v in (A, B, C))
    for b in idx:
        out = _part(dx, b)
        np.multiply(_part(d, b), _at(Bb, b, out), out=out)
        out += _part(dy, b)
        out += _at(Cb, b, out)
        out *= _at(Ab, b, out)
    return dx
