// The map of the shelter finder and the office board (ui/map.js, with the
// vendored Leaflet): loaded only when asked for, a marker per shelter listed
// at its place (as the API has it) with its status in words and shape, the
// place searched from, popups, live changes, the tiles' credit from GET
// /v1/map, and what it says when no tile can be reached.
//
// No test here reaches the internet: every request to the tile host is
// answered with a local 1×1 PNG or refused (and harness.mjs refuses any
// other host besides).
//
//   cd tests/ui && npm ci && ANPI_BIN=$PWD/../../target/debug/anpi node --test map.test.mjs

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { harness, officeToken } from './harness.mjs';
import { officeDict, fill, api, assertAxe, watchCsp } from './office-helpers.mjs';

const ja = officeDict('ja');
const en = officeDict('en');
const TILES = 'https://cyberjapandata.gsi.go.jp/**';
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
const NANAO = '172022';
const NEAR = '37.0432,136.9674';

/** Tile requests answered with a local 1×1 PNG (counted in the array returned), or refused. */
async function tiles(page, how) {
  const seen = [];
  await page.route(TILES, (r) => {
    seen.push(r.request().url());
    return how === 'png' ? r.fulfill({ status: 200, contentType: 'image/png', body: PNG }) : r.abort('internetdisconnected');
  });
  return seen;
}

/** Where Web Mercator puts a place at `zoom`, in pixels of the whole world. */
function project(lat, lon, zoom) {
  const size = 256 * 2 ** zoom, r = (lat * Math.PI) / 180;
  return { x: ((lon + 180) / 360) * size, y: (0.5 - Math.log(Math.tan(Math.PI / 4 + r / 2)) / (2 * Math.PI)) * size };
}

/** The map's markers as the page shows them: id, status, label, place, and where on screen. */
const markersOf = (page) => page.locator('[data-testid="map-marker"]').evaluateAll((els) => els.map((e) => {
  const r = e.getBoundingClientRect();
  return { id: e.dataset.id, status: e.dataset.status, lat: Number(e.dataset.lat), lon: Number(e.dataset.lon),
    label: e.querySelector('.lbl')?.textContent, shape: e.querySelector('.pin')?.className, name: e.getAttribute('aria-label'),
    role: e.getAttribute('role'), tabindex: e.getAttribute('tabindex'), x: r.left, y: r.top };
}));

/** Asserts each marker sits where Web Mercator puts its shelter, relative to the point searched from. */
async function assertPlaced(page, list) {
  const zoom = Number(await page.getByTestId('map').getAttribute('data-zoom'));
  assert.ok(zoom >= 10 && zoom <= 18, `zoom ${zoom}`);
  const here = await page.getByTestId('map-here').evaluate((e) => {
    const r = e.getBoundingClientRect();
    return { lat: Number(e.dataset.lat), lon: Number(e.dataset.lon), x: r.left, y: r.top };
  });
  const o = project(here.lat, here.lon, zoom);
  for (const m of await markersOf(page)) {
    const s = list.find((x) => x.id === m.id);
    const p = project(s.location.lat, s.location.lon, zoom);
    assert.ok(Math.abs(m.x - here.x - (p.x - o.x)) <= 1.5 && Math.abs(m.y - here.y - (p.y - o.y)) <= 1.5,
      `${s.id} at ${m.x - here.x},${m.y - here.y} px from the search point, expected ${p.x - o.x},${p.y - o.y}`);
  }
}

