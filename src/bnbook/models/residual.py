"""A residual MLP: ``x_{l+1} = x_l + F_l(x_l)`` with ``F_l = Linear -> [norm] -> act``.

Used by the gradient-explosion chapter to show that an identity path around
each normalized block stops the per-layer growth of the gradient that a plain
stack of batch-normalized layers shows at initialization (Yang et al., 2019).
"""
import numpy as np

from .. import layers
from .mlp import ACTIVATIONS, make_norm


class Residual(layers.Module):
    """``y = x + branch(x)``; backward ``dx = dy + branch.backward(dy)``."""

    def __init__(self, branch):
        self.branch = branch

    def forward(self, x):
        return x + self.branch.forward(x)

    def backward(self, dy):
        return dy + self.branch.backward(dy)

    def __repr__(self):
        return f"Residual({self.branch!r})"


def residual_mlp(in_features, width, depth, out_features, activation="relu", norm="bn",
                 init="kaiming", rng=None, dtype=np.float32):
    """``Linear(in, width)``, then ``depth`` residual blocks, then ``Linear(width, out)``.

    Each block's branch is ``Linear(width, width) -> [norm] -> activation`` (no
    bias when a norm follows, as in :func:`bnbook.models.mlp`); the block adds
    its input. The first and last layers are plain Linear layers with bias.

    Parameters
    ----------
    in_features, width, depth, out_features : int (depth >= 0, others >= 1)
    activation : 'relu', 'sigmoid', 'tanh' or 'linear'
    norm : None, 'bn', 'ln' or 'gn'
    init : initializer name for the weights (see :mod:`bnbook.init`)
    rng : int or numpy Generator, seeds the weights
    dtype : float32 (default) or float64
    """
    for name, value, least in (("in_features", in_features, 1), ("width", width, 1),
                               ("depth", depth, 0), ("out_features", out_features, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < least:
            raise ValueError(f"{name} must be an int >= {least}, got {value!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: expected one of "
                         f"{sorted(ACTIVATIONS)}")
    gen = np.random.default_rng(rng)
    out = [layers.Linear(in_features, width, init=init, rng=gen, dtype=dtype)]
    for _ in range(depth):
        branch = [layers.Linear(width, width, bias=norm is None, init=init, rng=gen,
                                dtype=dtype),
                  make_norm(norm, width, dtype=dtype), ACTIVATIONS[activation]()]
        out.append(Residual(layers.Sequential(*(m for m in branch if m is not None))))
    out.append(layers.Linear(width, out_features, init=init, rng=gen, dtype=dtype))
    return layers.Sequential(*out)
