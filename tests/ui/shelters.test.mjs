// The resident web UI in real headless Chromium against the real anpi binary.
//
//   cd tests/ui && npm ci && ANPI_BIN=$PWD/../../target/debug/anpi node --test
//
// (harness.mjs: ANPI_BIN, CHROMIUM, and how the server and browser are started.)

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { harness, officeToken } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const i18n = (lang) => JSON.parse(fs.readFileSync(path.join(here, '../../ui/i18n', `${lang}.json`), 'utf8'));
const ja = i18n('ja');
const en = i18n('en');
const SCREENSHOTS = path.join(here, 'screenshots');
const JAPANESE = /[\u3040-\u30ff\u3400-\u9fff]/;

describe('resident shelter finder', () => {
  // These stories start from a registry where every shelter is closed.
  const h = harness({ ANPI_SAMPLE_STATE: 'false' });
  after(h.close);
  const openPage = h.openPage;

  async function gotoHome(page, dict, query = '') {
    await page.goto(`${h.server.base}/${query}`);
    await page.getByRole('heading', { level: 1, name: dict.title }).waitFor();
  }

  /** Clicks the search button and returns the /v1/shelters response it caused. */
  async function search(page, dict) {
    const [response] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/shelters'),
      page.getByRole('button', { name: dict.search }).click(),
    ]);
    return response;
  }

  it('in Japanese, lists the 10 nearest earthquake shelters from central Nanao, nearest first', async () => {
    const page = await openPage('ja-JP');
    await gotoHome(page, ja);
    assert.equal(await page.locator('html').getAttribute('lang'), 'ja');
    assert.equal(await page.getByLabel(ja.lat).inputValue(), '37.0432');
    assert.equal(await page.getByLabel(ja.lon).inputValue(), '136.9674');
    assert.equal(await page.getByLabel(ja.hazard).inputValue(), 'earthquake');
    const filter = page.getByLabel(ja.only_open);
    assert.equal(await filter.isChecked(), true, 'the open-with-room filter is on by default');
    await filter.uncheck();

    const response = await search(page, ja);
    const q = new URL(response.url()).searchParams;
    assert.equal(q.get('near'), '37.0432,136.9674');
    assert.equal(q.get('limit'), '10');
    assert.equal(q.get('hazard'), 'earthquake');
    assert.equal(q.get('status'), null);
    assert.equal(q.get('has_room'), null);
    assert.equal(response.status(), 200);
    const api = (await response.json()).shelters;

    const cards = page.getByTestId('shelter');
    await cards.first().waitFor();
    assert.equal(await cards.count(), 10);
    const distances = await cards.evaluateAll((els) => els.map((e) => Number(e.dataset.distanceM)));
    for (const [i, d] of distances.entries()) {
      assert.ok(Number.isFinite(d), `shelter ${i} has a distance`);
      if (i > 0) assert.ok(d >= distances[i - 1], `nearest first: ${distances.join(', ')}`);
    }
    const names = await page.getByTestId('shelter-name').allTextContents();
    assert.deepEqual(names, api.map((s) => s.name), 'the page shows the API order, Japanese names');
    for (const n of names) assert.match(n, JAPANESE);
    for (const d of await page.getByTestId('distance').allTextContents()) assert.match(d, /\d\s?(m|km)/);
    const statusTexts = new Set(['open', 'full', 'closed', 'unsafe'].map((s) => ja[`st_${s}`]));
    for (const s of await page.getByTestId('status').allTextContents()) assert.ok(statusTexts.has(s), `status text ${s}`);
    for (const f of await page.getByTestId('freshness').allTextContents()) {
      assert.ok(f === ja.not_confirmed || f.startsWith(ja.confirmed.split('{')[0]), `freshness line: ${f}`);
    }
    assert.equal(await page.getByTestId('credit').textContent(), ja.credit);
    assert.deepEqual(page.errors, []);
  });

  it('switches to English without reloading, and keeps English after a reload', async () => {
    const page = await openPage('ja-JP');
    await gotoHome(page, ja);
    await page.getByLabel(ja.only_open).uncheck();
    const api = (await (await search(page, ja)).json()).shelters;
    await page.getByTestId('shelter').first().waitFor();
    await page.evaluate(() => { window.sameDocument = true; });

    await page.getByRole('button', { name: 'English' }).click();
    await page.getByRole('heading', { level: 1, name: en.title }).waitFor();
    assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    assert.equal(await page.evaluate(() => window.sameDocument), true, 're-rendered, not reloaded');
    assert.equal(await page.getByRole('button', { name: 'English' }).getAttribute('aria-pressed'), 'true');
    const hazard = page.getByLabel(en.hazard);
    await hazard.selectOption({ label: 'Tsunami' });
    assert.equal(await hazard.inputValue(), 'tsunami');
    assert.equal(await page.getByLabel(en.only_open).count(), 1);
    // The results already on screen are re-rendered in English too.
    const first = api[0];
    const firstName = await page.getByTestId('shelter-name').first().textContent();
    assert.ok(firstName.includes(first.name), `the Japanese name stays beside: ${firstName}`);
    if (first.name_en) assert.ok(firstName.includes(first.name_en), `English name shown: ${firstName}`);
    assert.equal(await page.getByTestId('status').first().textContent(), en[`st_${first.status}`]);

    await page.reload();
    await page.getByRole('heading', { level: 1, name: en.title }).waitFor();
    assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    assert.equal(await page.getByLabel(en.hazard).locator('option', { hasText: 'Tsunami' }).count(), 1);

    await page.getByRole('button', { name: '日本語' }).click();
    await page.getByRole('heading', { level: 1, name: ja.title }).waitFor();
    assert.equal(await page.locator('html').getAttribute('lang'), 'ja');
    assert.deepEqual(page.errors, []);
  });

  it('with the open-with-room filter on a fresh registry (all closed), says none match and what to try', async () => {
    const page = await openPage('ja-JP');
    await gotoHome(page, ja);
    const response = await search(page, ja);
    const q = new URL(response.url()).searchParams;
    assert.equal(q.get('status'), 'open');
    assert.equal(q.get('has_room'), 'true');
    assert.deepEqual((await response.json()).shelters, []);
    const empty = page.getByTestId('empty');
    await empty.waitFor();
    const text = await empty.textContent();
    assert.ok(text.includes(ja.empty), text);
    assert.ok(text.includes(ja.empty_hint_filter), text);
    assert.equal(await page.getByTestId('shelter').count(), 0);
    assert.deepEqual(page.errors, []);
  });

  it("shows the server's field error when the latitude is out of range", async () => {
    const page = await openPage('ja-JP');
    await gotoHome(page, ja);
    await page.getByLabel(ja.lat).fill('123');
    const response = await search(page, ja);
    assert.equal(response.status(), 400);
    assert.match(response.headers()['content-type'], /application\/problem\+json/);
    const problem = await response.json();
    assert.equal(problem.errors[0].field, 'near');

    const fieldError = page.getByTestId('field-error-near');
    await fieldError.waitFor();
    assert.ok((await fieldError.textContent()).includes(problem.errors[0].message));
    assert.equal(await page.getByTestId('problem-detail').textContent(), problem.detail);
    assert.equal(await page.getByLabel(ja.lat).getAttribute('aria-invalid'), 'true');
    assert.equal(await page.getByTestId('shelter').count(), 0);
    assert.deepEqual(page.errors, []);
  });

  it('screenshots the Japanese result list', async () => {
    const page = await openPage('ja-JP');
    await gotoHome(page, ja);
    await page.getByLabel(ja.only_open).uncheck();
    await search(page, ja);
    await page.getByTestId('shelter').first().waitFor();
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    const file = path.join(SCREENSHOTS, 'results-ja.png');
    await page.getByTestId('results').screenshot({ path: file });
    assert.ok(fs.statSync(file).size > 10_000, 'a real picture');
  });

  it('on a network failure shows a retry message and a Retry button that works', async () => {
    // page.route does not see what a service worker fetches: this story has none.
    const page = await openPage('ja-JP', { serviceWorkers: 'block' });
    await gotoHome(page, ja);
    await page.getByLabel(ja.only_open).uncheck();
    await page.route('**/v1/shelters?*', (route) => route.abort('internetdisconnected'));
    await page.getByRole('button', { name: ja.search }).click();
    const failure = page.getByTestId('network-error');
    await failure.waitFor();
    assert.ok((await failure.textContent()).includes(ja.net_error));
    await page.unroute('**/v1/shelters?*');
    await page.getByRole('button', { name: ja.retry }).click();
    await page.getByTestId('shelter').first().waitFor();
    assert.equal(await page.getByTestId('shelter').count(), 10);
    assert.equal(await page.getByTestId('network-error').count(), 0);
    assert.deepEqual(page.errors, []);
  });

  it('searches at once from ?lat=..&lon=.. in the address', async () => {
    const page = await openPage('ja-JP');
    const [response] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/shelters'),
      gotoHome(page, ja, '?lat=37.0613&lon=136.9652'),
    ]);
    assert.equal(new URL(response.url()).searchParams.get('near'), '37.0613,136.9652');
    assert.equal(await page.getByLabel(ja.lat).inputValue(), '37.0613');
    assert.equal(await page.getByLabel(ja.lon).inputValue(), '136.9652');
    assert.deepEqual(page.errors, []);
  });

  it('"Use my location" searches from the device position, and explains a refusal', async () => {
    const allowed = await openPage('en-US', {
      geolocation: { latitude: 37.0613, longitude: 136.9652, accuracy: 30 },
      permissions: ['geolocation'],
    });
    await gotoHome(allowed, en);
    await allowed.getByLabel(en.only_open).uncheck();
    const [response] = await Promise.all([
      allowed.waitForResponse((r) => new URL(r.url()).pathname === '/v1/shelters'),
      allowed.getByRole('button', { name: en.locate }).click(),
    ]);
    assert.equal(new URL(response.url()).searchParams.get('near'), '37.06130,136.96520');
    await allowed.getByTestId('shelter').first().waitFor();

    const denied = await openPage('en-US');
    await gotoHome(denied, en);
    await denied.getByRole('button', { name: en.locate }).click();
    await denied.getByText(en.geo_denied).waitFor();
    assert.deepEqual([...allowed.errors, ...denied.errors], []);
  });

  it('keeps the listed shelters current: an office opens one and its card changes without a reload', async () => {
    const page = await openPage('en-US');
    await gotoHome(page, en);
    await page.getByLabel(en.only_open).uncheck();
    await search(page, en);
    await page.locator('[data-testid="live"][data-live="on"]').waitFor();
    assert.equal(await page.getByTestId('live').textContent(), en.live_on);

    const id = await page.getByTestId('shelter').first().getAttribute('data-id');
    const token = officeToken(h.server);
    const r = await fetch(`${h.server.base}/v1/shelters/${id}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ status: 'open', occupancy: 42 }),
    });
    assert.equal(r.status, 200, await r.text());

    const card = page.locator(`[data-testid="shelter"][data-id="${id}"][data-status="open"]`);
    await card.waitFor();
    assert.match(await card.locator('.occ').textContent(), /\b42\b/);
    assert.equal(await card.getByTestId('status').textContent(), en.st_open);
    assert.deepEqual(page.errors, []);
  });
});
