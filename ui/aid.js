// anpi "ask for help": a resident asks for supplies or hands, without an
// account. The answer's edit link (request id and edit key) is kept on the
// phone; opened (#request=ID&key=KEY) it shows the request, its claims live
// (the request's inbox over /v1/live), and lets the requester reconfirm,
// confirm receipt or withdraw.

import { $, i18n, tr, trNodes, el, renderStatic, startLang, saved, randomKey } from './common.js';
import { CATS, URGENCIES, show, keepFocus, call, number, markErrors, problemBox, netBox, fill, when, items, badge, word, stamp, live, liveLine } from './aidlib.js';

const MINE = 'anpi.aid.mine';
const ACTIVE = ['open', 'partially_claimed', 'claimed'];
const form = $('ask'), lines = $('lines');
const state = { shelter: null, shelterMsg: null, geo: null, send: null, manage: null, live: null };
const enc = encodeURIComponent;
let lineNo = 0;

// ---------- the requests kept on this phone ----------

const mine = () => { try { return JSON.parse(saved(MINE) || '[]'); } catch { return []; } };
function remember(id, key, category, at) {
  const old = mine().find((m) => m.id === id) || {};
  saved(MINE, JSON.stringify([{ ...old, id, key, category: category || old.category, at: at || old.at }, ...mine().filter((m) => m.id !== id)].slice(0, 20)));
}
const linkOf = (m) => `aid.html#request=${enc(m.id)}&key=${enc(m.key)}`;

// ---------- rendering ----------

function render(focus) {
  keepFocus(() => draw(focus));
}

function draw(focus) {
  renderStatic('a_title');
  fill($('category'), CATS, 'cat_', 'a_choose');
  fill($('urgency'), URGENCIES, 'u_', null, 'normal');
  [...lines.children].forEach((l, i) => l.setAttribute('aria-label', tr('a_line', { n: i + 1 })));
  const s = state.shelter;
  $('shelter-msg').textContent = s ? tr('a_shelter_is', { name: i18n.lang === 'en' && s.name_en ? `${s.name_en} (${s.name})` : s.name })
    : state.shelterMsg ? tr(state.shelterMsg) : '';
  $('geo-msg').textContent = state.geo ? tr(state.geo.key, state.geo.vars) : '';
  $('geo-msg').classList.toggle('err', !!state.geo?.err);
  const m = state.manage;
  form.hidden = !!m;
  $('manage').hidden = !m;
  show($('manage'), m ? manageView(m) : []);
  const kept = mine();
  $('mine').replaceChildren(...(!m && kept.length ? [el('h2', {}, tr('a_mine')),
    el('ul', {}, kept.map((k) => el('li', { 'data-testid': 'kept' }, el('a', { href: linkOf(k) }, word('cat_', k.category || ''), k.at ? [' — ', when(k.at)] : ''))))] : []));
  const c = state.send;
  const rest = markErrors(form, c?.view === 'problem' ? c.problem.errors : [], focus);
  $('result').replaceChildren(...(!c || m ? [] : c.view === 'sending' ? [el('p', { class: 'hint busy' }, tr('sending'))]
    : c.view === 'net' ? [netBox(c.net, 'send')]
      : c.view === 'problem' ? [problemBox(c.problem, 'send', 'send', rest)] : sentView(c.posted)));
  if (focus && c?.view === 'done') $('sent-h').focus();
  else if (focus && (c?.view === 'net' || rest.length === c?.problem?.errors.length)) $('result').scrollIntoView({ block: 'nearest' });
}

function sentView(p) {
  const link = new URL(p.edit_link, location.href).href;
  return [el('div', { class: 'box', 'data-testid': 'sent' },
    el('h2', { id: 'sent-h', tabindex: '-1' }, tr('a_sent')),
    el('p', {}, tr('a_sent_keep')),
    el('label', { for: 'edit-link' }, tr('a_edit_link')),
    el('input', { id: 'edit-link', readonly: true, value: link, 'data-testid': 'edit-link' }),
    el('p', { class: 'actions' }, el('a', { class: 'btn secondary', href: p.edit_link }, tr('a_open'))))];
}

