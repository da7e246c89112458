// anpi coordinator desk: the coordinator's token, typed once and kept on
// this device; registering volunteers (their sign-in link as a QR code),
// suspending and reinstating them, and deciding on records hidden after
// reports. The queue follows the municipalities' area channels live.

import { $, tr, el, renderStatic, startLang, saved } from './common.js';
import { show, who, keepFocus, call, markErrors, problemBox, netBox, items, badge, word, live } from './aidlib.js';

const TOKEN = 'anpi.desk.token';
const enc = encodeURIComponent;
const state = { token: saved(TOKEN) || null, me: null, meErr: null, reg: null, vols: null, volsErr: null, queue: null, queueErr: null, msgs: {} };
let stopLive = null, queueTimer = 0;

// The server's SVG as an image: never parsed into this page.
const b64 = (s) => {
  let bin = '';
  for (const b of new TextEncoder().encode(s)) bin += String.fromCharCode(b);
  return btoa(bin);
};

function render(focus) {
  keepFocus(() => draw(focus));
}

function draw(focus) {
  renderStatic('d_title');
  const me = state.me, coordinator = me?.role === 'coordinator';
  $('signin').hidden = !!me;
  show($('me'), meView());
  $('vol-part').hidden = !coordinator;
  $('mod-part').hidden = !me || me.role === 'volunteer';
  const g = state.reg;
  const rest = markErrors($('register'), g?.problem ? g.problem.errors : [], focus);
  $('reg').replaceChildren(...(!g ? [] : g.busy ? [el('p', { class: 'hint busy' }, tr('sending'))]
    : g.problem ? [problemBox(g.problem, 'register', null, rest)] : g.net ? [netBox(g.net)] : regView(g.answer)));
  $('vols').replaceChildren(...(state.volsErr ? [failed(state.volsErr, 'vols')] : !state.vols ? []
    : state.vols.length ? [el('ol', { class: 'shelters' }, state.vols.map(volCard))] : [el('p', { class: 'hint' }, tr('d_no_vols'))]));
  const q = state.queue;
  $('queue').replaceChildren(...(state.queueErr ? [failed(state.queueErr, 'queue')] : !q ? []
    : q.requests.length + q.offers.length ? [el('ol', { class: 'shelters' },
      q.requests.map((r) => hiddenCard('requests', r)), q.offers.map((o) => hiddenCard('offers', o)))]
      : [el('p', { class: 'hint', 'data-testid': 'queue-empty' }, tr('d_queue_empty'))]));
}

const failed = (r, what) => (r.problem ? problemBox(r.problem, what, what) : netBox(r.net, what));
const btn = (a, k, id, kind) => el('button', { type: 'button', class: 'btn secondary', 'data-action': a, 'data-id': id, 'data-kind': kind }, tr(k));
const msg = (id) => {
  const m = state.msgs[id];
  return !m ? null : m.busy ? el('p', { class: 'hint busy' }, tr('sending')) : m.problem ? problemBox(m.problem, m.what)
    : m.net ? netBox(m.net) : el('p', { class: 'msg', role: 'status', 'data-testid': 'done' }, tr(m.key));
};

function meView() {
  if (state.meErr) return [failed(state.meErr, 'desk'), btn('out', 'sign_out')];
  if (!state.token) return [];
  if (!state.me) return [el('p', { class: 'hint busy' }, tr('searching'))];
  const m = state.me;
  return [el('p', { 'data-testid': 'me' }, who(m), ' ', badge('role_', m.role)),
    m.role === 'volunteer' ? el('p', { class: 'box err', role: 'alert' }, tr('d_not_volunteer')) : null,
    btn('out', 'sign_out')];
}

function regView(a) {
  const name = a.volunteer.name;
  return [el('div', { class: 'box', 'data-testid': 'registered' },
    el('h3', { id: 'reg-h', tabindex: '-1' }, tr('d_made', { name })),
    el('img', { class: 'qr', src: `data:image/svg+xml;base64,${b64(a.qr_svg)}`, alt: tr('d_qr', { name }), 'data-testid': 'qr' }),
    el('p', {}, tr('d_show_qr')),
    el('label', { for: 'signin-link' }, tr('d_link')),
    el('input', { id: 'signin-link', readonly: true, value: a.sign_in_link, 'data-testid': 'signin-link' }),
    el('p', { class: 'sub' }, tr('d_once')))];
}

const volCard = (v) => el('li', { class: `card st-${v.suspended ? 'unsafe' : 'open'}`, 'data-testid': 'volunteer', 'data-id': v.id, 'data-suspended': String(v.suspended) },
  el('h3', {}, v.name),
  el('p', {}, badge('vs_', v.suspended ? 'suspended' : 'active', v.suspended ? 'st-unsafe' : 'st-open')),
  el('p', { class: 'actions' }, v.suspended ? btn('reinstate', 'd_reinstate', v.id) : btn('suspend', 'd_suspend', v.id)),
  msg('v' + v.id));

