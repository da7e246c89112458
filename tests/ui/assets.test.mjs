// Promises about the UI files themselves, checked without a browser or server:
// small enough for 3G, nothing fetched from outside, no HTML built from data,
// and every text in both languages.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const ui = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../ui');
// What a resident's phone downloads for each page, besides one language's text.
const pages = {
  'shelter finder': ['index.html', 'app.js', 'common.js', 'style.css'],
  'safety page': ['safety.html', 'safety.js', 'common.js', 'style.css'],
};
// The aid pages load more of the dictionary beside i18n/<lang>.json: the
// words all three share (i18n/aid/<lang>.json) and the page's own
// (i18n/ask|volunteer|desk/<lang>.json). Each text is in one part only.
const aidPages = {
  'ask-for-help page': { files: ['aid.html', 'aid.js', 'aidlib.js', 'common.js', 'style.css'], parts: ['', 'aid/', 'ask/'] },
  'volunteer page': { files: ['volunteer.html', 'volunteer.js', 'aidlib.js', 'common.js', 'style.css'], parts: ['', 'aid/', 'volunteer/'] },
  'coordinator desk': { files: ['desk.html', 'desk.js', 'aidlib.js', 'common.js', 'style.css'], parts: ['', 'aid/', 'desk/'] },
};
const aidParts = ['aid', 'ask', 'volunteer', 'desk'];
const dictionaries = ['i18n/ja.json', 'i18n/en.json'];
const aidDictionaries = aidParts.flatMap((p) => [`i18n/${p}/ja.json`, `i18n/${p}/en.json`]);
const files = [...new Set(['sw.js', ...Object.values(pages).flat(), ...Object.values(aidPages).flatMap((p) => p.files), ...dictionaries, ...aidDictionaries])];
const size = (f) => fs.statSync(path.join(ui, f)).size;
const read = (f) => fs.readFileSync(path.join(ui, f), 'utf8');
const gzipped = (f) => zlib.gzipSync(fs.readFileSync(path.join(ui, f))).length;
const json = (f) => JSON.parse(read(f));
const CREDIT = 'Shelter data: compiled by raokiey (R06-Noto-Peninsula-EQ-open-shelter-Nanao) from '
  + '七尾市「避難所一覧/開設中の避難所状況」, 七尾市「指定福祉避難所」, 石川県「石川県指定緊急避難所一覧」 and '
  + '七尾市「七尾市指定緊急避難所施設一覧」, CC BY 4.0.';