function manageView(m) {
  if (m.view === 'loading') return [el('p', { class: 'hint busy' }, tr('searching'))];
  if (m.view === 'bad') return [el('div', { class: 'box err', role: 'alert', 'data-testid': 'bad-link' }, el('p', {}, tr('a_bad_link')))];
  if (m.view === 'problem') return [problemBox(m.problem, 'load', 'load')];
  if (m.view === 'net') return [netBox(m.net, 'load')];
  const q = m.req, active = ACTIVE.includes(q.status), btn = (a, k) => el('button', { type: 'button', class: 'btn secondary', 'data-action': a }, tr(k));
  const msg = m.msg?.problem ? problemBox(m.msg.problem, m.msg.what) : m.msg?.net ? netBox(m.msg.net)
    : m.msg ? el('p', { class: 'msg', role: 'status', 'data-testid': 'action-done' }, tr(m.msg.key)) : null;
  return [
    el('h2', { id: 'yours', tabindex: '-1' }, tr('a_yours')),
    el('div', { class: `card st-${active ? 'open' : 'closed'}`, 'data-testid': 'request', 'data-status': q.status },
      el('h3', {}, word('cat_', q.category), ' ', badge('rs_', q.status, active ? 'st-open' : '')),
      el('p', {}, items(q.items)),
      el('p', { 'data-testid': 'progress' }, tr('a_progress', { q: q.quantity, c: q.claimed, r: q.remaining })),
      el('p', {}, tr('a_urgency_is', { u: word('u_', q.urgency) })),
      el('p', {}, tr('a_at', { lat: q.at.lat.toFixed(5), lon: q.at.lon.toFixed(5) }), q.shelter_id ? ` (${q.shelter_id})` : ''),
      q.note ? el('p', {}, q.note) : null,
      q.contact ? el('p', {}, tr('a_contact_is', { c: [q.contact.phone, q.contact.text].filter(Boolean).join(' / ') })) : null,
      el('p', { class: 'fresh', 'data-testid': 'confirmed', 'data-at': q.confirmed_at }, trNodes('confirmed_anon', { time: when(q.confirmed_at) })),
      q.stale && active ? el('p', { class: 'err', 'data-testid': 'stale' }, tr('a_stale')) : null),
    el('h3', {}, tr('a_claims')),
    q.claims.length ? el('ul', {}, q.claims.map((c) => el('li', { 'data-testid': 'claim', 'data-status': c.status },
      tr('a_claim', { n: c.quantity }), ' ', badge('cs_', c.status), c.reason ? ` — ${c.reason}` : '')))
      : el('p', { class: 'hint', 'data-testid': 'no-claims' }, tr('a_no_claims')),
    liveLine(active ? state.live : null),
    active ? el('p', { class: 'actions' }, btn('confirm', 'a_confirm'), q.claimed > 0 ? btn('fulfilled', 'a_received') : null,
      m.ask ? null : btn('ask', 'a_withdraw')) : el('p', { 'data-testid': 'closed' }, tr('a_closed')),
    m.ask ? el('div', { class: 'box', role: 'group', id: 'sure-box', tabindex: '-1', 'aria-labelledby': 'sure' }, el('p', { id: 'sure' }, tr('a_sure')),
      el('p', { class: 'actions' }, btn('withdrawn', 'a_withdraw_yes'), btn('keep', 'a_keep'))) : null,
    m.busy ? el('p', { class: 'hint busy' }, tr('sending')) : el('div', { id: 'act-msg', tabindex: '-1' }, msg),
    el('p', {}, el('a', { href: 'aid.html' }, tr('a_new'))),
  ];
}

