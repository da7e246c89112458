// What changes in front of a resident without a reload: the offices'
// announcements at the top of both pages (urgent first, in the page's
// language, naming who posted them and for where), and the finder's list
// adding, dropping and recounting shelters as they open, fill and close.
//
//   cd tests/ui && npm ci && ANPI_BIN=$PWD/../../target/debug/anpi node --test

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { harness, officeToken, asOffice } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dict = (lang) => JSON.parse(fs.readFileSync(path.join(here, '../../ui/i18n', `${lang}.json`), 'utf8'));
const ja = dict('ja');
const en = dict('en');
const NANAO = '172022';

const call = asOffice;

describe('announcements on the resident pages', () => {
  const h = harness();
  after(h.close);

  it('show a relayed CAP alert at once, naming its place and issuer, and drop it when it is cancelled', async () => {
    await h.ready();
    const cap = (id, type, refs, info) => `<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>${id}</identifier><sender>pref.ishikawa.lg.jp</sender>
<sent>2024-01-01T16:22:00+09:00</sent><status>Actual</status><msgType>${type}</msgType><scope>Public</scope>${refs}${info}</alert>`;
    const info = `<info><language>ja-JP</language><category>Safety</category><event>避難指示</event><urgency>Immediate</urgency>
<severity>Extreme</severity><certainty>Observed</certainty><senderName>石川県危機対策課</senderName>
<headline>七尾市に避難指示</headline><area><areaDesc>石川県七尾市</areaDesc>
<geocode><valueName>JIS X0402</valueName><value>${NANAO}</value></geocode></area></info>`;
    const post = async (xml) => {
      const r = await fetch(`${h.server.base}/v1/alerts`, {
        method: 'POST', body: xml,
        headers: { authorization: `Bearer ${h.token ??= officeToken(h.server)}`, 'content-type': 'application/cap+xml' },
      });
      assert.equal(r.status, 201, await r.text());
    };
    // The finder listens to the municipalities of what it lists.
    const page = await h.openPage('ja-JP');
    await page.goto(`${h.server.base}/`);
    await page.getByRole('button', { name: ja.search }).click();
    await page.getByTestId('count').waitFor();
    await page.waitForTimeout(500);
    await post(cap('ISK-UI-1', 'Alert', '', info));
    const item = page.locator('[data-testid="announcement"][data-severity="urgent"]');
    await item.waitFor();
    assert.match(await item.textContent(), /七尾市に避難指示/);
    assert.match(await item.textContent(), /避難指示/);
    const meta = await item.getByTestId('announcement-meta').textContent();
    assert.ok(meta.includes('石川県七尾市') && meta.includes('石川県危機対策課') && meta.includes('UI test office'), meta);
    await post(cap('ISK-UI-2', 'Cancel', '<references>pref.ishikawa.lg.jp,ISK-UI-1,2024-01-01T16:22:00+09:00</references>', ''));
    await item.waitFor({ state: 'detached' });
    assert.deepEqual(page.errors, []);
  });

  it('show at the top of the finder and the safety page, urgent first, live, in the page\'s language, with issuer and place', async () => {
    await h.ready();
    await call(h, 'POST', '/v1/incidents', { name: '能登半島地震', hazard: 'earthquake', municipalities: [NANAO] });
    await call(h, 'POST', `/v1/municipalities/${NANAO}/announcements`,
      { text: '給水は市役所で10時から', text_en: 'Water at the city hall from 10:00', severity: 'info' });
    await call(h, 'POST', `/v1/municipalities/${NANAO}/announcements`, { text: '道路の通行止めにご注意ください', severity: 'warning' });

    const finder = await h.openPage('ja-JP');
    await finder.goto(`${h.server.base}/`);
    const items = finder.getByTestId('announcement');
    await items.nth(1).waitFor();
    assert.deepEqual(await items.evaluateAll((e) => e.map((x) => x.dataset.severity)), ['warning', 'info']);
    const info = items.nth(1);
    assert.match(await info.textContent(), /給水は市役所で10時から/);
    assert.doesNotMatch(await info.textContent(), /Water at the city hall/, 'the Japanese page shows the Japanese text');
    const meta = await info.getByTestId('announcement-meta').textContent();
    assert.ok(meta.includes(ja.muni_172022) && meta.includes('UI test office'), `issuer and place: ${meta}`);
    assert.ok((await info.textContent()).includes(ja.sev_info));
    // Above everything else on the page.
    const top = await finder.evaluate(() => document.querySelector('main').firstElementChild.id);
    assert.equal(top, 'news');

    // An urgent one posted now comes to the top of the open page.
    await call(h, 'POST', `/v1/municipalities/${NANAO}/announcements`,
      { text: '津波警報：高台へ避難してください', text_en: 'Tsunami warning: go to high ground', severity: 'urgent' });
    await finder.locator('[data-testid="announcement"][data-severity="urgent"]').waitFor();
    assert.deepEqual(await items.evaluateAll((e) => e.map((x) => x.dataset.severity)), ['urgent', 'warning', 'info']);
    assert.match(await items.first().textContent(), /津波警報/);
    assert.ok((await items.first().textContent()).includes(ja.sev_urgent));

    // The safety page in English: text_en where given, else the Japanese text.
    const safety = await h.openPage('en-US');
    await safety.goto(`${h.server.base}/safety.html`);
    const sItems = safety.getByTestId('announcement');
    await sItems.nth(2).waitFor();
    assert.deepEqual(await sItems.evaluateAll((e) => e.map((x) => x.dataset.severity)), ['urgent', 'warning', 'info']);
    assert.match(await sItems.first().textContent(), /Tsunami warning: go to high ground/);
    assert.ok((await sItems.first().textContent()).includes(en.sev_urgent));
    assert.match(await sItems.nth(1).textContent(), /道路の通行止め/, 'no English given: the Japanese text');
    assert.equal(await sItems.nth(1).locator('.ann-text').getAttribute('lang'), 'ja');
    assert.match(await sItems.nth(2).textContent(), /Water at the city hall from 10:00/);
    const sMeta = await sItems.nth(2).getByTestId('announcement-meta').textContent();
    assert.ok(sMeta.includes(en.muni_172022) && sMeta.includes('UI test office'), sMeta);
    assert.deepEqual([...finder.errors, ...safety.errors], []);
  });

  it('say honestly that the sample shelters are the city\'s state of 2024-01-09 18:00', async () => {
    const page = await h.openPage('ja-JP');
    await page.goto(`${h.server.base}/?lat=37.0432&lon=136.9674`);
    const line = page.locator('[data-testid="freshness"][data-sample]').first();
    await line.waitFor();
    assert.equal(await line.textContent(), ja.as_of_sample.replace('{time}', '2024-01-09 18:00'));
    assert.deepEqual(page.errors, []);
  });
});

