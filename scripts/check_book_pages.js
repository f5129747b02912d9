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

  return {
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
