"""Open every page of the built book in headless Chromium and check how it renders.

    python scripts/check_book_pages.py _build/html [--widths 1280,400] [--page-timeout 45]
                                                   [--timeout 600] [--chromium PATH] [PAGE ...]

For every page of the book (every .html in the build folder outside its ``_*`` folders: the
toc pages under book/ and notebooks/, plus search and genindex), at each width (below 600 px
the screen is emulated as a phone), it asserts:

- math: MathJax loaded and finished, every Sphinx math node holds a typeset MathJax
  container, no raw ``$$``, ``\\[``, ``\\(`` or ``\\begin{`` is left in the rendered text
  outside code, and MathJax reported no error (``mjx-merror``);
- every ``<img>`` has loaded (``naturalWidth > 0``);
- no JavaScript exception, no ``console.error``/assert, no browser log error, no failed load;
- exercise solutions (sphinx-exercise ``{solution}``) are hidden until the toggle button in
  their title is clicked (a real mouse click: on the title's link to the exercise, which a
  reader may click first), shown after it, and hidden again by the toggle button; likewise
  code hidden by the cell tag ``hide-input`` (among it the exercises' reference solutions) is
  hidden until its summary is clicked;
- layout: no Markdown table reached the page as text (a paragraph of pipes); at 1280 px no
  code cell, printed output, HTML output (results tables) or display equation is wider than
  its box (on a phone they scroll in their own boxes);
- figures: every image of the article sits in a numbered figure ("Fig. 4.1") with a caption
  and descriptive alt text; a raster image is stored at 1.5x its display size or more (high
  DPI) and shown at no less than 65 % of it (labels of a 10 pt font stay at 9 px or more);
- the sidebar toggles work: on a wide screen the primary toggle hides the chapter list and
  shows it again, on a phone it opens the list (and the contents toggle the page's contents)
  as a dialog;
- the page is no wider than the screen (wide equations, tables and code scroll in their own
  boxes; nothing makes the whole page zoom out on a phone);
- no link to a placeholder or unset repository address (``github.com/mmedu/mmedu``,
  ``OWNER/REPO``, ``example.com``, an empty ``href``, a launch button without an address...),
  and every link to a local file points to a file that exists.

The pages are loaded from ``file://`` URLs with every http(s)/ws(s) request blocked, so the
result is the same with or without a network: a page that needs one fails. Redirect pages
(index.html) are checked for an existing target only.

Chromium (Debian's ``chromium``, or --chromium / $CHROMIUM) is started here with a fresh
profile and a DevTools port picked by Chromium on loopback, driven over the DevTools protocol
(tornado's websocket client), and terminated in every case. --screenshots DIR keeps a JPEG
of every page at every width (tiles of 12000 px for long pages) for a person to look at. Prints one line per page and per
failure; exits 0 when every page passes, 1 on a failure, 2 when it cannot run at all.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

HERE = Path(__file__).resolve().parent
PAGE_JS = (HERE / "check_book_pages.js").read_text(encoding="utf-8")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
    # The search page fetches each result page for its snippet: allowed between local files.
    "--allow-file-access-from-files",
    "--remote-debugging-address=127.0.0.1", "--remote-allow-origins=*",
]
BLOCKED = ["http://*", "https://*", "ws://*", "wss://*"]
# The search page is opened with this query: its result snippets must read as text (no raw TeX).
SEARCH_QUERY = "temperature"
REDIRECT = re.compile(r'<meta\s+http-equiv="refresh"\s+content="\d+;\s*url=([^"]+)"', re.I)

# Wait until the page has loaded and MathJax (when the page loads it) has typeset.
WAIT_JS = """
new Promise((resolve) => {
  const t0 = Date.now();
  const poll = () => {
    const mj = window.MathJax;
    if (document.readyState !== 'complete') return setTimeout(poll, 50);
    if (!mj) return resolve('no-mathjax');
    if (!mj.version) {  // configured, but tex-chtml.js has not run (yet)
      return Date.now() - t0 > %(grace)d ? resolve('mathjax-not-loaded') : setTimeout(poll, 50);
    }
    if (!mj.startup || !mj.startup.promise) return setTimeout(poll, 50);
    mj.startup.promise.then(() => resolve('typeset'), (e) => resolve('mathjax-failed: ' + e));
  };
  poll();
}).then((state) => {
  // Images: load lazy ones now and wait for every image to finish (or fail).
  const imgs = [...document.images];
  imgs.forEach((im) => { if (im.loading === 'lazy') im.loading = 'eager'; });
  return Promise.all(imgs.map((im) => im.complete ? null :
      new Promise((r) => { im.addEventListener('load', r); im.addEventListener('error', r); })))
    .then(() => document.fonts ? document.fonts.ready : null).then(() => state);
})
"""

# Solutions: index, visibility of everything after the title, and the title's centre.
SOLUTION_JS = """
((i, scroll) => {
  const sol = document.querySelectorAll('.solution')[i];
  const title = sol.querySelector(':scope > .admonition-title');
  const body = [...sol.children].filter((c) => c !== title);
  const shown = body.some((c) => c.getClientRects().length > 0
      && getComputedStyle(c).visibility !== 'hidden' && c.getBoundingClientRect().height > 0);
  // The toggle's own button (sphinx-togglebutton adds it to the title): what a reader clicks.
  const target = (title && title.querySelector('button.toggle-button')) || title;
  if (scroll && target) target.scrollIntoView({block: 'center'});
  const r = target ? target.getBoundingClientRect() : null;
  // The title's link to its exercise ("Solution to Exercise 4.1"): a reader clicks it too.
  const link = title ? title.querySelector('a') : null;
  const lr = link ? link.getBoundingClientRect() : null;
  // Mouse events are in visual-viewport pixels: a page wider than a phone is zoomed out.
  const vv = window.visualViewport || {offsetLeft: 0, offsetTop: 0, scale: 1};
  return {id: sol.id, title: title ? title.textContent.trim().slice(0, 60) : '',
          has_body: body.length > 0, shown,
          x: r ? (r.left + r.width / 2 - vv.offsetLeft) * vv.scale : null,
          y: r ? (r.top + r.height / 2 - vv.offsetTop) * vv.scale : null,
          lx: lr ? (lr.left + lr.width / 2 - vv.offsetLeft) * vv.scale : null,
          ly: lr ? (lr.top + lr.height / 2 - vv.offsetTop) * vv.scale : null};
})(%d, %s)
"""


# The sidebar toggles a reader sees (the header's buttons, not the themes' 0x0 copies): their
# state, and where to click. Primary: on a wide screen the sidebar collapses/expands in place,
# on a narrow one it opens as a dialog. Secondary (the page's contents): a dialog, shown only
# on narrow screens.
TOGGLE_JS = """
((which, scroll) => {
  const buttons = [...document.querySelectorAll('.' + which + '-toggle')]
      .filter((b) => b.getBoundingClientRect().width > 0 && b.checkVisibility());
  const b = buttons[0];
  const sidebar = document.getElementById('pst-' + which + '-sidebar');
  const dialog = document.getElementById('pst-' + which + '-sidebar-modal');
  // A page without its own contents (no headings) has no contents sidebar to open.
  const needed = which === 'primary' || !!(sidebar || dialog || document.body)
      .querySelector('nav.page-toc, .page-toc');
  const sidebarShown = !!sidebar && sidebar.checkVisibility({visibilityProperty: true})
      && sidebar.getBoundingClientRect().width > 0
      && !sidebar.classList.contains('pst-sidebar-hidden');
  if (!b) return {present: false, needed, dialog: !!(dialog && dialog.open), sidebar: sidebarShown};
  if (scroll) window.scrollTo({top: 0, left: 0, behavior: 'instant'});
  const r = b.getBoundingClientRect();
  const vv = window.visualViewport || {offsetLeft: 0, offsetTop: 0, scale: 1};
  return {present: true, dialog: !!(dialog && dialog.open), sidebar: sidebarShown,
          x: (r.left + r.width / 2 - vv.offsetLeft) * vv.scale,
          y: (r.top + r.height / 2 - vv.offsetTop) * vv.scale};
})('%s', %s)
"""
CLOSE_DIALOGS_JS = """
document.querySelectorAll('dialog[open]').forEach((d) => d.close()); true
"""


class CDP:
    """A minimal DevTools-protocol client over one websocket (one page target)."""

    def __init__(self, ws):
        self.ws, self.next_id, self.pending, self.events = ws, 0, {}, []
        self.stage = "connecting"
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self):
        while True:
            raw = await self.ws.read_message()
            if raw is None:
                for fut in self.pending.values():
                    if not fut.done():
                        fut.set_exception(ConnectionError("DevTools connection closed"))
                return
            msg = json.loads(raw)
            fut = self.pending.pop(msg.get("id"), None)
            if fut is not None and not fut.done():
                if "error" in msg:
                    fut.set_exception(RuntimeError(f"{msg['error']}"))
                else:
                    fut.set_result(msg.get("result", {}))
            elif "method" in msg:
                self.events.append(msg)

    async def call(self, method, **params):
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = fut
        await self.ws.write_message(json.dumps({"id": self.next_id, "method": method, "params": params}))
        return await fut

    async def evaluate(self, expression, await_promise=False):
        res = await self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                              awaitPromise=await_promise)
        if "exceptionDetails" in res:
            d = res["exceptionDetails"]
            raise RuntimeError("checker script failed: "
                               + (d.get("exception", {}).get("description") or d.get("text", "")))
        return res["result"].get("value")


def book_pages(root: Path) -> list[str]:
    """Every page of the book: .html files outside the _* folders (toc pages, search, genindex)."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.html")
                  if not any(part.startswith("_") for part in p.relative_to(root).parts))


