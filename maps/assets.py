"""The JS/CSS a map page needs, served by Zeren itself: no CDN is ever referenced.

URL names (relative to ``MapSettings.asset_url_prefix``, default ``/static/maps/``)::

    leaflet/leaflet.js, leaflet/leaflet.css, leaflet/images/*.png   from the pinned xstatic-leaflet package
    zeren-maps.js, zeren-maps.css                                   maps/static/ (Zeren's own)
    leaflet.vectorgrid.bundled.min.js                               maps/static/ (vendored from npm
                                                                    leaflet.vectorgrid 1.3.0, see its
                                                                    PROVENANCE.md and LICENSE.txt there)

Pages with a vector-tile layer (:func:`use_vector_tiles`) load the plugin too, between Leaflet and Zeren's JS.

The API serves the folders of :func:`asset_roots` at the prefix, straight from the installed packages.
:func:`write_standalone` writes a page that opens from disk with no server (assets inlined, or copied
next to the file).
"""
from __future__ import annotations

import base64
import os
import re
import shutil
import urllib.parse
from importlib.resources import files as _package_files
from pathlib import Path

import folium

__all__ = ["PAGE_JS", "PAGE_CSS", "TILES_JS", "asset_files", "use_vector_tiles", "asset_roots", "copy_assets",
           "use_offline_assets", "write_standalone",
           "page_asset_urls"]

# Found through the installed package (a wheel, an editable checkout), never relative to the repository.
STATIC_DIR = Path(str(_package_files("zeren.maps").joinpath("static")))

# What every page references, in order.
PAGE_JS: tuple[str, ...] = ("leaflet/leaflet.js", "zeren-maps.js")
PAGE_CSS: tuple[str, ...] = ("leaflet/leaflet.css", "zeren-maps.css")
# The vector-tile plugin, loaded only by pages that draw a layer from tiles.
TILES_JS = "leaflet.vectorgrid.bundled.min.js"


def _page_js(m: folium.Map) -> tuple[str, ...]:
    if getattr(m, "_zeren_vector_tiles", False):
        return PAGE_JS[:1] + (TILES_JS,) + PAGE_JS[1:]
    return PAGE_JS


def use_vector_tiles(m: folium.Map) -> folium.Map:
    """Make ``m`` load the vendored vector-tile plugin (Leaflet.VectorGrid) before Zeren's runtime."""
    m._zeren_vector_tiles = True
    use_offline_assets(m, getattr(m, "_zeren_asset_prefix", None) or "/static/maps/")
    return m

_LEAFLET_FILES = ("leaflet.js", "leaflet.css", "images/layers.png", "images/layers-2x.png",
                  "images/marker-icon.png", "images/marker-icon-2x.png", "images/marker-shadow.png")


def _leaflet_dir() -> Path:
    try:
        import xstatic.pkg.leaflet as xs_leaflet
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise RuntimeError("xstatic-leaflet is missing: pip install xstatic-leaflet==1.9.3.0") from exc
    return Path(xs_leaflet.BASE_DIR)


def asset_files() -> dict[str, Path]:
    """URL name (under the asset prefix) -> file on disk, for every asset a page may load."""
    leaflet = _leaflet_dir()
    files = {f"leaflet/{name}": leaflet / name for name in _LEAFLET_FILES}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file() and path.suffix in (".js", ".css", ".png", ".svg"):
            files[path.name] = path
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise RuntimeError(f"map assets missing: {', '.join(missing)}")
    return files


def asset_roots() -> dict[str, Path]:
    """URL subfolder (under the asset prefix) -> installed folder to serve it from: Leaflet from the pinned
    xstatic-leaflet package, Zeren's own files from this package. Served in place: nothing is copied to a
    shared folder another user could write to. Mount the longest subfolder first."""
    return {"leaflet": _leaflet_dir(), "": STATIC_DIR}