describe('the finder\'s map', () => {
  const h = harness(); // the sample state of 2024-01-09: open, full and closed shelters
  after(h.close);

  async function searchAll(page, d) {
    await page.goto(`${h.server.base}/`);
    await page.getByRole('heading', { level: 1, name: d.title }).waitFor();
    await page.getByLabel(d.only_open).uncheck();
    await page.getByRole('button', { name: d.search }).click();
    await page.getByTestId('shelter').first().waitFor();
  }

  it('is loaded only when asked for; then a marker per listed shelter at its place, the point searched from, popups, the credit; live', async () => {
    const page = watchCsp(await h.openPage('en-US'));
    const loaded = [];
    page.on('request', (r) => { if (/\/(vendor\/leaflet\/|map\.(js|css)$)/.test(new URL(r.url()).pathname)) loaded.push(r.url()); });
    const asked = await tiles(page, 'png');
    await searchAll(page, en);
    assert.deepEqual(loaded, [], 'no map code on the first load of the finder');

    const toggle = page.getByRole('button', { name: en.map_show });
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
    await toggle.click();
    const list = (await api(h.server, 'GET', `/v1/shelters?near=${NEAR}&limit=10&hazard=earthquake`)).body.shelters;
    assert.equal(list.length, 10);
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="map-marker"]').length === n, list.length);
    assert.ok(loaded.some((u) => new URL(u).pathname === '/vendor/leaflet/leaflet.js'), 'Leaflet is loaded now');
    assert.equal(await page.getByRole('button', { name: en.map_hide }).getAttribute('aria-expanded'), 'true');

    // One marker per shelter listed, with the API's place and status, the status in words and in shape.
    const cards = await page.getByTestId('shelter').evaluateAll((e) => e.map((x) => x.dataset.id));
    const markers = await markersOf(page);
    assert.deepEqual(markers.map((m) => m.id).sort(), cards.slice().sort(), 'the shelters of the list');
    assert.deepEqual(markers.map((m) => m.id).sort(), list.map((s) => s.id).sort(), 'the shelters of the API');
    for (const m of markers) {
      const s = list.find((x) => x.id === m.id);
      assert.equal(m.lat, s.location.lat);
      assert.equal(m.lon, s.location.lon);
      assert.equal(m.status, s.status);
      assert.equal(m.label, en[`st_${s.status}`], 'the status in words, not colour alone');
      assert.match(m.shape, new RegExp(`\\bst-${s.status}\\b`));
      assert.equal(m.role, 'button');
      assert.equal(m.tabindex, '0');
      assert.ok(m.name.includes(s.name_en || s.name) && m.name.includes(en[`st_${s.status}`]), `accessible name: ${m.name}`);
    }
    assert.ok(new Set(markers.map((m) => m.status)).size >= 2, `statuses: ${markers.map((m) => m.status)}`);
    const here = page.getByTestId('map-here');
    assert.equal(await here.getAttribute('data-lat'), '37.0432');
    assert.equal(await here.getAttribute('data-lon'), '136.9674');
    assert.equal(await here.textContent(), en.map_here);
    await assertPlaced(page, list);

    // The tiles and their credit as /v1/map names them; all came (the local PNG): no note.
    const cfg = (await api(h.server, 'GET', '/v1/map')).body;
    const credit = page.getByTestId('map-credit').getByRole('link');
    assert.equal(await credit.textContent(), cfg.credit);
    assert.equal(await credit.getAttribute('href'), cfg.credit_url);
    await page.waitForFunction(() => document.querySelectorAll('img.leaflet-tile-loaded').length > 0);
    assert.ok(asked.length > 0 && asked.every((u) => u.startsWith('https://cyberjapandata.gsi.go.jp/xyz/std/')), asked[0]);
    assert.equal(await page.getByTestId('map-note').isVisible(), false);

    // A marker by keyboard: Enter opens its popup with name, status and occupancy.
    const first = list[0];
    const mk = page.locator(`[data-testid="map-marker"][data-id="${first.id}"]`);
    await mk.focus();
    await page.keyboard.press('Enter');
    const pop = page.getByTestId('map-popup');
    await pop.waitFor();
    assert.equal(await pop.getAttribute('data-id'), first.id);
    assert.ok((await pop.textContent()).includes(first.name_en || first.name));
    assert.equal(await pop.getByTestId('map-popup-status').textContent(), en[`st_${first.status}`]);
    assert.ok((await pop.getByTestId('map-popup-occ').textContent()).startsWith(fill(en.occ, { occ: first.occupancy ?? 0 })));
    await assertAxe(page, 'the finder with its map and a popup open (en)');

    // An office's change arrives live: the marker (and its open popup) follow.
    const token = officeToken(h.server);
    await page.locator('[data-testid="live"][data-live="on"]').waitFor();
    const next = first.status === 'unsafe' ? 'closed' : 'unsafe';
    const patched = await api(h.server, 'PATCH', `/v1/shelters/${first.id}`, { status: next, occupancy: 7 }, token);
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    await page.locator(`[data-testid="map-marker"][data-id="${first.id}"][data-status="${next}"]`).waitFor({ state: 'attached' }); // 0×0: the point itself
    assert.equal(await mk.locator('.lbl').textContent(), en[`st_${next}`]);
    assert.match(await mk.locator('.pin').getAttribute('class'), new RegExp(`\\bst-${next}\\b`));
    assert.equal(await pop.getByTestId('map-popup-status').textContent(), en[`st_${next}`]);
    assert.ok((await pop.getByTestId('map-popup-occ').textContent()).startsWith(fill(en.occ, { occ: 7 })));
    assert.equal(await page.locator(`[data-testid="shelter"][data-id="${first.id}"]`).getAttribute('data-status'), next);
    assert.equal(await page.locator('[data-testid="map-marker"]').count(), list.length);

    // Remembered: after a reload the map opens by itself (in the language chosen).
    await page.reload();
    await page.getByRole('button', { name: en.map_hide }).waitFor();
    await page.getByTestId('map').waitFor();
    assert.deepEqual(page.errors, []);
    assert.deepEqual(page.outside, [], 'nothing else left this machine');
  });

  it('with the tile host unreachable: the list and the markers work, the map says the tiles could not be loaded, the credit stays', async () => {
    const page = watchCsp(await h.openPage('ja-JP'));
    const asked = await tiles(page, 'abort');
    await searchAll(page, ja);
    await page.getByRole('button', { name: ja.map_show }).click();
    const note = page.getByTestId('map-note');
    await note.waitFor();
    assert.equal(await note.textContent(), ja.map_tiles_failed);
    assert.ok(asked.length > 0, 'the tiles were asked for, and refused');
    assert.equal(await page.locator('img.leaflet-tile-loaded').count(), 0);
    const ids = await page.getByTestId('shelter').evaluateAll((e) => e.map((x) => x.dataset.id));
    assert.equal(ids.length, 10, 'the list is all there');
    const markers = await markersOf(page);
    assert.deepEqual(markers.map((m) => m.id).sort(), ids.slice().sort());
    for (const m of markers) assert.equal(m.label, ja[`st_${m.status}`]);
    const cfg = (await api(h.server, 'GET', '/v1/map')).body;
    assert.equal(await page.getByTestId('map-credit').getByRole('link').textContent(), cfg.credit);
    // Switching the language says it again, in English.
    await page.getByRole('button', { name: 'English' }).click();
    await page.getByRole('heading', { level: 1, name: en.title }).waitFor();
    assert.equal(await note.textContent(), en.map_tiles_failed);
    assert.equal(await page.getByTestId('map-here').textContent(), en.map_here);
    await assertAxe(page, 'the finder with its map, no tiles (en)');
    // Hidden and shown again, still there.
    await page.getByRole('button', { name: en.map_hide }).click();
    assert.equal(await page.getByTestId('map').isVisible(), false);
    await page.getByRole('button', { name: en.map_show }).click();
    assert.equal(await page.locator('[data-testid="map-marker"]').count(), 10);
    assert.deepEqual(page.errors, []);
    assert.deepEqual(page.outside, []);
  });

  it('when the map itself cannot be loaded, says so and leaves the list as it was', async () => {
    const page = watchCsp(await h.openPage('ja-JP'));
    await tiles(page, 'abort');
    await page.route((u) => u.pathname === '/vendor/leaflet/leaflet.js', (r) => r.abort('internetdisconnected'));
    await searchAll(page, ja);
    await page.getByRole('button', { name: ja.map_show }).click();
    assert.equal(await page.getByTestId('map-failed').textContent(), ja.map_failed);
    assert.equal(await page.getByTestId('shelter').count(), 10);
    assert.deepEqual(page.errors, []);
  });
});

