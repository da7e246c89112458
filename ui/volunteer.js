// anpi volunteer page: signed in from the link a coordinator hands over
// (#token=…, kept on the phone, taken out of the address), it lists the open
// requests near a place, kept current over /v1/live; a claim shows the
// contact and the exact place; "my claims" are delivered or released.

import { $, i18n, tr, trNodes, el, renderStatic, startLang, saved } from './common.js';
import { CATS, show, who, call, number, markErrors, problemBox, netBox, fill, when, items, badge, word, dist, stamp, keepFocus, live, liveLine } from './aidlib.js';

const TOKEN = 'anpi.volunteer.token';
const RADII = [1000, 3000, 5000, 10000];
const OPEN = ['open', 'partially_claimed'];
const enc = encodeURIComponent;
const state = {
  token: saved(TOKEN) || null, me: null, meErr: null, query: null, list: new Map(), view: 'idle', problem: null, net: null,
  geo: null, live: null, claims: null, claimsErr: null, msgs: {}, qty: {}, why: {}, releasing: null,
};
const seen = new Map(); // request id → the newest updated_at applied
let touched = null, seq = 0, stopLive = null, claimsTimer = 0;

// ---------- rendering ----------

function render(focus) {
  renderStatic('v_title');
  fill($('category'), CATS, 'cat_', 'v_all');
  const r = $('radius'), was = r.value || '5000';
  r.replaceChildren(...RADII.map((m) => el('option', { value: m }, dist(m))));
  r.value = was;
  $('geo-msg').textContent = state.geo ? tr(state.geo.key, state.geo.vars) : '';
  $('geo-msg').classList.toggle('err', !!state.geo?.err);
  show($('me'), meView());
  $('paste').hidden = !!state.me;
  keepFocus(() => {
    const rest = markErrors($('near'), state.view === 'problem' ? state.problem.errors : [], focus);
    show($('list'), listView(rest));
    show($('claims'), claimsView());
  });
}

function meView() {
  if (!state.token) return [el('p', { class: 'box', 'data-testid': 'signed-out' }, tr('v_no_token'))];
  if (state.meErr) return [state.meErr.problem ? problemBox(state.meErr.problem, 'me') : netBox(state.meErr.net, 'me'), signOut()];
  if (!state.me) return [el('p', { class: 'hint busy' }, tr('searching'))];
  return [el('p', { 'data-testid': 'me' }, who(state.me)), signOut()];
}
const signOut = () => el('button', { type: 'button', class: 'btn secondary', 'data-action': 'out' }, tr('sign_out'));

function listView(rest) {
  const v = state.view;
  if (v === 'idle') return [el('p', { class: 'hint' }, tr('v_idle'))];
  if (v === 'loading') return [el('p', { class: 'hint busy' }, tr('searching'))];
  if (v === 'problem') return [problemBox(state.problem, 'list', 'search', rest)];
  if (v === 'net') return [netBox(state.net, 'search')];
  const list = [...state.list.values()].sort((a, b) => a.distance_m - b.distance_m);
  return [liveLine(state.live),
    list.length ? el('ol', { class: 'shelters', 'data-testid': 'request-list' }, list.map(requestCard))
      : el('p', { class: 'box', 'data-testid': 'empty' }, tr('v_empty'))];
}

function requestCard(x) {
  const m = state.msgs[x.id];
  const li = el('li', { class: 'card st-open', 'data-testid': 'request', 'data-id': x.id, 'data-remaining': x.remaining },
    el('div', { class: 'top' }, el('h3', {}, word('cat_', x.category)), el('span', { class: 'dist' }, tr('v_away', { d: dist(x.distance_m) }))),
    el('p', { class: 'meta' }, el('span', { class: `badge u-${x.urgency}` }, word('u_', x.urgency)), ' ', badge('rs_', x.status, 'st-open')),
    el('p', {}, items(x.items)),
    el('p', { 'data-testid': 'remaining' }, tr('v_left', { r: x.remaining, q: x.quantity })),
    x.note ? el('p', { class: 'note' }, x.note) : null,
    el('p', { class: 'fresh' }, trNodes('confirmed_anon', { time: when(x.confirmed_at) }), x.stale ? ` — ${tr('v_stale')}` : ''),
    state.me ? el('form', { class: 'row', 'data-claim': x.id, novalidate: true },
      el('div', {}, el('label', { for: `q-${x.id}` }, tr('v_qty')),
        el('input', { id: `q-${x.id}`, 'data-field': 'quantity', 'data-q': x.id, inputmode: 'numeric', autocomplete: 'off', value: state.qty[x.id] ?? x.remaining })),
      el('button', { type: 'submit', class: 'btn primary' }, tr('v_claim'))) : null,
    cardMsg(m));
  if (m?.problem) markErrors(li, m.problem.errors, false, x.id);
  return li;
}

