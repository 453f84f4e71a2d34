"""The deep MLPs of the gradient-explosion chapter: a Kaiming-initialized stack
of ``Linear -> norm -> activation`` blocks, with leaky-ReLU and a BatchNorm
whose backward treats the batch statistics as constants (:class:`FrozenStats`).
"""
import numpy as np

from .. import layers
from ..models import mlp, residual_mlp

ACTIVATIONS = ("relu", "leaky", "tanh", "linear")


class LeakyReLU(layers.Module):
    """``max(x, slope * x)``: slope 0 is ReLU, slope 1 the identity."""

    def __init__(self, slope):
        if not 0 <= slope <= 1:
            raise ValueError(f"slope must lie in [0, 1], got {slope}")
        self.slope = slope

    def forward(self, x):
        self.scale = np.where(x > 0, 1.0, self.slope).astype(x.dtype)
        return x * self.scale

    def backward(self, dy):
        return dy * self.scale


class FrozenStats(layers.Module):
    """A BatchNorm whose backward treats the batch mean and std as constants.

    The forward pass is the wrapped layer's (training mode, batch
    statistics). The backward pass returns ``gamma * dy / sqrt(var_B +
    eps)``, i.e. it drops the two terms that flow through ``mu_B`` and
    ``sigma_B``; gamma's and beta's gradients are the wrapped layer's (they
    do not involve those terms).
    Implemented for (N, D) input only.
    """

    def __init__(self, bn):
        self.bn = bn

    def forward(self, x):
        if x.ndim != 2:
            raise ValueError(f"FrozenStats expects (N, D) input, got shape "
                             f"{tuple(x.shape)}")
        self.inv_std = 1.0 / np.sqrt(x.var(axis=0) + self.bn.eps)   # (D,)
        return self.bn.forward(x)

    def backward(self, dy):
        self.bn.backward(dy)            # sets gamma.grad and beta.grad
        return dy * (self.bn.gamma.data * self.inv_std)


def build(depth, width, activation="relu", norm="bn", residual=False, frozen=False,
          slope=0.2, in_features=None, out_features=10, seed=0, dtype=np.float32,
          groups=None):
    """A Kaiming-initialized MLP of ``depth`` hidden layers of ``width`` units.

    ``activation`` is one of :data:`ACTIVATIONS` ('leaky' uses ``slope``);
    ``residual=True`` builds :func:`bnbook.models.residual_mlp` instead;
    ``frozen=True`` wraps every BatchNorm in :class:`FrozenStats`;
    ``groups`` is GroupNorm's group count (``norm='gn'``, plain stack only;
    None: the library's default, 32 where it divides the width).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: expected one of {ACTIVATIONS}")
    if frozen and norm != "bn":
        raise ValueError(f"frozen=True needs norm='bn', got norm={norm!r}")
    if groups is not None and (norm != "gn" or residual):
        raise ValueError(f"groups needs norm='gn' and residual=False, got norm={norm!r}, "
                         f"residual={residual}")
    in_features = width if in_features is None else in_features
    base = "relu" if activation == "leaky" else activation
    if residual:
        net = residual_mlp(in_features, width, depth, out_features, activation=base,
                           norm=norm, init="kaiming", rng=seed, dtype=dtype)
    else:
        net = mlp([in_features] + [width] * depth + [out_features], activation=base,
                  norm=norm, init="kaiming", rng=seed, dtype=dtype,
                  norm_kwargs=None if groups is None else {"num_groups": groups})
    _swap(net, activation, slope, frozen)
    return net.train()


def _swap(module, activation, slope, frozen):
    # replace ReLU by LeakyReLU and/or BatchNorm by FrozenStats, recursively
    if not isinstance(module, layers.Sequential):
        for _, child in module.named_children():
            _swap(child, activation, slope, frozen)
        return
    for i, layer in enumerate(module.layers):
        if activation == "leaky" and isinstance(layer, layers.ReLU):
            module.layers[i] = LeakyReLU(slope)
        elif frozen and isinstance(layer, layers.BatchNorm):
            module.layers[i] = FrozenStats(layer)
        else:
            _swap(layer, activation, slope, frozen)


def weights(net):
    """The weight Parameters of every Linear layer, input to output."""
    return [p for name, p in net.named_parameters() if name.endswith("weight")]
