// anpi's service worker (registered by the shelter finder and the safety
// page): the pages' files and the last public answers stay on the phone, so
// the pages open, and say how old what they show is, without a network.
// Network first, always: online, a resident sees what is current.

const SHELL = 'anpi-shell-3';
const DATA = 'anpi-data-1';
const FILES = ['./', 'index.html', 'app.js', 'safety.html', 'safety.js', 'common.js', 'supply.js', 'style.css', 'i18n/ja.json', 'i18n/en.json', 'i18n/ja-easy.json',
  'i18n/supply/ja.json', 'i18n/supply/en.json', 'i18n/supply/ja-easy.json'];
// Public answers only: never a look-up of people, nothing sent with a token.
const ANSWERS = /^\/v1\/(shelters(\/[^/]+)?|supply-points|incidents|municipalities\/\d{6}\/announcements)$/;

self.addEventListener('install', (e) => {
  e.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (e) => {
  e.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== SHELL && k !== DATA).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (e) => {
  const req = e.request, url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== location.origin || req.headers.has('authorization')) return;
  const file = url.pathname.replace(/^\//, '') || './';
  if (ANSWERS.test(url.pathname)) e.respondWith(answer(req));
  else if (FILES.includes(file) || file === 'safety') e.respondWith(shell(req, file === 'safety' ? 'safety.html' : file));
});

// A file of the pages: from the network, else as last seen.
async function shell(req, file) {
  try {
    const res = await fetch(req);
    if (res.ok) (await caches.open(SHELL)).put(file, res.clone());
    return res;
  } catch (err) {
    const hit = await caches.match(file, { cacheName: SHELL, ignoreSearch: true });
    if (hit) return hit;
    throw err;
  }
}

// An answer: from the network (kept, with when), else the last one kept.
async function answer(req) {
  try {
    const res = await fetch(req);
    if (res.ok) {
      const headers = new Headers(res.headers);
      headers.set('x-anpi-saved-at', new Date().toISOString());
      const body = await res.clone().arrayBuffer();
      (await caches.open(DATA)).put(req, new Response(body, { status: res.status, headers }));
    }
    return res;
  } catch (err) {
    const hit = await caches.match(req, { cacheName: DATA });
    if (hit) return hit;
    throw err;
  }
}
