"""LeNet-5's private fast layers, in a batch-innermost layout: (C, H, W, N) and (D, N).

Only :class:`bnbook.models.lenet.LeNet5` uses them; the readable (N, C, H, W)
layers in :mod:`bnbook.layers` are the reference (:func:`~bnbook.models.lenet.reference_lenet`
builds the same network from them), and the tests check that both agree.

Why the layout matters. In (N, C, H, W), an im2col column gathers ``kh*kw``
short runs of ``Wo`` floats per image and channel: many tiny copies. With the
batch innermost, the patch offset ``(i, j)`` selects one slice
``x[:, i:i+Ho, j:j+Wo, :]`` whose rows are ``Wo*N`` contiguous floats, so
im2col is ``kh*kw`` large slice copies, the convolution is *one* matrix product
``(C_out, C*kh*kw) @ (C*kh*kw, Ho*Wo*N)`` whose result already is
(C_out, Ho, Wo, N), and BN statistics per channel reduce over one contiguous
block. A convolution whose kernel covers the whole input (LeNet's conv3) needs
no im2col at all: it is a dense layer on ``x.reshape(C*H*W, N)``.

Buffers. The multi-megabyte arrays of a step (im2col columns, layer outputs,
gradients) are allocated once per shape and reused: a fresh large array costs
page faults on every step. Like every layer's cache, a reused buffer holds the
*most recent* forward (or backward) pass; arrays handed to the caller of the
model (logits, :meth:`activations`, the input gradient) are never such buffers.
"""
import numpy as np

from .. import backend
from .. import init as initializers
from ..layers.base import Module, Parameter
from ..layers.basic import Linear


def scratch(module, name, shape, dtype, xp, zero=False):
    """The module's reusable array ``name``, (re)allocated when shape or dtype change.

    With ``zero=True`` a new buffer starts at zero (an old one is left as it is).
    """
    bufs = module.__dict__.setdefault("_scratch", {})
    buf = bufs.get(name)
    if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype \
            or backend.array_module(buf) is not xp:
        buf = bufs[name] = (xp.zeros if zero else xp.empty)(shape, dtype=dtype)
    return buf


def _check(layer, x, ndim, first):
    if not hasattr(x, "ndim") or x.ndim != ndim or x.shape[0] != first:
        want = "(C, H, W, N)" if ndim == 4 else "(D, N)"
        raise ValueError(f"{layer} expects input of shape {want} with {first} on axis 0, "
                         f"got {tuple(getattr(x, 'shape', ()))}")


class ConvCHWN(Module):
    """Stride-1, unpadded convolution on (C, H, W, N); weight (C_out, C_in, k, k) as PyTorch.

    ``input_grad=False`` skips ``dx`` (for a first layer); ``backward`` then returns None.
    """

    def __init__(self, in_channels, out_channels, kernel_size, bias=True, init="lecun",
                 rng=None, dtype=np.float32, input_grad=True):
        gen = np.random.default_rng(rng)
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        xp = backend.xp()
        self.in_channels, self.out_channels, self.k = in_channels, out_channels, kernel_size
        self.weight = Parameter(xp.asarray(initializers.get(init)(shape, gen, dtype)))
        self.bias = Parameter(xp.zeros(out_channels, dtype=dtype)) if bias else None
        self.input_grad = input_grad

    def forward(self, x):
        _check("ConvCHWN", x, 4, self.in_channels)
        xp = backend.array_module(x)
        c, h, w, n = x.shape
        k = self.k
        ho, wo = h - k + 1, w - k + 1
        self.x_shape = x.shape
        if ho == 1 and wo == 1:                       # kernel covers the input: dense layer
            cols = x.reshape(c * k * k, n)
        else:
            cols = scratch(self, "cols", (c, k, k, ho, wo, n), x.dtype, xp)
            for i in range(k):                        # k*k contiguous slice copies
                for j in range(k):
                    cols[:, i, j] = x[:, i:i + ho, j:j + wo]
            cols = cols.reshape(c * k * k, ho * wo * n)
        self.cols = cols                              # (C*k*k, Ho*Wo*N)
        y = scratch(self, "y", (self.out_channels, ho * wo * n), x.dtype, xp)
        xp.matmul(self.weight.data.reshape(self.out_channels, -1), cols, out=y)
        if self.bias is not None:
            y += self.bias.data[:, None]
        return y.reshape(self.out_channels, ho, wo, n)

    def backward(self, dy):
        dy2 = dy.reshape(self.out_channels, -1)                   # (C_out, Ho*Wo*N)
        w2 = self.weight.data.reshape(self.out_channels, -1)      # (C_out, C*k*k)
        self.weight.grad = (dy2 @ self.cols.T).reshape(self.weight.shape)
        if self.bias is not None:
            self.bias.grad = dy2.sum(axis=1)
        if not self.input_grad:
            return None
        c, h, w, n = self.x_shape
        k = self.k
        ho, wo = h - k + 1, w - k + 1
        if ho == 1 and wo == 1:
            return (w2.T @ dy2).reshape(self.x_shape)
        xp = backend.array_module(dy)
        dcols = scratch(self, "dcols", (c * k * k, ho * wo * n), dy.dtype, xp)
        xp.matmul(w2.T, dy2, out=dcols)                           # (C*k*k, Ho*Wo*N)
        dcols = dcols.reshape(c, k, k, ho, wo, n)
        dx = scratch(self, "dx", self.x_shape, dy.dtype, xp)
        dx.fill(0)
        for i in range(k):                                        # col2im: overlaps add
            for j in range(k):
                dx[:, i:i + ho, j:j + wo] += dcols[:, i, j]
        return dx