def event_errors(events: list[dict]) -> list[str]:
    errors = []
    urls = {ev["params"]["requestId"]: ev["params"]["request"]["url"]
            for ev in events if ev.get("method") == "Network.requestWillBeSent"}
    for ev in events:
        method, p = ev.get("method"), ev.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            text = d.get("exception", {}).get("description") or d.get("text", "")
            errors.append(f"JavaScript exception: {text.splitlines()[0] if text else '?'}"
                          f" ({d.get('url', '')}:{d.get('lineNumber', '?')})")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            errors.append(f"console.{p['type']}: {args[:300]}")
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            e = p["entry"]
            errors.append(f"browser log error: {e.get('text', '')[:200]} {e.get('url', '')}".rstrip())
        elif method == "Network.loadingFailed" and not p.get("canceled"):
            why = p.get("blockedReason") or p.get("errorText") or "?"
            if why == "inspector":  # our Network.setBlockedURLs
                why = "remote address, blocked: the book must work offline"
            errors.append(f"failed to load ({p.get('type')}, {why}): {urls.get(p.get('requestId'), '?')}")
    # The same failure often appears as a log entry and a failed load: keep each line once.
    return list(dict.fromkeys(errors))


async def _click(cdp: CDP, x: float, y: float) -> None:
    for kind in ("mousePressed", "mouseReleased"):
        await cdp.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


