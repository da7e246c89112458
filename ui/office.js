// anpi office board: the municipality's shelters in one table, edited by the
// office (If-Match on every change, a conflict shows both values), changes
// by other staff arriving live on area:<code>, the open-shelter spreadsheet
// previewed before it is applied, incidents, announcements, and a printable
// sheet per shelter. Signed in by a one-time link (#code=…) or a pasted token.

import { $, i18n, tr, el, renderStatic, startLang, saved, api, problemOf, needsText } from './common.js';
import { show, keepFocus, call, markErrors, problemBox, netBox, live, liveLine, when, stamp, word, fieldMsg } from './aidlib.js';

const TOKEN = 'anpi.office.token';
const STATUSES = ['open', 'full', 'closed', 'unsafe'];
const HAZARDS = ['flood', 'landslide', 'storm_surge', 'earthquake', 'tsunami', 'fire', 'inland_flood', 'volcano'];
const SEVERITIES = ['info', 'warning', 'urgent'];
const enc = encodeURIComponent;
const state = {
  token: saved(TOKEN) || null, me: null, meErr: null, signin: null, muni: null, live: null,
  rows: new Map(), loadErr: null, sort: { key: 'name', dir: 1 }, f: { q: '', status: '', stale: false },
  sel: new Set(), edit: {}, conflict: {}, rowMsg: {}, hist: {}, bulk: null,
  csv: null, anns: null, annMsg: null, incs: null, incMsg: null,
};
let stopLive = null;

