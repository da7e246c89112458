// The volunteer page (ui/volunteer.html) in real headless Chromium against the
// real anpi binary: signed in from a coordinator's sign-in link, a volunteer
// sees a resident's request appear live near them, claims it (the contact and
// the exact place are shown), marks it delivered, gives another back with a
// reason, and is told in plain words why a claim was refused (409, 429).
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
const NANAO = { lat: '37.0432', lon: '136.9674' };

/** The API of one harness's server: `req(method, url, body, token)`, and helpers on it. */
function client(h) {
  const req = async (method, url, body, token) => {
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body) headers['content-type'] = 'application/json';
    const r = await fetch(h.server.base + url, { method, headers, body: body && JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  };
  let coordinator;
  return {
    req,
    /** The coordinator token that registers this server's volunteers. */
    coordinator: () => coordinator,
    /** Registers a volunteer of Nanao through the API: { token, volunteer, sign_in_link }. */
    async volunteer(name) {
      await h.ready();
      coordinator ??= coordinatorToken(h.server);
      const r = await req('POST', '/v1/volunteers', { name }, coordinator);
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body;
    },
    /** A resident's request near the Nanao city office, posted without a token. */
    async ask(fields) {
      const r = await req('POST', '/v1/aid/requests', {
        category: 'water', items: [{ name: '水 2L', quantity: 6, unit: '本' }], urgency: 'high',
        lat: 37.04309, lon: 136.96743, municipality: '172022', contact: { phone: '090-1111-2222' }, ...fields,
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body;
    },
  };
}

/** Opens the volunteer page from the sign-in link and lists requests around central Nanao, live. */
async function signedIn(h, registered, locale = 'ja-JP', d = ja) {
  const page = await h.openPage(locale);
  const lists = [];
  page.on('request', (r) => { if (new URL(r.url()).pathname === '/v1/aid/requests' && r.method() === 'GET') lists.push(r.url()); });
  page.lists = lists;
  await page.goto(registered.sign_in_link);
  await page.getByTestId('me').waitFor();
  await page.getByLabel(d.lat, { exact: true }).fill(NANAO.lat);
  await page.getByLabel(d.lon, { exact: true }).fill(NANAO.lon);
  await page.getByRole('button', { name: d.v_search }).click();
  await page.locator('[data-testid="live"][data-live="on"]').waitFor();
  return page;
}

describe('volunteer page', () => {
  const h = harness();
  after(h.close);
  const api = client(h);

  it('in Japanese: signs in from the link, sees a new request live, claims it and delivers', async () => {
    const me = await api.volunteer('山田 太郎');
    const page = await h.openPage('ja-JP');
    await page.goto(me.sign_in_link);
    await page.getByTestId('me').waitFor();
    assert.equal(await page.getByTestId('me').textContent(), '山田 太郎（七尾市社会福祉協議会）');
    assert.equal(new URL(page.url()).hash, '', 'the token is taken out of the address');
    assert.doesNotMatch(page.url(), /token/);
    assert.equal(await page.evaluate(() => localStorage.getItem('anpi.volunteer.token')), me.token);
    assert.equal(await page.getByTestId('no-claims').textContent(), ja.v_no_claims);

    // Signed in still after a reload: the token was kept.
    await page.reload();
    await page.getByTestId('me').waitFor();

    const lists = [];
    page.on('request', (r) => { if (new URL(r.url()).pathname === '/v1/aid/requests' && r.method() === 'GET') lists.push(r.url()); });
    await page.getByLabel(ja.lat, { exact: true }).fill(NANAO.lat);
    await page.getByLabel(ja.lon, { exact: true }).fill(NANAO.lon);
    await page.getByLabel(ja.v_radius).selectOption('3000');
    await page.getByLabel(ja.kind).selectOption({ label: ja.cat_water });
    await page.getByRole('button', { name: ja.v_search }).click();
    await page.locator('[data-testid="live"][data-live="on"]').waitFor();
    await page.getByTestId('empty').waitFor();
    const q = new URL(lists[0]).searchParams;
    assert.equal(q.get('near'), `${NANAO.lat},${NANAO.lon}`);
    assert.equal(q.get('radius_m'), '3000');
    assert.equal(q.get('category'), 'water');

    // A resident asks now, after the page subscribed: it appears without the page asking again.
    const listed = lists.length;
    const food = await api.ask({ category: 'food' }); // another category: not shown
    const posted = await api.ask({ note: '市役所の正面入口で待っています' });
    const card = page.locator(`[data-testid="request"][data-id="${posted.request.id}"]`);
    await card.waitFor();
    assert.equal(lists.length, listed, 'it came over /v1/live');
    assert.equal(await page.locator(`[data-id="${food.request.id}"]`).count(), 0, 'only the chosen category');
    assert.equal(await card.getByTestId('remaining').textContent(), fill(ja.v_left, { r: 6, q: 6 }));
    assert.match(await card.textContent(), /水 2L ×6本/);
    assert.match(await card.textContent(), /市役所の正面入口で待っています/);
    assert.doesNotMatch(await card.textContent(), /090-1111-2222/, 'no contact before a claim');

    // More than is left: a 409, said plainly; the quantity is put back to what is left.
    const qty = card.getByLabel(ja.v_qty);
    await qty.fill('10');
    await card.getByRole('button', { name: ja.v_claim }).click();
    const refused = card.getByTestId('problem');
    await refused.waitFor();
    assert.equal(await refused.getAttribute('data-status'), '409');
    assert.equal(await refused.getByTestId('problem-text').textContent(), ja.p_409_claim);
    assert.equal(await qty.inputValue(), '6');

    // All of it: the contact and the exact place are shown; the request leaves the list.
    const [claimed] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith(`/v1/aid/requests/${posted.request.id}/claims`)),
      card.getByRole('button', { name: ja.v_claim }).click(),
    ]);
    assert.equal(claimed.status(), 201);
    assert.deepEqual(JSON.parse(claimed.request().postData()), { quantity: 6 });
    const mine = page.locator(`[data-testid="claim"][data-request="${posted.request.id}"]`);
    await mine.waitFor();
    assert.equal(await mine.getByTestId('contact-phone').textContent(), '090-1111-2222');
    assert.equal(await mine.getByTestId('contact-phone').getAttribute('href'), 'tel:09011112222');
    assert.match(await mine.getByTestId('place').textContent(), /37\.04309, 136\.96743/);
    assert.equal(await mine.getByTestId('status').textContent(), ja.cs_live);
    assert.equal(await page.getByTestId('done').textContent(), ja.v_did_claim);
    assert.equal(await page.evaluate(() => document.activeElement?.closest('[data-testid="claim"]')?.dataset.request), posted.request.id);
    await card.waitFor({ state: 'detached' });

    await mine.getByRole('button', { name: ja.v_delivered }).click();
    await page.locator(`[data-testid="claim"][data-request="${posted.request.id}"][data-status="delivered"]`).waitFor();
    assert.equal(await mine.getByTestId('status').textContent(), ja.cs_delivered);
    assert.equal(await page.getByTestId('done').textContent(), ja.v_did_delivered);
    assert.equal(await mine.getByRole('button', { name: ja.v_delivered }).count(), 0);
    const claims = await api.req('GET', '/v1/aid/claims', null, me.token);
    assert.deepEqual(claims.body.map((c) => [c.request.id, c.claim.status]), [[posted.request.id, 'delivered']]);
    assert.deepEqual(page.errors, []);
  });

  it('in English: gives a claim back with a reason, and the list follows others live', async () => {
    const me = await api.volunteer('Maria Santos');
    const page = await signedIn(h, me, 'en-US', en);
    const a = await api.ask({ category: 'blankets_clothing', items: [{ name: 'Blankets', quantity: 3, unit: '' }] });
    const b = await api.ask({ category: 'food', items: [{ name: 'Onigiri', quantity: 20, unit: '' }] });
    const cardA = page.locator(`[data-testid="request"][data-id="${a.request.id}"]`);
    const cardB = page.locator(`[data-testid="request"][data-id="${b.request.id}"]`);
    await cardA.waitFor();
    await cardB.waitFor();

    await cardA.getByLabel(en.v_qty).fill('1');
    await cardA.getByRole('button', { name: en.v_claim }).click();
    const mine = page.locator(`[data-testid="claim"][data-request="${a.request.id}"]`);
    await mine.waitFor();
    await page.locator(`[data-testid="request"][data-id="${a.request.id}"][data-remaining="2"]`).waitFor();

    // Giving back needs a reason: the server's field error is shown at the reason.
    await mine.getByRole('button', { name: en.v_release }).click();
    const reason = mine.getByLabel(en.v_reason);
    assert.equal(await page.evaluate(() => document.activeElement?.id), await reason.getAttribute('id'));
    await mine.getByRole('button', { name: en.v_release_yes }).click();
    const err = mine.getByTestId('field-error-reason');
    await err.waitFor();
    assert.equal(await err.textContent(), en.e_reason);
    assert.equal(await reason.getAttribute('aria-invalid'), 'true');
    assert.equal(await page.evaluate(() => document.activeElement?.id), await reason.getAttribute('id'));
    await reason.fill('My car broke');
    // A live update redraws the page while she types: what she typed, and where, stay.
    const c = await api.ask({ category: 'medicine', items: [{ name: 'Insulin', quantity: 1, unit: '' }] });
    await page.locator(`[data-testid="request"][data-id="${c.request.id}"]`).waitFor();
    assert.equal(await reason.inputValue(), 'My car broke');
    assert.equal(await page.evaluate(() => document.activeElement?.id), await reason.getAttribute('id'));
    await page.keyboard.type(' down');
    await mine.getByRole('button', { name: en.v_release_yes }).click();
    await page.locator(`[data-testid="claim"][data-request="${a.request.id}"][data-status="released"]`).waitFor();
    assert.match(await mine.textContent(), /My car broke down/);
    await page.locator(`[data-testid="request"][data-id="${a.request.id}"][data-remaining="3"]`).waitFor();

    // The coordinator gives back a claim of hers: she hears it on her inbox.
    await cardB.getByLabel(en.v_qty).fill('5');
    await cardB.getByRole('button', { name: en.v_claim }).click();
    const onB = page.locator(`[data-testid="claim"][data-request="${b.request.id}"]`);
    await onB.getByTestId('contact-phone').waitFor();
    const claimId = await onB.getAttribute('data-id');
    const released = await api.req('POST', `/v1/aid/claims/${claimId}/release`, { reason: 'Handed to the shelter team' }, api.coordinator());
    assert.equal(released.status, 200, JSON.stringify(released.body));
    await page.locator(`[data-testid="claim"][data-id="${claimId}"][data-status="released"]`).waitFor();
    assert.match(await onB.textContent(), /Handed to the shelter team/);
    assert.equal(await onB.getByTestId('contact-phone').count(), 0, 'no contact once it is given back');
    await page.locator(`[data-testid="request"][data-id="${b.request.id}"][data-remaining="20"]`).waitFor();

    // Others change the list: another volunteer takes all of B, the resident withdraws A.
    const listed = page.lists.length;
    const other = await api.volunteer('Ken Tanaka');
    assert.equal((await api.req('POST', `/v1/aid/requests/${b.request.id}/claims`, {}, other.token)).status, 201);
    await cardB.waitFor({ state: 'detached' });
    assert.equal((await api.req('PATCH', `/v1/aid/requests/${a.request.id}`, { status: 'withdrawn' }, a.edit_key)).status, 200);
    await cardA.waitFor({ state: 'detached' });
    assert.equal(page.lists.length, listed, 'over /v1/live');
    assert.deepEqual(page.errors, []);
  });

  it('says so in plain words when its coordinator suspended it', async () => {
    const me = await api.volunteer('停止 される人');
    const page = await h.openPage('ja-JP');
    await page.goto(me.sign_in_link);
    await page.getByTestId('me').waitFor();
    const suspended = await api.req('POST', `/v1/volunteers/${me.volunteer.id}/suspend`, null, api.coordinator());
    assert.equal(suspended.status, 200);
    await page.reload();
    const refused = page.getByTestId('problem');
    await refused.waitFor();
    assert.equal(await refused.getAttribute('data-status'), '403');
    assert.equal(await refused.getByTestId('problem-text').textContent(), ja.p_403_me);
    assert.equal(await page.getByTestId('me').count(), 0);
    await page.getByRole('button', { name: ja.sign_out }).click();
    await page.getByTestId('signed-out').waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem('anpi.volunteer.token')), null);
    assert.deepEqual(page.errors, []);
  });
});

