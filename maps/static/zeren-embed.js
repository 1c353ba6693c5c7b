/* Zeren "find my planner" page (GET /embed/find): the resident taps the map, uses the browser's location or
 * types coordinates; the page asks /lookup, shows the planner card, posts {type: "zeren:planner", ...} to the
 * parent window, and lets the resident leave a message (POST /feedback) whose reference it shows.
 * Needs Leaflet and zeren-maps.js (clicks arrive as WGS84 "zeren:click" events, converted from GCJ-02 tiles).
 * Every text from the server is written with textContent, never as HTML.
 */
(function (global) {
  'use strict';
  var doc = global.document;
  var cfg = {};
  var state = { site: null, answer: null, marker: null, busy: false };

  function $(id) { return doc.getElementById(id); }
  function show(el, on) { if (el) { el.hidden = !on; } }
  function setText(id, value) {
    var el = $(id);
    el.textContent = value === null || value === undefined || value === '' ? '—' : String(value);
  }

  function error(text) {
    var el = $('zf-error');
    el.textContent = text || '';
    show(el, !!text);
  }

  function map() { return global.Zeren && global.Zeren.maps[0]; }

  function placeMarker(lon, lat) {
    var m = map();
    if (!m) { return; }
    var p = m.zerenGcj02 ? global.Zeren.wgs84ToGcj02(lon, lat) : [lon, lat];
    if (state.marker) { state.marker.setLatLng([p[1], p[0]]); } else {
      state.marker = global.L.circleMarker([p[1], p[0]], { radius: 9, color: '#CC3311', weight: 3,
        fillColor: '#FFFFFF', fillOpacity: 0.9, interactive: false }).addTo(m);
    }
  }

  function readError(resp) {
    return resp.json().then(function (body) {
      var text = (body && body.detail) || ('HTTP ' + resp.status);
      if (resp.status === 429) {
        var wait = resp.headers.get('Retry-After');
        text = '提交过于频繁，请 ' + (wait || '稍后') + ' 秒后再试 / too many messages; try again in ' + (wait || 'a few') +
          ' s';
      }
      return text;
    }, function () { return 'HTTP ' + resp.status; });
  }

  function lookup(lon, lat, crs) {
    error('');
    show($('zf-receipt'), false);
    var url = cfg.api + '/lookup?lon=' + encodeURIComponent(lon) + '&lat=' + encodeURIComponent(lat) +
      '&crs=' + encodeURIComponent(crs || 'wgs84');
    $('zf-card').setAttribute('data-state', 'loading');
    return fetch(url, { credentials: 'same-origin' }).then(function (resp) {
      if (!resp.ok) { return readError(resp).then(function (t) { throw new Error(t); }); }
      return resp.json();
    }).then(function (answer) {
      state.answer = answer;
      state.site = { lon: answer.site.lon, lat: answer.site.lat };
      placeMarker(answer.site.lon, answer.site.lat);
      render(answer);
      tellParent(answer);
    }).catch(function (err) {
      $('zf-card').setAttribute('data-state', 'error');
      error(String(err.message || err));
    });
  }

  function planner(p) { return p || {}; }

  function zoneName(z) { return z ? (z.name || z.code) : null; }

  function render(answer) {
    var lead = answer.lead;
    var nearest = answer.nearest;
    var who = lead ? lead.planner : (nearest ? nearest.planner : null);
    var zone = lead ? lead.zone : (nearest ? nearest.zone : null);
    show($('zf-hint'), false);
    show($('zf-result'), true);
    show($('zf-form'), false);
    var p = planner(who);
    setText('zf-name', p.name || '无责任规划师 / no responsible planner');
    setText('zf-zone', zone ? zoneName(zone) + (zone.name_en ? ' / ' + zone.name_en : '') : null);
    setText('zf-org', p.organization);
    var team = [];
    (answer.planners || []).forEach(function (a) {
      if (lead && a.zone.code === lead.zone.code && a.zone.kind === lead.zone.kind && a.planner &&
          a.planner.id !== p.id && team.indexOf(a.planner.name) < 0) {
        team.push(a.planner.name);
      }
    });
    setText('zf-team', team.length ? team.join('、') : null);
    if (p.id) { showTeam(p.id); }
    setText('zf-disciplines', (p.disciplines || []).map(function (d) { return cfg.disciplines[d] || d; })
      .join('；'));
    setText('zf-contact', p.public_contact);
    var why = null;
    if (lead) {
      (answer.planners || []).forEach(function (a) {
        if (!why && a.role === 'lead' && a.zone.code === lead.zone.code && a.zone.kind === lead.zone.kind) {
          why = a.reason;
        }
      });
    }
    setText('zf-why', why);
    var list = $('zf-consult');
    while (list.firstChild) { list.removeChild(list.firstChild); }
    (answer.consultations || []).forEach(function (c) {
      var li = doc.createElement('li');
      li.textContent = (c.planner ? c.planner.name : '—') + ' · ' + zoneName(c.zone) +
        (c.planner && c.planner.public_contact ? ' · ' + c.planner.public_contact : '');
      li.title = c.reason || '';
      list.appendChild(li);
    });
    show($('zf-consult-box'), (answer.consultations || []).length > 0);
    var note = $('zf-nearest');
    if (!lead && nearest) {
      var km = (nearest.distance_m / 1000).toFixed(1);
      note.textContent = (answer.zones && answer.zones.length ? '此处暂无责任规划师' : '此处不在任何单元内') +
        '，由最近的单元「' + zoneName(nearest.zone) + '」（' + km + ' 公里）的规划师负责。 / ' +
        (answer.zones && answer.zones.length ? 'No lead planner here' : 'Outside every zone') +
        ': the planner of the nearest zone ' + zoneName(nearest.zone) + ' (' + km + ' km) answers.';
      show(note, true);
    } else {
      show(note, false);
    }
    if (!lead && !nearest) {
      setText('zf-why', '此处没有可联系的规划师 / nobody to reach here');
    }
    show($('zf-message'), !!who);
    $('zf-card').setAttribute('data-state', 'answered');
  }

  var ROLES = { lead: '负责人 / team lead', member: '成员 / member', adviser: '专家顾问 / expert adviser' };

  function showTeam(pid) {  // the planner's team(s), from /teams: name and their role in it
    fetch(cfg.api + '/teams?planner_id=' + encodeURIComponent(pid), { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (teams) {
        if (!teams.length || !state.answer) { return; }
        var names = teams.map(function (t) {
          var role = null;
          (t.members || []).forEach(function (m) { if (m.planner_id === pid) { role = m.role; } });
          return t.name + (role ? '（' + (ROLES[role] || role) + '）' : '');
        });
        var el = $('zf-team');
        var others = el.textContent && el.textContent !== '—' ? ' · ' + el.textContent : '';
        el.textContent = names.join('；') + others;
        el.setAttribute('data-teams', teams.map(function (t) { return t.id; }).join(','));
      }).catch(function () { /* the card stands without the team */ });
  }

  function tellParent(answer) {
    var lead = answer.lead;
    var message = {
      type: 'zeren:planner', lon: answer.site.lon, lat: answer.site.lat, covered: !!answer.covered,
      planner: lead ? lead.planner : (answer.nearest ? answer.nearest.planner : null),
      zone: lead ? lead.zone : (answer.nearest ? answer.nearest.zone : null),
      consultations: (answer.consultations || []).map(function (c) { return c.planner && c.planner.id; }),
      as_of: answer.as_of
    };
    try {
      (global.parent || global).postMessage(message, '*');
    } catch (e) { /* a parent that refuses messages must not break the page */ }
  }

  // ---- the message form ----------------------------------------------------------------------------
  function loadCategories() {
    return fetch(cfg.api + '/feedback/categories', { credentials: 'same-origin' }).then(function (r) {
      return r.ok ? r.json() : [];
    }).then(function (cats) {
      var sel = $('zf-category');
      while (sel.firstChild) { sel.removeChild(sel.firstChild); }
      cats.forEach(function (c) {
        var o = doc.createElement('option');
        o.value = c.code;
        o.textContent = c.name + (c.name_en ? ' / ' + c.name_en : '');
        sel.appendChild(o);
      });
    }).catch(function () { /* the form says what failed when it is sent */ });
  }

  function openForm() {
    show($('zf-form'), true);
    show($('zf-receipt'), false);
    $('zf-text').focus();
    if ($('zf-form').scrollIntoView) { $('zf-form').scrollIntoView({ block: 'nearest' }); }
  }

  function send(ev) {
    ev.preventDefault();
    if (!state.site || state.busy) { return; }
    var body = { lon: state.site.lon, lat: state.site.lat, crs: 'wgs84', category: $('zf-category').value,
                 text: $('zf-text').value };
    var contact = $('zf-contact-in').value.trim();
    if (contact) { body.contact = contact; }
    state.busy = true;
    error('');
    fetch(cfg.api + '/feedback', { method: 'POST', credentials: 'same-origin',
                                   headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
      .then(function (resp) {
        if (resp.status !== 201) { return readError(resp).then(function (t) { throw new Error(t); }); }
        return resp.json();
      }).then(function (receipt) {
        var el = $('zf-receipt');
        el.textContent = '';
        var strong = doc.createElement('strong');
        strong.id = 'zf-ref';
        strong.textContent = receipt.ref;
        el.appendChild(doc.createTextNode('留言已提交，编号 / sent; your reference: '));
        el.appendChild(strong);
        el.appendChild(doc.createTextNode('。凭编号查询进度 / follow it with this reference.'));
        show(el, true);
        show($('zf-form'), false);
        if (el.scrollIntoView) { el.scrollIntoView({ block: 'nearest' }); }
        $('zf-text').value = '';
        $('zf-count').textContent = '0/2000';
        try {
          (global.parent || global).postMessage({ type: 'zeren:feedback', ref: receipt.ref,
                                                  routed_to: receipt.routed_to }, '*');
        } catch (e) { /* ignore */ }
      }).catch(function (err) { error(String(err.message || err)); })
      .then(function () { state.busy = false; });
  }

  // ---- typed coordinates and the browser's location ----------------------------------------------
  function typed(ev) {
    ev.preventDefault();
    var parts = $('zf-coords').value.replace(/，/g, ',').split(/[\s,;]+/).filter(Boolean).map(Number);
    if (parts.length !== 2 || !isFinite(parts[0]) || !isFinite(parts[1])) {
      error('请输入「经度,纬度」，例如 104.0530,30.6695 / type "lon,lat", e.g. 104.0530,30.6695');
      return;
    }
    lookup(parts[0], parts[1], $('zf-crs').value);
  }

  function locate() {
    if (!global.navigator || !global.navigator.geolocation) {
      error('此浏览器不支持定位 / this browser cannot tell your location');
      return;
    }
    global.navigator.geolocation.getCurrentPosition(function (pos) {  // WGS84, as the W3C API says
      lookup(pos.coords.longitude, pos.coords.latitude, 'wgs84');
    }, function (err) {
      error('无法获取位置 / could not get your location (' + (err && err.message ? err.message : 'denied') + ')');
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  }

  function start() {
    var node = $('zeren-embed-config');
    cfg = node ? JSON.parse(node.textContent) : {};
    cfg.api = cfg.api || '';
    cfg.disciplines = cfg.disciplines || {};
    doc.addEventListener('zeren:click', function (ev) { lookup(ev.detail.lon, ev.detail.lat, 'wgs84'); });
    $('zf-search').addEventListener('submit', typed);
    $('zf-locate').addEventListener('click', locate);
    $('zf-message').addEventListener('click', openForm);
    $('zf-cancel').addEventListener('click', function () { show($('zf-form'), false); });
    $('zf-form').addEventListener('submit', send);
    $('zf-text').addEventListener('input', function () {
      $('zf-count').textContent = $('zf-text').value.length + '/2000';
    });
    loadCategories();
    if (cfg.start) { lookup(cfg.start[0], cfg.start[1], 'wgs84'); }
    doc.body.setAttribute('data-zeren-find', 'ready');
  }

  global.ZerenFind = { lookup: lookup, state: state };
  if (doc.readyState === 'loading') { doc.addEventListener('DOMContentLoaded', start); } else { start(); }
}(window));
