"""LeNet-5 (LeCun et al., 1998) for 28 x 28 digits, with optional batch normalization.

Architecture (the review's PyTorch set-up, tanh by default)::

    (N, 1, 28, 28) -> zero-pad to 32 x 32
    conv1 6@5x5  -> [bn1] act -> avgpool 2    (6, 28, 28) -> (6, 14, 14)
    conv2 16@5x5 -> [bn2] act -> avgpool 2    (16, 10, 10) -> (16, 5, 5)
    conv3 120@5x5 -> [bn3] act                (120, 1, 1): a dense layer on 400 inputs
    fc1 120->84  -> [bn4] act
    fc2 84->10                                logits (N, 10)

``position='before'`` puts BN between the linear map and the activation (Ioffe &
Szegedy); ``'after'`` puts it after the activation. A bias directly followed by
BN is dropped (BN's beta replaces it).

Inside, activations live in the batch-innermost layout (C, H, W, N), then (D, N),
built from :mod:`bnbook.layers.fast`; BN normalizes over every axis but the
channel axis 0 with the team's :class:`bnbook.layers.BatchNorm` math. The public
``forward`` takes and returns PyTorch's layouts.
"""
import numpy as np

from .. import backend, layers
from ..layers import fast
from ..layers.base import Module

_ACTIVATIONS = {"tanh": fast.TanhCached, "relu": layers.ReLU, "sigmoid": layers.Sigmoid}
_DEFAULT_INIT = {"tanh": "lecun", "sigmoid": "lecun", "relu": "kaiming"}
#: blocks whose activations :meth:`LeNet5.activations` reports, in order
STAGES = ("conv1", "conv2", "conv3", "fc1")


class LeNet5(Module):
    """LeNet-5 on (N, 1, 28, 28) input; build it with :func:`lenet`.

    ``forward(x)`` returns logits (N, 10); ``backward(dlogits)`` overwrites every
    parameter's ``.grad`` and returns None, or ``dx`` (N, 1, 28, 28) if
    ``input_grad`` is True. Parameter names and shapes match PyTorch's
    (``conv1.weight`` (6, 1, 5, 5), ``fc1.weight`` (84, 120), ...).
    """

    def __init__(self, bn=False, position="before", activation="tanh", rng=None,
                 dtype=np.float32, init=None):
        if position not in ("before", "after"):
            raise ValueError(f"position must be 'before' or 'after', got {position!r}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}: expected one of "
                             f"{sorted(_ACTIVATIONS)}")
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        init = init or _DEFAULT_INIT[activation]
        self.bn, self.position, self.activation = bool(bn), position, activation
        self.dtype = np.dtype(dtype)
        bias = not (bn and position == "before")
        kw = dict(init=init, rng=gen, dtype=dtype)
        self._order = []
        self._add("conv1", fast.ConvCHWN(1, 6, 5, bias=bias, input_grad=False, **kw))
        self._block(1, 6, activation)
        self._add("pool1", fast.AvgPoolCHWN(2))
        self._add("conv2", fast.ConvCHWN(6, 16, 5, bias=bias, **kw))
        self._block(2, 16, activation)
        self._add("pool2", fast.AvgPoolCHWN(2))
        self._add("conv3", fast.ConvCHWN(16, 120, 5, bias=bias, **kw))
        self._add("flatten", fast.FlattenCHWN())
        self._block(3, 120, activation)
        self._add("fc1", fast.LinearDN(120, 84, bias=bias, **kw))
        self._block(4, 84, activation)
        self._add("fc2", fast.LinearDN(84, 10, bias=True, **kw))

    def _add(self, name, module):
        setattr(self, name, module)
        self._order.append(name)

    def _block(self, i, features, activation):
        """[bn_i] act_i (before) or act_i [bn_i] (after)."""
        act = ("act%d" % i, _ACTIVATIONS[activation]())
        norm = ("bn%d" % i, _batchnorm(features, self.dtype)) if self.bn else None
        for item in ([norm, act] if self.position == "before" else [act, norm]):
            if item is not None:
                self._add(*item)

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
        h = fast.scratch(self, "input", (1, 32, 32, n), self.dtype, xp, zero=True)
        h[0, 2:30, 2:30, :] = x[:, 0].transpose(1, 2, 0)      # (N, H, W) -> (H, W, N); the
        #                                                       2-pixel border stays zero
        self._recorded = {}
        for name in self._order:
            h_in, h = h, getattr(self, name).forward(h)
            if name.startswith("act"):                        # kept for the histograms
                self._recorded[name] = (h_in, h)
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

    def _stage_arrays(self, which):
        recorded = getattr(self, "_recorded", None)
        if not recorded:
            raise RuntimeError("no activations recorded yet: call forward first")
        return {stage: _to_batch_first(recorded["act%d" % i][which])
                for i, stage in enumerate(STAGES, start=1)}

    def activations(self):
        """Most recent outputs of the four activation layers, as copies.

        An ordered dict ``'conv1'`` (N, 6, 28, 28), ``'conv2'`` (N, 16, 10, 10),
        ``'conv3'`` (N, 120), ``'fc1'`` (N, 84): the batch axis first, as PyTorch.
        With ``position='after'`` these are the inputs of BN.
        """
        return self._stage_arrays(1)

    def pre_activations(self):
        """The inputs of the same activation layers (after BN if ``position='before'``)."""
        return self._stage_arrays(0)

    def __repr__(self):
        inner = "\n".join(f"  ({name}) {getattr(self, name)!r}" for name in self._order)
        return (f"LeNet5(bn={self.bn}, position={self.position!r}, "
                f"activation={self.activation!r}, dtype={self.dtype.name})\n{inner}")


