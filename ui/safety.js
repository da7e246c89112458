// anpi safety page: "I'm safe" for the incident at hand, and finding family
// by phone number or name (exact look-up only); a family waiting for someone
// is told over /v1/live the moment they check in.

import { $, i18n, tr, el, renderStatic, startLang, api, problemOf, randomKey } from './common.js';

const FIELDS = ['phone', 'name', 'statuses', 'shelter_id', 'message'];
const STATUSES = ['safe', 'injured', 'need_help', 'at_home', 'at_shelter', 'evacuating', 'not_in_area'];
const state = { incidents: null, net: null, ci: null, found: null };
// The check-in being sent: a retry of the same one keeps its key, so it is stored once.
const pending = { body: null, key: null };
const live = { ws: null, token: null, timer: null };

const incident = () => encodeURIComponent($('incident').value);
const when = (iso) => { const d = new Date(iso); return el('time', { datetime: d.toISOString() }, d.toLocaleString(i18n.lang, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })); };
const retry = (action) => el('button', { type: 'button', class: 'btn primary', 'data-action': action }, tr('retry'));
const netBox = (key, action) => el('div', { class: 'box err', 'data-testid': 'network-error' }, el('p', {}, tr(key)), retry(action));

function render() {
  renderStatic('s_title');
  const sel = $('incident'), chosen = sel.value;
  sel.replaceChildren(...(state.incidents || []).map((i) => el('option', { value: i.id }, i.name)));
  if (chosen) sel.value = chosen;
  $('incident-msg').textContent = state.net ? tr(state.net) : !state.incidents ? tr('searching') : state.incidents.length ? '' : tr('no_incident');
  const errs = state.ci?.view === 'problem' ? state.ci.problem.errors : [];
  for (const f of FIELDS) {
    const mine = errs.filter((e) => e.field.split(/[.[]/)[0] === f).map((e) => e.message);
    $('err-' + f).textContent = mine.join(' ');
    $('err-' + f).hidden = !mine.length;
  }
  $('ci-result').replaceChildren(...checkinView(state.ci));
  $('found').replaceChildren(...foundView(state.found));
}

function problemBox(p, action) {
  const other = p.errors.filter((e) => !FIELDS.includes(e.field.split(/[.[]/)[0]));
  return el('div', { class: 'box err', 'data-testid': 'problem' },
    el('p', {}, p.detail),
    other.length ? el('ul', {}, other.map((e) => el('li', {}, `${e.field}: ${e.message}`))) : null,
    p.status >= 500 || p.status === 429 ? retry(action) : null);
}

function checkinView(c) {
  if (!c) return [];
  if (c.view === 'sending') return [el('p', { class: 'hint busy' }, tr('sending'))];
  if (c.view === 'net') return [netBox(c.net, 'checkin')];
  if (c.view === 'problem') return [problemBox(c.problem, 'checkin')];
  return [el('div', { class: 'box', 'data-testid': 'checkin-done' },
    el('p', {}, tr('ci_done'), ' ', when(c.receipt.recorded_at)),
    el('p', { class: 'sub' }, tr('ci_next')))];
}

function foundView(f) {
  if (!f) return [];
  if (f.view === 'loading') return [el('p', { class: 'hint busy' }, tr('searching'))];
  if (f.view === 'net') return [netBox(f.net, 'find')];
  if (f.view === 'problem') return [problemBox(f.problem, 'find')];
  const waiting = live.token ? el('p', { class: 'hint live on', 'data-testid': 'waiting' }, tr('waiting')) : null;
  if (!f.people.length) return [el('div', { class: 'box', 'data-testid': 'not-found' }, el('p', {}, tr('not_found'))), waiting];
  return [el('ol', { class: 'shelters' }, f.people.map(person)), waiting];
}

function person(p) {
  const last = p.checkins[0];
  const statuses = last ? last.statuses.map((s) => (STATUSES.includes(s) ? tr('s_' + s) : s)) : [];
  if (last?.pfif_status) statuses.push(tr('pf_' + last.pfif_status));
  return el('li', { class: 'card st-open', 'data-testid': 'person' },
    el('h3', {}, p.name, p.phone_last4 ? el('span', { class: 'alt' }, ` ****${p.phone_last4}`) : null),
    last ? el('p', { 'data-testid': 'person-status' }, statuses.join(i18n.lang === 'ja' ? '、' : ', ')) : el('p', {}, tr('no_checkin')),
    last?.message ? el('p', {}, `“${last.message}”`) : null,
    last ? el('p', { class: 'fresh' }, when(last.recorded_at), last.author_name ? ` — ${tr('by', { who: last.author_name })}` : '') : null);
}

async function checkIn() {
  const statuses = [...document.querySelectorAll('input[name=status]:checked')].map((i) => i.value);
  const body = { phone: $('phone').value, name: $('name').value, statuses };
  if (statuses.includes('at_shelter')) body.shelter_id = $('shelter').value.trim();
  if ($('message').value.trim()) body.message = $('message').value.trim();
  const text = JSON.stringify(body);
  if (text !== pending.body) Object.assign(pending, { body: text, key: randomKey() });
  state.ci = { view: 'sending' };
  render();
  const r = await api(`/v1/incidents/${incident()}/checkins`, {
    method: 'POST', body: text, headers: { 'content-type': 'application/json', 'idempotency-key': pending.key },
  });
  if (r.net) state.ci = { view: 'net', net: r.net };
  else if (r.ok && r.body) state.ci = { view: 'done', receipt: r.body };
  else if (r.body) state.ci = { view: 'problem', problem: problemOf(r) };
  else state.ci = { view: 'net', net: 'net_error' };
  render();
  $('ci-result').scrollIntoView({ block: 'nearest' });
}

async function find(quiet) {
  const phone = $('find-phone').value.trim(), name = $('find-name').value.trim();
  const q = state.found?.q && quiet ? state.found.q : phone ? `phone=${encodeURIComponent(phone)}` : `name=${encodeURIComponent(name)}`;
  if (!quiet) {
    if (!phone && !name) {
      state.found = { view: 'problem', problem: { status: 400, detail: tr('find_need'), errors: [] } };
      return render();
    }
    state.found = { view: 'loading', q };
    render();
  }
  const r = await api(`/v1/incidents/${incident()}/people?${q}`);
  if (r.ok && r.body) {
    state.found = { view: 'done', q, people: r.body.people };
    follow(r.body.watch_token);
  } else if (!quiet) {
    state.found = r.net || !r.body ? { view: 'net', net: r.net || 'net_error' } : { view: 'problem', problem: problemOf(r) };
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

$('checkin').addEventListener('submit', (e) => { e.preventDefault(); checkIn(); });
$('find').addEventListener('submit', (e) => { e.preventDefault(); live.token = null; find(false); });
document.addEventListener('click', (e) => {
  const a = e.target.closest('[data-action]')?.dataset.action;
  if (a === 'checkin') checkIn();
  else if (a === 'find') find(false);
});
const given = new URLSearchParams(location.search).get('shelter');
if (given) $('shelter').value = given;

async function loadIncidents() {
  const r = await api('/v1/incidents?active=true');
  state.net = r.ok && r.body ? null : r.net || 'net_error';
  if (!state.net) state.incidents = r.body.incidents;
  render();
  if (state.net) setTimeout(loadIncidents, 5000);
}
startLang(render).then(loadIncidents);
