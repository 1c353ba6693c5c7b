"""The embeddable find-my-planner page (``GET /embed/find``): a full-height map (phones first: it works at
360 px) where a resident taps the map, uses the browser's location or types coordinates; the page asks
``/lookup``, shows the planner card, lets the resident leave a message (``POST /feedback``) and tells the
parent window (``{type: "zeren:planner", ...}``). The runtime is ``static/zeren-embed.js``; this module only
builds the folium page (basemap, offline assets, clicks converted to WGS84 on GCJ-02 tiles) and hands the
runtime its configuration as script-safe JSON. Every text from data is written with textContent."""
from __future__ import annotations

from typing import Any, Sequence

from branca.element import Element

from zeren.geo.kinds import DISCIPLINE_LABELS
from zeren.maps.builders import new_map
from zeren.maps.display import script_json
from zeren.maps.elements import ZerenLayer
from zeren.maps.settings import MapSettings

__all__ = ["find_page", "EMBED_JS", "EMBED_CSS"]

EMBED_JS = "zeren-embed.js"
EMBED_CSS = "zeren-embed.css"

_BODY = """
<div id="zeren-find" class="zf" lang="zh-CN">
  <form id="zf-search" class="zf-bar" autocomplete="off">
    <button type="button" id="zf-locate" class="zf-btn" title="使用我的位置 / use my location">
      定位<span class="zf-en"> / locate</span></button>
    <input id="zf-coords" class="zf-input" inputmode="decimal" aria-label="坐标 经度,纬度 / coordinates lon,lat"
      placeholder="经度,纬度 / lon,lat">
    <select id="zf-crs" class="zf-select" aria-label="坐标系 / coordinate system">
      <option value="wgs84">WGS84</option><option value="gcj02" title="高德/腾讯 AMap/Tencent">GCJ-02</option>
      <option value="bd09" title="百度 Baidu">BD-09</option><option value="cgcs2000">CGCS2000</option>
    </select>
    <button type="submit" id="zf-go" class="zf-btn zf-primary">查询<span class="zf-en"> / find</span></button>
  </form>
  <section id="zf-card" class="zf-card" aria-live="polite">
    <p id="zf-hint" class="zf-hint">点击地图、使用定位或输入坐标，查找这里的责任规划师。<br>
      <span class="zf-en">Tap the map, use your location or type coordinates to find the responsible planner
      here.</span></p>
    <div id="zf-result" hidden>
      <p class="zf-where" id="zf-zone"></p>
      <h2 id="zf-name" class="zf-name"></h2>
      <dl class="zf-facts">
        <dt>单位 / Organisation</dt><dd id="zf-org"></dd>
        <dt>团队 / Team</dt><dd id="zf-team"></dd>
        <dt>专业 / Disciplines</dt><dd id="zf-disciplines"></dd>
        <dt>联系方式 / Contact</dt><dd id="zf-contact"></dd>
        <dt>为何是此人 / Why</dt><dd id="zf-why"></dd>
      </dl>
      <div id="zf-consult-box" hidden><h3 class="zf-h3">需征询 / Also consulted</h3><ul id="zf-consult"></ul></div>
      <p id="zf-nearest" class="zf-note" hidden></p>
      <button type="button" id="zf-message" class="zf-btn zf-primary zf-wide">留言<span class="zf-en"> /
        leave a message</span></button>
    </div>
    <form id="zf-form" class="zf-form" hidden>
      <label for="zf-category">类别 / Category</label>
      <select id="zf-category" class="zf-select" required></select>
      <label for="zf-text">留言 / Message <span id="zf-count" class="zf-en">0/2000</span></label>
      <textarea id="zf-text" class="zf-input" rows="4" maxlength="2000" required></textarea>
      <label for="zf-contact-in">联系方式（选填，不公开）/ Contact (optional, kept private)</label>
      <input id="zf-contact-in" class="zf-input" maxlength="200">
      <div class="zf-row"><button type="submit" id="zf-send" class="zf-btn zf-primary">提交<span class="zf-en"> /
        send</span></button><button type="button" id="zf-cancel" class="zf-btn">取消<span class="zf-en"> /
        cancel</span></button></div>
    </form>
    <p id="zf-receipt" class="zf-receipt" hidden></p>
    <p id="zf-error" class="zf-error" role="alert" hidden></p>
  </section>
</div>
"""


def find_page(settings: MapSettings, bounds: Sequence[float] | None, *, outline_urls: Sequence[str] = (),
              api_base: str = "", start: tuple[float, float] | None = None, title: str | None = None) -> Any:
    """The page. ``bounds``: the city (lon/lat) the map opens on; ``outline_urls``: GeoJSON layers of zone
    outlines to draw (loaded by URL, shifted to GCJ-02 on GCJ-02 tiles); ``start``: a WGS84 point to look up
    as soon as the page opens."""
    m = new_map(settings, bounds, title or "找到我的责任规划师 / Find my planner")
    prefix = settings.asset_url_prefix
    m.default_js = list(m.default_js) + [(EMBED_JS, prefix + EMBED_JS)]
    m.default_css = list(m.default_css) + [(EMBED_CSS, prefix + EMBED_CSS)]
    for i, url in enumerate(outline_urls):
        spec = {"id": f"find-outline-{i}", "url": url, "columns": {}, "count": 0, "key": "code",
                "gcj02": settings.gcj02, "interactive": False,
                "style": {"fill": False, "color": "#0077BB" if i else "#444444", "weight": 1 if i else 2,
                          "opacity": 0.8}}
        ZerenLayer(spec, f"outline {i}", control=False).add_to(m)
    config = {"api": api_base.rstrip("/"), "gcj02": settings.gcj02, "start": list(start) if start else None,
              "disciplines": {k: f"{zh} / {en}" for k, (zh, en) in DISCIPLINE_LABELS.items()}}
    root = m.get_root()
    root.html.add_child(Element(_BODY), name="zeren_find_body")
    root.html.add_child(Element('<script type="application/json" id="zeren-embed-config">'
                                + script_json(config) + "</script>"), name="zeren_find_config")
    return m
