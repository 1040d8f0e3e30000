#!/usr/bin/env node
/* Browser test of the page kline-streamer serves: Debian's chromium driven by
 * playwright-core (never downloads a browser).
 *
 *   node page.js URL SYMBOL EXPECTED_PRICE SCREENSHOT.png
 *
 * Checks: the badge (when KP_EXPECT_BADGE is set), the sidebar row of SYMBOL shows
 * EXPECTED_PRICE (as the page formats it), the chart of the selected symbol has candles,
 * the connection indicator says live; switches to 1s and back; saves a screenshot.
 * Prints TAP-ish "ok"/"not ok" lines; exits non-zero on the first failure. */
'use strict';
const { chromium } = require('playwright-core');

const [url, symbol, expected, shot] = process.argv.slice(2);
if (!url || !symbol || !expected || !shot) {
  console.error('usage: page.js URL SYMBOL EXPECTED_PRICE SCREENSHOT');
  process.exit(2);
}

function fmtPrice(s) { // the page's own formatting (web/app.js fmtPrice)
  if (!s.includes('.')) return s;
  let [i, f] = s.split('.');
  f = f.replace(/0+$/, '');
  if (f.length < 2) f = f.padEnd(2, '0');
  return i + '.' + f;
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run',
           '--disable-dev-shm-usage'],
  });
  const errors = [];
  try {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 800 } });
    const page = await ctx.newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    // a 503 from /api/klines (no database in this setup) is logged by chromium as a console
    // error; the page handles it (live data only), so it is not a page error
    page.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource.*(503|400)/.test(m.text())) errors.push(m.text());
    });
    const external = [];
    page.on('request', (r) => { if (!r.url().startsWith(url.replace(/\/[^/]*$/, '')) && !r.url().startsWith('data:')) external.push(r.url()); });
    await page.goto(url + '#' + symbol, { waitUntil: 'load', timeout: 20000 });

    const want = fmtPrice(expected);
    const row = page.locator(`#symbols li[data-symbol="${symbol}"] .p`);
    await page.waitForFunction(([s, w]) => {
      const el = document.querySelector(`#symbols li[data-symbol="${s}"] .p`);
      return el && el.textContent === w;
    }, [symbol, want], { timeout: 20000 }).catch(() => {});
    const shown = await row.textContent().catch(() => null);
    if (shown !== want) throw new Error(`sidebar shows ${shown} for ${symbol}, expected ${want}`);
    console.log(`ok - sidebar shows the last price ${want} of ${symbol}`);

    await page.waitForFunction(() => window.klinepipe && window.klinepipe.candles() > 0, null, { timeout: 15000 });
    const sel = await page.evaluate(() => window.klinepipe.selected());
    if (sel !== symbol) throw new Error(`selected ${sel}, expected ${symbol}`);
    console.log(`ok - chart of ${symbol} has ${await page.evaluate(() => window.klinepipe.candles())} candles (1m)`);

    const conn = await page.textContent('#conn-text');
    if (conn !== 'live') throw new Error(`connection indicator says "${conn}"`);
    console.log('ok - connection indicator says live');

    if (process.env.KP_EXPECT_BADGE) {
      const badge = await page.locator('#badge');
      if (!(await badge.isVisible()) || (await badge.textContent()) !== process.env.KP_EXPECT_BADGE)
        throw new Error('badge not shown');
      console.log(`ok - badge "${process.env.KP_EXPECT_BADGE}" is visible`);
    }

    await page.click('#iv-1s');
    await page.waitForFunction(() => window.klinepipe.interval() === '1s' && window.klinepipe.candles() > 0, null, { timeout: 10000 });
    const n1s = await page.evaluate(() => window.klinepipe.candles());
    console.log(`ok - 1s view has ${n1s} candles`);
    await page.screenshot({ path: shot.replace(/\.png$/, '-1s.png') });
    await page.click('#iv-1m');
    await page.waitForFunction(() => window.klinepipe.interval() === '1m' && window.klinepipe.candles() > 0, null, { timeout: 10000 });
    await page.waitForTimeout(1500); // let the latency read-out and a few ticks show
    await page.screenshot({ path: shot });
    console.log(`ok - screenshot saved to ${shot}`);

    if (external.length) throw new Error('page fetched from outside the server: ' + external.join(' '));
    console.log('ok - no request left the server');
    if (errors.length) throw new Error('page errors: ' + errors.join(' | '));
    console.log('ok - no page errors');
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.log('not ok - ' + e.message); process.exit(1); });