// ---------- asking ----------

function addLine() {
  const n = ++lineNo;
  const box = (cls, key, attrs) => el('div', {}, el('label', { for: `${cls}-${n}`, 'data-i18n': key }, tr(key)),
    el('input', { id: `${cls}-${n}`, class: cls, autocomplete: 'off', ...attrs }));
  lines.append(el('div', { class: 'line', role: 'group', 'aria-label': tr('a_line', { n: lines.children.length + 1 }) }, box('iname', 'a_item', { maxlength: 60 }), box('iqty', 'a_qty', { inputmode: 'numeric' }),
    box('iunit', 'a_unit', { maxlength: 60 }),
    n > 1 && lines.children.length ? el('button', { type: 'button', class: 'btn secondary', 'data-action': 'del', 'data-i18n': 'a_del' }, tr('a_del')) : null));
  return n;
}

// The body, and each line that is sent named by its index (for field errors).
function body() {
  const v = (id) => $(id).value.trim();
  const rows = [...lines.children];
  const used = rows.filter((r, i) => i === 0 || [...r.querySelectorAll('input')].some((x) => x.value.trim()));
  for (const x of lines.querySelectorAll('input')) delete x.dataset.field;
  const b = {
    category: v('category') || undefined,
    urgency: v('urgency'),
    items: used.map((r, i) => {
      const f = (cls, name) => { const x = r.querySelector('.' + cls); x.dataset.field = `items[${i}].${name}`; return x.value.trim(); };
      return { name: f('iname', 'name'), quantity: number(f('iqty', 'quantity')), unit: f('iunit', 'unit') };
    }),
  };
  let lat = v('lat'), lon = v('lon');
  if (!lon && lat.includes(',')) [lat, lon] = lat.split(',').map((x) => x.trim());
  if (lat) b.lat = number(lat);
  if (lon) b.lon = number(lon);
  if (v('shelter')) b.shelter_id = v('shelter');
  if (v('municipality')) b.municipality = v('municipality').normalize('NFKC');
  if (v('note')) b.note = v('note');
  const contact = { phone: v('phone') || undefined, text: v('contact-text') || undefined };
  if (contact.phone || contact.text) b.contact = contact;
  return b;
}

async function send() {
  if (state.send?.view === 'sending') return;
  const b = body();
  state.send = { view: 'sending' };
  render();
  // One key per content: a retry after a lost answer is stored once.
  const text = JSON.stringify(b);
  if (state.pending?.text !== text) state.pending = { text, key: randomKey() };
  const r = await call('POST', '/v1/aid/requests', b, undefined, { 'idempotency-key': state.pending.key });
  if (r.ok) {
    state.pending = null;
    const q = r.body.request;
    remember(q.id, r.body.edit_key, q.category, q.created_at);
    state.send = { view: 'done', posted: r.body };
    form.reset();
    lines.replaceChildren();
    addLine();
  } else state.send = r.problem ? { view: 'problem', problem: r.problem } : { view: 'net', net: r.net };
  render(true);
}

async function prefill(id) {
  $('shelter').value = id;
  state.shelterMsg = 'a_shelter_loading';
  render();
  const r = await call('GET', `/v1/shelters/${enc(id)}`);
  if (r.ok) {
    const s = state.shelter = r.body;
    if (s.location && !$('lat').value) [$('lat').value, $('lon').value] = [s.location.lat, s.location.lon];
    if (s.municipality) $('municipality').value = s.municipality;
  } else state.shelterMsg = r.problem?.status === 404 ? 'a_shelter_unknown' : 'a_shelter_failed';
  render();
}

