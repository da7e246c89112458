// The coordinator desk (ui/desk.html) in real headless Chromium against the
// real anpi binary: a coordinator keeps their token on the device, registers a
// volunteer (QR code and sign-in link), suspends and reinstates them, and
// restores a request that three volunteers' reports had hidden.
//
//   cd tests/ui && npm ci && ANPI_BIN=$PWD/../../target/debug/anpi node --test

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { harness, coordinatorToken, officeToken } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
// The texts of the aid pages: i18n/<lang>.json, i18n/aid/<lang>.json and each page's part.
const dict = (lang) => Object.assign({}, ...['', 'aid/', 'ask/', 'volunteer/', 'desk/'].map((p) =>
  JSON.parse(fs.readFileSync(path.join(here, '../../ui/i18n', `${p}${lang}.json`), 'utf8'))));
const ja = dict('ja');
const en = dict('en');
const fill = (s, vars) => s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));

describe('coordinator desk', () => {
  const h = harness();
  after(h.close);

  async function api(method, url, body, token) {
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body) headers['content-type'] = 'application/json';
    const r = await fetch(h.server.base + url, { method, headers, body: body && JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  }

  async function openDesk(token, locale = 'ja-JP', d = ja) {
    const page = await h.openPage(locale);
    await page.goto(`${h.server.base}/desk.html`);
    await page.getByRole('heading', { level: 1, name: d.d_title }).waitFor();
    await page.getByLabel(d.d_token).fill(token);
    await page.getByRole('button', { name: d.d_save }).click();
    await page.getByTestId('me').waitFor();
    return page;
  }

  it('in Japanese: registers a volunteer with a QR code and link, suspends and reinstates them', async () => {
    await h.ready();
    const coordinator = coordinatorToken(h.server);
    const page = await openDesk(coordinator);
    assert.equal(await page.getByTestId('me').textContent(), `七尾市社会福祉協議会 ${ja.role_coordinator}`);
    assert.equal(await page.evaluate(() => localStorage.getItem('anpi.desk.token')), coordinator);
    assert.equal(await page.getByLabel(ja.d_token).isVisible(), false, 'typed once');

    await page.getByLabel(ja.d_name).fill('佐藤 花子');
    const [made] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/v1/volunteers'),
      page.getByRole('button', { name: ja.d_add }).click(),
    ]);
    assert.equal(made.status(), 201);
    const registered = await made.json();
    const qr = page.getByRole('img', { name: fill(ja.d_qr, { name: '佐藤 花子' }) });
    await qr.waitFor();
    assert.equal(await qr.getAttribute('src'), `data:image/svg+xml;base64,${Buffer.from(registered.qr_svg).toString('base64')}`);
    assert.ok(await qr.evaluate((img) => img.complete && img.naturalWidth > 100), 'the browser drew the QR code');
    assert.equal(await page.locator('svg').count(), 0, 'the SVG is an image, never parsed into the page');
    assert.equal(await page.getByLabel(ja.d_link).inputValue(), registered.sign_in_link);
    assert.match(registered.sign_in_link, /\/volunteer\.html#token=anpi_/);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'reg-h');

    const card = page.locator(`[data-testid="volunteer"][data-id="${registered.volunteer.id}"]`);
    await card.waitFor();
    assert.match(await card.textContent(), /佐藤 花子/);
    assert.equal(await card.getByTestId('status').textContent(), ja.vs_active);

    // The link signs her in on her phone.
    const phone = await h.openPage('ja-JP');
    await phone.goto(registered.sign_in_link);
    assert.equal(await phone.getByTestId('me').textContent(), '佐藤 花子（七尾市社会福祉協議会）');

    await card.getByRole('button', { name: ja.d_suspend }).click();
    await page.locator(`[data-testid="volunteer"][data-id="${registered.volunteer.id}"][data-suspended="true"]`).waitFor();
    assert.equal(await card.getByTestId('status').textContent(), ja.vs_suspended);
    assert.equal(await card.getByTestId('done').textContent(), ja.d_did_suspend);
    assert.equal((await api('GET', '/v1/me', null, registered.token)).status, 403);

    await card.getByRole('button', { name: ja.d_reinstate }).click();
    await page.locator(`[data-testid="volunteer"][data-id="${registered.volunteer.id}"][data-suspended="false"]`).waitFor();
    assert.equal((await api('GET', '/v1/me', null, registered.token)).status, 200);

    // Kept on this device: a reload opens the desk signed in.
    await page.reload();
    await page.getByTestId('me').waitFor();
    await card.waitFor();
    assert.deepEqual([...page.errors, ...phone.errors], []);
  });

  it('in English: a request hidden after three reports appears in the queue live, and is restored', async () => {
    await h.ready();
    const coordinator = coordinatorToken(h.server);
    const page = await openDesk(coordinator, 'en-US', en);
    await page.getByTestId('queue-empty').waitFor();

    const posted = await api('POST', '/v1/aid/requests', {
      category: 'other', items: [{ name: 'Generator', quantity: 1, unit: '' }], lat: 37.0613, lon: 136.9652,
      municipality: '172022', note: 'Please bring a generator',
    });
    assert.equal(posted.status, 201);
    const id = posted.body.request.id;
    const reporters = [];
    for (const name of ['A', 'B', 'C']) {
      const r = await api('POST', '/v1/volunteers', { name: `Reporter ${name}` }, coordinator);
      assert.equal(r.status, 201);
      reporters.push(r.body.token);
    }
    for (const [i, reason] of ['spam', 'spam', 'duplicate'].entries()) {
      const r = await api('POST', `/v1/aid/requests/${id}/reports`, { reason }, reporters[i]);
      assert.equal(r.status, 202, JSON.stringify(r.body));
    }
    assert.equal((await api('GET', `/v1/aid/requests/${id}`)).status, 404, 'hidden from the public');

    const item = page.locator(`[data-testid="hidden"][data-kind="requests"][data-id="${id}"]`);
    await item.waitFor(); // without pressing Refresh: the desk follows area:172022
    assert.match(await item.textContent(), /Generator/);
    assert.match(await item.textContent(), /Please bring a generator/);
    assert.equal(await item.getByTestId('reports').textContent(),
      fill(en.d_reports, { list: `${en.rr_spam} ×2, ${en.rr_duplicate} ×1` }));

    await item.getByRole('button', { name: en.d_restore }).click();
    await page.getByTestId('queue-empty').waitFor();
    const now = await api('GET', `/v1/aid/requests/${id}`);
    assert.equal(now.status, 200);
    assert.equal(now.body.hidden, false);
    assert.deepEqual((await api('GET', '/v1/aid/moderation', null, coordinator)).body, { requests: [], offers: [] });
    assert.deepEqual(page.errors, []);
  });

  it('an office moderates but has no volunteers to register; a volunteer token is turned away', async () => {
    await h.ready();
    const office = await openDesk(officeToken(h.server));
    await office.getByTestId('queue').locator(':scope > *').first().waitFor(); // the queue, whatever is in it
    assert.equal(await office.getByLabel(ja.d_name).isVisible(), false);
    assert.equal(await office.getByTestId('me').textContent(), `UI test office ${ja.role_official}`);

    const r = await api('POST', '/v1/volunteers', { name: '鈴木 一郎' }, coordinatorToken(h.server));
    const volunteer = await openDesk(r.body.token);
    await volunteer.getByText(ja.d_not_volunteer).waitFor();
    assert.equal(await volunteer.getByTestId('queue').isVisible(), false);
    assert.deepEqual([...office.errors, ...volunteer.errors], []);
  });
});
