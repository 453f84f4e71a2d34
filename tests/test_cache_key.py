"""The chapters' execution cache follows the library (book/_ext/bnbook_cache.py).

jupyter-cache hashes only code cells; the extension clears ``_build/.jupyter_cache``
whenever the hash of ``src/bnbook/**/*.py`` stored beside it differs. Checked on a
small stand-in library and cache in a temporary folder; no book is built here.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
try:
    import bnbook_cache
finally:
    sys.path.pop(0)


@pytest.fixture
def tree(tmp_path):
    """(a small stand-in library, its cache folder) under ``tmp_path``."""
    source = tmp_path / "src" / "bnbook"
    for rel in ("__init__.py", "losses.py", "batchnorm/__init__.py", "layers/__init__.py",
                "__pycache__/losses.cpython-311.pyc"):
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_text(f"# {rel}\n")
    cache = tmp_path / "_build" / ".jupyter_cache"
    return source, cache


def fill(cache: Path) -> None:
    """Stand in for a build that executed chapters into ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "global.db").write_bytes(b"executions")


def test_unstamped_cache_is_cleared_then_kept(tree):
    source, cache = tree
    fill(cache)  # a cache from before the library was hashed: its library is unknown
    assert bnbook_cache.refresh_cache(cache, source) is True
    assert not cache.exists()
    fill(cache)
    assert bnbook_cache.cache_is_current(cache, source)
    assert bnbook_cache.refresh_cache(cache, source) is False
    assert (cache / "global.db").read_bytes() == b"executions"


@pytest.mark.parametrize("change", ["edit", "new module", "rename", "delete"])
def test_library_change_clears_the_cache(tree, change):
    source, cache = tree
    bnbook_cache.refresh_cache(cache, source)
    fill(cache)
    module = source / "batchnorm" / "__init__.py"
    if change == "edit":
        module.write_text(module.read_text() + "\n# one more line\n")
    elif change == "new module":
        (source / "layers" / "extra.py").write_text("X = 1\n")
    elif change == "rename":
        (source / "losses.py").rename(source / "losses2.py")
    else:
        (source / "losses.py").unlink()
    assert not bnbook_cache.cache_is_current(cache, source)
    assert bnbook_cache.refresh_cache(cache, source) is True
    assert not cache.exists(), f"the cache survived a library {change}"
    assert bnbook_cache.cache_is_current(cache, source), "the new hash was not stored"


def test_other_files_do_not_clear_the_cache(tree):
    source, cache = tree
    bnbook_cache.refresh_cache(cache, source)
    fill(cache)
    (source / "notes.txt").write_text("not code\n")
    (source / "__pycache__" / "losses.cpython-311.pyc").write_bytes(b"compiled again")
    assert bnbook_cache.refresh_cache(cache, source) is False
    assert (cache / "global.db").is_file()


def test_build_hook_clears_myst_nbs_cache_folder(tree, monkeypatch):
    source, cache = tree
    fill(cache)
    app = SimpleNamespace(config=SimpleNamespace(nb_execution_cache_path=""),
                          outdir=str(cache.parent / "html"))
    assert bnbook_cache.cache_path(app) == cache  # myst-nb's default: beside html/
    monkeypatch.setattr(bnbook_cache, "library_source", lambda: source)
    bnbook_cache.on_builder_inited(app)
    assert not cache.exists()
    assert bnbook_cache.stamp_of(cache).is_file()


def test_hash_input_is_the_library_the_kernels_import():
    import bnbook

    source = bnbook_cache.library_source()
    assert (source / "__init__.py").samefile(bnbook.__file__)
    assert bnbook_cache.library_hash(source) == bnbook_cache.library_hash(source)


def test_the_book_build_loads_the_extension():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert config["sphinx"]["local_extensions"].get("bnbook_cache") == "book/_ext"
    assert "bnbook_cache" in config["sphinx"]["config"]["extensions"]