async def _state_after_click(cdp: CDP, js: str, which, x: float, y: float, want: bool, *,
                             key: str = "shown", tries: int = 40, settle: float = 0.0) -> dict:
    """Click at (x, y), then poll the state ``js % (which, "false")`` every 0.05 s, at most
    ``tries`` times, until ``state[key] == want``; once it is, wait ``settle`` s (for an
    animation) and read the state again."""
    await _click(cdp, x, y)
    state = None
    for _ in range(tries):
        state = await cdp.evaluate(js % (which, "false"))
        if state[key] == want:
            if settle:
                await asyncio.sleep(settle)
                state = await cdp.evaluate(js % (which, "false"))
            break
        await asyncio.sleep(0.05)
    return state


async def check_solutions(cdp: CDP, count: int) -> list[str]:
    """Each solution: hidden at first; a click on its title's link to the exercise (what a
    reader may click first), or on the toggle button where there is no link, shows it; a click
    on the toggle button hides it again. Script errors are collected for the whole page."""
    failures = []
    for i in range(count):
        before = await cdp.evaluate(SOLUTION_JS % (i, "true"))
        name = before["title"] or before["id"]
        if not before["has_body"]:
            failures.append(f"solution {name!r} has no content")
            continue
        if before["shown"]:
            failures.append(f"solution {name!r} is visible before any click")
            continue
        where = "the link in its title" if before["lx"] is not None else "its toggle button"
        x, y = (before["lx"], before["ly"]) if before["lx"] is not None else (before["x"], before["y"])
        after = await _state_after_click(cdp, SOLUTION_JS, i, x, y, True)
        if not after["shown"]:
            failures.append(f"solution {name!r} stays hidden after a click on {where}")
            continue
        again = await _state_after_click(cdp, SOLUTION_JS, i, after["x"], after["y"], False)
        if again["shown"]:
            failures.append(f"solution {name!r} stays open after a second click on its toggle button")
    return failures


