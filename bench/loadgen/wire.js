// Wire clients of the load generator: one small class per peer protocol.
//
// Every client has the same surface, so the scenarios in loadgen.js never look
// at a protocol:
//   client.onReady()        handshake done (first server message arrived)
//   client.onMessage(text)  an application message (heartbeats never reach it)
//   client.onClose()        the connection ended
//   client.send(text)       an echo request
//   client.subscribe(ch)    join a channel / room / group
//   client.publish(ch, txt) send txt to every other member of ch
//   client.close()
//   client.heartbeats       heartbeats (or pings) answered so far
//
// makeClient's `local` is the loopback source address to connect from (undefined:
// the kernel's choice, 127.0.0.1).  One source address has only the ephemeral
// ports (about 28,000) toward one server port, so the idle scenario spreads
// larger counts over 127.0.0.2, 127.0.0.3, ...
'use strict';

const http = require('http');

let WebSocket = null;
function useWs(modulePath) {
  WebSocket = require(modulePath);
}

const WS_OPTIONS = {perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: 60000,
  maxPayload: 64 * 1024 * 1024};

// -- Socket.IO 0.6 framing -------------------------------------------------
// A payload is one or more frames ~m~<len>~m~<data>; <len> counts UTF-16 code
// units, which is exactly what String.prototype.length counts.
const FRAME = '~m~';

function encode06(data) {
  return FRAME + data.length + FRAME + data;
}

function decode06(payload) {
  const frames = [];
  let pos = 0;
  while (pos < payload.length) {
    if (!payload.startsWith(FRAME, pos)) throw new Error(`expected ~m~ at ${pos}`);
    const end = payload.indexOf(FRAME, pos + 3);
    if (end < 0) throw new Error(`missing length terminator after ${pos}`);
    const digits = payload.slice(pos + 3, end);
    if (!/^[0-9]+$/.test(digits)) throw new Error(`bad frame length ${JSON.stringify(digits)}`);
    const start = end + 3;
    const length = Number(digits);
    if (start + length > payload.length) throw new Error('frame longer than its payload');
    frames.push(payload.substr(start, length));
    pos = start + length;
  }
  return frames;
}

class Base {
  constructor(port, local) {
    this.port = port;
    this.local = local;
    this.ready = false;
    this.closed = false;
    this.heartbeats = 0;
    this.onReady = () => {};
    this.onMessage = () => {};
    this.onClose = () => {};
  }

  _ready() {
    if (!this.ready) {
      this.ready = true;
      this.onReady();
    }
  }

  _closed() {
    if (!this.closed) {
      this.closed = true;
      this.onClose();
    }
  }
}

class WsBase extends Base {
  connect() {
    const ws = this.ws = new WebSocket(this.url(), this.local ? {...WS_OPTIONS, localAddress: this.local} : WS_OPTIONS);
    ws.on('message', (data, isBinary) => {
      if (!isBinary) this.receive(data.toString());
    });
    ws.on('ping', () => { this.heartbeats++; });
    ws.on('close', () => this._closed());
    ws.on('error', () => this._closed());
    return this;
  }

  raw(text) {
    if (this.ws.readyState === 1) this.ws.send(text);
  }

  close() {
    try { this.ws.terminate(); } catch (e) { /* already gone */ }
  }
}

// Our server: Socket.IO 0.6 over ws://h:p/socket.io/websocket.
class Sio06Ws extends WsBase {
  url() { return `ws://127.0.0.1:${this.port}/socket.io/websocket`; }

  receive(payload) {
    for (const data of decode06(payload)) {
      if (!this.ready) {
        this.sessionId = data;  // the first message is the session id
        this._ready();
      } else if (data.startsWith('~h~')) {
        this.heartbeats++;
        this.raw(encode06(data));  // heartbeat echo: the same ~h~<n> text
      } else if (data.startsWith('~j~')) {
        this.onMessage(JSON.parse(data.slice(3)));
      } else {
        this.onMessage(data);
      }
    }
  }