function hiddenCard(kind, r) {
  return el('li', { class: 'card st-unsafe', 'data-testid': 'hidden', 'data-kind': kind, 'data-id': r.id },
    el('h3', {}, tr(`d_${kind}`), ': ', word('cat_', r.category), ' ', badge('rs_', r.status)),
    el('p', {}, items(r.items)),
    r.note ? el('p', { class: 'note' }, r.note) : null,
    el('p', { class: 'sub' }, tr('d_by', { who: r.posted_by })),
    el('p', { 'data-testid': 'reports' }, tr('d_reports', { list: [...r.reports].sort((a, b) => b[1] - a[1]).map(([why, n]) => `${word('rr_', why)} ×${n}`).join(', ') })),
    el('p', { class: 'actions' }, btn('restore', 'd_restore', r.id, kind), btn('remove', 'd_remove', r.id, kind)),
    msg(r.id));
}

// ---------- calls ----------

async function loadMe() {
  Object.assign(state, { me: null, meErr: null, vols: null, queue: null });
  render();
  const r = await call('GET', '/v1/me', undefined, state.token);
  if (!r.ok) {
    state.meErr = r;
    return render();
  }
  state.me = r.body;
  render();
  if (r.body.role === 'coordinator') loadVols();
  if (r.body.role !== 'volunteer') {
    loadQueue();
    stopLive?.();
    stopLive = live(() => ({ channels: r.body.municipalities.map((m) => `area:${m}`) }), (f) => {
      if (/^aid\.(request|offer)$/.test(f.kind) && (f.data.hidden || state.queue?.[f.kind === 'aid.request' ? 'requests' : 'offers'].some((x) => x.id === f.data.id))) {
        clearTimeout(queueTimer);
        queueTimer = setTimeout(loadQueue, 300);
      }
    }, loadQueue, () => {});
  }
}

async function loadVols() {
  const r = await call('GET', '/v1/volunteers', undefined, state.token);
  Object.assign(state, r.ok ? { vols: r.body, volsErr: null } : { volsErr: r });
  render();
}

async function loadQueue() {
  const r = await call('GET', '/v1/aid/moderation', undefined, state.token);
  Object.assign(state, r.ok ? { queue: r.body, queueErr: null } : { queueErr: r });
  render();
}

async function register() {
  const name = $('vname').value.trim();
  state.reg = { busy: true };
  render();
  const r = await call('POST', '/v1/volunteers', { name }, state.token);
  state.reg = r.ok ? { answer: r.body } : r;
  if (r.ok) {
    $('vname').value = '';
    loadVols();
  }
  render(true);
  if (r.ok) $('reg-h').focus();
}

async function act(a, id, kind) {
  const key = kind ? id : 'v' + id;
  state.msgs[key] = { busy: true };
  render();
  const r = kind ? await call('POST', `/v1/aid/moderation/${kind}/${enc(id)}`, { decision: a }, state.token)
    : await call('POST', `/v1/volunteers/${enc(id)}/${a}`, undefined, state.token);
  state.msgs[key] = r.ok ? { key: `d_did_${a}` } : r.problem ? { problem: r.problem, what: a } : { net: r.net };
  if (r.ok && !kind) state.vols = state.vols.map((v) => (v.id === r.body.id ? r.body : v));
  render();
  if (kind && r.ok) loadQueue();
}

function out() {
  try { localStorage.removeItem(TOKEN); } catch { /* private mode */ }
  stopLive?.();
  Object.assign(state, { token: null, me: null, meErr: null, reg: null, vols: null, queue: null, msgs: {} });
  render();
  $('token').focus();
}

$('signin').addEventListener('submit', (e) => {
  e.preventDefault();
  const t = $('token').value.trim();
  if (!t) return;
  state.token = t;
  saved(TOKEN, t);
  $('token').value = '';
  loadMe();
});
$('register').addEventListener('submit', (e) => { e.preventDefault(); register(); });
document.addEventListener('click', (e) => {
  const b = e.target.closest('[data-action]');
  if (!b) return;
  const { action: a, id, kind } = b.dataset;
  if (a === 'out') out();
  else if (a === 'me' || a === 'desk') loadMe();
  else if (a === 'vols') loadVols();
  else if (a === 'queue') loadQueue();
  else if (['suspend', 'reinstate', 'restore', 'remove'].includes(a)) act(a, id, kind);
});
startLang(render, 'aid', 'desk').then(() => { if (state.token) loadMe(); });
