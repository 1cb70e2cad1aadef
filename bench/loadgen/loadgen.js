// The load generator: drives one server through one scenario and prints one
// JSON line with the figures (progress goes to stderr).
//
// Usage: node loadgen.js '<json config>'
//   config: {wsModule, proto, port, serverPid, scenario, ...scenario options}
// It measures its own CPU and the server's over each measuring window (from
// /proc), so the report can show that the load generator is not the bottleneck.
'use strict';

const fs = require('fs');
const wire = require('./wire');

const cfg = JSON.parse(process.argv[2]);
wire.useWs(cfg.wsModule);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => Number(process.hrtime.bigint()) / 1e6;  // milliseconds
const log = (...args) => process.stderr.write(`[loadgen ${cfg.proto} ${cfg.scenario}] ${args.join(' ')}\n`);

// -- CPU and memory from /proc ---------------------------------------------
const TICK_MS = 10;  // USER_HZ is 100 on Linux

function cpuMs(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;  // utime + stime
  } catch (e) {
    return NaN;
  }
}

function rssKb(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}

class Window {
  start() {
    this.t0 = now();
    this.lg0 = cpuMs(process.pid);
    this.srv0 = cpuMs(cfg.serverPid);
  }

  stop() {
    this.seconds = (now() - this.t0) / 1000;
    // Percent of one core; null for windows too short for 10 ms clock ticks.
    const share = (ms) => (this.seconds < 0.2 ? null : ms / (this.seconds * 10));
    this.lgCpu = share(cpuMs(process.pid) - this.lg0);
    this.srvCpu = share(cpuMs(cfg.serverPid) - this.srv0);
    return this;
  }
}

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function sortNumbers(values) {
  return Float64Array.from(values).sort();
}

// -- connecting ----------------------------------------------------------------
// The n-th client of this process connects from 127.0.0.1 (the kernel's choice)
// while n < perSource, then from 127.0.0.2, 127.0.0.3, ...: one source address
// has about 28,000 ephemeral ports toward the server's one port.
const PER_SOURCE = cfg.perSource || 20000;
let clientsMade = 0;

function sourceAddress() {
  const block = Math.floor(clientsMade++ / PER_SOURCE);
  if (block === 0) return undefined;
  if (block > 250) throw new Error('more source addresses than 127.0.0.2-127.0.0.251');
  return `127.0.0.${1 + block}`;
}

// Opens `count` clients, at most `inflight` handshakes at a time, and resolves
// once each is ready or has failed (the time allowed grows with the count).
function openClients(count, transport, inflight = cfg.inflight || 50, timeoutMs = Math.max(120000, count * 10)) {
  return new Promise((resolve, reject) => {
    const clients = [];
    let started = 0;
    let settled = 0;
    let failed = 0;
    const t0 = now();
    const timer = setTimeout(() => reject(new Error(
      `${count - settled} of ${count} handshakes still pending after ${timeoutMs} ms`)), timeoutMs);
    const finish = () => {
      if (settled === count) {
        clearTimeout(timer);
        resolve({clients, failed, seconds: (now() - t0) / 1000});
      }
    };
    const next = () => {
      if (started >= count) return;
      started++;
      const client = wire.makeClient(cfg.proto, transport, cfg.port, sourceAddress());
      let done = false;
      client.onReady = () => {
        if (done) return;
        done = true;
        settled++;
        clients.push(client);
        next();
        finish();
      };
      client.onClose = () => {
        if (done) return;
        done = true;
        settled++;
        failed++;
        next();
        finish();
      };
      client.connect();
    };
    if (count === 0) finish();
    for (let i = 0; i < Math.min(inflight, count); i++) next();
  });
}

// Every client connected ({clients, seconds}), or an error.
async function openAll(count, transport) {
  const opened = await openClients(count, transport);
  if (opened.failed) throw new Error(`${opened.failed} of ${count} clients failed to connect`);
  return opened;
}

function closeAll(clients) {
  for (const client of clients) client.close();
}

// -- scenarios -------------------------------------------------------------------
// echo: every client in ping-pong (one message in flight each).
async function echo(transport = 'ws') {
  const opened = await openAll(cfg.clients, transport);
  const clients = opened.clients;
  const payload = 'echo-' + 'x'.repeat((cfg.size || 32) - 5);
  const latencies = [];
  let measuring = false;
  let stopping = false;
  let count = 0;
  for (const client of clients) {
    client.onMessage = () => {
      const t = now();
      if (measuring) {
        count++;
        latencies.push(t - client.sentAt);
      }
      if (!stopping) {
        client.sentAt = now();
        client.send(payload);
      }
    };
    client.onClose = () => { if (!stopping) log('a client closed during the run'); };
  }
  for (const client of clients) {
    client.sentAt = now();
    client.send(payload);
  }
  await sleep(cfg.warmup * 1000);
  const win = new Window();
  win.start();
  measuring = true;
  await sleep(cfg.duration * 1000);
  measuring = false;
  win.stop();
  stopping = true;
  closeAll(clients);
  const sorted = sortNumbers(latencies);
  return {
    rate: count / win.seconds, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99),
    lgCpu: win.lgCpu, srvCpu: win.srvCpu,
    handshakes: clients.length / opened.seconds,  // connecting them all, 50 at a time
  };
}

