// A real socket.io-client 4.x that follows a script, for the tests
// (tests/v4_support.py: run_client).
//
// Usage: node v4_client.js <node_modules dir> '<JSON config>'
//
// Config (every key but "url" optional):
//   url          "http://127.0.0.1:<port>"
//   namespace    "/" (appended to the url)
//   path         "/socket.io/"
//   transports   ["polling", "websocket"]
//   upgrade      true
//   auth         the CONNECT payload ({} when absent, as the client sends it)
//   query        extra query parameters
//   reconnection false
//   reconnection_delay_ms  100 (the first reconnection's delay)
//   ack_replies  {"event": [args...]}: answer a server event that wants an ack
//   timeout_ms   bound on the whole run (default 20000)
//   steps        run in order once connected:
//     {"emit": "name", "args": [...], "ack": true}  (waits for the ack if "ack")
//     {"send": [args...]}                            (the "message" event)
//     {"wait": "name", "count": n}   until n "name" events were seen in all
//     {"wait": "connect", "count": n}  until the n-th connect (after a reconnection)
//     {"close_engine": true}         close the Engine.IO connection (the client
//                                    reconnects when "reconnection" is true)
//     {"kill_transport": true}       destroy a websocket without a close frame
//                                    (polling: as close_engine)
//     {"disconnect": true}           a clean DISCONNECT
//
// Binary values: {"$bin": "<base64>"} in args becomes a Buffer, and binary
// received is printed the same way.  Output: one JSON object per line:
//   {"type":"connect","id":...,"recovered":bool,"transport":"polling"}
//   {"type":"connect_error","message":...,"data":...}
//   {"type":"event","name":...,"args":[...],"ack":bool}
//   {"type":"ack","step":i,"args":[...]}
//   {"type":"upgrade","transport":"websocket"}
//   {"type":"disconnect","reason":...}
//   {"type":"done"}                       all steps ran (exit code 0)
//   {"type":"timeout","step":i} / {"type":"error","message":...}  (exit code 1)
// A connect_error before any connect ends the run at once (exit code 0): it
// is an observation, not a failure of the driver.
// Connections go only where "url" says; the tests pass 127.0.0.1 addresses.
'use strict';

const path = require('path');

const modules = process.argv[2];
const config = process.argv[3] ? JSON.parse(process.argv[3]) : null;
if (!modules || !config || !config.url) {
  console.error("usage: node v4_client.js <node_modules dir> '<JSON config>'");
  process.exit(2);
}
const { io } = require(require.resolve('socket.io-client', { paths: [modules] }));

function print(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function isBinary(value) {
  return Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

function toBuffer(value) {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

function revive(value) {
  if (Array.isArray(value)) return value.map(revive);
  if (value !== null && typeof value === 'object') {
    if (typeof value.$bin === 'string' && Object.keys(value).length === 1) {
      return Buffer.from(value.$bin, 'base64');
    }
    const out = {};
    for (const key of Object.keys(value)) out[key] = revive(value[key]);
    return out;
  }
  return value;
}

function mark(value) {
  if (isBinary(value)) return { $bin: toBuffer(value).toString('base64') };
  if (Array.isArray(value)) return value.map(mark);
  if (value !== null && typeof value === 'object') {
    const out = {};
    for (const key of Object.keys(value)) out[key] = mark(value[key]);
    return out;
  }
  return value;
}

let finished = false;
let currentStep = -1;
function finish(code, line) {
  if (finished) return;
  finished = true;
  if (line) print(line);
  try { socket.close(); } catch (err) { /* already closed */ }
  // Exit once stdout is flushed; nothing else may keep the process alive.
  process.stdout.write('', () => process.exit(code));
}

const deadline = setTimeout(() => finish(1, { type: 'timeout', step: currentStep }),
                            config.timeout_ms || 20000);

const counts = {};
let waiter = null;  // {test: () => bool, resolve}
function seen(name) {
  counts[name] = (counts[name] || 0) + 1;
  if (waiter && waiter.test()) {
    const w = waiter;
    waiter = null;
    w.resolve();
  }
}
function waitUntil(test) {
  if (test()) return Promise.resolve();
  return new Promise((resolve) => { waiter = { test: test, resolve: resolve }; });
}

const namespace = config.namespace || '/';
const socket = io(config.url + (namespace === '/' ? '' : namespace), {
  path: config.path || '/socket.io/',
  transports: config.transports || ['polling', 'websocket'],
  upgrade: config.upgrade !== false,
  auth: config.auth || {},
  query: config.query || {},
  reconnection: Boolean(config.reconnection),
  reconnectionDelay: config.reconnection_delay_ms || 100,
  reconnectionDelayMax: Math.max(config.reconnection_delay_ms || 500, 500),
  forceNew: true,
});

socket.io.on('open', () => {
  const engine = socket.io.engine;
  engine.on('upgrade', (transport) => {
    print({ type: 'upgrade', transport: transport.name });
    seen('upgrade');
  });
});

socket.on('connect', () => {
  print({
    type: 'connect',
    id: socket.id,
    recovered: Boolean(socket.recovered),
    transport: socket.io.engine && socket.io.engine.transport ? socket.io.engine.transport.name : null,
  });
  seen('connect');
});

socket.on('connect_error', (err) => {
  print({ type: 'connect_error', message: err && err.message, data: err && err.data !== undefined ? mark(err.data) : null });
  if (!counts.connect) finish(0, null);
  seen('connect_error');
});

socket.on('disconnect', (reason) => {
  print({ type: 'disconnect', reason: reason });
  seen('disconnect');
});

socket.onAny((name, ...args) => {
  let ack = null;
  if (args.length && typeof args[args.length - 1] === 'function') ack = args.pop();
  print({ type: 'event', name: name, args: mark(args), ack: Boolean(ack) });
  if (ack) {
    const replies = (config.ack_replies || {})[name] || [];
    ack(...revive(replies));
  }
  seen(name);
});

async function runStep(step, index) {
  if (step.emit !== undefined) {
    const args = revive(step.args || []);
    if (step.ack) {
      await new Promise((resolve) => {
        socket.emit(step.emit, ...args, (...response) => {
          print({ type: 'ack', step: index, args: mark(response) });
          resolve();
        });
      });
    } else {
      socket.emit(step.emit, ...args);
    }
  } else if (step.send !== undefined) {
    socket.send(...revive(step.send));
  } else if (step.wait !== undefined) {
    const count = step.count || 1;
    await waitUntil(() => (counts[step.wait] || 0) >= count);
  } else if (step.close_engine) {
    socket.io.engine.close();
  } else if (step.kill_transport) {
    // An unclean loss: a websocket is destroyed without a close frame
    // (ws.terminate); polling has no connection to kill, so it closes.
    const transport = socket.io.engine.transport;
    if (transport.ws && typeof transport.ws.terminate === 'function') transport.ws.terminate();
    else socket.io.engine.close();
  } else if (step.disconnect) {
    socket.disconnect();
  } else {
    throw new Error('unknown step ' + JSON.stringify(step));
  }
}

async function main() {
  await waitUntil(() => (counts.connect || 0) >= 1);
  const steps = config.steps || [];
  for (let i = 0; i < steps.length; i++) {
    currentStep = i;
    await runStep(steps[i], i);
  }
  clearTimeout(deadline);
  finish(0, { type: 'done' });
}

main().catch((err) => finish(1, { type: 'error', message: String(err && err.stack || err) }));
