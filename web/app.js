/* klinepipe live page: symbols sidebar, candlestick chart with volume and SMA, alerts.
 * Talks to kline-streamer: WebSocket /ws (protocol in docs/streamer.md), /api/klines, /api/info.
 *
 * The chart shows one "view" (symbol, interval): a map open_time → bar, filled from
 * /api/klines and kept current from the stream. 1s bars are the 1s klines; 1m bars the
 * streamer's live minute bar; coarser bars are folded on the page from 1m bars (the
 * database's complete 1m bars plus the live minute), because the aggregator writes a
 * coarse bar only when its bucket is complete. After a reconnect the missed range is
 * fetched again and merged by open_time, so the chart has no hole. */
(function () {
  'use strict';

  const LWC = window.LightweightCharts;
  const $ = (id) => document.getElementById(id);
  const IV_MS = { '1s': 1e3, '1m': 6e4, '5m': 3e5, '15m': 9e5, '1h': 36e5, '4h': 144e5, '1d': 864e5 };
  const IVS = Object.keys(IV_MS);
  const LIVE_1S_MAX = 1800;   // live 1s klines kept per symbol (30 min)
  const LIVE_1M_MAX = 600;    // live 1m bars kept per symbol (10 h; history comes from the database)
  const HIST_LIMIT = 500;     // bars of history per view (1s: LIVE_1S_MAX)
  const FILL_TRIES = 15;      // reconnect gap fill: attempts, 1 s apart, while the database catches up
  const ALERTS_MAX = 60;
  const UP = '#26a69a', DOWN = '#ef5350';

  const state = {
    symbols: new Map(),      // name -> entry
    selected: null,
    interval: '1m',
    smaN: 5,
    ws: null,
    attempt: 0,
    everLive: false,
    holdUntil: 0,            // test hook: no reconnect before this time
    lastMsgAt: 0,
    msgCount: 0,
    latencyEma: null,
    view: null,
    token: 0,
    gapFills: 0,
    alertKeys: new Set(),
    activeRow: null,         // keyboard focus in the sidebar (aria-activedescendant)
  };

  /* ------------------------------------------------------------ formatting */

  function fmtPrice(s) {
    if (s === undefined || s === null) return '–';
    const str = String(s);
    if (!str.includes('.')) return str;
    let [i, f] = str.split('.');
    f = f.replace(/0+$/, '');
    if (f.length < 2) f = f.padEnd(2, '0');
    return i + '.' + f;
  }
  function precisionOf(price) {
    if (price >= 1000) return 2;
    if (price >= 10) return 3;
    if (price >= 1) return 4;
    if (price >= 0.01) return 6;
    return 8;
  }
  function fmtTime(ms) { return new Date(ms).toISOString().slice(11, 19); }
  function fmtPct(x) { return isFinite(x) ? (x >= 0 ? '+' : '') + x.toFixed(2) + '%' : ''; }
  function fmtVol(v) {
    if (!isFinite(v)) return '–';
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(2) + 'B';
    if (a >= 1e6) return (v / 1e6).toFixed(2) + 'M';
    if (a >= 1e3) return (v / 1e3).toFixed(2) + 'K';
    return a >= 1 ? v.toFixed(2) : v.toPrecision(3);
  }

  /* ------------------------------------------------------------ chart */

  const chart = LWC.createChart($('chart'), {
    autoSize: true,
    layout: { background: { type: 'solid', color: '#11151d' }, textColor: '#7c8799', fontSize: 11 },
    grid: { vertLines: { color: 'rgba(34, 41, 56, 0.6)' }, horzLines: { color: 'rgba(34, 41, 56, 0.6)' } },
    rightPriceScale: { borderColor: '#222938', scaleMargins: { top: 0.08, bottom: 0.26 } },
    timeScale: { borderColor: '#222938', timeVisible: true, secondsVisible: false, rightOffset: 4,
                 barSpacing: 8, minBarSpacing: 2, maxBarSpacing: 24 },
    crosshair: { mode: LWC.CrosshairMode ? LWC.CrosshairMode.Normal : 0 },
  });
  const candleSeries = chart.addSeries(LWC.CandlestickSeries, {
    upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN,
  });
  const smaSeries = chart.addSeries(LWC.LineSeries, {
    color: '#4da3ff', lineWidth: 2, priceLineVisible: false, lastValueVisible: true, crosshairMarkerVisible: false,
  });
  // volume: its own price scale, in the bottom fifth of the pane, under the candles
  const volumeSeries = chart.addSeries(LWC.HistogramSeries, {
    priceScaleId: 'volume', priceFormat: { type: 'volume' }, lastValueVisible: false, priceLineVisible: false,
  });
  chart.priceScale('volume').applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  let chartLastTime = 0;     // newest bar time on the chart (seconds)

  function volPoint(b) {
    return { time: b.time, value: b.volume, color: b.close >= b.open ? 'rgba(38,166,154,0.45)' : 'rgba(239,83,80,0.45)' };
  }
  function candle(b) { return { time: b.time, open: b.open, high: b.high, low: b.low, close: b.close }; }

  function applyPriceFormat(price) {
    const p = precisionOf(price);
    const fmt = { priceFormat: { type: 'price', precision: p, minMove: Math.pow(10, -p) } };
    candleSeries.applyOptions(fmt);
    smaSeries.applyOptions(fmt);
  }

  /* ------------------------------------------------------------ bars */

  const bucketOf = (ms, iv) => Math.floor(ms / IV_MS[iv]) * IV_MS[iv];
  function barFrom(o, volume) {
    return { time: Math.floor(o.open_time / 1000), open: +o.open, high: +o.high, low: +o.low, close: +o.close,
             volume: +volume || 0 };
  }

  // bucket bar from the 1m bars inside it: the aggregator's rules (OHLC from minutes with volume)
  function fold(bucketMs, minutes) {
    let b = null, flat = null;
    for (const m of minutes) {
      if (m.volume <= 0) { if (!flat) flat = m; continue; }
      if (!b) b = { time: bucketMs / 1000, open: m.open, high: m.high, low: m.low, close: m.close, volume: 0 };
      b.high = Math.max(b.high, m.high);
      b.low = Math.min(b.low, m.low);
      b.close = m.close;
      b.volume += m.volume;
    }
    if (!b && flat) b = { time: bucketMs / 1000, open: flat.close, high: flat.close, low: flat.close, close: flat.close, volume: 0 };
    return b;
  }

  function newView(sym, iv) {
    return { sym, iv, ms: IV_MS[iv], bars: new Map(), minutes: new Map(), histEnd: 0,
             liveTime: -1, liveMinute: -1, seq: 0, loaded: false, shown: false, token: ++state.token };
  }
  const coarse = (v) => v.ms > 60000;

  // re-folds the coarse buckets touching these minute open_times (ms), past the database's
  function refold(v, minuteTimes) {
    const buckets = new Set();
    for (const t of minuteTimes) { const b = bucketOf(t, v.iv); if (b >= v.histEnd) buckets.add(b); }
    for (const b of buckets) {
      const ms = [];
      for (let t = b; t < b + v.ms; t += 60000) { const m = v.minutes.get(t); if (m) ms.push(m); }
      const bar = fold(b, ms);
      if (bar) v.bars.set(bar.time, bar);
    }
  }

  function smaAt(arr, i, n) { // mean close of the n bars before bar i: the server's definition
    if (i < n) return null;
    let s = 0;
    for (let k = i - n; k < i; k++) s += arr[k].close;
    return s / n;
  }

  function sortedBars(v) { return [...v.bars.values()].sort((a, b) => a.time - b.time); }

  function render(v) {
    const arr = sortedBars(v);
    const sma = [];
    for (let i = 0; i < arr.length; i++) { const s = smaAt(arr, i, state.smaN); if (s !== null) sma.push({ time: arr[i].time, value: s }); }
    candleSeries.setData(arr.map(candle));
    volumeSeries.setData(arr.map(volPoint));
    smaSeries.setData(sma);
    chartLastTime = arr.length ? arr[arr.length - 1].time : 0;
    $('chart-note').hidden = arr.length > 0;
    if (!arr.length) $('chart-note').textContent = 'Waiting for the first candle…';
    if (arr.length && !v.shown) { // the view's data (live, then history): show its end; later merges keep the user's scroll
      v.shown = v.loaded;
      if (arr.length < 120) chart.timeScale().fitContent();
      else { chart.timeScale().applyOptions({ barSpacing: 8 }); chart.timeScale().scrollToRealTime(); }
    }
    showOhlc(arr[arr.length - 1]);
  }

  // a live bar of the view: the newest one is updated in place, an older one re-renders
  function putLive(v, b) {
    v.liveTime = Math.max(v.liveTime, b.time);
    v.bars.set(b.time, b);
    if (v !== state.view) return;
    if (b.time < chartLastTime) { render(v); return; }
    candleSeries.update(candle(b));
    volumeSeries.update(volPoint(b));
    chartLastTime = b.time;
    $('chart-note').hidden = true;
    const arr = sortedBars(v);
    const s = smaAt(arr, arr.length - 1, state.smaN);
    if (s !== null) smaSeries.update({ time: b.time, value: s });
    if (!hovering) showOhlc(b);
  }

  function onLiveForView(v, m) {
    v.seq++;
    if (v.iv === '1s') { putLive(v, barFrom(m.kline, m.kline.volume)); return; }
    if (!m.bar) return;
    const mb = barFrom(m.bar, m.bar.volume);
    if (v.iv === '1m') { putLive(v, mb); return; }
    v.minutes.set(m.bar.open_time, mb);
    v.liveMinute = Math.max(v.liveMinute, m.bar.open_time);
    const b = bucketOf(m.bar.open_time, v.iv);
    if (b < v.histEnd) return; // the database has that bucket complete
    refold(v, [m.bar.open_time]);
    const bar = v.bars.get(b / 1000);
    if (bar) putLive(v, bar);
  }

  // history rows into the view; a bar the stream is updating right now stays the stream's
  function mergeRows(v, rows) {
    for (const r of rows) {
      const b = barFrom(r, r.volume);
      if (b.time === v.liveTime && v.bars.has(b.time)) continue;
      v.bars.set(b.time, b);
    }
  }
  function mergeMinutes(v, rows) {
    for (const r of rows) {
      if (r.open_time === v.liveMinute && v.minutes.has(r.open_time)) continue;
      v.minutes.set(r.open_time, barFrom(r, r.volume));
    }
  }

  /* ------------------------------------------------------------ history */

  async function api(sym, iv, args) {
    const q = new URLSearchParams({ symbol: sym, interval: iv });
    for (const [k, val] of Object.entries(args)) q.set(k, String(val));
    const r = await fetch('/api/klines?' + q.toString());
    if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || r.statusText);
    return r.json();
  }

  // fills a view from the database: from = first open_time wanted (ms), or newest bars when 0
  async function fetchInto(v, from) {
    const lim = v.iv === '1s' ? LIVE_1S_MAX : HIST_LIMIT;
    const rows = await api(v.sym, v.iv, from ? { from: bucketOf(from, v.iv), limit: 5000 } : { limit: lim });
    mergeRows(v, rows);
    if (!coarse(v)) return;
    if (rows.length) v.histEnd = Math.max(v.histEnd, rows[rows.length - 1].open_time + v.ms);
    // the buckets after the database's last complete one, from its 1m bars
    const start = Math.max(v.histEnd, from ? bucketOf(from, v.iv) : 0);
    const mins = await api(v.sym, '1m', start ? { from: start, limit: 5000 } : { limit: 5000 });
    mergeMinutes(v, mins);
    refold(v, [...v.minutes.keys()]);
  }

  function seedFromLive(v, e) {
    if (v.iv === '1s') for (const b of e.live1s) v.bars.set(b.time, b);
    else if (v.iv === '1m') for (const b of e.live1m) v.bars.set(b.time, b);
    else {
      for (const b of e.live1m) v.minutes.set(b.time * 1000, b);
      refold(v, [...v.minutes.keys()]);
    }
    const last = sortedBars(v).pop();
    if (last) v.liveTime = last.time;
    if (e.live1m.length) v.liveMinute = e.live1m[e.live1m.length - 1].time * 1000;
  }

  async function loadView() {
    const e = state.symbols.get(state.selected);
    if (!e) return;
    const v = newView(e.name, state.interval);
    state.view = v;
    seedFromLive(v, e);
    render(v);
    try {
      await fetchInto(v, 0);
    } catch (err) {
      if (v !== state.view) return;
      historyNote(v, err);
      return;
    }
    if (v !== state.view) return;
    v.loaded = true;
    render(v);
  }

  function historyNote(v, err) {
    const note = $('chart-note');
    note.textContent = 'History unavailable (' + err.message + ') — showing live data.';
    note.hidden = false;
    setTimeout(() => { if (v === state.view) note.hidden = true; }, 6000);
  }

  // the bucket times (s) missing between the view's newest bar before a drop and now
  function holes(v, since) {
    const out = [];
    const step = v.ms / 1000;
    for (let t = since + step; t < v.liveTime; t += step) if (!v.bars.has(t)) out.push(t);
    return out;
  }

  // after a reconnect: fetch what the stream missed and merge it; retry while the
  // database is still behind (the inserter commits in batches)
  async function fillGap(v, since, tries) {
    if (v !== state.view || !v.loaded) return;
    try {
      await fetchInto(v, since * 1000);
    } catch (err) {
      if (v === state.view) historyNote(v, err);
      return;
    }
    if (v !== state.view) return;
    render(v);
    const left = holes(v, since);
    if (!left.length || v.liveTime < 0) { state.gapFills++; return; }
    if (tries > 1) setTimeout(() => fillGap(v, since, tries - 1), 1000);
  }

  /* ------------------------------------------------------------ symbols */

  function entry(name) {
    let e = state.symbols.get(name);
    if (e) return e;
    e = { name, last: null, lastNum: NaN, bar: null, sma: null, stale: false, live1s: [], live1m: [], el: null };
    state.symbols.set(name, e);
    const li = document.createElement('li');
    li.dataset.symbol = name;
    li.id = 'sym-' + name;
    li.setAttribute('role', 'option');
    li.setAttribute('aria-selected', 'false');
    li.innerHTML = '<span class="s"></span><span class="p mono">–</span><span class="c mono"></span>';
    li.querySelector('.s').textContent = name;
    li.addEventListener('click', () => { setActive(li); choose(name); });
    e.el = li;
    const list = $('symbols'); // sorted by name
    let before = null;
    for (const other of list.children) if (other.dataset.symbol > name) { before = other; break; }
    list.insertBefore(li, before);
    $('symbols-empty').hidden = true;
    applyFilter();
    if (!state.selected) {
      const want = wantedSymbol();
      if (want === name || (!want && name === 'BTCUSDT')) select(name);
      else setTimeout(() => { if (!state.selected) select(preferredSymbol()); }, 300);
    }
    return e;
  }

  function preferredSymbol() {
    const want = wantedSymbol();
    if (want && state.symbols.has(want)) return want;
    if (state.symbols.has('BTCUSDT')) return 'BTCUSDT';
    return [...state.symbols.keys()].sort()[0];
  }

  function applyFilter() {
    const f = $('filter').value.trim().toUpperCase();
    for (const li of $('symbols').children) li.hidden = f !== '' && !li.dataset.symbol.includes(f);
  }

  function pushCapped(arr, item, max) {
    const last = arr[arr.length - 1];
    if (last && last.time === item.time) arr[arr.length - 1] = item;
    else if (!last || last.time < item.time) {
      arr.push(item);
      if (arr.length > max) arr.splice(0, arr.length - max);
    }
  }

  function onKline(m, live) {
    const k = m.kline;
    const e = entry(m.symbol);
    const closeNum = +k.close;
    const prev = e.lastNum;
    Object.assign(e, { last: k.close, lastNum: closeNum, bar: m.bar, sma: m.sma, stale: false, lastKline: k });
    // live caches, so a view has bars before (and without) history
    pushCapped(e.live1s, barFrom(k, k.volume), LIVE_1S_MAX);
    if (m.bar) pushCapped(e.live1m, barFrom(m.bar, m.bar.volume), LIVE_1M_MAX);

    const li = e.el;
    li.classList.remove('stale');
    li.querySelector('.p').textContent = fmtPrice(k.close);
    const chg = m.bar ? (closeNum - +m.bar.open) / +m.bar.open * 100 : NaN;
    const ce = li.querySelector('.c');
    ce.textContent = fmtPct(chg);
    ce.className = 'c mono ' + (chg > 0 ? 'up' : chg < 0 ? 'down' : '');
    if (isFinite(prev) && prev !== closeNum) flash(li, closeNum > prev ? 'flash-up' : 'flash-down');

    if (m.symbol !== state.selected) return;
    if (state.fmtFor !== m.symbol) { state.fmtFor = m.symbol; applyPriceFormat(closeNum); }
    showHeader(e);
    if (state.view && state.view.sym === m.symbol) onLiveForView(state.view, m);
    if (live && k.event_time) noteLatency(Date.now() - k.event_time); // snapshots are old news
  }

  function flash(li, cls) {
    li.classList.remove('flash-up', 'flash-down');
    void li.offsetWidth; // restart the fade
    li.classList.add(cls);
    clearTimeout(li._flashT);
    li._flashT = setTimeout(() => li.classList.remove(cls), 180);
  }

  function onStale(m) {
    const e = state.symbols.get(m.symbol);
    if (!e) return;
    e.stale = true;
    e.el.classList.add('stale');
    if (m.symbol === state.selected) $('sel-stale').hidden = false;
  }

  function showHeader(e) {
    $('sel-symbol').textContent = e.name;
    $('sel-price').textContent = fmtPrice(e.last);
    const chg = e.bar ? (e.lastNum - +e.bar.open) / +e.bar.open * 100 : NaN;
    const ce = $('sel-change');
    ce.textContent = isFinite(chg) ? fmtPct(chg) + ' 1m' : '';
    ce.className = 'chg mono ' + (chg > 0 ? 'up' : chg < 0 ? 'down' : '');
    $('sel-price').className = 'price mono ' + (chg > 0 ? 'up' : chg < 0 ? 'down' : '');
    $('sel-stale').hidden = !e.stale;
    const pts = smaSeries.data();
    const sma = pts.length ? pts[pts.length - 1].value : null;
    $('sma-value').textContent = sma !== null ? sma.toFixed(precisionOf(sma)) : '–';
  }

  let hovering = false;
  function showOhlc(b) {
    if (!b) { $('ohlc').innerHTML = ''; return; }
    const p = precisionOf(b.close);
    const chg = b.open ? (b.close - b.open) / b.open * 100 : NaN;
    $('ohlc').innerHTML = ['O', 'H', 'L', 'C'].map((l, i) => `${l} <b>${[b.open, b.high, b.low, b.close][i].toFixed(p)}</b>`).join('')
      + `<b class="${chg > 0 ? 'up' : chg < 0 ? 'down' : ''}">${fmtPct(chg)}</b> V <b>${fmtVol(b.volume)}</b>`;
  }
  chart.subscribeCrosshairMove((param) => {
    const v = state.view;
    const b = v && param && param.time !== undefined ? v.bars.get(param.time) : null;
    hovering = !!b;
    showOhlc(b || (v ? sortedBars(v).pop() : null));
  });

  /* ------------------------------------------------------------ selection, URL */

  function wantedSymbol() {
    const q = new URLSearchParams(location.search).get('symbol');
    return (q || (location.hash || '').slice(1)).toUpperCase();
  }
  function wantedInterval() {
    const q = new URLSearchParams(location.search).get('interval');
    return q && IV_MS[q] ? q : null;
  }
  // the view in the address bar, so a link opens the same view; user choices are history entries
  function writeUrl(push) {
    if (!state.selected) return;
    const url = `?symbol=${encodeURIComponent(state.selected)}&interval=${state.interval}`;
    if (location.search === url && !location.hash) return;
    (push ? history.pushState : history.replaceState).call(history, null, '', url);
  }

  function select(name, push) {
    if (!name || !state.symbols.has(name)) return;
    state.selected = name;
    for (const li of $('symbols').children) {
      const on = li.dataset.symbol === name;
      li.classList.toggle('sel', on);
      li.setAttribute('aria-selected', on ? 'true' : 'false');
    }
    writeUrl(push);
    const e = state.symbols.get(name);
    showHeader(e);
    if (isFinite(e.lastNum)) { state.fmtFor = name; applyPriceFormat(e.lastNum); }
    document.title = `${name} ${state.interval} · ` + state.titleTail;
    loadView();
  }
  const choose = (name) => { if (name !== state.selected) select(name, true); };

  function setInterval_(iv, push) {
    if (!IV_MS[iv]) return;
    state.interval = iv;
    for (const b of document.querySelectorAll('.seg button')) {
      const on = b.dataset.iv === iv;
      b.classList.toggle('on', on);
      b.setAttribute('aria-selected', on ? 'true' : 'false');
      b.tabIndex = on ? 0 : -1;
    }
    chart.timeScale().applyOptions({ secondsVisible: iv === '1s', timeVisible: iv !== '1d' });
    $('sma-label').textContent = `SMA ${state.smaN} (${iv})`;
    if (state.selected) { writeUrl(push); select(state.selected, false); }
  }

  window.addEventListener('popstate', () => {
    const iv = wantedInterval();
    if (iv && iv !== state.interval) { state.interval = iv; setInterval_(iv, false); }
    const s = wantedSymbol();
    if (s && s !== state.selected) select(s, false);
  });
  window.addEventListener('hashchange', () => { const s = wantedSymbol(); if (s && s !== state.selected) select(s, true); });

  /* ------------------------------------------------------------ keyboard */

  const visibleRows = () => [...$('symbols').children].filter((li) => !li.hidden);
  function setActive(li) {
    if (state.activeRow) state.activeRow.classList.remove('active');
    state.activeRow = li || null;
    const list = $('symbols');
    if (!li) { list.removeAttribute('aria-activedescendant'); return; }
    li.classList.add('active');
    list.setAttribute('aria-activedescendant', li.id);
    li.scrollIntoView({ block: 'nearest' });
  }

  // listbox: arrows/Home/End/PageUp/PageDown move the focus, Enter or Space opens that symbol
  $('symbols').addEventListener('keydown', (ev) => {
    const rows = visibleRows();
    if (!rows.length) return;
    let i = rows.indexOf(state.activeRow);
    const page = Math.max(1, Math.floor($('symbols').clientHeight / 30) - 1);
    switch (ev.key) {
      case 'ArrowDown': i = Math.min(rows.length - 1, i + 1); break;
      case 'ArrowUp': i = i < 0 ? 0 : Math.max(0, i - 1); break;
      case 'Home': i = 0; break;
      case 'End': i = rows.length - 1; break;
      case 'PageDown': i = Math.min(rows.length - 1, Math.max(0, i) + page); break;
      case 'PageUp': i = Math.max(0, i - page); break;
      case 'Enter': case ' ':
        if (state.activeRow) choose(state.activeRow.dataset.symbol);
        ev.preventDefault();
        return;
      default: return;
    }
    ev.preventDefault();
    setActive(rows[i]);
  });
  $('symbols').addEventListener('focus', () => {
    if (state.activeRow && !state.activeRow.hidden) return;
    const sel = state.selected && state.symbols.get(state.selected);
    setActive(sel && !sel.el.hidden ? sel.el : visibleRows()[0]);
  });
  $('filter').addEventListener('keydown', (ev) => {
    const rows = visibleRows();
    if (ev.key === 'ArrowDown' && rows.length) { ev.preventDefault(); $('symbols').focus(); setActive(rows[0]); }
    if (ev.key === 'Enter' && rows.length) { setActive(rows[0]); choose(rows[0].dataset.symbol); }
  });
  // interval tabs: Left/Right move between them (roving tabindex), Enter/Space activate
  $('intervals').addEventListener('keydown', (ev) => {
    if (ev.key !== 'ArrowLeft' && ev.key !== 'ArrowRight') return;
    const i = IVS.indexOf(state.interval) + (ev.key === 'ArrowRight' ? 1 : -1);
    if (i < 0 || i >= IVS.length) return;
    ev.preventDefault();
    setInterval_(IVS[i], true);
    $('iv-' + IVS[i]).focus();
  });

  /* ------------------------------------------------------------ alerts */

  function onAlert(a, fresh) {
    const key = `${a.symbol}/${a.time}/${a.direction}`;
    if (state.alertKeys.has(key)) return;
    state.alertKeys.add(key);
    const li = document.createElement('li');
    const bull = a.direction === 'bullish';
    li.innerHTML = '<span class="dir"></span><span class="sym"></span><span class="t mono"></span><span class="d mono"></span>';
    li.querySelector('.dir').textContent = bull ? '▲ bull' : '▼ bear';
    li.querySelector('.dir').className = 'dir ' + (bull ? 'up' : 'down');
    li.querySelector('.sym').textContent = a.symbol;
    li.querySelector('.t').textContent = fmtTime(a.time);
    const p = precisionOf(a.price);
    li.querySelector('.d').textContent = `${a.price.toFixed(p)} crossed SMA${a.sma_n || ''} ${a.sma.toFixed(p)}`;
    li.addEventListener('click', () => choose(a.symbol));
    if (fresh) li.classList.add('new');
    const list = $('alerts');
    list.insertBefore(li, list.firstChild);
    while (list.children.length > ALERTS_MAX) list.removeChild(list.lastChild);
    $('alerts-empty').hidden = true;
  }

  /* ------------------------------------------------------------ connection */

  function setConn(cls, text) {
    $('conn').className = 'conn ' + cls;
    $('conn-text').textContent = text;
  }

  function noteLatency(ms) {
    state.latencyEma = state.latencyEma === null ? ms : state.latencyEma * 0.8 + ms * 0.2;
  }

  function handle(m) {
    switch (m.type) {
      case 'kline': onKline(m, true); break;
      case 'snapshot':
        for (const u of m.updates || []) if (u.type === 'kline') onKline(u, false);
        for (const a of m.alerts || []) onAlert(a, false);
        break;
      case 'batch': for (const u of m.updates || []) handle(u); break;
      case 'alert': onAlert(m, true); break;
      case 'stale': onStale(m); break;
      case 'error': console.warn('streamer:', m.error); break;
      default: break;
    }
  }

  function connect() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    setConn('connecting', state.attempt ? 'reconnecting…' : 'connecting…');
    let ws;
    try { ws = new WebSocket(`${proto}//${location.host}/ws`); } catch (e) { scheduleReconnect(); return; }
    state.ws = ws;
    ws.onopen = () => {
      const v = state.view;
      const since = v && v.liveTime >= 0 ? v.liveTime : null;
      state.attempt = 0;
      state.lastMsgAt = Date.now();
      setConn('live', 'live');
      ws.send(JSON.stringify({ op: 'subscribe', symbols: ['*'] }));
      // the stream does not replay what was missed: take it from the database once
      // the first live bar after the reconnect is in
      if (state.everLive && since !== null) waitLiveThenFill(v, since, v.seq);
      state.everLive = true;
    };
    ws.onmessage = (ev) => {
      state.lastMsgAt = Date.now();
      state.msgCount++;
      let m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      handle(m);
    };
    ws.onclose = (ev) => {
      if (state.ws !== ws) return;
      state.ws = null;
      scheduleReconnect(ev.code);
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  function waitLiveThenFill(v, since, seq0, n = 0) {
    if (v !== state.view) return;
    if (v.seq > seq0 || n >= 20) { fillGap(v, since, FILL_TRIES); return; }
    setTimeout(() => waitLiveThenFill(v, since, seq0, n + 1), 250);
  }

  function scheduleReconnect(code) {
    const base = Math.min(10000, 500 * Math.pow(2, state.attempt++));
    const delay = Math.max(Math.round(base * (0.75 + Math.random() * 0.5)), state.holdUntil - Date.now());
    const until = Date.now() + delay;
    const tick = () => {
      const left = until - Date.now();
      if (left <= 0) { connect(); return; }
      setConn('offline', `offline · retry in ${Math.ceil(left / 1000)}s` + (code === 4008 ? ' (too slow)' : ''));
      setTimeout(tick, Math.min(250, left));
    };
    tick();
  }

  // keep-alive and dead-connection detection
  setInterval(() => {
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - state.lastMsgAt > 30000) { ws.close(); return; }
    ws.send(JSON.stringify({ op: 'ping' }));
  }, 15000);

  // read-outs
  setInterval(() => {
    $('rate').textContent = String(state.msgCount);
    state.msgCount = 0;
    $('latency').textContent = state.latencyEma === null ? '–' : Math.round(state.latencyEma) + ' ms';
  }, 1000);

  /* ------------------------------------------------------------ start */

  // hooks for the browser test (tests/browser/page.js); drop() is the only one that acts
  window.klinepipe = {
    selected: () => state.selected,
    interval: () => state.interval,
    candles: () => candleSeries.data().length,
    smaPoints: () => smaSeries.data().length,
    volumes: () => volumeSeries.data().map((p) => p.value),
    barTimes: () => candleSeries.data().map((b) => b.time * 1000),
    bars: () => candleSeries.data().map((b, i) => ({ open_time: b.time * 1000, open: b.open, high: b.high, low: b.low,
                                                     close: b.close, volume: volumeSeries.data()[i].value })),
    loaded: () => !!state.view && state.view.loaded && state.view.iv === state.interval,
    liveTime: () => (state.view ? state.view.liveTime * 1000 : -1),
    gapFills: () => state.gapFills,
    connected: () => !!state.ws && state.ws.readyState === WebSocket.OPEN,
    // close the WebSocket and stay offline for ms (a network drop, as the page sees one)
    drop: (ms) => { state.holdUntil = Date.now() + ms; if (state.ws) state.ws.close(); },
  };

  $('filter').addEventListener('input', applyFilter);
  for (const b of document.querySelectorAll('.seg button')) b.addEventListener('click', () => setInterval_(b.dataset.iv, true));

  state.titleTail = 'klinepipe · live klines';
  fetch('/api/info').then((r) => r.json()).then((info) => {
    if (info.sma_n) state.smaN = info.sma_n;
    $('sma-label').textContent = `SMA ${state.smaN} (${state.interval})`;
    if (info.badge) { $('badge').textContent = info.badge; $('badge').hidden = false; }
    state.titleTail = (info.badge ? '[' + info.badge + '] ' : '') + 'klinepipe · live klines';
    document.title = (state.selected ? `${state.selected} ${state.interval} · ` : '') + state.titleTail;
  }).catch(() => {});
  setInterval_(wantedInterval() || '1m', false);
  connect();
})();