// The ETag the server gives a shelter: its updated_at in microseconds since
// the epoch ("0" when never changed), so a row keeps its version from any
// answer or live event without another request.
export function etagOf(s) {
  if (!s.updated_at) return '"0"';
  const m = /^(.*?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(s.updated_at);
  const micros = Date.parse(m[1] + m[3]) * 1000 + Number(((m[2] || '') + '000000').slice(0, 6));
  return `"${micros}"`;
}

const isOpen = (st) => st === 'open' || st === 'full';
const cap = (s) => [s.capacity?.indoor, s.capacity?.outdoor].find((n) => n > 0) ?? null;
// The fixed list of a shelter's needs (the API's codes; words in the dictionaries).
const NEEDS = ['water', 'food', 'baby_supplies', 'medicine', 'hygiene', 'blankets_clothing', 'bedding', 'toilets',
  'power', 'fuel', 'staff', 'medical_care', 'care', 'interpreting', 'pet_supplies', 'other'];
const stWord = (st) => tr('st_' + st);
const badge = (st) => el('span', { class: `badge st-${st}`, 'data-testid': 'status', 'data-status': st }, stWord(st));
const failed = (r, what) => (r.problem ? problemBox(r.problem, what) : netBox(r.net));
const btn = (a, k, id, extra = {}) => el('button', { type: 'button', class: 'btn secondary', 'data-action': a, 'data-id': id, ...extra }, tr(k));

function render(focus) {
  keepFocus(() => draw(focus));
}

function draw() {
  renderStatic('o_title');
  const me = state.me;
  $('signin').hidden = !!state.token;
  show($('signin-msg'), [state.signin?.busy ? el('p', { class: 'hint busy' }, tr('o_signing_in'))
    : state.signin?.problem ? problemBox(state.signin.problem, 'signin') : state.signin?.net ? netBox(state.signin.net) : null]);
  show($('me'), meView());
  $('board').hidden = !me;
  if (!me) return;
  show($('live-line'), [liveLine(state.live)]);
  const fs = $('f-status'), was = fs.value;
  fs.replaceChildren(el('option', { value: '' }, tr('o_all')), ...STATUSES.map((s) => el('option', { value: s }, stWord(s))));
  fs.value = was;
  fillSelect($('ann-sev'), SEVERITIES, 'o_sev_');
  fillSelect($('inc-hazard'), HAZARDS, 'hz_');
  drawTable();
  drawMap();
  drawCsv();
  drawAnns();
  drawIncs();
}

function fillSelect(select, codes, prefix) {
  const was = select.value;
  select.replaceChildren(...codes.map((c) => el('option', { value: c }, tr(prefix + c))));
  if (was) select.value = was;
}

function meView() {
  if (state.meErr) return [failed(state.meErr, 'office'), btn('out', 'sign_out')];
  if (!state.token) return [];
  if (!state.me) return [el('p', { class: 'hint busy' }, tr('searching'))];
  const m = state.me;
  const munis = m.municipalities || [];
  return [el('p', { 'data-testid': 'me' }, m.name, ' ', el('span', { class: 'badge' }, word('o_role_', m.role))),
    m.role !== 'official' ? el('p', { class: 'box err', role: 'note', 'data-testid': 'not-official' }, tr('o_not_official')) : null,
    munis.length > 1 ? el('p', {}, el('label', { for: 'muni' }, tr('o_muni')),
      el('select', { id: 'muni' }, munis.map((c) => el('option', { value: c, selected: c === state.muni }, c)))) : null,
    !munis.length ? el('p', { class: 'box err', role: 'alert' }, tr('o_no_muni')) : null,
    btn('out', 'sign_out')];
}

// ---------- the table ----------

const COLS = [['name', 'o_c_name'], ['status', 'o_c_status'], ['occ', 'o_c_occ'], ['needs', 'o_c_needs', false],
  ['hazards', 'o_c_hazards', false], ['updated', 'o_c_updated'], ['stale', 'o_c_stale']];
const sortVal = {
  name: (s) => s.name_kana || s.name,
  status: (s) => STATUSES.indexOf(s.status),
  occ: (s) => (cap(s) ? s.occupancy / cap(s) : s.occupancy ? 2 : -1),
  updated: (s) => stamp(s.updated_at || ''),
  stale: (s) => (s.stale ? 1 : 0),
};

function shown() {
  const { q, status, stale } = state.f;
  const needle = q.normalize('NFKC').trim().toLowerCase();
  const list = [...state.rows.values()].filter((s) => (!status || s.status === status) && (!stale || s.stale)
    && (!needle || [s.name, s.name_kana, s.name_en, s.id, s.address, ...(s.needs || []).map((n) => tr('need_' + n)), s.needs_note || '']
      .some((x) => x && x.normalize('NFKC').toLowerCase().includes(needle))));
  const { key, dir } = state.sort, v = sortVal[key];
  return list.sort((a, b) => {
    const x = v(a), y = v(b);
    return (x < y ? -1 : x > y ? 1 : a.id < b.id ? -1 : 1) * dir;
  });
}

function drawTable() {
  const list = shown();
  const allSel = list.length > 0 && list.every((s) => state.sel.has(s.id));
  $('thead').replaceChildren(el('tr', {},
    el('th', { class: 'pick', scope: 'col' }, el('input', { type: 'checkbox', id: 'sel-all', 'aria-label': tr('o_sel_all'), checked: allSel })),
    COLS.map(([k, label, sortable]) => el('th', { scope: 'col', 'aria-sort': state.sort.key === k ? (state.sort.dir > 0 ? 'ascending' : 'descending') : null },
      sortable === false ? tr(label) : el('button', { type: 'button', 'data-action': 'sort', 'data-key': k, id: `sort-${k}` }, tr(label),
        state.sort.key === k ? (state.sort.dir > 0 ? ' ▲' : ' ▼') : ''))),
    el('th', { scope: 'col' }, tr('o_c_actions'))));
  $('rows').replaceChildren(...list.flatMap(rowView));
  $('count').textContent = tr('o_count', { n: list.length, all: state.rows.size });
  $('sel-count').textContent = tr('o_selected', { n: state.sel.size });
  for (const b of document.querySelectorAll('[data-action="bulk"]')) b.disabled = !state.sel.size || !!state.bulk?.busy;
  const r = state.bulk;
  show($('bulk-result'), !r ? [] : r.busy ? [el('p', { class: 'hint busy' }, tr('o_bulk_busy', { n: r.items.length, all: r.total }))] : [
    el('p', { role: 'status', 'data-testid': 'bulk-summary' }, tr('o_bulk_done', { ok: r.items.filter((i) => i.ok).length, all: r.total })),
    el('ul', { class: 'results' }, r.items.map((i) => el('li', { 'data-testid': 'bulk-item', 'data-id': i.id, 'data-outcome': i.outcome },
      `${i.name}: `, i.outcome === 'done' ? tr('o_r_done') : i.outcome === 'conflict' ? tr('o_r_conflict', { who: i.who || '?' })
        : i.outcome === 'net' ? tr(i.net) : `${tr('o_r_failed')} (${i.status}) ${i.detail}`)))]);
  if (state.loadErr) $('rows').replaceChildren(el('tr', {}, el('td', { colspan: 9 }, failed(state.loadErr, 'office'))));
}

function rowView(s) {
  const id = s.id, c = cap(s), sel = state.sel.has(id);
  const row = el('tr', { 'data-testid': 'row', 'data-id': id, 'data-status': s.status, 'data-etag': etagOf(s), class: sel ? 'sel' : null },
    el('td', { class: 'pick' }, el('input', { type: 'checkbox', id: `sel-${id}`, 'data-action': 'pick', 'data-id': id, checked: sel, 'aria-label': tr('o_sel_one', { name: s.name }) })),
    el('th', { scope: 'row', 'data-testid': 'name' }, s.name),
    el('td', {}, badge(s.status)),
    el('td', { class: 'num', 'data-testid': 'occ' }, c ? tr('o_occ_cap', { occ: s.occupancy, cap: c }) : String(s.occupancy)),
    el('td', { 'data-testid': 'needs' }, needsText(s)),
    el('td', { class: 'hz' }, (s.hazards || []).map((h) => tr('hz_' + h)).join(' / ')),
    el('td', { 'data-testid': 'updated' }, s.updated_at ? [when(s.updated_at), el('br'), s.updated_by || ''] : tr('o_never')),
    el('td', { 'data-testid': 'stale' }, s.stale ? el('span', { class: 'stale-mark' }, tr('o_stale')) : ''),
    el('td', { class: 'acts' }, el('span', { class: 'actions' },
      btn('edit', 'o_edit', id, { id: `edit-${id}`, 'aria-label': tr('o_edit_one', { name: s.name }), 'aria-expanded': String(!!state.edit[id]) }),
      btn('hist', 'o_hist', id, { id: `hist-${id}`, 'aria-label': tr('o_hist_one', { name: s.name }), 'aria-expanded': String(!!state.hist[id]) }))));
  const parts = [state.conflict[id] && conflictView(s, state.conflict[id]), state.edit[id] && editView(s, state.edit[id]),
    state.rowMsg[id] && rowMsgView(state.rowMsg[id]), state.hist[id] && histView(state.hist[id])].filter(Boolean);
  return parts.length ? [row, el('tr', { class: 'detail', 'data-testid': 'detail', 'data-id': id }, el('td', { colspan: 9 }, parts))] : [row];
}

const rowMsgView = (m) => (m.problem ? problemBox(m.problem, m.what) : m.net ? netBox(m.net)
  : el('p', { class: 'msg', role: 'status', 'data-testid': 'row-done' }, tr(m.key)));

function editView(s, d) {
  const id = s.id;
  const rest = d.problem ? d.problem.errors.filter((e) => !['status', 'occupancy', 'needs', 'needs_note'].includes(e.field.replace(/\[\d+\]/, ''))) : [];
  const form = el('form', { class: 'ed', 'data-testid': 'editor', 'data-id': id, 'data-action-form': 'save', 'aria-label': tr('o_edit_one', { name: s.name }) },
    el('div', {}, el('label', { for: `ed-status-${id}` }, tr('o_c_status')),
      el('select', { id: `ed-status-${id}`, 'data-field': 'status', 'data-draft': 'status', 'data-id': id },
        STATUSES.map((st) => el('option', { value: st, selected: d.status === st }, stWord(st))))),
    el('div', {}, el('label', { for: `ed-occ-${id}` }, tr('o_occ')),
      el('input', { id: `ed-occ-${id}`, 'data-field': 'occupancy', 'data-draft': 'occupancy', 'data-id': id, inputmode: 'numeric', autocomplete: 'off', value: d.occupancy })),
    el('fieldset', { class: 'needs-pick', 'data-field': 'needs' }, el('legend', {}, tr('o_needs_edit')),
      NEEDS.map((n) => el('label', { class: 'check' },
        el('input', { type: 'checkbox', 'data-need': n, 'data-id': id, checked: d.needs.includes(n) }), ' ', tr('need_' + n)))),
    el('div', {}, el('label', { for: `ed-note-${id}` }, tr('o_needs_note')),
      el('input', { id: `ed-note-${id}`, 'data-field': 'needs_note', 'data-draft': 'note', 'data-id': id, autocomplete: 'off', maxlength: 200, value: d.note })),
    el('p', { class: 'actions' },
      el('button', { type: 'submit', class: 'btn primary', disabled: d.busy }, tr('o_save')),
      btn('confirm', 'o_confirm', id, { disabled: d.busy }),
      btn('cancel', 'o_cancel', id)),
    d.busy ? el('p', { class: 'hint busy' }, tr('sending')) : null,
    d.problem && d.problem.status !== 400 ? problemBox(d.problem, 'office') : rest.length ? problemBox(d.problem, 'office', null, rest) : null,
    d.net ? netBox(d.net) : null);
  form.dataset.id = id;
  if (d.problem) markErrors(form, d.problem.errors, false, id + '-');
  return form;
}

function conflictView(s, k) {
  const cur = k.current, mine = k.mine;
  const val = (o, f) => (f === 'status' ? (o.status ? stWord(o.status) : '—') : f === 'occupancy' ? (o.occupancy ?? '—') : needsText(o) || '—');
  const fields = ['status', 'occupancy', 'needs'].filter((f) => f in mine || k.confirm);
  return el('div', { class: 'box err', role: 'alert', 'data-testid': 'conflict', 'data-id': s.id },
    el('h3', { id: `cf-${s.id}`, tabindex: '-1' }, tr('o_cf_title', { name: s.name })),
    el('p', {}, ...(cur.updated_at ? [tr('o_cf_text', { who: cur.updated_by || '?' }), ' ', when(cur.updated_at)] : [tr('o_cf_text', { who: cur.updated_by || '?' })])),
    el('table', { class: 'cmp' },
      el('thead', {}, el('tr', {}, el('td'), el('th', { scope: 'col' }, tr('o_cf_now')), el('th', { scope: 'col' }, tr('o_cf_mine')))),
      el('tbody', {}, (fields.length ? fields : ['status']).map((f) => el('tr', { 'data-testid': `cf-${f}` },
        el('th', { scope: 'row' }, tr('o_f_' + f)),
        el('td', { 'data-testid': 'cf-now' }, String(val(cur, f))),
        el('td', { 'data-testid': 'cf-mine' }, mine.confirm && !(f in mine) ? tr('o_cf_confirm') : String(val(mine, f))))))),
    el('p', { class: 'cmp-actions' },
      el('button', { type: 'button', class: 'btn primary', 'data-action': 'reapply', 'data-id': s.id, disabled: k.busy }, tr('o_cf_reapply')),
      el('button', { type: 'button', class: 'btn secondary', 'data-action': 'keep', 'data-id': s.id, disabled: k.busy }, tr('o_cf_keep'))));
}

function histView(h) {
  if (h.busy) return el('p', { class: 'hint busy' }, tr('searching'));
  if (!h.events) return failed(h, 'office');
  const parse = (x) => { try { return typeof x === 'string' ? JSON.parse(x) : x || {}; } catch { return {}; } };
  return el('section', { 'data-testid': 'history' }, el('h3', {}, tr('o_hist')),
    h.events.length ? el('ol', { class: 'hist' }, h.events.map((e) => {
      const b = parse(e.before), a = parse(e.after);
      return el('li', { 'data-testid': 'hist-item' }, when(e.at), ' ', e.actor.replace(/^\w+:(\d+ )?/, ''), ': ',
        tr('o_hist_line', { sb: b.status ? stWord(b.status) : '—', ob: b.occupancy ?? '—', sa: a.status ? stWord(a.status) : '—', oa: a.occupancy ?? '—' }),
        needsText(a) ? ` (${needsText(a)})` : '');
    })) : el('p', { class: 'hint' }, tr('o_hist_none')));
}

// ---------- shelters: load, live, edit ----------

function put(s) {
  const was = state.rows.get(s.id);
  // A live event may arrive after the answer to our own edit: keep the newer.
  if (was && stamp(was.updated_at || '') > stamp(s.updated_at || '')) return false;
  state.rows.set(s.id, s);
  return true;
}

async function loadShelters() {
  const r = await call('GET', `/v1/shelters?municipality=${enc(state.muni)}&limit=1000`, undefined, state.token);
  if (r.ok) {
    state.loadErr = null;
    state.rows = new Map(r.body.shelters.map((s) => [s.id, s]));
    for (const id of state.sel) if (!state.rows.has(id)) state.sel.delete(id);
  } else state.loadErr = r;
  render();
}

let repaint = 0;
const soon = () => { if (!repaint) repaint = requestAnimationFrame(() => { repaint = 0; render(); }); };

function startLive() {
  stopLive?.();
  stopLive = live(() => ({ channels: [`area:${state.muni}`] }), (f) => {
    if (f.kind === 'shelter.updated' && f.data?.municipality === state.muni) {
      if (put(f.data)) soon();
    } else if (f.kind === 'announcement' && state.anns && !state.anns.some((a) => a.id === f.data.id)) {
      state.anns = [f.data, ...state.anns];
      soon();
    }
  }, () => {
    // Not replayed (a first subscribe, a resync): the state again over HTTP.
    state.live = 'on';
    loadShelters();
    loadAnns();
  }, (s) => { state.live = s; soon(); });
}

const draftOf = (s) => ({ status: s.status, occupancy: String(s.occupancy), needs: [...(s.needs || [])], note: s.needs_note || '', base: etagOf(s) });

function bodyOf(d, s) {
  const b = {};
  if (d.status !== s.status) b.status = d.status;
  const t = d.occupancy.normalize('NFKC').trim();
  const n = /^\d+$/.test(t) ? Number(t) : t;
  if (n !== s.occupancy) b.occupancy = n;
  // The needs and their note travel together, so a conflict shows both.
  const needs = NEEDS.filter((n) => d.needs.includes(n)), note = d.note.trim();
  if (needs.join() !== NEEDS.filter((n) => (s.needs || []).includes(n)).join() || note !== (s.needs_note || '')) {
    b.needs = needs;
    b.needs_note = note;
  }
  return b;
}

// One PATCH with If-Match: { ok, body } | { conflict: current } | { problem } | { net }.
// (The whole problem is read here: a conflict's `current` is the stored shelter.)
async function patch(id, body, etag) {
  const r = await api(`/v1/shelters/${enc(id)}`, {
    method: 'PATCH', body: JSON.stringify(body),
    headers: { authorization: `Bearer ${state.token}`, 'content-type': 'application/json', 'if-match': etag },
  });
  if (r.net) return { net: r.net };
  if (r.ok) { put(r.body); return { ok: true, body: r.body }; }
  if (r.status === 409 && r.body?.current?.id === id) {
    put(r.body.current);
    return { conflict: r.body.current };
  }
  return r.body && typeof r.body === 'object' ? { problem: problemOf(r) } : { net: 'net_error' };
}

async function save(id, confirmOnly) {
  const s = state.rows.get(id), d = state.edit[id];
  if (!s || !d) return;
  const body = confirmOnly ? { confirm: true } : bodyOf(d, s);
  if (!Object.keys(body).length) body.confirm = true;
  d.busy = true; d.problem = null; d.net = null;
  render();
  const r = await patch(id, body, d.base);
  d.busy = false;
  if (r.ok) {
    delete state.edit[id];
    state.rowMsg[id] = { key: 'o_saved' };
    render();
    $(`edit-${id}`)?.focus();
  } else if (r.conflict) {
    delete state.edit[id];
    state.conflict[id] = { mine: body, current: r.conflict };
    render();
    $(`cf-${id}`)?.focus();
  } else {
    Object.assign(d, r.problem ? { problem: r.problem } : { net: r.net });
    render();
    const f = document.querySelector(`[data-testid="editor"][data-id="${CSS.escape(id)}"] [aria-invalid]`);
    (f || $(`ed-status-${id}`))?.focus();
  }
}

async function reapply(id) {
  const k = state.conflict[id];
  if (!k) return;
  k.busy = true;
  render();
  const cur = state.rows.get(id) || k.current;
  const r = await patch(id, k.mine, etagOf(cur));
  k.busy = false;
  if (r.ok) {
    delete state.conflict[id];
    state.rowMsg[id] = { key: 'o_saved' };
    render();
    $(`edit-${id}`)?.focus();
  } else if (r.conflict) {
    state.conflict[id] = { mine: k.mine, current: r.conflict };
    render();
    $(`cf-${id}`)?.focus();
  } else {
    state.rowMsg[id] = r.problem ? { problem: r.problem, what: 'office' } : { net: r.net };
    render();
  }
}

function keep(id) {
  delete state.conflict[id];
  state.rowMsg[id] = { key: 'o_kept' };
  render();
  $(`edit-${id}`)?.focus();
}

async function bulk(status) {
  const ids = shown().map((s) => s.id).filter((id) => state.sel.has(id));
  const body = status ? { status } : { confirm: true };
  const run = { busy: true, total: ids.length, items: [] };
  state.bulk = run;
  render();
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++], s = state.rows.get(id);
      const r = await patch(id, body, etagOf(s));
      const item = { id, name: s.name, ok: !!r.ok };
      if (r.ok) { item.outcome = 'done'; state.sel.delete(id); delete state.conflict[id]; }
      else if (r.conflict) {
        Object.assign(item, { outcome: 'conflict', who: r.conflict.updated_by });
        state.conflict[id] = { mine: body, current: r.conflict };
      } else if (r.problem) Object.assign(item, { outcome: 'problem', status: r.problem.status, detail: r.problem.detail });
      else Object.assign(item, { outcome: 'net', net: r.net });
      run.items.push(item);
      soon();
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  run.items.sort((a, b) => ids.indexOf(a.id) - ids.indexOf(b.id));
  run.busy = false;
  render();
}