  send(text) { this.raw(encode06(text)); }
  subscribe(channel) { this.raw(encode06('__subscribe__') + encode06(channel)); }
  publish(channel, text) { this.raw(encode06('~j~' + JSON.stringify({channel, data: text}))); }
}

// python-socketio 5: Engine.IO 4 + Socket.IO 5 packets over websocket.
class Eio4Ws extends WsBase {
  url() { return `ws://127.0.0.1:${this.port}/socket.io/?EIO=4&transport=websocket`; }

  receive(packet) {
    const type = packet[0];
    if (type === '0') this.raw('40');  // engine.io open -> socket.io connect
    else if (type === '2') { this.heartbeats++; this.raw('3'); }
    else if (type === '4') this.socketPacket(packet.slice(1));
  }

  socketPacket(p) {
    if (p[0] === '0') this._ready();
    else if (p[0] === '2') {
      const [event, data] = JSON.parse(p.slice(1));
      if (event === 'message') this.onMessage(data);
    }
  }

  emit(event, data) { this.raw('42' + JSON.stringify([event, data])); }
  send(text) { this.emit('message', text); }
  subscribe(channel) { this.emit('sub', channel); }
  publish(channel, text) { this.emit('pub', {channel, data: text}); }
}

// The plain gevent-websocket app and the Channels app: bare text frames.
class PlainWs extends WsBase {
  constructor(port, path, local) {
    super(port, local);
    this.path = path;
  }

  url() { return `ws://127.0.0.1:${this.port}${this.path}`; }

  receive(text) {
    if (!this.ready) {
      if (text === 'hello') this._ready();
    } else if (text === 'hb') {
      this.heartbeats++;
      this.raw('hb');
    } else {
      this.onMessage(text);
    }
  }

  send(text) { this.raw(text); }
  subscribe(channel) { this.raw('sub:' + channel); }
  publish(channel, text) { this.raw(`pub:${channel}:${text}`); }
}

// -- long polling ----------------------------------------------------------
// Each client keeps one GET pending and POSTs its sends, over a keep-alive
// agent of two sockets, as a browser would.
class PollBase extends Base {
  constructor(port, local) {
    super(port, local);
    this.agent = new http.Agent({keepAlive: true, maxSockets: 2});
  }