describe('volunteer page, throttled', () => {
  // The throttle as configured here refuses a second undelivered claim: one
  // open claim is the limit, and a delivered share of 100% (what a volunteer
  // with no closed claims has) is below the minimum. The 429 is the server's own.
  const h = harness({ ANPI_AID_THROTTLE_OPEN_CLAIMS: '1', ANPI_AID_THROTTLE_MIN_RATIO: '1.5' });
  after(h.close);
  const api = client(h);

  it('explains a 429 in plain words', async () => {
    const me = await api.volunteer('佐々木 健');
    const page = await signedIn(h, me);
    const first = await api.ask({});
    const second = await api.ask({ category: 'food' });
    const one = page.locator(`[data-testid="request"][data-id="${first.request.id}"]`);
    const two = page.locator(`[data-testid="request"][data-id="${second.request.id}"]`);
    await one.waitFor();
    await two.waitFor();
    await one.getByRole('button', { name: ja.v_claim }).click();
    await page.locator(`[data-testid="claim"][data-request="${first.request.id}"]`).waitFor();
    await two.getByRole('button', { name: ja.v_claim }).click();
    const refused = two.getByTestId('problem');
    await refused.waitFor();
    assert.equal(await refused.getAttribute('data-status'), '429');
    assert.equal(await refused.getByTestId('problem-text').textContent(), ja.p_429_claim);
    assert.equal(await page.getByTestId('claim').count(), 1);
    assert.deepEqual(page.errors, []);
  });
});
