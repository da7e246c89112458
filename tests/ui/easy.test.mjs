// やさしい日本語 (easy Japanese) on the resident pages: the finder, the safety
// page and ask-for-help offer it beside 日本語 and English; the choice is
// kept across reloads and pages; the page stays lang="ja" (a screen reader
// reads it as Japanese), marked data-lang="ja-easy". The pages without it
// (volunteer, desk, office) show Japanese to one who chose it.
//
//   cd tests/ui && npm ci && ANPI_BIN=$PWD/../../target/debug/anpi node --test easy.test.mjs

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { harness } from './harness.mjs';
import { assertAxe, watchCsp } from './office-helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dict = (lang, parts = ['']) => Object.assign({}, ...parts.map((p) =>
  JSON.parse(fs.readFileSync(path.join(here, '../../ui/i18n', `${p}${lang}.json`), 'utf8'))));
const easy = dict('ja-easy', ['', 'aid/', 'ask/']);
const ja = dict('ja', ['', 'aid/', 'ask/', 'volunteer/']);
const en = dict('en');

describe('やさしい日本語', () => {
  const h = harness();
  after(h.close);

  const isEasy = async (page) => {
    assert.equal(await page.locator('html').getAttribute('lang'), 'ja', 'read as Japanese');
    assert.equal(await page.locator('html').getAttribute('data-lang'), 'ja-easy');
    assert.equal(await page.getByRole('button', { name: easy.lang_ja_easy }).getAttribute('aria-pressed'), 'true');
    assert.equal(await page.getByRole('button', { name: easy.lang_ja_easy }).getAttribute('lang'), 'ja');
  };

  it('the finder switches to it, shows it (results too), and keeps it after a reload and on the other resident pages', async () => {
    const page = watchCsp(await h.openPage('en-US'));
    await page.goto(`${h.server.base}/`);
    await page.getByRole('heading', { level: 1, name: en.title }).waitFor();
    await page.getByLabel(en.only_open).uncheck();
    await page.getByRole('button', { name: en.search }).click();
    await page.getByTestId('shelter').first().waitFor();
    await page.evaluate(() => { window.sameDocument = true; });

    await page.getByRole('button', { name: 'やさしい にほんご' }).click();
    await page.getByRole('heading', { level: 1, name: easy.title }).waitFor();
    await isEasy(page);
    assert.equal(await page.evaluate(() => window.sameDocument), true, 're-rendered, not reloaded');
    assert.equal(await page.title(), easy.title);
    assert.equal(await page.getByRole('button', { name: easy.search }).count(), 1);
    assert.equal(await page.getByLabel(easy.only_open).count(), 1);
    assert.equal(await page.getByLabel(easy.hazard).locator('option:checked').textContent(), easy.hz_earthquake);
    assert.equal(await page.getByRole('button', { name: 'English' }).getAttribute('aria-pressed'), 'false');
    // The list on screen too: statuses in easy words.
    const statuses = new Set(['open', 'full', 'closed', 'unsafe'].map((s) => easy[`st_${s}`]));
    for (const s of await page.getByTestId('status').allTextContents()) assert.ok(statuses.has(s), s);
    assert.equal(await page.getByText(easy.intro).count(), 1);
    await assertAxe(page, 'the finder in やさしい日本語');

    await page.reload();
    await page.getByRole('heading', { level: 1, name: easy.title }).waitFor();
    await isEasy(page);
    assert.equal(await page.getByRole('button', { name: easy.search }).count(), 1);

    // The other resident pages open in it.
    await page.goto(`${h.server.base}/safety.html`);
    await page.getByRole('heading', { level: 1, name: easy.s_title }).waitFor();
    await isEasy(page);
    assert.equal(await page.getByRole('heading', { name: easy.ci_title }).count(), 1);
    assert.equal(await page.getByText(easy.s_safe, { exact: true }).count(), 1);
    await assertAxe(page, 'the safety page in やさしい日本語');
    await page.goto(`${h.server.base}/aid.html`);
    await page.getByRole('heading', { level: 1, name: easy.a_title }).waitFor();
    await isEasy(page);
    assert.equal(await page.getByRole('button', { name: easy.a_send }).count(), 1);
    await assertAxe(page, 'ask-for-help in やさしい日本語');

    // A page without it: Japanese, and the choice is still there for the resident pages.
    await page.goto(`${h.server.base}/volunteer.html`);
    await page.getByRole('heading', { level: 1, name: ja.v_title }).waitFor();
    assert.equal(await page.locator('html').getAttribute('lang'), 'ja');
    assert.equal(await page.locator('html').getAttribute('data-lang'), 'ja');
    assert.equal(await page.getByRole('button', { name: easy.lang_ja_easy }).count(), 0);
    await page.goto(`${h.server.base}/`);
    await page.getByRole('heading', { level: 1, name: easy.title }).waitFor();

    // And back to 日本語, kept too.
    await page.getByRole('button', { name: '日本語', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: ja.title }).waitFor();
    assert.equal(await page.locator('html').getAttribute('data-lang'), 'ja');
    await page.reload();
    await page.getByRole('heading', { level: 1, name: ja.title }).waitFor();
    assert.deepEqual(page.errors, []);
  });

  it('the safety page says its errors in it, where they stand', async () => {
    const page = watchCsp(await h.openPage('ja-JP'));
    await page.goto(`${h.server.base}/safety.html`);
    await page.getByRole('button', { name: easy.lang_ja_easy }).click();
    await page.getByRole('heading', { level: 1, name: easy.s_title }).waitFor();
    await page.getByRole('button', { name: easy.ci_send, exact: true }).click();
    await page.getByText(easy.ce_phone_empty).first().waitFor();
    assert.deepEqual(page.errors, []);
  });
});
