"""Weight initializers: LeCun, Glorot (Xavier) and Kaiming (He).

Each takes a shape ``(fan_out, fan_in, *kernel)`` (PyTorch's layout for Linear
and Conv2d weights), a NumPy ``Generator`` and a dtype, and returns a host array.
``fan_in = shape[1] * prod(kernel)``, ``fan_out = shape[0] * prod(kernel)``.
"""
import math

import numpy as np


def fans(shape):
    """(fan_in, fan_out) of a weight of ``shape`` = (out, in, *kernel)."""
    if len(shape) < 2:
        raise ValueError(f"a weight needs at least 2 dimensions (out, in, ...), got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def lecun_normal(shape, rng, dtype=np.float32):
    """N(0, 1/fan_in): unit output variance for a linear unit (LeCun et al., 1998)."""
    fan_in, _ = fans(shape)
    return (rng.standard_normal(shape) / math.sqrt(fan_in)).astype(dtype)


def lecun_uniform(shape, rng, dtype=np.float32):
    """U(-a, a) with a = sqrt(3/fan_in): variance 1/fan_in."""
    fan_in, _ = fans(shape)
    a = math.sqrt(3.0 / fan_in)
    return rng.uniform(-a, a, size=shape).astype(dtype)


def glorot_uniform(shape, rng, dtype=np.float32):
    """U(-a, a) with a = sqrt(6/(fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    fan_in, fan_out = fans(shape)
    a = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape).astype(dtype)


def kaiming_normal(shape, rng, dtype=np.float32, gain=math.sqrt(2.0)):
    """N(0, gain²/fan_in), gain sqrt(2) for ReLU (He et al., 2015)."""
    fan_in, _ = fans(shape)
    return (gain * rng.standard_normal(shape) / math.sqrt(fan_in)).astype(dtype)


def pytorch_uniform(shape, rng, dtype=np.float32):
    """U(-a, a) with a = 1/sqrt(fan_in): PyTorch's default for Linear and Conv2d weights.

    (``kaiming_uniform_`` with ``a = sqrt(5)``; variance 1/(3 fan_in), a third of LeCun's.)
    PyTorch also draws biases from this range; bnbook's layers start biases at zero.
    """
    fan_in, _ = fans(shape)
    a = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-a, a, size=shape).astype(dtype)


INITIALIZERS = {
    "lecun": lecun_normal,
    "lecun_uniform": lecun_uniform,
    "glorot": glorot_uniform,
    "kaiming": kaiming_normal,
    "pytorch": pytorch_uniform,
}


def get(name):
    """The initializer called ``name`` (one of INITIALIZERS)."""
    try:
        return INITIALIZERS[name]
    except KeyError:
        raise ValueError(f"unknown initializer {name!r}: expected one of "
                         f"{sorted(INITIALIZERS)}") from None
