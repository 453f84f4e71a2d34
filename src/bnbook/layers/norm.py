"""The BatchNorm layer: parameters, running buffers and the train/eval flag.

The math lives in :mod:`bnbook.batchnorm`; this module only keeps state.
"""
import numpy as np

from .. import backend
from .. import batchnorm as F
from ..batchnorm._checks import check_eps, check_momentum
from .base import Module, Parameter


class BatchNorm(Module):
    r"""Batch normalization for (N, D) or (N, C, H, W) input (channel axis 1).

    In training mode (``train()``, the default) the layer normalizes with the
    batch mean and **biased** batch variance and updates the running buffers,

    .. math::

        \hat\mu \leftarrow (1 - \text{momentum})\,\hat\mu + \text{momentum}\,\mu_B,
        \qquad \hat\sigma^2 \leftarrow (1 - \text{momentum})\,\hat\sigma^2
            + \text{momentum}\,\tfrac{m}{m-1}\,\sigma_B^2 ;

    in eval mode (``eval()``) it uses the running buffers:
    :math:`y = \gamma (x - \hat\mu) / \sqrt{\hat\sigma^2 + \epsilon} + \beta`.

    Parameters
    ----------
    num_features : int
        C, the size of the channel axis.
    eps : float, default 1e-5
        Inside the square root.
    momentum : number in [0, 1], default 0.1
        PyTorch's convention: the weight of the *new* batch (Keras 0.99 = 0.01 here).
        A Python or NumPy scalar; stored as a Python float.
    axis : int, default 1
        Channel axis of the input (0 for a batch-innermost (C, H, W, N) layout).
    dtype : float32 (default) or float64
        Of the parameters and buffers; inputs keep their own dtype.
    check_finite : bool, default False
        If True, NaN or Inf in the input raises ``ValueError`` instead of
        propagating to the output.

    Attributes
    ----------
    gamma, beta : Parameter (C,), start at ones and zeros
    running_mean, running_var : arrays (C,), start at zeros and ones
    num_batches_tracked : int64 array of shape (), training batches seen
    """

    _buffers = ("running_mean", "running_var", "num_batches_tracked")

    def __init__(self, num_features, eps=1e-5, momentum=0.1, axis=1, dtype=np.float32,
                 check_finite=False):
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) \
                or num_features < 1:
            raise ValueError(f"num_features must be a positive int, got {num_features!r}")
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
        momentum, eps = check_momentum(momentum), check_eps(eps)   # NumPy scalars too
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"axis must be an int, got {axis!r}")
        xp = backend.xp()
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.axis, self.check_finite = int(axis), bool(check_finite)
        self.gamma = Parameter(xp.ones(num_features, dtype=dtype))
        self.beta = Parameter(xp.zeros(num_features, dtype=dtype))
        self.running_mean = xp.zeros(num_features, dtype=dtype)
        self.running_var = xp.ones(num_features, dtype=dtype)
        self.num_batches_tracked = xp.zeros((), dtype=np.int64)
        self.cache = None

    def _check(self, x):
        if not hasattr(x, "ndim") or x.ndim not in (2, 4) \
                or not -x.ndim <= self.axis < x.ndim \
                or x.shape[self.axis] != self.num_features:
            shape = tuple(getattr(x, "shape", ()))
            raise ValueError(f"{self!r} expects 2-D or 4-D input with {self.num_features} "
                             f"channels on axis {self.axis}, got shape {shape}")
        if self.check_finite and not bool(backend.array_module(x).isfinite(x).all()):
            raise ValueError(f"{self!r}: input contains NaN or Inf (check_finite=True)")

    def forward(self, x):
        self._check(x)
        if not self.training:
            self.cache = None
            return F.inference(x, self.running_mean, self.running_var, self.gamma.data,
                               self.beta.data, self.eps, self.axis)
        y, self.cache = F.forward(x, self.gamma.data, self.beta.data, self.eps, self.axis)
        self.running_mean, self.running_var = F.update_running(
            self.running_mean, self.running_var, self.cache, self.momentum)
        self.num_batches_tracked += 1                     # in place: stays a 0-d array
        return y

    def backward(self, dy):
        if self.cache is None:
            raise RuntimeError(f"{self!r}: backward() needs a training-mode forward() "
                               f"first (eval-mode forward keeps no cache)")
        dx, self.gamma.grad, self.beta.grad = F.backward(dy, self.cache)
        return dx

    def __repr__(self):
        return (f"BatchNorm({self.num_features}, eps={self.eps:g}, momentum={self.momentum:g}"
                + (f", axis={self.axis}" if self.axis != 1 else "") + ")")