# Code hidden by the cell tag hide-input (exercise solutions among them): myst-nb puts it in a
# <details>; it must be hidden until its summary is clicked, and shown after.
HIDDEN_CODE_JS = """
((i, scroll) => {
  const d = document.querySelectorAll('details.above-input')[i];
  const code = d.querySelector('pre');
  const s = d.querySelector('summary');
  if (scroll) s.scrollIntoView({block: 'center'});
  const r = s.getBoundingClientRect();
  const vv = window.visualViewport || {offsetLeft: 0, offsetTop: 0, scale: 1};
  return {text: code ? code.textContent.trim().slice(0, 50) : '',
          // A closed <details> hides its content with content-visibility, which keeps layout
          // boxes: ask checkVisibility(), not the client rects.
          shown: !!code && d.open && code.checkVisibility() && code.getBoundingClientRect().height > 0,
          x: (r.left + Math.min(r.width / 2, 40) - vv.offsetLeft) * vv.scale,
          y: (r.top + r.height / 2 - vv.offsetTop) * vv.scale};
})(%d, %s)
"""


async def check_hidden_code(cdp: CDP, count: int) -> list[str]:
    failures = []
    for i in range(count):
        before = await cdp.evaluate(HIDDEN_CODE_JS % (i, "true"))
        if before["shown"]:
            failures.append(f"hidden code {before['text']!r} is visible before any click")
            continue
        after = await _state_after_click(cdp, HIDDEN_CODE_JS, i, before["x"], before["y"], True)
        if not after["shown"]:
            failures.append(f"hidden code {before['text']!r} stays hidden after a click on its summary")
    return failures


async def _toggle_state_after(cdp: CDP, which: str, x: float, y: float, key: str,
                              want: bool) -> dict:
    # up to 5 s (a loaded machine, CI, can be slow to repaint); the sidebar slides for
    # 0.25 s: let the layout settle before its positions are read
    return await _state_after_click(cdp, TOGGLE_JS, which, x, y, want, key=key, tries=100,
                                    settle=0.4)


async def check_toggles(cdp: CDP, width: int) -> list[str]:
    """The primary sidebar toggle (and, on a narrow screen, the contents toggle) must act:
    on a wide screen a click hides the sidebar and a second click shows it again; on a narrow
    one a click opens the sidebar as a dialog (closed again afterwards)."""
    failures = []
    narrow = width < 992
    for which in ("primary", "secondary"):
        before = await cdp.evaluate(TOGGLE_JS % (which, "true"))
        if not before["present"]:
            if before["needed"] and (which == "primary" or narrow):
                failures.append(f"no visible {which} sidebar toggle at {width} px")
            continue
        name = "sidebar" if which == "primary" else "contents"
        if narrow:
            after = await _toggle_state_after(cdp, which, before["x"], before["y"], "dialog", True)
            if not after["dialog"]:
                failures.append(f"the {name} toggle does nothing at {width} px (no dialog opens)")
            await cdp.evaluate(CLOSE_DIALOGS_JS)
        else:
            if not before["sidebar"]:
                failures.append(f"the {name} is hidden before any click at {width} px")
                continue
            after = await _toggle_state_after(cdp, which, before["x"], before["y"], "sidebar", False)
            if after["sidebar"]:
                failures.append(f"the {name} toggle does nothing at {width} px (the sidebar stays)")
                continue
            again = await _toggle_state_after(cdp, which, after["x"], after["y"], "sidebar", True)
            if not again["sidebar"]:
                failures.append(f"the {name} toggle hides the sidebar at {width} px but cannot "
                                f"show it again")
    return failures