async function showHistory(id) {
  if (state.hist[id]) { delete state.hist[id]; return render(); }
  state.hist[id] = { busy: true };
  render();
  const r = await call('GET', `/v1/shelters/${enc(id)}/history`, undefined, state.token);
  state.hist[id] = r.ok ? { events: r.body.events } : r;
  render();
}

// ---------- the map ----------
// The shelters the table shows (its filters apply), on a map loaded only when
// asked for (map.js and Leaflet); the table stays the accessible view.

const MAP_KEY = 'anpi.office.map';
const mapUi = { on: false, map: null, loading: false, failed: false, at: null, seen: false };

function setMap(on) {
  mapUi.on = on;
  mapUi.failed = false;
  saved(MAP_KEY, on ? '1' : '0');
  drawMap();
}

function drawMap() {
  const b = $('map-toggle'), box = $('map-box');
  b.textContent = tr(mapUi.on ? 'map_hide' : 'map_show');
  b.setAttribute('aria-expanded', String(mapUi.on));
  box.hidden = !mapUi.on;
  const visible = mapUi.on && !$('board').hidden;
  if (!visible) { mapUi.seen = false; return; }
  if (mapUi.failed) return box.replaceChildren(el('p', { class: 'msg err', role: 'status', 'data-testid': 'map-failed' }, tr('map_failed')));
  if (!mapUi.map) {
    if (mapUi.loading) return;
    mapUi.loading = true;
    box.replaceChildren(el('p', { class: 'hint busy' }, tr('map_loading')));
    import('./map.js').then((m) => m.createMap(box))
      .then((m) => { mapUi.map = m; }, () => { mapUi.failed = true; })
      .finally(() => { mapUi.loading = false; drawMap(); });
    return;
  }
  if (!mapUi.seen) mapUi.map.resize(); // it was hidden: Leaflet measures again
  mapUi.seen = true;
  const key = `${state.muni} ${state.rows.size}`; // framed anew when the municipality's shelters come
  mapUi.map.update(shown(), null, key !== mapUi.at);
  mapUi.at = key;
}

