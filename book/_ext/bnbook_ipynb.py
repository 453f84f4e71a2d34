"""Offer every MyST Markdown chapter as a downloadable ``.ipynb``.

myst-nb renders ``.md`` notebooks but, unlike ``.ipynb`` sources, gives the page no
notebook to download. This extension converts each Markdown notebook (a page whose
front matter has a ``kernelspec``) with jupytext while the HTML page is written, puts
the result next to the copied source in ``<outdir>/_sources/`` (never into ``book/``),
and sets ``ipynb_source`` in the page context, which sphinx-book-theme's download menu
reads to show ``.ipynb`` beside ``.md``.

The notebook carries no outputs: it is the chapter as a reader would run it. Cell ids
are numbered, so two builds of the same chapter give byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _is_markdown_notebook(app: Sphinx, pagename: str) -> Path | None:
    """Return the source path of ``pagename`` if it is a MyST Markdown notebook."""
    if pagename not in app.env.all_docs:
        return None
    source = Path(app.env.doc2path(pagename))
    if source.suffix != ".md":
        return None
    if "kernelspec" not in app.env.metadata.get(pagename, {}):
        return None
    return source


def write_notebook(source: Path, target: Path) -> None:
    """Convert the Markdown notebook ``source`` to an ``.ipynb`` file at ``target``."""
    notebook = jupytext.read(source)
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index}"
    target.parent.mkdir(parents=True, exist_ok=True)
    text = jupytext.writes(notebook, fmt="ipynb")
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


def add_ipynb_download(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """``html-page-context`` handler: write the notebook, point the theme to it."""
    if app.builder.format != "html" or doctree is None:
        return
    source = _is_markdown_notebook(app, pagename)
    if source is None:
        return
    relative = pagename + ".ipynb"
    target = Path(app.outdir, "_sources", *relative.split("/"))
    try:
        write_notebook(source, target)
    except Exception as error:  # a broken chapter must not hide behind a missing button
        logger.warning(f"could not convert {source} to a notebook: {error}",
                       location=pagename, type="bnbook", subtype="ipynb")
        return
    context["ipynb_source"] = relative


def setup(app: Sphinx) -> dict:
    # sphinx-book-theme builds its header buttons at priority 501: run before it.
    app.connect("html-page-context", add_ipynb_download, priority=500)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