describe('the office board\'s map', () => {
  const h = harness();
  after(h.close);

  it('shows the municipality\'s shelters (as the table\'s filter narrows them), live', async () => {
    await h.ready();
    const token = officeToken(h.server);
    const page = watchCsp(await h.openPage('ja-JP'));
    await tiles(page, 'png');
    await page.goto(`${h.server.base}/office`);
    await page.getByLabel(ja.o_token).fill(token);
    await page.getByRole('button', { name: ja.o_open, exact: true }).click();
    const all = (await api(h.server, 'GET', `/v1/shelters?municipality=${NANAO}&limit=1000`)).body.shelters;
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="row"]').length === n, all.length);
    await page.getByRole('button', { name: ja.map_show }).click();
    const placed = all.filter((s) => s.location);
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="map-marker"]').length === n, placed.length);
    const markers = await markersOf(page);
    assert.deepEqual(markers.map((m) => m.id).sort(), placed.map((s) => s.id).sort());
    for (const m of markers) {
      const s = all.find((x) => x.id === m.id);
      assert.deepEqual([m.lat, m.lon, m.status, m.label], [s.location.lat, s.location.lon, s.status, ja[`st_${s.status}`]]);
    }
    // All of them in view.
    const box = await page.getByTestId('map').boundingBox();
    for (const m of markers) assert.ok(m.x >= box.x - 1 && m.x <= box.x + box.width + 1 && m.y >= box.y - 1 && m.y <= box.y + box.height + 1, m.id);
    await assertAxe(page, 'the board with its map (ja)');

    // The table's filter narrows the map too.
    await page.getByLabel(ja.o_filter_status).selectOption('open');
    const open = placed.filter((s) => s.status === 'open');
    assert.ok(open.length > 0 && open.length < placed.length);
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="map-marker"]').length === n, open.length);
    await page.getByLabel(ja.o_filter_status).selectOption('');
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="map-marker"]').length === n, placed.length);

    // Another member of staff closes a shelter: its marker follows.
    const s = open[0];
    assert.equal((await api(h.server, 'PATCH', `/v1/shelters/${s.id}`, { status: 'full' }, token)).status, 200);
    await page.locator(`[data-testid="map-marker"][data-id="${s.id}"][data-status="full"]`).waitFor({ state: 'attached' });
    assert.equal(await page.locator(`[data-testid="map-marker"][data-id="${s.id}"] .lbl`).textContent(), ja.st_full);
    assert.deepEqual(page.errors, []);
    assert.deepEqual(page.outside, []);
  });
});
