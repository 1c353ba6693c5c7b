"""Zeren's maps: folium pages that work offline (no CDN), for bureau screens, portals and planners.

Public API::

    MapSettings                      maps.settings
    coverage_map, gap_map, site_map, planner_map, life_circle_layer, add_layer
    tiled_layer                      whether a zone layer is drawn from MapSettings.zone_tiles_url
    asset_roots, copy_assets, asset_files, write_standalone, use_offline_assets      maps.assets
    zones_geojson                    what the API serves at MapSettings.geojson_url

maps imports geo only (never layers or api) and computes no coverage itself.
"""
from zeren.maps.assets import asset_files, asset_roots, copy_assets, use_offline_assets, write_standalone
from zeren.maps.builders import (STATUS_LABELS, coverage_map, gap_map, life_circle_layer, life_circle_map, planner_map,
                           site_map, tiled_layer)
from zeren.maps.display import zones_geojson
from zeren.maps.elements import add_layer
from zeren.maps.settings import BASEMAPS, MapSettings

__all__ = [
    "MapSettings", "BASEMAPS", "coverage_map", "gap_map", "site_map", "planner_map", "life_circle_layer",
    "life_circle_map",
    "add_layer", "asset_files", "asset_roots", "copy_assets", "use_offline_assets", "write_standalone", "zones_geojson",
    "STATUS_LABELS", "tiled_layer",
]
