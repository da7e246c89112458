// What the office board's tests need beside harness.mjs: a sign-in link made
// with the CLI, the board's texts, and an axe-core check.

import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const UI = path.join(here, '../../ui');
export const ROOT = path.join(here, '../..');

/** The texts the board loads: i18n/<lang>.json, i18n/aid/<lang>.json and i18n/office/<lang>.json. */
export const officeDict = (lang) => Object.assign({}, ...['', 'aid/', 'office/'].map((p) =>
  JSON.parse(fs.readFileSync(path.join(UI, 'i18n', `${p}${lang}.json`), 'utf8'))));
export const fill = (s, vars) => s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));

/** `anpi token create … --link --public-url <base>` on the server's database: the one-time link it prints. */
export function signInLink(server, args = ['--municipality', '172022', '--name', '七尾市災害対策本部']) {
  const made = spawnSync(process.env.ANPI_BIN, ['token', 'create', ...args, '--link', '--public-url', server.base],
    { cwd: server.dir, encoding: 'utf8', env: { ...process.env, DATABASE_URL: server.databaseUrl } });
  if (made.status !== 0) throw new Error(`anpi token create --link: ${made.stderr}`);
  const link = made.stdout.trim();
  assert.match(link, /\/office#code=anpi_code_/, 'the CLI prints a link to the office board');
  return link;
}

/** A JSON call to the server: { status, headers, body }. */
export async function api(server, method, url, body, token, headers = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  if (body !== undefined) h['content-type'] = 'application/json';
  const r = await fetch(server.base + url, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text ? JSON.parse(text) : null };
}

// Evaluated over the DevTools protocol: the pages' CSP (script-src 'self')
// rightly refuses an injected <script>.
const axeSource = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** axe-core on the page as it is now: fails on any violation of impact serious or critical. */
export async function assertAxe(page, what) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) })));
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `axe on ${what}: ${JSON.stringify(bad, null, 1)}`);
}

/** Pages in a PDF (Chromium writes one /Type /Page object per page). */
export const pdfPages = (buf) => (buf.toString('latin1').match(/\/Type\s*\/Page(?![s\w])/g) || []).length;

/** Collects what the page's Content Security Policy blocked into page.errors. */
export function watchCsp(page) {
  page.on('console', (m) => { if (/Content Security Policy/.test(m.text())) page.errors.push(m.text()); });
  return page;
}