def layout_failures(page: dict, width: int) -> list[str]:
    """Tables rendered as text; code, outputs or display equations wider than their column
    (on a wide screen; on a phone they scroll in their own boxes); figures without a number,
    a caption or alt text; raster figures without a high-resolution image, or shrunk below
    65 % of their size (labels under ~9 px)."""
    failures = [f"a table rendered as text: {t!r}" for t in page["text_tables"]]
    if page["text_table_count"] > len(page["text_tables"]):
        failures.append(f"... {page['text_table_count']} tables rendered as text in all")
    if width >= 1000:
        for w in page["wide"]:
            failures.append(f"{w['kind']} {w['extra']} px wider than its column: {w['text']!r}")
        if page["wide_count"] > len(page["wide"]):
            failures.append(f"... {page['wide_count']} boxes wider than their column in all "
                            f"({page['wide_by_kind']})")
    for f in page["figures"]:
        if not f["number"] or not f["caption"]:
            failures.append(f"figure {f['src']} has no number and caption")
        alt = f["alt"]
        if len(alt) < 15 or alt.startswith("Figure:") or re.search(r"\.(png|jpe?g|svg|gif)$", alt):
            failures.append(f"figure {f['src']} has no descriptive alt text ({alt!r})")
        if f["svg"] or not f["natural"] or not f["shown"]:
            continue
        # The size the figure is meant to be seen at: its width attribute (the inline
        # backend's "retina" PNGs carry half their pixel width), else its pixel width.
        base = f["css_width"] or f["natural"]
        if f["natural"] < 1.5 * min(base, f["shown"]) - 1:
            failures.append(f"figure {f['src']} is stored at {f['natural']} px and shown at "
                            f"{f['shown']:.0f} px: not a high-resolution image")
        if f["shown"] < 0.65 * base - 1:
            failures.append(f"figure {f['src']} is shown at {f['shown']:.0f} of its "
                            f"{base:.0f} px: labels below ~9 px at {width} px")
    return failures


async def screenshot(cdp: CDP, folder: Path, name: str, width: int) -> None:
    """The whole page as JPEG tiles (at most 12000 px tall each) in ``folder``."""
    metrics = await cdp.call("Page.getLayoutMetrics")
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    height = int(size["height"])
    stem = name.replace("/", "__").removesuffix(".html")
    tile = 12000
    for k, top in enumerate(range(0, max(height, 1), tile)):
        shot = await cdp.call("Page.captureScreenshot", format="jpeg", quality=60,
                              captureBeyondViewport=True,
                              clip={"x": 0, "y": top, "width": width,
                                    "height": min(tile, height - top), "scale": 1})
        suffix = f"-{k + 1}" if height > tile else ""
        (folder / f"{stem}@{width}px{suffix}.jpg").write_bytes(base64.b64decode(shot["data"]))


async def blank(cdp: CDP) -> None:
    """Leave the page for about:blank, and wait until that has loaded: a navigation started
    while the previous one is still committing can stall."""
    await cdp.call("Page.navigate", url="about:blank")
    for _ in range(200):
        if await cdp.evaluate("location.href + ' ' + document.readyState") == "about:blank complete":
            return
        await asyncio.sleep(0.02)
    raise RuntimeError("about:blank did not load")


