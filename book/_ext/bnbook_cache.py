"""Key the chapters' execution cache on the library's source too.

jupyter-cache (``execute_notebooks: cache``) hashes only a notebook's code cells, so after
an edit to ``src/bnbook`` a build would serve chapters executed with the old library.
Before myst-nb reads any chapter, this extension hashes every ``*.py`` file of the
``bnbook`` package the kernels import, compares the hash with the one stored beside the
cache (``_build/.jupyter_cache.bnbook-sha256``) and, when they differ or none is stored,
deletes the cache: every chapter is then executed again with the current library.

``tests/test_notebooks.py`` uses :func:`cache_is_current` so that it, too, never counts
an execution with an older library as a pass.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)
SUFFIX = ".bnbook-sha256"


def library_source() -> Path:
    """The folder of the ``bnbook`` package that ``import bnbook`` finds (not imported)."""
    spec = importlib.util.find_spec("bnbook")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("bnbook is not installed: run `make venv`")
    return Path(spec.origin).parent


def library_hash(source: Path) -> str:
    """SHA-256 over the relative path and the bytes of every ``*.py`` file below ``source``."""
    digest = hashlib.sha256()
    for path in sorted(source.rglob("*.py")):
        digest.update(path.relative_to(source).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def stamp_of(cache: Path) -> Path:
    """Where the library hash of ``cache`` is kept: a file beside the cache folder."""
    return cache.with_name(cache.name + SUFFIX)


def cache_is_current(cache: Path, source: Path) -> bool:
    """True when ``cache`` was filled with the library as it is now in ``source``."""
    stamp = stamp_of(cache)
    return stamp.is_file() and stamp.read_text().strip() == library_hash(source)


def refresh_cache(cache: Path, source: Path) -> bool:
    """Delete ``cache`` unless it is current, then store the hash; True if it was deleted."""
    if cache_is_current(cache, source):
        return False
    deleted = cache.exists()
    shutil.rmtree(cache, ignore_errors=True)
    stamp = stamp_of(cache)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(library_hash(source) + "\n")
    return deleted


def cache_path(app: Sphinx) -> Path:
    """The jupyter-cache folder myst-nb uses (its own default when none is configured)."""
    configured = app.config.nb_execution_cache_path
    return Path(configured) if configured else Path(app.outdir).parent / ".jupyter_cache"


def on_builder_inited(app: Sphinx) -> None:
    """``builder-inited`` handler: clear a cache filled with another library version."""
    cache = cache_path(app).resolve()
    if refresh_cache(cache, library_source()):
        logger.info(f"bnbook changed since the chapters were cached: cleared {cache}")


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", on_builder_inited, priority=100)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
