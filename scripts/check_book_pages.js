// In-page checks of scripts/check_book_pages.py. Evaluated in each page of the built book,
// after the page has loaded and MathJax has finished; returns a JSON-able object.
// Kept out of _static/ on purpose: Jupyter Book injects every .js found there into every page.
(() => {
  // Text in these elements is code or typeset math: TeX delimiters are legitimate there.
  const SKIP = "pre, code, kbd, samp, script, style, textarea, mjx-container, .highlight";
  // TeX left in the rendered text means the math was not typeset.
  const RAW_TEX = /\$\$|\\\[|\\\(|\\begin\{/;
  // Placeholder repository addresses and template values that must never be linked.
  const PLACEHOLDER = [
    /github\.com\/mmedu\/mmedu(?![\w.-])/i, /\bOWNER\/REPO\b/i, /\bexample\.(com|org)\b/i,
    /\{\{|%7B%7B/, /\/(None|undefined|null)(\/|$)/,
  ];
  // An address built from an empty repository setting: a bare host, or an empty path segment.
  const UNSET = [
    /^https?:\/\/(www\.)?github\.com\/?$/i, /^https?:\/\/[^/]+\/(.*[^:])?\/\//,
    /mybinder\.org\/v2\/gh\/?$/i, /colab\.research\.google\.com\/github\/?$/i,
  ];
  // Repository and launch buttons of the theme: each must carry a real address.
  const BUTTONS = ".dropdown-launch-buttons a, a.btn-launch, .btn-source-repository-button, " +
                  ".btn-source-issues-button, .btn-source-edit-button, a[href*='mybinder.org'], " +
                  "a[href*='colab.research.google.com']";

  const rawTex = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.nodeValue;
    if (!RAW_TEX.test(text) || node.parentElement.closest(SKIP)) continue;
    const i = text.search(RAW_TEX);
    rawTex.push(text.slice(Math.max(0, i - 40), i + 60).replace(/\s+/g, " ").trim());
  }

  // Sphinx math nodes (span.math / div.math) each hold a MathJax container once typeset.
  const mathNodes = [...document.querySelectorAll("span.math, div.math")];
  const untypeset = mathNodes.filter(m => !m.querySelector("mjx-container"))
                             .map(m => m.textContent.trim().slice(0, 80));
  const mathErrors = [...document.querySelectorAll("mjx-merror")]
      .map(e => e.getAttribute("data-mjx-error") || e.textContent.trim().slice(0, 80));

  const brokenImages = [...document.images]
      .filter(im => !im.complete || im.naturalWidth === 0)
      .map(im => im.getAttribute("src") || "(no src)");

  const badLinks = [];
  document.querySelectorAll("a[href]").forEach(a => {
    const raw = a.getAttribute("href");
    const where = (a.textContent.trim() || a.getAttribute("aria-label") || a.className || "").slice(0, 40);
    if (raw.trim() === "") badLinks.push(`empty href (${where})`);
    else if (PLACEHOLDER.some(p => p.test(raw))) badLinks.push(`placeholder ${raw} (${where})`);
    else if (UNSET.some(p => p.test(a.href))) badLinks.push(`unset repository URL ${a.href} (${where})`);
  });
  document.querySelectorAll(BUTTONS).forEach(a => {
    const raw = (a.getAttribute("href") || "").trim();
    if (!/^https?:\/\/[^/]+\/[^/]+/.test(raw)) badLinks.push(`launch/repository button without an address: ${JSON.stringify(raw)}`);
  });
  // Local files the page links to (existence is checked by the caller).
  const localLinks = [...new Set([...document.querySelectorAll("a[href]")]
      .map(a => a.href).filter(h => h.startsWith("file://")).map(h => h.split(/[?#]/)[0]))];

  // --- Layout (scripts/check_book_pages.py judges it at each width) ---------------------
  const article = document.querySelector("article.bd-article") || document.body;
  const visible = (el) => el.checkVisibility ? el.checkVisibility() : el.getClientRects().length > 0;
  const label = (el) => (el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 70);

  // A Markdown table that reached the page as text: a paragraph of pipes.
  const textTables = [...article.querySelectorAll("p, li, .cell_output div.text_markdown")]
      .filter(el => !el.closest(SKIP))
      // its separator row: |---|, or |—| once Sphinx's smart quotes have run over it
      .filter(el => /\|\s*:?[-\u2014\u2013]+:?\s*\|/.test(el.textContent))
      .map(label);

  // Wider than their own box: code (input cells, including hidden ones: their <details> are
  // opened for the measurement), printed output, HTML output and display equations.
  const closed = [...article.querySelectorAll("details:not([open])")];
  closed.forEach(d => { d.open = true; });
  const overflow = (el) => el.scrollWidth - el.clientWidth;
  const wide = [];
  const measure = (kind, selector) => article.querySelectorAll(selector).forEach(el => {
    if (!visible(el)) return;
    const extra = overflow(el);
    if (extra > 1) wide.push({kind, extra, text: label(el)});
  });
  measure("code", "div.cell_input pre, div.highlight pre:not(div.cell_output pre)");
  measure("output", "div.cell_output pre, div.cell_output div.output, .mmedu-table-wrap");
  measure("equation", "div.math mjx-container, mjx-container[display='true']");
  closed.forEach(d => { d.open = false; });

  // Figures: every image of the article in a numbered figure with a caption and alt text;
  // raster images stored at high resolution, shown at no less than 65 % of their size.
  // (the theme's own icons, e.g. the module index's collapse toggles, are not figures)
  const figures = [...article.querySelectorAll("img")]
      .filter(im => !/(^|\/)_static\//.test(im.getAttribute("src") || "")).map(im => {
    const fig = im.closest("figure");
    const cap = fig ? fig.querySelector("figcaption") : null;
    const alt = (im.getAttribute("alt") || "").trim();
    const style = im.getAttribute("style") || "";
    const m = style.match(/(?:^|;)\s*width:\s*([\d.]+)px/) ;
    const cssWidth = m ? parseFloat(m[1]) : (parseFloat(im.getAttribute("width")) || null);
    const shown = im.getBoundingClientRect().width;
    return {
      src: (im.getAttribute("src") || "").split("/").pop(), alt,
      number: cap && cap.querySelector(".caption-number") ? cap.querySelector(".caption-number").textContent.trim() : "",
      caption: cap ? label(cap) : "",
      svg: /\.svg($|\?)/i.test(im.getAttribute("src") || ""),
      natural: im.naturalWidth, shown, css_width: cssWidth,
    };
  });

  return {
    text_tables: textTables.slice(0, 5), text_table_count: textTables.length,
    wide: wide.slice(0, 8), wide_count: wide.length,
    wide_by_kind: wide.reduce((a, w) => { a[w.kind] = (a[w.kind] || 0) + 1; return a; }, {}),
    figures, article: !!document.querySelector("article.bd-article"),
    title: document.title,
    math_nodes: mathNodes.length, untypeset_math: untypeset.slice(0, 5),
    untypeset_count: untypeset.length, raw_tex: rawTex.slice(0, 5), raw_tex_count: rawTex.length,
    math_errors: mathErrors.slice(0, 5),
    images: document.images.length, broken_images: brokenImages,
    bad_links: badLinks, local_links: localLinks,
    solutions: document.querySelectorAll(".solution").length,
    hidden_code: document.querySelectorAll("details.above-input").length,
    page_width: document.documentElement.scrollWidth,
  };
})()
