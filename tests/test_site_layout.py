"""The built site on a phone and on a desktop: sidebar buttons and formulas that fit.

The buttons a reader sees (the chapter list's ☰ and the page contents) are clicked at
390 x 844 and 1280 x 900; each sidebar must then be visible on the screen and clickable
(the element at the centre of its first link is that link), and hidden again once closed
the way a reader closes it. At 390 px no inline formula may be clipped: each one fits
inside the boxes around it or sits in one that scrolls sideways, and only a formula wider
than its line scrolls (no needless scrollbars). Screenshots of the open
and closed sidebars go to ``_build/screenshots/nav-*.png``.

Uses the server and browser of ``tests/test_site.py``; needs the built site like it.
"""

from __future__ import annotations

import pytest

from test_site import PAGES, SHOTS, browser, chapter_pages, redirect_target, server  # noqa: F401

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
CHAPTER = chapter_pages()[1]  # a chapter with a page contents sidebar
SIDEBARS = {  # button -> the first link of the sidebar it toggles
    "primary": (".primary-toggle", "nav.bd-docs-nav a.reference"),
    "secondary": (".secondary-toggle", "#pst-page-toc-nav a.reference"),
}

_SHOWN = """link => {
  const r = link.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) return false;
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) return false;
  const hit = document.elementFromPoint(x, y);
  return hit !== null && (hit === link || link.contains(hit));
}"""


def shown(page, link_selector: str) -> bool:
    """True when the first link of a sidebar is on the screen and on top (clickable)."""
    link = page.locator(link_selector).first
    return link.count() == 1 and link.evaluate(_SHOWN)


def visible_button(page, selector: str):
    """The one visible button matching ``selector`` (the themes also render hidden ones)."""
    buttons = page.locator(f"{selector}:visible")
    assert buttons.count() == 1, f"expected one visible {selector}, found {buttons.count()}"
    return buttons.first


def wait_shown(page, link_selector: str, expected: bool) -> bool:
    """Wait up to 2 s (the themes animate) for the sidebar to be shown / hidden."""
    for _ in range(40):
        if shown(page, link_selector) == expected:
            return True
        page.wait_for_timeout(50)
    return False


def close_modal(page) -> None:
    """Close an open sidebar dialog as a reader does: a tap beside it."""
    box = page.locator("dialog[open]").bounding_box()
    x = box["x"] + box["width"] + 10 if box["x"] < 20 else box["x"] - 10
    page.mouse.click(x, PHONE["height"] / 2)


@pytest.fixture
def open_page(browser, server):  # noqa: F811
    """A function ``(viewport) -> page`` showing the chapter, with console errors kept."""
    contexts = []

    def _open(viewport):
        ctx = browser.new_context(viewport=viewport)
        contexts.append(ctx)
        page = ctx.new_page()
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
        page.goto(f"{server}/{CHAPTER}", wait_until="load")
        return page

    yield _open
    for ctx in contexts:
        ctx.close()


def toggle_twice(page, name: str, viewport: dict, close) -> None:
    """Click the visible button of sidebar ``name``: it opens; ``close`` closes it."""
    button_selector, link = SIDEBARS[name]
    tag = "phone" if viewport is PHONE else "desktop"
    assert wait_shown(page, link, False), f"{name} sidebar shown before any click ({tag})"
    visible_button(page, button_selector).click()
    assert wait_shown(page, link, True), f"{name} sidebar did not open on a click ({tag})"
    page.screenshot(path=str(SHOTS / f"nav-{tag}-{name}-open.png"))
    close(page)
    assert wait_shown(page, link, False), f"{name} sidebar did not close ({tag})"
    page.screenshot(path=str(SHOTS / f"nav-{tag}-{name}-closed.png"))


@pytest.mark.book
@pytest.mark.parametrize("name", ["primary", "secondary"])
def test_phone_sidebar_buttons(open_page, name):
    page = open_page(PHONE)
    SHOTS.mkdir(parents=True, exist_ok=True)
    toggle_twice(page, name, PHONE, close_modal)
    # a second round: the content went back to the page and can be opened again
    visible_button(page, SIDEBARS[name][0]).click()
    assert wait_shown(page, SIDEBARS[name][1], True), f"{name} sidebar did not reopen"
    page.keyboard.press("Escape")
    assert wait_shown(page, SIDEBARS[name][1], False), f"Escape did not close {name}"
    assert not page.errors, f"console errors: {page.errors}"


