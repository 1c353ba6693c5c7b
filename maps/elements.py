"""Folium elements that hand their data to the page runtime (maps/static/zeren-maps.js).

Data goes into the page only as script-safe JSON (:func:`maps.display.script_json`); the runtime
writes every data text with ``textContent``, so names like ``<img src=x onerror=...>`` stay text.
"""
from __future__ import annotations

import itertools

import folium
from branca.element import MacroElement
from folium.map import Layer
from jinja2 import Template

from zeren.maps.display import script_json

__all__ = ["ZerenLayer", "Legend", "PageSetup", "add_layer"]

_ids = itertools.count(1)


class ZerenLayer(Layer):
    """A GeoJSON layer drawn by ``Zeren.layer``: inline packed polygons, plain GeoJSON, or a URL.

    ``spec`` keys: ``id``, ``style`` (Leaflet path options), ``styleKey`` (a property holding per-feature
    style overrides), ``tooltip``/``popup`` (``[[label, property], ...]``, dotted paths allowed),
    ``packed`` + ``columns`` | ``geojson`` | ``url`` + ``columns`` + ``count`` + ``key`` (+ ``gcj02``),
    ``interactive``, ``radiusM`` (points drawn as circles of that radius), ``legend`` (shown with the layer).
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = Zeren.layer({{ this._parent.get_name() }}, {{ this.spec_json }});
        {% endmacro %}
        """
    )

    def __init__(self, spec: dict, name: str, *, show: bool = True, control: bool = True):
        super().__init__(name=name, overlay=True, control=control, show=show)
        self._name = "ZerenLayer"
        self.spec = dict(spec)
        self.spec.setdefault("id", f"layer{next(_ids)}")

    @property
    def spec_json(self) -> str:
        return script_json(self.spec)


class Legend(MacroElement):
    """A legend control: ``{"title", "lines": [...], "items": [{"label", "fill"|"hatch"|"gradient",
    "stroke", "dash", "weight", "circle", "line"}], "notes": [...], "position"}``."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = Zeren.legend({{ this._parent.get_name() }}, {{ this.spec_json }});
        {% endmacro %}
        """
    )

    def __init__(self, spec: dict):
        super().__init__()
        self._name = "ZerenLegend"
        self.spec = spec

    @property
    def spec_json(self) -> str:
        return script_json(self.spec)


class PageSetup(MacroElement):
    """Attribution, approval number (审图号) and WGS84 clicks (``zeren:click`` events)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        Zeren.init({{ this._parent.get_name() }}, {{ this.spec_json }});
        {% endmacro %}
        """
    )

    def __init__(self, spec: dict):
        super().__init__()
        self._name = "ZerenPageSetup"
        self.spec = spec

    @property
    def spec_json(self) -> str:
        return script_json(self.spec)


def add_layer(m: folium.Map, layer) -> folium.Map:
    """Add ``layer`` to a built map so that it also appears in the map's layer control (which must
    stay the last child: its script names every layer)."""
    layer.add_to(m)
    controls = [(k, v) for k, v in m._children.items() if isinstance(v, folium.LayerControl)]
    for key, ctl in controls:
        m._children.pop(key)
        m._children[key] = ctl
    return m
