// Page loads on a bad network: the safety page, the shelter finder and the
// office board opened in headless Chromium on a phone-sized screen, under
// Chrome DevTools' "slow 3G" and "fast 3G" presets and without throttling,
// against the real anpi binary. Measured, not asserted: bytes over the wire,
// requests, first contentful paint and the time until each page is usable,
// for a first visit (empty cache) and a repeat visit (warm HTTP cache), beside
// the floor: one tiny request (/healthz) under the same throttle.
//
//   node pageload.mjs --anpi-bin ../../target/release/anpi [--runs 5] [--benchmarks ../../BENCHMARKS.md]
//
// --anpi-bin (or ANPI_BIN): the server, started as `anpi serve --listen
// 127.0.0.1:0` in a fresh temporary directory (a new SQLite database with the
// sample Nanao shelters). CHROMIUM: the browser (default /usr/bin/chromium).
// The section is printed; with --benchmarks it also replaces the section
// "Page loads on a bad network" of that file (between its markers).

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NANAO = '172022';
const PLACE = { lat: '37.0432', lon: '136.9674' }; // the finder's default point
const QUIET_MS = 1000; // nothing in flight or arriving for this long: the network is idle
const PAGE_TIMEOUT_MS = 120_000;
const SECTION = 'pageload';

// Chrome DevTools' presets (bytes/s; latency added to every request).
const PROFILES = [
  { name: 'slow 3G', latency: 2000, down: 50_000, up: 50_000 },
  { name: 'fast 3G', latency: 562.5, down: 180_000, up: 84_375 },
  { name: 'no throttling', latency: 0, down: -1, up: -1 },
];

// What "usable" means on each page, read from its code; checked in the page
// (see watchUsable).
const PAGES = [
  { id: 'safety', name: 'safety page', path: '/safety.html',
    usable: 'the check-in form\'s 送信 button shown and enabled, the Japanese dictionary applied, the active incident in its list' },
  { id: 'finder', name: 'shelter finder', path: '/',
    usable: 'the search button shown and enabled, the Japanese dictionary applied, the prompt under the form' },
  { id: 'finder-place', name: 'shelter finder, link with a place', path: `/?lat=${PLACE.lat}&lon=${PLACE.lon}&hazard=earthquake`,
    usable: 'as the finder, and the list of the nearest open shelters shown' },
  { id: 'signin', name: 'office board, sign-in screen', path: '/office',
    usable: 'the token field and its button shown, the Japanese dictionary applied' },
  { id: 'board', name: 'office board, signed in', path: '/office', signedIn: true,
    usable: 'the board shown with the municipality\'s shelters in its table' },
];

// ---------- the server ----------

/** Finds the value of `key` anywhere in a parsed JSON value. */
function findKey(value, key) {
  if (value && typeof value === 'object') {
    if (Object.hasOwn(value, key) && typeof value[key] === 'string') return value[key];
    for (const v of Object.values(value)) {
      const found = findKey(v, key);
      if (found) return found;
    }
  }
  return undefined;
}

/** `anpi serve` on a free port, as tests/ui/harness.mjs starts it; resolves once it logs where it listens. */
function startServer(bin) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anpi-pageload-'));
  const databaseUrl = `sqlite://${path.join(dir, 'anpi.db')}`;
  const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0'], {
    cwd: dir,
    env: { ...process.env, RUST_LOG: 'info', DATABASE_URL: databaseUrl },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('anpi did not log "listening" within 60 s')), 60_000);
    child.on('exit', (code) => reject(new Error(`anpi exited (code ${code}) before it was listening`)));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      let entry;
      try { entry = JSON.parse(line); } catch { return; }
      const addr = findKey(entry, 'addr');
      if (findKey(entry, 'message') !== 'listening' || !addr) return;
      clearTimeout(timer);
      resolve({ child, dir, databaseUrl, bin, base: `http://${addr.replace(/^0\.0\.0\.0:/, '127.0.0.1:')}` });
    });
  });
}

async function stopServer(server) {
  const exited = new Promise((r) => server.child.once('exit', r));
  server.child.kill('SIGTERM');
  await exited;
  fs.rmSync(server.dir, { recursive: true, force: true });
}