// fanout: one publisher, `subscribers` members of one channel.
async function fanout() {
  const n = cfg.subscribers;
  const subs = (await openAll(n, 'ws')).clients;
  const [publisher] = (await openAll(1, 'ws')).clients;
  const remaining = new Map();  // message text -> deliveries still expected
  const seenSync = new Set();
  let delivered = 0;
  let onDone = null;
  subs.forEach((sub, index) => {
    sub.onMessage = (text) => {
      if (text[0] === 'S') {
        seenSync.add(index);
        return;
      }
      delivered++;
      const left = remaining.get(text) - 1;
      if (left === 0) {
        remaining.delete(text);
        if (onDone) onDone(text);
      } else {
        remaining.set(text, left);
      }
    };
  });
  for (const sub of subs) sub.subscribe('room');
  // Subscriptions are not acknowledged: publish sync messages until every member got one.
  const syncDeadline = now() + 30000;
  for (let k = 0; seenSync.size < n; k++) {
    if (now() > syncDeadline) throw new Error(`only ${seenSync.size} of ${n} subscribers joined`);
    publisher.publish('room', 'S' + k);
    await sleep(50);
  }
  await sleep(200);  // let late sync copies drain
  const pad = '|' + 'x'.repeat(24);

  // Latency: one publish at a time, time until its last delivery.
  const lastDelivery = [];
  for (let i = 0; i < cfg.publishes; i++) {
    const text = `L${i}${pad}`;
    remaining.set(text, n);
    const t0 = now();
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${text} not fully delivered`)), 30000);
      onDone = (done) => {
        if (done === text) { clearTimeout(timer); resolve(); }
      };
      publisher.publish('room', text);
    });
    lastDelivery.push(now() - t0);
  }

  // Throughput: keep `window` publishes in flight for `duration` seconds.
  let seq = 0;
  let stopping = false;
  let lastProgress = now();
  const publishNext = () => {
    const text = `T${seq++}${pad}`;
    remaining.set(text, n);
    publisher.publish('room', text);
  };
  onDone = () => {
    lastProgress = now();
    if (!stopping) publishNext();
  };
  for (let i = 0; i < cfg.window; i++) publishNext();
  await sleep(cfg.warmup * 1000);
  const win = new Window();
  const before = delivered;
  win.start();
  const end = now() + cfg.duration * 1000;
  while (now() < end) {
    await sleep(50);
    if (now() - lastProgress > 10000) throw new Error('fan-out stalled (deliveries lost?)');
  }
  const count = delivered - before;
  win.stop();
  stopping = true;
  closeAll(subs);
  publisher.close();
  const sorted = sortNumbers(lastDelivery);
  return {
    rate: count / win.seconds, last_p50: percentile(sorted, 0.5), last_p99: percentile(sorted, 0.99),
    lgCpu: win.lgCpu, srvCpu: win.srvCpu,
  };
}

// idle: hold connections with heartbeats; handshake rate and RSS per stage.
async function idle() {
  const warm = Math.min(20, cfg.stages[0]);
  const conns = (await openAll(warm, 'ws')).clients;
  let closedEarly = 0;
  const watch = (client) => { client.onClose = () => { closedEarly++; }; };
  conns.forEach(watch);
  await sleep(1000);
  const rss0 = rssKb(cfg.serverPid);
  const stages = [];
  for (const target of cfg.stages) {
    const win = new Window();
    win.start();
    const opened = await openClients(target - conns.length, 'ws');
    win.stop();
    opened.clients.forEach(watch);
    conns.push(...opened.clients);
    await sleep(cfg.settle * 1000);
    const rss = rssKb(cfg.serverPid);
    stages.push({
      connections: conns.length, failed: opened.failed,
      handshakes: opened.clients.length / opened.seconds,
      rss_per_conn_kb: (rss - rss0) / (conns.length - warm), rss_mb: rss / 1024,
      lgCpu: win.lgCpu, srvCpu: win.srvCpu,
    });
    log(`${conns.length} connections, ${(rss / 1024).toFixed(0)} MB RSS`);
  }
  const beatsBefore = conns.map((c) => c.heartbeats);
  await sleep(cfg.hold * 1000);
  const beats = conns.map((c, i) => c.heartbeats - beatsBefore[i]);
  // Alive: every connection still answers an echo after the hold.
  let answered = 0;
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, Math.max(30000, conns.length * 2));
    for (const client of conns) {
      client.onMessage = () => {
        if (!client.answered) {
          client.answered = true;
          if (++answered === conns.length) { clearTimeout(timer); resolve(); }
        }
      };
      client.send('alive?');
    }
  });
  closeAll(conns);
  return {
    stages, held: conns.length, alive: answered, closed_early: closedEarly,
    hold_s: cfg.hold, min_heartbeats: beats.reduce((a, b) => Math.min(a, b), Infinity),
    sources: Math.ceil(clientsMade / PER_SOURCE),
  };
}

const SCENARIOS = {echo: () => echo('ws'), fanout, idle, polling: () => echo('poll'), jsonp: () => echo('jsonp')};

SCENARIOS[cfg.scenario]().then((result) => {
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
}, (err) => {
  process.stdout.write(JSON.stringify({error: String(err && err.message || err)}) + '\n');
  process.exit(1);
});
