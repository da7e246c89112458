// What every anpi page shares: DOM helpers, and the language (text comes only
// from i18n/<lang>.json; data goes into the page as text nodes, never HTML).

export const $ = (id) => document.getElementById(id);
// lang: the page's language as BCP 47 (for Intl and lang="…"); code: the
// dictionary chosen (ja, en, or ja-easy: やさしい日本語, which is Japanese).
export const i18n = { lang: 'en', code: 'en', t: {} };
const dicts = {};
const LANG_KEY = 'anpi.lang';

export const saved = (k, v) => { try { if (v === undefined) return localStorage.getItem(k); localStorage.setItem(k, v); } catch { return null; } };

export function tr(key, vars) {
  const s = Object.hasOwn(i18n.t, key) ? i18n.t[key] : key;
  return vars ? s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m)) : s;
}

// A translated template whose placeholders may be DOM nodes (e.g. a <time>).
export function trNodes(key, vars) {
  return tr(key).split(/(\{\w+\})/).filter(Boolean).map((part) => {
    const m = /^\{(\w+)\}$/.exec(part);
    return m && m[1] in vars ? vars[m[1]] : part;
  });
}

export function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const k of kids.flat()) if (k != null && k !== false) e.append(k); // strings become text nodes
  return e;
}

// i18n/<lang>.json, and the parts a page adds (the aid pages: i18n/aid/<lang>.json…).
let parts = [''];
async function loadDict(l) {
  dicts[l] ??= Promise.all(parts.map(async (p) => {
    const r = await fetch(`i18n/${p}${l}.json`);
    if (!r.ok) throw new Error(`i18n ${p}${l}: ${r.status}`);
    return r.json();
  })).then((ds) => Object.assign({}, ...ds), (e) => { delete dicts[l]; throw e; });
  return dicts[l];
}

// Switches the page to language `l`; `render` redraws what depends on it.
async function setLang(l, remember, render) {
  i18n.t = await loadDict(l);
  i18n.code = l;
  i18n.lang = l === 'ja-easy' ? 'ja' : l;
  // やさしい日本語 is Japanese to a screen reader (lang="ja"), marked as the easy register.
  document.documentElement.lang = i18n.lang;
  document.documentElement.dataset.lang = l;
  if (remember) saved(LANG_KEY, l);
  render();
}

// The static text of the page (data-i18n, data-i18n-label) and the language buttons.
export function renderStatic(titleKey) {
  document.title = tr(titleKey);
  for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = tr(e.dataset.i18n);
  for (const e of document.querySelectorAll('[data-i18n-label]')) e.setAttribute('aria-label', tr(e.dataset.i18nLabel));
  for (const b of document.querySelectorAll('button[data-lang]')) b.setAttribute('aria-pressed', String(b.dataset.lang === i18n.code));
}

// Wires the language buttons, then loads the saved (or the browser's)
// language, on a bad network trying again, that one and then the other.
export async function startLang(render, ...more) {
  parts = ['', ...more.map((p) => p + '/')];
  for (const b of document.querySelectorAll('button[data-lang]')) {
    b.addEventListener('click', async () => {
      const msg = $('lang-msg');
      try {
        await setLang(b.dataset.lang, true, render);
        msg.hidden = true;
      } catch {
        msg.textContent = tr('lang_failed');
        msg.hidden = false;
      }
    });
  }
  // The languages the page offers (its buttons): やさしい日本語 on the resident
  // pages only; a page without it shows Japanese to one who chose it.
  const offered = [...document.querySelectorAll('button[data-lang]')].map((b) => b.dataset.lang);
  const stored = saved(LANG_KEY);
  const first = offered.includes(stored) ? stored : stored === 'ja-easy' ? 'ja'
    : (navigator.language || '').toLowerCase().startsWith('ja') ? 'ja' : 'en';
  for (let i = 0; ; i++) {
    try {
      await setLang(i % 2 ? (first === 'ja' ? 'en' : 'ja') : first, false, render);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** (i >> 1), 10000)));
    }
  }
}

// A part of the dictionary a script loaded later needs (the finder's supply
// points: i18n/supply/<lang>.json), from now on in every language chosen.
export async function addPart(p) {
  if (parts.includes(p + '/')) return;
  parts = [...parts, p + '/'];
  // The language on screen gets the new part alone; the others load whole when chosen.
  const code = i18n.code, here = dicts[code];
  for (const l of Object.keys(dicts)) delete dicts[l];
  if (!here) return;
  const r = await fetch(`i18n/${p}/${code}.json`);
  if (!r.ok) throw new Error(`i18n ${p}/${code}: ${r.status}`);
  dicts[code] = Promise.all([here, r.json()]).then((ds) => Object.assign({}, ...ds));
  if (i18n.code === code) i18n.t = await dicts[code];
}

// "3 minutes ago", in the page's language (a clock ahead of ours is "now").
export function ago(d) {
  const s = Math.min(0, (d.getTime() - Date.now()) / 1000);
  const rtf = new Intl.RelativeTimeFormat(i18n.lang === 'en' ? 'en' : 'ja', { numeric: 'auto' });
  for (const [unit, size] of [['year', 31536000], ['month', 2592000], ['day', 86400], ['hour', 3600], ['minute', 60]]) {
    if (Math.abs(s) >= size) return rtf.format(Math.trunc(s / size), unit);
  }
  return rtf.format(0, 'minute');
}

// A moment as Japan's clocks show it ("2024-01-09 18:00"): the shelters and offices are there.
// A shelter's needs in the page's language (codes from the one fixed list),
// then the office's own note, as it wrote it.
export function needsText(s) {
  const list = (s.needs || []).map((n) => tr('need_' + n)).join(i18n.lang === 'ja' ? '、' : ', ');
  return s.needs_note ? (list ? `${list} (${s.needs_note})` : s.needs_note) : list;
}