  request(method, path, body, contentType) {
    return new Promise((resolve, reject) => {
      const headers = {};
      if (body !== undefined) {
        headers['Content-Type'] = contentType || 'text/plain; charset=UTF-8';
        headers['Content-Length'] = Buffer.byteLength(body);
      }
      const req = http.request({host: '127.0.0.1', port: this.port, method, path, headers, agent: this.agent,
        localAddress: this.local},
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            if (res.statusCode !== 200) reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`));
            else resolve(text);
          });
        });
      req.on('error', reject);
      req.setNoDelay(true);
      req.end(body);  // headers and body in one write: no Nagle/delayed-ACK stall
    });
  }

  async pollLoop() {
    while (!this.closed) {
      let body;
      try {
        body = await this.request('GET', this.pollPath());
      } catch (e) {
        this._closed();
        return;
      }
      if (!this.closed) this.receive(body);
    }
  }

  post(body) {
    this.request('POST', this.postPath(), ...this.postBody(body)).catch(() => this._closed());
  }

  close() {
    this.closed = true;
    this.agent.destroy();
  }
}

// Our server: Socket.IO 0.6 xhr-polling.
class Sio06Poll extends PollBase {
  connect() {
    this.request('GET', this.handshakePath()).then((body) => {
      const frames = this.frames(body);
      if (!frames) return;
      this.sessionId = frames[0];
      this._ready();
      for (const data of frames.slice(1)) this.frame(data);
      this.pollLoop();
    }, () => this._closed());
    return this;
  }

  handshakePath() { return `/socket.io/xhr-polling//${Date.now()}`; }
  pollPath() { return `/socket.io/xhr-polling/${this.sessionId}/${Date.now()}`; }
  postPath() { return `/socket.io/xhr-polling/${this.sessionId}/send`; }

  // The frames of an answer; null once the answer closed the client.
  frames(body) { return body ? decode06(body) : []; }
  postBody(payload) {
    return ['data=' + encodeURIComponent(payload), 'application/x-www-form-urlencoded'];
  }

  receive(body) {
    for (const data of this.frames(body) || []) this.frame(data);
  }

  frame(data) {
    if (data.startsWith('~h~')) { this.heartbeats++; this.post(encode06(data)); }
    else if (data.startsWith('~j~')) this.onMessage(JSON.parse(data.slice(3)));
    else this.onMessage(data);
  }

  send(text) { this.post(encode06(text)); }
}

// Our server and node's 0.6.18: Socket.IO 0.6 jsonp-polling, as a page's
// script tags do it: every answer is a call io.JSONP[0]._("<frames>").
const JSONP_CALL = /^io\.JSONP\[0\]\._\((.*)\);\s*$/s;

class Sio06Jsonp extends Sio06Poll {
  handshakePath() { return `/socket.io/jsonp-polling//${Date.now()}/0`; }
  pollPath() { return `/socket.io/jsonp-polling/${this.sessionId}/${Date.now()}/0`; }
  postPath() { return this.pollPath(); }

  frames(body) {
    const call = JSONP_CALL.exec(body);
    if (!call) {
      process.stderr.write(`not a JSONP answer: ${body.slice(0, 60)}\n`);
      this._closed();
      return null;
    }
    return super.frames(JSON.parse(call[1]));
  }
}

// python-socketio: Engine.IO 4 polling (packets joined by U+001E).
class Eio4Poll extends PollBase {
  connect() {
    this.request('GET', `/socket.io/?EIO=4&transport=polling&t=${Date.now()}`).then((body) => {
      const open = JSON.parse(body.split('\x1e')[0].slice(1));
      this.sid = open.sid;
      this.post('40');
      this.pollLoop();
    }, () => this._closed());
    return this;
  }

  pollPath() { return `/socket.io/?EIO=4&transport=polling&sid=${this.sid}&t=${Date.now()}`; }
  postPath() { return this.pollPath(); }
  postBody(payload) { return [payload, 'text/plain; charset=UTF-8']; }

  receive(body) {
    for (const packet of body.split('\x1e')) {
      const type = packet[0];
      if (type === '2') { this.heartbeats++; this.post('3'); }
      else if (type === '4') Eio4Ws.prototype.socketPacket.call(this, packet.slice(1));
      else if (type === '1') this._closed();
    }
  }

  send(text) { this.post('42' + JSON.stringify(['message', text])); }
}

// The plain app's minimal long polling.
class PlainPoll extends PollBase {
  connect() {
    this.request('GET', '/poll/new').then((id) => {
      this.id = id;
      this._ready();
      this.pollLoop();
    }, () => this._closed());
    return this;
  }

  pollPath() { return `/poll/${this.id}`; }
  postPath() { return this.pollPath(); }
  postBody(payload) { return [payload, 'text/plain; charset=UTF-8']; }

  receive(body) {
    if (body) for (const text of body.split('\x1e')) this.onMessage(text);
  }

  send(text) { this.post(text); }
}

// proto name (as the orchestrator names it) -> transport -> factory
const PROTOCOLS = {
  sio06: {ws: (port, local) => new Sio06Ws(port, local), poll: (port, local) => new Sio06Poll(port, local),
    jsonp: (port, local) => new Sio06Jsonp(port, local)},
  eio4: {ws: (port, local) => new Eio4Ws(port, local), poll: (port, local) => new Eio4Poll(port, local)},
  plain: {ws: (port, local) => new PlainWs(port, '/ws', local), poll: (port, local) => new PlainPoll(port, local)},
  channels: {ws: (port, local) => new PlainWs(port, '/ws/', local)},
};

function makeClient(proto, transport, port, local) {
  const family = PROTOCOLS[proto];
  if (!family || !family[transport]) throw new Error(`no ${transport} client for ${proto}`);
  return family[transport](port, local);
}

module.exports = {useWs, makeClient, encode06, decode06, PROTOCOLS};