describe('ui/ files', () => {
  // What travels is compressed (the server gzips): 24 KB is about a second
  // on a congested 3G link. Both pages share common.js (with the offices'
  // announcements and the offline support) and the one dictionary per language.
  for (const [page, parts] of Object.entries(pages)) {
    it(`of the ${page} are under 24 KB gzipped (64 KB uncompressed) with the larger dictionary`, () => {
      const wire = parts.reduce((n, f) => n + gzipped(f), 0) + Math.max(...dictionaries.map(gzipped));
      const raw = parts.reduce((n, f) => n + size(f), 0) + Math.max(...dictionaries.map(size));
      assert.ok(wire <= 24 * 1024, `${parts.join(' + ')} + a dictionary = ${wire} bytes gzipped`);
      assert.ok(raw <= 64 * 1024, `${parts.join(' + ')} + a dictionary = ${raw} bytes`);
    });
  }

  // The first visit also installs the service worker, which keeps both
  // pages and both languages on the phone: all of it within the 50 KB
  // (compressed) the issue allows for the safety page's first load.
  it('of the first visit, with everything the service worker keeps, are under 50 KB gzipped', () => {
    const kept = [...read('sw.js').matchAll(/'([\w./-]+\.(?:html|js|css|json))'/g)].map((m) => m[1]);
    for (const f of [...pages['safety page'], ...pages['shelter finder'], ...dictionaries]) assert.ok(kept.includes(f), `sw.js keeps ${f}`);
    const wire = ['sw.js', ...new Set(kept)].reduce((n, f) => n + gzipped(f), 0);
    assert.ok(wire <= 50 * 1024, `${wire} bytes gzipped`);
  });

  // The aid pages do more (a form with lines, a live list, claims, a desk)
  // and carry more text: under 24 KB gzipped each with its Japanese
  // dictionaries, and under 64 KB uncompressed (common.js and the shared
  // dictionary carry the resident pages' announcements and check-in too).
  for (const [page, { files: parts, parts: dicts }] of Object.entries(aidPages)) {
    it(`of the ${page} are under 24 KB gzipped (64 KB uncompressed) with its Japanese dictionaries`, () => {
      const all = [...parts, ...dicts.map((p) => `i18n/${p}ja.json`)];
      const wire = all.reduce((n, f) => n + gzipped(f), 0);
      const raw = all.reduce((n, f) => n + size(f), 0);
      assert.ok(wire <= 24 * 1024, `${all.join(' + ')} = ${wire} bytes gzipped`);
      assert.ok(raw <= 64 * 1024, `${all.join(' + ')} = ${raw} bytes`);
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

  it('name only texts their dictionaries have (data-i18n in the pages, tr("…") in the scripts)', () => {
    const loaded = (parts) => Object.assign({}, ...parts.map((p) => json(`i18n/${p}ja.json`)));
    const uses = (f) => [...read(f).matchAll(/data-i18n(?:-label)?="([^"]+)"|\btr(?:Nodes)?\('([a-z0-9_]+)'(?!\s*\+)/g)].map((m) => m[1] || m[2]);
    // The aid scripts also pass keys around (buttons, messages): every quoted one.
    const passed = (f) => (/\.js$/.test(f) && f !== 'common.js'
      ? [...read(f).matchAll(/'((?:a|v|d|p|e)_[a-z0-9_]+)'(?!\s*\+)/g)].map((m) => m[1]) : []);
    const all = [...Object.values(pages).map((files) => ({ files, parts: [''] })), ...Object.values(aidPages)];
    for (const { files: parts, parts: dicts } of all) {
      const dict = loaded(dicts);
      for (const f of parts.filter((x) => /\.(html|js)$/.test(x))) {
        for (const k of [...uses(f), ...(dicts.length > 1 ? passed(f) : [])]) {
          assert.ok(Object.hasOwn(dict, k), `${f} uses "${k}", which is in no dictionary it loads (${dicts})`);
        }
      }
    }
    const aid = loaded(['', ...aidParts.map((p) => `${p}/`)]);
    // Codes turned into words: every category, urgency and status the API has.
    const codes = { cat_: /export const CATS = \[([^\]]+)\]/, u_: /export const URGENCIES = \[([^\]]+)\]/ };
    for (const [prefix, re] of Object.entries(codes)) {
      const list = [...re.exec(read('aidlib.js'))[1].matchAll(/'(\w+)'/g)].map((m) => m[1]);
      assert.ok(list.length >= 4);
      for (const c of list) assert.ok(Object.hasOwn(aid, prefix + c), `${prefix}${c}`);
    }
    for (const c of ['open', 'partially_claimed', 'claimed', 'fulfilled', 'withdrawn', 'expired']) assert.ok(Object.hasOwn(aid, `rs_${c}`), c);
    for (const c of ['live', 'delivered', 'received', 'released', 'lapsed']) assert.ok(Object.hasOwn(aid, `cs_${c}`), c);
    for (const c of ['spam', 'abuse', 'duplicate', 'wrong_place', 'already_resolved']) assert.ok(Object.hasOwn(aid, `rr_${c}`), c);
  });

  it('have the same keys in Japanese and English in the aid pages\' parts, each text in one part only', () => {
    const seen = new Map(Object.keys(json('i18n/ja.json')).map((k) => [k, 'i18n/ja.json']));
    for (const part of aidParts) {
      const ja = json(`i18n/${part}/ja.json`);
      const en = json(`i18n/${part}/en.json`);
      assert.deepEqual(Object.keys(ja).sort(), Object.keys(en).sort(), part);
      for (const [k, v] of [...Object.entries(ja), ...Object.entries(en)]) assert.ok(v.trim(), `${part}: ${k} is empty`);
      for (const k of Object.keys(ja)) {
        assert.ok(!seen.has(k), `${k} is in ${seen.get(k)} and in i18n/${part}/ja.json: one place per text`);
        seen.set(k, `i18n/${part}/ja.json`);
      }
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