export const jst = (d) => new Date(d).toLocaleString('sv-SE', { timeZone: 'Asia/Tokyo', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' });

// ---------- announcements of the offices (both resident pages) ----------
// The latest of each municipality watched (GET), then every new one live on
// notices:<code> (announcements only, not every shelter of area:); urgent first, then newest. Each names who posted it and where.
const SEV = { urgent: 0, warning: 1, info: 2 };
const news = { codes: '', list: [], ws: null, timer: null, render: () => {} };
const wsUrl = () => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/live`;

// An alert retired by its update or cancellation comes again with
// cancelled_at: it leaves the list; one past its expiry is not shown.
function addNews(items) {
  for (const a of items) {
    if (!a?.id) continue;
    news.list = news.list.filter((x) => x.id !== a.id);
    if (!a.cancelled_at) news.list.push(a);
  }
  news.list.sort((a, b) => (SEV[a.severity] ?? 2) - (SEV[b.severity] ?? 2) || String(b.posted_at).localeCompare(String(a.posted_at)));
}

async function loadNews(codes) {
  const got = await Promise.all(codes.map((c) => api(`/v1/municipalities/${encodeURIComponent(c)}/announcements?limit=10`)));
  if (codes.join() !== news.codes) return;
  for (const r of got) if (r.ok && Array.isArray(r.body?.announcements)) addNews(r.body.announcements);
  news.render();
}

// Watches the announcements of `codes` (municipality codes); `render` redraws them.
export function watchNews(codes, render) {
  news.render = render;
  const list = [...new Set(codes.filter(Boolean))].sort();
  if (list.join() === news.codes) return;
  news.codes = list.join();
  news.list = [];
  clearTimeout(news.timer);
  news.ws?.close();
  news.ws = null;
  render();
  if (!list.length) return;
  loadNews(list);
  if (!('WebSocket' in window)) return;
  const connect = (again) => {
    const ws = new WebSocket(wsUrl());
    news.ws = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({ op: 'subscribe', id: 'news', channels: list.map((c) => `notices:${c}`) }));
      if (again) loadNews(list); // what came while away
    };
    ws.onmessage = (e) => {
      let m;
      try { m = JSON.parse(e.data); } catch { return; }
      if (m.op === 'event' && m.kind === 'announcement') { addNews([m.data]); news.render(); }
      else if (m.op === 'snapshot' && m.kind === 'announcement.snapshot') { addNews(m.data.announcements || []); news.render(); }
    };
    ws.onclose = () => { if (news.ws === ws) news.timer = setTimeout(() => connect(true), 3000); };
  };
  connect(false);
}

// The announcements as the page shows them, in its language.
export function newsView() {
  return news.list.filter((a) => !(a.expires_at && new Date(a.expires_at) <= new Date())).map((a) => {
    const sev = a.severity in SEV ? a.severity : 'info';
    const en = i18n.lang === 'en' && a.text_en;
    // A relayed alert names its own place and issuer, and the office that relayed it.
    const place = a.area_desc || (Object.hasOwn(i18n.t, 'muni_' + a.municipality) ? tr('muni_' + a.municipality) : tr('muni_code', { code: a.municipality }));
    const who = a.issuer && a.issuer !== a.posted_by ? tr('ann_via', { issuer: a.issuer, who: a.posted_by }) : a.posted_by;
    const d = new Date(a.posted_at);
    const time = el('time', { datetime: isNaN(d) ? '' : d.toISOString(), title: isNaN(d) ? '' : jst(d) }, isNaN(d) ? '' : ago(d));
    return el('article', { class: 'ann sev-' + sev, 'data-testid': 'announcement', 'data-severity': sev, 'data-id': a.id },
      el('p', { class: 'ann-sev' }, tr('sev_' + sev), a.event ? el('span', { lang: 'ja' }, ` ${a.event}`) : null),
      el('p', { class: 'ann-text', lang: en ? 'en' : 'ja' }, en ? a.text_en : a.text),
      el('p', { class: 'ann-meta', 'data-testid': 'announcement-meta' }, trNodes('ann_meta', { place, who, time })));
  });
}

// The service worker (sw.js): the page and its last answers stay on the phone.
export function offline() {
  if ('serviceWorker' in navigator && window.isSecureContext) navigator.serviceWorker.register('sw.js').catch(() => {});
}

// A request with a time limit: { ok, status, body } for an answer (body null
// if not JSON), { net: 'timeout' | 'offline' | 'net_error' } when none came.
export async function api(url, init = {}, timeoutMs = 20000) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    const res = await fetch(url, { ...init, signal: ctl.signal, headers: { accept: 'application/json', ...init.headers } });
    // `at`: when the service worker saved this answer, if it came from there (offline).
    return { ok: res.ok, status: res.status, body: await res.json().catch(() => null), at: res.headers.get('x-anpi-saved-at') };
  } catch (e) {
    return { net: e.name === 'AbortError' ? 'timeout' : navigator.onLine === false ? 'offline' : 'net_error' };
  } finally {
    clearTimeout(timer);
  }
}

// A problem+json answer as the pages show it.
export const problemOf = (r) => ({ status: r.status, detail: r.body.detail || r.body.title || '', errors: Array.isArray(r.body.errors) ? r.body.errors : [] });

// An Idempotency-Key: random, and made without crypto.randomUUID, which
// pages served over plain HTTP on a local network do not have.
export const randomKey = () => Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
