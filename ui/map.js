// The map of the shelter finder and the office board: an addition to their
// lists, which stay the pages' primary, accessible view. Loaded only when a
// person asks for the map (import('./map.js')), with the vendored Leaflet
// (vendor/leaflet, BSD-2). Which tiles, their credit and how close they go
// come from the server (GET /v1/map), never from this file. Without tiles
// (offline, blocked) the markers still show, and the map says so.

import { i18n, tr, el, api } from './common.js';

const STATUSES = ['open', 'full', 'closed', 'unsafe'];
let leaflet = null;

// A stylesheet or a script of this service, added to the page once.
const add = (tag, attrs) => new Promise((resolve, reject) => {
  const e = el(tag, attrs);
  e.onload = resolve;
  e.onerror = () => { e.remove(); reject(new Error(`could not load ${attrs.src || attrs.href}`)); };
  document.head.append(e);
});

function loadLeaflet() {
  leaflet ??= Promise.all([
    add('link', { rel: 'stylesheet', href: 'vendor/leaflet/leaflet.css' }),
    add('link', { rel: 'stylesheet', href: 'map.css' }),
    add('script', { src: 'vendor/leaflet/leaflet.js' }),
  ]).then(() => window.L, (e) => { leaflet = null; throw e; });
  return leaflet;
}

const num = (n) => new Intl.NumberFormat(i18n.lang).format(n);
const statusOf = (s) => (STATUSES.includes(s.status) ? s.status : 'closed');
const nameOf = (s) => (i18n.lang === 'en' && s.name_en ? s.name_en : s.name);

// What the popup and a screen reader say about a shelter: name, status, people and room.
function occText(s) {
  const cap = s.capacity || {};
  const capText = cap.indoor > 0 ? tr('cap_indoor', { cap: num(cap.indoor) })
    : cap.outdoor > 0 ? tr('cap_outdoor', { cap: num(cap.outdoor) }) : tr('cap_unknown');
  return `${tr('occ', { occ: num(s.occupancy ?? 0) })} / ${capText}`;
}

function popupView(s) {
  const st = statusOf(s);
  return el('div', { class: 'map-pop', 'data-testid': 'map-popup', 'data-id': s.id },
    el('p', { class: 'name', lang: i18n.lang === 'en' && s.name_en ? 'en' : 'ja' }, nameOf(s)),
    el('p', {}, el('span', { class: `badge st-${st}`, 'data-testid': 'map-popup-status' }, tr('st_' + st))),
    el('p', { 'data-testid': 'map-popup-occ' }, occText(s)));
}

// A shelter's marker: a shape and a colour per status, and the status in words.
function pinView(pin, s) {
  const st = statusOf(s);
  pin.className = `pin st-${st}`;
  pin.dataset.status = st;
  pin.replaceChildren(el('span', { class: 'sym', 'aria-hidden': 'true' }), el('span', { class: 'lbl' }, tr('st_' + st)));
}

const isUrl = (u) => { try { return ['http:', 'https:'].includes(new URL(u).protocol); } catch { return false; } };