async function call(server, method, url, body, token) {
  const r = await fetch(server.base + url, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${method} ${url}: ${r.status} ${await r.text()}`);
  return r.json();
}

// A disaster under way, as an office makes it through the API: an active
// incident for Nanao, an announcement, and the ten shelters nearest the
// finder's point open. Returns the office's token (for the signed-in board).
async function setUp(server) {
  const made = spawnSync(server.bin, ['token', 'create', '--name', 'bench', '--municipality', NANAO],
    { cwd: server.dir, encoding: 'utf8', env: { ...process.env, DATABASE_URL: server.databaseUrl } });
  if (made.status !== 0) throw new Error(`anpi token create: ${made.stderr}`);
  const token = made.stdout.trim();
  await call(server, 'POST', '/v1/incidents', { name: '能登半島地震', hazard: 'earthquake', municipalities: [NANAO] }, token);
  await call(server, 'POST', `/v1/municipalities/${NANAO}/announcements`,
    { text: '七尾市内の避難所を開設しました。', text_en: 'Shelters in Nanao are open.', severity: 'warning' }, token);
  const near = await call(server, 'GET', `/v1/shelters?near=${PLACE.lat},${PLACE.lon}&hazard=earthquake&limit=10`);
  for (const [i, s] of near.shelters.entries()) {
    await call(server, 'PATCH', `/v1/shelters/${s.id}`, { status: 'open', occupancy: 10 * i }, token);
  }
  return token;
}

// ---------- in the page ----------

// Runs before the page's own scripts: once a frame, whether the page is
// usable yet; the first time it is (ms since navigation start) goes to
// window.__usableAt. Checked in requestAnimationFrame, so the frame that
// shows it is painted right after (and none is while style.css blocks).
function watchUsable(kind) {
  if (location.protocol !== 'http:') return;
  const q = (s) => document.querySelector(s);
  const shown = (s) => !!q(s)?.checkVisibility();
  const ready = (s) => shown(s) && !q(s).disabled && q(s).textContent.trim() !== '';
  const ja = () => document.documentElement.dataset.lang === 'ja'; // common.js's setLang sets it once the dictionary is applied
  const tests = {
    safety: () => ja() && ready('#checkin button[type=submit]') && !!q('#incident option'),
    finder: () => ja() && ready('#go') && !!q('#results .hint')?.textContent.trim(),
    'finder-place': () => ja() && ready('#go') && shown('#results [data-testid=shelter-list]'),
    signin: () => ja() && shown('#token') && ready('#signin button[type=submit]'),
    board: () => ja() && shown('#board') && shown('#rows tr[data-testid=row]'),
  };
  const tick = () => {
    if (tests[kind]()) window.__usableAt = performance.now();
    else requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

// ---------- one visit ----------

/** A new page in `context` under `profile`, its network recorded over CDP. */
async function openPage(context, profile) {
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  const net = { requests: new Map(), wireStatus: new Map(), sockets: new Map(), frames: [], last: Date.now() };
  const seen = (id) => { net.last = Date.now(); return net.requests.get(id); };
  cdp.on('Network.requestWillBeSent', (e) => {
    net.last = Date.now();
    if (!net.requests.has(e.requestId)) {
      net.requests.set(e.requestId, { url: e.request.url, method: e.request.method, type: e.type, ts: e.timestamp, wall: e.wallTime, end: null, bytes: 0 });
    }
  });
  cdp.on('Network.responseReceived', (e) => {
    const r = seen(e.requestId);
    if (r) Object.assign(r, { answered: e.timestamp, status: e.response.status, cached: !!e.response.fromDiskCache, viaWorker: !!e.response.fromServiceWorker });
  });
  // The status as it came over the wire: a revalidated file is reported as 200 above, 304 here.
  cdp.on('Network.responseReceivedExtraInfo', (e) => net.wireStatus.set(e.requestId, e.statusCode));
  cdp.on('Network.requestServedFromCache', (e) => { const r = seen(e.requestId); if (r) r.cached = true; });
  cdp.on('Network.loadingFinished', (e) => { const r = seen(e.requestId); if (r) Object.assign(r, { end: e.timestamp, bytes: e.encodedDataLength }); });
  cdp.on('Network.loadingFailed', (e) => { const r = seen(e.requestId); if (r) Object.assign(r, { end: e.timestamp, failed: e.errorText }); });
  // WebSockets (/v1/live) have no loadingFinished: their handshake and the
  // frames received (payload + frame header) are recorded apart.
  cdp.on('Network.webSocketWillSendHandshakeRequest', (e) => { net.last = Date.now(); net.sockets.set(e.requestId, { ts: e.timestamp, answered: null }); });
  cdp.on('Network.webSocketHandshakeResponseReceived', (e) => {
    net.last = Date.now();
    const w = net.sockets.get(e.requestId);
    if (w) w.answered = e.timestamp;
  });
  cdp.on('Network.webSocketFrameReceived', (e) => {
    net.last = Date.now();
    const n = Buffer.byteLength(e.response.payloadData, e.response.opcode === 1 ? 'utf8' : 'base64');
    net.frames.push({ ts: e.timestamp, bytes: n + (n < 126 ? 2 : n < 65536 ? 4 : 10) });
  });
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions',
    { offline: false, latency: profile.latency, downloadThroughput: profile.down, uploadThroughput: profile.up });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return { page, net, errors };
}

/** Resolves when nothing has been in flight (request, socket handshake) or received for QUIET_MS. */
async function networkIdle(net) {
  const until = Date.now() + PAGE_TIMEOUT_MS;
  while (Date.now() < until) {
    const busy = [...net.requests.values()].some((r) => r.end === null) || [...net.sockets.values()].some((w) => w.answered === null);
    if (!busy && Date.now() - net.last >= QUIET_MS) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the network did not become idle');
}

/**
 * One visit of `page` in `context`: times are ms since navigation start
 * (the document's performance.timeOrigin), CDP's clock mapped onto it
 * through the document request's wall time.
 */
async function visit(context, profile, spec, base) {
  const { page, net, errors } = await openPage(context, profile);
  await page.goto(base + spec.path, { waitUntil: 'commit', timeout: PAGE_TIMEOUT_MS });
  await page.waitForFunction(() => window.__usableAt, null, { timeout: PAGE_TIMEOUT_MS, polling: 100 });
  await networkIdle(net);
  const t = await page.evaluate(() => ({
    origin: performance.timeOrigin,
    usable: window.__usableAt,
    fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null,
  }));
  await page.close();
  const list = [...net.requests].map(([id, r]) => ({ ...r, status: net.wireStatus.get(id) ?? r.status }));
  const doc = list.find((r) => r.type === 'Document');
  const rel = (ts) => (ts - doc.ts) * 1000 + (doc.wall * 1000 - t.origin);
  const requests = list.map((r) => ({ ...r, start: rel(r.ts), answered: rel(r.answered), end: r.end === null ? null : rel(r.end) }))
    .sort((a, b) => a.start - b.start);
  const done = (r) => r.end !== null && r.end <= t.usable;
  const frames = net.frames.map((f) => ({ at: rel(f.ts), bytes: f.bytes }));
  const wire = (r) => !r.cached && !r.failed; // answered over the network, not from the cache
  const sum = (xs) => xs.reduce((n, x) => n + x.bytes, 0);
  return {
    usable: t.usable,
    fcp: t.fcp,
    bytesUsable: sum(requests.filter(done)),
    reqUsable: requests.filter((r) => done(r) && wire(r)).length,
    bytesIdle: sum(requests),
    reqIdle: requests.filter(wire).length,
    wsUsable: sum(frames.filter((f) => f.at <= t.usable)),
    wsIdle: sum(frames),
    handshakes: [...net.sockets.values()].filter((w) => w.answered !== null).map((w) => (w.answered - w.ts) * 1000),
    failed: requests.filter((r) => r.failed).map((r) => `${r.url}: ${r.failed}`),
    errors,
    requests,
  };
}

const CONTEXT = {
  viewport: { width: 390, height: 844 }, deviceScaleFactor: 1, isMobile: true, hasTouch: true, locale: 'ja-JP',
  // Chromium's emulation does not reach a service worker's own fetches (see
  // serviceWorkerInstall): with a worker in charge, what it forwards would
  // travel unthrottled. Registration is refused; the install is measured apart.
  serviceWorkers: 'block',
};

/** A first visit in a fresh context (empty cache), then a repeat visit in the same context. */
async function coldAndRepeat(browser, profile, spec, base, token) {
  const context = await browser.newContext(CONTEXT);
  try {
    await context.addInitScript(watchUsable, spec.id);
    if (spec.signedIn) {
      // As office.js keeps the token after a sign-in (localStorage).
      await context.addInitScript((t) => { if (location.protocol === 'http:') localStorage.setItem('anpi.office.token', t); }, token);
    }
    const cold = await visit(context, profile, spec, base);
    const repeat = await visit(context, profile, spec, base);
    return { cold, repeat };
  } finally {
    await context.close();
  }
}

/** The floor: one tiny request (/healthz) in a fresh context under the same throttle. */
async function floor(browser, profile, base) {
  const context = await browser.newContext(CONTEXT);
  try {
    const { page, net } = await openPage(context, profile);
    await page.goto(base + '/healthz', { timeout: PAGE_TIMEOUT_MS });
    const ms = await page.evaluate(() => performance.getEntriesByType('navigation')[0].responseEnd);
    return { ms, bytes: [...net.requests.values()].find((r) => r.type === 'Document').bytes };
  } finally {
    await context.close();
  }
}

// What a first visit adds when the page may install its service worker
// (sw.js: it fetches the pages' files into its cache), with the page under
// slow 3G: the worker's own requests (not those it forwards for the page
// once in charge), their bytes, and how long the slowest of all it made
// took (under the 2 s latency: Chromium did not throttle it).
async function serviceWorkerInstall(browser, spec, base) {
  const context = await browser.newContext({ ...CONTEXT, serviceWorkers: 'allow' });
  try {
    const fetched = [];
    context.on('requestfinished', (r) => {
      if (r.serviceWorker()) fetched.push(r.sizes().then((s) => ({ url: r.url(), ms: r.timing().responseEnd, bytes: s.responseHeadersSize + s.responseBodySize })));
    });
    const { page, net } = await openPage(context, PROFILES[0]);
    await page.goto(base + spec.path, { waitUntil: 'commit', timeout: PAGE_TIMEOUT_MS });
    await page.waitForFunction(() => navigator.serviceWorker.controller, null, { timeout: PAGE_TIMEOUT_MS, polling: 100 });
    await networkIdle(net);
    const all = await Promise.all(fetched);
    // The page's requests answered by the worker, each matched to one of the worker's by URL.
    const forwarded = [...net.requests.values()].filter((r) => r.viaWorker).map((r) => r.url);
    const own = all.filter((f) => {
      const i = forwarded.indexOf(f.url);
      if (i >= 0) forwarded.splice(i, 1);
      return i < 0;
    });
    return { own, bytes: own.reduce((n, f) => n + f.bytes, 0), forwarded: all.length - own.length, slowest: Math.max(...all.map((f) => f.ms)) };
  } finally {
    await context.close();
  }
}

// ---------- figures ----------

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const kb = (b) => `${(b / 1000).toFixed(1)} KB`;
const secs = (ms) => (ms / 1000).toFixed(2);
const time = (ms) => (ms >= 1000 ? `${secs(ms)} s` : `${Math.round(ms)} ms`);
/** "10.41 s (10.38–10.52)": median, then min–max in the median's unit. */
function spread(xs) {
  const m = median(xs), lo = Math.min(...xs), hi = Math.max(...xs);
  return m >= 1000 ? `${secs(m)} s (${secs(lo)}–${secs(hi)})` : `${Math.round(m)} ms (${Math.round(lo)}–${Math.round(hi)})`;
}
const kbSpread = (xs) => (Math.min(...xs) === Math.max(...xs) ? kb(xs[0]) : `${kb(median(xs))} (${(Math.min(...xs) / 1000).toFixed(1)}–${(Math.max(...xs) / 1000).toFixed(1)})`);
const count = (xs) => (Math.min(...xs) === Math.max(...xs) ? `${xs[0]}` : `${median(xs)} (${Math.min(...xs)}–${Math.max(...xs)})`);
const where = (url) => { const u = new URL(url); return u.pathname + u.search; };

// The requests over the network one after another before the page was
// usable, by timing: from the last one finished before it, back through the
// one whose answer began last before each started (the HTML's scripts are
// asked for while the HTML still arrives).
function chain(visit) {
  const done = visit.requests.filter((r) => !r.cached && r.end !== null && r.end <= visit.usable);
  const latest = (rs, k) => rs.reduce((a, b) => (!a || b[k] > a[k] ? b : a), null);
  const out = [];
  for (let r = latest(done, 'end'); r; r = latest(done.filter((p) => p.answered < r.start), 'answered')) out.unshift(r);
  return out;
}

// Taken before measuring: the binary was just built from this tree, and the
// machine (shared) may be busy.
function machine(browser) {
  const cpu = /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model;
  const git = (...a) => spawnSync('git', a, { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  const dirty = git('status', '--porcelain', '--', 'src', 'ui', 'migrations', 'Cargo.toml', 'Cargo.lock') ? ' with uncommitted changes' : '';
  return `${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, load average ${os.loadavg()[0].toFixed(1)} at the start; anpi ${git('rev-parse', '--short', 'HEAD')}${dirty}; `
    + `Chromium ${browser.version()} (headless), playwright-core ${JSON.parse(fs.readFileSync(path.join(ROOT, 'loadtest/pageload/node_modules/playwright-core/package.json'), 'utf8')).version}`;
}

function section({ results, floors, installs, runs, command, machineLine }) {
  const cell = (page, profile) => results.filter((r) => r.page === page.id && r.profile === profile.name);
  const slow = PROFILES[0];
  const L = [];
  L.push('## Page loads on a bad network', '');
  L.push(`Run ${new Date().toISOString().slice(0, 10)} on ${machineLine}.`, '');
  L.push(`Command: \`loadtest/run-pageload\` (= \`${command}\`).`, '');
  L.push('Goals (from the issue): the first load of the safety page at most 50 KB compressed over the wire, '
    + 'and usable within 5 s on emulated slow 3G.', '');
  L.push(`Each page opened ${runs} time${runs > 1 ? 's' : ''} per network in headless Chromium as a phone (390×844, device scale 1, touch, locale ja-JP), `
    + 'each time in a fresh browser context (empty cache), then once more in the same context (the repeat visit: warm HTTP cache). '
    + 'The network is throttled over the DevTools protocol (`Network.emulateNetworkConditions` on the page): '
    + 'slow 3G = 2,000 ms latency per request, 50,000 bytes/s down and up; fast 3G = 562.5 ms, 180,000 bytes/s down, 84,375 up '
    + '(Chrome DevTools\' presets). The server is the release binary on a fresh SQLite database with the sample Nanao shelters, '
    + 'set up as during a disaster through the API: an active incident and an announcement for Nanao, the ten shelters nearest the finder\'s point open.', '');
  L.push('"Usable", read from each page\'s code (common.js sets `data-lang` on `<html>` once a dictionary is applied), '
    + 'checked once a frame and timed from navigation start:', '');
  for (const p of PAGES) L.push(`- ${p.name} (\`${p.path}\`): ${p.usable}.`);
  L.push('');
  L.push('| page | network | bytes until usable | requests until usable / until idle | bytes until idle | first contentful paint | time to usable | repeat visit: time to usable | repeat visit: bytes | floor: `/healthz` |');
  L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const profile of PROFILES) {
    const f = floors.filter((x) => x.profile === profile.name);
    for (const page of PAGES) {
      const rs = cell(page, profile);
      const c = (k) => rs.map((r) => r.cold[k]);
      const fcp = c('fcp').filter((x) => x != null);
      L.push(`| ${page.name} | ${profile.name} | ${kbSpread(c('bytesUsable'))} | ${count(c('reqUsable'))} / ${count(c('reqIdle'))} | ${kbSpread(c('bytesIdle'))} `
        + `| ${fcp.length ? spread(fcp) : '–'} | **${spread(c('usable'))}** | ${spread(rs.map((r) => r.repeat.usable))} `
        + `| ${kbSpread(rs.map((r) => r.repeat.bytesIdle))} | ${spread(f.map((x) => x.ms))}, ${kb(median(f.map((x) => x.bytes)))} |`);
    }
  }
  L.push('');
  L.push('Times: median (min–max) over the runs. Bytes: `encodedDataLength` of `Network.loadingFinished` (response headers and compressed body; '
    + 'KB = 1,000 bytes) of every request of the page that finished by the time it was usable, and until the network was idle '
    + `(no request or socket handshake in flight, nothing arriving, for ${QUIET_MS} ms); requests: those answered over the network (304s included, cache hits not). `
    + 'Usable is timed in the requestAnimationFrame callback of the frame that first shows it, so that frame\'s paint (a first contentful paint, say) comes a few ms later. '
    + 'The floor is a fresh context fetching `/healthz` under the same throttle, from navigation start to the end of the answer: '
    + 'a page needs at least this for its HTML alone.', '');

  const swSafety = installs.find((x) => x.spec.id === 'safety').i;
  const ws = (p, k) => kb(median(results.filter((r) => r.page === p.id).map((r) => r.cold[k])));
  const handshakes = results.filter((r) => r.profile === slow.name).flatMap((r) => r.cold.handshakes);
  L.push('Not in the bytes above: the WebSocket (`/v1/live`), which has no `loadingFinished`; its frames received '
    + '(payload and frame header, from `Network.webSocketFrameReceived`) on a first visit, median of all runs, before the page was usable / by the network\'s idle: '
    + `${PAGES.map((p) => `${p.name} ${ws(p, 'wsUsable')} / ${ws(p, 'wsIdle')}`).join('; ')}. `
    + (handshakes.length ? `The emulation throttles the socket too: under slow 3G its handshake was answered after ${spread(handshakes)}.` : ''), '');
  L.push('Nor the service worker\'s install. The safety page and the finder register `sw.js`, which fetches the pages\' files into its cache. '
    + 'Chromium\'s throttling does not reach a worker\'s own fetches, so with a worker in charge every request it forwards would travel '
    + 'unthrottled; the table\'s runs refuse the registration (Playwright `serviceWorkers: \'block\'`). Measured apart, a first visit with the '
    + `worker allowed and the page under slow 3G: ${installs.map(({ spec, i }) => `${spec.name}: the worker's own requests ${i.own.length}, ${kb(i.bytes)}`
      + `${i.forwarded ? ` (not counting ${i.forwarded} it forwarded for the page)` : ''}, the slowest of all done in ${time(i.slowest)}`).join('; ')} `
    + '(under the 2 s latency: not throttled). On a real slow 3G link those bytes share the 50,000 bytes/s with the page\'s own requests once it has registered the worker. '
    + `The worker's own requests on the safety page: ${swSafety.own.map((f) => `\`${where(f.url)}\` ${f.bytes}`).join(', ')} (bytes).`, '');

  // The same URL asked more than once in one first visit (under slow 3G, first run).
  const twice = PAGES.map((p) => {
    const urls = cell(p, slow)[0].cold.requests.filter((r) => !r.cached).map((r) => where(r.url));
    return { p, urls: [...new Set(urls.filter((u, i) => urls.indexOf(u) !== i))] };
  }).filter((x) => x.urls.length);
  if (twice.length) {
    L.push(`Asked more than once in one first visit: ${twice.map(({ p, urls }) => `${p.name}: ${urls.map((u) => `\`${u}\``).join(', ')}`).join('; ')}.`, '');
  }
  // The safety page under slow 3G: the run with the median time, request by request.
  const sRuns = cell(PAGES[0], slow);
  const byUsable = (vs) => [...vs].sort((a, b) => a.usable - b.usable)[vs.length >> 1];
  const cold = byUsable(sRuns.map((r) => r.cold)), repeat = byUsable(sRuns.map((r) => r.repeat));
  L.push(`The safety page's requests on a first visit under slow 3G (the median run, usable at ${secs(cold.usable)} s):`, '');
  L.push('| starts | ends | bytes | status | request |', '|---:|---:|---:|---:|---|');
  for (const r of cold.requests) {
    L.push(`| ${secs(r.start)} s | ${r.end === null ? '–' : `${secs(r.end)} s`} | ${r.bytes} | ${r.failed ?? r.status ?? '–'} | ${r.method} \`${where(r.url)}\`${r.end !== null && r.end <= cold.usable ? '' : ' (after usable)'} |`);
  }
  L.push('');

  // The verdict, from the numbers above.
  const bytes = median(sRuns.map((r) => r.cold.bytesIdle));
  const withSw = bytes + swSafety.bytes;
  const usable = median(sRuns.map((r) => r.cold.usable));
  const steps = chain(cold), again = chain(repeat);
  const names = (rs) => rs.map((r) => `\`${where(r.url)}\`${r.status === 304 ? ' (304)' : ''}`).join(' → ');
  const floorMs = median(floors.filter((x) => x.profile === slow.name).map((x) => x.ms));
  L.push('### What the page-load numbers say', '');
  L.push('| goal | measured | |', '|---|---|---|');
  L.push(`| first load of the safety page ≤ 50 KB over the wire | ${kb(bytes)} by the network's idle (${kb(median(sRuns.map((r) => r.cold.bytesUsable)))} until usable); `
    + `${kb(withSw)} with the service worker's own requests | ${bytes <= 50_000 ? 'met' : '**missed**'}${bytes <= 50_000 && withSw > 50_000 ? ' for the page; **missed** with the worker' : ''} |`);
  L.push(`| safety page usable within 5 s on emulated slow 3G | ${spread(sRuns.map((r) => r.cold.usable))} | ${usable <= 5000 ? 'met' : '**missed**'} |`);
  L.push('');
  L.push(`${usable > 5000 ? 'Why' : 'The chain'}: before the safety page is usable, ${steps.length} requests run one after another, each waiting for the one before it `
    + `(by their timing in the median run): ${names(steps)}. `
    + `Each pays slow 3G's latency: ${steps.length} × ${slow.latency / 1000} s = ${(steps.length * slow.latency) / 1000} s before any transfer time, `
    + `while one request alone (the floor) takes ${secs(floorMs)} s`
    + (usable > 5000 ? `; 5 s has room for ${Math.floor(5000 / slow.latency)} such round trips.` : '.')
    + ` The repeat visit (median ${secs(repeat.usable)} s) still waits for ${again.length} in a row: ${names(again)}.`);
  return L.join('\n');
}

