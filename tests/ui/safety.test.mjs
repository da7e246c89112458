// The safety page in real headless Chromium against the real anpi binary: a
// resident checks in, a family member finds them by phone number and is told
// live of their next check-in; bad input is explained beside the field.
//
//   cd tests/ui && npm ci && ANPI_BIN=$PWD/../../target/debug/anpi node --test

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { harness, officeToken } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dict = (lang) => JSON.parse(fs.readFileSync(path.join(here, '../../ui/i18n', `${lang}.json`), 'utf8'));
const ja = dict('ja');
const en = dict('en');

describe('safety page', () => {
  const h = harness();
  after(h.close);
  let incident;

  /** An active incident for Nanao (made once, through the office API). */
  async function activeIncident() {
    await h.ready();
    incident ??= fetch(`${h.server.base}/v1/incidents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${officeToken(h.server)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: '能登半島地震', hazard: 'earthquake', municipalities: ['172022'] }),
    }).then(async (r) => {
      assert.equal(r.status, 201, await r.clone().text());
      return (await r.json()).id;
    });
    return incident;
  }

  async function open(locale, d) {
    await activeIncident();
    const page = await h.openPage(locale);
    await page.goto(`${h.server.base}/safety.html`);
    await page.getByRole('heading', { level: 1, name: d.s_title }).waitFor();
    await page.locator('#incident option').first().waitFor({ state: 'attached' });
    return page;
  }

  it('in Japanese: a resident checks in; their family finds them by phone and hears of the next check-in live', async () => {
    const id = await activeIncident();
    const resident = await open('ja-JP', ja);
    assert.equal(await resident.locator('#incident option').first().textContent(), '能登半島地震');
    await resident.getByLabel(ja.phone, { exact: true }).first().fill('０９０－２２２２－３３３３');
    await resident.getByLabel(ja.name, { exact: true }).first().fill('能登　花子');
    await resident.getByLabel(ja.s_evacuating, { exact: true }).check();
    const [posted] = await Promise.all([
      resident.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith(`/v1/incidents/${id}/checkins`)),
      resident.getByRole('button', { name: ja.ci_send }).click(),
    ]);
    assert.match(posted.headers()['idempotency-key'], /^[0-9a-f]{32}$/);
    await resident.getByTestId('checkin-done').waitFor();
    assert.match(await resident.getByTestId('checkin-done').textContent(), new RegExp(ja.ci_done));

    // The family, on another phone, types the number their own way.
    const family = await open('ja-JP', ja);
    await family.locator('#find-phone').fill('090 2222 3333');
    await family.getByRole('button', { name: ja.find_go }).click();
    const card = family.getByTestId('person');
    await card.waitFor();
    assert.match(await card.textContent(), /能登 花子/);
    assert.match(await card.textContent(), /\*\*\*\*3333/);
    assert.doesNotMatch(await family.content(), /22223333/, 'never the whole number');
    assert.equal(await family.getByTestId('person-status').textContent(), ja.s_evacuating);
    await family.getByTestId('waiting').waitFor();

    // She reaches a shelter and checks in again: the family's page changes by itself.
    await resident.getByLabel(ja.s_evacuating, { exact: true }).uncheck();
    await resident.getByLabel(ja.s_safe, { exact: true }).check();
    await resident.getByLabel(ja.s_at_shelter, { exact: true }).check();
    // The shelter is chosen from the open ones near a place typed, never typed as an id.
    await resident.getByLabel(ja.pick_q).fill('山王');
    await resident.getByRole('radio', { name: /山王小学校/ }).check();
    await resident.getByLabel(ja.message).fill('山王小学校にいます');
    await resident.getByRole('button', { name: ja.ci_send }).click();
    await resident.getByTestId('checkin-done').waitFor();
    await family.getByTestId('person-status').filter({ hasText: ja.s_safe }).waitFor();
    assert.equal(await family.getByTestId('person-status').textContent(), `${ja.s_safe}、${ja.s_at_shelter}`);
    assert.match(await card.textContent(), /山王小学校にいます/);
    assert.deepEqual([...resident.errors, ...family.errors], []);
  });

  it('in English: says which field is wrong, and that no one is found yet for an unknown name', async () => {
    const page = await open('en-US', en);
    await page.getByRole('button', { name: en.lang_en }).click();
    await page.getByRole('heading', { level: 1, name: en.s_title }).waitFor();
    await page.getByLabel(en.phone, { exact: true }).first().fill('12345');
    await page.getByLabel(en.name, { exact: true }).first().fill('Maria Santos');
    await page.getByLabel(en.s_safe, { exact: true }).check();
    await page.getByLabel(en.s_injured, { exact: true }).check();
    await page.getByRole('button', { name: en.ci_send }).click();
    const phoneErr = page.getByTestId('field-error-phone');
    await phoneErr.waitFor();
    assert.ok((await phoneErr.textContent()).length > 5, 'the server says what is wrong with the phone');
    assert.equal(await page.getByLabel(en.phone, { exact: true }).first().inputValue(), '12345', 'what was typed is kept');
    await page.getByTestId('field-error-statuses').waitFor();

    await page.locator('#find-name').fill('Nobody Here');
    await page.getByRole('button', { name: en.find_go }).click();
    await page.getByTestId('not-found').waitFor();
    assert.equal(await page.getByTestId('not-found').textContent(), en.not_found);
    await page.getByTestId('waiting').waitFor();
    assert.deepEqual(page.errors, []);
  });
});
