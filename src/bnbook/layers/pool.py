"""Average and max pooling in the (N, C, H, W) layout (reference implementations).

Both reuse :func:`~bnbook.layers.conv.im2col` with every channel treated as its
own one-channel image: ``(N*C, 1, H, W) -> (N*C, kh*kw, Ho*Wo)``, then reduce over
the window axis. No padding; ``stride`` defaults to ``kernel_size``, as in PyTorch.
"""
from .. import backend
from .base import Module
from .conv import _pair, check_input, col2im, im2col, output_size


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None):
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else _pair("stride", stride, 1)

    def _windows(self, x):
        """(N*C, kh*kw, Ho*Wo) windows of ``x`` and the output shape (N, C, Ho, Wo)."""
        check_input(type(self).__name__, x, None)
        n, c, h, w = x.shape
        self.x_shape = x.shape
        cols = im2col(x.reshape(n * c, 1, h, w), self.kernel_size, self.stride)
        ho = output_size(h, self.kernel_size[0], self.stride[0], 0)
        wo = output_size(w, self.kernel_size[1], self.stride[1], 0)
        return cols, (n, c, ho, wo)

    def _scatter(self, dcols):
        n, c, h, w = self.x_shape
        dx = col2im(dcols, (n * c, 1, h, w), self.kernel_size, self.stride)
        return dx.reshape(self.x_shape)

    def __repr__(self):
        return f"{type(self).__name__}(kernel_size={self.kernel_size}, stride={self.stride})"


class AvgPool2d(_Pool2d):
    """``y[n, c, p, q] = mean of x[n, c]`` over the window at ``(s·p, s·q)``.

    Backward: every input in a window receives ``dy / (kh*kw)`` (summed where
    windows overlap).
    """

    def forward(self, x):
        cols, out_shape = self._windows(x)                # (N*C, K, Ho*Wo)
        return cols.mean(axis=1).reshape(out_shape)

    def backward(self, dy):
        xp = backend.array_module(dy)
        k = self.kernel_size[0] * self.kernel_size[1]
        dy2 = dy.reshape(dy.shape[0] * dy.shape[1], 1, -1) / k
        dcols = xp.broadcast_to(dy2, (dy2.shape[0], k, dy2.shape[2]))
        return self._scatter(dcols)


class MaxPool2d(_Pool2d):
    """``y[n, c, p, q] = max of x[n, c]`` over the window at ``(s·p, s·q)``.

    Backward: the whole ``dy`` goes to the input that held the maximum (the first
    one in row-major window order if several tie).
    """

    def forward(self, x):
        xp = backend.array_module(x)
        cols, out_shape = self._windows(x)                # (N*C, K, Ho*Wo)
        self.argmax = cols.argmax(axis=1)[:, None, :]     # (N*C, 1, Ho*Wo)
        return xp.take_along_axis(cols, self.argmax, axis=1).reshape(out_shape)

    def backward(self, dy):
        xp = backend.array_module(dy)
        nc = dy.shape[0] * dy.shape[1]
        k = self.kernel_size[0] * self.kernel_size[1]
        dcols = xp.zeros((nc, k, dy.shape[2] * dy.shape[3]), dtype=dy.dtype)
        xp.put_along_axis(dcols, self.argmax, dy.reshape(nc, 1, -1), axis=1)
        return self._scatter(dcols)
