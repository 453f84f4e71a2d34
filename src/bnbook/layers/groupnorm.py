"""LayerNorm and GroupNorm layers: bookkeeping around :mod:`bnbook.layernorm`.

Both normalize each sample on its own, so they hold no running statistics and
behave the same in training and eval mode (``train()``/``eval()`` still work,
as for every Module). Input is (N, C) or (N, C, H, W), channel axis 1.
"""
import numpy as np

from .. import backend
from .. import layernorm as F
from .base import Module, Parameter


def default_groups(num_channels, preferred=32):
    """The largest divisor of ``num_channels`` not above ``preferred`` (32, as Wu & He)."""
    return max(g for g in range(1, min(preferred, num_channels) + 1) if num_channels % g == 0)


class _SampleNorm(Module):
    """Shared part: per-channel ``gamma`` (ones) and ``beta`` (zeros), forward, backward."""

    def __init__(self, num_channels, num_groups, eps, dtype):
        if not isinstance(num_channels, (int, np.integer)) or num_channels < 1:
            raise ValueError(f"num_channels must be a positive int, got {num_channels!r}")
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
        if not isinstance(num_groups, (int, np.integer)) or isinstance(num_groups, bool):
            raise TypeError(f"num_groups must be an int, got {type(num_groups).__name__}")
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(f"num_groups must be a positive divisor of num_channels = "
                             f"{num_channels}, got {num_groups}")
        xp = backend.xp()
        self.num_channels, self.num_groups, self.eps = int(num_channels), int(num_groups), eps
        self.gamma = Parameter(xp.ones(num_channels, dtype=dtype))
        self.beta = Parameter(xp.zeros(num_channels, dtype=dtype))

    def forward(self, x):
        if x.ndim not in (2, 4) or x.shape[1] != self.num_channels:
            raise ValueError(f"{type(self).__name__} expects input of shape "
                             f"(N, {self.num_channels}) or (N, {self.num_channels}, H, W), "
                             f"got {tuple(x.shape)}")
        y, self.cache = F.group_norm(x, self.gamma.data, self.beta.data,
                                     self.num_groups, self.eps)
        return y

    def backward(self, dy):
        dx, self.gamma.grad, self.beta.grad = F.backward(dy, self.cache)
        return dx


class LayerNorm(_SampleNorm):
    """Layer normalization over all non-batch axes, per-feature/per-channel affine.

    For (N, D) input this is ``torch.nn.LayerNorm(D)``; for (N, C, H, W) it is
    ``torch.nn.GroupNorm(1, C)`` (PyTorch's LayerNorm would take an affine of
    shape (C, H, W) there; we keep one gamma/beta per channel, like BN).

    Parameters
    ----------
    num_features : int
        D or C.
    eps : float
        Added to the biased (1/m) variance inside the square root.
    dtype : float32 (default) or float64
    """

    def __init__(self, num_features, eps=1e-5, dtype=np.float32):
        super().__init__(num_features, 1, eps, dtype)

    def __repr__(self):
        return f"LayerNorm({self.num_channels}, eps={self.eps})"


class GroupNorm(_SampleNorm):
    """Group normalization: ``num_groups`` groups of consecutive channels per sample.

    The arguments come in PyTorch's order, ``GroupNorm(num_groups, num_channels)``,
    as ``torch.nn.GroupNorm``.

    Parameters
    ----------
    num_groups : int
        Must divide ``num_channels``. :func:`default_groups` gives Wu & He's
        G = 32 where it divides, else the largest divisor below it.
        ``num_groups=1`` is :class:`LayerNorm`; ``num_groups=num_channels`` is
        instance normalization (for (N, C) input that normalizes a single entry:
        the output is just beta).
    num_channels : int
    eps : float
    dtype : float32 (default) or float64
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, dtype=np.float32):
        super().__init__(num_channels, num_groups, eps, dtype)

    def __repr__(self):
        return f"GroupNorm({self.num_groups}, {self.num_channels}, eps={self.eps})"
