"""Checks behind :meth:`Module.load_state_dict` and :meth:`Module.load`."""
import zipfile

import numpy as np

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")     # a zip archive with members, an empty one


def check_loaded(key, value, dtype):
    """Raise unless ``value`` may be loaded into an array of ``dtype``."""
    if np.dtype(dtype).kind == "f":
        if value.dtype.kind != "f":
            raise TypeError(f"{key}: expected floating-point values for a {dtype} array, "
                            f"got dtype {value.dtype}")
        if not np.isfinite(value).all():
            raise ValueError(f"{key}: holds {int((~np.isfinite(value)).sum())} non-finite "
                             f"value(s) (NaN or Inf); a model state must be finite")
    elif value.dtype.kind not in "iu":
        raise TypeError(f"{key}: expected integers for a {dtype} array, got dtype {value.dtype}")


def read_npz(path):
    """The arrays of the ``.npz`` file ``path`` as a dict.

    A missing or unreadable file raises the usual ``OSError``
    (``FileNotFoundError``, ``PermissionError``); a file that is not an ``.npz``
    archive, or one whose members are not plain arrays, raises ``ValueError``
    naming it.
    """
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic not in ZIP_MAGIC:
        raise ValueError(f"{path} is not an .npz file (a zip archive of arrays written "
                         f"by Module.save); its first bytes are {magic!r}")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not a readable .npz file of arrays: {err}") from err