async def check_page(cdp: CDP, root: Path, name: str, width: int,
                     shots: Path | None = None) -> tuple[list[str], str]:
    cdp.stage = "opening about:blank"
    await blank(cdp)
    cdp.events.clear()
    cdp.stage = "navigating"
    search = name == "search.html"
    url = (root / name).resolve().as_uri() + (f"?q={SEARCH_QUERY}" if search else "")
    nav = await cdp.call("Page.navigate", url=url)
    if nav.get("errorText"):
        return [f"navigation failed: {nav['errorText']}"], ""
    cdp.stage = "waiting for the page, MathJax and images"
    state = await cdp.evaluate(WAIT_JS % {"grace": 3000}, await_promise=True)
    search_failures = []
    if search:  # the results (and their snippets, checked for raw TeX below) come later
        cdp.stage = "waiting for search results"
        for _ in range(200):
            found = await cdp.evaluate(
                "document.querySelectorAll('#search-results li p.context').length")
            if found:
                break
            await asyncio.sleep(0.05)
        else:
            search_failures.append(f"searching for {SEARCH_QUERY!r} shows no result snippets")
    await asyncio.sleep(0.2)  # late console errors
    cdp.stage = "running the page checks"
    page = await cdp.evaluate(PAGE_JS)
    failures = list(search_failures)
    if state != "typeset" and state != "no-mathjax":
        failures.append(f"MathJax: {state}")
    if page["math_nodes"] and state != "typeset":
        failures.append(f"{page['math_nodes']} math nodes but MathJax did not typeset ({state})")
    if page["untypeset_count"]:
        failures.append(f"{page['untypeset_count']} math nodes not typeset, e.g. {page['untypeset_math']}")
    if page["raw_tex_count"]:
        failures.append(f"{page['raw_tex_count']} raw TeX delimiters in the text, e.g. {page['raw_tex']}")
    failures += [f"MathJax error: {e}" for e in page["math_errors"]]
    failures += [f"image did not load: {src}" for src in page["broken_images"]]
    failures += [f"bad link: {b}" for b in page["bad_links"]]
    for url in page["local_links"]:
        path = Path(unquote(urlparse(url).path))
        if not path.exists():
            failures.append(f"link to a missing file: {path}")
    failures += layout_failures(page, width)
    if shots is not None:
        cdp.stage = "taking screenshots"
        await screenshot(cdp, shots, name, width)
    cdp.stage = "clicking the solutions"
    failures += await check_solutions(cdp, page["solutions"])
    cdp.stage = "clicking the hidden code cells"
    failures += await check_hidden_code(cdp, page["hidden_code"])
    if page["article"]:  # last: the dialogs move the sidebars' nodes around
        cdp.stage = "clicking the sidebar toggles"
        failures += await check_toggles(cdp, width)
    await asyncio.sleep(0.1)
    failures += event_errors(cdp.events)
    summary = (f"{page['math_nodes']} math, {len(page['figures'])} figures, "
               f"{page['solutions']} solutions, {page['hidden_code']} hidden code cells, "
               f"{len(page['local_links'])} local links")
    if page["page_width"] > width:
        # Something does not wrap or scroll in its own box: on a phone the whole page zooms out.
        failures.append(f"the page is {page['page_width']} px wide on a {width} px screen")
    return failures, summary


