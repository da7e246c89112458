// anpi safety page: "I'm safe" for the incident at hand (with the family
// there, at a shelter chosen from the open ones nearby), and finding family
// by phone number or name (exact look-up only); a family waiting for someone
// is told over /v1/live the moment they check in. A check-in made offline
// waits on the phone, with its Idempotency-Key, and is sent once when the
// network is back.

import { $, i18n, tr, el, renderStatic, startLang, api, problemOf, randomKey, watchNews, newsView, ago, saved, offline } from './common.js';

const STATUSES = ['safe', 'injured', 'need_help', 'at_home', 'at_shelter', 'evacuating', 'not_in_area'];
const PLACES = ['at_home', 'at_shelter', 'evacuating', 'not_in_area'];
const OUTBOX = 'anpi.outbox';
const state = { incidents: null, incidentsAt: null, net: null, ci: null, found: null, errors: {}, pick: { list: null, all: null, key: null, busy: false } };
// The check-in being sent: a retry of the same one keeps its key, so it is stored once.
const pending = { body: null, key: null };
const live = { ws: null, token: null, timer: null };
const shelterNames = {};
let chosen = null; // the shelter picked (its id)
let members = 0;

const incident = () => encodeURIComponent($('incident').value);
const when = (iso) => { const d = new Date(iso); return el('time', { datetime: d.toISOString() }, d.toLocaleString(i18n.lang === 'en' ? 'en' : 'ja', { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })); };
const retry = (action) => el('button', { type: 'button', class: 'btn primary', 'data-action': action }, tr('retry'));
const netBox = (key, action) => el('div', { class: 'box err', 'data-testid': 'network-error' }, el('p', {}, tr(key)), retry(action));
const checked = () => [...document.querySelectorAll('input[name=status]:checked')].map((i) => i.value);
const nfkc = (s) => s.normalize('NFKC').trim();
const shelterName = (s) => (i18n.lang === 'en' && s.name_en ? `${s.name_en} (${s.name})` : s.name);

function render() {
  renderStatic('s_title');
  const sel = $('incident'), was = sel.value;
  sel.replaceChildren(...(state.incidents || []).map((i) => el('option', { value: i.id }, i.name)));
  if (was) sel.value = was;
  $('incident-msg').replaceChildren(state.net && !state.incidents ? tr(state.net) : !state.incidents ? tr('searching') : state.incidents.length ? '' : tr('no_incident'),
    state.incidentsAt ? el('span', { 'data-testid': 'saved-at' }, tr('saved_at', { time: ago(new Date(state.incidentsAt)) })) : '');
  renderErrors();
  renderPick();
  renderMembers();
  renderOutbox();
  $('ci-result').replaceChildren(...checkinView(state.ci));
  $('found').replaceChildren(...foundView(state.found));
  renderNews();
}

const renderNews = () => $('news').replaceChildren(...newsView());

// ---------- errors: plain words of the page's language, beside the field ----------
// state.errors: message key per field (phone, name, statuses, shelter_id,
// message, m<i>-name, m<i>-status).

function controls(field) {
  if (field === 'statuses') return [...document.querySelectorAll('input[name=status]')];
  if (field === 'shelter_id') return [...document.querySelectorAll('input[name=shelter]')];
  const m = /^m(\d+)-(name|status)$/.exec(field);
  if (m) return [$(`m${m[1]}-${m[2]}`)].filter(Boolean);
  return [$(field)].filter(Boolean);
}

function renderErrors() {
  for (const p of document.querySelectorAll('#checkin .msg.err')) {
    const key = state.errors[p.id.slice(4)];
    p.textContent = key ? tr(key) : '';
    p.hidden = !key;
  }
  for (const c of document.querySelectorAll('#checkin input, #checkin select')) c.removeAttribute('aria-invalid');
  for (const f of Object.keys(state.errors)) for (const c of controls(f)) c.setAttribute('aria-invalid', 'true');
}

// Focus the first field in error (in the order of the page).
function focusFirstError() {
  const first = [...document.querySelectorAll('#checkin [aria-invalid="true"]')][0];
  (first && !first.closest('[hidden]') ? first : $('pick-locate'))?.focus();
}

