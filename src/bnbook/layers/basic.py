"""Dense layers and elementwise activations, for (N, D) input (Flatten: any)."""
import numpy as np

from .. import backend
from .. import init as initializers
from .base import Module, Parameter


class Linear(Module):
    """``y = x @ W.T + b`` with ``W`` of shape (out_features, in_features), as PyTorch.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    init : str
        Name of a :mod:`bnbook.init` initializer for W ('lecun', 'glorot', 'kaiming').
    rng : numpy.random.Generator or int or None
    dtype : float32 (default) or float64
    """

    def __init__(self, in_features, out_features, bias=True, init="lecun", rng=None,
                 dtype=np.float32):
        gen = np.random.default_rng(rng)
        xp = backend.xp()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(xp.asarray(
            initializers.get(init)((out_features, in_features), gen, dtype)))
        self.bias = Parameter(xp.zeros(out_features, dtype=dtype)) if bias else None

    def forward(self, x):
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"Linear expects input of shape (N, {self.in_features}), "
                             f"got {tuple(x.shape)}")
        self.x = x                                    # (N, in)
        y = x @ self.weight.data.T                    # (N, out)
        if self.bias is not None:
            y += self.bias.data
        return y

    def backward(self, dy):
        self.weight.grad = dy.T @ self.x              # (out, in)
        if self.bias is not None:
            self.bias.grad = dy.sum(axis=0)           # (out,)
        return dy @ self.weight.data                  # (N, in)

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features}, bias={self.bias is not None})"



class Identity(Module):
    def forward(self, x):
        return x

    def backward(self, dy):
        return dy


class Tanh(Module):
    def forward(self, x):
        self.y = backend.array_module(x).tanh(x)
        return self.y

    def backward(self, dy):
        return dy * (1 - self.y * self.y)


class ReLU(Module):
    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, dy):
        return dy * self.mask


class Sigmoid(Module):
    def forward(self, x):
        self.y = 1 / (1 + backend.array_module(x).exp(-x))
        return self.y

    def backward(self, dy):
        return dy * self.y * (1 - self.y)


class Flatten(Module):
    """(N, ...) -> (N, prod(...))."""

    def forward(self, x):
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self.shape)
