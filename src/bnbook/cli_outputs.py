"""Where ``python -m bnbook`` puts its results: a checked ``--out`` directory.

Every file is replaced atomically (written to a temporary file beside it, then
``os.replace``), so an interrupted or killed run leaves either the previous
epoch's file or the new one, never half of one. Only the names in
:data:`OUTPUT_NAMES` are ever written or removed; other files in ``--out`` are
left alone.
"""
import contextlib
import json
import math
import os
import tempfile
from pathlib import Path

#: every file a run of the command line may write into ``--out``
OUTPUT_NAMES = ("history.json", "curves.png", "predictions.png", "model.npz",
                "model-lenet.npz", "model-lenet-bn.npz")


def check_out(out):
    """Create ``out`` if needed and check that it is a directory we can write in.

    Raises
    ------
    ValueError
        One line naming ``--out``, the path and the reason (a file, not
        creatable, not writable), so that the command line can print it
        before any training starts.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, expected a directory (or a new path)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--out {out}: cannot create the directory "
                         f"({err.strerror or err})") from err
    try:
        fd, probe = tempfile.mkstemp(dir=out, prefix=".bnbook-probe-")
    except OSError as err:
        raise ValueError(f"--out {out}: cannot write in the directory "
                         f"({err.strerror or err})") from err
    os.close(fd)
    os.remove(probe)


def clear_previous(out):
    """Remove the files (and stale temporary files) a previous run left in ``out``."""
    out = Path(out)
    for name in OUTPUT_NAMES:
        (out / name).unlink(missing_ok=True)
        for stale in out.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)


def _file_mode():
    """Permissions of a newly created file under the current umask (0o666 & ~umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def replace_atomically(path, write):
    """Call ``write(binary_file)`` on a temporary file, then move it onto ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())       # mkstemp makes it 0o600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def jsonable(value):
    """History values for strict JSON: NaN and infinities become null, tuples lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def write_json(path, document):
    """``document`` as indented strict JSON at ``path``, atomically."""
    text = json.dumps(jsonable(document), indent=1, allow_nan=False)
    replace_atomically(path, lambda f: f.write(text.encode()))


def write_figure(path, fig):
    """Save a matplotlib figure as PNG at ``path``, atomically, and close it."""
    import matplotlib.pyplot as plt
    try:
        replace_atomically(path, lambda f: fig.savefig(f, format="png"))
    finally:
        plt.close(fig)


def write_model(path, model):
    """A model's parameters and buffers (:meth:`Module.save`) at ``path``, atomically."""
    replace_atomically(path, model.save)
