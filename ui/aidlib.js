// What the aid pages (ask for help, volunteer, coordinator desk) share: calls
// with a token, field errors beside their inputs in the page's language,
// problems in plain words, the live socket, and the words for categories
// and statuses (all in i18n/aid/<lang>.json).

import { i18n, tr, el, api, problemOf } from './common.js';

export const CATS = ['water', 'food', 'baby_supplies', 'medicine', 'hygiene', 'blankets_clothing', 'fuel', 'transport',
  'pet_supplies', 'clean_up', 'care', 'interpreting', 'shelter', 'other'];
export const URGENCIES = ['low', 'normal', 'high', 'critical'];
const known = (k) => Object.hasOwn(i18n.t, k);
export const word = (prefix, code) => (known(prefix + code) ? tr(prefix + code) : code);

// { ok, body } | { problem } | { net }: a JSON body, and a bearer token and
// other headers if given.
export async function call(method, url, body, token, extra = {}) {
  const headers = { ...extra };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await api(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.net) return { net: r.net };
  if (r.ok) return { ok: true, body: r.body };
  return r.body && typeof r.body === 'object' ? { problem: problemOf(r) } : { net: 'net_error' };
}

// A typed number as the API takes it: digits (full-width too) as a number;
// anything else as typed, so that the server names the field that is wrong.
export function number(s) {
  const t = s.normalize('NFKC').trim();
  return /^[-+]?\d+(\.\d+)?$/.test(t) ? Number(t) : t;
}

// The message for a field error, in the page's language: e.g. items[2].quantity
// is e_items_quantity; a field the dictionary does not know keeps the server's words.
export const fieldMsg = (e) => {
  const k = 'e_' + e.field.replace(/\[\d+\]/g, '').replace(/\./g, '_');
  return known(k) ? tr(k) : e.message;
};

// Marks the inputs of `scope` named by the errors (data-field) invalid, with
// the message beside each; focuses the first on the page when asked. Returns the errors
// no input on the page stands for.
export function markErrors(scope, errs, focus, ns = '') {
  for (const i of scope.querySelectorAll('[data-desc]')) {
    i.removeAttribute('aria-invalid');
    if (i.dataset.desc) i.setAttribute('aria-describedby', i.dataset.desc);
    else i.removeAttribute('aria-describedby');
  }
  for (const p of scope.querySelectorAll('.ferr')) p.remove();
  const rest = [];
  let first = null;
  for (const e of errs) {
    const inputs = [...scope.querySelectorAll('[data-field]')].filter((i) => i.dataset.field === e.field
      || (e.field === 'near' && /^(lat|lon)$/.test(i.dataset.field)));
    if (!inputs.length) { rest.push(e); continue; }
    const id = `err-${ns}${e.field.replace(/\W+/g, '-')}`;
    let p = scope.querySelector(`[id="${id}"]`);
    if (!p) {
      p = el('p', { id, class: 'msg err ferr', 'data-testid': `field-error-${e.field}` });
      (inputs.at(-1).closest('.coords') || inputs.at(-1)).after(p);
    }
    p.textContent = p.textContent ? `${p.textContent} ${fieldMsg(e)}` : fieldMsg(e);
    for (const i of inputs) {
      i.dataset.desc ??= i.getAttribute('aria-describedby') || '';
      i.setAttribute('aria-invalid', 'true');
      i.setAttribute('aria-describedby', `${i.dataset.desc} ${id}`.trim());
    }
    if (!first || inputs[0].compareDocumentPosition(first) & Node.DOCUMENT_POSITION_FOLLOWING) first = inputs[0];
  }
  if (focus && first) first.focus();
  return rest;
}

// A problem in plain words: the page's own sentence for its status (or for
// `what` it was doing: p_409_claim…), then the server's detail, which is in English.
export function problemBox(p, what, retry, rest = p.errors) {
  const mine = [`p_${p.status}_${what}`, `p_${p.status}`].find(known) || (p.status >= 500 ? 'p_5xx' : 'p_other');
  return el('div', { class: 'box err', role: 'alert', 'data-testid': 'problem', 'data-status': p.status },
    el('p', { 'data-testid': 'problem-text' }, tr(mine)),
    p.detail && p.status !== 400 ? el('p', { class: 'sub', lang: 'en' }, p.detail) : null,
    rest.map((e) => el('p', {}, `${word('f_', e.field)}: ${fieldMsg(e)}`)),
    retry && (p.status >= 500 || p.status === 429) ? el('button', { type: 'button', class: 'btn primary', 'data-action': retry }, tr('retry')) : null);
}