// ---------- print ----------

function printSheets() {
  const list = shown();
  const chosen = state.sel.size ? list.filter((s) => state.sel.has(s.id)) : list;
  const dl = (k, v) => [el('dt', {}, tr(k)), el('dd', {}, v)];
  $('print').replaceChildren(...chosen.map((s) => el('article', { class: 'sheet', 'data-testid': 'sheet', 'data-id': s.id, lang: i18n.lang },
    el('h1', {}, s.name),
    el('dl', {},
      dl('o_c_status', stWord(s.status)),
      dl('o_c_occ', cap(s) ? tr('o_occ_cap', { occ: s.occupancy, cap: cap(s) }) : String(s.occupancy)),
      s.capacity?.text ? dl('o_cap_text', s.capacity.text) : [],
      dl('o_c_needs', needsText(s) || '—'),
      dl('o_as_of', s.as_of ? new Date(s.as_of).toLocaleString(i18n.lang) : '—'),
      s.address ? dl('o_address', s.address) : [],
      dl('o_c_updated', s.updated_at ? `${new Date(s.updated_at).toLocaleString(i18n.lang)} ${s.updated_by || ''}` : tr('o_never'))))));
}

// ---------- CSV snapshot ----------

function csvCounts(changes) {
  const c = { opened: 0, closed: 0, recounted: 0, other: 0 };
  for (const x of changes) {
    if (!isOpen(x.status_before) && isOpen(x.status_after)) c.opened++;
    else if (isOpen(x.status_before) && !isOpen(x.status_after)) c.closed++;
    else if (x.occupancy_before !== x.occupancy_after || x.status_before !== x.status_after) c.recounted++;
  }
  return c;
}

