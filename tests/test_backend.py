"""bnbook.backend: NumPy by default, CuPy only on request, namespaces."""
import subprocess
import sys

import numpy as np
import pytest

from bnbook import backend
from conftest import require


@pytest.fixture
def fresh_backend(monkeypatch):
    """Forget the chosen backend for the test, restore it afterwards."""
    monkeypatch.setattr(backend, "_current", None)
    yield backend


def test_numpy_is_the_default(fresh_backend, monkeypatch):
    monkeypatch.delenv("BNBOOK_BACKEND", raising=False)
    assert fresh_backend.xp() is np


def test_environment_variable_picks_the_backend(fresh_backend, monkeypatch):
    monkeypatch.setenv("BNBOOK_BACKEND", "NumPy")
    assert fresh_backend.xp() is np
    monkeypatch.setattr(backend, "_current", None)
    monkeypatch.setenv("BNBOOK_BACKEND", "jax")
    with pytest.raises(ValueError, match=r"unknown backend 'jax': expected one of"):
        fresh_backend.xp()


def test_cupy_request_without_cupy_is_a_clear_import_error(fresh_backend, monkeypatch):
    monkeypatch.setenv("BNBOOK_BACKEND", "cupy")
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="CuPy is not installed: pip install cupy"):
            fresh_backend.xp()
    else:  # pragma: no cover - only on GPU machines
        assert fresh_backend.xp().__name__ == "cupy"


def test_importing_bnbook_does_not_import_cupy():
    code = ("import sys, pkgutil, importlib, bnbook\n"
            "for m in pkgutil.walk_packages(bnbook.__path__, 'bnbook.'):\n"
            "    if not m.name.endswith('__main__'):\n"
            "        importlib.import_module(m.name)\n"
            "print('cupy' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "BNBOOK_BACKEND": "numpy",
                              "MPLBACKEND": "Agg"}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_array_namespace_and_array_module():
    a = np.ones(3)
    assert backend.array_namespace(a).__name__.endswith("numpy")
    assert backend.array_module(a) is np
    xps = require("array_api_strict")
    assert backend.array_namespace(xps.ones(3)) is xps
    with pytest.raises(TypeError):
        backend.array_namespace(a, xps.ones(3))


def test_to_numpy():
    a = np.arange(4.0)
    assert backend.to_numpy(a) is a or np.shares_memory(backend.to_numpy(a), a)
    xps = require("array_api_strict")
    np.testing.assert_array_equal(backend.to_numpy(xps.asarray([1.0, 2.0])), [1.0, 2.0])