@pytest.mark.book
def test_desktop_chapter_list_button(open_page):
    page = open_page(DESKTOP)
    SHOTS.mkdir(parents=True, exist_ok=True)
    button, link = SIDEBARS["primary"]
    assert wait_shown(page, link, True), "the chapter list is not shown at 1280 px"
    page.screenshot(path=str(SHOTS / "nav-desktop-primary-start.png"))
    # here the chapter list starts open: the button hides it, a second click shows it
    visible_button(page, button).click()
    assert wait_shown(page, link, False), "the ☰ button did not hide the chapter list"
    page.screenshot(path=str(SHOTS / "nav-desktop-primary-hidden.png"))
    visible_button(page, button).click()
    assert wait_shown(page, link, True), "a second click did not show the chapter list"
    # the page contents sidebar is always shown at this width, so no button for it
    assert shown(page, SIDEBARS["secondary"][1]), "page contents not shown at 1280 px"
    assert page.locator(".secondary-toggle:visible").count() == 0
    assert not page.errors, f"console errors: {page.errors}"


_CLIPPED_MATH = """() => {
  const clipped = [];
  // a scroll container only where needed: a formula that fits must not get a scrollbar
  for (const span of document.querySelectorAll('article span.math')) {
    const overflow = getComputedStyle(span).overflowX, math = span.querySelector('mjx-math');
    if ((overflow === 'auto' || overflow === 'scroll') && math &&
        math.getBoundingClientRect().width <= span.getBoundingClientRect().width + 0.5)
      clipped.push('scrolls although it fits: ' + span.textContent.slice(0, 60));
  }
  for (const math of document.querySelectorAll('article mjx-container:not([display="true"])')) {
    const r = math.getBoundingClientRect();
    if (r.width === 0) continue;
    let box = math.parentElement, verdict = r.right > innerWidth + 0.5 ? 'past the screen' : null;
    for (; box && box !== document.body; box = box.parentElement) {
      const overflow = getComputedStyle(box).overflowX;
      if (overflow === 'auto' || overflow === 'scroll') { verdict = null; break; }
      const b = box.getBoundingClientRect();
      if (overflow !== 'visible' && (r.right > b.right + 0.5 || r.left < b.left - 0.5)) {
        verdict = `cut off by <${box.tagName.toLowerCase()} class="${box.className}">`;
        break;
      }
    }
    if (verdict) clipped.push(`${verdict}: ${Math.round(r.width)} px wide, ` +
                              (math.closest('.math') || math).textContent.slice(0, 60));
  }
  return clipped;
}"""

MATH_PAGES = [rel for rel in PAGES if redirect_target(rel) is None]


@pytest.mark.book
def test_no_inline_math_clipped_on_a_phone(browser, server):  # noqa: F811
    ctx = browser.new_context(viewport=PHONE)
    page = ctx.new_page()
    clipped = {}
    try:
        for rel in MATH_PAGES:
            page.goto(f"{server}/{rel}", wait_until="load")
            page.evaluate("""async () => { if (!document.querySelector('script[src*="mathjax"]')) return;
              for (let i = 0; i < 200 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)
                await new Promise(r => setTimeout(r, 50));
              await MathJax.startup.promise;
              // book/_ext/_static/bnbook_nav.js marks the formulas wider than their line
              for (let i = 0; i < 100 && !document.documentElement.dataset.bnbookWideMath; i++)
                await new Promise(r => setTimeout(r, 50)); }""")
            found = page.evaluate(_CLIPPED_MATH)
            if found:
                clipped[rel] = found
    finally:
        ctx.close()
    assert MATH_PAGES, "no pages"
    assert not clipped, "inline math clipped at 390 px:\n" + "\n".join(
        f"  {rel}: {items}" for rel, items in clipped.items())


@pytest.mark.book
def test_figures_open_at_full_size_on_a_phone(browser, server):  # noqa: F811
    """Every drawn figure is a link to its own image file (bnbook_nav.js), so a reader on
    a phone, where a 6.9-inch figure is drawn at half size, can open it at full size."""
    ctx = browser.new_context(viewport=PHONE)
    page = ctx.new_page()
    try:
        page.goto(f"{server}/{CHAPTER}", wait_until="load")
        found = page.evaluate("""() => [...document.querySelectorAll(
            'article .cell_output img, article figure img')].map(img => {
              const a = img.closest('a');
              return {src: img.src, href: a ? a.href : null,
                      shrunk: img.naturalWidth > img.getBoundingClientRect().width + 1};
            })""")
        assert found, f"no figures on {CHAPTER}"
        unlinked = [f["src"] for f in found if f["href"] != f["src"]]
        assert not unlinked, f"figures not linked to their file on {CHAPTER}: {unlinked}"
        assert any(f["shrunk"] for f in found), "no figure is drawn below its size at 390 px"
        first = page.locator("a.bnbook-zoom").first
        with page.expect_navigation():
            first.click()
        assert page.url == found[0]["href"]
    finally:
        ctx.close()
