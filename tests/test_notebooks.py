"""Every chapter listed in ``_toc.yml`` runs as a notebook without error.

``make test`` builds the book first, and the build executes every chapter through
myst-nb with ``execute_notebooks: cache``: each successful run is stored in the
jupyter-cache database ``_build/.jupyter_cache``. To execute each chapter only once,
this test reads the notebook exactly as myst-nb does, hashes it as jupyter-cache does
(the code cells' source and metadata plus the kernelspec), and passes when the cache
holds a successful execution of the current source. Only a chapter without such a
record (no build yet, or an edit since) is executed here with jupytext and nbclient.
A failure recorded by the build (myst-nb's ``_build/html/reports/<doc>.err.log``, newer
than the source) fails the test with that traceback. ``make test`` sets
``BNBOOK_NOTEBOOK_REQUIRE_CACHE=1``: right after its build every chapter must be found in
the cache, so a mismatch in the hashing (which would silently double the run time) fails.
The cache counts only while it holds executions with the current library: the hash of
``src/bnbook`` stored beside it by ``book/_ext/bnbook_cache.py`` must match.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
CACHE = BUILD / ".jupyter_cache"
REPORTS = BUILD / "html" / "reports"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
SUFFIXES = (".md", ".ipynb")


def _entries(node: dict) -> list[str]:
    """Every ``file:`` below a toc node, in reading order (sections included)."""
    files = [node["file"]] if "file" in node else []
    for key in ("parts", "chapters", "sections"):
        for child in node.get(key, []):
            files += _entries(child)
    return files


def toc_documents() -> list[str]:
    """The documents of the book: the root page, then every ``file:`` entry."""
    return [TOC["root"]] + _entries({k: v for k, v in TOC.items() if k != "root"})


def numbered_chapters() -> list[str]:
    """The chapters of the numbered parts: each must be an executable notebook."""
    return [doc for part in TOC["parts"] if part.get("numbered")
            for doc in _entries(part)]


def source_of(doc: str) -> Path | None:
    """The source file of a toc entry (``book/forward`` -> ``book/forward.md``)."""
    for suffix in SUFFIXES:
        if (ROOT / (doc + suffix)).is_file():
            return ROOT / (doc + suffix)
    return None


def is_notebook(path: Path) -> bool:
    """True for ``.ipynb`` files and for Markdown files with a jupytext/mystnb header."""
    from myst_nb.core.read import is_myst_markdown_notebook

    return path.suffix == ".ipynb" or is_myst_markdown_notebook(
        path.read_text(encoding="utf-8"))


def read_as_myst_nb(path: Path):
    """Read ``path`` into a notebook the way the book build does (same parser config)."""
    import nbformat
    from myst_nb.core.read import read_myst_markdown_notebook
    from myst_parser.config.main import MdParserConfig

    if path.suffix == ".ipynb":
        return nbformat.read(path, as_version=4)
    extensions = set(CONFIG.get("parse", {}).get("myst_enable_extensions", []))
    config = MdParserConfig(enable_extensions=extensions)
    return read_myst_markdown_notebook(path.read_text(encoding="utf-8"), config=config,
                                       add_source_map=True, path=str(path))


def _bnbook_cache():
    """The module ``book/_ext/bnbook_cache.py`` (how the build keys its cache)."""
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import bnbook_cache
    finally:
        sys.path.pop(0)
    return bnbook_cache


def library_is_cached() -> bool:
    """True when the cache was filled with the library as it is now (same source hash)."""
    keying = _bnbook_cache()
    return keying.cache_is_current(CACHE, keying.library_source())


def cached_execution(path: Path):
    """The jupyter-cache record of a successful build execution of ``path``, or None."""
    if not (CACHE / "global.db").is_file() or not library_is_cached():
        return None
    from jupyter_cache import get_cache

    try:
        return get_cache(CACHE).match_cache_notebook(read_as_myst_nb(path))
    except KeyError:
        return None


def build_failure(doc: str, path: Path) -> str | None:
    """The traceback the build saved for ``doc``, if it is newer than the source."""
    report = REPORTS.joinpath(*(doc + ".err.log").split("/"))
    if report.is_file() and report.stat().st_mtime >= path.stat().st_mtime:
        return report.read_text(encoding="utf-8")
    return None


def execute(path: Path) -> None:
    """Run ``path`` as a notebook in its own folder; raise on the first error."""
    import jupytext
    import nbclient

    notebook = jupytext.read(path)
    timeout = int(CONFIG.get("execute", {}).get("timeout", 900))
    client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()


def test_every_toc_file_exists():
    missing = [doc for doc in toc_documents() if source_of(doc) is None]
    assert not missing, f"_toc.yml lists files that do not exist (tried {SUFFIXES}): {missing}"


def test_numbered_chapters_are_notebooks():
    not_notebooks = [doc for doc in numbered_chapters()
                     if source_of(doc) is not None and not is_notebook(source_of(doc))]
    assert not not_notebooks, (
        f"these chapters lack the jupytext MyST header (kernelspec), so myst-nb would not "
        f"execute them: {not_notebooks}")


def test_no_placeholder_left():
    placeholders = [doc for doc in toc_documents() if source_of(doc) is not None
                    and re.search(r"\bPLACEHOLDER\b", source_of(doc).read_text("utf-8"))]
    assert not placeholders, f"chapters still holding placeholder text: {placeholders}"


NOTEBOOKS = [doc for doc in toc_documents()
             if source_of(doc) is not None and is_notebook(source_of(doc))]


@pytest.mark.book
@pytest.mark.parametrize("doc", NOTEBOOKS, ids=[Path(d).name for d in NOTEBOOKS])
def test_chapter_executes(doc):
    path = source_of(doc)
    record = cached_execution(path)
    if record is not None:
        # A jupyter-cache record exists only for an execution that succeeded, and it
        # matches only the current code cells: the build already ran this chapter.
        return
    failure = build_failure(doc, path)
    if failure is not None:
        pytest.fail(f"the book build failed to execute {doc}:\n{failure}", pytrace=False)
    if os.environ.get("BNBOOK_NOTEBOOK_REQUIRE_CACHE") == "1":
        why = ("its current source" if not (CACHE / "global.db").is_file()
               or library_is_cached() else
               "the current src/bnbook (the library hash stored beside it differs)")
        pytest.fail(f"{doc} has no successful execution in {CACHE} for {why} "
                    "(BNBOOK_NOTEBOOK_REQUIRE_CACHE=1); build the book first")
    execute(path)  # raises nbclient.exceptions.CellExecutionError with the traceback


def test_glue_formats_numpy2_scalars():
    """book/_ext/bnbook_glue.py: NumPy 2 reprs reach {glue:text} as numbers."""
    import numpy as np
    from myst_nb.core import variables

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import bnbook_glue
    finally:
        sys.path.pop(0)
    assert bnbook_glue.unwrap_numpy_repr(repr(np.float64(0.25))) == "0.25"
    assert bnbook_glue.unwrap_numpy_repr(repr(np.int64(7))) == "7"
    assert bnbook_glue.unwrap_numpy_repr("'np.float64(1)' in a string") == "'np.float64(1)' in a string"
    fmt = bnbook_glue._patch(variables.format_plain_text)
    assert fmt(repr(np.float64(0.123456)), ".3f") == "0.123"
    assert fmt(repr(np.float32(2.5)), ".1e") == "2.5e+00"
    assert fmt(repr(np.int64(12345)), ",d") == "12,345"
    assert fmt(repr(np.str_("abc")), "") == "abc"
    assert fmt("0.5", ".2f") == "0.50"
    with pytest.raises(ValueError):  # text that is no number still fails loudly
        fmt("'not a number'", ".2f")