function claimsView() {
  if (!state.me) return [el('p', { class: 'hint' }, tr('v_need_token'))];
  if (state.claimsErr) return [state.claimsErr.problem ? problemBox(state.claimsErr.problem, 'claims', 'claims') : netBox(state.claimsErr.net, 'claims')];
  if (!state.claims) return [el('p', { class: 'hint busy' }, tr('searching'))];
  if (!state.claims.length) return [el('p', { class: 'hint', 'data-testid': 'no-claims' }, tr('v_no_claims'))];
  return [el('ol', { class: 'shelters' }, state.claims.map(claimCard))];
}

function claimCard({ claim: c, request: q }) {
  const m = state.msgs[c.id], open = c.status === 'live', btn = (a, k) => el('button', { type: 'button', class: 'btn secondary', 'data-action': a, 'data-id': c.id }, tr(k));
  const showPlace = open || c.status === 'delivered';
  const li = el('li', { class: `card st-${open ? 'open' : 'closed'}`, 'data-testid': 'claim', 'data-id': c.id, 'data-request': q.id, 'data-status': c.status },
    el('h3', { id: `c-${c.id}`, tabindex: '-1' }, word('cat_', q.category), ' ', badge('cs_', c.status, open ? 'st-open' : '')),
    el('p', {}, items(q.items)),
    el('p', {}, tr('v_took', { n: c.quantity, q: q.quantity })),
    q.contact?.phone ? el('p', {}, tr('v_phone'), ' ', el('a', { href: `tel:${q.contact.phone.replace(/[^\d+]/g, '')}`, 'data-testid': 'contact-phone' }, q.contact.phone)) : null,
    q.contact?.text ? el('p', { 'data-testid': 'contact-text' }, tr('v_contact', { c: q.contact.text })) : null,
    showPlace ? el('p', { 'data-testid': 'place' }, tr('v_place'), ' ',
      el('a', { href: `geo:${q.at.lat},${q.at.lon}` }, `${q.at.lat.toFixed(5)}, ${q.at.lon.toFixed(5)}`), q.shelter_id ? ` (${q.shelter_id})` : '') : null,
    q.note ? el('p', { class: 'note' }, q.note) : null,
    open ? el('p', {}, trNodes('v_due', { time: when(c.due_at) })) : null,
    c.reason ? el('p', {}, tr('v_reason_is', { r: c.reason })) : null,
    open && state.releasing !== c.id ? el('p', { class: 'actions' }, btn('delivered', 'v_delivered'), btn('release', 'v_release')) : null,
    open && state.releasing === c.id ? el('form', { 'data-release': c.id, novalidate: true },
      el('label', { for: `r-${c.id}` }, tr('v_reason')),
      el('input', { id: `r-${c.id}`, 'data-field': 'reason', 'data-why': c.id, maxlength: 200, autocomplete: 'off', value: state.why[c.id] }),
      el('p', { class: 'actions' }, el('button', { type: 'submit', class: 'btn primary' }, tr('v_release_yes')), btn('keep', 'v_keep'))) : null,
    cardMsg(m));
  if (m?.problem) markErrors(li, m.problem.errors, false, c.id);
  return li;
}

function cardMsg(m) {
  if (!m) return null;
  if (m.busy) return el('p', { class: 'hint busy' }, tr('sending'));
  if (m.problem) return problemBox(m.problem, m.what, null, m.problem.errors.filter((e) => e.field !== 'quantity' && e.field !== 'reason'));
  if (m.net) return netBox(m.net);
  return el('p', { class: 'msg', role: 'status', 'data-testid': 'done' }, tr(m.key));
}

// ---------- signing in ----------

function takeToken(raw) {
  let t = (/token=([^&\s]+)/.exec(raw)?.[1] || raw).trim();
  try { t = decodeURIComponent(t); } catch { /* as typed */ }
  if (!t) return;
  state.token = t;
  saved(TOKEN, state.token);
  loadMe();
}

