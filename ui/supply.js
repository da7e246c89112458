// Supply points on the shelter finder: where water, food, a bath or a phone
// charge is handed out near the point searched, whether it is handing out
// now, what is left, how long the queue is, and who says so since when.
// Loaded after the first list of shelters, so the finder's first load stays small.

import { i18n, tr, trNodes, el, api, ago, jst, addPart } from './common.js';

const KINDS = ['water', 'food', 'goods', 'bath', 'charging', 'toilets', 'first_aid', 'laundry', 'other'];
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const LIMIT = 5;
const st = { box: null, at: null, kind: '', openNow: false, list: null, failed: false, seq: 0 };

const num = (n) => new Intl.NumberFormat(i18n.lang).format(n);
const dist = (m) => (m < 1000 ? `${num(Math.round(m))} m` : `${new Intl.NumberFormat(i18n.lang, { maximumFractionDigits: 1 }).format(m / 1000)} km`);

// Shows the supply points near `at` ({lat, lon}) in `box`.
export async function showSupplies(box, at) {
  st.box = box;
  st.at = at;
  await addPart('supply').catch(() => {}); // without its words the list still shows, as codes
  load();
}

// A supply point changed (live): asks again, so that filters, order and
// "open now" stay as the server computes them.
let timer = 0;
export function supplyChanged() {
  if (!st.at) return;
  clearTimeout(timer);
  timer = setTimeout(load, 300);
}

export const renderSupplies = () => st.box && st.box.replaceChildren(...view());

async function load() {
  const my = ++st.seq;
  let url = `/v1/supply-points?near=${st.at.lat},${st.at.lon}&limit=${LIMIT}`;
  if (st.kind) url += `&kind=${st.kind}`;
  if (st.openNow) url += '&open_now=true';
  const r = await api(url);
  if (my !== st.seq) return;
  st.failed = !(r.ok && Array.isArray(r.body?.supply_points));
  if (!st.failed) st.list = r.body.supply_points;
  renderSupplies();
}

function view() {
  const kind = el('select', { id: 'sup-kind', 'data-testid': 'supply-kind' },
    el('option', { value: '' }, tr('sup_all')),
    KINDS.map((k) => el('option', { value: k, selected: st.kind === k }, tr('sk_' + k))));
  kind.addEventListener('change', () => { st.kind = kind.value; load(); });
  const now = el('input', { type: 'checkbox', id: 'sup-now', checked: st.openNow });
  now.addEventListener('change', () => { st.openNow = now.checked; load(); });
  const list = st.list || [];
  return [
    el('h2', {}, tr('sup_title')),
    el('div', { class: 'sup-filter' },
      el('div', {}, el('label', { for: 'sup-kind' }, tr('sup_kind')), kind),
      el('label', { class: 'check' }, now, ' ', tr('sup_open_now'))),
    st.failed ? el('p', { class: 'msg err', role: 'status' }, tr('sup_failed'))
      : !st.list ? el('p', { class: 'hint busy' }, tr('searching'))
        : !list.length ? el('p', { class: 'hint', 'data-testid': 'supply-empty' }, tr('sup_none'))
          : el('ol', { class: 'shelters', 'data-testid': 'supply-list' }, list.map(card)),
  ];
}

function card(p) {
  const state = p.open_now ? 'now' : p.status === 'open' ? 'later' : p.status;
  return el('li', { class: 'card sup', 'data-testid': 'supply', 'data-id': p.id, 'data-state': state },
    el('div', { class: 'top' },
      el('h3', { class: 'name', lang: 'ja' }, p.name),
      typeof p.distance_m === 'number' ? el('span', { class: 'dist' }, tr('away', { d: dist(p.distance_m) })) : null),
    el('p', { class: 'meta' },
      el('span', { class: `badge sup-${state}`, 'data-testid': 'supply-state' }, tr('sup_' + state)), ' ',
      el('span', { class: 'kind' }, tr('sk_' + p.kind))),
    p.hours?.length ? el('p', { 'data-testid': 'supply-hours' }, tr('sup_hours', { h: p.hours.map(windowText).join(', ') })) : null,
    p.stock?.length ? el('ul', { class: 'stock', 'data-testid': 'supply-stock' },
      p.stock.map((s) => el('li', { class: 'lv-' + s.level, 'data-level': s.level }, el('span', { lang: 'ja' }, s.item), ': ', tr('lv_' + s.level)))) : null,
    p.queue && p.queue !== 'none' ? el('p', { 'data-testid': 'supply-queue' },
      tr('q_' + p.queue), p.wait_minutes != null ? ` ${tr('q_wait', { n: num(p.wait_minutes) })}` : '') : null,
    p.note ? el('p', { lang: 'ja' }, p.note) : null,
    byWhom(p),
    el('p', { class: 'actions' }, el('a', { class: 'btn secondary', href: `geo:${p.at.lat},${p.at.lon}` }, tr('directions'))));
}

// "10:00–16:00" every day, "mon, fri 09:00–12:00", or on one date (Japan time).
function windowText(w) {
  const span = `${w.opens}–${w.closes}`;
  if (w.date) return `${new Date(w.date + 'T00:00:00+09:00').toLocaleDateString(i18n.lang, { month: 'short', day: 'numeric', timeZone: 'Asia/Tokyo' })} ${span}`;
  if (w.days?.length) return `${w.days.filter((d) => DAYS.includes(d)).map((d) => tr('day_' + d)).join(i18n.lang === 'ja' ? '・' : ', ')} ${span}`;
  return tr('sup_daily', { span });
}

// Who says so, and since when: never a supply point without its source.
function byWhom(p) {
  const d = new Date(p.confirmed_at);
  const time = el('time', { datetime: d.toISOString(), title: jst(d) }, ago(d));
  return el('p', { class: 'fresh' + (p.stale ? ' old' : ''), 'data-testid': 'supply-source' },
    trNodes('confirmed', { time, who: p.confirmed_by || p.posted_by }), p.stale ? ` ${tr('stale_state')}` : null);
}