const changeText = (x) => tr('o_change', {
  sb: x.status_before ? stWord(x.status_before) : tr('o_new'), ob: x.occupancy_before ?? '—',
  sa: stWord(x.status_after), oa: x.occupancy_after,
});

function drawCsv() {
  const c = state.csv;
  if (!c) return show($('csv-result'), []);
  if (c.busy) return show($('csv-result'), [el('p', { class: 'hint busy' }, tr('sending'))]);
  if (c.nofile) return show($('csv-result'), [el('p', { class: 'msg err', role: 'alert' }, tr('o_csv_pick'))]);
  const out = [];
  if (c.problem) {
    const lines = c.problem.errors;
    out.push(problemBox(c.problem, 'csv', null, []));
    if (lines.length) out.push(el('ul', { 'data-testid': 'csv-problems' }, lines.map((e) => el('li', {}, e.line ? tr('o_line', { n: e.line }) + ' ' : '', `${e.field}: ${fieldMsg(e)}`))));
  }
  if (c.net) out.push(netBox(c.net));
  if (c.applied) {
    const k = csvCounts(c.applied.changes || []);
    out.push(el('p', { class: 'msg', role: 'status', 'data-testid': 'csv-applied', tabindex: '-1', id: 'csv-applied' }, tr('o_csv_applied', k)));
  } else if (c.preview) {
    const p = c.preview, k = csvCounts(p.changes);
    const none = !p.open && !p.added;
    out.push(el('div', { class: 'box preview', 'data-testid': 'csv-preview' },
      el('h3', { id: 'csv-h', tabindex: '-1' }, tr('o_preview_title', { file: c.name })),
      el('p', { class: 'counts', 'data-testid': 'csv-counts', 'data-opened': k.opened, 'data-closed': k.closed, 'data-recounted': k.recounted }, tr('o_csv_counts', k)),
      p.as_of ? el('p', {}, tr('o_as_of'), ' ', when(p.as_of)) : null,
      el('p', { class: 'sub' }, tr('o_preview_note')),
      p.changes.length ? el('ul', { class: 'changes' }, p.changes.map((x) => el('li', { 'data-testid': 'csv-change', 'data-id': x.id }, el('strong', {}, x.name), ': ', changeText(x))))
        : el('p', {}, tr('o_csv_nothing')),
      none ? el('div', {}, el('p', { class: 'err', id: 'close-all-why' }, tr('o_close_all_warn')),
        el('label', { class: 'check' }, el('input', { type: 'checkbox', id: 'close-all', 'data-field': 'close_all', checked: c.closeAll, 'aria-describedby': 'close-all-why' }), ' ', tr('o_close_all'))) : null,
      el('p', { class: 'actions' },
        el('button', { type: 'button', class: 'btn primary', 'data-action': 'csv-apply' }, tr('o_apply')),
        el('button', { type: 'button', class: 'btn secondary', 'data-action': 'csv-cancel' }, tr('o_cancel')))));
  }
  show($('csv-result'), out);
}