class AvgPoolCHWN(Module):
    """Non-overlapping k x k average pooling on (C, H, W, N), by k*k strided slices.

    Rows and columns past the last full window are dropped, as in PyTorch.
    """

    def __init__(self, kernel_size=2):
        self.k = kernel_size

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(f"AvgPoolCHWN expects (C, H, W, N), got {tuple(x.shape)}")
        k = self.k
        ho, wo = x.shape[1] // k, x.shape[2] // k
        self.x_shape = x.shape
        xp = backend.array_module(x)
        windows = [x[:, i:k * ho:k, j:k * wo:k] for i in range(k) for j in range(k)]
        y = scratch(self, "y", (x.shape[0], ho, wo, x.shape[3]), x.dtype, xp)
        if k == 1:
            y[...] = windows[0]
        else:
            xp.add(windows[0], windows[1], out=y)
        for win in windows[2:]:
            y += win
        y *= 1.0 / (k * k)
        return y                                      # (C, H//k, W//k, N)

    def backward(self, dy):
        xp = backend.array_module(dy)
        k = self.k
        c, h, w, n = self.x_shape
        ho, wo = dy.shape[1], dy.shape[2]
        exact = h == k * ho and w == k * wo
        dx = scratch(self, "dx", self.x_shape, dy.dtype, xp)
        if not exact:
            dx.fill(0)                                # rows past the last window
        scaled = dy * (1.0 / (k * k))                 # every input of a window gets dy/k²
        for i in range(k):
            for j in range(k):
                dx[:, i:k * ho:k, j:k * wo:k] = scaled
        return dx


class LinearDN(Linear):
    """``y = W @ x + b[:, None]`` on (D_in, N); weight (D_out, D_in) as PyTorch's Linear.

    The parameters and their initialization are :class:`Linear`'s; only the
    layout of the input (features first, batch last) differs.
    """

    def forward(self, x):
        _check("LinearDN", x, 2, self.in_features)
        self.x = x                                    # (D_in, N)
        y = self.weight.data @ x                      # (D_out, N)
        if self.bias is not None:
            y += self.bias.data[:, None]
        return y

    def backward(self, dy):
        self.weight.grad = dy @ self.x.T
        if self.bias is not None:
            self.bias.grad = dy.sum(axis=1)
        return self.weight.data.T @ dy


class FlattenCHWN(Module):
    """(C, H, W, N) -> (C*H*W, N), a view; the row order matches PyTorch's Flatten."""

    def forward(self, x):
        self.x_shape = x.shape
        return x.reshape(-1, x.shape[-1])

    def backward(self, dy):
        return dy.reshape(self.x_shape)


class TanhCached(Module):
    """tanh keeping its output ``y`` for the backward ``dx = dy * (1 - y²)`` (reused buffers)."""

    def forward(self, x):
        xp = backend.array_module(x)
        self.y = xp.tanh(x, out=scratch(self, "y", x.shape, x.dtype, xp))
        return self.y

    def backward(self, dy):
        xp = backend.array_module(dy)
        dx = xp.multiply(self.y, self.y, out=scratch(self, "dx", dy.shape, dy.dtype, xp))
        xp.subtract(1, dx, out=dx)
        dx *= dy
        return dx