def copy_assets(dest: str | os.PathLike) -> Path:
    """Copy every asset, laid out by URL name, into ``dest`` (a folder of the caller's, e.g. beside a page)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    _copy_assets(asset_files(), dest)
    return dest


def _copy_assets(files: dict[str, Path], dest: Path) -> None:
    for name, path in files.items():
        out = dest / name
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out)


def use_offline_assets(m: folium.Map, prefix: str = "/static/maps/") -> folium.Map:
    """Make ``m`` reference only Leaflet and Zeren's assets under ``prefix`` (no jQuery, Bootstrap,
    Font Awesome or awesome-markers: the pages need none of them)."""
    if not prefix.endswith("/"):
        prefix += "/"
    m.default_js = [(name, prefix + name) for name in _page_js(m)]
    m.default_css = [(name, prefix + name) for name in PAGE_CSS]
    m._zeren_asset_prefix = prefix
    return m


_TAG_RE = re.compile(r"""<script\b[^>]*\bsrc\s*=\s*["']([^"']+)["']|<link\b[^>]*\bhref\s*=\s*["']([^"']+)["']""",
                     re.IGNORECASE)


def page_asset_urls(html: str) -> list[str]:
    """Every ``<script src>`` and ``<link href>`` URL in a page."""
    return [a or b for a, b in _TAG_RE.findall(html)]


def _render(m: folium.Map, prefix: str) -> str:
    old = (m.default_js, m.default_css, getattr(m, "_zeren_asset_prefix", None))
    use_offline_assets(m, prefix)
    try:
        # header links are keyed by name, so the next render puts the usual ones back
        return m.get_root().render()
    finally:
        m.default_js, m.default_css, m._zeren_asset_prefix = old


def _inline_css(text: str, base: str, files: dict[str, Path]) -> str:
    def repl(match: re.Match) -> str:
        ref = match.group(2)
        name = os.path.normpath(os.path.join(os.path.dirname(base), ref)).replace(os.sep, "/")
        path = files.get(name)
        if path is None or ref.startswith("data:"):
            return match.group(0)
        mime = "image/png" if path.suffix == ".png" else "image/svg+xml"
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f"url({match.group(1)}data:{mime};base64,{data}{match.group(1)})"

    return re.sub(r"""url\((["']?)([^"')]+)\1\)""", repl, text)


def write_standalone(m: folium.Map, path: str | os.PathLike, assets: str = "inline") -> Path:
    """Write ``m`` as an HTML file that opens offline.

    ``assets="inline"`` puts Leaflet and Zeren's JS/CSS inside the page (one self-contained file,
    about 200 kB more); ``"relative"`` copies them to ``<name>_files/`` beside it and links them there.
    Layers loaded by URL (``MapSettings.geojson_url``) still need that URL; build CLI pages without it.
    """
    if assets not in ("inline", "relative"):
        raise ValueError("assets must be 'inline' or 'relative'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    files = asset_files()
    if assets == "relative":
        folder = f"{path.stem}_files"
        _copy_assets(files, path.parent / folder)
        html = _render(m, urllib.parse.quote(folder) + "/")
    else:
        marker = "zeren-inline-asset/"
        html = _render(m, marker)
        for name in _page_js(m):
            code = files[name].read_text(encoding="utf-8")
            code = re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE)
            tag = f'<script src="{marker}{name}"></script>'
            if tag not in html:
                raise RuntimeError(f"could not find the {name} tag to inline")
            html = html.replace(tag, f"<script>\n{code}\n</script>", 1)
        for name in PAGE_CSS:
            css = _inline_css(files[name].read_text(encoding="utf-8"), name, files)
            css = re.sub(r"</(style)", r"<\\/\1", css, flags=re.IGNORECASE)
            tag = f'<link rel="stylesheet" href="{marker}{name}"/>'
            if tag not in html:
                raise RuntimeError(f"could not find the {name} tag to inline")
            html = html.replace(tag, f"<style>\n{css}\n</style>", 1)
        if marker in html:
            raise RuntimeError("an asset reference was left in the standalone page")
    path.write_text(html, encoding="utf-8")
    return path
