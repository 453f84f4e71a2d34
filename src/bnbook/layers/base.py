"""Bookkeeping shared by every layer: Parameter, Module, Sequential.

A :class:`Module` holds parameters, buffers and an explicit ``training`` flag.
``forward(x)`` caches what ``backward`` needs; ``backward(dy)`` returns ``dx``
and *overwrites* (does not accumulate) the ``grad`` of each parameter, so no
``zero_grad`` is needed between steps.
"""
import numpy as np

from .. import backend
from ._state import check_loaded, read_npz


class Parameter:
    """A trainable array ``data`` and its gradient ``grad`` (same shape, or None)."""

    __slots__ = ("data", "grad")

    def __init__(self, data):
        self.data = data
        self.grad = None

    @property
    def shape(self):
        return self.data.shape

    def __repr__(self):
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype})"


class Module:
    """Base class: parameters, buffers, children, train/eval, state to .npz.

    Attributes that are :class:`Parameter` are parameters; attributes that are
    modules (or lists of modules) are children; names listed in ``_buffers`` are
    non-trainable state such as BN's running statistics.
    """

    training = True
    _buffers = ()

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dy):  # pragma: no cover - abstract
        raise NotImplementedError

    def named_children(self):
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def named_parameters(self, prefix=""):
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def modules(self):
        """This module and every module inside it, each once, parents before children."""
        seen = set()

        def walk(module):
            if id(module) not in seen:
                seen.add(id(module))
                yield module
                for _, child in module.named_children():
                    yield from walk(child)
        return list(walk(self))

    def named_buffers(self, prefix=""):
        for name in self._buffers:
            yield prefix + name, getattr(self, name)
        for name, child in self.named_children():
            yield from child.named_buffers(f"{prefix}{name}.")

    def train(self, mode=True):
        """Switch this module and every module inside it to training (True) or eval mode."""
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def astype(self, dtype):
        """Convert every parameter and floating-point buffer to ``dtype``, in place.

        ``dtype`` is float32 or float64. Gradients are cleared (they belong to
        the old arrays), integer buffers such as BN's ``num_batches_tracked``
        keep their dtype, and a module's ``dtype`` attribute (the dtype it
        allocates with) follows. Returns the module, so that
        ``model = lenet().astype(np.float64)`` works. An optimizer made before
        keeps working: it holds the same Parameter objects.
        """
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        for module in self.modules():
            for value in vars(module).values():
                if isinstance(value, Parameter):
                    value.data, value.grad = value.data.astype(dtype), None
            for name in module._buffers:
                buf = getattr(module, name)
                if buf.dtype.kind == "f":
                    setattr(module, name, buf.astype(dtype))
            if isinstance(getattr(module, "dtype", None), np.dtype):
                module.dtype = dtype
        return self

    def state_dict(self):
        """Parameters and buffers by dotted name, as host NumPy arrays."""
        state = {k: backend.to_numpy(p.data) for k, p in self.named_parameters()}
        state.update({k: backend.to_numpy(b) for k, b in self.named_buffers()})
        return state

    def load_state_dict(self, state):
        """Load arrays saved by :meth:`state_dict`; names and shapes must match.

        Floating-point parameters and buffers accept only finite floating-point
        values (an integer or boolean array is a sign of a wrong file, NaN or Inf
        of a diverged run); integer buffers accept only integers.
        """
        params = dict(self.named_parameters())
        buffers = dict(self.named_buffers())
        expected = set(params) | set(buffers)
        if set(state) != expected:
            raise ValueError(
                f"state keys do not match the module: missing {sorted(expected - set(state))}, "
                f"unexpected {sorted(set(state) - expected)}")
        targets = {k: params[k].data if k in params else buffers[k] for k in state}
        for key, value in state.items():                  # check all before writing any
            target = targets[key]
            if tuple(np.shape(value)) != tuple(target.shape):
                raise ValueError(f"{key}: saved shape {np.shape(value)} but the module "
                                 f"expects {tuple(target.shape)}")
            check_loaded(key, np.asarray(backend.to_numpy(value)), target.dtype)
        for key, value in state.items():
            targets[key][...] = backend.xp().asarray(value, dtype=targets[key].dtype)
        return self

    def save(self, path):
        """Save parameters and buffers to a ``.npz`` file."""
        np.savez(path, **self.state_dict())

    def load(self, path):
        """Load parameters and buffers from a ``.npz`` file written by :meth:`save`.

        A missing or unreadable file raises the usual ``OSError``; a file that is
        not an ``.npz`` archive raises ``ValueError`` naming it.
        """
        return self.load_state_dict(read_npz(path))

    def __repr__(self):
        return f"{type(self).__name__}()"


class Sequential(Module):
    """Apply ``layers`` in order; backward runs them in reverse."""

    def __init__(self, *layers):
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __repr__(self):
        inner = "\n".join(f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"
