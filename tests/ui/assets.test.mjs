// Promises about the UI files themselves, checked without a browser or server:
// small enough for 3G, nothing fetched from outside, no HTML built from data,
// and every text in both languages.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ui = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../ui');
// What a resident's phone downloads for each page, besides one language's text.
const pages = {
  'shelter finder': ['index.html', 'app.js', 'common.js', 'style.css'],
  'safety page': ['safety.html', 'safety.js', 'common.js', 'style.css'],
};
const dictionaries = ['i18n/ja.json', 'i18n/en.json'];
const files = [...new Set([...Object.values(pages).flat(), ...dictionaries])];
const size = (f) => fs.statSync(path.join(ui, f)).size;
const read = (f) => fs.readFileSync(path.join(ui, f), 'utf8');
const CREDIT = 'Shelter data: compiled by raokiey (R06-Noto-Peninsula-EQ-open-shelter-Nanao) from '
  + '七尾市「避難所一覧/開設中の避難所状況」, 七尾市「指定福祉避難所」, 石川県「石川県指定緊急避難所一覧」 and '
  + '七尾市「七尾市指定緊急避難所施設一覧」, CC BY 4.0.';

describe('ui/ files', () => {
  // 32 KB is well under a second on a congested 3G link; both pages share
  // common.js and the one dictionary per language.
  for (const [page, parts] of Object.entries(pages)) {
    it(`of the ${page} are under 32 KB with the larger dictionary, uncompressed`, () => {
      const total = parts.reduce((n, f) => n + size(f), 0) + Math.max(...dictionaries.map(size));
      assert.ok(total <= 32 * 1024, `${parts.join(' + ')} + a dictionary = ${total} bytes`);
    });
  }

  it('load nothing from another host (no CDN, tiles or web fonts)', () => {
    for (const f of files.filter((f) => /\.(html|js|css)$/.test(f))) {
      assert.doesNotMatch(read(f), /(https?:)?\/\/[a-z0-9-]+\.[a-z]/i, `${f} names an outside URL`);
    }
  });

  it('never put text into the page as HTML', () => {
    for (const f of files.filter((f) => f.endsWith('.js'))) {
      assert.doesNotMatch(read(f), /innerHTML|outerHTML|insertAdjacentHTML|document\.write/, f);
    }
  });

  it('have the same keys in Japanese and English, with the data credit in both', () => {
    const ja = JSON.parse(read('i18n/ja.json'));
    const en = JSON.parse(read('i18n/en.json'));
    assert.deepEqual(Object.keys(ja).sort(), Object.keys(en).sort());
    for (const [k, v] of [...Object.entries(ja), ...Object.entries(en)]) assert.ok(v.trim(), `${k} is empty`);
    assert.equal(ja.credit, CREDIT);
    assert.equal(en.credit, CREDIT);
  });
});
