// anpi resident UI: nearest shelter that is open, has room and suits the hazard;
// the shelters listed stay current over a WebSocket (/v1/live).
// Plain ES modules, no dependencies (common.js: DOM helpers and the language).

import { $, i18n, tr, trNodes, el, renderStatic, startLang, api, problemOf, ago, jst, watchNews, newsView, offline, saved, needsText } from './common.js';

const HAZARDS = ['flood', 'landslide', 'storm_surge', 'earthquake', 'tsunami', 'fire', 'inland_flood', 'volcano'];
const STATUSES = ['open', 'full', 'closed', 'unsafe'];
const FIELDS = { near: 'err-near', hazard: 'err-hazard' };
const NANAO = ['37.0432', '136.9674'];
const TIMEOUT_MS = 20000;
const LIMIT = 10;
const MAX_RADIUS_M = 10000;

const form = $('search'), latIn = $('lat'), lonIn = $('lon'), hazardIn = $('hazard'), onlyOpen = $('only-open');
const results = $('results');
let seq = 0;
// Everything the page shows is derived from this, so a language switch re-renders it.
const state = { view: 'idle', query: null, data: null, problem: null, net: null, geo: null, last: null, live: null };

// ---------- rendering ----------

function render() {
  renderStatic('title');
  const sel = hazardIn.value || state.query?.hazard || 'earthquake';
  hazardIn.replaceChildren(...HAZARDS.map((h) => el('option', { value: h }, tr('hz_' + h))));
  hazardIn.value = sel;
  const g = state.geo;
  $('geo-msg').textContent = g ? tr(g.key, g.vars) : '';
  $('geo-msg').classList.toggle('err', !!g?.err);
  renderFieldErrors();
  renderResults();
  renderNews();
  renderMap();
  supply?.renderSupplies();
}

const renderNews = () => $('news').replaceChildren(...newsView());
// Announcements of the active disasters' municipalities and of those listed.
let incidentCodes = [];
const newsCodes = () => watchNews([...incidentCodes, ...(state.data?.shelters || []).map((s) => s.municipality)], renderNews);

function renderFieldErrors() {
  const errs = state.view === 'problem' ? state.problem.errors || [] : [];
  for (const [field, id] of Object.entries(FIELDS)) {
    const mine = errs.filter((e) => e.field === field).map((e) => e.message);
    const p = $(id);
    p.textContent = mine.join(' ');
    p.hidden = !mine.length;
    const inputs = field === 'near' ? [latIn, lonIn] : [hazardIn];
    for (const i of inputs) mine.length ? i.setAttribute('aria-invalid', 'true') : i.removeAttribute('aria-invalid');
  }
}

function renderResults() {
  const v = state.view;
  results.setAttribute('aria-busy', String(v === 'loading'));
  const out = [];
  if (v === 'idle') out.push(el('p', { class: 'hint' }, tr('idle')));
  else if (v === 'loading') out.push(el('p', { class: 'hint busy', 'data-testid': 'loading' }, tr('searching')));
  else if (v === 'results') out.push(...listView(state.data, state.query));
  else if (v === 'problem') out.push(problemView(state.problem));
  else if (v === 'net') {
    out.push(el('div', { class: 'box err', 'data-testid': 'network-error' },
      el('p', {}, tr(state.net.key, state.net.vars)),
      el('button', { type: 'button', class: 'btn primary', 'data-action': 'retry' }, tr('retry'))));
    if (state.last) {
      out.push(el('p', { class: 'hint' }, tr('stale', { time: fmtClock(state.last.at) })));
      out.push(...listView(state.last.data, state.last.query));
    }
  }
  results.replaceChildren(...out);
}

function problemView(p) {
  // Errors for a visible input are shown beside it; the others are listed here.
  const other = (p.errors || []).filter((e) => !(e.field in FIELDS));
  return el('div', { class: 'box err', 'data-testid': 'problem' },
    el('h2', {}, tr('err_title')),
    p.detail ? el('p', { 'data-testid': 'problem-detail' }, p.detail) : el('p', {}, tr('err_status', { status: p.status })),
    other.length ? el('ul', { 'data-testid': 'problem-fields' },
      other.map((e) => el('li', {}, `${Object.hasOwn(i18n.t, 'f_' + e.field) ? tr('f_' + e.field) : e.field}: ${e.message}`))) : null,
    p.status >= 500 || p.status === 429 ? el('button', { type: 'button', class: 'btn primary', 'data-action': 'retry' }, tr('retry')) : null);
}

