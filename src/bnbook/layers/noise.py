"""Noise injected after BatchNorm: the "noisy BN" of Santurkar et al. (2018).

The experiment asks whether BN still helps when its output distribution is made
to move on purpose. In training mode every forward pass (one step) first draws,
per unit j (feature or channel), the centres of this step's noise,

    m_j ~ U(-mean_range, mean_range)             (default U(-0.5, 0.5))
    c_j ~ U(scale_range[0], scale_range[1])      (default U(1, 1.5))

and then the noise itself,

    shift ~ N(m_j, shift_std**2),   scale ~ N(c_j, scale_std**2),

and returns ``y = x * scale + shift``. With ``per_sample=True`` (the default,
Santurkar et al.'s construction) ``shift`` and ``scale`` have the shape of
``x``: i.i.d. for each activation of each sample, so the noise has mean
``m_j`` (non-zero) and variance ``shift_std**2`` (not one) around a centre
that itself changes every step. With ``per_sample=False`` one shift and one
scale per unit are shared by the whole batch (and, for 4-D input, by H and W):
the batch distribution of each unit is moved as a whole, no sample gets noise
of its own. The noise is a constant for backpropagation: ``dx = dy * scale``.
In eval mode the layer is the identity.
"""
import numpy as np

from .. import backend
from .base import Module


class NoiseInjection(Module):
    """Per-step random affine noise ``x * scale + shift`` (training only).

    Parameters
    ----------
    num_features : int
        Size of the channel axis (axis 1).
    per_sample : bool
        True: i.i.d. noise for each activation of each sample (noisy BN of
        Santurkar et al.). False: one shift and scale per unit shared by the
        batch.
    mean_range : float
        Per-step, per-unit shift centre ``m_j ~ U(-mean_range, mean_range)``.
    scale_range : (float, float)
        Per-step, per-unit scale centre ``c_j ~ U(*scale_range)``.
    shift_std, scale_std : float
        Standard deviations of the draws around ``m_j`` and ``c_j``.
    rng : int or numpy Generator
        Seeds the noise.

    Attributes
    ----------
    hold : bool
        When True, training-mode passes keep this step's centres (and reuse the
        last noise when the input shape is unchanged) instead of starting a new
        step; probes use it to see the current step's noise.
    centre_shift, centre_scale : arrays (num_features,) or None
        This step's ``m`` and ``c``.
    shift, scale : arrays or None
        The noise last drawn, shaped like the input (per-sample) or
        broadcastable against it.
    """

    def __init__(self, num_features, per_sample=True, mean_range=0.5,
                 scale_range=(1.0, 1.5), shift_std=0.3, scale_std=0.2, rng=None):
        if int(num_features) != num_features or num_features < 1:
            raise ValueError(f"num_features must be a positive integer, got {num_features!r}")
        lo, hi = scale_range
        if mean_range < 0 or not 0 < lo <= hi or shift_std < 0 or scale_std < 0:
            raise ValueError("need mean_range >= 0, 0 < scale_range[0] <= scale_range[1] and "
                             f"non-negative stds; got mean_range={mean_range}, "
                             f"scale_range={scale_range}, stds=({shift_std}, {scale_std})")
        self.num_features, self.per_sample = int(num_features), bool(per_sample)
        self.mean_range, self.scale_range = float(mean_range), (float(lo), float(hi))
        self.shift_std, self.scale_std = float(shift_std), float(scale_std)
        self.gen = np.random.default_rng(rng)
        self.hold = False
        self.centre_shift = self.centre_scale = self.shift = self.scale = None

    def new_step(self):
        """Draw this step's centres ``m`` and ``c`` (each (num_features,))."""
        g, d = self.gen, self.num_features
        self.centre_shift = g.uniform(-self.mean_range, self.mean_range, d)
        self.centre_scale = g.uniform(*self.scale_range, d)

    def resample(self, shape):
        """Draw noise for an input of ``shape`` around the current centres.

        Returns ``(scale, shift)`` as float64 arrays of ``shape`` (per-sample)
        or of ``(1, C, 1, ...)`` (shared).
        """
        if self.centre_shift is None:
            self.new_step()
        view = (1, self.num_features) + (1,) * (len(shape) - 2)
        size = tuple(shape) if self.per_sample else view
        g = self.gen
        self.shift = self.centre_shift.reshape(view) + self.shift_std * g.standard_normal(size)
        self.scale = self.centre_scale.reshape(view) + self.scale_std * g.standard_normal(size)
        return self.scale, self.shift

    def forward(self, x):
        if x.ndim not in (2, 4) or x.shape[1] != self.num_features:
            raise ValueError(f"NoiseInjection expects (N, {self.num_features}) or "
                             f"(N, {self.num_features}, H, W) input, got {tuple(x.shape)}")
        self.active = self.training
        if not self.training:
            return x
        if not self.hold or self.centre_shift is None:
            self.new_step()
            self.resample(x.shape)
        elif self.shift is None or (self.per_sample and self.shift.shape != x.shape):
            self.resample(x.shape)              # same step, new input shape
        xp = backend.array_module(x)
        self.scale_b = xp.asarray(self.scale, dtype=x.dtype)
        return x * self.scale_b + xp.asarray(self.shift, dtype=x.dtype)

    def backward(self, dy):
        return dy * self.scale_b if self.active else dy

    def __repr__(self):
        kind = "per-sample" if self.per_sample else "batch-shared"
        return (f"NoiseInjection({self.num_features}, {kind}, m~U(+-{self.mean_range}), "
                f"c~U{self.scale_range}, stds=({self.shift_std}, {self.scale_std}))")