async function csvPut(preview) {
  const c = state.csv;
  const q = [preview ? 'preview=true' : '', c.closeAll ? 'close_all=true' : ''].filter(Boolean).join('&');
  const headers = { 'content-type': 'text/csv', authorization: `Bearer ${state.token}`, accept: 'application/json' };
  try {
    const res = await fetch(`/v1/municipalities/${enc(state.muni)}/shelter-status${q ? '?' + q : ''}`, { method: 'PUT', headers, body: c.file });
    const body = await res.json().catch(() => null);
    if (res.ok) return { ok: true, body };
    if (body && typeof body === 'object') {
      return { problem: { status: res.status, detail: body.detail || body.title || '', errors: Array.isArray(body.errors) ? body.errors : [] } };
    }
    return { net: 'net_error' };
  } catch {
    return { net: navigator.onLine === false ? 'offline' : 'net_error' };
  }
}

async function csvPreview() {
  const file = $('csv-file').files[0];
  if (!file) {
    state.csv = { nofile: true };
    render();
    return $('csv-file').focus();
  }
  state.csv = { busy: true, file, name: file.name, closeAll: false };
  render();
  const r = await csvPut(true);
  Object.assign(state.csv, { busy: false }, r.ok ? { preview: r.body } : r.problem ? { problem: r.problem } : { net: r.net });
  render();
  $(r.ok ? 'csv-h' : 'csv-file')?.focus();
}

async function csvApply() {
  const c = state.csv;
  const preview = c.preview;
  Object.assign(c, { busy: true, problem: null, net: null });
  render();
  const r = await csvPut(false);
  c.busy = false;
  if (r.ok) {
    c.applied = r.body;
    for (const s of r.body.changed || []) put(s);
    render();
    $('csv-applied')?.focus();
    loadShelters();
  } else {
    Object.assign(c, r.problem ? { problem: r.problem } : { net: r.net }, { preview });
    render();
    (r.problem?.errors.some((e) => e.field === 'close_all') ? $('close-all') : $('csv-h'))?.focus();
  }
}

