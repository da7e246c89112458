// The safety page's check-in as a new resident meets it on a phone: the
// shelter chosen from a list (arriving from "I am here" chooses it), family
// members with them, errors in plain words beside the field with focus on
// the first, a check-in made offline sent exactly once when the network is
// back (also after a reload in between), and no serious accessibility fault
// (axe-core) on the finder or the safety page. Screenshots of the safety page
// at phone size go to docs/screenshots/.
//
//   cd tests/ui && npm ci && ANPI_BIN=$PWD/../../target/debug/anpi node --test

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { harness, officeToken } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dict = (lang) => JSON.parse(fs.readFileSync(path.join(here, '../../ui/i18n', `${lang}.json`), 'utf8'));
const ja = dict('ja');
const en = dict('en');
const AXE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const SHOTS = path.join(here, '../../docs/screenshots');
const SANNO = 'CC0000000518'; // 山王小学校, open in the sample state

describe('safety page check-in', () => {
  const h = harness();
  after(h.close);
  let incident;

  async function activeIncident() {
    await h.ready();
    h.token ??= officeToken(h.server);
    incident ??= fetch(`${h.server.base}/v1/incidents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: '能登半島地震', hazard: 'earthquake', municipalities: ['172022'] }),
    }).then(async (r) => {
      assert.equal(r.status, 201, await r.clone().text());
      return (await r.json()).id;
    });
    return incident;
  }

  async function open(locale, d, query = '', options) {
    await activeIncident();
    const page = await h.openPage(locale, options);
    await page.goto(`${h.server.base}/safety.html${query}`);
    await page.getByRole('heading', { level: 1, name: d.s_title }).waitFor();
    await page.locator('#incident option').first().waitFor({ state: 'attached' });
    return page;
  }

  const lookUp = async (phone) => (await (await fetch(
    `${h.server.base}/v1/incidents/${await activeIncident()}/people?phone=${encodeURIComponent(phone)}`)).json()).people;

  /** Zero serious or critical violations by axe-core on the page as it is now. */
  async function axe(page, what) {
    await page.evaluate(AXE); // as the test's own script, which the page's CSP does not govern
    const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
    const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert.deepEqual(bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), [], what);
  }

  it('reads in Japanese before any script runs', async () => {
    await h.ready();
    const page = await h.openPage('ja-JP', { javaScriptEnabled: false });
    await page.goto(`${h.server.base}/safety.html`);
    assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), ja.s_title);
    assert.equal(await page.getByRole('button', { name: ja.ci_send }).count(), 1);
    assert.equal(await page.getByLabel(ja.phone, { exact: true }).first().count(), 1);
    // Every text in the page is the dictionary's, so it never reads differently once loaded.
    for (const [key, text] of await page.locator('[data-i18n]').evaluateAll((els) => els.map((e) => [e.dataset.i18n, e.textContent]))) {
      assert.equal(text, ja[key], key);
    }
  });

  it('every page reads in Japanese before any script runs, from the one dictionary', async () => {
    await h.ready();
    // All Japanese parts: each key lives in one of them only.
    const i18n = path.join(here, '../../ui/i18n');
    const all = Object.assign({}, ...['', ...fs.readdirSync(i18n).filter((d) => !d.endsWith('.json'))]
      .map((p) => JSON.parse(fs.readFileSync(path.join(i18n, p, 'ja.json'), 'utf8'))));
    const page = await h.openPage('ja-JP', { javaScriptEnabled: false });
    for (const url of ['/', '/safety.html', '/aid.html', '/volunteer.html', '/desk.html', '/office']) {
      await page.goto(h.server.base + url);
      const texts = await page.locator('[data-i18n]').evaluateAll((els) => els.map((e) => [e.dataset.i18n, e.textContent]));
      assert.ok(texts.length > 5, url);
      for (const [key, text] of texts) {
        if (!all[key].includes('{')) assert.equal(text, all[key], `${url}: ${key}`);
      }
      assert.ok((await page.locator('h1').first().textContent()).trim(), `${url} has its heading`);
    }
  });

  it('from a shelter\'s "I am here": the shelter ticked and chosen; family members added; the family finds them at the named shelter', async () => {
    const page = await open('ja-JP', ja, `?shelter=${SANNO}`);
    assert.equal(await page.getByLabel(ja.s_at_shelter, { exact: true }).isChecked(), true);
    const radio = page.locator(`input[name="shelter"][value="${SANNO}"]`);
    await radio.waitFor();
    assert.equal(await radio.isChecked(), true, 'the shelter arrived from is chosen');
    assert.ok(await page.getByTestId('pick-shelter').count() > 1, 'among the open shelters near it');
    assert.equal(await page.locator('input#shelter').count(), 0, 'no box to type an id into');

    await page.getByLabel(ja.phone, { exact: true }).first().fill('090-4444-5555');
    await page.getByLabel(ja.name, { exact: true }).first().fill('七尾 一郎');
    await page.getByLabel(ja.s_safe, { exact: true }).check();
    await page.getByRole('button', { name: ja.member_add }).click();
    await page.getByLabel(ja.member_name.replace('{n}', '1'), { exact: true }).fill('七尾 次郎');
    await page.getByRole('button', { name: ja.member_add }).click();
    await page.getByLabel(ja.member_name.replace('{n}', '2'), { exact: true }).fill('七尾 三郎');
    await page.getByLabel(ja.member_status.replace('{n}', '2'), { exact: true }).selectOption('injured');
    const [posted] = await Promise.all([
      page.waitForRequest((r) => r.method() === 'POST' && r.url().includes('/checkins')),
      page.getByRole('button', { name: ja.ci_send }).click(),
    ]);
    const body = posted.postDataJSON();
    assert.equal(body.shelter_id, SANNO);
    assert.deepEqual(body.household, [
      { name: '七尾 次郎', statuses: ['safe', 'at_shelter'] },
      { name: '七尾 三郎', statuses: ['injured', 'at_shelter'] },
    ]);
    await page.getByTestId('checkin-done').waitFor();
    assert.equal((await lookUp('09044445555')).length, 3, 'all three stored under the phone');

    // The family finds him: the card names the shelter.
    await page.locator('#find-name').fill('七尾 三郎');
    await page.getByRole('button', { name: ja.find_go, exact: true }).click();
    const where = page.getByTestId('person-shelter');
    await where.waitFor();
    assert.equal(await where.textContent(), ja.person_shelter.replace('{name}', '山王小学校'));
    assert.deepEqual(page.errors, []);
  });

  it('in Japanese, says what is wrong in plain Japanese beside each field, marks it, and moves focus to the first', async () => {
    const page = await open('ja-JP', ja);
    await page.getByRole('button', { name: ja.ci_send }).click();
    const phoneErr = page.getByTestId('field-error-phone');
    await phoneErr.waitFor();
    assert.equal(await phoneErr.textContent(), ja.ce_phone_empty);
    assert.equal(await page.getByTestId('field-error-name').textContent(), ja.ce_name);
    assert.equal(await page.getByTestId('field-error-statuses').textContent(), ja.ce_statuses_none);
    assert.equal(await page.locator('#phone').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.locator('#name').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'phone', 'focus on the first error');

    await page.locator('#phone').fill('12345');
    await page.locator('#name').fill('能登 花子');
    await page.getByLabel(ja.s_safe, { exact: true }).check();
    await page.getByLabel(ja.s_injured, { exact: true }).check();
    await page.getByLabel(ja.s_at_shelter, { exact: true }).check();
    await page.getByRole('button', { name: ja.member_add }).click();
    await page.getByRole('button', { name: ja.ci_send }).click();
    await page.getByTestId('field-error-shelter_id').waitFor();
    assert.equal(await phoneErr.textContent(), ja.ce_phone);
    assert.equal(await page.getByTestId('field-error-statuses').textContent(), ja.ce_statuses_safe_injured);
    assert.equal(await page.getByTestId('field-error-shelter_id').textContent(), ja.ce_shelter);
    assert.equal(await page.locator('#m1-name').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.getByTestId('field-error-name').isHidden(), true, 'a corrected field is no longer marked');
    assert.equal(await page.locator('#name').getAttribute('aria-invalid'), null);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'phone');
    const text = await page.locator('#checkin').textContent() + await page.getByTestId('checkin-result').textContent();
    assert.doesNotMatch(text, /shelter_id|statuses|\/v1|household|[a-z]+_[a-z]+/, 'no field names, paths or codes');

    // The page as it is now — errors shown, the shelter list open — has no serious accessibility fault.
    await axe(page, 'safety page with errors (ja)');
    assert.deepEqual(page.errors, []);
  });

  it('offline: the check-in waits on the phone, survives a reload, and is stored exactly once when the network is back', async () => {
    const page = await open('en-US', en);
    await page.evaluate(() => navigator.serviceWorker.ready);
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
    await page.waitForFunction(async () => !!(await caches.match('/v1/incidents?active=true')));
    await page.getByLabel(en.phone, { exact: true }).first().fill('080-7777-8888');
    await page.getByLabel(en.name, { exact: true }).first().fill('Maria Santos');
    await page.getByLabel(en.s_safe, { exact: true }).check();
    await page.getByLabel(en.s_at_home, { exact: true }).check();

    await page.context().setOffline(true);
    await page.getByRole('button', { name: en.ci_send }).click();
    await page.getByTestId('checkin-queued').waitFor();
    assert.equal(await page.getByTestId('checkin-queued').textContent(), en.queued);
    const box = JSON.parse(await page.evaluate(() => localStorage.getItem('anpi.outbox')));
    assert.equal(box.length, 1);
    assert.match(box[0].key, /^[0-9a-f]{32}$/);

    // Reloaded with no network: the page comes from the phone, still waiting, and says how old its list is.
    await page.reload();
    await page.getByRole('heading', { level: 1, name: en.s_title }).waitFor();
    await page.getByTestId('outbox').filter({ hasText: en.queued_n.replace('{n}', '1') }).waitFor();
    await page.getByTestId('checkin-queued').waitFor();
    await page.getByTestId('saved-at').waitFor();
    assert.equal((await lookUp('08077778888')).length, 0, 'nothing sent while offline');

    await page.context().setOffline(false);
    await page.getByTestId('checkin-done').waitFor({ timeout: 30_000 });
    assert.equal(await page.getByTestId('outbox').isHidden(), true);
    assert.equal(await page.evaluate(() => localStorage.getItem('anpi.outbox')), '[]');
    // A second chance to send twice: another online event and a reload.
    await page.evaluate(() => dispatchEvent(new Event('online')));
    await page.reload();
    await page.getByRole('heading', { level: 1, name: en.s_title }).waitFor();
    await page.waitForTimeout(500);
    const people = await lookUp('08077778888');
    assert.equal(people.length, 1);
    assert.equal(people[0].checkins.length, 1, 'stored exactly once');
    assert.deepEqual(people[0].checkins[0].statuses, ['safe', 'at_home']);
    assert.deepEqual(page.errors, []);
  });

  it('the finder, reloaded offline, shows its last answer and says how old it is', async () => {
    await h.ready();
    const page = await h.openPage('en-US');
    await page.goto(`${h.server.base}/?lat=37.0432&lon=136.9674`);
    await page.getByTestId('shelter').first().waitFor();
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
    await page.reload(); // the answer now passes the service worker, which keeps it
    await page.getByTestId('shelter').first().waitFor();
    await page.context().setOffline(true);
    await page.reload();
    await page.getByTestId('saved-at').waitFor();
    assert.ok(await page.getByTestId('shelter').count() > 0);
    assert.match(await page.getByTestId('saved-at').textContent(), /now|minute/);
    await page.context().setOffline(false);
    assert.deepEqual(page.errors, []);
  });

  it('has no serious or critical accessibility fault (axe-core) on the finder and the safety page, in Japanese and English', async () => {
    await activeIncident();
    await fetch(`${h.server.base}/v1/municipalities/172022/announcements`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: '余震に注意してください', text_en: 'Beware of aftershocks', severity: 'urgent' }),
    });
    for (const [locale, d] of [['ja-JP', ja], ['en-US', en]]) {
      const finder = await h.openPage(locale);
      await finder.goto(`${h.server.base}/?lat=37.0432&lon=136.9674`);
      await finder.getByTestId('shelter').first().waitFor();
      await finder.getByTestId('announcement').first().waitFor();
      await axe(finder, `finder (${locale})`);

      const safety = await open(locale, d, `?shelter=${SANNO}`);
      await safety.getByTestId('pick-shelter').first().waitFor();
      await safety.getByTestId('announcement').first().waitFor();
      await safety.getByRole('button', { name: d.member_add }).click();
      await axe(safety, `safety page (${locale})`);
      assert.deepEqual([...finder.errors, ...safety.errors], []);
    }
  });

  it('screenshots the safety page at phone size, in Japanese and English', async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    for (const [locale, d, lang] of [['ja-JP', ja, 'ja'], ['en-US', en, 'en']]) {
      const page = await open(locale, d, `?shelter=${SANNO}`);
      await page.getByTestId('pick-shelter').first().waitFor();
      await page.getByTestId('announcement').first().waitFor().catch(() => {});
      const file = path.join(SHOTS, `safety-${lang}.png`);
      await page.screenshot({ path: file });
      assert.ok(fs.statSync(file).size > 10_000, 'a real picture');
      assert.deepEqual(page.viewportSize(), { width: 390, height: 844 });
    }
  });
});
