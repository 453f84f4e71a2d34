// Navigation and narrow-screen fixes (see book/_ext/bnbook_nav.py).

// 1. Make every visible sidebar toggle work. The themes wire their handlers to
// document.querySelector(".primary-toggle") (and ".secondary-toggle"), a hidden navbar
// button; a click on any other toggle of the same kind is passed on to that one, so the
// themes decide what happens: on a wide screen sphinx-book-theme hides or shows the
// chapter list, on a narrow one pydata-sphinx-theme opens it as a modal dialog.
document.addEventListener("DOMContentLoaded", () => {
  for (const selector of [".primary-toggle", ".secondary-toggle"]) {
    const wired = document.querySelector(selector);
    for (const button of document.querySelectorAll(selector)) {
      if (button === wired) continue;
      button.addEventListener("click", (event) => {
        event.preventDefault();
        event.stopPropagation();
        wired.click();
        button.blur();
      });
    }
  }
});

// 2. An inline formula wider than its line scrolls sideways instead of being cut off.
// The theme caps span.math at the line's width with overflow: hidden. Only a formula
// whose typeset box (mjx-math) is wider than that gets the class bnbook-wide-math
// (overflow-x: auto in bnbook_nav.css): every span.math overflows by a pixel or two
// (glyph overhangs, MathJax's hidden assistive MathML), and a scroll container for each
// would show needless scrollbars in browsers with classic ones.
function markWideMath() {
  let count = 0;
  for (const span of document.querySelectorAll("span.math")) {
    const math = span.querySelector("mjx-math");
    if (!math) continue;
    const wide = math.getBoundingClientRect().width > span.getBoundingClientRect().width + 0.5;
    span.classList.toggle("bnbook-wide-math", wide);
    count += wide;
  }
  document.documentElement.dataset.bnbookWideMath = count;  // done (tests wait for it)
}

window.addEventListener("load", () => {
  const typeset = window.MathJax && MathJax.startup && MathJax.startup.promise;
  Promise.resolve(typeset).then(markWideMath);
  // measure again when the room changes: a rotated phone, a solution that folds out
  let pending = null;
  const later = () => {
    clearTimeout(pending);
    pending = setTimeout(markWideMath, 150);
  };
  window.addEventListener("resize", later);
  document.addEventListener("toggle", later, true);
  document.addEventListener("click", later);
});

// 3. A figure opens at full size when tapped. On a phone a 6.9-inch figure is drawn at
// half its width or less, so its 9-point labels shrink to 5 pixels: every image a cell
// drew (and every figure) becomes a link to its own file, which the browser shows at
// its natural size, to zoom and pan. Images already inside a link are left alone.
function linkFigures() {
  const images = document.querySelectorAll(
    "article .cell_output img, article figure img");
  for (const img of images) {
    if (img.closest("a") || !img.getAttribute("src")) continue;
    const link = document.createElement("a");
    link.href = img.src;
    link.className = "bnbook-zoom";
    link.title = "Open the figure at full size";
    img.replaceWith(link);
    link.appendChild(img);
  }
}

document.addEventListener("DOMContentLoaded", linkFigures);