/** Replaces the section between its markers in `file`, or appends it. */
function writeSection(file, text) {
  const begin = `<!-- ${SECTION}:begin -->`, end = `<!-- ${SECTION}:end -->`;
  const old = fs.readFileSync(file, 'utf8');
  const block = `${begin}\n${text}\n${end}`;
  const a = old.indexOf(begin), b = old.indexOf(end);
  fs.writeFileSync(file, a >= 0 && b > a ? old.slice(0, a) + block + old.slice(b + end.length) : `${old.trimEnd()}\n\n${block}\n`);
}

// ---------- main ----------

const { values: opts } = parseArgs({
  options: { 'anpi-bin': { type: 'string' }, runs: { type: 'string', default: '5' }, benchmarks: { type: 'string' } },
});
const bin = opts['anpi-bin'] ?? process.env.ANPI_BIN;
const runs = Number(opts.runs);
if (!bin || !fs.existsSync(bin)) throw new Error(`the anpi binary (--anpi-bin or ANPI_BIN) is missing: ${bin}. Build it: cargo build --release -p anpi`);
if (!(runs >= 1)) throw new Error('--runs: a number of at least 1');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(executablePath)) throw new Error(`Chromium not found at ${executablePath}: apt-get install chromium, or set CHROMIUM`);
// The command as run, with paths relative to the repository.
const rel = (p) => path.relative(ROOT, path.resolve(p)) || '.';
const command = ['node loadtest/pageload/pageload.mjs', `--anpi-bin ${rel(bin)}`, `--runs ${runs}`,
  ...(opts.benchmarks ? [`--benchmarks ${rel(opts.benchmarks)}`] : [])].join(' ');