function listView(data, q) {
  const list = data.shelters || [];
  const head = el('h2', {}, tr('results'));
  const liveLine = state.live ? el('p', { class: 'hint live ' + state.live, 'data-testid': 'live', 'data-live': state.live }, tr('live_' + state.live)) : null;
  if (!list.length) {
    return [head, liveLine, el('div', { class: 'box', 'data-testid': 'empty' },
      el('p', {}, tr('empty')),
      el('p', {}, tr(q.onlyOpen ? 'empty_hint_filter' : 'empty_hint')))];
  }
  return [head,
    state.savedAt ? el('p', { class: 'msg err', 'data-testid': 'saved-at' }, tr('saved_at', { time: ago(new Date(state.savedAt)) })) : null,
    el('p', { class: 'hint', 'data-testid': 'count' }, tr('count', { n: list.length, hazard: tr('hz_' + q.hazard) })),
    liveLine,
    el('ol', { class: 'shelters', 'data-testid': 'shelter-list' }, list.map(card))];
}

function card(s) {
  const status = STATUSES.includes(s.status) ? s.status : 'closed';
  const name = i18n.lang === 'en' && s.name_en
    ? [el('span', { lang: 'en' }, s.name_en), ' ', el('span', { class: 'alt', lang: 'ja' }, s.name)]
    : [el('span', { lang: 'ja' }, s.name)];
  const cap = s.capacity || {};
  // As the server counts room: indoor space where there is any, else outdoor.
  const capText = cap.indoor > 0 ? tr('cap_indoor', { cap: num(cap.indoor) })
    : cap.outdoor > 0 ? tr('cap_outdoor', { cap: num(cap.outdoor) }) : tr('cap_unknown');
  const showOcc = status === 'open' || status === 'full' || s.occupancy > 0;
  const loc = s.location;
  return el('li', { class: 'card st-' + status, 'data-testid': 'shelter', 'data-id': s.id, 'data-status': status, 'data-distance-m': s.distance_m ?? '' },
    el('div', { class: 'top' },
      el('h3', { class: 'name', 'data-testid': 'shelter-name' }, name),
      typeof s.distance_m === 'number' ? el('span', { class: 'dist', 'data-testid': 'distance' }, tr('away', { d: dist(s.distance_m) })) : null),
    el('p', { class: 'meta' },
      el('span', { class: 'badge st-' + status, 'data-testid': 'status' }, tr('st_' + status)), ' ',
      Object.hasOwn(i18n.t, 'k_' + s.kind) ? el('span', { class: 'kind' }, tr('k_' + s.kind)) : null),
    el('p', { class: 'occ' }, showOcc ? `${tr('occ', { occ: num(s.occupancy ?? 0) })} / ${capText}` : capText),
    s.self_reported > 0 ? el('p', { 'data-testid': 'self-reported' }, tr('self', { n: num(s.self_reported) })) : null,
    s.needs?.length || s.needs_note ? el('p', { class: 'needs', 'data-testid': 'needs' }, tr('needs', { list: needsText(s) })) : null,
    freshness(s),
    s.address ? el('p', { class: 'addr' }, tr('address', { a: s.address })) : null,
    el('p', { class: 'actions' },
      loc ? el('a', { class: 'btn secondary', href: `geo:${loc.lat},${loc.lon}` }, tr('directions')) : null,
      s.phone ? el('a', { class: 'btn secondary', href: 'tel:' + s.phone.replace(/[^\d+]/g, '') }, tr('call', { phone: s.phone })) : null,
      status === 'open' || status === 'full' ? el('a', { class: 'btn secondary', href: `safety.html?shelter=${encodeURIComponent(s.id)}` }, tr('here')) : null,
      el('a', { class: 'btn secondary', href: `aid.html?shelter=${encodeURIComponent(s.id)}`, 'data-testid': 'aid-here' }, tr('aid_here'))));
}