// What the phone can tell before sending (and so also when offline).
function check(body, at) {
  const e = {};
  const digits = nfkc(body.phone).replace(/[\s\-()‐－ー]/g, '');
  if (!digits) e.phone = 'ce_phone_empty';
  else if (!/^(0\d{9,10}|\+\d{8,15})$/.test(digits)) e.phone = 'ce_phone';
  if (!nfkc(body.name) || nfkc(body.name).length > 100) e.name = 'ce_name';
  const s = body.statuses;
  if (!s.length) e.statuses = 'ce_statuses_none';
  else if (s.filter((x) => PLACES.includes(x)).length > 1) e.statuses = 'ce_statuses_place';
  else if (s.includes('safe') && s.includes('injured')) e.statuses = 'ce_statuses_safe_injured';
  if (at && !body.shelter_id) e.shelter_id = 'ce_shelter';
  const seen = new Set([nfkc(body.name).replace(/\s+/g, '')]);
  body.household.forEach((m, i) => {
    const k = nfkc(m.name).replace(/\s+/g, '');
    const row = memberRows()[i].dataset.n;
    if (!k) e[`m${row}-name`] = 'ce_member_name';
    else if (seen.has(k)) e[`m${row}-name`] = 'ce_member_dup';
    seen.add(k);
  });
  return e;
}

