#!/usr/bin/env node
/* Browser test of the page kline-streamer serves: Debian's chromium driven by
 * playwright-core (never downloads a browser).
 *
 *   node page.js URL SYMBOL EXPECTED_PRICE|- SCREENSHOT.png [--full]
 *
 * Always: the badge (when KP_EXPECT_BADGE is set), the sidebar row of SYMBOL shows
 * EXPECTED_PRICE (as the page formats it; "-" skips that), the chart has candles and a
 * volume histogram with data, the connection indicator says live; 1s and back; screenshot.
 * --full (a streamer with a database that the inserter and aggregator keep current):
 *   every interval loads its history (bars equal /api/klines, aligned to the interval);
 *   a dropped WebSocket (the page's drop() hook keeps it offline for 5 s) leaves no hole:
 *   the 1s bars around the drop are every second, the same as /api/klines;
 *   the 1m % of some symbol is nonzero; Tab + arrows + Enter in the sidebar select
 *   another symbol (focus visible, aria-selected, URL); a URL with symbol+interval opens
 *   that view, changing it updates the URL, reload and Back restore it.
 * Prints TAP-ish "ok"/"not ok" lines; exits non-zero on the first failure. */
'use strict';
const { chromium } = require('playwright-core');

const argv = process.argv.slice(2);
const full = argv.includes('--full');
const [url, symbol, expected, shot] = argv.filter((a) => a !== '--full');
if (!url || !symbol || !expected || !shot) {
  console.error('usage: page.js URL SYMBOL EXPECTED_PRICE|- SCREENSHOT [--full]');
  process.exit(2);
}
const base = url.replace(/\/[^/]*$/, '');
const IV_MS = { '1s': 1e3, '1m': 6e4, '5m': 3e5, '15m': 9e5, '1h': 36e5, '4h': 144e5, '1d': 864e5 };

function fmtPrice(s) { // the page's own formatting (web/app.js fmtPrice)
  if (!s.includes('.')) return s;
  let [i, f] = s.split('.');
  f = f.replace(/0+$/, '');
  if (f.length < 2) f = f.padEnd(2, '0');
  return i + '.' + f;
}
function ok(msg) { console.log('ok - ' + msg); }
function check(cond, msg) { if (!cond) throw new Error(msg); }

async function api(sym, iv, args) {
  const q = new URLSearchParams({ symbol: sym, interval: iv, ...args });
  const r = await fetch(`${base}/api/klines?${q}`);
  check(r.ok, `/api/klines ${q}: HTTP ${r.status}`);
  return r.json();
}

const hook = (page, expr, arg) => page.evaluate(expr, arg);
async function waitView(page, iv, sym) {
  await page.waitForFunction(([i, s]) => window.klinepipe && window.klinepipe.interval() === i &&
    (!s || window.klinepipe.selected() === s) && window.klinepipe.loaded() && window.klinepipe.candles() > 0,
  [iv, sym], { timeout: 20000 });
}

async function basic(page) {
  await page.goto(url + '#' + symbol, { waitUntil: 'load', timeout: 20000 });
  if (expected !== '-') {
    const want = fmtPrice(expected);
    await page.waitForFunction(([s, w]) => {
      const el = document.querySelector(`#symbols li[data-symbol="${s}"] .p`);
      return el && el.textContent === w;
    }, [symbol, want], { timeout: 20000 }).catch(() => {});
    const shown = await page.locator(`#symbols li[data-symbol="${symbol}"] .p`).textContent().catch(() => null);
    check(shown === want, `sidebar shows ${shown} for ${symbol}, expected ${want}`);
    ok(`sidebar shows the last price ${want} of ${symbol}`);
  }
  await page.waitForFunction(() => window.klinepipe && window.klinepipe.candles() > 0, null, { timeout: 15000 });
  const sel = await hook(page, () => window.klinepipe.selected());
  check(sel === symbol, `selected ${sel}, expected ${symbol}`);
  // history (when there is a database) comes a moment after the live bars
  await page.waitForFunction(() => window.klinepipe.loaded(), null, { timeout: 5000 }).catch(() => {});
  ok(`chart of ${symbol} has ${await hook(page, () => window.klinepipe.candles())} candles (1m)`);

  const vols = await hook(page, () => window.klinepipe.volumes());
  const nc = await hook(page, () => window.klinepipe.candles());
  check(vols.length === nc && vols.some((v) => v > 0), `volume series has ${vols.length} points for ${nc} candles, max ${Math.max(...vols)}`);
  ok(`volume histogram has ${vols.length} bars, ${vols.filter((v) => v > 0).length} of them nonzero`);

  const conn = await page.textContent('#conn-text');
  check(conn === 'live', `connection indicator says "${conn}"`);
  ok('connection indicator says live');

  if (process.env.KP_EXPECT_BADGE) {
    const badge = page.locator('#badge');
    check(await badge.isVisible() && (await badge.textContent()) === process.env.KP_EXPECT_BADGE, 'badge not shown');
    ok(`badge "${process.env.KP_EXPECT_BADGE}" is visible`);
  }

  await page.click('#iv-1s');
  await page.waitForFunction(() => window.klinepipe.interval() === '1s' && window.klinepipe.candles() > 0, null, { timeout: 10000 });
  ok(`1s view has ${await hook(page, () => window.klinepipe.candles())} candles`);
  await page.screenshot({ path: shot.replace(/\.png$/, '-1s.png') });
  await page.click('#iv-1m');
  await page.waitForFunction(() => window.klinepipe.interval() === '1m' && window.klinepipe.candles() > 0, null, { timeout: 10000 });
}