// ---------- announcements and incidents ----------

async function loadAnns() {
  const r = await call('GET', `/v1/municipalities/${enc(state.muni)}/announcements?limit=20`);
  state.anns = r.ok ? r.body.announcements : state.anns;
  if (!r.ok) state.annMsg = r;
  render();
}

function drawAnns() {
  const m = state.annMsg;
  const rest = markErrors($('ann'), m?.problem ? m.problem.errors : [], false, 'ann-');
  show($('ann-msg'), [!m ? null : m.busy ? el('p', { class: 'hint busy' }, tr('sending')) : m.problem ? problemBox(m.problem, 'office', null, rest)
    : m.net ? netBox(m.net) : el('p', { class: 'msg', role: 'status', 'data-testid': 'ann-done' }, tr('o_ann_done'))]);
  const list = state.anns;
  show($('anns'), [!list ? null : !list.length ? el('p', { class: 'hint' }, tr('o_ann_none'))
    : el('ul', { class: 'anns' }, list.map((a) => el('li', { class: `sev-${a.severity}`, 'data-testid': 'announcement', 'data-id': a.id, 'data-severity': a.severity },
      el('strong', {}, tr('o_sev_' + a.severity)), ' ', when(a.posted_at), ' ', a.posted_by || '',
      el('p', { lang: 'ja', 'data-testid': 'ann-ja' }, a.text),
      a.text_en ? el('p', { lang: 'en', 'data-testid': 'ann-en' }, a.text_en) : null)))]);
}

async function postAnn() {
  const body = { text: $('ann-text').value.trim(), severity: $('ann-sev').value };
  const en = $('ann-text-en').value.trim();
  if (en) body.text_en = en;
  state.annMsg = { busy: true };
  render();
  const r = await call('POST', `/v1/municipalities/${enc(state.muni)}/announcements`, body, state.token);
  state.annMsg = r;
  if (r.ok) {
    $('ann-text').value = '';
    $('ann-text-en').value = '';
    if (state.anns && !state.anns.some((a) => a.id === r.body.id)) state.anns = [r.body, ...state.anns];
  }
  render(true);
  if (!r.ok && !r.problem?.errors.length) $('ann-text').focus();
}

async function loadIncs() {
  const r = await call('GET', `/v1/incidents?municipality=${enc(state.muni)}`);
  state.incs = r.ok ? r.body.incidents : state.incs;
  if (!r.ok) state.incMsg = r;
  render();
}

function drawIncs() {
  const m = state.incMsg;
  const rest = markErrors($('inc'), m?.problem ? m.problem.errors : [], false, 'inc-');
  show($('inc-msg'), [!m ? null : m.busy ? el('p', { class: 'hint busy' }, tr('sending')) : m.problem ? problemBox(m.problem, 'office', null, rest)
    : m.net ? netBox(m.net) : el('p', { class: 'msg', role: 'status', 'data-testid': 'inc-done' }, tr(m.key))]);
  const list = state.incs;
  show($('incs'), [!list ? null : !list.length ? el('p', { class: 'hint' }, tr('o_inc_none'))
    : el('ul', { class: 'incs' }, list.map((x) => el('li', { 'data-testid': 'incident', 'data-id': x.id, 'data-closed': String(!!x.closed_at) },
      el('strong', {}, x.name), ` (${tr('hz_' + x.hazard)}) `, tr('o_inc_since'), ' ', when(x.started_at),
      x.closed_at ? [' ', tr('o_inc_closed'), ' ', when(x.closed_at)]
        : [' ', btn('inc-close', 'o_inc_close', x.id, { 'aria-label': tr('o_inc_close_one', { name: x.name }) })])))]);
}

async function startInc() {
  const body = { name: $('inc-name').value.trim(), hazard: $('inc-hazard').value, municipalities: [state.muni] };
  state.incMsg = { busy: true };
  render();
  const r = await call('POST', '/v1/incidents', body, state.token);
  state.incMsg = r.ok ? { key: 'o_inc_started' } : r;
  if (r.ok) { $('inc-name').value = ''; loadIncs(); }
  render(true);
}

async function closeInc(id) {
  state.incMsg = { busy: true };
  render();
  const r = await call('POST', `/v1/incidents/${enc(id)}/close`, undefined, state.token);
  state.incMsg = r.ok ? { key: 'o_inc_closed_msg' } : r;
  if (r.ok) loadIncs();
  render();
}

// ---------- signing in and out ----------

async function loadMe() {
  Object.assign(state, { me: null, meErr: null });
  render();
  const r = await call('GET', '/v1/me', undefined, state.token);
  if (!r.ok) { state.meErr = r; return render(); }
  state.me = r.body;
  state.muni = r.body.municipalities?.includes(state.muni) ? state.muni : r.body.municipalities?.[0] || null;
  render();
  if (state.muni) openMuni();
}

function openMuni() {
  Object.assign(state, { rows: new Map(), sel: new Set(), edit: {}, conflict: {}, rowMsg: {}, hist: {}, bulk: null, csv: null, anns: null, incs: null });
  loadShelters();
  loadAnns();
  loadIncs();
  startLive();
}