// The server's field errors, in the page's words (its own are for developers).
function fromServer(errors) {
  const e = {};
  for (const { field } of errors) {
    const m = /^household\[(\d+)\]\.(name|statuses)/.exec(field);
    if (m) {
      const row = memberRows()[Number(m[1])]?.dataset.n;
      if (row) e[`m${row}-${m[2] === 'name' ? 'name' : 'status'}`] ??= m[2] === 'name' ? 'ce_member_name' : 'ce_member_status';
      continue;
    }
    const f = field.split(/[.[]/)[0];
    if (f === 'shelter_id') e.shelter_id ??= chosen ? 'ce_shelter_unknown' : 'ce_shelter';
    else if (f === 'phone' || f === 'name' || f === 'message') e[f] ??= 'ce_' + f;
    else if (f === 'statuses') e.statuses ??= 'ce_statuses';
  }
  return e;
}

// ---------- the shelter: chosen from the open ones nearby, never typed ----------

function renderPick() {
  const at = checked().includes('at_shelter');
  $('pick').hidden = !at;
  const p = state.pick;
  const shown = pickShown();
  $('pick-msg').textContent = p.busy ? tr('searching') : p.net ? tr(p.net) : p.geo ? tr(p.geo) : shown ? (shown.length ? tr('pick_count', { n: shown.length }) : tr('pick_none')) : tr('pick_need_place');
  $('pick-list').replaceChildren(...(shown || []).map((s) => el('label', { class: 'check pick', 'data-testid': 'pick-shelter', 'data-id': s.id },
    el('input', { type: 'radio', name: 'shelter', value: s.id, checked: s.id === chosen, 'aria-describedby': 'err-shelter_id' }),
    el('span', {}, el('span', { lang: i18n.lang === 'en' && s.name_en ? 'en' : 'ja' }, shelterName(s)),
      typeof s.distance_m === 'number' ? el('span', { class: 'alt' }, ' ' + tr('away', { d: s.distance_m < 1000 ? `${Math.round(s.distance_m)} m` : `${(s.distance_m / 1000).toFixed(1)} km` })) : null))));
  if (state.errors.shelter_id) for (const c of controls('shelter_id')) c.setAttribute('aria-invalid', 'true');
}

// The list shown: near the phone (or the shelter given), else the
// municipality's open shelters matching what was typed.
function pickShown() {
  const p = state.pick, q = nfkc($('pick-q').value).toLowerCase();
  if (q && p.all) return p.all.filter((s) => [s.name, s.name_kana, s.name_en, s.address].some((x) => x && x.normalize('NFKC').toLowerCase().includes(q))).slice(0, 20);
  return p.list;
}

async function pickNear(lat, lon, keep) {
  state.pick.busy = true;
  renderPick();
  const r = await api(`/v1/shelters?near=${lat},${lon}&status=open&limit=10`);
  state.pick.busy = false;
  state.pick.net = r.ok && r.body ? null : r.net || 'net_error';
  if (!state.pick.net) {
    const list = r.body.shelters;
    if (keep && !list.some((s) => s.id === keep.id)) list.unshift(keep);
    state.pick.list = list;
    for (const s of list) shelterNames[s.id] = s;
  }
  renderPick();
}

function pickLocate() {
  state.pick.geo = null;
  if (!navigator.geolocation || !window.isSecureContext) { state.pick.geo = 'geo_unsupported'; return renderPick(); }
  state.pick.busy = true;
  renderPick();
  navigator.geolocation.getCurrentPosition((pos) => pickNear(pos.coords.latitude.toFixed(5), pos.coords.longitude.toFixed(5)),
    (err) => { state.pick.busy = false; state.pick.geo = err.code === 1 ? 'geo_denied' : 'geo_unavailable'; renderPick(); },
    { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 });
}

async function pickTyped() {
  if (!state.pick.all && !state.pick.loadingAll) {
    state.pick.loadingAll = true;
    const codes = [...new Set((state.incidents || []).flatMap((i) => i.municipalities || []))];
    const got = await Promise.all(codes.map((c) => api(`/v1/shelters?municipality=${c}&status=open&limit=1000`)));
    state.pick.loadingAll = false;
    if (got.every((r) => r.ok && r.body)) state.pick.all = got.flatMap((r) => r.body.shelters);
  }
  renderPick();
}

// Arriving from a shelter's "I am here": ticked, and that shelter chosen.
async function pickGiven(id) {
  $('checkin').querySelector('input[value=at_shelter]').checked = true;
  chosen = id;
  const r = await api(`/v1/shelters/${encodeURIComponent(id)}`);
  if (r.ok && r.body?.location) {
    shelterNames[id] = r.body;
    await pickNear(r.body.location.lat, r.body.location.lon, r.body);
  } else if (r.ok && r.body) {
    state.pick.list = [r.body];
    renderPick();
  }
}

// ---------- household ----------

const memberRows = () => [...$('members').children];

function addMember() {
  const n = ++members;
  const row = el('div', { class: 'member', 'data-n': n, 'data-testid': 'member' },
    el('label', { for: `m${n}-name`, 'data-tr': 'member_name' }),
    el('input', { id: `m${n}-name`, autocomplete: 'off', 'aria-describedby': `err-m${n}-name` }),
    el('p', { id: `err-m${n}-name`, class: 'msg err', hidden: true }),
    el('label', { for: `m${n}-status`, 'data-tr': 'member_status' }),
    el('select', { id: `m${n}-status`, 'aria-describedby': `err-m${n}-status` }),
    el('p', { id: `err-m${n}-status`, class: 'msg err', hidden: true }),
    el('button', { type: 'button', class: 'btn secondary', 'data-action': 'member-remove' }));
  $('members').append(row);
  renderMembers();
  $(`m${n}-name`).focus();
}

function renderMembers() {
  memberRows().forEach((row, i) => {
    for (const l of row.querySelectorAll('[data-tr]')) l.textContent = tr(l.dataset.tr, { n: i + 1 });
    const sel = row.querySelector('select'), v = sel.value || 'same';
    sel.replaceChildren(...['same', 'safe', 'injured', 'need_help'].map((s) => el('option', { value: s }, tr(s === 'same' ? 'member_same' : 's_' + s))));
    sel.value = v;
    const b = row.querySelector('button');
    b.textContent = tr('member_remove');
    b.setAttribute('aria-label', `${tr('member_remove')}: ${tr('member_name', { n: i + 1 })}`);
  });
}

// A member's statuses: as chosen, where I am.
function memberStatuses(choice, mine) {
  if (choice === 'same') return mine;
  return [choice, ...mine.filter((s) => PLACES.includes(s))];
}

// ---------- the check-in, and the outbox for when there is no network ----------

const outbox = () => { try { return JSON.parse(saved(OUTBOX) || '[]'); } catch { return []; } };
const setOutbox = (list) => saved(OUTBOX, JSON.stringify(list));

function renderOutbox() {
  const n = outbox().length;
  $('outbox').hidden = !n;
  $('outbox').textContent = n ? tr('queued_n', { n }) : '';
}

function checkinView(c) {
  if (!c) return [];
  if (c.view === 'sending') return [el('p', { class: 'hint busy' }, tr('sending'))];
  if (c.view === 'queued') return [el('div', { class: 'box queued', 'data-testid': 'checkin-queued' }, el('p', {}, tr('queued')))];
  if (c.view === 'net') return [netBox(c.net, 'checkin')];
  if (c.view === 'invalid') return [el('div', { class: 'box err', 'data-testid': 'problem' }, el('p', {}, tr('ce_fix')))];
  if (c.view === 'problem') {
    return [el('div', { class: 'box err', 'data-testid': 'problem' }, el('p', {}, tr(c.problem.status === 429 || c.problem.status >= 500 ? 'timeout' : 'ce_other')),
      c.problem.status >= 500 || c.problem.status === 429 ? retry('checkin') : null)];
  }
  return [el('div', { class: 'box', 'data-testid': 'checkin-done' },
    el('p', {}, tr('ci_done'), ' ', when(c.receipt.recorded_at)),
    el('p', { class: 'sub' }, tr('ci_next')))];
}

function readCheckin() {
  const statuses = checked();
  const body = { phone: $('phone').value, name: $('name').value, statuses };
  if (statuses.includes('at_shelter')) {
    chosen = document.querySelector('input[name=shelter]:checked')?.value || chosen;
    if (chosen) body.shelter_id = chosen;
  }
  if ($('message').value.trim()) body.message = $('message').value.trim();
  body.household = memberRows().map((row) => ({ name: row.querySelector('input').value, statuses: memberStatuses(row.querySelector('select').value, statuses) }));
  return body;
}

async function checkIn() {
  const body = readCheckin();
  state.errors = check(body, body.statuses.includes('at_shelter'));
  if (Object.keys(state.errors).length) {
    state.ci = { view: 'invalid' };
    render();
    return focusFirstError();
  }
  const text = JSON.stringify(body);
  if (text !== pending.body) Object.assign(pending, { body: text, key: randomKey() });
  const item = { incident: $('incident').value, body: text, key: pending.key };
  state.ci = { view: 'sending' };
  render();
  const r = await send(item);
  if (r.net) {
    // Kept on the phone with its key; sent (once) when the network is back.
    if (!outbox().some((x) => x.key === item.key)) setOutbox([...outbox(), item]);
    state.ci = { view: 'queued' };
    scheduleFlush();
  } else show(r);
  render();
  if (state.ci.view === 'problem' && Object.keys(state.errors).length) focusFirstError();
  else $('ci-result').scrollIntoView({ block: 'nearest' });
}

const send = (item) => api(`/v1/incidents/${encodeURIComponent(item.incident)}/checkins`, {
  method: 'POST', body: item.body, headers: { 'content-type': 'application/json', 'idempotency-key': item.key },
});

function show(r) {
  state.errors = {};
  if (r.ok && r.body) state.ci = { view: 'done', receipt: r.body };
  else if (r.body) {
    state.ci = { view: 'problem', problem: problemOf(r) };
    state.errors = fromServer(state.ci.problem.errors);
  } else state.ci = { view: 'net', net: 'net_error' };
}

// Sends what waits, oldest first; each stays until the server has answered it.
let flushing = false, flushTimer = 0;
async function flush() {
  if (flushing) return;
  flushing = true;
  try {
    for (const item of outbox()) {
      const r = await send(item);
      if (r.net || r.status === 429 || r.status >= 500) break;
      setOutbox(outbox().filter((x) => x.key !== item.key));
      if (state.ci?.view === 'queued' || !state.ci) { show(r); render(); }
    }
  } finally {
    flushing = false;
    renderOutbox();
    if (outbox().length) scheduleFlush();
  }
}
function scheduleFlush() { clearTimeout(flushTimer); flushTimer = setTimeout(flush, 15000); }

// ---------- finding family ----------

function foundView(f) {
  if (!f) return [];
  if (f.view === 'loading') return [el('p', { class: 'hint busy' }, tr('searching'))];
  if (f.view === 'net') return [netBox(f.net, 'find')];
  if (f.view === 'problem') return [el('div', { class: 'box err', 'data-testid': 'problem' }, el('p', {}, tr(f.problem.key || 'ce_other')))];
  const waiting = live.token ? el('p', { class: 'hint live on', 'data-testid': 'waiting' }, tr('waiting')) : null;
  if (!f.people.length) return [el('div', { class: 'box', 'data-testid': 'not-found' }, el('p', {}, tr('not_found'))), waiting];
  return [el('ol', { class: 'shelters' }, f.people.map(person)), waiting];
}

function person(p) {
  const last = p.checkins[0];
  const statuses = last ? last.statuses.map((s) => (STATUSES.includes(s) ? tr('s_' + s) : s)) : [];
  if (last?.pfif_status) statuses.push(tr('pf_' + last.pfif_status));
  const sh = last?.shelter_id && shelterNames[last.shelter_id];
  if (last?.shelter_id && !sh) nameShelter(last.shelter_id);
  return el('li', { class: 'card st-open', 'data-testid': 'person' },
    el('h3', {}, p.name, p.phone_last4 ? el('span', { class: 'alt' }, ` ****${p.phone_last4}`) : null),
    last ? el('p', { 'data-testid': 'person-status' }, statuses.join(i18n.lang === 'en' ? ', ' : '、')) : el('p', {}, tr('no_checkin')),
    sh ? el('p', { 'data-testid': 'person-shelter' }, tr('person_shelter', { name: shelterName(sh) })) : null,
    last?.message ? el('p', {}, `“${last.message}”`) : null,
    last ? el('p', { class: 'fresh' }, when(last.recorded_at), last.author_name ? ` — ${tr('by', { who: last.author_name })}` : '') : null);
}

// The look-up gives a shelter's id: its name comes from the shelter itself.
async function nameShelter(id) {
  if (shelterNames[id] !== undefined) return;
  shelterNames[id] = null;
  const r = await api(`/v1/shelters/${encodeURIComponent(id)}`);
  if (r.ok && r.body?.name) { shelterNames[id] = r.body; render(); } else delete shelterNames[id];
}

async function find(quiet) {
  const phone = $('find-phone').value.trim(), name = $('find-name').value.trim();
  const q = state.found?.q && quiet ? state.found.q : phone ? `phone=${encodeURIComponent(phone)}` : `name=${encodeURIComponent(name)}`;
  if (!quiet) {
    if (!phone && !name) {
      state.found = { view: 'problem', problem: { key: 'find_need' } };
      render();
      return $('find-phone').focus();
    }
    state.found = { view: 'loading', q };
    render();
  }
  const r = await api(`/v1/incidents/${incident()}/people?${q}`);
  if (r.ok && r.body) {
    state.found = { view: 'done', q, people: r.body.people };
    follow(r.body.watch_token);
  } else if (!quiet) {
    state.found = r.net || !r.body ? { view: 'net', net: r.net || 'net_error' }
      : { view: 'problem', problem: { key: problemOf(r).errors.some((e) => e.field === 'phone') ? 'ce_phone' : 'ce_other' } };
  }
  render();
}

// Told of every later check-in matching the look-up: look again then.
function follow(token) {
  if (live.token === token || !('WebSocket' in window)) return;
  live.token = token;
  live.ws?.close();
  const connect = () => {
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/live`);
    live.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ op: 'subscribe', id: 'person', channels: [`person:${token}`] }));
    ws.onmessage = (e) => { if (JSON.parse(e.data).op === 'event') find(true); };
    // Reconnected: what came meanwhile is found by looking again.
    ws.onclose = () => { if (live.ws === ws && live.token === token) live.timer = setTimeout(() => { connect(); find(true); }, 3000); };
  };
  clearTimeout(live.timer);
  connect();
}

// ---------- start ----------

$('checkin').addEventListener('submit', (e) => { e.preventDefault(); checkIn(); });
$('find').addEventListener('submit', (e) => { e.preventDefault(); live.token = null; find(false); });
$('statuses').addEventListener('change', () => renderPick());
$('pick-list').addEventListener('change', (e) => { if (e.target.name === 'shelter') chosen = e.target.value; });
$('pick-locate').addEventListener('click', pickLocate);
$('pick-q').addEventListener('input', pickTyped);
$('member-add').addEventListener('click', addMember);
document.addEventListener('click', (e) => {
  const b = e.target.closest('[data-action]'), a = b?.dataset.action;
  if (a === 'checkin') checkIn();
  else if (a === 'find') find(false);
  else if (a === 'member-remove') { b.closest('.member').remove(); renderMembers(); $('member-add').focus(); }
});
addEventListener('online', flush);
// The first visit: once the service worker is in charge, the incidents pass it once, so it keeps them.
navigator.serviceWorker?.addEventListener('controllerchange', () => { if (state.incidents) api('/v1/incidents?active=true'); });

async function loadIncidents(asked) {
  const r = await (asked ?? api('/v1/incidents?active=true'));
  state.net = r.ok && r.body ? null : r.net || 'net_error';
  if (!state.net) { state.incidents = r.body.incidents; state.incidentsAt = r.at; }
  render();
  if (state.net) setTimeout(loadIncidents, 5000);
  else watchNews(state.incidents.flatMap((i) => i.municipalities || []), renderNews);
}
const given = new URLSearchParams(location.search).get('shelter');
// Asked at once, beside the dictionary (the page preloads both), shown once the words are in.
const firstIncidents = api('/v1/incidents?active=true');
startLang(render).then(async () => {
  offline();
  await loadIncidents(firstIncidents);
  if (given) pickGiven(given);
  if (outbox().length) { state.ci = { view: 'queued' }; render(); flush(); }
});
