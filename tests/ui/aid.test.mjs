// "Ask for help" (ui/aid.html) in real headless Chromium against the real anpi
// binary: a resident asks from a shelter's link, is told beside the field what
// is wrong, keeps the edit link, and — from that link on another phone —
// reconfirms, sees a volunteer's claim arrive live and confirms receipt, or
// withdraws.
//
//   cd tests/ui && npm ci && ANPI_BIN=$PWD/../../target/debug/anpi node --test

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { harness, coordinatorToken } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
// The texts of the aid pages: i18n/<lang>.json, i18n/aid/<lang>.json and each page's part.
const dict = (lang) => Object.assign({}, ...['', 'aid/', 'ask/', 'volunteer/', 'desk/'].map((p) =>
  JSON.parse(fs.readFileSync(path.join(here, '../../ui/i18n', `${p}${lang}.json`), 'utf8'))));
const ja = dict('ja');
const en = dict('en');
const fill = (s, vars) => s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
const SHELTER = 'CC0000000527'; // 七尾市役所（４F）, one of the sample shelters

describe('ask for help', () => {
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

  /** A volunteer of Nanao, registered by a coordinator through the API. */
  async function volunteer(name) {
    const r = await api('POST', '/v1/volunteers', { name }, coordinatorToken(h.server));
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.token;
  }

  it('in Japanese: asks from a shelter link, shows a bad quantity at its field, keeps the edit link', async () => {
    await h.ready();
    const shelter = (await api('GET', `/v1/shelters/${SHELTER}`)).body;
    const page = await h.openPage('ja-JP');
    await page.goto(`${h.server.base}/aid.html?shelter=${SHELTER}`);
    await page.getByRole('heading', { level: 1, name: ja.a_title }).waitFor();
    await page.getByTestId('shelter-msg').filter({ hasText: shelter.name }).waitFor();
    assert.equal(await page.getByTestId('shelter-msg').textContent(), fill(ja.a_shelter_is, { name: shelter.name }));
    assert.equal(await page.getByLabel(ja.a_shelter).inputValue(), SHELTER);
    assert.equal(await page.getByLabel(ja.a_muni, { exact: true }).inputValue(), '172022');
    assert.equal(Number(await page.getByLabel(ja.lat, { exact: true }).inputValue()), shelter.location.lat);
    assert.equal(Number(await page.getByLabel(ja.lon, { exact: true }).inputValue()), shelter.location.lon);
    assert.equal(await page.getByLabel(ja.a_urgency).inputValue(), 'normal');

    await page.getByLabel(ja.kind).selectOption({ label: ja.cat_baby_supplies });
    await page.getByLabel(ja.a_item, { exact: true }).fill('粉ミルク');
    const qty = page.getByLabel(ja.a_qty, { exact: true });
    await qty.fill('0');
    await page.getByLabel(ja.a_unit, { exact: true }).fill('缶');
    await page.getByLabel(ja.a_urgency).selectOption({ label: ja.u_high });
    await page.getByLabel(ja.phone, { exact: true }).fill('090-1234-5678');
    await page.getByLabel(ja.a_note).fill('市役所4階の受付にいます');

    const send = () => Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/v1/aid/requests'),
      page.getByRole('button', { name: ja.a_send }).click(),
    ]).then(([r]) => r);
    const refused = await send();
    assert.equal(refused.status(), 400);
    const problem = await refused.json();
    assert.deepEqual(problem.errors.map((e) => e.field), ['items[0].quantity']);
    const err = page.getByTestId('field-error-items[0].quantity');
    await err.waitFor();
    assert.equal(await err.textContent(), ja.e_items_quantity, 'in Japanese, not the server’s English');
    assert.equal(await qty.getAttribute('aria-invalid'), 'true');
    assert.ok((await qty.getAttribute('aria-describedby')).split(' ').includes(await err.getAttribute('id')));
    assert.equal(await page.evaluate(() => document.activeElement?.id), await qty.getAttribute('id'), 'focus on the field');
    assert.equal(await page.getByTestId('problem-text').textContent(), ja.p_400);

    // A second line, its quantity typed in full-width digits as Japanese keyboards do.
    await qty.fill('3');
    await page.getByRole('button', { name: ja.a_add }).click();
    await page.getByLabel(ja.a_item, { exact: true }).nth(1).fill('おむつ（Mサイズ）');
    await page.getByLabel(ja.a_qty, { exact: true }).nth(1).fill('２');
    await page.getByLabel(ja.a_unit, { exact: true }).nth(1).fill('袋');
    const created = await send();
    assert.equal(created.status(), 201, await created.text());
    const posted = await created.json();
    const sent = page.getByTestId('sent');
    await sent.waitFor();
    assert.equal(await page.getByTestId('edit-link').inputValue(), new URL(posted.edit_link, h.server.base).href);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'sent-h');
    assert.equal(await page.locator('[aria-invalid]').count(), 0, 'the error is gone');
    assert.equal(await page.getByTestId('field-error-items[0].quantity').count(), 0);
    const kept = await page.evaluate(() => JSON.parse(localStorage.getItem('anpi.aid.mine')));
    assert.deepEqual(kept.map((k) => [k.id, k.key]), [[posted.request.id, posted.edit_key]]);
    const keptLink = page.getByTestId('kept').getByRole('link');
    assert.equal(await keptLink.getAttribute('href'), `aid.html#request=${posted.request.id}&key=${posted.edit_key}`);

    // What the server stored is what was typed.
    const stored = (await api('GET', `/v1/aid/requests/${posted.request.id}`, null, posted.edit_key)).body;
    assert.deepEqual(stored.items, [{ name: '粉ミルク', quantity: 3, unit: '缶' }, { name: 'おむつ（Mサイズ）', quantity: 2, unit: '袋' }]);
    assert.equal(stored.category, 'baby_supplies');
    assert.equal(stored.urgency, 'high');
    assert.equal(stored.shelter_id, SHELTER);
    assert.equal(stored.municipality, '172022');
    assert.deepEqual(stored.contact, { phone: '090-1234-5678', text: null });
    assert.equal(stored.note, '市役所4階の受付にいます');

    // ---- the edit link, opened on another phone ----
    const other = await h.openPage('ja-JP');
    const reads = [];
    other.on('request', (r) => { if (new URL(r.url()).pathname === `/v1/aid/requests/${posted.request.id}`) reads.push(r.method()); });
    await other.goto(new URL(posted.edit_link, h.server.base).href);
    const card = other.getByTestId('request');
    await card.waitFor();
    await other.locator('[data-testid="live"][data-live="on"]').waitFor();
    assert.equal(await card.getByTestId('status').textContent(), ja.rs_open);
    assert.equal(await other.getByTestId('progress').textContent(), fill(ja.a_progress, { q: 5, c: 0, r: 5 }));
    assert.match(await card.textContent(), /090-1234-5678/);
    assert.equal(await other.getByTestId('no-claims').textContent(), ja.a_no_claims);
    assert.ok(await other.evaluate((id) => JSON.parse(localStorage.getItem('anpi.aid.mine')).some((k) => k.id === id), posted.request.id),
      'the opened link is kept on this phone too');

    // Reconfirm.
    const before = await other.getByTestId('confirmed').getAttribute('data-at');
    await new Promise((r) => setTimeout(r, 20));
    await other.getByRole('button', { name: ja.a_confirm }).click();
    await other.getByTestId('action-done').filter({ hasText: ja.a_did_confirm }).waitFor();
    const after = await other.getByTestId('confirmed').getAttribute('data-at');
    assert.ok(new Date(after) > new Date(before), `${after} after ${before}`);
    assert.equal((await api('GET', `/v1/aid/requests/${posted.request.id}`, null, posted.edit_key)).body.confirmed_at, after);

    // A volunteer takes on 2 units: the page hears it on the request's inbox.
    const readsBefore = reads.length;
    const claimed = await api('POST', `/v1/aid/requests/${posted.request.id}/claims`, { quantity: 2 }, await volunteer('山田 太郎'));
    assert.equal(claimed.status, 201, JSON.stringify(claimed.body));
    const claim = other.locator('[data-testid="claim"][data-status="live"]');
    await claim.waitFor();
    assert.match(await claim.textContent(), new RegExp(`${fill(ja.a_claim, { n: 2 })}\\s*${ja.cs_live}`));
    await card.locator(`[data-status="partially_claimed"]`).waitFor();
    assert.equal(await other.getByTestId('progress').textContent(), fill(ja.a_progress, { q: 5, c: 2, r: 3 }));
    assert.equal(reads.length, readsBefore, 'told over the live socket, not by asking again');

    // Receipt.
    await other.getByRole('button', { name: ja.a_received }).click();
    await card.locator('[data-status="fulfilled"]').waitFor();
    assert.equal(await card.getByTestId('status').textContent(), ja.rs_fulfilled);
    assert.equal(await other.getByTestId('closed').textContent(), ja.a_closed);
    assert.equal(await other.getByRole('button', { name: ja.a_confirm }).count(), 0);
    assert.equal((await api('GET', `/v1/aid/requests/${posted.request.id}`, null, posted.edit_key)).body.status, 'fulfilled');
    assert.deepEqual([...page.errors, ...other.errors], []);
  });

  it('in English: from "use my location"; errors at their fields, first one focused, in the language chosen; withdrawn from its link', async () => {
    await h.ready();
    const page = await h.openPage('en-US', {
      geolocation: { latitude: 37.0613, longitude: 136.9652, accuracy: 25 },
      permissions: ['geolocation'],
    });
    await page.goto(`${h.server.base}/aid.html`);
    await page.getByRole('heading', { level: 1, name: en.a_title }).waitFor();
    await page.getByRole('button', { name: en.locate }).click();
    await page.getByText(fill(en.geo_ok, { acc: 25 })).waitFor();
    const lat = page.getByLabel(en.lat, { exact: true });
    assert.equal(await lat.inputValue(), '37.06130');
    assert.equal(await page.getByLabel(en.lon, { exact: true }).inputValue(), '136.96520');
    const muni = page.getByLabel(en.a_muni, { exact: true });
    await page.waitForFunction(() => document.getElementById('municipality').value !== '');
    assert.equal(await muni.inputValue(), '172022', "the nearest shelter's municipality");

    await page.getByLabel(en.kind).selectOption({ label: en.cat_clean_up });
    await page.getByLabel(en.a_item, { exact: true }).fill('Mud-out of the ground floor');
    await page.getByLabel(en.a_qty, { exact: true }).fill('4');
    await page.getByLabel(en.a_unit, { exact: true }).fill('people');
    // Three mistakes; the server names the shelter first, the page has the latitude first.
    await lat.fill('95');
    await page.getByLabel(en.a_shelter).fill('NO-SUCH-SHELTER');
    const phone = page.getByLabel(en.phone, { exact: true });
    await phone.fill('12345');
    const [refused] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/v1/aid/requests'),
      page.getByRole('button', { name: en.a_send }).click(),
    ]);
    assert.deepEqual((await refused.json()).errors.map((e) => e.field), ['shelter_id', 'lat', 'contact.phone']);
    for (const [field, text] of [['lat', en.e_lat], ['shelter_id', en.e_shelter_id], ['contact.phone', en.e_contact_phone]]) {
      assert.equal(await page.getByTestId(`field-error-${field}`).textContent(), text);
    }
    for (const input of [lat, page.getByLabel(en.a_shelter), phone]) assert.equal(await input.getAttribute('aria-invalid'), 'true');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'lat', 'the first wrong field on the page');

    // Switching the language says the same in Japanese, where it stands.
    await page.getByRole('button', { name: en.lang_ja }).click();
    await page.getByRole('heading', { level: 1, name: ja.a_title }).waitFor();
    assert.equal(await page.getByTestId('field-error-contact.phone').textContent(), ja.e_contact_phone);
    await page.getByRole('button', { name: ja.lang_en }).click();
    await page.getByRole('heading', { level: 1, name: en.a_title }).waitFor();

    await lat.fill('37.0613');
    await page.getByLabel(en.a_shelter).fill('');
    await phone.fill('0767-53-1111');
    const [created] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/v1/aid/requests'),
      page.getByRole('button', { name: en.a_send }).click(),
    ]);
    assert.equal(created.status(), 201);
    const posted = await created.json();
    await page.evaluate(() => { window.sameDocument = true; });
    await page.getByRole('link', { name: en.a_open }).click();
    const card = page.getByTestId('request');
    await card.waitFor();
    assert.equal(await page.evaluate(() => window.sameDocument), true, 'opened in place, from the hash');
    assert.equal(await card.getByTestId('status').textContent(), en.rs_open);
    assert.equal(await page.getByRole('button', { name: en.a_received }).count(), 0, 'nothing to receive before a claim');

    await page.getByRole('button', { name: en.a_withdraw }).click();
    const sure = page.getByRole('group', { name: en.a_sure });
    await sure.waitFor();
    assert.equal((await api('GET', `/v1/aid/requests/${posted.request.id}`, null, posted.edit_key)).body.status, 'open', 'not before confirming');
    await sure.getByRole('button', { name: en.a_withdraw_yes }).click();
    await card.locator('[data-status="withdrawn"]').waitFor();
    assert.equal(await page.getByTestId('action-done').textContent(), en.a_did_withdrawn);
    assert.equal((await api('GET', `/v1/aid/requests/${posted.request.id}`, null, posted.edit_key)).body.status, 'withdrawn');

    // A link with a wrong key opens nothing (the server answers the public view).
    await page.goto(`${h.server.base}/aid.html#request=${posted.request.id}&key=anpi_edit_${'0'.repeat(64)}`);
    await page.reload();
    await page.getByTestId('bad-link').waitFor();
    assert.deepEqual(page.errors, []);
  });

  it('is linked from every shelter card of the finder and from the safety page', async () => {
    await h.ready();
    const page = await h.openPage('ja-JP');
    await page.goto(`${h.server.base}/`);
    await page.getByLabel(ja.only_open).uncheck();
    await page.getByRole('button', { name: ja.search }).click();
    const cards = page.getByTestId('shelter');
    await cards.first().waitFor();
    assert.equal(await page.getByTestId('aid-here').count(), await cards.count());
    const id = await cards.nth(2).getAttribute('data-id');
    await cards.nth(2).getByRole('link', { name: ja.aid_here }).click();
    await page.waitForURL(`**/aid.html?shelter=${id}`);
    await page.getByRole('heading', { level: 1, name: ja.a_title }).waitFor();
    assert.equal(await page.getByLabel(ja.a_shelter).inputValue(), id);
    await page.getByTestId('shelter-msg').filter({ hasText: /\S/ }).waitFor();

    await page.goto(`${h.server.base}/safety.html`);
    await page.getByRole('link', { name: ja.to_aid }).click();
    await page.getByRole('heading', { level: 1, name: ja.a_title }).waitFor();
    assert.deepEqual(page.errors, []);
  });
});
