// Supply points on the shelter finder: found near the point searched, with
// whether they hand out now, what is left and who says so; filtered by kind
// and "now"; and a change by the office appears without reloading.
//
//   cd tests/ui && npm ci && ANPI_BIN=$PWD/../../target/debug/anpi node --test supply.test.mjs

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { harness, asOffice } from './harness.mjs';
import { assertAxe } from './office-helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
// The finder's words and the supply points' own part.
const read = (f) => JSON.parse(fs.readFileSync(path.join(here, '../../ui/i18n', f), 'utf8'));
const dict = (lang) => ({ ...read(`${lang}.json`), ...read(`supply/${lang}.json`) });
const ja = dict('ja');
const en = dict('en');
const NANAO = '172022';

const call = asOffice;

describe('supply points on the finder', () => {
  const h = harness();
  after(h.close);

  it('lists those near the point with state, stock, queue and source; filters; updates live', async () => {
    await h.ready();
    // Handing out all day (00:00–00:00 wraps round), and one that is not now.
    const water = await call(h, 'POST', '/v1/supply-points', {
      municipality: NANAO, kind: 'water', name: '七尾市役所 給水所', lat: 37.0430, lon: 136.9671,
      hours: [{ opens: '00:00', closes: '00:00' }], queue: 'long', wait_minutes: 30,
      stock: [{ item: '2Lペットボトル', level: 'plenty' }, { item: '給水袋', level: 'low' }],
    });
    await call(h, 'POST', '/v1/supply-points', {
      municipality: NANAO, kind: 'food', name: '田鶴浜 炊き出し', lat: 37.064, lon: 136.887,
      hours: [{ date: '2024-01-10', opens: '11:00', closes: '13:00' }],
    });

    const page = await h.openPage('ja-JP');
    await page.goto(`${h.server.base}/?lat=37.0432&lon=136.9674&hazard=earthquake`);
    await page.getByRole('button', { name: ja.search }).click();
    const cards = page.getByTestId('supply');
    await cards.nth(1).waitFor();
    const first = cards.first();
    assert.equal(await first.getAttribute('data-id'), water.id, 'nearest first');
    assert.equal(await first.getByTestId('supply-state').textContent(), ja.sup_now);
    assert.match(await first.textContent(), new RegExp(ja.sk_water));
    assert.match(await first.getByTestId('supply-stock').textContent(), new RegExp(`給水袋: ${ja.lv_low}`));
    assert.match(await first.getByTestId('supply-queue').textContent(), new RegExp(ja.q_long));
    assert.match(await first.getByTestId('supply-source').textContent(), /UI test office/);
    assert.equal(await cards.nth(1).getByTestId('supply-state').textContent(), ja.sup_later);
    await assertAxe(page, 'the finder with supply points');

    // Only what hands out now; then only food (none now).
    await page.getByLabel(ja.sup_open_now).check();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="supply"]').length === 1);
    await page.getByTestId('supply-kind').selectOption('food');
    await page.getByTestId('supply-empty').waitFor();
    await page.getByLabel(ja.sup_open_now).uncheck();
    await page.getByTestId('supply-kind').selectOption('');
    await cards.nth(1).waitFor();

    // The office marks the water run out: the open page shows it.
    await call(h, 'PATCH', `/v1/supply-points/${water.id}`, { stock: [{ item: '2Lペットボトル', level: 'out' }] });
    await page.locator(`[data-testid="supply"][data-id="${water.id}"] [data-level="out"]`).waitFor();

    // The same in English, the office's words as they wrote them.
    await page.getByRole('button', { name: ja.lang_en }).click();
    await page.getByRole('heading', { name: en.sup_title }).waitFor();
    assert.match(await first.textContent(), new RegExp(`2Lペットボトル: ${en.lv_out}`));
    assert.deepEqual(page.errors, []);
  });
});
