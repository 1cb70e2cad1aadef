// Polling echo load for the scale-out bench (bench/scaleout.py): Socket.IO 0.6
// xhr-polling clients through a proxy that sends each request to any worker.
//
// Usage: node scaleout.js '<json config>'
//   config: {port, clients, warmup, duration, size, inflight, mode, deadline}
//   mode "sequential" (the default): each client POSTs a message, then GETs
//     until its echo is back, then the next message: two requests a message,
//     one keep-alive connection a client.
//   mode "pending": each client keeps one GET pending on one connection (as
//     the real client does) and POSTs its next message on a second one when
//     the echo arrives.
//
// HTTP is spoken over plain sockets (one request at a time per connection,
// Content-Length bodies): about 40 us of CPU per request here, where node's http
// module took about 225 us and Python's http.client about 230 us (a worker
// spends about 300), and the load generator shares its core with nginx and redis.
//
// Stdout is line-oriented for the orchestrator, which samples CPU from /proc
// at the two markers:  "window start", "window stop", then one JSON line.
// A client whose request fails (a 404 "unknown session" from a worker that
// does not know its session, a reset) is replaced by a new client while the
// run lasts; every failure is counted by status.
'use strict';

const net = require('net');
const {encode06, decode06} = require('./wire');

const cfg = JSON.parse(process.argv[2]);
const mode = cfg.mode || 'sequential';
const clock = () => Number(process.hrtime.bigint()) / 1e6;  // ms
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const note = (text) => process.stderr.write(`[scaleout loadgen] ${text}\n`);
const HEAD_END = Buffer.from('\r\n\r\n');
const MAX_REPLACED = 50;  // replacements per client, at most, over a run

class HttpError extends Error {
  constructor(status, text) {
    super(`${status} ${text.slice(0, 60)}`);
    this.key = this.message;
  }
}

// One keep-alive connection, one request at a time; reopened when the peer closes it.
class Conn {
  constructor(port, client) {
    this.port = port;
    this.client = client;  // sent as X-Client: the sticky proxy of the ceiling case hashes on it
    this.socket = null;
    this.pending = null;  // {resolve, reject}
    this.buffer = Buffer.alloc(0);
  }

  open() {
    const socket = this.socket = net.connect({host: '127.0.0.1', port: this.port});
    socket.setNoDelay(true);
    socket.on('data', (chunk) => {
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
      this.parse();
    });
    const gone = (err) => {
      if (this.socket !== socket) return;  // an old socket's late event
      this.drop();
      this.fail(err || new Error('connection closed'));
    };
    socket.on('error', gone);
    socket.on('close', () => gone(null));
  }

  drop() {
    if (this.socket) this.socket.destroy();
    this.socket = null;
    this.buffer = Buffer.alloc(0);
  }

  fail(err) {
    const pending = this.pending;
    this.pending = null;
    if (pending) pending.reject(err);
  }

  parse() {
    const end = this.buffer.indexOf(HEAD_END);
    if (end < 0 || !this.pending) return;
    const head = this.buffer.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (!length) {
      this.drop();
      this.fail(new Error(`answer without Content-Length: ${head.slice(0, 80)}`));
      return;
    }
    const total = end + 4 + Number(length[1]);
    if (this.buffer.length < total) return;
    const text = this.buffer.toString('utf8', end + 4, total);
    this.buffer = this.buffer.subarray(total);
    if (/\r\nconnection: *close/i.test(head)) this.drop();
    const pending = this.pending;
    this.pending = null;
    if (status === 200) pending.resolve(text);
    else pending.reject(new HttpError(status, text));
  }

  request(method, path, body) {
    return new Promise((resolve, reject) => {
      if (this.pending) throw new Error('one request at a time');
      if (!this.socket) this.open();
      this.pending = {resolve, reject};
      let text = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Client: ${this.client}\r\n`;
      if (body !== undefined) {
        text += 'Content-Type: application/x-www-form-urlencoded\r\n'
          + `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
      } else {
        text += '\r\n';
      }
      this.socket.write(text);  // head and body in one write
    });
  }

  close() {
    this.drop();
  }
}

// -- the figures -------------------------------------------------------------------
const tally = {failures: {}, replaced: 0, wrongEcho: 0, heartbeats: 0};
let measuring = false;
let stopping = false;
let echoes = 0;
let requests = 0;
const latencies = [];

function countFailure(err) {
  const key = err instanceof HttpError ? err.key : String(err && err.message || err).slice(0, 60);
  tally.failures[key] = (tally.failures[key] || 0) + 1;
}

// -- one client ----------------------------------------------------------------------
class Client {
  constructor(port, index) {
    this.index = index;
    this.main = new Conn(port, index);   // handshake, GETs (and POSTs in sequential mode)
    this.side = mode === 'pending' ? new Conn(port, index) : this.main;
    this.seq = 0;
    this.inFlight = null;
    this.pad = 'x'.repeat(Math.max(0, (cfg.size || 32) - 12));
    this.closed = false;
  }

  request(conn, method, path, body) {
    if (measuring) requests++;
    return conn.request(method, path, body);
  }

  async handshake() {
    const body = await this.request(this.main, 'GET', `/socket.io/xhr-polling//${Date.now()}`);
    this.sid = decode06(body)[0];
  }

  get(conn) {
    return this.request(conn, 'GET', `/socket.io/xhr-polling/${this.sid}/${Date.now()}`);
  }

