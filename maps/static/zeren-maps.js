/* Zeren maps: the small runtime behind the pages built by Zeren's maps package.
 * Needs Leaflet only. Every text that comes from data is written with textContent, never as HTML.
 * Coordinates of the GCJ-02 functions follow the same published algorithm as geo/crs.py.
 */
(function (global) {
  'use strict';
  var L = global.L;
  var Z = { maps: [], layers: {}, version: '1' };

  // ---- GCJ-02 -----------------------------------------------------------------------------------
  var A = 6378245.0, EE = 0.00669342162296594323, PI = Math.PI;

  function inChina(lon, lat) {
    return lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271;
  }

  function gcjOffset(lon, lat) {
    if (!inChina(lon, lat)) { return [0, 0]; }
    var x = lon - 105.0, y = lat - 35.0;
    var common = (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    var sx = Math.sqrt(Math.abs(x));
    var dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx + common +
      (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0 +
      (160.0 * Math.sin(y / 12.0 * PI) + 320.0 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
    var dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx + common +
      (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0 +
      (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
    var radLat = lat / 180.0 * PI;
    var magic = 1 - EE * Math.sin(radLat) * Math.sin(radLat);
    var sqrtMagic = Math.sqrt(magic);
    dlat = dlat * 180.0 / ((A * (1 - EE)) / (magic * sqrtMagic) * PI);
    dlon = dlon * 180.0 / (A / sqrtMagic * Math.cos(radLat) * PI);
    return [dlon, dlat];
  }

  Z.wgs84ToGcj02 = function (lon, lat) {
    var d = gcjOffset(lon, lat);
    return [lon + d[0], lat + d[1]];
  };

  Z.gcj02ToWgs84 = function (lon, lat) {
    var d = gcjOffset(lon, lat), x = lon - d[0], y = lat - d[1];
    for (var i = 0; i < 10; i++) {
      var f = Z.wgs84ToGcj02(x, y), dx = f[0] - lon, dy = f[1] - lat;
      x -= dx; y -= dy;
      if (Math.abs(dx) < 1e-10 && Math.abs(dy) < 1e-10) { break; }
    }
    return [x, y];
  };

  function shiftCoords(c) {
    if (typeof c[0] === 'number') { return Z.wgs84ToGcj02(c[0], c[1]); }
    return c.map(shiftCoords);
  }

  function shiftGeometry(g) {
    if (!g) { return g; }
    if (g.type === 'GeometryCollection') { g.geometries.forEach(shiftGeometry); return g; }
    g.coordinates = shiftCoords(g.coordinates);
    return g;
  }
  Z.shiftGeometry = shiftGeometry;

  // ---- packed data (see maps/display.py) ----------------------------------------------------------
  Z.decodePolygons = function (pk) {
    var scale = Math.pow(10, pk.p), c = pk.c, r = pk.r, g = pk.g, f = pk.f;
    var x = 0, y = 0, ci = 0, ri = 0, gi = 0, out = new Array(f.length);
    for (var fi = 0; fi < f.length; fi++) {
      var polys = [];
      for (var pi = 0; pi < f[fi]; pi++, gi++) {
        var rings = [];
        for (var k = 0; k < g[gi]; k++, ri++) {
          var n = r[ri], ring = new Array(n + 1);
          for (var j = 0; j < n; j++) {
            x += c[ci++]; y += c[ci++];
            ring[j] = [x / scale, y / scale];
          }
          ring[n] = ring[0];
          rings.push(ring);
        }
        polys.push(rings);
      }
      out[fi] = polys.length === 1 ? { type: 'Polygon', coordinates: polys[0] }
        : { type: 'MultiPolygon', coordinates: polys };
    }
    return out;
  };

  Z.rows = function (cols, n) {
    var rows = new Array(n), i;
    for (i = 0; i < n; i++) { rows[i] = {}; }
    Object.keys(cols || {}).forEach(function (k) {
      var col = cols[k], j;
      if (Array.isArray(col)) {
        for (j = 0; j < n; j++) { rows[j][k] = col[j]; }
      } else if (Object.prototype.hasOwnProperty.call(col, 'v')) {
        for (j = 0; j < n; j++) { rows[j][k] = col.v; }
      } else {
        for (j = 0; j < n; j++) { var ix = col.i[j]; rows[j][k] = ix < 0 ? null : col.d[ix]; }
      }
    });
    return rows;
  };

  function get(props, key) {
    var parts = String(key).split('.'), v = props;
    for (var i = 0; i < parts.length; i++) {
      if (v === null || v === undefined) { return null; }
      v = v[parts[i]];
    }
    return v === undefined ? null : v;
  }
  Z.get = get;

  function text(v) {
    if (v === null || v === undefined || v === '') { return null; }
    if (Array.isArray(v)) { return v.map(String).join(', '); }
    if (typeof v === 'object') { return JSON.stringify(v); }
    return String(v);
  }

  // Data text goes into <bdi> elements (each list item its own): a name holding U+202E (right-to-left
  // override) cannot reverse the text shown after it.
  function bdi(parent, v) {
    (Array.isArray(v) ? v : [v]).forEach(function (item, i) {
      if (i) { parent.appendChild(document.createTextNode(', ')); }
      var b = document.createElement('bdi');
      b.textContent = (item !== null && typeof item === 'object') ? JSON.stringify(item) : String(item);
      parent.appendChild(b);
    });
    return parent;
  }
  Z.bdi = bdi;

  // ---- tooltips and popups: DOM nodes with textContent only ---------------------------------------
  Z.infoNode = function (fields, props) {
    var div = document.createElement('div');
    div.className = 'zeren-info';
    var table = document.createElement('table');
    fields.forEach(function (f) {
      var raw = get(props, f[1]);
      if (text(raw) === null) { return; }
      var tr = table.insertRow();
      var th = document.createElement('th');
      th.textContent = f[0];
      tr.appendChild(th);
      bdi(tr.insertCell(), raw);
    });
    div.appendChild(table);
    return div;
  };

  // ---- hatch patterns (SVG renderer: fillColor 'url(#id)') ---------------------------------------
  var SVGNS = 'http://www.w3.org/2000/svg';
  var PATTERNS = { red: ['#D7191C', 0.16], orange: ['#EE7733', 0.25] };

  Z.pattern = function (name) {
    var id = 'zeren-hatch-' + name;
    if (!document.getElementById(id)) {
      var spec = PATTERNS[name] || ['#D7191C', 0.16];
      var holder = document.getElementById('zeren-patterns');
      if (!holder) {
        holder = document.createElementNS(SVGNS, 'svg');
        holder.setAttribute('id', 'zeren-patterns');
        holder.setAttribute('width', '0');
        holder.setAttribute('height', '0');
        holder.setAttribute('aria-hidden', 'true');
        holder.style.position = 'absolute';
        holder.appendChild(document.createElementNS(SVGNS, 'defs'));
        document.body.appendChild(holder);
      }
      var p = document.createElementNS(SVGNS, 'pattern');
      p.setAttribute('id', id);
      p.setAttribute('patternUnits', 'userSpaceOnUse');
      p.setAttribute('width', '8');
      p.setAttribute('height', '8');
      p.setAttribute('patternTransform', 'rotate(45)');
      var bg = document.createElementNS(SVGNS, 'rect');
      bg.setAttribute('width', '8');
      bg.setAttribute('height', '8');
      bg.setAttribute('fill', spec[0]);
      bg.setAttribute('fill-opacity', String(spec[1]));
      var line = document.createElementNS(SVGNS, 'rect');
      line.setAttribute('width', '3');
      line.setAttribute('height', '8');
      line.setAttribute('fill', spec[0]);
      line.setAttribute('fill-opacity', '0.85');
      p.appendChild(bg);
      p.appendChild(line);
      holder.firstChild.appendChild(p);
    }
    return 'url(#' + id + ')';
  };

  function styler(spec) {
    return function (feature) {
      var p = (feature && feature.properties) || {};
      var s = L.extend({}, spec.style || {});
      if (spec.styleKey && p[spec.styleKey]) { L.extend(s, p[spec.styleKey]); }
      if (typeof s.fillColor === 'string' && s.fillColor.indexOf('hatch:') === 0) {
        s.fillColor = Z.pattern(s.fillColor.slice(6));
      }
      return s;
    };
  }

  // ---- layers -------------------------------------------------------------------------------------
  function featuresFrom(spec) {
    if (spec.packed) {
      var geoms = Z.decodePolygons(spec.packed);
      var rows = Z.rows(spec.columns, geoms.length);
      return geoms.map(function (g, i) { return { type: 'Feature', geometry: g, properties: rows[i] }; });
    }
    if (spec.geojson) { return spec.geojson.features || []; }
    return [];
  }

  // spec.label = [name, name_en]: props.label = "name / name_en" (English only when known and different)
  function addLabel(spec, props) {
    if (!spec.label) { return props; }
    var zh = text(props[spec.label[0]]), en = text(props[spec.label[1]]);
    props.label = zh && en && en !== zh ? zh + ' / ' + en : (zh || en);
    return props;
  }

  function tagElement(layer, spec, props) {
    layer.on('add', function () {
      var el = layer.getElement && layer.getElement();
      if (!el) { return; }
      el.setAttribute('data-zeren-layer', spec.id);
      var code = props && props.code;
      if (code !== null && code !== undefined) { el.setAttribute('data-zeren-code', String(code)); }
    });
  }

  // spec.pane = [name, zIndex]: the layer is drawn in its own pane (a reference layer under the zones: the
  // overlay pane is at 400); spec.labelPane: the pane of its text labels (above the zones)
  Z.pane = function (map, name, zIndex) {
    var pane = map.getPane(name) || map.createPane(name);
    pane.style.zIndex = String(zIndex);
    if (name.indexOf('Labels') >= 0) { pane.style.pointerEvents = 'none'; }
    return name;
  };

  // Text labels (textContent of a div icon: names stay text): every point of a layer with spec.textKey, and
  // the points of spec.labels (a FeatureCollection whose features carry the text in properties._text)
  function isText(spec, feature) {
    var p = (feature && feature.properties) || {};
    return !!spec.textKey || p._text !== undefined;
  }

  function textMarker(spec, feature, latlng, pane) {
    var p = feature.properties || {};
    var el = document.createElement('span');
    el.textContent = text(p._text !== undefined ? p._text : p[spec.textKey]) || '';
    var cls = 'zeren-map-label' + (spec.labelClass ? ' ' + spec.labelClass : '');
    var opts = { icon: L.divIcon({ className: cls, html: el, iconSize: null }),
                 interactive: false, keyboard: false };
    if (pane) { opts.pane = pane; }
    var marker = L.marker(latlng, opts);
    if (p._minzoom !== undefined && p._minzoom !== null) { marker.zerenMinZoom = Number(p._minzoom); }
    return marker;
  }

  // labels with properties._minzoom show only from that zoom on (finer boundaries' names when zoomed in)
  function zoomLabels(map, layer) {
    function update() {
      var z = map.getZoom();
      layer.eachLayer(function (l) {
        if (l.zerenMinZoom !== undefined) { l.setOpacity(z >= l.zerenMinZoom ? 1 : 0); }
      });
    }
    layer.on('add', function () { update(); map.on('zoomend', update); });
    layer.on('remove', function () { map.off('zoomend', update); });
  }

  // ---- zone layers drawn from vector tiles (Leaflet.VectorGrid, vendored) --------------------------
  // Leaflet 1.8 dropped L.DomEvent.fakeStop, which the plugin calls on a clicked feature: stop the click there
  // (the feature's own handlers and the map's have run), so the popup just opened is not closed again.
  function tilePlugin() {
    if (!L.vectorGrid || !L.vectorGrid.protobuf) {
      throw new Error('Zeren: the vector-tile plugin (leaflet.vectorgrid.bundled.min.js) is not loaded');
    }
    if (!L.DomEvent.fakeStop) { L.DomEvent.fakeStop = function (e) { L.DomEvent.stopPropagation(e); }; }
  }

  // hatch fills on a canvas: the same stripes as the SVG pattern of Z.pattern
  var canvasPatterns = {};
  Z.canvasPattern = function (name) {
    if (!canvasPatterns[name]) {
      // 45 degree stripes 3 px wide, 8 px apart (a cell of 8 * sqrt 2 px), wrapping across the cell's corners
      var spec = PATTERNS[name] || PATTERNS.red, c = document.createElement('canvas'), n = 11;
      c.width = n; c.height = n;
      var ctx = c.getContext('2d');
      ctx.globalAlpha = spec[1];
      ctx.fillStyle = spec[0];
      ctx.fillRect(0, 0, n, n);
      ctx.globalAlpha = 0.85;
      ctx.lineWidth = 3;
      ctx.strokeStyle = spec[0];
      ctx.beginPath();
      [-n, 0, n].forEach(function (o) { ctx.moveTo(o, n); ctx.lineTo(o + n, 0); });
      ctx.stroke();
      var pattern = ctx.createPattern(c, 'repeat');
      pattern.zerenHatch = name;
      canvasPatterns[name] = pattern;
    }
    return canvasPatterns[name];
  };

  // the tile's properties as the rows of the inline layers (label, kind_label, status; planner from details)
  function tileProps(spec, p) {
    var t = spec.tiles;
    return { code: p.code, label: text(p.name) || text(p.code), kind_label: t.kindLabel,
             status: p.has_lead ? null : t.noLeadText, planner: null, role: null, _tile: p };
  }

  function tileStyler(spec) {
    var ts = spec.tileStyle || {};
    return function (p) {
      var s = L.extend({ fill: true }, spec.style || {});
      if (ts.byCode) {
        var ix = ts.byCode[p.code];
        if (ix === undefined || ix === null) { return []; }  // not this page's zone: not drawn
        L.extend(s, ts.styles[ix]);
      } else if (p.has_lead) {
        if (ts.colours && ts.colours[p.lead_planner_id]) { s.fillColor = ts.colours[p.lead_planner_id]; }
        if (ts.lead) { L.extend(s, ts.lead); }
      } else if (ts.noLead) {
        L.extend(s, ts.noLead);
      }
      if (typeof s.fillColor === 'string' && s.fillColor.indexOf('hatch:') === 0) {
        s.fillColor = Z.canvasPattern(s.fillColor.slice(6));
      }
      return s;
    };
  }

  Z.tileLayer = function (map, spec) {
    tilePlugin();
    var t = spec.tiles, style = tileStyler(spec), styles = {}, drawn = {}, stats = { features: 0, tiles: 0 };
    styles[t.layer] = function (p, z) {
      var s = style(p, z);
      if (!Array.isArray(s)) {
        stats.features++;
        drawn[p.code] = { has_lead: !!p.has_lead, lead: p.lead_planner_id || null,
                          fill: s.fillColor && s.fillColor.zerenHatch ? 'hatch:' + s.fillColor.zerenHatch : s.fillColor };
      }
      return s;
    };
    var interactive = spec.interactive !== false;
    var options = { rendererFactory: L.canvas.tile, vectorTileLayerStyles: styles, interactive: interactive,
                    maxNativeZoom: 22, fetchOptions: { credentials: 'omit' } };
    // below t.minZoom the zones would be specks in megabyte tiles: none are drawn, a hint says to zoom in, and
    // a page that would open below it opens at it, on the middle of its view
    if (t.minZoom) {
      options.minZoom = t.minZoom;
      if (map.getZoom() < t.minZoom) { map.setView(map.getCenter(), t.minZoom, { animate: false }); }
      var hint = L.control({ position: 'topleft' });
      hint.onAdd = function () {
        var div = L.DomUtil.create('div', 'zeren-notice zeren-zoom-hint leaflet-control');
        div.textContent = '放大查看各单元 / zoom in to see each unit';
        return div;
      };
      var hinted = false;
      var updateHint = function () {
        var below = map.getZoom() < t.minZoom && map.hasLayer(layer);
        if (below && !hinted) { hint.addTo(map); hinted = true; }
        if (!below && hinted) { hint.remove(); hinted = false; }
      };
      map.on('zoomend', updateHint);
    }
    // own pane: over the reference map (350..), under the inline overlays and boundaries (overlay pane, 400)
    options.pane = spec.pane ? Z.pane(map, spec.pane[0], spec.pane[1]) : Z.pane(map, 'zerenZoneTiles', 395);
    var layer = L.vectorGrid.protobuf(t.url, options);
    layer.zerenStats = stats;
    if (t.minZoom) { layer.on('add remove', function () { setTimeout(updateHint, 0); }); }
    layer.zerenDrawn = drawn;
    layer.on('tileload', function () {
      stats.tiles++;
      if (!stats.firstTileMs && stats.features) {
        stats.firstTileMs = global.performance ? global.performance.now() : Date.now();
        layer.fire('zeren:firsttile', { features: stats.features });
      }
    });
    var tip = null;
    if (spec.tooltip && interactive) {
      layer.on('mouseover', function (e) {
        var props = tileProps(spec, (e.layer && e.layer.properties) || {});
        tip = L.tooltip({ className: 'zeren-tooltip', direction: 'top' }).setLatLng(e.latlng)
          .setContent(Z.infoNode(spec.tooltip, props));
        map.openTooltip(tip);
      });
      layer.on('mouseout', function () { if (tip) { map.closeTooltip(tip); tip = null; } });
    }
    layer.on('click', function (e) {
      if (!interactive) { return; }
      if (tip) { map.closeTooltip(tip); tip = null; }
      var p = (e.layer && e.layer.properties) || {}, props = tileProps(spec, p);
      var own = spec.tileStyle && spec.tileStyle.roles;
      if (own && own[p.code]) { props.role = own[p.code]; }
      var popup = L.popup({ maxWidth: 360, className: 'zeren-tile-popup' }).setLatLng(e.latlng);
      function show(note) {
        var node = Z.infoNode(spec.popup || spec.tooltip || [], props);
        if (note) { bdi(L.DomUtil.create('div', 'zeren-popup-note', node), note); }
        popup.setContent(node);
      }
      show(p.has_lead ? '正在查询责任规划师… / looking up the lead planner…' : null);
      popup.openOn(map);
      layer.fire('zeren:popup', { code: p.code });
      if (!p.has_lead || !t.details || p.code === undefined) { return; }
      var url = t.details.replace('{code}', encodeURIComponent(String(p.code)));
      fetch(url, { credentials: 'omit', headers: { Accept: 'application/json' } })
        .then(function (resp) {
          if (!resp.ok) { throw new Error('HTTP ' + resp.status); }
          return resp.json();
        })
        .then(function (body) {
          var lead = body && body.lead;
          props.planner = lead ? { name: lead.name || lead.id, org: lead.organization || null,
                                   contact: lead.public_contact || null } : null;
          show(lead ? null : '无责任规划师 / no lead planner');
          layer.fire('zeren:details', { code: p.code });
        })
        .catch(function (err) {
          show('未能查询责任规划师 / could not look up the planner (' + err.message + ')');
        });
    });
    Z.layers[spec.id] = layer;
    if (spec.legend) {
      var ctl = null;
      layer.on('add', function () { if (!ctl) { ctl = Z.legend(map, spec.legend); } });
      layer.on('remove', function () { if (ctl) { ctl.remove(); ctl = null; } });
    }
    return layer;
  };

  Z.layer = function (map, spec) {
    if (spec.tiles) { return Z.tileLayer(map, spec); }
    var style = styler(spec);
    var pane = spec.pane ? Z.pane(map, spec.pane[0], spec.pane[1]) : null;
    var labelPane = spec.labelPane ? Z.pane(map, spec.labelPane[0], spec.labelPane[1]) : pane;
    var options = {
      style: style,
      interactive: spec.interactive !== false,
      pointToLayer: function (feature, latlng) {
        if (isText(spec, feature)) { return textMarker(spec, feature, latlng, labelPane); }
        var s = style(feature);
        if (pane) { s.pane = pane; }
        if (spec.radiusM) { return L.circle(latlng, L.extend({ radius: spec.radiusM }, s)); }
        return L.circleMarker(latlng, L.extend({ radius: 7 }, s));
      },
      onEachFeature: function (feature, l) {
        if (isText(spec, feature)) { return; }
        var props = addLabel(spec, feature.properties || {});
        if (spec.tooltip && spec.interactive !== false) {
          l.bindTooltip(function () { return Z.infoNode(spec.tooltip, props); },
            { sticky: true, className: 'zeren-tooltip', direction: 'top' });
        }
        if (spec.popup && spec.interactive !== false) {
          l.bindPopup(function () { return Z.infoNode(spec.popup, props); }, { maxWidth: 360 });
        }
        tagElement(l, spec, props);
      }
    };
    if (pane) { options.pane = pane; }
    var layer = L.geoJSON(null, options);
    Z.layers[spec.id] = layer;
    if (spec.legend) {
      var ctl = null;
      layer.on('add', function () { if (!ctl) { ctl = Z.legend(map, spec.legend); } });
      layer.on('remove', function () { if (ctl) { ctl.remove(); ctl = null; } });
    }
    if (spec.url) {
      var rows = spec.columns ? Z.rows(spec.columns, spec.count || 0) : [];
      var byKey = {};
      var key = spec.key || 'code';
      rows.forEach(function (r) { if (r[key] !== null && r[key] !== undefined) { byKey[String(r[key])] = r; } });
      layer.zerenLoading = fetch(spec.url, { credentials: 'same-origin' })
        .then(function (resp) {
          if (!resp.ok) { throw new Error('HTTP ' + resp.status + ' for ' + spec.url); }
          return resp.json();
        })
        .then(function (fc) {
          var feats = (fc && fc.features) || [];
          feats.forEach(function (f) {
            var own = f.properties || {};
            var extra = byKey[String(own[key])];
            f.properties = L.extend({}, own, extra || {});
            if (spec.gcj02) { shiftGeometry(f.geometry); }
          });
          layer.addData({ type: 'FeatureCollection', features: feats });
          layer.fire('zeren:loaded', { count: feats.length });
        })
        .catch(function (err) {
          console.error('Zeren: could not load layer ' + spec.id + ': ' + err);  // eslint-disable-line no-console
        });
    } else {
      layer.addData({ type: 'FeatureCollection', features: featuresFrom(spec) });
    }
    if (spec.labels) { layer.addData(spec.labels); zoomLabels(map, layer); }
    // spec.follows = id of a layer this one is shown and hidden with (one entry in the layer control)
    var lead = spec.follows && Z.layers[spec.follows];
    if (lead) {
      lead.on('add', function () { if (!map.hasLayer(layer)) { layer.addTo(map); } });
      lead.on('remove', function () { if (map.hasLayer(layer)) { map.removeLayer(layer); } });
    }
    return layer;
  };

  // ---- legend -------------------------------------------------------------------------------------
  function swatch(row, item) {
    var sw = L.DomUtil.create('span', 'zeren-swatch', row);
    var st = sw.style;
    if (item.gradient) {
      st.background = 'linear-gradient(to right,' + item.gradient.join(',') + ')';
      sw.className += ' zeren-swatch-wide';
    } else if (item.hatch) {
      st.background = 'repeating-linear-gradient(45deg,' + item.hatch + ' 0 2px, transparent 2px 5px)';
    } else if (item.fill) {
      st.background = item.fill;
    }
    if (item.circle) { sw.className += ' zeren-swatch-circle'; }
    if (item.line) { sw.className += ' zeren-swatch-line'; }
    if (item.stroke) {
      st.borderColor = item.stroke;
      st.borderStyle = item.dash ? 'dashed' : 'solid';
      st.borderWidth = (item.weight || 1) + 'px';
    }
  }

  Z.legend = function (map, spec) {
    var ctl = L.control({ position: spec.position || 'bottomright' });
    ctl.onAdd = function () {
      var div = L.DomUtil.create('div', 'zeren-legend leaflet-control');
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      if (spec.title) { bdi(L.DomUtil.create('div', 'zeren-legend-title', div), spec.title); }
      (spec.lines || []).forEach(function (t) {
        bdi(L.DomUtil.create('div', 'zeren-legend-line', div), t);
      });
      (spec.items || []).forEach(function (item) {
        var row = L.DomUtil.create('div', 'zeren-legend-item', div);
        swatch(row, item);
        bdi(L.DomUtil.create('span', 'zeren-legend-label', row), item.label);
      });
      (spec.notes || []).forEach(function (t) {
        bdi(L.DomUtil.create('div', 'zeren-legend-note', div), t);
      });
      return div;
    };
    ctl.addTo(map);
    return ctl;
  };

  // ---- page set-up: notice (attribution, approval number), clicks back in WGS84 -----------------
  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  Z.toWgs84 = function (map, latlng) {
    if (map.zerenGcj02) {
      var w = Z.gcj02ToWgs84(latlng.lng, latlng.lat);
      return { lon: w[0], lat: w[1] };
    }
    return { lon: latlng.lng, lat: latlng.lat };
  };

  Z.init = function (map, spec) {
    spec = spec || {};
    map.zerenGcj02 = !!spec.gcj02;
    Z.maps.push(map);
    if (spec.attribution && map.attributionControl) {
      map.attributionControl.addAttribution(escapeHtml(spec.attribution));
    }
    if (spec.approval) {
      var ctl = L.control({ position: 'bottomleft' });
      ctl.onAdd = function () {
        var div = L.DomUtil.create('div', 'zeren-notice leaflet-control');
        div.textContent = spec.approval;
        return div;
      };
      ctl.addTo(map);
    }
    map.on('click', function (e) {
      var w = Z.toWgs84(map, e.latlng);
      var detail = { lon: w.lon, lat: w.lat, displayLon: e.latlng.lng, displayLat: e.latlng.lat };
      map.zerenLastClick = detail;
      map.fire('zeren:click', detail);
      if (typeof global.CustomEvent === 'function') {
        document.dispatchEvent(new global.CustomEvent('zeren:click', { detail: detail }));
      }
    });
    return map;
  };

  global.Zeren = Z;
}(window));