async function loadMe() {
  Object.assign(state, { me: null, meErr: null, claims: null, claimsErr: null });
  render();
  const r = await call('GET', '/v1/me', undefined, state.token);
  if (r.ok) {
    state.me = r.body;
    loadClaims();
    if (state.query && state.view === 'ok') watch();
  } else state.meErr = r;
  render();
}

function out() {
  try { localStorage.removeItem(TOKEN); } catch { /* private mode */ }
  Object.assign(state, { token: null, me: null, meErr: null, claims: null, msgs: {} });
  if (state.query && state.view === 'ok') watch();
  render();
}

// ---------- the list, kept current ----------

function readQuery() {
  let lat = $('lat').value.normalize('NFKC').trim(), lon = $('lon').value.normalize('NFKC').trim();
  if (!lon && lat.includes(',')) [lat, lon] = lat.split(',').map((x) => x.trim());
  return { lat, lon, radius: Number($('radius').value) || 5000, category: $('category').value };
}

async function search() {
  const q = state.query = readQuery();
  stopLive?.();
  stopLive = null;
  state.live = null;
  state.view = 'loading';
  render();
  if (await fetchList(false) && state.query === q) watch();
  render(true);
}

// Fetches the list. Quietly (after a live resync), it merges: what a live
// event changed meanwhile is newer than the answer and stays.
async function fetchList(quiet) {
  const q = state.query, my = ++seq;
  touched = new Set();
  const r = await call('GET', `/v1/aid/requests?near=${enc(q.lat)},${enc(q.lon)}&radius_m=${q.radius}&limit=100${q.category ? `&category=${q.category}` : ''}`);
  if (my !== seq) return false;
  if (r.ok) {
    if (!quiet) { state.list.clear(); seen.clear(); }
    const fresh = new Set(r.body.requests.map((x) => x.id));
    for (const id of state.list.keys()) if (!fresh.has(id) && !touched.has(id)) state.list.delete(id);
    for (const x of r.body.requests) put(x, false);
    state.view = 'ok';
  } else if (!quiet) Object.assign(state, r.problem ? { view: 'problem', problem: r.problem } : { view: 'net', net: r.net });
  touched = null;
  render();
  return !!r.ok;
}

// One request's public view: kept when it can still be claimed and is within
// the place and category looked for; gone otherwise.
function put(x, live) {
  const s = stamp(x.updated_at), q = state.query;
  if (!q || seen.get(x.id) > s) return;
  seen.set(x.id, s);
  if (live) touched?.add(x.id);
  const d = x.distance_m ?? metres(q, x.place);
  const keep = !x.hidden && OPEN.includes(x.status) && (!q.category || x.category === q.category) && d <= q.radius;
  if (keep) state.list.set(x.id, { ...x, distance_m: d });
  else state.list.delete(x.id);
}

function metres(q, p) {
  const r = Math.PI / 180, a = Number(q.lat) * r, b = p.lat * r;
  const h = Math.sin((b - a) / 2) ** 2 + Math.cos(a) * Math.cos(b) * Math.sin(((p.lon - Number(q.lon)) * r) / 2) ** 2;
  return 12742018 * Math.asin(Math.sqrt(h));
}

function watch() {
  stopLive?.();
  const q = state.query, inbox = state.me?.inbox;
  stopLive = live(() => ({ near: { lat: Number(q.lat), lon: Number(q.lon), radius_m: Math.min(q.radius, 10000) }, channels: inbox ? [inbox] : [] }),
    (f) => {
      if (f.kind === 'aid.request') put(f.data, true);
      if (f.channel.startsWith('inbox:')) { clearTimeout(claimsTimer); claimsTimer = setTimeout(loadClaims, 300); }
      render();
    },
    async () => { await fetchList(true); if (inbox) loadClaims(); setLive('on'); },
    setLive);
}

function setLive(s) {
  state.live = s;
  render();
}

// ---------- claims ----------

async function loadClaims() {
  if (!state.me) return;
  const r = await call('GET', '/v1/aid/claims', undefined, state.token);
  if (r.ok) Object.assign(state, { claims: r.body, claimsErr: null });
  else state.claimsErr = r;
  render();
}