def reference_lenet(model):
    """The same network as ``model`` built from the readable (N, C, H, W) layers.

    A :class:`~bnbook.layers.Sequential` of Conv2d (conv1 with padding 2),
    BatchNorm (axis 1), activations, AvgPool2d, Flatten and Linear, holding *copies*
    of ``model``'s parameters and BN buffers and in the same train/eval mode. It
    computes the same function with the reference layers: the tests compare the
    two, and timing both shows what the batch-innermost layout buys.
    """
    if not isinstance(model, LeNet5):
        raise TypeError(f"expected a LeNet5 from lenet(), got {type(model).__name__}")
    kw = dict(dtype=model.dtype)
    seq = []
    for name in model._order:
        mod = getattr(model, name)
        if name.startswith("conv"):
            seq.append(layers.Conv2d(mod.in_channels, mod.out_channels, mod.k,
                                     padding=2 if name == "conv1" else 0,
                                     bias=mod.bias is not None, **kw))
            if name == "conv3":
                seq.append(layers.Flatten())
        elif name.startswith("fc"):
            seq.append(layers.Linear(mod.in_features, mod.out_features,
                                     bias=mod.bias is not None, **kw))
        elif name.startswith("bn"):
            seq.append(layers.BatchNorm(mod.num_features, eps=mod.eps, momentum=mod.momentum,
                                        **kw))
        elif name.startswith("act"):
            seq.append({"tanh": layers.Tanh, "relu": layers.ReLU,
                        "sigmoid": layers.Sigmoid}[model.activation]())
        elif name.startswith("pool"):
            seq.append(layers.AvgPool2d(mod.k))
    ref = layers.Sequential(*seq)
    ours = list(model.named_parameters()) + list(model.named_buffers())
    theirs = list(ref.named_parameters()) + list(ref.named_buffers())
    for (_, a), (_, b) in zip(ours, theirs):
        target = b.data if isinstance(b, layers.Parameter) else b
        target[...] = a.data if isinstance(a, layers.Parameter) else a
    return ref.train(model.training)


def _to_batch_first(a):
    """(C, H, W, N) -> (N, C, H, W) or (D, N) -> (N, D), as a contiguous copy."""
    axes = (a.ndim - 1,) + tuple(range(a.ndim - 1))
    return a.transpose(axes).copy()


def _batchnorm(features, dtype):
    """The team's BatchNorm on the batch-innermost layout: channel axis 0."""
    return layers.BatchNorm(features, axis=0, dtype=dtype)


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