// When the office last vouched for the state, and who; sample data says so, with its date.
function freshness(s) {
  const when = s.confirmed_at || s.as_of || s.updated_at, who = s.confirmed_by ?? s.updated_by;
  const d = when ? new Date(when) : null;
  if (!d || isNaN(d)) return el('p', { class: 'fresh none', 'data-testid': 'freshness' }, tr('not_confirmed'));
  if (/^sample data/.test(who || '')) {
    return el('p', { class: 'fresh old', 'data-testid': 'freshness', 'data-sample': '' },
      trNodes('as_of_sample', { time: el('time', { datetime: d.toISOString() }, jst(d)) }));
  }
  const time = el('time', { datetime: d.toISOString(), title: jst(d) }, ago(d));
  return el('p', { class: 'fresh' + (s.stale ? ' old' : ''), 'data-testid': 'freshness' },
    trNodes(who ? 'confirmed' : 'confirmed_anon', { time, who }), s.stale ? ` ${tr('stale_state')}` : null);
}

const num = (n) => new Intl.NumberFormat(i18n.lang).format(n);
const dist = (m) => (m < 1000 ? `${num(Math.round(m))} m`
  : `${new Intl.NumberFormat(i18n.lang, { maximumFractionDigits: m < 10000 ? 1 : 0 }).format(m / 1000)} km`);
const fmtClock = (d) => d.toLocaleTimeString(i18n.lang, { hour: '2-digit', minute: '2-digit' });


// ---------- searching ----------

function queryUrl(q) {
  const url = `/v1/shelters?near=${encodeURIComponent(q.lat)},${encodeURIComponent(q.lon)}&limit=${LIMIT}&hazard=${encodeURIComponent(q.hazard)}`;
  return q.onlyOpen ? url + '&status=open&has_room=true' : url;
}

function readForm() {
  let lat = latIn.value.normalize('NFKC').trim(), lon = lonIn.value.normalize('NFKC').trim();
  if (!lon && lat.includes(',')) [lat, lon] = lat.split(',').map((x) => x.trim()); // a pasted "lat,lon"
  return { lat, lon, hazard: hazardIn.value || 'earthquake', onlyOpen: onlyOpen.checked };
}

async function search(q = readForm()) {
  const my = ++seq;
  unwatch();
  state.query = q;
  state.view = 'loading';
  render();
  const res = await api(queryUrl(q), {}, TIMEOUT_MS);
  if (my !== seq) return;
  const body = res.body;
  if (res.net) {
    state.view = 'net';
    state.net = { key: res.net };
  } else if (res.ok && body && Array.isArray(body.shelters)) {
    state.view = 'results';
    state.data = body;
    state.savedAt = res.at;
    state.last = { data: body, query: q, at: new Date() };
    const u = new URL(location.href);
    u.searchParams.set('lat', q.lat);
    u.searchParams.set('lon', q.lon);
    u.searchParams.set('hazard', q.hazard);
    history.replaceState(null, '', u);
    watch(q, body);
    newsCodes();
    showSupplies(q);
  } else if (body && typeof body === 'object' && !res.ok) {
    state.view = 'problem';
    state.problem = problemOf(res);
  } else {
    // A proxy's HTML error page, a cut-off body: treat as a network problem, retryable.
    state.view = 'net';
    state.net = res.ok ? { key: 'net_error' } : { key: 'err_status', vars: { status: res.status } };
  }
  render();
  if (state.view === 'problem' && state.problem.errors.some((e) => e.field === 'near')) latIn.focus();
  else (mapUi.on ? $('map-toggle') : results).scrollIntoView({ block: 'start' }); // on a phone the form fills the screen
}

function locate() {
  if (!navigator.geolocation || !window.isSecureContext) {
    state.geo = { key: 'geo_unsupported', err: true };
    return render();
  }
  state.geo = { key: 'locating' };
  render();
  navigator.geolocation.getCurrentPosition((pos) => {
    latIn.value = pos.coords.latitude.toFixed(5);
    lonIn.value = pos.coords.longitude.toFixed(5);
    state.geo = { key: 'geo_ok', vars: { acc: Math.round(pos.coords.accuracy) } };
    search();
  }, (err) => {
    state.geo = { key: err.code === 1 ? 'geo_denied' : err.code === 3 ? 'geo_timeout' : 'geo_unavailable', err: true };
    render();
  }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 });
}

