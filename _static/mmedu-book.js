// The book's fixes to its themes (Jupyter Book 1 links every .js file in _static/ into every
// page).
//
// 1. Sidebar toggles that work.
// Each page holds two buttons per sidebar: pydata-sphinx-theme's navbar icon (first in the
// page, 0x0 in sphinx-book-theme's layout) and sphinx-book-theme's visible header button.
// Both themes bind their click handlers to document.querySelector(".primary-toggle"), the
// FIRST match, so the button a reader sees does nothing, at any width (a known
// pydata-sphinx-theme/sphinx-book-theme interplay). Here every other toggle forwards its
// click to the first one, which carries the themes' handlers: on wide screens the primary
// sidebar collapses/expands, on narrow screens the sidebar opens as a dialog.
(function () {
  function forward(selector) {
    const buttons = document.querySelectorAll(selector);
    if (buttons.length < 2) return;
    const first = buttons[0];
    buttons.forEach((button, i) => {
      if (i === 0) return;
      button.addEventListener("click", (event) => {
        event.preventDefault();
        event.stopPropagation();
        button.blur();
        first.click();
      });
    });
  }
  // 2. Search results without raw TeX. Sphinx's search page cuts each result's snippet from
  // the page's HTML as text, before MathJax: "\\(s\\)" and "\\mathbf{S}" would show as
  // typed. The snippet text loses the delimiters and font commands ("s", "S").
  function plainMath(text) {
    return text
      .replace(/\\[()[\]]|\$\$/g, "")
      .replace(/\\(?:mathbf|boldsymbol|mathrm|mathcal|operatorname|text|textrm)\s*\{([^{}]*)\}/g, "$1")
      .replace(/\\(?=[A-Za-z])/g, "");
  }
  function cleanSearchSnippets() {
    if (typeof Search === "undefined" || !Search.htmlToText || Search._mmeduPlain) return;
    const original = Search.htmlToText;
    Search.htmlToText = (html, anchor) => plainMath(original(html, anchor));
    Search._mmeduPlain = true;
  }
  function setup() {
    forward(".primary-toggle");
    forward(".secondary-toggle");
    cleanSearchSnippets();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else {
    setup();
  }
})();
