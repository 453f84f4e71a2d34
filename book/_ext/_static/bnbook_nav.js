// Make every visible sidebar toggle work (see book/_ext/bnbook_nav.py).
// The themes wire their handlers to document.querySelector(".primary-toggle") (and
// ".secondary-toggle"), a hidden navbar button; a click on any other toggle of the same
// kind is passed on to that one, so the themes decide what happens: on a wide screen
// sphinx-book-theme hides or shows the chapter list, on a narrow one pydata-sphinx-theme
// opens it as a modal dialog.
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