// Nobody knows their municipality's code: the nearest shelter's, within
// 10 km, is a good first guess (shown, and the resident may change it).
async function guessMunicipality() {
  if ($('municipality').value.trim()) return;
  const r = await call('GET', `/v1/shelters?near=${enc($('lat').value)},${enc($('lon').value)}&limit=1`);
  const s = r.ok && r.body.shelters[0];
  if (s?.municipality && s.distance_m < 10000 && !$('municipality').value.trim()) $('municipality').value = s.municipality;
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
    render();
    guessMunicipality();
  }, (err) => {
    state.geo = { key: err.code === 1 ? 'geo_denied' : err.code === 3 ? 'geo_timeout' : 'geo_unavailable', err: true };
    render();
  }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 });
}

// ---------- one request, opened from its edit link ----------

function route() {
  state.manage?.stop?.();
  const h = new URLSearchParams(location.hash.slice(1));
  const id = h.get('request'), key = h.get('key');
  state.manage = id && key ? { id, key, view: 'loading' } : null;
  state.live = null;
  if (state.manage) {
    remember(id, key);
    load(false);
  }
  render();
}

async function load(quiet) {
  const m = state.manage;
  const r = await call('GET', `/v1/aid/requests/${enc(m.id)}`, undefined, m.key);
  if (state.manage !== m) return;
  if (r.ok && r.body.inbox) {
    m.req = r.body;
    m.view = 'ok';
    remember(m.id, m.key, r.body.category, r.body.created_at);
    m.stop ??= live(() => ({ channels: [m.req.inbox] }), (f) => heard(m, f), () => load(true).then(() => setLive('on')), setLive);
  } else if (r.ok || r.problem?.status === 403) m.view = 'bad'; // the key does not open it
  else if (!quiet) Object.assign(m, r.problem ? { view: 'problem', problem: r.problem } : { view: 'net', net: r.net });
  render();
}

function setLive(s) {
  state.live = s;
  render();
}

// Inbox frames: the request's public view, and each claim's change.
function heard(m, f) {
  if (state.manage !== m || !m.req) return;
  const merge = (pub) => { if (stamp(pub.updated_at) >= stamp(m.req.updated_at)) Object.assign(m.req, pub); };
  if (f.kind === 'aid.request') merge(f.data);
  else if (f.kind === 'aid.claim') {
    merge(f.data.request);
    const c = f.data.claim, i = m.req.claims.findIndex((x) => x.id === c.id);
    if (i < 0) m.req.claims.push(c);
    else m.req.claims[i] = c;
  }
  render();
}

async function act(what) {
  const m = state.manage;
  m.busy = true;
  m.ask = false;
  m.msg = null;
  render();
  const r = await call('PATCH', `/v1/aid/requests/${enc(m.id)}`, what === 'confirm' ? { confirm: true } : { status: what }, m.key);
  m.busy = false;
  if (r.ok) {
    m.req = r.body;
    m.msg = { key: 'a_did_' + what };
  } else {
    m.msg = r.problem ? { problem: r.problem, what } : { net: r.net };
    if (r.problem?.status === 409) load(true);
  }
  render();
  $('act-msg')?.focus();
}

// ---------- start ----------

form.addEventListener('submit', (e) => { e.preventDefault(); send(); });
$('locate').addEventListener('click', locate);
$('add').addEventListener('click', () => $(`iname-${addLine()}`).focus());
document.addEventListener('click', (e) => {
  const b = e.target.closest('[data-action]');
  const a = b?.dataset.action, m = state.manage;
  if (a === 'send') send();
  else if (a === 'del') { b.closest('.line').remove(); render(); $('add').focus(); } else if (a === 'load') load(false);
  else if (a === 'ask' || a === 'keep') { m.ask = a === 'ask'; m.msg = null; render(); $(m.ask ? 'sure-box' : 'yours').focus(); } else if (['confirm', 'fulfilled', 'withdrawn'].includes(a) && m?.req) act(a);
});
window.addEventListener('hashchange', route);
addLine();
const given = new URLSearchParams(location.search).get('shelter');
startLang(render, 'aid', 'ask').then(() => {
  route();
  if (given) prefill(given);
});