export const netBox = (key, retry) => el('div', { class: 'box err', role: 'alert', 'data-testid': 'network-error' },
  el('p', {}, tr(key)), retry ? el('button', { type: 'button', class: 'btn primary', 'data-action': retry }, tr('retry')) : null);

// Options of a select (`dflt` preselected), keeping what was chosen across a language switch.
export function fill(select, codes, prefix, first, dflt) {
  const was = select.value;
  select.replaceChildren(...(first ? [el('option', { value: '' }, tr(first))] : []),
    ...codes.map((c) => el('option', { value: c, selected: c === dflt }, tr(prefix + c))));
  if (was) select.value = was;
}

// Puts what a view returns into `node`, leaving out what it left out (null).
export const show = (node, kids) => node.replaceChildren(...kids.filter((k) => k != null && k !== false));

// Who a token's holder is: the person, and their organisation when it is another name.
export const who = (a) => (a.org && a.org !== a.name ? tr('who', { name: a.name, org: a.org }) : a.name);
export const when = (iso) => {
  const d = new Date(iso);
  return el('time', { datetime: d.toISOString() }, d.toLocaleString(i18n.lang, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }));
};
export const items = (list) => list.map((i) => tr('item', { name: i.name, q: i.quantity, unit: i.unit || '' }).trim())
  .join(i18n.lang === 'ja' ? '、' : ', ');
export const badge = (prefix, code, cls) => el('span', { class: `badge ${cls || ''}`, 'data-testid': 'status', 'data-status': code }, word(prefix, code));
export const dist = (m) => (m < 1000 ? `${Math.round(m / 10) * 10} m` : `${(m / 1000).toFixed(1)} km`);

// Server times (chrono: 0 to 9 decimals) in an order that compares as text.
export const stamp = (s) => (s || '').replace(/(?:\.(\d+))?Z$/, (_, f = '') => `.${f.padEnd(9, '0')}Z`);

// Re-renders without losing the focus (the input the user is typing in) when
// its element was redrawn; a focus the drawing moved on purpose stays.
export function keepFocus(draw) {
  const a = document.activeElement, id = a?.id, at = a?.selectionStart;
  draw();
  const b = id && document.getElementById(id), now = document.activeElement;
  if (b && b !== now && (!now || now === document.body)) {
    b.focus();
    if (at != null && b.setSelectionRange) b.setSelectionRange(at, at);
  }
}

// The live socket: `want()` is the subscribe command's channels/near; a
// reconnect sends `since` and gets what it missed. Aid channels have no
// snapshot of their own, so when the server cannot replay (a first
// subscribe, a resync) `reset()` fetches the state over HTTP. `state(s)`:
// connecting, on, reconnecting.
export function live(want, onEvent, reset, state) {
  const L = { ws: null, since: {}, backoff: 1000, timer: null, stopped: false };
  const connect = () => {
    if (L.stopped || !('WebSocket' in window)) return;
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/live`);
    L.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ op: 'subscribe', id: 'aid', ...want(), since: L.since }));
    ws.onmessage = (e) => {
      let m;
      try { m = JSON.parse(e.data); } catch { return; }
      if (m.op === 'subscribed') {
        L.backoff = 1000;
        if (m.channels.every((c) => c.recovered)) state('on');
        else reset();
      } else if (m.op === 'resync') reset();
      else if (m.op === 'snapshot' || m.op === 'event') {
        L.since[m.channel] = { seq: m.seq, epoch: m.epoch };
        if (m.op === 'event') onEvent(m);
      }
    };
    ws.onclose = () => {
      if (L.ws !== ws) return;
      L.ws = null;
      state('reconnecting');
      L.timer = setTimeout(connect, L.backoff);
      L.backoff = Math.min(L.backoff * 2, 30000);
    };
  };
  state('connecting');
  connect();
  return () => {
    L.stopped = true;
    clearTimeout(L.timer);
    const ws = L.ws;
    L.ws = null;
    ws?.close();
  };
}

export const liveLine = (s) => (s ? el('p', { class: `hint live ${s}`, 'data-testid': 'live', 'data-live': s }, tr('live_' + s)) : null);