  async post(conn, payload) {
    const body = 'data=' + encodeURIComponent(payload);
    const answer = await this.request(conn, 'POST', `/socket.io/xhr-polling/${this.sid}/send`, body);
    if (answer !== 'ok') throw new Error(`POST answered ${JSON.stringify(answer.slice(0, 40))}`);
  }

  next() {
    this.seq++;
    this.inFlight = `${this.index}:${this.seq}:${this.pad}`;
    this.sentAt = clock();
    return encode06(this.inFlight);
  }

  // Frames of a GET answer; returns the heartbeat answers to POST and whether the echo came.
  take(body) {
    let echoed = false;
    const beats = [];
    for (const data of body ? decode06(body) : []) {
      if (data.startsWith('~h~')) {
        tally.heartbeats++;
        beats.push(encode06(data));
      } else if (data !== this.inFlight) {
        tally.wrongEcho++;  // lost, duplicated or reordered
      } else {
        this.inFlight = null;
        echoed = true;
        if (measuring) {
          echoes++;
          latencies.push(clock() - this.sentAt);
        }
      }
    }
    return {echoed, beats: beats.join('')};
  }

  async sequential() {
    while (!stopping && !this.closed) {
      await this.post(this.main, this.next());
      const until = clock() + 60000;
      for (;;) {
        const {echoed, beats} = this.take(await this.get(this.main));
        if (beats) await this.post(this.main, beats);
        if (echoed || stopping || this.closed) break;
        if (clock() > until) throw new Error('no echo within 60 s');
      }
    }
  }

  // The echo may come back (on the pending GET) before the POST's own answer.
  echoCame() {
    if (this.wake) {
      const wake = this.wake;
      this.wake = null;
      wake();
    } else {
      this.early = true;
    }
  }

  untilEcho() {
    if (this.early) {
      this.early = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => { this.wake = resolve; });
  }

  async pending() {
    const sender = (async () => {
      // POSTs on the side connection, each after the previous echo came back
      while (!stopping && !this.closed) {
        await this.post(this.side, this.next());
        await this.untilEcho();
      }
    })();
    const poller = (async () => {
      while (!stopping && !this.closed) {
        const {echoed, beats} = this.take(await this.get(this.main));
        if (beats) await this.post(this.main, beats);
        if (echoed) this.echoCame();
      }
    })();
    await Promise.all([sender, poller]);
  }

  close() {
    this.closed = true;
    this.early = true;
    if (this.wake) this.echoCame();
    this.main.close();
    this.side.close();
  }
}

// -- the run -------------------------------------------------------------------------
let nextIndex = 0;
const live = new Set();

// Opens a client and starts its loop; resolves once its handshake is done (true) or failed.
async function start() {
  const client = new Client(cfg.port, nextIndex++);
  live.add(client);
  try {
    await client.handshake();
  } catch (err) {
    live.delete(client);
    client.close();
    countFailure(err);
    return false;
  }
  (mode === 'pending' ? client.pending() : client.sequential()).catch((err) => {
    if (stopping || client.closed) return;
    countFailure(err);
    live.delete(client);
    client.close();
    if (tally.replaced >= MAX_REPLACED * cfg.clients) return;  // bounded, even if every request fails
    tally.replaced++;
    start();  // a new session: what a real client does after "unknown session"
  });
  return true;
}

async function startAll(count, inflight) {
  let failed = 0;
  let started = 0;
  const opener = async () => {
    while (started < count) {
      started++;
      if (!(await start())) failed++;
    }
  };
  await Promise.all(Array.from({length: Math.min(inflight, count)}, opener));
  return failed;
}

function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : null;
}

async function main() {
  const hardStop = setTimeout(() => {
    process.stdout.write(JSON.stringify({error: `load generator passed its ${cfg.deadline} s deadline`}) + '\n');
    process.exit(2);
  }, cfg.deadline * 1000);
  const t0 = clock();
  const failedOpens = await startAll(cfg.clients, cfg.inflight || 50);
  const openSeconds = (clock() - t0) / 1000;
  if (failedOpens === cfg.clients) throw new Error(`none of ${cfg.clients} clients could connect`);
  await pause(cfg.warmup * 1000);
  const before = {...tally, failures: {...tally.failures}};
  process.stdout.write('window start\n');
  const w0 = clock();
  measuring = true;
  await pause(cfg.duration * 1000);
  measuring = false;
  const seconds = (clock() - w0) / 1000;
  process.stdout.write('window stop\n');
  stopping = true;
  for (const client of live) client.close();
  clearTimeout(hardStop);
  const sorted = Float64Array.from(latencies).sort();
  const inWindow = {};
  for (const [key, n] of Object.entries(tally.failures)) {
    if (n > (before.failures[key] || 0)) inWindow[key] = n - (before.failures[key] || 0);
  }
  return {
    mode, clients: cfg.clients, seconds, open_seconds: openSeconds, failed_opens: failedOpens,
    echoes, requests, rate: echoes / seconds, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99),
    failures: inWindow, failures_total: tally.failures,
    replaced: tally.replaced - before.replaced, wrong_echo: tally.wrongEcho, heartbeats: tally.heartbeats,
  };
}

main().then((result) => {
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
}, (err) => {
  note(String(err && err.stack || err));
  process.stdout.write(JSON.stringify({error: String(err && err.message || err)}) + '\n');
  process.exit(1);
});