// each interval: history loaded, bars aligned to the interval, equal to /api/klines
async function intervals(page) {
  const minBars = { '1s': 600, '1m': 300, '5m': 60, '15m': 20, '1h': 5, '4h': 1, '1d': 1 };
  for (const iv of Object.keys(IV_MS)) {
    await page.click('#iv-' + iv);
    await waitView(page, iv, symbol);
    const tab = await page.getAttribute('#iv-' + iv, 'aria-selected');
    check(tab === 'true', `tab ${iv} has aria-selected=${tab}`);
    const { bars, liveMs } = await hook(page, () => ({ bars: window.klinepipe.bars(), liveMs: window.klinepipe.liveTime() }));
    const rows = await api(symbol, iv, { limit: iv === '1s' ? 1800 : 500 });
    const byTime = new Map(bars.map((b) => [b.open_time, b]));
    const live = bars[bars.length - 1].open_time;
    let same = 0;
    for (const r of rows) {
      // the live bar moves; a just-closed 1s/1m bar may be newer in the database than on the chart
      if (r.open_time >= live - (IV_MS[iv] <= 6e4 ? IV_MS[iv] : 0)) continue;
      const b = byTime.get(r.open_time);
      check(b, `${iv}: bar ${r.open_time} of /api/klines is not on the chart`);
      check(b.open === +r.open && b.high === +r.high && b.low === +r.low && b.close === +r.close &&
            Math.abs(b.volume - +r.volume) <= 1e-9 * Math.max(1, +r.volume),
            `${iv}: bar ${r.open_time} differs: chart ${JSON.stringify(b)} api ${JSON.stringify(r)}`);
      same++;
    }
    for (let i = 0; i < bars.length; i++) {
      check(bars[i].open_time % IV_MS[iv] === 0, `${iv}: bar ${bars[i].open_time} not on an interval boundary`);
      check(i === 0 || bars[i].open_time > bars[i - 1].open_time, `${iv}: bars out of order`);
    }
    check(live === Math.floor(liveMs / IV_MS[iv]) * IV_MS[iv], `${iv}: newest bar ${live} is not the live bucket of ${liveMs}`);
    check(bars.length >= minBars[iv], `${iv}: only ${bars.length} bars`);
    check(rows.length === 0 || same > 0, `${iv}: no history bar compared`);
    ok(`${iv}: ${bars.length} bars, ${same} equal to /api/klines, newest is the live bucket`);
  }
}

// a 5 s WebSocket drop: the stream skips those seconds, the page fetches them
async function reconnect(page) {
  await page.click('#iv-1s');
  await waitView(page, '1s', symbol);
  const t0 = await hook(page, () => window.klinepipe.liveTime());
  await page.waitForFunction((t) => window.klinepipe.liveTime() > t, t0, { timeout: 10000 });
  const fills = await hook(page, () => window.klinepipe.gapFills());
  const before = await hook(page, () => window.klinepipe.liveTime());
  await hook(page, () => window.klinepipe.drop(5000));
  await page.waitForFunction(() => document.getElementById('conn-text').textContent.startsWith('offline'), null, { timeout: 5000 });
  ok('drop(): the page shows itself offline');
  await page.waitForFunction((t) => window.klinepipe.connected() && window.klinepipe.liveTime() >= t, before + 5000, { timeout: 30000 });
  const after = await hook(page, () => window.klinepipe.liveTime());
  check(after - before >= 4000, `the stream only skipped ${after - before} ms`);
  const from = before - 10000;
  // the page fills the hole from /api/klines (retrying while the database catches up)
  const inRange = () => hook(page, ([a, z]) => window.klinepipe.barTimes().filter((t) => t >= a && t <= z), [from, after]);
  let times = await inRange();
  for (let i = 0; i < 40 && times.length !== (after - from) / 1000 + 1; i++) {
    await page.waitForTimeout(250);
    times = await inRange();
  }
  const missing = [];
  for (let t = from; t <= after; t += 1000) if (!times.includes(t)) missing.push((t - before) / 1000);
  check(!missing.length, `hole in the chart after the reconnect: seconds ${missing.join(',')} after the drop are missing`);
  const rows = (await api(symbol, '1s', { from, to: after, limit: 100 })).map((r) => r.open_time);
  check(JSON.stringify(times) === JSON.stringify(rows), `chart ${times.length} bars, /api/klines ${rows.length}`);
  const filled = await hook(page, () => window.klinepipe.gapFills());
  check(filled > fills, 'the page did not count a gap fill');
  ok(`reconnect: ${(after - before) / 1000 - 1} s missed by the stream are filled; ${times.length} consecutive 1s bars = /api/klines`);
}

