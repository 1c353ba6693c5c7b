"""How maps are drawn and served: basemap, attribution, approval number, where the assets live."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

BASEMAPS: tuple[str, ...] = ("none", "osm", "tianditu", "amap", "tencent", "custom")

# Tile sources whose tiles are drawn in GCJ-02 ("Mars coordinates"): overlays must be shifted to match.
GCJ02_BASEMAPS: frozenset[str] = frozenset({"amap", "tencent"})


@dataclass(frozen=True)
class MapSettings:
    """Settings shared by every map builder.

    basemap
        ``"none"`` (default: works offline, no tile requests), ``"osm"``, ``"tianditu"`` (needs
        ``tianditu_key``; CGCS2000 = WGS84 at map scale, so nothing is shifted), ``"amap"`` or
        ``"tencent"`` (GCJ-02 tiles: every overlay is shifted to GCJ-02 before drawing, and clicks are
        shifted back to WGS84 in the page), or ``"custom"`` (``tile_url``, e.g. an intranet tile server;
        ``tile_gcj02`` says whether its tiles are in GCJ-02).
    attribution
        Text shown in the map's attribution corner (plain text, escaped), besides the basemap's own.
    approval_number
        The map approval number (审图号, e.g. ``"GS(2024)1234号"``) shown on every page when set.
    asset_url_prefix
        URL under which the page finds Leaflet and Zeren's JS/CSS (see :mod:`maps.assets`).
    max_inline_features
        A layer with more features than this is loaded by URL (``geojson_url``) when one is set.
    geojson_url
        URL template for large zone layers, ``{kind}`` replaced by the zone kind (e.g.
        ``"/api/zones.geojson?kind={kind}"``); it must answer a GeoJSON FeatureCollection in WGS84 whose
        features carry ``properties.code`` (see :func:`maps.display.zones_geojson`).
    zone_tiles_url
        URL template of the zones' vector tiles (Mapbox Vector Tile 2.1; ``{kind}`` replaced by the zone kind,
        ``{z}/{x}/{y}`` left for the page), e.g. ``"/tiles/{kind}/{z}/{x}/{y}.mvt?as_of=2025-06-30"``: one layer
        named by the kind, features with ``code``, ``name``, ``lead_planner_id`` (absent when none) and
        ``has_lead``. When set, the coverage, gap and planner pages draw a zone layer over
        ``max_inline_features`` from these tiles (taking precedence over ``geojson_url``); popups fetch the
        zone's planners from ``zone_details_url``.
    zone_details_url
        URL template of one zone's planners as JSON (``{kind}`` and ``{code}`` replaced; answers ``{"lead":
        {"name", "organization", "public_contact"} | null}``), fetched when a tiled zone is clicked. Default
        the API's ``/zones/{kind}/{code}/planners``; the page adds nothing to it but the code.
    max_inline_bytes
        Budget for one inlined zone layer. A layer over ``max_inline_features`` that must be inlined
        (no ``geojson_url``, e.g. a standalone CLI page) is simplified harder, and its coordinates
        rounded to 5 decimals, until it fits.
    simplify_tolerance_m
        Display simplification tolerance in metres (0 disables it).
    precision
        Decimal places kept in lon/lat (6 ≈ 0.1 m, 5 ≈ 1 m).
    reference
        Without a basemap (``"none"``), boundaries drawn as a light reference map under everything else, so a
        page without tiles still orients its reader: a GeoDataFrame in EPSG:4326 with ``name`` (labels) and
        geometry, e.g. the districts of the store (:func:`maps.reference.reference_frame`). Ignored when a
        basemap is set.
    """

    basemap: str = "none"
    tianditu_key: str | None = None
    tile_url: str | None = None
    tile_gcj02: bool = False
    attribution: str | None = None
    approval_number: str | None = None
    asset_url_prefix: str = "/static/maps/"
    max_inline_features: int = 5000
    geojson_url: str | None = None
    zone_tiles_url: str | None = None
    zone_details_url: str = "/zones/{kind}/{code}/planners"
    max_inline_bytes: int = 4_000_000
    simplify_tolerance_m: float = 5.0
    precision: int = 6
    reference: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.basemap not in BASEMAPS:
            raise ValueError(f"basemap must be one of {', '.join(BASEMAPS)}; got {self.basemap!r}")
        if self.basemap == "tianditu" and not self.tianditu_key:
            raise ValueError("basemap 'tianditu' needs tianditu_key (a Tianditu browser key)")
        if self.basemap == "custom" and not self.tile_url:
            raise ValueError("basemap 'custom' needs tile_url, e.g. 'https://tiles.example/{z}/{x}/{y}.png'")
        if not self.asset_url_prefix:
            raise ValueError("asset_url_prefix must not be empty")
        if not self.asset_url_prefix.endswith("/"):
            object.__setattr__(self, "asset_url_prefix", self.asset_url_prefix + "/")
        if self.max_inline_features < 1:
            raise ValueError("max_inline_features must be at least 1")
        if self.simplify_tolerance_m < 0:
            raise ValueError("simplify_tolerance_m must not be negative")
        if not 0 <= int(self.precision) <= 9:
            raise ValueError("precision must be between 0 and 9 decimal places")

    @property
    def gcj02(self) -> bool:
        """Whether overlays must be shifted to GCJ-02 to sit on the basemap's tiles."""
        return self.basemap in GCJ02_BASEMAPS or (self.basemap == "custom" and self.tile_gcj02)

    def replace(self, **changes) -> "MapSettings":
        return dataclasses.replace(self, **changes)