def _own_group() -> None:
    """In the child, before exec: its own process group (stopped as a whole), and on Linux
    killed by the kernel should this checker die without cleaning up (e.g. SIGKILL)."""
    os.setsid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def start_chromium(binary: str, profile: Path) -> tuple[subprocess.Popen, int]:
    log = open(profile.parent / "chromium.log", "wb")
    proc = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
         "about:blank"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_own_group)
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if port_file.is_file():
            lines = port_file.read_text().split()
            if lines and lines[0].isdigit():
                return proc, int(lines[0])
        time.sleep(0.05)
    stop_chromium(proc)
    tail = (profile.parent / "chromium.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"chromium did not open its DevTools port (exit {proc.poll()}):\n{tail}")


def stop_chromium(proc: subprocess.Popen) -> None:
    """Terminate Chromium and its helper processes (its own process group, started above)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    try:  # helpers (renderers, zygote) that outlived the browser process
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


async def page_target(port: int) -> str:
    from tornado.httpclient import AsyncHTTPClient

    client = AsyncHTTPClient()
    for _ in range(100):
        try:
            resp = await client.fetch(f"http://127.0.0.1:{port}/json/list", request_timeout=5)
            pages = [t for t in json.loads(resp.body) if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("chromium lists no page target")


async def connect(port: int, width: int) -> CDP:
    """A DevTools session on the page target, emulating a screen `width` px wide, offline."""
    from tornado.websocket import websocket_connect

    ws = await websocket_connect(await page_target(port), max_message_size=256 * 1024 * 1024)
    cdp = CDP(ws)
    for domain in ("Runtime", "Log", "Page", "Network"):
        await cdp.call(f"{domain}.enable")
    await cdp.call("Network.setBlockedURLs", urls=BLOCKED)
    # Below 600 px: a phone (mobile viewport, pages wider than the screen are zoomed out).
    await cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=900,
                   deviceScaleFactor=1, mobile=width < 600)
    await blank(cdp)
    return cdp


def close(cdp: CDP) -> None:
    cdp.reader.cancel()
    cdp.ws.close()


async def run(root: Path, pages: list[str], widths: list[int], port: int,
              page_timeout: float, shots: Path | None = None) -> int:
    failed = 0
    rendered = []
    for name in pages:
        target = REDIRECT.search((root / name).read_text(encoding="utf-8", errors="replace")[:2000])
        if not target:
            rendered.append(name)
            continue
        # index.html: a redirect, nothing to render; its target must exist.
        ok = ((root / name).parent / target.group(1).split("#")[0]).is_file()
        print(f"{'ok  ' if ok else 'FAIL'} {name}: redirect to {target.group(1)}"
              + ("" if ok else " (missing)"), flush=True)
        failed += not ok
    # One width at a time: changing the emulated screen between pages can stall navigation.
    for width in widths:
        cdp = await connect(port, width)
        for name in rendered:
            t0 = time.monotonic()
            try:
                failures, summary = await asyncio.wait_for(check_page(cdp, root, name, width, shots),
                                                           page_timeout)
            except (asyncio.TimeoutError, RuntimeError, ConnectionError) as exc:
                failures = [f"timed out after {page_timeout:.0f} s ({cdp.stage})"
                            if isinstance(exc, asyncio.TimeoutError) else f"{cdp.stage}: {exc}"]
                summary = ""
                # The session may still deliver stale replies: continue on a fresh one.
                close(cdp)
                cdp = await connect(port, width)
            status = "FAIL" if failures else "ok  "
            print(f"{status} {name} @ {width}px ({time.monotonic() - t0:.1f} s): {summary}", flush=True)
            for failure in failures:
                print(f"     - {failure}", flush=True)
            failed += bool(failures)
        close(cdp)
    return failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html", type=Path, help="the built HTML folder (e.g. _build/html)")
    ap.add_argument("pages", nargs="*", help="pages relative to it (default: every page)")
    ap.add_argument("--widths", default="1280,400", help="viewport widths in px (default 1280,400)")
    ap.add_argument("--page-timeout", type=float, default=45.0, help="seconds per page and width")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds for the whole run")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM") or shutil.which("chromium")
                    or shutil.which("chromium-browser"), help="the Chromium binary")
    ap.add_argument("--screenshots", type=Path, default=None,
                    help="save every page at every width as JPEG here (a folder to look at)")
    args = ap.parse_intermixed_args(argv)
    if args.screenshots is not None:
        args.screenshots.mkdir(parents=True, exist_ok=True)

    root = args.html.resolve()
    if not root.is_dir():
        print(f"check_book_pages: {root} is not a folder", file=sys.stderr)
        return 2
    if not args.chromium:
        print("check_book_pages: chromium not found (install Debian's chromium, "
              "scripts/install_browser.sh, or pass --chromium)", file=sys.stderr)
        return 2
    pages = args.pages or book_pages(root)
    missing = [p for p in pages if not (root / p).is_file()]
    if not pages or missing:
        print(f"check_book_pages: no such pages in {root}: {missing or 'none at all'}", file=sys.stderr)
        return 2
    widths = [int(w) for w in args.widths.split(",")]

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="check_book_pages-") as tmp:
        profile = Path(tmp) / "profile"
        profile.mkdir()
        proc = None
        try:
            proc, port = start_chromium(args.chromium, profile)
            failed = asyncio.run(asyncio.wait_for(
                run(root, pages, widths, port, args.page_timeout, args.screenshots), args.timeout))
        except asyncio.TimeoutError:
            print(f"FAIL overall timeout of {args.timeout:.0f} s reached", flush=True)
            return 1
        except RuntimeError as exc:
            print(f"check_book_pages: {exc}", file=sys.stderr)
            return 2
        finally:
            if proc is not None:
                stop_chromium(proc)
    n = len(pages)
    print(f"check_book_pages: {n} pages x {len(widths)} widths, "
          f"{'all passed' if not failed else f'{failed} failed'} in {time.monotonic() - t0:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
