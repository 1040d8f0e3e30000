/* klinepipe live page: symbols sidebar, candlestick chart with SMA, alerts.
 * Talks to kline-streamer: WebSocket /ws (protocol in docs/streamer.md), /api/klines, /api/info. */
(function () {
  'use strict';

  const LWC = window.LightweightCharts;
  const $ = (id) => document.getElementById(id);
  const LIVE_1S_MAX = 1800;   // live 1s candles kept per symbol (30 min)
  const LIVE_1M_MAX = 600;    // live 1m bars kept per symbol
  const ALERTS_MAX = 60;

  const state = {
    symbols: new Map(),      // name -> entry
    selected: null,
    interval: '1m',
    smaN: 5,
    ws: null,
    attempt: 0,
    lastMsgAt: 0,
    msgCount: 0,
    latencyEma: null,
    historyToken: 0,
    alertKeys: new Set(),
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
  function fmtTime(ms) {
    const d = new Date(ms);
    return d.toISOString().slice(11, 19);
  }
  function fmtPct(x) {
    if (!isFinite(x)) return '';
    return (x >= 0 ? '+' : '') + x.toFixed(2) + '%';
  }

  /* ------------------------------------------------------------ chart */

  const chart = LWC.createChart($('chart'), {
    autoSize: true,
    layout: {
      background: { type: 'solid', color: '#11151d' },
      textColor: '#7c8799',
      fontSize: 11,
    },
    grid: {
      vertLines: { color: 'rgba(34, 41, 56, 0.6)' },
      horzLines: { color: 'rgba(34, 41, 56, 0.6)' },
    },
    rightPriceScale: { borderColor: '#222938' },
    timeScale: { borderColor: '#222938', timeVisible: true, secondsVisible: false, rightOffset: 4,
                 barSpacing: 8, minBarSpacing: 2, maxBarSpacing: 24 },
    crosshair: { mode: LWC.CrosshairMode ? LWC.CrosshairMode.Normal : 0 },
  });
  const candleSeries = chart.addSeries(LWC.CandlestickSeries, {
    upColor: '#26a69a', downColor: '#ef5350', borderVisible: false,
    wickUpColor: '#26a69a', wickDownColor: '#ef5350',
  });
  const smaSeries = chart.addSeries(LWC.LineSeries, {
    color: '#4da3ff', lineWidth: 2, priceLineVisible: false, lastValueVisible: true,
    crosshairMarkerVisible: false,
  });
  let chartLastTime = 0;     // newest candle time on the chart (seconds)
  let smaLastTime = 0;

  function candleFromBar(b) {
    return { time: Math.floor(b.open_time / 1000), open: +b.open, high: +b.high, low: +b.low, close: +b.close };
  }

  function setChartData(candles, smaPoints) {
    candleSeries.setData(candles);
    smaSeries.setData(smaPoints);
    chartLastTime = candles.length ? candles[candles.length - 1].time : 0;
    smaLastTime = smaPoints.length ? smaPoints[smaPoints.length - 1].time : 0;
    $('chart-note').hidden = candles.length > 0;
    if (!candles.length) $('chart-note').textContent = 'Waiting for the first candle…';
    // few candles (no history yet): spread them over the chart instead of a thin sliver
    if (candles.length && candles.length < 120) chart.timeScale().fitContent();
    else if (candles.length) {
      chart.timeScale().applyOptions({ barSpacing: 8 }); // undo a fitContent of fewer candles
      chart.timeScale().scrollToRealTime();
    }
  }

  function chartUpdate(c, smaVal) {
    if (c.time < chartLastTime) return;          // lightweight-charts refuses to go back
    candleSeries.update(c);
    chartLastTime = c.time;
    $('chart-note').hidden = true;
    if (smaVal !== null && smaVal !== undefined && c.time >= smaLastTime) {
      smaSeries.update({ time: c.time, value: smaVal });
      smaLastTime = c.time;
    }
  }

  function applyPriceFormat(price) {
    const p = precisionOf(price);
    candleSeries.applyOptions({ priceFormat: { type: 'price', precision: p, minMove: Math.pow(10, -p) } });
    smaSeries.applyOptions({ priceFormat: { type: 'price', precision: p, minMove: Math.pow(10, -p) } });
  }

  /* ------------------------------------------------------------ symbols */

  function entry(name) {
    let e = state.symbols.get(name);
    if (e) return e;
    e = { name, last: null, lastNum: NaN, bar: null, sma: null, stale: false,
          live1s: [], live1m: [], smaPts1m: [], smaPts1s: [], el: null, flashT: 0 };
    state.symbols.set(name, e);
    const li = document.createElement('li');
    li.dataset.symbol = name;
    li.innerHTML = '<span class="s"></span><span class="p mono">–</span><span class="c mono"></span>';
    li.querySelector('.s').textContent = name;
    li.addEventListener('click', () => select(name));
    e.el = li;
    // keep the list sorted by name
    const list = $('symbols');
    let before = null;
    for (const other of list.children) {
      if (other.dataset.symbol > name) { before = other; break; }
    }
    list.insertBefore(li, before);
    $('symbols-empty').hidden = true;
    applyFilter();
    if (!state.selected) {
      const want = (location.hash || '').slice(1).toUpperCase();
      if (want === name || (!want && name === 'BTCUSDT')) select(name);
      else setTimeout(() => { if (!state.selected) select(preferredSymbol()); }, 300);
    }
    return e;
  }

  function preferredSymbol() {
    const want = (location.hash || '').slice(1).toUpperCase();
    if (want && state.symbols.has(want)) return want;
    if (state.symbols.has('BTCUSDT')) return 'BTCUSDT';
    return [...state.symbols.keys()].sort()[0];
  }

  function applyFilter() {
    const f = $('filter').value.trim().toUpperCase();
    for (const li of $('symbols').children) li.hidden = f !== '' && !li.dataset.symbol.includes(f);
  }

  function pushCapped(arr, item, max, key) {
    const last = arr[arr.length - 1];
    if (last && last[key] === item[key]) arr[arr.length - 1] = item;
    else if (!last || last[key] < item[key]) {
      arr.push(item);
      if (arr.length > max) arr.splice(0, arr.length - max);
    }
  }

  function onKline(m, live) {
    const k = m.kline;
    const e = entry(m.symbol);
    const closeNum = +k.close;
    const prev = e.lastNum;
    e.last = k.close;
    e.lastNum = closeNum;
    e.bar = m.bar;
    e.sma = m.sma;
    e.stale = false;
    e.lastKline = k;

    // live caches, so the chart has candles even without history
    const c1s = { time: Math.floor(k.open_time / 1000), open: +k.open, high: +k.high, low: +k.low, close: closeNum };
    pushCapped(e.live1s, c1s, LIVE_1S_MAX, 'time');
    if (m.sma !== null && m.sma !== undefined) pushCapped(e.smaPts1s, { time: c1s.time, value: m.sma }, LIVE_1S_MAX, 'time');
    if (m.bar) {
      const c1m = candleFromBar(m.bar);
      pushCapped(e.live1m, c1m, LIVE_1M_MAX, 'time');
      if (m.sma !== null && m.sma !== undefined) pushCapped(e.smaPts1m, { time: c1m.time, value: m.sma }, LIVE_1M_MAX, 'time');
    }

    // sidebar row
    const li = e.el;
    li.classList.remove('stale');
    li.querySelector('.p').textContent = fmtPrice(k.close);
    const chg = m.bar ? (closeNum - +m.bar.open) / +m.bar.open * 100 : NaN;
    const ce = li.querySelector('.c');
    ce.textContent = fmtPct(chg);
    ce.className = 'c mono ' + (chg > 0 ? 'up' : chg < 0 ? 'down' : '');
    if (isFinite(prev) && prev !== closeNum) flash(li, closeNum > prev ? 'flash-up' : 'flash-down');

    if (m.symbol === state.selected) {
      if (state.fmtFor !== m.symbol) { state.fmtFor = m.symbol; applyPriceFormat(closeNum); }
      showHeader(e);
      if (state.interval === '1m' && m.bar) chartUpdate(candleFromBar(m.bar), m.sma);
      else if (state.interval === '1s') chartUpdate(c1s, m.sma);
      if (live && k.event_time) noteLatency(Date.now() - k.event_time); // snapshots are old news
    }
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
    const bar = e.bar;
    const chg = bar ? (e.lastNum - +bar.open) / +bar.open * 100 : NaN;
    const ce = $('sel-change');
    ce.textContent = isFinite(chg) ? fmtPct(chg) + ' 1m' : '';
    ce.className = 'chg mono ' + (chg > 0 ? 'up' : chg < 0 ? 'down' : '');
    $('sel-price').className = 'price mono ' + (chg > 0 ? 'up' : chg < 0 ? 'down' : '');
    $('sel-stale').hidden = !e.stale;
    const src = state.interval === '1m' ? bar : e.lastKline;
    $('ohlc').innerHTML = src
      ? ['O', 'H', 'L', 'C'].map((l, i) => `${l} <b>${fmtPrice(src[['open', 'high', 'low', 'close'][i]])}</b>`).join('')
      : '';
    // the server's SMA needs N closed bars of live data; until then show the chart's (from history)
    let sma = e.sma;
    if ((sma === null || sma === undefined) && state.interval === '1m') {
      const pts = smaSeries.data();
      if (pts.length) sma = pts[pts.length - 1].value;
    }
    $('sma-value').textContent = sma !== null && sma !== undefined ? sma.toFixed(precisionOf(sma)) : '–';
  }

  /* ------------------------------------------------------------ selection and history */

  function select(name) {
    if (!name || !state.symbols.has(name)) return;
    state.selected = name;
    if (location.hash.slice(1) !== name) history.replaceState(null, '', '#' + name);
    for (const li of $('symbols').children) li.classList.toggle('sel', li.dataset.symbol === name);
    const e = state.symbols.get(name);
    showHeader(e);
    if (isFinite(e.lastNum)) { state.fmtFor = name; applyPriceFormat(e.lastNum); }
    loadHistory();
  }

  function setInterval_(iv) {
    state.interval = iv;
    for (const b of document.querySelectorAll('.seg button')) b.classList.toggle('on', b.dataset.iv === iv);
    chart.timeScale().applyOptions({ secondsVisible: iv === '1s' });
    $('sma-label').textContent = `SMA ${state.smaN} (1m)`;
    if (state.selected) { showHeader(state.symbols.get(state.selected)); loadHistory(); }
  }

  function smaOfClosed(candles, n) {
    // value at bar i = mean close of the n bars before it: the server's definition
    const out = [];
    let sum = 0;
    for (let i = 0; i < candles.length; i++) {
      if (i >= n) out.push({ time: candles[i].time, value: sum / n });
      sum += candles[i].close;
      if (i >= n) sum -= candles[i - n].close;
    }
    return out;
  }

  function mergeByTime(a, b) {
    const m = new Map();
    for (const x of a) m.set(x.time, x);
    for (const x of b) m.set(x.time, x); // live data wins
    return [...m.values()].sort((x, y) => x.time - y.time);
  }

  function showLive() {
    const e = state.symbols.get(state.selected);
    if (!e) return;
    if (state.interval === '1m') setChartData(e.live1m.slice(), e.smaPts1m.slice());
    else setChartData(e.live1s.slice(), e.smaPts1s.slice());
  }

  async function loadHistory() {
    const token = ++state.historyToken;
    const name = state.selected, iv = state.interval;
    showLive();
    const limit = iv === '1s' ? 1800 : 500;
    let rows;
    try {
      const r = await fetch(`/api/klines?symbol=${encodeURIComponent(name)}&interval=${iv}&limit=${limit}`);
      if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || r.statusText);
      rows = await r.json();
    } catch (err) {
      if (token !== state.historyToken) return;
      const note = $('chart-note');
      note.textContent = 'History unavailable (' + err.message + ') — showing live data.';
      note.hidden = false;
      setTimeout(() => { if (token === state.historyToken) note.hidden = true; }, 6000);
      return;
    }
    if (token !== state.historyToken) return;
    const e = state.symbols.get(name);
    const hist = rows.map((k) => ({ time: Math.floor(k.open_time / 1000), open: +k.open, high: +k.high, low: +k.low, close: +k.close }));
    if (iv === '1m') {
      const candles = mergeByTime(hist, e.live1m);
      const sma = mergeByTime(smaOfClosed(candles, state.smaN), e.smaPts1m);
      setChartData(candles, sma);
    } else {
      setChartData(mergeByTime(hist, e.live1s), e.smaPts1s.slice());
    }
  }

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
    li.addEventListener('click', () => select(a.symbol));
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
      state.attempt = 0;
      state.lastMsgAt = Date.now();
      setConn('live', 'live');
      ws.send(JSON.stringify({ op: 'subscribe', symbols: ['*'] }));
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

  function scheduleReconnect(code) {
    const base = Math.min(10000, 500 * Math.pow(2, state.attempt++));
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
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

  // read-only hooks for the browser test (tests/browser/page.js)
  window.klinepipe = {
    selected: () => state.selected,
    candles: () => candleSeries.data().length,
    smaPoints: () => smaSeries.data().length,
    interval: () => state.interval,
    connected: () => !!state.ws && state.ws.readyState === WebSocket.OPEN,
  };

  $('filter').addEventListener('input', applyFilter);
  for (const b of document.querySelectorAll('.seg button')) b.addEventListener('click', () => setInterval_(b.dataset.iv));
  window.addEventListener('hashchange', () => select(location.hash.slice(1).toUpperCase()));

  fetch('/api/info').then((r) => r.json()).then((info) => {
    if (info.sma_n) state.smaN = info.sma_n;
    $('sma-label').textContent = `SMA ${state.smaN} (1m)`;
    if (info.badge) { $('badge').textContent = info.badge; $('badge').hidden = false; }
    document.title = (info.badge ? '[' + info.badge + '] ' : '') + 'klinepipe · live klines';
  }).catch(() => {});
  setInterval_('1m');
  connect();
})();
