// The parsers inside the installed socket.io-client 4.x, driven from the tests
// (tests/test_v4_parsers_interop.py) to check our Python codecs against them.
//
// Usage: node v4_parsers.js <node_modules dir>   (a JSON request on stdin)
//
// The request is {"jobs": [job, ...]}; the answer, on stdout, is one JSON
// object {"versions": {...}, "results": [result, ...]}, one result per job.
// Binary values travel as {"$bin": "<base64>"} both ways.  Jobs:
//
//   {"op": "sio_encode", "packet": {type, nsp, data, id}}
//       -> {"parts": [...], "polling": "<Engine.IO payload>", "frames": [...],
//           "frames_base64": [...] (the frames of a client with forceBase64)}
//   {"op": "sio_decode", "parts": [str | {"$bin"}, ...]}
//       -> {"packets": [{type, nsp, data, id}, ...]} or {"error": "..."}
//   {"op": "sio_decode_polling", "body": "..."} / {"op": "sio_decode_frames", "frames": [...]}
//       -> as sio_decode, after Engine.IO decoded the body or the frames
//   {"op": "eio_encode_payload", "packets": [{type, data}]} -> {"body": "..."}
//   {"op": "eio_decode_payload", "body": "..."}   -> {"packets": [{type, data}]}
//   {"op": "eio_decode_packet", "frame": str | {"$bin"}} -> {"packet": {type, data}}
//
// Only the client's own parser modules are loaded (resolved from the
// socket.io-client package, so they are the versions it runs with); nothing
// here opens a socket.
'use strict';

const fs = require('fs');
const path = require('path');

const modules = process.argv[2];
if (!modules) {
  console.error('usage: node v4_parsers.js <node_modules dir> < request.json');
  process.exit(2);
}

// Packages may not export their package.json: find it next to the resolved
// entry point by walking up to the package's own directory.
function packageInfo(name, fromDir) {
  const main = require.resolve(name, { paths: [fromDir] });
  // (build/cjs/package.json files carry the name but no version: skip them)
  for (let dir = path.dirname(main); ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    const meta = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
    if (meta.name === name && meta.version) {
      return { module: require(main), version: meta.version, dir: dir };
    }
    if (path.dirname(dir) === dir) throw new Error('no package.json for ' + name);
  }
}

const client = packageInfo('socket.io-client', modules);
const sio = packageInfo('socket.io-parser', client.dir);
const eioClient = packageInfo('engine.io-client', client.dir);
const eio = packageInfo('engine.io-parser', eioClient.dir);

function isBinary(value) {
  return Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

function toBuffer(value) {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

// JSON (with {"$bin"} markers) -> JavaScript values with Buffers.
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

// JavaScript values -> JSON with {"$bin"} markers.
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

function markPacket(packet) {
  const out = { type: packet.type, nsp: packet.nsp };
  if (packet.data !== undefined) out.data = mark(packet.data);
  if (packet.id !== undefined) out.id = packet.id;
  return out;
}

function engineMessage(part) {
  return { type: 'message', data: part };
}

function sioEncode(job) {
  const packet = revive(job.packet);
  const parts = new sio.module.Encoder().encode(packet);
  let polling = null;
  eio.module.encodePayload(parts.map(engineMessage), (body) => { polling = body; });
  const frames = (supportsBinary) => parts.map((part) => {
    let frame = null;
    eio.module.encodePacket(engineMessage(part), supportsBinary, (encoded) => { frame = encoded; });
    return mark(frame);
  });
  // frames_base64: what a client started with forceBase64 sends on a websocket.
  return { parts: parts.map(mark), polling: polling, frames: frames(true), frames_base64: frames(false) };
}

function sioDecode(job) {
  const decoder = new sio.module.Decoder();
  const packets = [];
  decoder.on('decoded', (packet) => packets.push(markPacket(packet)));
  try {
    for (const part of job.parts) decoder.add(revive(part));
  } catch (err) {
    return { error: String(err && err.message || err) };
  }
  return { packets: packets, waiting: Boolean(decoder.reconstructor) };
}

// An Engine.IO polling body or websocket frames -> their messages' data,
// fed to a socket.io-parser Decoder, as the client does on receipt.
function sioDecodeEngine(messages) {
  const parts = [];
  for (const packet of messages) {
    if (packet.type !== 'message') return { error: 'engine.io packet of type ' + packet.type };
    parts.push(mark(packet.data));
  }
  return sioDecode({ parts: parts });
}

function markEnginePacket(packet) {
  const out = { type: packet.type };
  if (packet.data !== undefined) out.data = mark(packet.data);
  return out;
}

const ops = {
  sio_encode: sioEncode,
  sio_decode: sioDecode,
  sio_decode_polling: (job) => sioDecodeEngine(eio.module.decodePayload(job.body, 'nodebuffer')),
  sio_decode_frames: (job) => sioDecodeEngine(
    job.frames.map((frame) => eio.module.decodePacket(revive(frame), 'nodebuffer'))),
  eio_encode_payload: (job) => {
    let body = null;
    eio.module.encodePayload(revive(job.packets), (encoded) => { body = encoded; });
    return { body: body };
  },
  eio_decode_payload: (job) => ({
    packets: eio.module.decodePayload(job.body, 'nodebuffer').map(markEnginePacket),
  }),
  eio_decode_packet: (job) => ({
    packet: markEnginePacket(eio.module.decodePacket(revive(job.frame), 'nodebuffer')),
  }),
};

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const request = JSON.parse(input);
  const results = request.jobs.map((job) => {
    const op = ops[job.op];
    if (!op) return { error: 'unknown op ' + job.op };
    try {
      return op(job);
    } catch (err) {
      return { error: String(err && err.message || err) };
    }
  });
  process.stdout.write(JSON.stringify({
    versions: {
      'socket.io-client': client.version,
      'engine.io-client': eioClient.version,
      'socket.io-parser': sio.version,
      'engine.io-parser': eio.version,
    },
    results: results,
  }) + '\n');
});
