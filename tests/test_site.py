"""The built site in a real browser: headless Debian Chromium driven by Playwright.

Every HTML page of ``_build/html`` is opened from a static server on 127.0.0.1 that
this module starts, and two pages also from ``file://``. On each page: the math is
typeset by the site's own MathJax (every math node holds an ``mjx-container``, no
``mjx-merror``, no ``$...$`` left as text), every image loaded, no request left the
machine, no console error, no failed request; a full-page screenshot goes to ``_build/screenshots/``. Chapter pages
also offer their notebook for download (a valid ``.ipynb``) and fold their exercise
solutions in dropdowns that open on a click.

Needs ``make book`` first. Without the built site, Playwright or ``/usr/bin/chromium``
the tests skip, except under ``BNBOOK_REQUIRE_ORACLES=1`` (CI), where they fail.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
SKIP_DIRS = {"_static", "_sources", "_images", "reports", "_downloads"}
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))


def _unavailable(reason: str):
    if os.environ.get("BNBOOK_REQUIRE_ORACLES") == "1":
        pytest.fail(f"{reason}, but BNBOOK_REQUIRE_ORACLES=1 requires the browser tests "
                    "to run", pytrace=False)
    pytest.skip(reason)


def site_pages() -> list[str]:
    """Every HTML page of the built site, relative to ``_build/html``."""
    if not (SITE / "index.html").is_file():
        return []
    return sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html")
                  if not SKIP_DIRS & set(p.relative_to(SITE).parts[:-1]))


def chapter_pages() -> list[str]:
    """The pages of the numbered chapters (``book/forward.html``, ...)."""
    return [c["file"] + ".html" for part in TOC["parts"] if part.get("numbered")
            for c in part["chapters"]]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep pytest's output readable
        pass


@pytest.fixture(scope="module")
def server():
    """A static server for ``_build/html`` on 127.0.0.1 (a free port)."""
    if not (SITE / "index.html").is_file():
        _unavailable(f"no built site at {SITE} (run `make book`)")
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        _unavailable(f"{CHROMIUM} not found (Debian package `chromium`)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (requirements-test.txt)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def context(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


class PageLog:
    """What a page did while it loaded: requests, failures, console errors."""

    def __init__(self, page):
        self.requests, self.failed, self.errors = [], [], []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} ({r.failure})"))
        page.on("response", lambda r: r.status >= 400 and self.failed.append(
            f"{r.url} (HTTP {r.status})"))
        page.on("console", lambda m: m.type == "error" and self.errors.append(
            f"console.error: {m.text} at {m.location.get('url')}"))
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))


def off_machine(urls: list[str], allowed: set[str]) -> list[str]:
    """The URLs whose scheme or host is not the local server / file system."""
    bad = []
    for url in urls:
        parsed = urlparse(url)
        if parsed.scheme in {"data", "blob", "about"}:
            continue
        if parsed.scheme == "file" and "file" in allowed:
            continue
        if parsed.scheme in {"http", "https"} and parsed.netloc in allowed:
            continue
        bad.append(url)
    return bad


_WAIT_MATHJAX = """async () => {
  if (!document.querySelector('script[src*="mathjax"]')) return 'no-mathjax';
  for (let i = 0; i < 200 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 50));
  if (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) return 'mathjax did not start';
  await MathJax.startup.promise;
  return 'typeset';
}"""

_WAIT_IMAGES = """async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null :
      new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); })));
  return imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
}"""

_MATH_STATE = r"""() => {
  const nodes = Array.from(document.querySelectorAll('span.math, div.math'));
  return {
    math: nodes.length,
    containers: document.querySelectorAll('mjx-container').length,
    untypeset: nodes.filter(n => !n.querySelector('mjx-container'))
                    .map(n => n.textContent.slice(0, 80)),
    merrors: Array.from(document.querySelectorAll('mjx-merror'))
                  .map(n => n.getAttribute('data-mjx-error') || n.textContent.slice(0, 80)),
    // $...$ left as text in prose: e.g. a {glue:md} value parsed as commonmark
    dollars: Array.from(document.querySelectorAll('article p, article li, article td'))
                  .filter(e => !e.closest('pre, code, .highlight'))
                  .map(e => { const c = e.cloneNode(true);
                              c.querySelectorAll('pre, code, mjx-container, .math').forEach(x => x.remove());
                              return c.textContent; })
                  .filter(t => /\$[^$\s][^$]*\$/.test(t)).map(t => t.trim().slice(0, 100)),
  };
}"""


def check_page(page, url: str, allowed: set[str], shot: Path | None) -> dict:
    """Open ``url``; return the problems found (empty lists when the page is fine)."""
    log = PageLog(page)
    response = page.goto(url, wait_until="load")
    mathjax = page.evaluate(_WAIT_MATHJAX)
    broken_images = page.evaluate(_WAIT_IMAGES)
    math = page.evaluate(_MATH_STATE)
    if shot is not None:
        shot.parent.mkdir(parents=True, exist_ok=True)
        # JPEG: half the time of PNG on long pages, and still sharp enough to read
        page.screenshot(path=str(shot), full_page=True, type="jpeg", quality=85)
    problems = {
        "status": [] if response is None or response.ok else [f"HTTP {response.status}"],
        "mathjax": [mathjax] if math["math"] and mathjax != "typeset" else [],
        "untypeset math": math["untypeset"],
        "MathJax errors": math["merrors"],
        "unrendered $...$ in the text": math["dollars"],
        "images not loaded": broken_images,
        "requests off the machine": off_machine(log.requests, allowed),
        "failed requests": log.failed,
        "console errors": log.errors,
    }
    return {k: v for k, v in problems.items() if v} | {"_math": math["math"]}


def _report(problems: dict) -> str:
    return "\n".join(f"  {k}: {v}" for k, v in problems.items() if not k.startswith("_"))


def chapter_problems(page, rel: str) -> dict:
    """A chapter offers its notebook for download and folds its solutions."""
    problems = {}
    # the download menu lists .ipynb next to .md, and the notebook is served
    links = page.eval_on_selector_all(
        ".dropdown-download-buttons a", "els => els.map(e => e.getAttribute('href'))")
    ipynb = [h for h in links if h.endswith(".ipynb")]
    if not (ipynb and [h for h in links if h.endswith(".md")]):
        problems["download menu"] = [f"offers {links}, expected .ipynb and .md"]
    else:
        reply = page.request.get(page.url.rsplit("/", 1)[0] + "/" + ipynb[0])
        notebook = json.loads(reply.text()) if reply.ok else {}
        code = [c for c in notebook.get("cells", []) if c["cell_type"] == "code"]
        if not reply.ok:
            problems["notebook download"] = [f"{ipynb[0]}: HTTP {reply.status}"]
        elif notebook.get("nbformat") != 4 or not code or any(c["outputs"] for c in code):
            problems["notebook download"] = [f"{ipynb[0]} is not the chapter as an "
                                             "unexecuted nbformat-4 notebook with code"]
    # the exercises end with solutions that fold out on a click
    toggles = page.locator("details.sd-dropdown, .admonition.dropdown, .dropdown.solution")
    if toggles.count() == 0:
        problems["solutions"] = ["no dropdown (exercise solution) on the page"]
        return problems
    first = toggles.last
    first.scroll_into_view_if_needed()
    if first.evaluate("e => e.tagName") == "DETAILS":
        first.locator("summary").first.click()
        opened = first.evaluate("e => e.open")
    else:
        body = first.locator(":scope > :not(.admonition-title)").first
        if body.is_visible():
            problems["solutions"] = ["a dropdown solution is visible before any click"]
        first.locator(".admonition-title").first.click()
        body.wait_for(state="visible", timeout=3000)
        opened = body.is_visible()
    if not opened:
        problems["solutions"] = ["the last dropdown does not open on a click"]
    return problems


PAGES = site_pages()


def redirect_target(rel: str) -> str | None:
    """The target of a ``<meta http-equiv="Refresh">`` page (Jupyter Book's index)."""
    match = re.search(r'http-equiv="Refresh" content="0; url=([^"]+)"',
                      (SITE / rel).read_text(encoding="utf-8"), flags=re.IGNORECASE)
    return match.group(1) if match else None


@pytest.mark.book
@pytest.mark.parametrize("rel", PAGES or ["<no built site>"])
def test_page_over_http(rel, server, context):
    page = context.new_page()
    try:
        target = redirect_target(rel)
        if target is not None:  # the index only forwards to the first page
            page.goto(f"{server}/{rel}")
            page.wait_for_url(f"{server}/{target}")
            assert (SITE / target).is_file(), f"{rel} redirects to a missing page {target}"
            return
        shot = SHOTS / (rel.removesuffix(".html").replace("/", "__") + ".jpg")
        problems = check_page(page, f"{server}/{rel}", {urlparse(server).netloc}, shot)
        math = problems.pop("_math")
        if rel in chapter_pages():
            problems |= chapter_problems(page, rel)
        assert not problems, f"{rel} over http:\n{_report(problems)}"
        html = (SITE / rel).read_text(encoding="utf-8")
        if 'class="math' in html:
            assert math > 0, f"{rel} has math in its HTML but none was found in the page"
    finally:
        page.close()


@pytest.mark.book
@pytest.mark.parametrize("rel", ["book/intro.html", chapter_pages()[1]])
def test_page_from_file(rel, context):
    if not (SITE / rel).is_file():
        _unavailable(f"{SITE / rel} was not built (run `make book`)")
    page = context.new_page()
    try:
        problems = check_page(page, (SITE / rel).as_uri(), {"file"}, None)
        math = problems.pop("_math")
        assert not problems, f"{rel} from file://:\n{_report(problems)}"
        assert math > 0, f"{rel} from file:// shows no math nodes"
    finally:
        page.close()


@pytest.mark.book
def test_mathjax_is_served_by_the_site():
    if not (SITE / "index.html").is_file():
        _unavailable(f"no built site at {SITE} (run `make book`)")
    assert (SITE / "_static" / "mathjax" / "tex-chtml.js").is_file()
    html = (SITE / "book" / "intro.html").read_text(encoding="utf-8")
    assert 'src="../_static/mathjax/tex-chtml.js' in html, "pages must load the local MathJax"
    for rel in PAGES:
        text = (SITE / rel).read_text(encoding="utf-8")
        for marker in ("cdn.jsdelivr.net", "unpkg.com", "fonts.googleapis", "cdnjs"):
            assert marker not in text, f"{rel} mentions {marker}"
        remote = re.findall(r'<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)="((?:https?:)?//[^"]+)"',
                            text)
        assert not remote, f"{rel} loads from other hosts: {remote}"


