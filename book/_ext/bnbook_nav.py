"""Navigation and narrow-screen fixes for the book's theme (pinned versions only).

``_static/bnbook_nav.js`` makes the visible sidebar buttons work: pydata-sphinx-theme
0.17.1 and sphinx-book-theme 1.3.0 attach their click handlers to the *first*
``.primary-toggle`` / ``.secondary-toggle`` in the page, which is a hidden button in the
top navbar, so the buttons a reader sees in the article header do nothing (upstream
pydata-sphinx-theme issue 2451). The script forwards a click on any other toggle to
that first one, where the themes' handlers live.

The same script marks each inline formula wider than its line (``bnbook-wide-math``),
and ``_static/bnbook_nav.css`` lets it scroll sideways: the theme clips such a formula
(``span.math`` has ``overflow: hidden``), on a phone often in mid-equation. Formulas
that fit are left alone, so no needless scrollbar appears.

``tests/test_site_layout.py`` clicks the visible buttons and looks for clipped math at 390 px;
when the themes are upgraded, those tests say whether this module is still needed.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx

STATIC = Path(__file__).resolve().parent / "_static"


def add_static_path(app: Sphinx) -> None:
    """``builder-inited`` handler: serve this folder's ``_static`` files with the site."""
    app.config.html_static_path.append(str(STATIC))


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", add_static_path)
    app.add_js_file("bnbook_nav.js", loading_method="defer")
    app.add_css_file("bnbook_nav.css")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