async function claim(id) {
  const x = state.list.get(id);
  state.msgs[id] = { busy: true };
  render();
  const r = await call('POST', `/v1/aid/requests/${enc(id)}/claims`, { quantity: number(String(state.qty[id] ?? x?.remaining ?? '')) }, state.token);
  if (r.ok) {
    const c = r.body.claim;
    delete state.msgs[id];
    delete state.qty[id];
    state.claims = [r.body, ...(state.claims || []).filter((a) => a.claim.id !== c.id)];
    state.msgs[c.id] = { key: 'v_did_claim' };
    put(r.body.request, true);
    render();
    $(`c-${c.id}`).focus();
    return;
  }
  state.msgs[id] = r.problem ? { problem: r.problem, what: 'claim' } : { net: r.net };
  if (r.problem?.status === 409) {
    delete state.qty[id];
    const now = await call('GET', `/v1/aid/requests/${enc(id)}`);
    if (now.ok) put(now.body, true);
    else if (now.problem?.status === 404) state.list.delete(id);
  }
  render();
  if (r.problem?.errors.some((e) => e.field === 'quantity')) $(`q-${id}`)?.focus();
}

async function finish(id, what, reason) {
  state.msgs[id] = { busy: true };
  render();
  const r = await call('POST', `/v1/aid/claims/${enc(id)}/${what}`, what === 'release' ? { reason } : undefined, state.token);
  if (r.ok) {
    const a = state.claims.find((x) => x.claim.id === id);
    if (a) a.claim = r.body;
    state.releasing = null;
    state.msgs[id] = { key: `v_did_${what}` };
  } else state.msgs[id] = r.problem ? { problem: r.problem, what: 'close' } : { net: r.net };
  render();
  if (r.problem?.errors.some((e) => e.field === 'reason')) $(`r-${id}`)?.focus();
  else $(`c-${id}`)?.focus();
  if (r.ok || r.problem?.status === 409) loadClaims();
}

function locate() {
  if (!navigator.geolocation || !window.isSecureContext) {
    state.geo = { key: 'geo_unsupported', err: true };
    return render();
  }
  state.geo = { key: 'locating' };
  render();
  navigator.geolocation.getCurrentPosition((pos) => {
    $('lat').value = pos.coords.latitude.toFixed(5);
    $('lon').value = pos.coords.longitude.toFixed(5);
    state.geo = { key: 'geo_ok', vars: { acc: Math.round(pos.coords.accuracy) } };
    search();
  }, (err) => {
    state.geo = { key: err.code === 1 ? 'geo_denied' : err.code === 3 ? 'geo_timeout' : 'geo_unavailable', err: true };
    render();
  }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 });
}

// ---------- start ----------

$('near').addEventListener('submit', (e) => { e.preventDefault(); search(); });
$('paste').addEventListener('submit', (e) => { e.preventDefault(); takeToken($('paste-in').value); $('paste-in').value = ''; });
$('locate').addEventListener('click', locate);
// What is typed in the cards outlives their redrawing (live updates redraw them).
document.addEventListener('input', (e) => {
  const { q, why } = e.target.dataset;
  if (q) state.qty[q] = e.target.value;
  if (why) state.why[why] = e.target.value;
});
document.addEventListener('submit', (e) => {
  const f = e.target, id = f.dataset.claim || f.dataset.release;
  if (!id) return;
  e.preventDefault();
  if (f.dataset.claim) claim(id);
  else finish(id, 'release', $(`r-${id}`).value.trim());
});
document.addEventListener('click', (e) => {
  const b = e.target.closest('[data-action]');
  const a = b?.dataset.action, id = b?.dataset.id;
  if (a === 'search') search();
  else if (a === 'me') loadMe();
  else if (a === 'claims') loadClaims();
  else if (a === 'out') out();
  else if (a === 'delivered') finish(id, 'delivered');
  else if (a === 'release' || a === 'keep') {
    state.releasing = a === 'release' ? id : null;
    delete state.msgs[id];
    render();
    $(a === 'release' ? `r-${id}` : `c-${id}`)?.focus();
  }
});

// The sign-in link's token: kept on this phone, out of the address (and history).
const fromLink = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromLink) {
  state.token = fromLink;
  saved(TOKEN, fromLink);
  history.replaceState(null, '', location.pathname + location.search);
}
startLang(render, 'aid', 'volunteer').then(() => { if (state.token) loadMe(); });
