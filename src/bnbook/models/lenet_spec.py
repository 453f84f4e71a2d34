"""The one description of LeNet-5, and the readable network built from it.

:func:`lenet_spec` lists the layers of LeNet-5 (LeCun et al., 1998) for 28 x 28
digits as ``(name, kind, kwargs)``. Three builders read it:
:class:`bnbook.models.lenet.LeNet5` (the fast batch-innermost model),
:func:`reference_lenet` (the readable (N, C, H, W) layers of :mod:`bnbook.layers`)
and ``torch_lenet`` in :mod:`bnbook.bench.lenet` (the PyTorch twin). The keyword
arguments are those of the constructors, which PyTorch's modules share::

    conv1 6@5x5, padding 2 -> [bn1] act -> avgpool 2     (6, 28, 28) -> (6, 14, 14)
    conv2 16@5x5           -> [bn2] act -> avgpool 2     (16, 10, 10) -> (16, 5, 5)
    conv3 120@5x5 -> flatten -> [bn3] act                (120,): a dense layer on 400 inputs
    fc1 120->84            -> [bn4] act
    fc2 84->10                                           logits (10,)

``position='before'`` puts BN between the linear map and the activation (Ioffe &
Szegedy); ``'after'`` puts it after the activation. A bias directly followed by
BN is dropped (BN's beta replaces it).
"""
from .. import layers

#: activation name -> kind in the specification (and the readable layer)
ACTIVATIONS = {"tanh": layers.Tanh, "relu": layers.ReLU, "sigmoid": layers.Sigmoid}
#: blocks whose activations LeNet5.activations reports, in order
STAGES = ("conv1", "conv2", "conv3", "fc1")

_READABLE = {"conv": layers.Conv2d, "linear": layers.Linear, "bn2d": layers.BatchNorm,
             "bn1d": layers.BatchNorm, "pool": layers.AvgPool2d, "flatten": layers.Flatten,
             **ACTIVATIONS}
_HAS_DTYPE = ("conv", "linear", "bn2d", "bn1d")


def lenet_spec(bn=False, position="before", activation="tanh"):
    """LeNet-5 as a list of ``(name, kind, kwargs)``, input (N, 1, 28, 28), logits (N, 10).

    Kinds: 'conv' (Conv2d's arguments), 'linear', 'bn2d' and 'bn1d' (BatchNorm
    of ``num_features`` channels on 4-D and 2-D input), 'pool' (AvgPool2d),
    'flatten', and the activation ('tanh', 'relu' or 'sigmoid').
    """
    if position not in ("before", "after"):
        raise ValueError(f"position must be 'before' or 'after', got {position!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: expected one of "
                         f"{sorted(ACTIVATIONS)}")
    bias = not (bn and position == "before")
    spec = []

    def block(i, features, norm_kind):                  # [bn_i] act_i or act_i [bn_i]
        norm = (f"bn{i}", norm_kind, dict(num_features=features))
        act = (f"act{i}", activation, {})
        spec.extend(item for item in ([norm, act] if position == "before" else [act, norm])
                    if bn or item is act)

    def conv(name, c_in, c_out, padding=0):
        spec.append((name, "conv", dict(in_channels=c_in, out_channels=c_out, kernel_size=5,
                                        padding=padding, bias=bias)))

    conv("conv1", 1, 6, padding=2)
    block(1, 6, "bn2d")
    spec.append(("pool1", "pool", dict(kernel_size=2)))
    conv("conv2", 6, 16)
    block(2, 16, "bn2d")
    spec.append(("pool2", "pool", dict(kernel_size=2)))
    conv("conv3", 16, 120)
    spec.append(("flatten", "flatten", {}))
    block(3, 120, "bn1d")
    spec.append(("fc1", "linear", dict(in_features=120, out_features=84, bias=bias)))
    block(4, 84, "bn1d")
    spec.append(("fc2", "linear", dict(in_features=84, out_features=10, bias=True)))
    return spec


def reference_lenet(model):
    """The same network as ``model`` (a LeNet5) built from the readable (N, C, H, W) layers.

    A :class:`~bnbook.layers.Sequential` of the layers of ``model.spec``, holding
    *copies* of ``model``'s parameters and BN buffers (and BN's eps and momentum),
    in the same train/eval mode. It computes the same function with the reference
    layers: the tests compare the two, and timing both shows what the
    batch-innermost layout buys.
    """
    from .lenet import LeNet5
    if not isinstance(model, LeNet5):
        raise TypeError(f"expected a LeNet5 from lenet(), got {type(model).__name__}")
    seq = []
    for name, kind, kwargs in model.spec:
        extra = dict(dtype=model.dtype) if kind in _HAS_DTYPE else {}
        layer = _READABLE[kind](**kwargs, **extra)
        if kind in ("bn2d", "bn1d"):
            ours = getattr(model, name)
            layer.eps, layer.momentum = ours.eps, ours.momentum
        seq.append(layer)
    ref = layers.Sequential(*seq)
    ours = list(model.named_parameters()) + list(model.named_buffers())
    theirs = list(ref.named_parameters()) + list(ref.named_buffers())
    for (_, a), (_, b) in zip(ours, theirs, strict=True):
        target = b.data if isinstance(b, layers.Parameter) else b
        target[...] = a.data if isinstance(a, layers.Parameter) else a
    return ref.train(model.training)
