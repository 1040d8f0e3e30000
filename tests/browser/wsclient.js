#!/usr/bin/env node
/* A scriptable WebSocket client for the streamer's bats tests (Node + the `ws` package).
 *
 *   node wsclient.js PORT [options]
 *     --send JSON           send a text message after connecting (repeatable, in order)
 *     --send-frag JSON      send it as three fragments
 *     --send-binary TEXT    send TEXT as a binary frame
 *     --send-big N          send a text message of N bytes (a ping padded with spaces)
 *     --send-burst N:JSON   send JSON N times back to back
 *     --count N             exit after N messages (not counting the snapshot... counts all)
 *     --until TYPE          exit when a message of this type arrives (after --count is met)
 *     --duration S          exit after S seconds (default 10)
 *     --pause-after-open    never read after the handshake (a stalled client); with
 *                           --resume-after S, read again after S seconds
 *     --origin URL          Origin header
 * Prints every message received as one line (the raw text; the updates of a batch frame
 * one per line, re-serialised), then one final line
 * {"_end":"close"|"count"|"until"|"time","code":N,"reason":"..."}. Exit 0 unless the
 * connection could not be opened (exit 1, with {"_end":"error",...}). */
'use strict';
const WebSocket = require('ws');

const args = process.argv.slice(2);
const port = args.shift();
const o = { sends: [], count: 0, until: null, duration: 10, pause: false, resume: 0, origin: undefined };
while (args.length) {
  const a = args.shift();
  switch (a) {
    case '--send': o.sends.push({ kind: 'text', data: args.shift() }); break;
    case '--send-frag': o.sends.push({ kind: 'frag', data: args.shift() }); break;
    case '--send-binary': o.sends.push({ kind: 'binary', data: args.shift() }); break;
    case '--send-big': o.sends.push({ kind: 'big', n: +args.shift() }); break;
    case '--send-burst': { const v = args.shift(); const i = v.indexOf(':'); o.sends.push({ kind: 'burst', n: +v.slice(0, i), data: v.slice(i + 1) }); break; }
    case '--count': o.count = +args.shift(); break;
    case '--until': o.until = args.shift(); break;
    case '--duration': o.duration = +args.shift(); break;
    case '--pause-after-open': o.pause = true; break;
    case '--resume-after': o.resume = +args.shift(); break;
    case '--origin': o.origin = args.shift(); break;
    default: console.error('wsclient: unknown option ' + a); process.exit(2);
  }
}

let n = 0, done = false, untilSeen = false, batches = 0;
const out = (s) => process.stdout.write(s + '\n');
function finish(end, code, reason) {
  if (done) return;
  done = true;
  out(JSON.stringify({ _end: end, code: code || 0, reason: reason || '', batches }));
  try { ws.terminate(); } catch (e) { /* already gone */ }
  process.exit(end === 'error' ? 1 : 0);
}

const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { origin: o.origin, perMessageDeflate: false, maxPayload: 64 << 20 });
ws.on('open', () => {
  for (const s of o.sends) {
    if (s.kind === 'text') ws.send(s.data);
    else if (s.kind === 'binary') ws.send(Buffer.from(s.data), { binary: true });
    else if (s.kind === 'big') ws.send('{"op":"ping"' + ' '.repeat(Math.max(0, s.n - 13)) + '}');
    else if (s.kind === 'burst') for (let i = 0; i < s.n; i++) ws.send(s.data);
    else if (s.kind === 'frag') {
      const d = s.data, a = Math.floor(d.length / 3), b = Math.floor(2 * d.length / 3);
      ws.send(d.slice(0, a), { fin: false });
      ws.send(d.slice(a, b), { fin: false });
      ws.send(d.slice(b), { fin: true });
    }
  }
  if (o.pause) {
    ws._socket.pause();
    if (o.resume) setTimeout(() => ws._socket.resume(), o.resume * 1000);
  }
});
ws.on('message', (data, isBinary) => {
  const text = isBinary ? '(binary)' : String(data);
  // a batch frame carries several updates: print them one per line, as if sent one by one
  if (text.startsWith('{"type":"batch"')) {
    batches++;
    for (const u of JSON.parse(text).updates) out(JSON.stringify(u));
  } else {
    out(text);
  }
  n++;
  if (o.until) {
    try { if (JSON.parse(text).type === o.until) untilSeen = true; } catch (e) { /* not JSON */ }
  }
  if (o.count && n >= o.count && (!o.until || untilSeen)) finish('count');
  else if (!o.count && o.until && untilSeen) finish('until');
});
ws.on('close', (code, reason) => finish('close', code, String(reason)));
ws.on('unexpected-response', (req, res) => finish('error', res.statusCode, 'HTTP ' + res.statusCode));
ws.on('error', (e) => finish('error', 0, e.message));
setTimeout(() => finish('time'), o.duration * 1000);