// Draws a map into `box` (an empty element the page keeps); resolves to
// { update(shelters, point, refit), remove() }, or rejects when Leaflet
// cannot be loaded (the page then says so; its list works as before).
export async function createMap(box) {
  const L = await loadLeaflet();
  const cfg = await api('/v1/map').then((r) => (r.ok && r.body && typeof r.body.tiles === 'string' ? r.body : null));
  const note = el('p', { class: 'msg err map-note', role: 'status', 'data-testid': 'map-note', hidden: true });
  const div = el('div', { class: 'map', role: 'region', 'data-testid': 'map' });
  box.replaceChildren(note, div);

  const map = L.map(div, { zoomControl: false, attributionControl: false, maxZoom: cfg?.max_zoom || 18 });
  const zoom = () => L.control.zoom({ zoomInTitle: tr('map_zoom_in'), zoomOutTitle: tr('map_zoom_out') });
  let zoomCtl = zoom().addTo(map);
  map.setView([37.0432, 136.9674], 13);
  map.on('zoomend', () => { div.dataset.zoom = map.getZoom(); });
  div.dataset.zoom = map.getZoom();

  // The credit the tiles' terms ask for, linked, as the server names it;
  // and a note while the tiles of the view do not load (none came: offline, blocked).
  let failed = !cfg, batch = false;
  const showNote = () => { note.hidden = !failed; note.textContent = failed ? tr('map_tiles_failed') : ''; };
  if (cfg) {
    const Credit = L.Control.extend({
      onAdd: () => el('div', { class: 'leaflet-control-attribution leaflet-control', 'data-testid': 'map-credit' },
        isUrl(cfg.credit_url) ? el('a', { href: cfg.credit_url, target: '_blank', rel: 'noopener' }, cfg.credit) : cfg.credit),
    });
    new Credit({ position: 'bottomright' }).addTo(map);
    const layer = L.tileLayer(cfg.tiles, { maxZoom: cfg.max_zoom || 18 });
    layer.on('loading', () => { batch = false; });
    layer.on('tileerror', () => { batch = failed = true; showNote(); });
    layer.on('load', () => { failed = batch; showNote(); });
    layer.addTo(map);
  }

  const markers = new Map();
  let here = null, lang = null, fitted = false;

  function relabel() {
    div.setAttribute('aria-label', tr('map_label'));
    zoomCtl.remove();
    zoomCtl = zoom().addTo(map);
    showNote();
    if (here) here.pin.lastChild.textContent = tr('map_here');
  }

  // Markers follow `shelters` (added, moved, restyled, dropped); `point`
  // is the place searched from. `refit` frames them all (a new list).
  function update(shelters, point, refit) {
    if (lang !== i18n.code) { lang = i18n.code; relabel(); markers.forEach((m) => { m.key = null; }); }
    const seen = new Set();
    for (const s of shelters) {
      const loc = s.location;
      if (!loc || !Number.isFinite(loc.lat) || !Number.isFinite(loc.lon)) continue;
      seen.add(s.id);
      const key = JSON.stringify([loc, s.status, s.occupancy, s.capacity, s.name, s.name_en]);
      let m = markers.get(s.id);
      if (!m) {
        const pin = el('span');
        const marker = L.marker([loc.lat, loc.lon], {
          icon: L.divIcon({ html: pin, className: 'pin-at', iconSize: [0, 0], iconAnchor: [0, 0] }),
          keyboard: true, riseOnHover: true,
        }).bindPopup(el('div'), { autoPanPadding: [12, 12] }).addTo(map);
        m = { marker, pin, key: null };
        markers.set(s.id, m);
      }
      if (m.key === key) continue;
      m.key = key;
      m.marker.setLatLng([loc.lat, loc.lon]);
      pinView(m.pin, s);
      m.marker.setPopupContent(popupView(s));
      const icon = m.marker.getElement();
      if (icon) {
        Object.assign(icon.dataset, { testid: 'map-marker', id: s.id, status: statusOf(s), lat: loc.lat, lon: loc.lon });
        icon.setAttribute('aria-label', `${nameOf(s)}: ${tr('st_' + statusOf(s))}, ${occText(s)}`);
        icon.removeAttribute('title');
      }
    }
    for (const [id, m] of markers) if (!seen.has(id)) { m.marker.remove(); markers.delete(id); }

    const p = point && Number.isFinite(point.lat) && Number.isFinite(point.lon) ? point : null;
    if (p && !here) {
      const pin = el('span', { class: 'pin here' }, el('span', { class: 'sym', 'aria-hidden': 'true' }), el('span', { class: 'lbl' }, tr('map_here')));
      const marker = L.marker([p.lat, p.lon], {
        icon: L.divIcon({ html: pin, className: 'pin-at', iconSize: [0, 0], iconAnchor: [0, 0] }),
        keyboard: false, interactive: false, zIndexOffset: -1000,
      }).addTo(map);
      here = { marker, pin };
      Object.assign(marker.getElement().dataset, { testid: 'map-here' });
    } else if (!p && here) { here.marker.remove(); here = null; }
    if (p && here) {
      here.marker.setLatLng([p.lat, p.lon]);
      Object.assign(here.marker.getElement().dataset, { lat: p.lat, lon: p.lon });
    }

    if (refit || !fitted) {
      const pts = [...markers.values()].map((m) => m.marker.getLatLng());
      if (here) pts.push(here.marker.getLatLng());
      if (pts.length) {
        map.fitBounds(L.latLngBounds(pts), { padding: [32, 32], maxZoom: 16, animate: false });
        fitted = true;
      }
    }
  }

  // Leaflet's own words for its close button, in the page's language.
  map.on('popupopen', (e) => {
    e.popup.getElement()?.querySelector('.leaflet-popup-close-button')?.setAttribute('aria-label', tr('map_close'));
  });

  return { update, remove: () => map.remove(), resize: () => map.invalidateSize() };
}
