// Promises about the UI files themselves, checked without a browser or server:
// small enough for 3G, nothing fetched from outside, no HTML built from data,
// and every text in every language (ja, en, and やさしい日本語 on the resident pages).

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
// やさしい日本語 (easy Japanese, ja-easy) is the third language of the resident
// pages (the finder, the safety page, ask-for-help): each part they load has it.
const EASY = ['index.html', 'safety.html', 'aid.html'];
const easyParts = ['', 'aid/', 'ask/', 'supply/'];
const langsOf = (part) => (easyParts.includes(part) ? ['ja', 'en', 'ja-easy'] : ['ja', 'en']);
const dictionaries = langsOf('').map((l) => `i18n/${l}.json`);
const aidDictionaries = aidParts.flatMap((p) => langsOf(`${p}/`).map((l) => `i18n/${p}/${l}.json`));
// The finder's supply points bring their own words when they are first shown.
const supplyDictionaries = langsOf('supply/').map((l) => `i18n/supply/${l}.json`);
// The map of the finder and the office board: loaded only when a person asks for it.
const mapFiles = ['map.js', 'map.css', 'vendor/leaflet/leaflet.js', 'vendor/leaflet/leaflet.css'];
const files = [...new Set(['sw.js', ...Object.values(pages).flat(), ...Object.values(aidPages).flatMap((p) => p.files),
  'office.html', 'office.js', 'map.js', 'map.css', 'supply.js', ...dictionaries, ...aidDictionaries, ...supplyDictionaries])];
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
  // Each part counted in its largest language (Japanese, so far).
  const largest = (p) => langsOf(p).map((l) => `i18n/${p}${l}.json`).sort((a, b) => gzipped(b) - gzipped(a))[0];
  for (const [page, { files: parts, parts: dicts }] of Object.entries(aidPages)) {
    it(`of the ${page} are under 24 KB gzipped (64 KB uncompressed) with its largest dictionaries`, () => {
      const all = [...parts, ...dicts.map(largest)];
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

  // The one thing from another host is the map's tiles, and only because the
  // server names them (GET /v1/map, configurable): no page names a tile host.
  // The vendored Leaflet names only its own site (in the attribution prefix,
  // which the map turns off) and the SVG namespace.
  it('take the map\'s tiles only from the server\'s /v1/map, and Leaflet names no other host', () => {
    const map = read('map.js');
    assert.match(map, /api\('\/v1\/map'\)/, 'map.js asks the server which tiles');
    assert.match(map, /L\.tileLayer\(cfg\.tiles, /, 'the one tile layer is the one the server names');
    assert.equal([...map.matchAll(/tileLayer|imageOverlay|L\.icon\(/g)].length, 1, 'no other tile layer, image or icon URL');
    assert.match(map, /attributionControl: false/, 'Leaflet\'s own attribution (a link to leafletjs.com) is off');
    for (const f of ['vendor/leaflet/leaflet.js', 'vendor/leaflet/leaflet.css']) {
      const hosts = new Set([...read(f).matchAll(/(?:https?:)?\/\/([a-z0-9-]+(?:\.[a-z0-9-]+)+)/gi)].map((m) => m[1]));
      const known = f.endsWith('.js') ? ['leafletjs.com', 'www.w3.org'] : ['bugs.chromium.org', 'bugzilla.mozilla.org']; // the .css: in comments
      assert.deepEqual([...hosts].filter((x) => !known.includes(x)), [], `${f} names another host`);
    }
    assert.doesNotMatch(read('vendor/leaflet/leaflet.css'), /url\((?!["']?(images\/|#default#VML))/, 'the stylesheet takes its images from beside it (#default#VML: old IE\'s behaviour, no URL)');
  });

  it('keep the map out of the finder\'s and the board\'s first load (map.js and Leaflet come when asked for)', () => {
    for (const f of ['index.html', 'app.js', 'office.html', 'office.js', 'common.js', 'style.css', 'sw.js']) {
      const text = read(f);
      assert.doesNotMatch(text, /vendor\/|leaflet\.(js|css)/, `${f} loads Leaflet`);
      assert.doesNotMatch(text, /^import .*map\.js/m, `${f} imports map.js at once`);
    }
    for (const f of ['app.js', 'office.js']) assert.match(read(f), /import\('\.\/map\.js'\)/, `${f} loads map.js when asked`);
    // The supply points come after the first list of shelters, in one small file.
    assert.match(read('app.js'), /import\('\.\/supply\.js'\)/);
    assert.doesNotMatch(read('app.js'), /^import .*supply\.js/m);
    assert.ok(gzipped('supply.js') <= 4 * 1024, `supply.js = ${gzipped('supply.js')} bytes gzipped`);
    // What opening the map then downloads: Leaflet is most of it.
    const wire = mapFiles.reduce((n, f) => n + gzipped(f), 0);
    assert.ok(wire <= 52 * 1024, `${mapFiles.join(' + ')} = ${wire} bytes gzipped`);
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
    const all = [...Object.values(pages).map((files) => ({ files, parts: [''] })), ...Object.values(aidPages),
      { files: ['map.js'], parts: [''] }, { files: ['supply.js'], parts: ['', 'supply/'] },
      { files: ['office.html', 'office.js'], parts: ['', 'aid/', 'office/'] }];
    for (const { files: parts, parts: dicts } of all) {
      const dict = loaded(dicts);
      for (const f of parts.filter((x) => /\.(html|js)$/.test(x))) {
        for (const k of [...uses(f), ...(dicts.length > 1 ? passed(f) : [])]) {
          assert.ok(Object.hasOwn(dict, k), `${f} uses "${k}", which is in no dictionary it loads (${dicts})`);
        }
      }
    }
    // The supply points' kinds and days, in every language of the finder.
    for (const [prefix, name] of [['sk_', 'KINDS'], ['day_', 'DAYS']]) {
      const list = [...new RegExp(`const ${name} = \\[([^\\]]+)\\]`).exec(read('supply.js'))[1].matchAll(/'(\w+)'/g)].map((m) => m[1]);
      assert.ok(list.length >= 7);
      for (const l of langsOf('supply/')) for (const c of list) assert.ok(Object.hasOwn(json(`i18n/supply/${l}.json`), prefix + c), `${l}: ${prefix}${c}`);
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
    assert.equal(json('i18n/ja-easy.json').credit, CREDIT, 'the licence\'s words are not simplified');
  });

  it('have every key in every language file of each part (ja, en, ja-easy), with the same placeholders', () => {
    const vars = (v) => [...v.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join();
    for (const part of ['', ...aidParts.map((p) => `${p}/`), 'office/', 'supply/']) {
      const langs = langsOf(part);
      const have = fs.readdirSync(path.join(ui, 'i18n', part)).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, ''));
      assert.deepEqual(have.sort(), langs.slice().sort(), `i18n/${part}: one file per language`);
      const ja = json(`i18n/${part}ja.json`);
      for (const l of langs) {
        const d = json(`i18n/${part}${l}.json`);
        assert.deepEqual(Object.keys(d).sort(), Object.keys(ja).sort(), `i18n/${part}${l}.json has the keys of i18n/${part}ja.json`);
        for (const [k, v] of Object.entries(d)) {
          assert.ok(typeof v === 'string' && v.trim(), `i18n/${part}${l}.json: ${k} is empty`);
          assert.equal(vars(v), vars(ja[k]), `i18n/${part}${l}.json: ${k} has the placeholders of the Japanese`);
        }
      }
    }
    // The pages that offer やさしい日本語 load only parts that have it; the others do not offer it.
    for (const f of fs.readdirSync(ui).filter((x) => x.endsWith('.html'))) {
      const offers = /data-lang="ja-easy"/.test(read(f));
      assert.equal(offers, EASY.includes(f), `${f} ${offers ? 'offers' : 'does not offer'} やさしい日本語`);
    }
    for (const p of aidPages['ask-for-help page'].parts) assert.ok(easyParts.includes(p), `ask-for-help loads i18n/${p}, which has no ja-easy`);
    // Its button reads as Japanese (lang="ja") and names it in itself.
    for (const f of EASY) assert.match(read(f), /<button [^>]*data-lang="ja-easy" lang="ja" data-i18n="lang_ja_easy"/, f);
  });

  // やさしい日本語: words a resident from abroad learns first: hiragana and
  // katakana, and no kanji beyond a few of the first school year's (水, 人…).
  it('write やさしい日本語 without hard kanji', () => {
    const SIMPLE = new Set([...'日本語水人川']);
    for (const part of easyParts) {
      for (const [k, v] of Object.entries(json(`i18n/${part}ja-easy.json`))) {
        if (k === 'credit') continue; // the licence's own words
        const hard = [...v].filter((c) => /\p{Script=Han}/u.test(c) && !SIMPLE.has(c));
        assert.deepEqual(hard, [], `i18n/${part}ja-easy.json: ${k} = ${v}`);
      }
    }
  });
});
