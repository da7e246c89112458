// Every page at 200 % zoom and at the narrowest width a page must reflow to
// (WCAG 1.4.10: 320 CSS pixels, which is 400 % of a 1280-pixel window): no
// sideways scrolling of the page, no control pushed off the screen, touch
// targets a thumb can hit, and axe-core clean as it is then laid out.
//
// Browser zoom is emulated as the browser does it: 200 % of a 1280×800 window
// is a 640×400 CSS-pixel viewport drawn at two device pixels per CSS pixel.
//
//   cd tests/ui && npm ci && ANPI_BIN=$PWD/../../target/debug/anpi node --test zoom.test.mjs

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { harness } from './harness.mjs';
import { signInLink, assertAxe } from './office-helpers.mjs';

const ZOOM_200 = { viewport: { width: 640, height: 400 }, deviceScaleFactor: 2 };
const REFLOW = { viewport: { width: 320, height: 640 }, deviceScaleFactor: 4 };
// The resident pages, opened as a resident would, and what shows once each is ready.
const RESIDENT = [['/', '#search'], ['/safety.html', 'form'], ['/aid.html', 'form']];
// Smallest touch target, in CSS pixels (WCAG 2.5.5 asks 44).
const TARGET = 44;

/**
 * What is wrong with the layout as it is: the page scrolls sideways, or a
 * visible control lies (partly) outside the viewport without a scrolling box
 * of its own around it (a wide table may scroll inside its frame), or, with
 * `targets`, a control smaller than `min` either way (a checkbox or radio
 * counts with its label, which is what a thumb presses).
 */
function layoutProblems({ targets, min }) {
  const problems = [];
  const vw = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth > vw + 1) problems.push(`the page is ${document.documentElement.scrollWidth}px wide in a ${vw}px viewport`);
  const scrollsInside = (e) => {
    for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
      if (/(auto|scroll)/.test(getComputedStyle(p).overflowX)) return true;
    }
    return false;
  };
  const name = (e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''} "${(e.textContent || e.getAttribute('aria-label') || e.name || '').trim().slice(0, 30)}"`;
  for (const e of document.querySelectorAll('a[href], button, input, select, textarea')) {
    const box = e.getBoundingClientRect();
    if (!box.width || !box.height || getComputedStyle(e).visibility === 'hidden' || e.closest('[hidden], .sr-only, .visually-hidden')) continue;
    if ((box.left < -1 || box.right > vw + 1) && !scrollsInside(e)) problems.push(`${name(e)} lies outside the viewport (${Math.round(box.left)}–${Math.round(box.right)}px of ${vw}px)`);
    if (!targets || e.type === 'hidden' || (e.tagName === 'A' && e.closest('p, li, footer'))) continue;
    const hit = (e.type === 'checkbox' || e.type === 'radio') && e.closest('label') ? e.closest('label').getBoundingClientRect() : box;
    if (hit.height < min - 0.5 || hit.width < min - 0.5) problems.push(`${name(e)} is ${Math.round(hit.width)}×${Math.round(hit.height)}px`);
  }
  return problems;
}

async function assertLayout(page, what, targets) {
  assert.deepEqual(await page.evaluate(layoutProblems, { targets, min: TARGET }), [], what);
}

describe('at 200 % zoom and at 320 CSS pixels', () => {
  const h = harness();
  after(h.close);

  for (const [size, options] of [['200 % zoom', ZOOM_200], ['320 px', REFLOW]]) {
    for (const lang of ['ja-JP', 'en-US']) {
      it(`the resident pages reflow, with large touch targets (${size}, ${lang})`, async () => {
        const page = await h.openPage(lang, options);
        for (const [url, ready] of RESIDENT) {
          await page.goto(h.server.base + url);
          await page.locator(ready).first().waitFor();
          await page.waitForFunction(() => document.documentElement.dataset.lang);
          await assertLayout(page, `${url} at ${size} in ${lang}`, true);
          await assertAxe(page, `${url} at ${size} in ${lang}`);
        }
        assert.deepEqual(page.errors, []);
      });
    }
  }

  it('the office board reflows at 200 % zoom: the table scrolls in its frame, the page does not', async () => {
    await h.ready();
    const page = await h.openPage('ja-JP', ZOOM_200);
    await page.goto(signInLink(h.server));
    await page.getByTestId('row').first().waitFor();
    await assertLayout(page, 'the board at 200 % zoom', false);
    await assertAxe(page, 'the board at 200 % zoom');
    assert.deepEqual(page.errors, []);
  });
});
