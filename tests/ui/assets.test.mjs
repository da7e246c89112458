// Promises about the UI files themselves, checked without a browser or server:
// small enough for 3G, nothing fetched from outside, no HTML built from data,
// and every text in both languages.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ui = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../ui');
// What a resident's phone downloads for the shelter finder.
const files = ['index.html', 'app.js', 'style.css', 'i18n/ja.json', 'i18n/en.json'];
const read = (f) => fs.readFileSync(path.join(ui, f), 'utf8');
const CREDIT = 'Shelter data: compiled by raokiey (R06-Noto-Peninsula-EQ-open-shelter-Nanao) from '
  + '七尾市「避難所一覧/開設中の避難所状況」, 七尾市「指定福祉避難所」, 石川県「石川県指定緊急避難所一覧」 and '
  + '七尾市「七尾市指定緊急避難所施設一覧」, CC BY 4.0.';

describe('ui/ files', () => {
  it('of the shelter finder are under 30 KB together, uncompressed', () => {
    const total = files.reduce((n, f) => n + fs.statSync(path.join(ui, f)).size, 0);
    assert.ok(total <= 30 * 1024, `${files.join(' + ')} = ${total} bytes`);
  });

  it('load nothing from another host (no CDN, tiles or web fonts)', () => {
    for (const f of files.filter((f) => /\.(html|js|css)$/.test(f))) {
      assert.doesNotMatch(read(f), /(https?:)?\/\/[a-z0-9-]+\.[a-z]/i, `${f} names an outside URL`);
    }
  });

  it('never put text into the page as HTML', () => {
    assert.doesNotMatch(read('app.js'), /innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
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
