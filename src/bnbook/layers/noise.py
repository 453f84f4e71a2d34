"""Noise injected after BatchNorm: the "noisy BN" of Santurkar et al. (2018).

The experiment asks whether BN still helps when its output distribution is made
to move on purpose. In training mode each forward pass (one step) draws, for the
whole layer,

    mu    ~ U(-mean_range, mean_range)          (default U(-0.5, 0.5))
    sigma ~ U(scale_range[0], scale_range[1])   (default U(1, 1.25))

and then, per unit j (feature or channel),

    shift_j ~ N(mu, shift_spread**2)            (default spread 0.1)
    scale_j ~ N(sigma, scale_spread**2)         (default spread 0.05)

and returns ``y = x * scale + shift`` (broadcast over the batch and, for 4-D
input, over H and W). The noise is a constant for backpropagation:
``dx = dy * scale``. In eval mode the layer is the identity.
"""
import numpy as np

from .. import backend
from .base import Module


class NoiseInjection(Module):
    """Per-step random per-unit affine noise ``x * scale + shift`` (training only).

    Parameters
    ----------
    num_features : int
        Size of the channel axis (axis 1).
    mean_range : float
        Layer-level shift centre ``mu ~ U(-mean_range, mean_range)``.
    scale_range : (float, float)
        Layer-level scale centre ``sigma ~ U(*scale_range)``.
    shift_spread, scale_spread : float
        Standard deviations of the per-unit draws around ``mu`` and ``sigma``.
    rng : int or numpy Generator
        Seeds the noise.

    Attributes
    ----------
    hold : bool
        When True, training-mode passes reuse the last drawn noise instead of
        drawing new (used by probes that must see the same step's noise).
    shift, scale : arrays (num_features,) or None
        The noise last drawn.
    """

    def __init__(self, num_features, mean_range=0.5, scale_range=(1.0, 1.25),
                 shift_spread=0.1, scale_spread=0.05, rng=None):
        if int(num_features) != num_features or num_features < 1:
            raise ValueError(f"num_features must be a positive integer, got {num_features!r}")
        lo, hi = scale_range
        if mean_range < 0 or not 0 < lo <= hi or shift_spread < 0 or scale_spread < 0:
            raise ValueError("need mean_range >= 0, 0 < scale_range[0] <= scale_range[1] and "
                             f"non-negative spreads; got mean_range={mean_range}, "
                             f"scale_range={scale_range}, spreads=({shift_spread}, {scale_spread})")
        self.num_features = int(num_features)
        self.mean_range, self.scale_range = float(mean_range), (float(lo), float(hi))
        self.shift_spread, self.scale_spread = float(shift_spread), float(scale_spread)
        self.gen = np.random.default_rng(rng)
        self.hold = False
        self.shift = self.scale = None

    def resample(self):
        """Draw a new (shift, scale) pair for the layer; returns it."""
        g, d = self.gen, self.num_features
        mu = g.uniform(-self.mean_range, self.mean_range)
        sigma = g.uniform(*self.scale_range)
        self.shift = mu + self.shift_spread * g.standard_normal(d)     # (D,)
        self.scale = sigma + self.scale_spread * g.standard_normal(d)  # (D,)
        return self.shift, self.scale

    def _view(self, a, x):
        # (D,) -> broadcastable against x: (1, D) or (1, D, 1, 1)
        shape = (1, self.num_features) + (1,) * (x.ndim - 2)
        return backend.array_module(x).asarray(a, dtype=x.dtype).reshape(shape)

    def forward(self, x):
        if x.ndim not in (2, 4) or x.shape[1] != self.num_features:
            raise ValueError(f"NoiseInjection expects (N, {self.num_features}) or "
                             f"(N, {self.num_features}, H, W) input, got {tuple(x.shape)}")
        self.active = self.training
        if not self.training:
            return x
        if not self.hold or self.shift is None:
            self.resample()
        self.scale_b = self._view(self.scale, x)
        return x * self.scale_b + self._view(self.shift, x)

    def backward(self, dy):
        return dy * self.scale_b if self.active else dy

    def __repr__(self):
        return (f"NoiseInjection({self.num_features}, mu~U(+-{self.mean_range}), "
                f"sigma~U{self.scale_range})")
