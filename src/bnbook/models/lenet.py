"""LeNet-5 (LeCun et al., 1998) for 28 x 28 digits, with optional batch normalization.

The layers are those of :func:`~bnbook.models.lenet_spec.lenet_spec` (the review's
PyTorch set-up, tanh by default). Inside, activations live in the batch-innermost
layout (C, H, W, N), then (D, N), built from the model's private fast layers
(:mod:`bnbook.models._lenet_fast`); BN normalizes over every axis but the channel
axis 0 with the library's :class:`bnbook.layers.BatchNorm`. The public
``forward`` takes and returns PyTorch's layouts. :func:`reference_lenet` builds
the same network from the readable (N, C, H, W) layers.
"""
import numpy as np

from .. import backend, layers
from ..layers.base import Module
from . import _lenet_fast as fast
from .lenet_spec import STAGES, lenet_spec, reference_lenet

__all__ = ["LeNet5", "STAGES", "lenet", "lenet_spec", "reference_lenet"]

_DEFAULT_INIT = {"tanh": "lecun", "sigmoid": "lecun", "relu": "kaiming"}
_FAST = {"conv": fast.ConvCHWN, "linear": fast.LinearDN, "pool": fast.AvgPoolCHWN,
         "flatten": fast.FlattenCHWN, "tanh": fast.TanhCached, "relu": layers.ReLU,
         "sigmoid": layers.Sigmoid}


def _fast_layer(name, kind, kwargs, weights):
    """The batch-innermost layer for one entry of the specification."""
    if kind in ("bn2d", "bn1d"):                         # channel axis 0 in (C, ...)
        return layers.BatchNorm(**kwargs, axis=0, dtype=weights["dtype"])
    if kind == "conv":                                  # forward() pads the input itself
        kwargs = {k: v for k, v in kwargs.items() if k != "padding"}
        return fast.ConvCHWN(**kwargs, input_grad=name != "conv1", **weights)
    return _FAST[kind](**kwargs, **(weights if kind == "linear" else {}))


class LeNet5(Module):
    """LeNet-5 on (N, 1, 28, 28) input; build it with :func:`lenet`.

    ``forward(x)`` returns logits (N, 10); ``backward(dlogits)`` overwrites every
    parameter's ``.grad`` and returns None, or ``dx`` (N, 1, 28, 28) if
    ``input_grad`` is True. Parameter names and shapes match PyTorch's
    (``conv1.weight`` (6, 1, 5, 5), ``fc1.weight`` (84, 120), ...); ``spec`` is
    the :func:`lenet_spec` the model was built from.
    """

    def __init__(self, bn=False, position="before", activation="tanh", rng=None,
                 dtype=np.float32, init=None):
        self.spec = lenet_spec(bn, position, activation)
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
        self.bn, self.position, self.activation = bool(bn), position, activation
        self.dtype = np.dtype(dtype)
        weights = dict(init=init or _DEFAULT_INIT[activation],
                       rng=np.random.default_rng(rng), dtype=self.dtype)
        self._order = [name for name, _, _ in self.spec]
        for name, kind, kwargs in self.spec:            # weights drawn in this order
            setattr(self, name, _fast_layer(name, kind, kwargs, weights))

    @property
    def input_grad(self):
        return self.conv1.input_grad

    @input_grad.setter
    def input_grad(self, value):
        self.conv1.input_grad = bool(value)

    def forward(self, x):
        if not hasattr(x, "ndim") or x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError("LeNet-5 expects input of shape (N, 1, 28, 28), got "
                             f"{tuple(getattr(x, 'shape', ())) or type(x).__name__}")
        if x.dtype.kind != "f":
            raise TypeError(f"LeNet-5 expects floating-point images, got dtype {x.dtype} "
                            "(scale uint8 pixels to [0, 1] first)")
        xp = backend.array_module(x)
        n = x.shape[0]
        if n < 1:
            raise ValueError("LeNet-5 needs at least one image, got an empty batch")
        # conv1's padding 2: a (1, 32, 32, N) buffer whose 2-pixel border stays zero
        h = fast.scratch(self, "input", (1, 32, 32, n), self.dtype, xp, zero=True)
        h[0, 2:30, 2:30, :] = x[:, 0].transpose(1, 2, 0)      # (N, H, W) -> (H, W, N)
        self._recorded = {}
        for name in self._order:
            h = getattr(self, name).forward(h)
            if name.startswith("act"):                        # kept for the histograms
                self._recorded[name] = h
        return h.T                                            # (10, N) -> (N, 10)

    def backward(self, dlogits):
        n = self.fc2.x.shape[1] if hasattr(self.fc2, "x") else None
        if n is None:
            raise RuntimeError("backward() needs a forward() first")
        if not hasattr(dlogits, "shape") or tuple(dlogits.shape) != (n, 10):
            raise ValueError(f"dlogits must have the logits' shape ({n}, 10), got "
                             f"{tuple(getattr(dlogits, 'shape', ())) or type(dlogits).__name__}")
        dh = dlogits.T                                        # (10, N)
        for name in reversed(self._order):
            dh = getattr(self, name).backward(dh)
        if dh is None:
            return None
        return dh[0, 2:30, 2:30, :].transpose(2, 0, 1)[:, None].copy()   # (N, 1, 28, 28)

    def activations(self):
        """Most recent outputs of the four activation layers, as copies.

        An ordered dict ``'conv1'`` (N, 6, 28, 28), ``'conv2'`` (N, 16, 10, 10),
        ``'conv3'`` (N, 120), ``'fc1'`` (N, 84): the batch axis first, as PyTorch.
        With ``position='after'`` these are the inputs of BN.
        """
        recorded = getattr(self, "_recorded", None)
        if not recorded:
            raise RuntimeError("no activations recorded yet: call forward first")
        return {stage: _to_batch_first(recorded[f"act{i}"])
                for i, stage in enumerate(STAGES, start=1)}

    def __repr__(self):
        inner = "\n".join(f"  ({name}) {getattr(self, name)!r}" for name in self._order)
        return (f"LeNet5(bn={self.bn}, position={self.position!r}, "
                f"activation={self.activation!r}, dtype={self.dtype.name})\n{inner}")


def _to_batch_first(a):
    """(C, H, W, N) -> (N, C, H, W) or (D, N) -> (N, D), as a contiguous copy."""
    axes = (a.ndim - 1,) + tuple(range(a.ndim - 1))
    return a.transpose(axes).copy()


def lenet(bn=False, position="before", activation="tanh", rng=None, dtype=np.float32,
          init=None):
    """LeNet-5 with optional BN after conv1-3 and fc1; see :class:`LeNet5`.

    Parameters
    ----------
    bn : bool
    position : 'before' (conv -> BN -> act) or 'after' (conv -> act -> BN)
    activation : 'tanh' (default, as the review), 'relu' or 'sigmoid'
    rng : int or numpy Generator, seeds the weights
    dtype : float32 (default) or float64
    init : initializer name; None picks 'lecun' for tanh/sigmoid, 'kaiming' for relu
    """
    return LeNet5(bn=bn, position=position, activation=activation, rng=rng, dtype=dtype,
                  init=init)
