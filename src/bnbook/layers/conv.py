"""2-D convolution in the (N, C, H, W) layout, by im2col / col2im.

This is the *reference* implementation: plain, readable, PyTorch's layout and
conventions (cross-correlation, weight of shape (C_out, C_in, kh, kw)). The fast
LeNet in :mod:`bnbook.models.lenet` uses private batch-innermost layers instead
(:mod:`bnbook.models._lenet_fast`); the tests check that both agree.

im2col turns the convolution into one matrix product. With a padded input
``x_p`` and stride ``s``, every output pixel reads a ``C_in x kh x kw`` patch::

    cols[n, (c, i, j), (p, q)] = x_p[n, c, s*p + i, s*q + j]
    y[n] = W.reshape(C_out, C_in*kh*kw) @ cols[n] + b        # (C_out, Ho*Wo)

and the backward pass is the same product read the other way::

    dW = Σ_n dy[n] @ cols[n].T        db = Σ_{n,p,q} dy
    dcols[n] = W2d.T @ dy[n]          dx = col2im(dcols)   (overlaps add up)
"""
import numpy as np

from .. import backend
from .. import init as initializers
from .base import Module, Parameter


def _pair(name, value, minimum):
    """An int or a pair of ints -> a tuple (a, b), each >= minimum."""
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)
    pair = (value, value) if is_int(value) else \
        tuple(value) if isinstance(value, (tuple, list)) else None
    if pair is None or len(pair) != 2 or not all(is_int(v) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def output_size(size, kernel, stride, padding):
    """``(size + 2*padding - kernel) // stride + 1``, the output length along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x, kernel_size, stride=1, padding=0):
    """Patches of ``x`` (N, C, H, W) as columns: (N, C*kh*kw, Ho*Wo).

    Row index ``(c, i, j)`` (C-order) matches ``weight.reshape(C_out, -1)``;
    column index ``(p, q)`` is the output pixel. One slice copy per kernel offset.
    """
    xp = backend.array_module(x)
    (kh, kw), (sh, sw), (ph, pw) = (_pair("kernel_size", kernel_size, 1),
                                    _pair("stride", stride, 1), _pair("padding", padding, 0))
    n, c, h, w = x.shape
    ho, wo = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    if ho < 1 or wo < 1:
        raise ValueError(f"kernel {kh}x{kw} does not fit the input {h}x{w} with padding "
                         f"{ph},{pw}: the output would be {ho}x{wo}")
    x_p = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    cols = xp.empty((n, c, kh, kw, ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = x_p[:, :, i:i + sh * ho:sh, j:j + sw * wo:sw]
    return cols.reshape(n, c * kh * kw, ho * wo)


def col2im(dcols, x_shape, kernel_size, stride=1, padding=0):
    """The adjoint of :func:`im2col`: scatter-add columns back to (N, C, H, W)."""
    xp = backend.array_module(dcols)
    (kh, kw), (sh, sw), (ph, pw) = (_pair("kernel_size", kernel_size, 1),
                                    _pair("stride", stride, 1), _pair("padding", padding, 0))
    n, c, h, w = x_shape
    ho, wo = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    dcols = dcols.reshape(n, c, kh, kw, ho, wo)
    dx_p = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dcols.dtype)
    for i in range(kh):
        for j in range(kw):
            dx_p[:, :, i:i + sh * ho:sh, j:j + sw * wo:sw] += dcols[:, :, i, j]
    return dx_p[:, :, ph:ph + h, pw:pw + w]


def check_input(layer, x, channels):
    """Raise a clear error unless ``x`` is a 4-D floating array with ``channels`` channels."""
    if not hasattr(x, "ndim") or x.ndim != 4:
        raise ValueError(f"{layer} expects input of shape (N, C, H, W), got "
                         f"{tuple(getattr(x, 'shape', ())) or type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{layer} expects a floating-point input, got dtype {x.dtype}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{layer} expects {channels} input channels (axis 1), "
                         f"got shape {tuple(x.shape)}")


class Conv2d(Module):
    """2-D cross-correlation, PyTorch's ``nn.Conv2d`` without dilation or groups.

    ``y[n, o, p, q] = b[o] + Σ_{c,i,j} W[o, c, i, j] · x_p[n, c, s·p + i, s·q + j]``
    with ``x_p`` the input zero-padded by ``padding`` on each side.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, padding : int or pair of ints
    bias : bool
    init : str
        A :mod:`bnbook.init` initializer for the weight ('lecun', 'glorot', 'kaiming'),
        fans counted as ``C_in*kh*kw`` and ``C_out*kh*kw``.
    rng : numpy.random.Generator or int or None
    dtype : float32 (default) or float64

    Input (N, C_in, H, W), output (N, C_out, Ho, Wo), ``Ho = (H + 2p - kh)//s + 1``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 bias=True, init="lecun", rng=None, dtype=np.float32):
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"channel counts must be >= 1, got {in_channels}, {out_channels}")
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.stride = _pair("stride", stride, 1)
        self.padding = _pair("padding", padding, 0)
        self.in_channels, self.out_channels = in_channels, out_channels
        gen = np.random.default_rng(rng)
        shape = (out_channels, in_channels) + self.kernel_size
        xp = backend.xp()
        self.weight = Parameter(xp.asarray(initializers.get(init)(shape, gen, dtype)))
        self.bias = Parameter(xp.zeros(out_channels, dtype=dtype)) if bias else None

    def forward(self, x):
        check_input("Conv2d", x, self.in_channels)
        xp = backend.array_module(x)
        self.x_shape = x.shape
        self.cols = im2col(x, self.kernel_size, self.stride, self.padding)  # (N, CKK, HoWo)
        w2d = self.weight.data.reshape(self.out_channels, -1)               # (C_out, CKK)
        y = xp.matmul(w2d, self.cols)                                        # (N, C_out, HoWo)
        if self.bias is not None:
            y += self.bias.data[:, None]
        ho = output_size(x.shape[2], self.kernel_size[0], self.stride[0], self.padding[0])
        return y.reshape(x.shape[0], self.out_channels, ho, -1)

    def backward(self, dy):
        xp = backend.array_module(dy)
        n = dy.shape[0]
        dy3 = dy.reshape(n, self.out_channels, -1)                           # (N, C_out, HoWo)
        w2d = self.weight.data.reshape(self.out_channels, -1)
        self.weight.grad = xp.einsum("nop,nkp->ok", dy3, self.cols).reshape(self.weight.shape)
        if self.bias is not None:
            self.bias.grad = dy3.sum(axis=(0, 2))
        dcols = xp.matmul(w2d.T, dy3)                                        # (N, CKK, HoWo)
        return col2im(dcols, self.x_shape, self.kernel_size, self.stride, self.padding)

    def __repr__(self):
        return (f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size="
                f"{self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"bias={self.bias is not None})")
