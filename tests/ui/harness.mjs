// The harness of the UI tests: the real anpi binary and real headless Chromium.
//
// ANPI_BIN (required): the anpi binary, started as `anpi serve --listen 127.0.0.1:0`
// in a fresh temporary directory, so it makes a new SQLite file and loads the
// sample Nanao shelters (all closed). CHROMIUM: the browser (default /usr/bin/chromium).
// Nothing is skipped: a missing binary or browser fails every test with the reason.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const START_TIMEOUT_MS = 60_000;

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

/** Starts `$ANPI_BIN serve` on a free port; resolves once it logs where it listens. */
export function startServer(env = {}) {
  const bin = process.env.ANPI_BIN;
  if (!bin) {
    throw new Error('ANPI_BIN is not set. Build the server (cargo build) and run: '
      + 'ANPI_BIN=$PWD/../../target/debug/anpi node --test');
  }
  if (!fs.existsSync(bin)) throw new Error(`ANPI_BIN=${bin}: no such file. Build the server first (cargo build).`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anpi-ui-'));
  // Named outright, so that a DATABASE_URL in the environment is not used.
  const databaseUrl = `sqlite://${path.join(dir, 'anpi.db')}`;
  const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0'], {
    cwd: dir,
    env: { ...process.env, RUST_LOG: 'info', DATABASE_URL: databaseUrl, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const server = { child, dir, databaseUrl, base: null, output: [] };
  const keep = (line) => {
    server.output.push(line);
    if (server.output.length > 40) server.output.shift();
  };
  readline.createInterface({ input: child.stderr }).on('line', keep);
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${why}\n--- last lines from ${bin} ---\n${server.output.join('\n')}`));
    };
    const timer = setTimeout(
      () => fail(`anpi did not log a "listening" line with its addr within ${START_TIMEOUT_MS / 1000} s`),
      START_TIMEOUT_MS);
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      keep(line);
      if (settled) return;
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      // tracing's JSON puts fields under "fields"; look anywhere, for the shape may change.
      const addr = findKey(entry, 'addr');
      if (findKey(entry, 'message') !== 'listening' || !addr || !/:\d+$/.test(addr)) return;
      settled = true;
      clearTimeout(timer);
      server.base = `http://${addr.replace(/^0\.0\.0\.0:/, '127.0.0.1:')}`;
      resolve(server);
    });
    child.on('error', (e) => fail(`could not start ${bin}: ${e.message}`));
    child.on('exit', (code, signal) => fail(`anpi exited (code ${code}, signal ${signal}) before it was listening`));
  });
}

export async function stopServer(server) {
  if (!server) return;
  const { child } = server;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  fs.rmSync(server.dir, { recursive: true, force: true });
}

export async function launchBrowser() {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) {
    throw new Error(`Chromium not found at ${executablePath}. Install it (apt-get install -y chromium `
      + 'fonts-ipafont-gothic) or set CHROMIUM to its path.');
  }
  return chromium.launch({
    executablePath,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

/** `anpi token create …` with the CLI on the server's database; the token it prints. */
function createToken(server, args) {
  const made = spawnSync(process.env.ANPI_BIN, ['token', 'create', ...args],
    { cwd: server.dir, encoding: 'utf8', env: { ...process.env, DATABASE_URL: server.databaseUrl } });
  if (made.status !== 0) throw new Error(`anpi token create ${args.join(' ')}: ${made.stderr}`);
  return made.stdout.trim();
}

/** An office token for Nanao, made with the CLI on the server's database. */
export const officeToken = (server) => createToken(server, ['--municipality', '172022', '--name', 'UI test office']);

/** A JSON call as the harness's office (its token made once per harness); fails on anything but 2xx. */
export async function asOffice(h, method, url, body) {
  const r = await fetch(`${h.server.base}${url}`, {
    method,
    headers: { authorization: `Bearer ${h.token ??= officeToken(h.server)}`, 'content-type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${url}: ${r.status} ${text}`);
  return JSON.parse(text);
}

/** A coordinator token (a volunteer centre) for Nanao, made with the CLI on the server's database. */
export const coordinatorToken = (server) => createToken(server,
  ['--role', 'coordinator', '--org', '七尾市社会福祉協議会', '--municipality', '172022']);

/**
 * A shared server (with `env` added to its environment) and browser for a
 * describe block, started by the first test:
 * if either cannot start, every test fails with the reason (rather than being
 * cancelled). `openPage` gives a fresh phone-sized profile; JS errors on the
 * page are collected in `page.errors`.
 */
export function harness(env = {}) {
  const h = { server: null, browser: null, setup: null, contexts: [] };
  h.ready = () => {
    h.setup ??= Promise.allSettled([startServer(env), launchBrowser()]).then(([s, b]) => {
      h.server = s.value;
      h.browser = b.value;
      if (s.status === 'rejected') throw s.reason;
      if (b.status === 'rejected') throw b.reason;
    });
    return h.setup;
  };
  h.close = async () => {
    for (const c of h.contexts) await c.close().catch(() => {});
    await h.browser?.close();
    await stopServer(h.server);
  };
  h.openPage = async (locale, options = {}) => {
    await h.ready();
    const context = await h.browser.newContext({ locale, viewport: { width: 390, height: 844 }, ...options });
    h.contexts.push(context);
    context.setDefaultTimeout(15_000);
    // No test reaches the internet: a request to any other host (map tiles,
    // say) is refused here and noted in page.outside, unless the test routes
    // it itself (page.route wins over this).
    const outside = [];
    await context.route((url) => /^(https?|wss?):$/.test(url.protocol) && !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname),
      (route) => { outside.push(route.request().url()); return route.abort('blockedbyclient'); });
    const page = await context.newPage();
    page.outside = outside;
    page.errors = [];
    page.on('pageerror', (e) => page.errors.push(e.message));
    return page;
  };
  return h;
}