const server = await startServer(path.resolve(bin));
const browser = await chromium.launch({
  executablePath,
  args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
try {
  const machineLine = machine(browser);
  const token = await setUp(server);
  const results = [], floors = [];
  // Round-robin (each run visits every network and page), so drift on the
  // machine spreads over all cells rather than landing on one.
  for (let run = 1; run <= runs; run++) {
    for (const profile of PROFILES) {
      floors.push({ profile: profile.name, ...(await floor(browser, profile, server.base)) });
      for (const spec of PAGES) {
        const r = await coldAndRepeat(browser, profile, spec, server.base, token);
        for (const v of [r.cold, r.repeat]) {
          if (v.errors.length || v.failed.length) console.error(`  ${spec.id}: ${[...v.errors, ...v.failed].join('; ')}`);
        }
        results.push({ page: spec.id, profile: profile.name, ...r });
        console.error(`run ${run}/${runs} ${profile.name.padEnd(13)} ${spec.id.padEnd(12)} usable ${time(r.cold.usable)}, `
          + `${kb(r.cold.bytesUsable)} / ${kb(r.cold.bytesIdle)}, ${r.cold.reqIdle} requests; repeat ${time(r.repeat.usable)}`);
      }
    }
  }
  const installs = [];
  for (const spec of PAGES.filter((p) => p.id === 'safety' || p.id === 'finder')) {
    installs.push({ spec, i: await serviceWorkerInstall(browser, spec, server.base) });
  }
  const text = section({ results, floors, installs, runs, command, machineLine });
  console.log(text);
  if (opts.benchmarks) writeSection(opts.benchmarks, text);
} finally {
  await browser.close();
  await stopServer(server);
}
