// Peer: node's own socket.io 0.6.18 (the real npm package, unmodified), on node 20.
//
// Usage: node node06_server.js --port P [--modules DIR]
//   DIR holds node_modules/socket.io (default: .cache/npm/node_modules of the checkout,
//   where CI installs socket.io@0.6.18).  Binds 127.0.0.1 only.
//
// The app does what bench/apps_ours.py does, with socket.io 0.6's own API:
//   * a string message is echoed to its sender (client.send);
//   * the two messages "__subscribe__", <channel> join <channel> (socket.io 0.6
//     has no rooms, so the app keeps channel -> set of clients);
//   * a JSON message {"channel": c, "data": d} sends d to every member of c but
//     the sender (client.send on each, as a 0.6 app would);
//   * heartbeats are socket.io 0.6.18's own: "~h~<n>" every 10 s, the client
//     closed if it does not echo within 8 s (its defaults, kept).
//
// Three start-up shims make the 2011 package serve today's clients on node 20,
// without touching node_modules:
//   1. process.EventEmitter, which socket.io 0.6 extends and node removed.
//   2. RFC 6455 websockets.  socket.io 0.6.18 speaks only the hixie-75/76 drafts
//      (it requires "Upgrade: WebSocket" spelt so, answers without
//      Sec-WebSocket-Accept and frames with 0x00 ... 0xFF), so an RFC 6455 client
//      such as the load generator's (the ws package) hangs or fails.  The
//      Rfc6455 transport below is socket.io's own Client with only the wire
//      changed: it answers the RFC 6455 handshake, unmasks text frames into
//      Client._onMessage, writes each message as one unmasked text frame, and
//      answers ping and close.  Sessions, framing (~m~), heartbeats, timeouts
//      and events are socket.io's code, unchanged.  Hixie requests still reach
//      socket.io's own websocket transport.
//   3. node 0.4's idle timeout for keep-alive connections (see below), without
//      which a polling client that pauses 5 s loses its pending poll.
'use strict';

process.EventEmitter = require('events').EventEmitter;  // shim 1

const path = require('path');
const http = require('http');
const crypto = require('crypto');
const util = require('util');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
}

const port = parseInt(arg('--port'), 10);
const modules = arg('--modules', path.join(__dirname, '..', '..', '.cache', 'npm', 'node_modules'));
if (!(port > 0)) {
  console.error('usage: node node06_server.js --port P [--modules DIR]');
  process.exit(2);
}
const io = require(path.join(modules, 'socket.io'));
const Client = require(path.join(modules, 'socket.io', 'lib', 'socket.io', 'client'));

// -- shim 2: an RFC 6455 transport on socket.io 0.6's Client -----------------------
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_FRAME = 16 * 1024 * 1024;

function Rfc6455(listener, req, socket, options, head) {
  Client.call(this, listener, req, socket, options, head);
}
util.inherits(Rfc6455, Client);

Rfc6455.prototype._onConnect = function (req, socket) {
  Client.prototype._onConnect.call(this, req);  // end/timeout/error -> _onClose
  if (!this._verifyOrigin(req.headers.origin)) {
    socket.destroy();
    return this._onClose();
  }
  const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + GUID).digest('base64');
  socket.setTimeout(0);
  socket.setNoDelay(true);
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
               + 'Sec-WebSocket-Accept: ' + accept + '\r\n\r\n');
  this.pending = null;  // unparsed input
  this.fragments = null;  // a fragmented text message so far
  socket.on('data', (chunk) => this._onData(chunk));
  if (this.upgradeHead && this.upgradeHead.length) this._onData(this.upgradeHead);
  this._payload();  // socket.io: session id first, then connect event and heartbeats
};