// Water, food and the rest near the same point (supply.js, loaded when first needed).
let supply = null;
function showSupplies(q) {
  import('./supply.js').then((m) => { supply = m; m.showSupplies($('supplies'), { lat: q.lat, lon: q.lon }); }, () => {});
}

// ---------- live updates ----------
// A place subscription covering the list; a reconnect sends `since` and gets
// exactly what it missed (or a fresh snapshot).

const live = { ws: null, want: null, since: {}, backoff: 1000, timer: null };

// The circle watched: the whole list's, or as far as the server follows
// when the list is short (a shelter opening anywhere near joins it).
function radiusFor(data) {
  const far = Math.max(0, ...data.shelters.map((s) => s.distance_m || 0));
  return data.shelters.length < LIMIT ? MAX_RADIUS_M : Math.min(MAX_RADIUS_M, Math.max(500, far + 100));
}

function watch(q, data) {
  live.want = { lat: Number(q.lat), lon: Number(q.lon), radius_m: radiusFor(data) };
  live.since = {};
  live.backoff = 1000;
  connectLive();
}

function unwatch() {
  live.want = state.live = null;
  clearTimeout(live.timer);
  live.ws?.close();
  live.ws = null;
}

function connectLive() {
  if (!live.want || !('WebSocket' in window)) return;
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/live`);
  live.ws = ws;
  setLive(state.live === 'on' ? 'reconnecting' : 'connecting');
  ws.onopen = () => ws.send(JSON.stringify({ op: 'subscribe', id: 'near', near: live.want, since: live.since }));
  ws.onmessage = (e) => {
    let m;
    try { m = JSON.parse(e.data); } catch { return; }
    if (m.op === 'subscribed') {
      live.backoff = 1000;
      setLive('on');
    } else if (m.op === 'snapshot' || m.op === 'event') {
      live.since[m.channel] = { seq: m.seq, epoch: m.epoch };
      if (m.kind === 'shelter.snapshot') m.data.shelters.forEach(updateShelter);
      else if (m.kind === 'shelter.updated') updateShelter(m.data);
      else if (m.kind === 'supply.point') supply?.supplyChanged();
    }
  };
  ws.onclose = () => {
    if (live.ws !== ws) return;
    live.ws = null;
    setLive('reconnecting');
    live.timer = setTimeout(connectLive, live.backoff);
    live.backoff = Math.min(live.backoff * 2, 30000);
  };
}

function setLive(v) {
  if (state.live === v) return;
  state.live = v;
  if (state.view === 'results') render();
}

// Whether a shelter belongs in the list asked for (as the server filters).
function fits(s, q) {
  if (!(s.hazards || []).includes(q.hazard)) return false;
  if (!q.onlyOpen) return true;
  const cap = s.capacity || {};
  const room = cap.indoor > 0 ? cap.indoor : cap.outdoor > 0 ? cap.outdoor : null;
  return s.status === 'open' && (room == null || (s.occupancy ?? 0) < room);
}

// Metres between the query's point and a place (haversine).
function meters(q, p) {
  const r = Math.PI / 180, a = Number(q.lat) * r, b = p.lat * r;
  const h = Math.sin((b - a) / 2) ** 2 + Math.cos(a) * Math.cos(b) * Math.sin(((p.lon - Number(q.lon)) * r) / 2) ** 2;
  return Math.round(2 * 6371008.8 * Math.asin(Math.sqrt(h)));
}

// A shelter changed: updated in place, added where it now fits (nearest
// first, at most LIMIT), dropped where it no longer does.
let repaint = 0;
function updateShelter(s) {
  const q = state.query, list = state.data?.shelters;
  if (!list || !q || !s?.id) return;
  const i = list.findIndex((x) => x.id === s.id);
  if (fits(s, q)) {
    if (i >= 0) list[i] = { ...s, distance_m: list[i].distance_m };
    else {
      const d = s.location ? meters(q, s.location) : null;
      if (d == null || !live.want || d > live.want.radius_m) return;
      list.push({ ...s, distance_m: d });
      list.sort((x, y) => (x.distance_m ?? Infinity) - (y.distance_m ?? Infinity));
      if (list.length > LIMIT) list.length = LIMIT;
    }
  } else if (i >= 0) {
    list.splice(i, 1);
    requery(); // the next one may lie outside the circle watched
  } else return;
  if (!repaint) repaint = requestAnimationFrame(() => { repaint = 0; if (state.view === 'results') render(); });
}

// Asks again quietly (the list stays on screen), watching a new circle if it needs one.
let requeryTimer = 0;
function requery() {
  clearTimeout(requeryTimer);
  requeryTimer = setTimeout(async () => {
    const q = state.query, my = seq;
    const res = await api(queryUrl(q), {}, TIMEOUT_MS);
    if (my !== seq || state.view !== 'results' || !res.ok || !Array.isArray(res.body?.shelters)) return;
    state.data = res.body;
    state.savedAt = res.at;
    state.last = { data: res.body, query: q, at: new Date() };
    if (radiusFor(res.body) !== live.want?.radius_m) watch(q, res.body);
    render();
  }, 300);
}

// ---------- the map ----------
// An addition to the list (which stays the accessible view): map.js and
// Leaflet are loaded only when asked for, so the finder's first load stays small.

const MAP_KEY = 'anpi.map';
const mapUi = { on: false, map: null, loading: false, failed: false, at: null, seen: false };

function setMap(on) {
  mapUi.on = on;
  mapUi.failed = false;
  saved(MAP_KEY, on ? '1' : '0');
  renderMap();
}

function renderMap() {
  const b = $('map-toggle'), box = $('map-box');
  b.textContent = tr(mapUi.on ? 'map_hide' : 'map_show');
  b.setAttribute('aria-expanded', String(mapUi.on));
  box.hidden = !mapUi.on;
  if (!mapUi.on) { mapUi.seen = false; return; }
  if (mapUi.failed) return box.replaceChildren(el('p', { class: 'msg err', role: 'status', 'data-testid': 'map-failed' }, tr('map_failed')));
  if (!mapUi.map) {
    if (mapUi.loading) return;
    mapUi.loading = true;
    box.replaceChildren(el('p', { class: 'hint busy' }, tr('map_loading')));
    import('./map.js').then((m) => m.createMap(box))
      .then((m) => { mapUi.map = m; }, () => { mapUi.failed = true; })
      .finally(() => { mapUi.loading = false; renderMap(); });
    return;
  }
  if (!mapUi.seen) mapUi.map.resize(); // it was hidden: Leaflet measures again
  mapUi.seen = true;
  // The list on screen (or the last one kept, offline), and the point searched from.
  const [data, q] = state.view === 'results' ? [state.data, state.query]
    : state.view === 'net' && state.last ? [state.last.data, state.last.query] : [null, null];
  const at = q || readForm();
  const key = data ? `list ${seq}` : JSON.stringify([at.lat, at.lon]); // a new list is framed anew
  mapUi.map.update(data?.shelters || [], { lat: Number(at.lat), lon: Number(at.lon) }, key !== mapUi.at);
  mapUi.at = key;
}

// ---------- start ----------

form.addEventListener('submit', (e) => { e.preventDefault(); search(); });
$('locate').addEventListener('click', locate);
$('map-toggle').addEventListener('click', () => setMap(!mapUi.on));
results.addEventListener('click', (e) => {
  if (e.target.closest('[data-action="retry"]')) search(state.query || readForm());
});
const params = new URLSearchParams(location.search);
const pLat = params.get('lat'), pLon = params.get('lon'), pHaz = params.get('hazard');
latIn.value = pLat ?? NANAO[0];
lonIn.value = pLon ?? NANAO[1];
if (HAZARDS.includes(pHaz)) state.query = { hazard: pHaz };

startLang(render).then(() => {
  offline();
  if (pLat && pLon) search();
  if (saved(MAP_KEY) === '1') setMap(true);
});
api('/v1/incidents?active=true').then((r) => {
  incidentCodes = r.ok ? (r.body?.incidents || []).flatMap((i) => i.municipalities || []) : [];
  newsCodes();
});
