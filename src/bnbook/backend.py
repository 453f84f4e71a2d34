"""Which array module is in use: NumPy by default, CuPy on request.

The batch-normalization math in :mod:`bnbook.batchnorm` takes its array module
from its input (``array_api_compat.array_namespace``), so it runs on NumPy, CuPy
and ``array_api_strict`` alike. Layers that allocate arrays (parameters, buffers)
ask :func:`xp` which module to allocate with. Set ``BNBOOK_BACKEND=cupy`` in the
environment to allocate on the GPU. Random numbers are always drawn on the host
with ``np.random.default_rng(seed)`` (which returns a Generator unchanged).
"""
import os

import numpy as np

_NAMES = ("numpy", "cupy")
_current = None


def _load(name):
    if name not in _NAMES:
        raise ValueError(f"unknown backend {name!r}: expected one of {_NAMES}")
    if name == "numpy":
        return np
    try:
        import cupy
    except ImportError as err:  # pragma: no cover - depends on the machine
        raise ImportError(
            "backend 'cupy' was requested but CuPy is not installed: "
            "pip install cupy-cuda12x (needs an NVIDIA GPU)") from err
    return cupy


def xp():
    """The array module new arrays are allocated with (``numpy`` or ``cupy``)."""
    global _current
    if _current is None:
        _current = _load(os.environ.get("BNBOOK_BACKEND", "numpy").lower())
    return _current


def array_namespace(*arrays):
    """The array-API namespace of ``arrays`` (NumPy, CuPy, array_api_strict, ...)."""
    from array_api_compat import array_namespace as _ns
    return _ns(*arrays)


def array_module(a):
    """``cupy`` for a CuPy array, else ``numpy`` (for NumPy-style calls in the layers)."""
    if type(a).__module__.startswith("cupy"):
        return xp() if xp().__name__ == "cupy" else _load("cupy")
    return np


def to_numpy(a):
    """Copy an array of any backend to a NumPy array on the host."""
    if hasattr(a, "get"):  # CuPy
        return a.get()
    return np.asarray(a)