Rfc6455.prototype._onData = function (chunk) {
  let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
  while (buf.length >= 2) {
    const fin = buf[0] & 0x80, opcode = buf[0] & 0x0f, masked = buf[1] & 0x80;
    let len = buf[1] & 0x7f, pos = 2;
    if (len === 126) {
      if (buf.length < 4) break;
      len = buf.readUInt16BE(2); pos = 4;
    } else if (len === 127) {
      if (buf.length < 10) break;
      len = buf.readUInt32BE(2) * 0x100000000 + buf.readUInt32BE(6); pos = 10;
    }
    if (!masked || len > MAX_FRAME) return this._fail();  // clients must mask
    if (buf.length < pos + 4 + len) break;
    const mask = buf.subarray(pos, pos + 4), payload = Buffer.allocUnsafe(len);
    for (let i = 0; i < len; i++) payload[i] = buf[pos + 4 + i] ^ mask[i & 3];
    buf = buf.subarray(pos + 4 + len);
    if (opcode === 0x8) return this._closeFrame(payload);
    if (opcode === 0x9) this._frame(0xA, payload);  // ping -> pong
    else if (opcode === 0x1 || opcode === 0x0) {
      const parts = this.fragments ? this.fragments.concat(payload) : [payload];
      if (fin) {
        this.fragments = null;
        this._onMessage(Buffer.concat(parts).toString('utf8'));  // socket.io decodes ~m~ frames
      } else {
        this.fragments = parts;
      }
    } else if (opcode !== 0xA) return this._fail();  // binary is not socket.io 0.6
  }
  this.pending = buf.length ? buf : null;
};

Rfc6455.prototype._frame = function (opcode, payload) {
  const len = payload.length, size = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(size + len);
  out[0] = 0x80 | opcode;
  if (size === 2) out[1] = len;
  else if (size === 4) { out[1] = 126; out.writeUInt16BE(len, 2); }
  else { out[1] = 127; out.writeUInt32BE(Math.floor(len / 0x100000000), 2); out.writeUInt32BE(len >>> 0, 6); }
  payload.copy(out, size);
  this.connection.write(out);
};

// socket.io calls _write with an encoded ~m~ payload: one text frame.
Rfc6455.prototype._write = function (message) {
  try {
    this._frame(0x1, Buffer.from(message, 'utf8'));
  } catch (e) {
    this._onClose();
  }
};

Rfc6455.prototype._closeFrame = function (payload) {
  try { this._frame(0x8, payload.subarray(0, 2)); } catch (e) { /* gone */ }
  this._fail();
};

Rfc6455.prototype._fail = function () {
  this.pending = this.fragments = null;
  if (this.connection) this.connection.destroy();
  this._onClose();
};

// Put the RFC 6455 path in front of socket.io's upgrade listener (which keeps hixie).
function acceptRfc6455(server, listener) {
  const theirs = server.listeners('upgrade');
  server.removeAllListeners('upgrade');
  server.on('upgrade', function (req, socket, head) {
    const pathname = req.url.split('?')[0];
    if (req.headers['sec-websocket-key'] && pathname === '/' + listener.options.resource + '/websocket') {
      new Rfc6455(listener, req, socket, listener.options.transportOptions.websocket, head);  // eslint-disable-line no-new
      return;
    }
    for (const fn of theirs) fn.call(this, req, socket, head);
  });
}

// -- the app ---------------------------------------------------------------------------
const server = http.createServer((req, res) => {
  const body = 'bench';
  res.writeHead(200, {'Content-Type': 'text/plain', 'Content-Length': body.length});
  res.end(body);
});
const listener = io.listen(server, {log: false, flashPolicyServer: false,
  transports: ['websocket', 'xhr-polling', 'jsonp-polling']});
acceptRfc6455(server, listener);
// shim 3: node 0.4 timed a connection out after 2 minutes idle; node 20 times an idle
// keep-alive connection out after 5 s, and socket.io 0.6 takes a 'timeout' on any
// socket a polling client used as the client going away (it then destroys the
// socket of the poll pending at that moment).  Give back node 0.4's 2 minutes.
server.keepAliveTimeout = 120000;

const channels = new Map();  // channel -> Set of clients

listener.on('connection', (client) => {
  let subscribing = false;
  const joined = new Set();
  client.on('message', (message) => {
    if (subscribing) {
      subscribing = false;
      const channel = String(message);
      if (!channels.has(channel)) channels.set(channel, new Set());
      channels.get(channel).add(client);
      joined.add(channel);
    } else if (message === '__subscribe__') {
      subscribing = true;
    } else if (message !== null && typeof message === 'object') {
      const members = channels.get(String(message.channel));
      if (members) for (const member of members) if (member !== client) member.send(message.data);
    } else {
      client.send(message);
    }
  });
  client.on('disconnect', () => {
    for (const channel of joined) {
      const members = channels.get(channel);
      members.delete(client);
      if (!members.size) channels.delete(channel);
    }
  });
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`node socket.io 0.6.18: serving on ${port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