async function signIn(code) {
  state.signin = { busy: true };
  render();
  const r = await call('POST', '/v1/sign-in', { code });
  if (!r.ok) { state.signin = r; render(); return $('token').focus(); }
  state.signin = null;
  useToken(r.body.token);
}

function useToken(t) {
  state.token = t;
  saved(TOKEN, t);
  loadMe();
}

async function out() {
  const t = state.token;
  try { localStorage.removeItem(TOKEN); } catch { /* private mode */ }
  stopLive?.();
  stopLive = null;
  Object.assign(state, { token: null, me: null, meErr: null, muni: null, live: null, rows: new Map(), signin: null });
  render();
  if (t) await call('POST', '/v1/sign-out', undefined, t);
  show($('signin-msg'), [el('p', { class: 'msg', role: 'status', 'data-testid': 'signed-out' }, tr('o_signed_out'))]);
  $('token').focus();
}

// ---------- events ----------

$('signin').addEventListener('submit', (e) => {
  e.preventDefault();
  const t = $('token').value.trim();
  if (!t) return;
  $('token').value = '';
  state.signin = null;
  useToken(t);
});
$('csv').addEventListener('submit', (e) => { e.preventDefault(); csvPreview(); });
$('ann').addEventListener('submit', (e) => { e.preventDefault(); postAnn(); });
$('inc').addEventListener('submit', (e) => { e.preventDefault(); startInc(); });
$('f-q').addEventListener('input', (e) => { state.f.q = e.target.value; render(); });
$('f-status').addEventListener('change', (e) => { state.f.status = e.target.value; render(); });
$('f-stale').addEventListener('change', (e) => { state.f.stale = e.target.checked; render(); });
document.addEventListener('submit', (e) => {
  const f = e.target.closest('[data-action-form="save"]');
  if (!f) return;
  e.preventDefault();
  save(f.dataset.id, false);
});
document.addEventListener('input', (e) => {
  const t = e.target;
  if (t.dataset.draft && state.edit[t.dataset.id]) state.edit[t.dataset.id][t.dataset.draft] = t.value;
});
document.addEventListener('change', (e) => {
  const t = e.target;
  if (t.id === 'muni') { state.muni = t.value; openMuni(); return; }
  if (t.id === 'close-all' && state.csv) { state.csv.closeAll = t.checked; return; }
  if (t.dataset.need && state.edit[t.dataset.id]) {
    const d = state.edit[t.dataset.id];
    d.needs = t.checked ? [...d.needs, t.dataset.need] : d.needs.filter((n) => n !== t.dataset.need);
    return;
  }
  if (t.dataset.draft && state.edit[t.dataset.id]) state.edit[t.dataset.id][t.dataset.draft] = t.value;
  else if (t.id === 'sel-all') {
    for (const s of shown()) t.checked ? state.sel.add(s.id) : state.sel.delete(s.id);
    render();
  } else if (t.dataset.action === 'pick') {
    t.checked ? state.sel.add(t.dataset.id) : state.sel.delete(t.dataset.id);
    render();
  }
});
document.addEventListener('keydown', (e) => {
  const f = e.key === 'Escape' && e.target.closest?.('[data-testid="editor"]');
  if (!f) return;
  const id = f.dataset.id;
  delete state.edit[id];
  render();
  $(`edit-${id}`)?.focus();
});
document.addEventListener('click', (e) => {
  const b = e.target.closest('button[data-action]');
  if (!b) return;
  const { action: a, id } = b.dataset;
  if (a === 'out') out();
  else if (a === 'me') loadMe();
  else if (a === 'sort') {
    state.sort = { key: b.dataset.key, dir: state.sort.key === b.dataset.key ? -state.sort.dir : 1 };
    render();
  } else if (a === 'edit') {
    if (state.edit[id]) delete state.edit[id];
    else { state.edit[id] = draftOf(state.rows.get(id)); delete state.rowMsg[id]; }
    render();
    if (state.edit[id]) $(`ed-status-${id}`)?.focus();
  } else if (a === 'cancel') { delete state.edit[id]; render(); $(`edit-${id}`)?.focus(); }
  else if (a === 'confirm') save(id, true);
  else if (a === 'reapply') reapply(id);
  else if (a === 'keep') keep(id);
  else if (a === 'hist') showHistory(id);
  else if (a === 'bulk') bulk(b.dataset.status);
  else if (a === 'print') { printSheets(); window.print(); }
  else if (a === 'csv-apply') csvApply();
  else if (a === 'csv-cancel') { state.csv = null; render(); $('csv-file').focus(); }
  else if (a === 'inc-close') closeInc(id);
});
window.addEventListener('beforeprint', printSheets);
$('map-toggle').addEventListener('click', () => setMap(!mapUi.on));

// A sign-in link: #code=… is used once, and taken out of the address bar
// (and the history) before anything else, so that it is not shared or reused.
const code = new URLSearchParams(location.hash.slice(1)).get('code');
if (code) history.replaceState(null, '', location.pathname + location.search);
startLang(render, 'aid', 'office').then(() => {
  if (saved(MAP_KEY) === '1') setMap(true);
  if (code) signIn(code);
  else if (state.token) loadMe();
});