async function oneMinuteChange(page) {
  await page.waitForFunction(() => [...document.querySelectorAll('#symbols li .c')]
    .some((c) => /[1-9]/.test(c.textContent)), null, { timeout: 60000 });
  const rows = await page.$$eval('#symbols li', (ls) => ls.map((l) => l.dataset.symbol + ' ' + l.querySelector('.c').textContent));
  ok(`1m % is nonzero: ${rows.join(', ')}`);
}

async function keyboard(page) {
  await page.click('#filter');
  await page.keyboard.press('Tab');
  check(await hook(page, () => document.activeElement.id === 'symbols'), 'Tab from the filter does not reach the symbol list');
  const rows = await page.$$eval('#symbols li', (ls) => ls.filter((l) => !l.hidden).map((l) => l.dataset.symbol));
  check(rows.length >= 2, 'fewer than two symbols');
  const cur = await hook(page, () => window.klinepipe.selected());
  await page.keyboard.press('Home');
  await page.keyboard.press(rows[0] === cur ? 'ArrowDown' : 'Home');
  const target = rows[0] === cur ? rows[1] : rows[0];
  const active = await page.getAttribute('#symbols', 'aria-activedescendant');
  check(active === 'sym-' + target, `aria-activedescendant is ${active}, expected sym-${target}`);
  const outline = await page.$eval(`#sym-${target}`, (el) => getComputedStyle(el).outlineStyle);
  check(outline !== 'none', 'the focused row has no visible focus');
  check(await hook(page, () => window.klinepipe.selected()) === cur, 'an arrow key alone changed the symbol');
  await page.keyboard.press('Enter');
  await page.waitForFunction((s) => window.klinepipe.selected() === s, target, { timeout: 5000 });
  check(await page.getAttribute(`#sym-${target}`, 'aria-selected') === 'true', 'aria-selected not set');
  check(new URL(page.url()).searchParams.get('symbol') === target, `URL ${page.url()} does not name ${target}`);
  ok(`keyboard: Tab, arrows (focus ring, aria-activedescendant) and Enter select ${target} instead of ${cur}`);
}

async function urlState(ctx) {
  const page = await ctx.newPage();
  const other = symbol === 'ETHUSDT' ? 'BTCUSDT' : 'ETHUSDT';
  await page.goto(`${base}/?symbol=${other}&interval=15m`, { waitUntil: 'load', timeout: 20000 });
  await waitView(page, '15m', other);
  check(await page.getAttribute('#iv-15m', 'aria-selected') === 'true', '15m tab not selected');
  check((await page.textContent('#sel-symbol')) === other, 'header does not show the symbol of the URL');
  ok(`?symbol=${other}&interval=15m opens ${other} 15m (${await hook(page, () => window.klinepipe.candles())} bars)`);
  await page.click('#iv-1h');
  await waitView(page, '1h', other);
  const search = new URL(page.url()).search;
  check(search === `?symbol=${other}&interval=1h`, `URL is ${search} after choosing 1h`);
  await page.reload({ waitUntil: 'load' });
  await waitView(page, '1h', other);
  await page.goBack({ waitUntil: 'commit' });
  await waitView(page, '15m', other);
  ok('choosing 1h writes ?symbol=&interval=1h; reload keeps the view; Back returns to 15m');
  await page.close();
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
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
    page.on('request', (r) => { if (!r.url().startsWith(base) && !r.url().startsWith('data:')) external.push(r.url()); });

    await basic(page);
    if (full) {
      await intervals(page);
      await reconnect(page);
      await oneMinuteChange(page);
      await keyboard(page);
      await urlState(ctx);
      await page.click('#sym-' + symbol);
      await page.click('#iv-1m');
      await waitView(page, '1m', symbol);
    }
    await page.mouse.move(0, 0);
    await page.waitForTimeout(1500); // let the latency read-out and a few ticks show
    await page.screenshot({ path: shot });
    ok(`screenshot saved to ${shot}`);

    check(!external.length, 'page fetched from outside the server: ' + external.join(' '));
    ok('no request left the server');
    check(!errors.length, 'page errors: ' + errors.join(' | '));
    ok('no page errors');
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.log('not ok - ' + e.message); process.exit(1); });
