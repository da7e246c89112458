// anpi resident UI: nearest shelter that is open, has room and suits the hazard;
// the shelters listed stay current over a WebSocket (/v1/live).
// Plain ES modules, no dependencies (common.js: DOM helpers and the language).

import { $, i18n, tr, trNodes, el, renderStatic, startLang, api, problemOf } from './common.js';

const HAZARDS = ['flood', 'landslide', 'storm_surge', 'earthquake', 'tsunami', 'fire', 'inland_flood', 'volcano'];
const STATUSES = ['open', 'full', 'closed', 'unsafe'];
const FIELDS = { near: 'err-near', hazard: 'err-hazard' };
const NANAO = ['37.0432', '136.9674'];
const TIMEOUT_MS = 20000;

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
}

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
  if (!list.length) {
    return [head, el('div', { class: 'box', 'data-testid': 'empty' },
      el('p', {}, tr('empty')),
      el('p', {}, tr(q.onlyOpen ? 'empty_hint_filter' : 'empty_hint')))];
  }
  return [head,
    el('p', { class: 'hint' }, tr('count', { n: list.length, hazard: tr('hz_' + q.hazard) })),
    state.live ? el('p', { class: 'hint live ' + state.live, 'data-testid': 'live', 'data-live': state.live }, tr('live_' + state.live)) : null,
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
    s.needs?.length ? el('p', { class: 'needs' }, tr('needs', { list: s.needs.join(i18n.lang === 'ja' ? '、' : ', ') })) : null,
    freshness(s),
    s.address ? el('p', { class: 'addr' }, tr('address', { a: s.address })) : null,
    el('p', { class: 'actions' },
      loc ? el('a', { class: 'btn secondary', href: `geo:${loc.lat},${loc.lon}` }, tr('directions')) : null,
      s.phone ? el('a', { class: 'btn secondary', href: 'tel:' + s.phone.replace(/[^\d+]/g, '') }, tr('call', { phone: s.phone })) : null,
      status === 'open' || status === 'full' ? el('a', { class: 'btn secondary', href: `safety.html?shelter=${encodeURIComponent(s.id)}` }, tr('here')) : null,
      el('a', { class: 'btn secondary', href: `aid.html?shelter=${encodeURIComponent(s.id)}`, 'data-testid': 'aid-here' }, tr('aid_here'))));
}

function freshness(s) {
  const when = s.as_of || s.updated_at;
  const d = when ? new Date(when) : null;
  if (!d || isNaN(d)) return el('p', { class: 'fresh none', 'data-testid': 'freshness' }, tr('not_confirmed'));
  const time = el('time', { datetime: d.toISOString(), title: d.toLocaleString(i18n.lang) }, ago(d));
  return el('p', { class: 'fresh', 'data-testid': 'freshness' },
    trNodes(s.updated_by ? 'confirmed' : 'confirmed_anon', { time, who: s.updated_by }));
}

const num = (n) => new Intl.NumberFormat(i18n.lang).format(n);
const dist = (m) => (m < 1000 ? `${num(Math.round(m))} m`
  : `${new Intl.NumberFormat(i18n.lang, { maximumFractionDigits: m < 10000 ? 1 : 0 }).format(m / 1000)} km`);
const fmtClock = (d) => d.toLocaleTimeString(i18n.lang, { hour: '2-digit', minute: '2-digit' });

function ago(d) {
  const s = Math.min(0, (d.getTime() - Date.now()) / 1000); // a clock ahead of ours is "now"
  const rtf = new Intl.RelativeTimeFormat(i18n.lang, { numeric: 'auto' });
  for (const [unit, size] of [['year', 31536000], ['month', 2592000], ['day', 86400], ['hour', 3600], ['minute', 60]]) {
    if (Math.abs(s) >= size) return rtf.format(Math.trunc(s / size), unit);
  }
  return rtf.format(0, 'minute');
}

// ---------- searching ----------

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
  let url = `/v1/shelters?near=${encodeURIComponent(q.lat)},${encodeURIComponent(q.lon)}&limit=10&hazard=${encodeURIComponent(q.hazard)}`;
  if (q.onlyOpen) url += '&status=open&has_room=true';
  const res = await api(url, {}, TIMEOUT_MS);
  if (my !== seq) return;
  const body = res.body;
  if (res.net) {
    state.view = 'net';
    state.net = { key: res.net };
  } else if (res.ok && body && Array.isArray(body.shelters)) {
    state.view = 'results';
    state.data = body;
    state.last = { data: body, query: q, at: new Date() };
    const u = new URL(location.href);
    u.searchParams.set('lat', q.lat);
    u.searchParams.set('lon', q.lon);
    u.searchParams.set('hazard', q.hazard);
    history.replaceState(null, '', u);
    watch(q, body);
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
  else results.scrollIntoView({ block: 'start' }); // on a phone the form fills the screen
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

// ---------- live updates ----------
// A place subscription covering the list; a reconnect sends `since` and gets
// exactly what it missed (or a fresh snapshot).

const live = { ws: null, want: null, since: {}, backoff: 1000, timer: null };

function watch(q, data) {
  const far = Math.max(0, ...data.shelters.map((s) => s.distance_m || 0));
  live.want = { lat: Number(q.lat), lon: Number(q.lon), radius_m: Math.min(10000, Math.max(500, far + 100)) };
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

let repaint = 0;
function updateShelter(s) {
  const list = state.data?.shelters || [];
  const i = list.findIndex((x) => x.id === s.id);
  if (i < 0) return;
  list[i] = { ...s, distance_m: list[i].distance_m };
  if (!repaint) repaint = requestAnimationFrame(() => { repaint = 0; if (state.view === 'results') render(); });
}

// ---------- start ----------

form.addEventListener('submit', (e) => { e.preventDefault(); search(); });
$('locate').addEventListener('click', locate);
results.addEventListener('click', (e) => {
  if (e.target.closest('[data-action="retry"]')) search(state.query || readForm());
});
const params = new URLSearchParams(location.search);
const pLat = params.get('lat'), pLon = params.get('lon'), pHaz = params.get('hazard');
latIn.value = pLat ?? NANAO[0];
lonIn.value = pLon ?? NANAO[1];
if (HAZARDS.includes(pHaz)) state.query = { hazard: pHaz };

startLang(render).then(() => { if (pLat && pLon) search(); });
