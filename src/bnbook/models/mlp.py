"""Multilayer perceptrons with optional normalization before or after the activation."""
import numpy as np

from .. import layers

ACTIVATIONS = {
    "relu": layers.ReLU,
    "sigmoid": layers.Sigmoid,
    "tanh": layers.Tanh,
    "linear": layers.Identity,
}

#: normalization name -> layer class name in bnbook.layers (looked up when used)
NORMS = {"bn": "BatchNorm", "ln": "LayerNorm", "gn": "GroupNorm"}


def make_norm(norm, features, dtype=np.float32, **kwargs):
    """A normalization layer by short name: 'bn', 'ln' or 'gn' (None gives None).

    For 'gn' the group count is ``kwargs['num_groups']``, by default
    :func:`bnbook.layers.groupnorm.default_groups` of ``features`` (32 where it divides).
    """
    if norm is None:
        return None
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}: expected None or one of {sorted(NORMS)}")
    if norm == "gn":                  # PyTorch's order: GroupNorm(num_groups, num_channels)
        groups = kwargs.pop("num_groups", None) or layers.groupnorm.default_groups(features)
        return layers.GroupNorm(groups, features, dtype=dtype, **kwargs)
    return getattr(layers, NORMS[norm])(features, dtype=dtype, **kwargs)


def mlp(sizes, activation="relu", norm=None, position="before", init="kaiming",
        bias=None, rng=None, dtype=np.float32, norm_kwargs=None):
    """An MLP ``sizes[0] -> sizes[1] -> ... -> sizes[-1]`` as a Sequential.

    Each hidden layer is ``Linear -> [norm] -> activation`` (``position='before'``,
    the placement of Ioffe & Szegedy) or ``Linear -> activation -> [norm]``
    (``position='after'``). The output layer is a plain Linear.

    Parameters
    ----------
    sizes : sequence of int, at least two
    activation : 'relu', 'sigmoid', 'tanh' or 'linear'
    norm : None, 'bn', 'ln' or 'gn'
    position : 'before' or 'after' the activation
    init : initializer name for the weights (see :mod:`bnbook.init`)
    bias : bool or None
        None means: a bias unless a normalization follows directly (BN's beta
        makes a bias before it redundant).
    rng : int or numpy Generator, seeds the weights
    """
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output size, got {sizes}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: expected one of {sorted(ACTIVATIONS)}")
    if position not in ("before", "after"):
        raise ValueError(f"position must be 'before' or 'after', got {position!r}")
    gen = np.random.default_rng(rng)
    out = []
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        use_bias = bias if bias is not None else (last or norm is None or position == "after")
        out.append(layers.Linear(d_in, d_out, bias=use_bias, init=init, rng=gen, dtype=dtype))
        if last:
            break
        norm_layer = make_norm(norm, d_out, dtype=dtype, **(norm_kwargs or {}))
        act = ACTIVATIONS[activation]()
        block = [norm_layer, act] if position == "before" else [act, norm_layer]
        out.extend(layer for layer in block if layer is not None)
    return layers.Sequential(*out)
