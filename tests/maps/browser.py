"""Headless-Chromium checks of a map page (playwright driving the system's Chromium; no browser
download): console errors, every network request, Leaflet polygon count, a tooltip's text, a screenshot.

    with serve_directory(root) as base:
        report = inspect_page(base + "/coverage.html", chromium_path, hover_lonlat=(104.06, 30.66),
                              screenshot=ARTIFACTS / "coverage.png")

The lead can point :func:`inspect_page` at the real API server's page URL too.
"""
from __future__ import annotations

import contextlib
import os
import functools
import http.server
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest


def require_playwright() -> None:
    """Skip the calling test module when playwright is missing, or fail when CI requires browser tests."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the test extras
        if os.environ.get("ZEREN_REQUIRE_BROWSER", "").strip().lower() in {"1", "true", "yes", "on"}:
            raise  # CI requires the browser tests: a missing playwright must fail, not skip
        pytest.skip("browser tests drive Chromium with the playwright package (pip install playwright; "
                    "no `playwright install`: the system Chromium is used)", allow_module_level=True)

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


@dataclass
class PageReport:
    url: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    polygon_count: int = 0
    layer_counts: dict[str, int] = field(default_factory=dict)
    tooltip_text: str | None = None
    popup_text: str | None = None
    legend_text: str | None = None
    last_click: dict | None = None
    dialogs: list[str] = field(default_factory=list)
    texts: dict[str, str | None] = field(default_factory=dict)
    screenshot: Path | None = None

    def outside_requests(self) -> list[str]:
        """Requests that left the machine (anything but 127.0.0.1/localhost, data: and about:)."""
        out = []
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in ("data", "about", "blob"):
                continue
            if parts.hostname not in LOCAL_HOSTS:
                out.append(url)
        return out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def serve_directory(root: str | Path):
    """Serve ``root`` over HTTP on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


COUNT_JS = """() => {
  const counts = {};
  document.querySelectorAll('path[data-zeren-layer]').forEach(p => {
    const k = p.getAttribute('data-zeren-layer'); counts[k] = (counts[k] || 0) + 1; });
  return {polygons: document.querySelectorAll('path.leaflet-interactive').length, layers: counts};
}"""

POINT_JS = """([lon, lat]) => {
  const map = Zeren.maps[0];
  const p = map.latLngToContainerPoint([lat, lon]);
  const r = map.getContainer().getBoundingClientRect();
  return [r.left + p.x, r.top + p.y];
}"""


def inspect_page(url: str, chromium_path: str, *, hover_lonlat: tuple[float, float] | None = None,
                 hover_zoom: int | None = None, click: bool = True, screenshot: str | Path | None = None, read: tuple[str, ...] = (),
                 viewport: tuple[int, int] = (1280, 860), timeout_ms: int = 30_000) -> PageReport:
    """Open ``url`` headless and report what happened.

    ``hover_zoom``: zoom to this level around the point first (small zones).
    ``read``: CSS selectors whose text is reported in ``texts``. ``hover_lonlat`` is a point (in the page's display coordinates: GCJ-02 on AMap/Tencent pages) inside a
    known zone: the mouse hovers there (the tooltip's text is read), then clicks (the popup's text, if
    any, and the WGS84 click of ``Zeren.init`` are read).
    """
    from playwright.sync_api import sync_playwright

    report = PageReport(url=url)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.on("request", lambda req: report.requests.append(req.url))
            page.on("requestfailed", lambda req: report.failed_requests.append(req.url))
            page.on("console", lambda msg: report.console_errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: report.page_errors.append(str(exc)))
            page.on("dialog", lambda dialog: (report.dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(url, wait_until="load", timeout=timeout_ms)
            page.wait_for_function("() => window.Zeren && Zeren.maps.length > 0", timeout=timeout_ms)
            # layers loaded by URL finish after load
            page.wait_for_function(
                """() => Object.values(Zeren.layers).every(l => !l.zerenLoading || l.getLayers().length > 0)""",
                timeout=timeout_ms)
            page.wait_for_timeout(300)
            counts = page.evaluate(COUNT_JS)
            report.polygon_count = int(counts["polygons"])
            report.layer_counts = {k: int(v) for k, v in counts["layers"].items()}
            legend = page.query_selector(".zeren-legend")
            report.legend_text = legend.inner_text() if legend else None
            for selector in read:
                found = page.query_selector(selector)
                report.texts[selector] = found.inner_text() if found else None
            if hover_lonlat is not None:
                if hover_zoom is not None:
                    page.evaluate("([lon, lat, z]) => { Zeren.maps[0].setView([lat, lon], z, {animate: false}); }",
                                  [hover_lonlat[0], hover_lonlat[1], hover_zoom])
                    page.wait_for_timeout(300)
                x, y = page.evaluate(POINT_JS, list(hover_lonlat))
                page.mouse.move(x - 3, y - 3)
                page.mouse.move(x, y)
                try:
                    page.wait_for_selector(".leaflet-tooltip", timeout=5000)
                    report.tooltip_text = page.inner_text(".leaflet-tooltip")
                except Exception:  # noqa: BLE001 - no tooltip is a finding, not a crash
                    report.tooltip_text = None
                if click:
                    page.mouse.click(x, y)
                    page.wait_for_timeout(300)
                    popup = page.query_selector(".leaflet-popup-content")
                    report.popup_text = popup.inner_text() if popup else None
                    report.last_click = page.evaluate("() => Zeren.maps[0].zerenLastClick || null")
                    # the popup may cover the map in the screenshot: close it, hover again for the tooltip
                    page.evaluate("() => { Zeren.maps[0].closePopup(); }")
                    page.mouse.move(x, y + 1)
                    page.wait_for_timeout(200)
            if screenshot is not None:
                path = Path(screenshot)
                path.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(path))
                report.screenshot = path
        finally:
            browser.close()
    return report


def evaluate(url: str, chromium_path: str, script: str, arg=None, timeout_ms: int = 30_000):
    """Open ``url`` and return the value of ``script`` (a JS function expression) called with ``arg``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url, wait_until="load", timeout=timeout_ms)
            page.wait_for_function("() => window.Zeren && Zeren.maps.length > 0", timeout=timeout_ms)
            return page.evaluate(script, arg)
        finally:
            browser.close()