describe('the finder\'s live list', () => {
  // Every shelter starts closed.
  const h = harness({ ANPI_SAMPLE_STATE: 'false' });
  after(h.close);

  it('with "open with room" ticked, adds a shelter that opens, drops one that fills or closes, and recounts', async () => {
    await h.ready();
    const near = await (await fetch(`${h.server.base}/v1/shelters?near=37.0432,136.9674&hazard=earthquake&limit=10`)).json();
    const [a, b] = near.shelters.filter((s) => s.capacity?.indoor > 0);
    assert.ok(a && b, 'two earthquake shelters with an indoor capacity near central Nanao');

    const page = await h.openPage('en-US');
    await page.goto(`${h.server.base}/`);
    await page.getByRole('heading', { level: 1, name: en.title }).waitFor();
    assert.equal(await page.getByLabel(en.only_open).isChecked(), true);
    await page.getByRole('button', { name: en.search }).click();
    await page.getByTestId('empty').waitFor();
    await page.locator('[data-testid="live"][data-live="on"]').waitFor();

    const cards = page.getByTestId('shelter');
    const ids = () => cards.evaluateAll((e) => e.map((x) => x.dataset.id));
    const count = (n) => en.count.replace('{n}', n).replace('{hazard}', en.hz_earthquake);

    await call(h, 'PATCH', `/v1/shelters/${a.id}`, { status: 'open', occupancy: 5 });
    await page.locator(`[data-testid="shelter"][data-id="${a.id}"]`).waitFor();
    assert.equal(await page.getByTestId('count').textContent(), count(1));
    assert.equal(await page.getByTestId('empty').count(), 0);

    await call(h, 'PATCH', `/v1/shelters/${b.id}`, { status: 'open', occupancy: 1 });
    await page.locator(`[data-testid="shelter"][data-id="${b.id}"]`).waitFor();
    assert.deepEqual(await ids(), [a.id, b.id], 'nearest first');
    assert.equal(await page.getByTestId('count').textContent(), count(2));
    assert.match(await page.locator(`[data-testid="shelter"][data-id="${b.id}"] [data-testid="distance"]`).textContent(), /\d\s?(m|km)/);

    // A fills up (the office's count reaches its capacity): no room, so it goes.
    await call(h, 'PATCH', `/v1/shelters/${a.id}`, { occupancy: a.capacity.indoor });
    await page.locator(`[data-testid="shelter"][data-id="${a.id}"]`).waitFor({ state: 'detached' });
    assert.deepEqual(await ids(), [b.id]);
    assert.equal(await page.getByTestId('count').textContent(), count(1));

    // B closes: nothing is left, and the page says so.
    await call(h, 'PATCH', `/v1/shelters/${b.id}`, { status: 'closed' });
    await page.getByTestId('empty').waitFor();
    assert.equal(await cards.count(), 0);
    assert.deepEqual(page.errors, []);
  });

  it('without the filter, keeps a shelter that closes and shows it closed', async () => {
    await h.ready();
    const page = await h.openPage('en-US');
    await page.goto(`${h.server.base}/`);
    await page.getByLabel(en.only_open).uncheck();
    await page.getByRole('button', { name: en.search }).click();
    await page.locator('[data-testid="live"][data-live="on"]').waitFor();
    const id = await page.getByTestId('shelter').first().getAttribute('data-id');
    await call(h, 'PATCH', `/v1/shelters/${id}`, { status: 'open', occupancy: 3 });
    await page.locator(`[data-testid="shelter"][data-id="${id}"][data-status="open"]`).waitFor();
    await call(h, 'PATCH', `/v1/shelters/${id}`, { status: 'closed' });
    await page.locator(`[data-testid="shelter"][data-id="${id}"][data-status="closed"]`).waitFor();
    assert.equal(await page.getByTestId('shelter').count(), 10);
    assert.deepEqual(page.errors, []);
  });

  it('names a shelter\'s needs in the page\'s language, whatever language the office works in, with its note as written', async () => {
    await h.ready();
    const page = await h.openPage('ja-JP');
    await page.goto(`${h.server.base}/`);
    await page.getByLabel(ja.only_open).uncheck();
    await page.getByRole('button', { name: ja.search }).click();
    await page.locator('[data-testid="live"][data-live="on"]').waitFor();
    const id = await page.getByTestId('shelter').first().getAttribute('data-id');
    await call(h, 'PATCH', `/v1/shelters/${id}`, { status: 'open', needs: ['water', 'baby_supplies'], needs_note: '粉ミルクは缶で' });
    const needs = page.locator(`[data-testid="shelter"][data-id="${id}"] [data-testid="needs"]`);
    await needs.waitFor();
    const list = `${ja.need_water}、${ja.need_baby_supplies} (粉ミルクは缶で)`;
    assert.equal(await needs.textContent(), ja.needs.replace('{list}', list));
    assert.deepEqual(page.errors, []);
  });
});
