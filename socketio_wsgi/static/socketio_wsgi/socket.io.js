/*
 * socketio_wsgi browser client: the Socket.IO 0.6 `io.Socket` API, no dependencies.
 *
 * Speaks the 0.6 wire protocol (`~m~<len>~m~<data>` frames, lengths in UTF-16
 * code units) over websocket, xhr-polling and jsonp-polling, with fallback,
 * channel subscriptions (`subscribe` / `unsubscribe`, positional
 * `__subscribe__` markers) and opt-in reconnection that re-subscribes.
 *
 *   <script>SOCKETIO_DEFAULTS = {host: "127.0.0.1", port: 9000};</script>
 *   <script src="http://127.0.0.1:9000/socket.io/socket.io.js"></script>
 *   <script>
 *     var socket = new io.Socket();           // host/port from the defaults
 *     socket.on("message", function (m) { console.log(m); });
 *     socket.subscribe("room-1").connect();   // subscribe works before connect
 *     socket.send({text: "hi"});
 *     socket.on("news", function (a, b) { ... });  // the server's socket.emit("news", a, b)
 *   </script>
 *
 * Values keep their type: strings go as text; objects, arrays, numbers,
 * booleans and null as `~j~` JSON.  Served by socketio_wsgi at
 * /<resource>/socket.io.js.
 */
(function (window, document) {
  'use strict';

  var FRAME = '~m~';
  var JSON_MARK = '~j~';
  var HEARTBEAT_MARK = '~h~';
  var RESERVED = {'__subscribe__': 1, '__unsubscribe__': 1, '__array__': 1};
  var MAX_CHANNEL_LENGTH = 256;
  var KNOWN_TRANSPORTS = ['websocket', 'xhr-polling', 'jsonp-polling'];

  var io = {};
  io.version = '0.6.3'; // the protocol version this client speaks
  io.JSONP = [];         // jsonp-polling callbacks: the server answers io.JSONP[i]._("...")

  // ---------------------------------------------------------------- helpers
  function hasOwn(obj, key) {
    return Object.prototype.hasOwnProperty.call(obj, key);
  }

  function indexOf(list, item) {
    for (var i = 0; i < list.length; i++) {
      if (list[i] === item) return i;
    }
    return -1;
  }

  function isObject(value) {
    return value !== null && typeof value === 'object' && !Array.isArray(value);
  }

  // Defaults and options merge one level deep for transportOptions, so that
  // {transportOptions: {'xhr-polling': {timeout: 30000}}} keeps the others.
  function mergeOptions(base, extra) {
    var out = {}, key;
    for (key in base) {
      if (hasOwn(base, key)) out[key] = base[key];
    }
    if (!extra) return out;
    for (key in extra) {
      if (!hasOwn(extra, key) || extra[key] === undefined) continue;
      if (key === 'transportOptions' && isObject(extra[key])) {
        var merged = {}, name;
        var current = isObject(out[key]) ? out[key] : {};
        for (name in current) {
          if (hasOwn(current, name)) merged[name] = mergeOptions(current[name], null);
        }
        for (name in extra[key]) {
          if (hasOwn(extra[key], name)) merged[name] = mergeOptions(merged[name] || {}, extra[key][name]);
        }
        out[key] = merged;
      } else {
        out[key] = extra[key];
      }
    }
    return out;
  }

  // Lone surrogates cannot travel as UTF-8 (encodeURIComponent throws on them);
  // replace each with U+FFFD, which has the same UTF-16 length.
  function wellFormed(text) {
    if (!/[\ud800-\udfff]/.test(text)) return text;
    if (typeof text.toWellFormed === 'function') return text.toWellFormed();
    var out = '';
    for (var i = 0; i < text.length; i++) {
      var c = text.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff) {
        var d = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
        if (d >= 0xdc00 && d <= 0xdfff) {
          out += text.charAt(i) + text.charAt(i + 1);
          i++;
        } else {
          out += '\ufffd';
        }
      } else if (c >= 0xdc00 && c <= 0xdfff) {
        out += '\ufffd';
      } else {
        out += text.charAt(i);
      }
    }
    return out;
  }

  function stamp() {
    var now = new Date().getTime();
    stamp.last = now > (stamp.last || 0) ? now : stamp.last + 1; // unique, cache-busting
    return stamp.last;
  }

  function later(fn) {
    setTimeout(fn, 0);
  }

  // ------------------------------------------------------------------ codec
  // One frame; `data.length` is exactly the UTF-16 code-unit count the protocol wants.
  function frame(data) {
    return FRAME + data.length + FRAME + data;
  }

  // The data of the one message `send(value)` makes.
  function messageData(value) {
    if (value === undefined) return '';
    if (typeof value === 'string') {
      var head = value.substring(0, 3);
      if (head === JSON_MARK || head === HEARTBEAT_MARK) {
        return JSON_MARK + JSON.stringify(value); // would otherwise be read as JSON/heartbeat
      }
      if (hasOwn(RESERVED, value)) {
        throw new Error('"' + value + '" is reserved by the protocol; use subscribe()/unsubscribe()');
      }
      return wellFormed(value);
    }
    if (typeof value === 'function' || typeof value === 'symbol') {
      throw new TypeError('cannot send a ' + typeof value);
    }
    return JSON_MARK + JSON.stringify(value);
  }

  function encode(value) {
    return frame(messageData(value));
  }

  // Split a payload into the data of its frames.  Slices by the declared
  // length (data may contain "~m~"); stops at the first malformed frame and
  // returns what was complete before it.
  function decode(payload) {
    var out = [], pos = 0, end = payload.length;
    while (pos < end) {
      if (payload.substring(pos, pos + 3) !== FRAME) break;
      var digits = pos + 3, stop = digits;
      while (stop < end && stop - digits < 12) {
        var c = payload.charCodeAt(stop);
        if (c < 48 || c > 57) break;
        stop++;
      }
      if (stop === digits || payload.substring(stop, stop + 3) !== FRAME) break;
      var length = parseInt(payload.substring(digits, stop), 10);
      var start = stop + 3;
      if (start + length > end) break;
      out.push(payload.substring(start, start + length));
      pos = start + length;
    }
    return out;
  }

  // How the server sends a named event to a 0.6 client: one `~j~` object
  // {"$event": name, "args": [...]} with nothing else in it.
  var EVENT_KEY = '$event';
  function isNamedEvent(value) {
    if (!isObject(value) || typeof value[EVENT_KEY] !== 'string') return false;
    if (Object.prototype.toString.call(value.args) !== '[object Array]') return false;
    var keys = 0;
    for (var key in value) {
      if (hasOwn(value, key)) keys++;
    }
    return keys === 2;
  }

  function channelName(channel) {
    var name = wellFormed(String(channel));
    if (!name) throw new Error('a channel name may not be empty');
    if (name.length > MAX_CHANNEL_LENGTH) {
      throw new Error('a channel name may not exceed ' + MAX_CHANNEL_LENGTH + ' characters');
    }
    return name;
  }

  function subscribePayload(marker, channel) {
    return frame(marker) + frame(channel);
  }

  io.util = {encode: encode, decode: decode, frame: frame};

  // ----------------------------------------------------------------- events
  function Emitter() {}

  Emitter.prototype.on = function (name, fn) {
    if (typeof fn !== 'function') throw new TypeError('a listener must be a function');
    var events = this._events || (this._events = {});
    (events[name] || (events[name] = [])).push(fn);
    return this;
  };

  Emitter.prototype.once = function (name, fn) {
    var self = this;
    function wrapper() {
      self.removeEvent(name, wrapper);
      return fn.apply(this, arguments);
    }
    wrapper.listener = fn;
    return this.on(name, wrapper);
  };

  // removeEvent(name, fn) drops fn (also as a once listener); removeEvent(name) drops all.
  Emitter.prototype.removeEvent = function (name, fn) {
    var list = this._events && this._events[name];
    if (!list) return this;
    if (fn === undefined) {
      delete this._events[name];
      return this;
    }
    for (var i = list.length - 1; i >= 0; i--) {
      if (list[i] === fn || list[i].listener === fn) list.splice(i, 1);
    }
    return this;
  };

  // emit(name, [arg, ...]).  A listener that throws does not stop the others
  // or the client; the error is rethrown asynchronously so it still shows.
  Emitter.prototype.emit = function (name, args) {
    var list = this._events && this._events[name];
    if (!list) return this;
    list = list.slice();
    for (var i = 0; i < list.length; i++) {
      try {
        list[i].apply(this, args || []);
      } catch (err) {
        later(function () { throw err; });
      }
    }
    return this;
  };

  Emitter.prototype.addListener = Emitter.prototype.on;
  Emitter.prototype.addEvent = Emitter.prototype.on;
  Emitter.prototype.addEventListener = Emitter.prototype.on;
  Emitter.prototype.removeListener = Emitter.prototype.removeEvent;
  Emitter.prototype.removeEventListener = Emitter.prototype.removeEvent;
  Emitter.prototype.fire = Emitter.prototype.emit;

  // ------------------------------------------------------------- transports
  // A transport carries payloads for one session.  `close()` is silent;
  // `fail(reason)` closes and tells the socket.
  function Transport(socket, type) {
    this.socket = socket;
    this.type = type;
    this.sessionid = null;
    this.closed = false;
    this.timer = null;
  }

  Transport.prototype.url = function () {
    return this.socket._baseUrl(this.type);
  };

  Transport.prototype.fail = function (reason) {
    if (this.closed) return;
    this.close();
    this.socket._transportClosed(this, reason);
  };

  Transport.prototype.stopTimer = function () {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  };

  // Every payload (a heartbeat, a message, an empty poll answer) proves life.
  Transport.prototype.resetTimer = function () {
    var self = this;
    this.stopTimer();
    var settings = this.socket.options.transportOptions[this.type] || {};
    var timeout = settings.timeout || 15000;
    this.timer = setTimeout(function () { self.fail('timeout'); }, timeout);
  };

  Transport.prototype.onPayload = function (payload) {
    if (this.closed) return;
    this.resetTimer();
    var messages = decode(payload);
    for (var i = 0; i < messages.length && !this.closed; i++) {
      var data = messages[i];
      if (this.sessionid === null) {
        this.sessionid = data; // the first message of a session is its id
        this.socket._connected(this);
        continue;
      }
      var head = data.substring(0, 3);
      if (head === HEARTBEAT_MARK) {
        this.write(frame(data)); // echo at once; never surfaced
      } else if (head === JSON_MARK) {
        var value;
        try {
          value = JSON.parse(data.substring(3));
        } catch (err) {
          this.socket.emit('error', [err]);
          continue;
        }
        if (isNamedEvent(value)) {
          // A named event the server emitted (socket.emit("name", ...)):
          // fired as that event with its arguments (bytes arrive as base64).
          this.socket.emit(value[EVENT_KEY], value.args);
        } else {
          this.socket.emit('message', [value]);
        }
      } else {
        this.socket.emit('message', [data]);
      }
    }
  };

  // websocket: one payload per text frame, both ways.
  function WebSocketTransport(socket, type) {
    Transport.call(this, socket, type);
    this.ws = null;
  }
  WebSocketTransport.prototype = Object.create(Transport.prototype);

  WebSocketTransport.check = function () {
    return typeof window.WebSocket === 'function' || typeof window.WebSocket === 'object';
  };

  WebSocketTransport.prototype.url = function () {
    var url = this.socket._baseUrl(this.type).replace(/^http/, 'ws');
    return url.substring(0, url.length - 1); // .../websocket (no trailing slash)
  };

  WebSocketTransport.prototype.open = function () {
    var self = this, ws;
    try {
      ws = this.ws = new window.WebSocket(this.url());
    } catch (err) {
      later(function () { self.fail('websocket: ' + err.message); });
      return;
    }
    ws.onmessage = function (event) {
      if (typeof event.data === 'string') self.onPayload(event.data);
    };
    ws.onerror = function (event) {
      if (!self.closed) self.socket.emit('error', [event]);
    };
    ws.onclose = function (event) {
      self.fail('websocket closed (' + event.code + ')');
    };
  };

  WebSocketTransport.prototype.write = function (payload) {
    if (this.ws && this.ws.readyState === 1) this.ws.send(payload);
  };

  WebSocketTransport.prototype.close = function () {
    this.closed = true;
    this.stopTimer();
    var ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onmessage = ws.onerror = ws.onclose = null;
      try { ws.close(); } catch (err) { /* already closed */ }
    }
  };

  // xhr-polling: long-poll GETs; sends are POSTed, one at a time, with
  // everything written meanwhile batched into the next POST.
  function XHRPolling(socket, type) {
    Transport.call(this, socket, type);
    this.getter = null;
    this.poster = null;
    this.outbox = [];
  }
  XHRPolling.prototype = Object.create(Transport.prototype);

  XHRPolling.check = function () {
    return typeof window.XMLHttpRequest === 'function' &&
      'withCredentials' in new window.XMLHttpRequest(); // CORS-capable
  };

  XHRPolling.prototype.open = function () {
    this.poll();
  };

  XHRPolling.prototype.poll = function () {
    var self = this;
    var xhr = this.getter = new window.XMLHttpRequest();
    xhr.open('GET', this.url() + (this.sessionid || '') + '/' + stamp(), true);
    xhr.withCredentials = !!this.socket.options.withCredentials;
    xhr.onload = function () {
      if (self.getter !== xhr) return;
      self.getter = null;
      if (xhr.status !== 200) return self.fail('poll answered HTTP ' + xhr.status);
      self.onPayload(xhr.responseText);
      if (!self.closed) self.poll();
    };
    xhr.onerror = xhr.ontimeout = function () {
      if (self.getter === xhr) self.fail('poll failed');
    };
    xhr.send(null);
  };

  XHRPolling.prototype.write = function (payload) {
    if (this.closed) return;
    this.outbox.push(payload);
    if (!this.poster) this.flush();
  };

  XHRPolling.prototype.flush = function () {
    if (this.closed || !this.outbox.length) return;
    var data = this.outbox.join('');
    this.outbox = [];
    this.post(data);
  };

  XHRPolling.prototype.post = function (data) {
    var self = this;
    var xhr = this.poster = new window.XMLHttpRequest();
    xhr.open('POST', this.url() + this.sessionid + '/send', true);
    xhr.withCredentials = !!this.socket.options.withCredentials;
    xhr.setRequestHeader('Content-Type', 'application/x-www-form-urlencoded; charset=utf-8');
    xhr.onload = function () {
      if (self.poster !== xhr) return;
      self.poster = null;
      if (xhr.status !== 200) return self.fail('send answered HTTP ' + xhr.status);
      self.flush();
    };
    xhr.onerror = xhr.ontimeout = function () {
      if (self.poster === xhr) self.fail('send failed');
    };
    xhr.send('data=' + encodeURIComponent(data));
  };

  XHRPolling.prototype.close = function () {
    this.closed = true;
    this.stopTimer();
    this.outbox = [];
    var requests = [this.getter, this.poster];
    this.getter = this.poster = null;
    for (var i = 0; i < requests.length; i++) {
      if (requests[i]) {
        try { requests[i].abort(); } catch (err) { /* nothing to abort */ }
      }
    }
  };

  // jsonp-polling: polls are <script> loads answered with io.JSONP[i]._("...");
  // sends are form-encoded POSTs made with fetch in no-cors mode, so (like the
  // classic hidden form) they need no CORS headers, without the form's newline
  // and charset rewriting.
  function JSONPPolling(socket, type) {
    XHRPolling.call(this, socket, type);
    this.index = io.JSONP.length;
    this.start = stamp();
    this.script = null;
    this.answered = false;
    this.abort = null;
    io.JSONP.push(this);
  }
  JSONPPolling.prototype = Object.create(XHRPolling.prototype);
  var DEAD_CALLBACK = {_: function () {}};

  JSONPPolling.check = function () {
    return !!(document && document.createElement) && typeof window.fetch === 'function';
  };

  JSONPPolling.prototype._ = function (payload) {
    if (this.closed || this.answered) return;
    this.answered = true;
    this.onPayload(String(payload));
  };

  JSONPPolling.prototype.poll = function () {
    var self = this;
    var script = this.script = document.createElement('script');
    this.answered = false;
    script.async = true;
    script.src = this.url() + (this.sessionid || '') + '/' + stamp() + '/' + this.index;
    script.onload = function () {
      if (self.script !== script) return;
      self.removeScript();
      if (!self.answered) return self.fail('poll answer was not a callback');
      if (!self.closed) self.poll();
    };
    script.onerror = function () {
      if (self.script === script) self.fail('poll failed');
    };
    (document.head || document.getElementsByTagName('head')[0] || document.documentElement)
      .appendChild(script);
  };

  JSONPPolling.prototype.removeScript = function () {
    var script = this.script;
    this.script = null;
    if (script) {
      script.onload = script.onerror = null;
      if (script.parentNode) script.parentNode.removeChild(script);
    }
  };

  JSONPPolling.prototype.post = function (data) {
    var self = this;
    var controller = typeof window.AbortController === 'function' ? new window.AbortController() : null;
    var token = this.poster = {};
    this.abort = controller;
    window.fetch(this.url() + this.sessionid + '/' + this.start + '/' + this.index, {
      method: 'POST',
      mode: 'no-cors',
      credentials: 'omit',
      cache: 'no-store',
      headers: {'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8'},
      body: 'data=' + encodeURIComponent(data),
      signal: controller ? controller.signal : undefined
    }).then(function () {
      if (self.poster !== token) return;
      self.poster = null;
      self.flush();
    }, function () {
      if (self.poster === token) self.fail('send failed');
    });
  };

  JSONPPolling.prototype.close = function () {
    this.closed = true;
    io.JSONP[this.index] = DEAD_CALLBACK; // a late answer lands here; the transport can go
    this.stopTimer();
    this.outbox = [];
    this.poster = null;
    this.removeScript();
    if (this.abort) {
      try { this.abort.abort(); } catch (err) { /* done already */ }
      this.abort = null;
    }
  };

  io.Transport = {
    'websocket': WebSocketTransport,
    'xhr-polling': XHRPolling,
    'jsonp-polling': JSONPPolling
  };

  // ---------------------------------------------------------------- options
  io.defaults = {
    host: null,          // default: the page's host name
    port: null,          // default: the page's port, else 443/80
    secure: null,        // default: true on https pages
    resource: 'socket.io',
    transports: KNOWN_TRANSPORTS.slice(),
    transportOptions: {
      'websocket': {timeout: 15000},
      'xhr-polling': {timeout: 25000},
      'jsonp-polling': {timeout: 25000}
    },
    rememberTransport: true,
    connectTimeout: 5000,
    tryTransportsOnConnectTimeout: true,
    reconnect: false,
    reconnectionDelay: 500,
    maxReconnectionAttempts: 10,
    // Send cookies with cross-origin polls (our server allows it for allowed
    // origins; the node 0.6 server does not, so it is off unless asked for).
    withCredentials: false,
    document: null
  };

  // io.configure({host, port, secure, resource, ...any option}) sets what
  // every later `new io.Socket()` starts from.
  io.configure = function (defaults) {
    io.defaults = mergeOptions(io.defaults, defaults);
    return io;
  };

  // ----------------------------------------------------------------- Socket
  function Socket(host, options) {
    if (!(this instanceof Socket)) return new Socket(host, options);
    var opts = mergeOptions(io.defaults, options);
    var location = window.location || {};
    host = host || opts.host || location.hostname || 'localhost';
    if (/^[a-z][a-z0-9+.\-]*:\/\//i.test(host)) { // a URL: take its parts
      var url = new window.URL(host);
      if (opts.secure === null || opts.secure === undefined) opts.secure = url.protocol === 'https:';
      if (!opts.port && url.port) opts.port = url.port;
      host = url.hostname;
    }
    if (opts.secure === null || opts.secure === undefined) opts.secure = location.protocol === 'https:';
    opts.secure = !!opts.secure;
    if (!opts.port) opts.port = location.port || (opts.secure ? 443 : 80);
    opts.resource = String(opts.resource).replace(/^\/+|\/+$/g, '');
    opts.host = host;
    this.host = host;
    this.options = opts;
    this.connected = false;
    this.connecting = false;
    this.reconnecting = false;
    this.transport = null;
    this.channels = []; // channels held; re-subscribed on every new session
    this._events = {};
    this._queue = [];   // payloads waiting for a session
    this._candidates = [];
    this._connectTimer = null;
    this._reconnectTimer = null;
    this._attempts = 0;
    this._delay = 0;
    this._lastType = null;
    this._stopped = false; // disconnect() was called: no automatic reconnect
  }
  Socket.prototype = Object.create(Emitter.prototype);
  Socket.prototype.constructor = Socket;

  Socket.prototype._baseUrl = function (type) {
    var host = this.host.indexOf(':') >= 0 && this.host.charAt(0) !== '[' ? '[' + this.host + ']' : this.host;
    return (this.options.secure ? 'https' : 'http') + '://' + host + ':' + this.options.port +
      '/' + this.options.resource + '/' + type + '/';
  };

  Socket.prototype._cookieDocument = function () {
    return this.options.document || document;
  };

  Socket.prototype._rememberedType = function () {
    if (!this.options.rememberTransport) return null;
    var match = /(?:^|;\s*)socketio=([^;]*)/.exec(this._cookieDocument().cookie || '');
    return match ? decodeURIComponent(match[1]) : null;
  };

  // The transports to try, in order: the one that last worked (or the
  // remembered one) first, then the rest of `transports`.
  Socket.prototype._transportOrder = function () {
    var order = [], wanted = this.options.transports || [];
    for (var i = 0; i < wanted.length; i++) {
      var Type = hasOwn(io.Transport, wanted[i]) ? io.Transport[wanted[i]] : null;
      if (Type && Type.check() && indexOf(order, wanted[i]) < 0) order.push(wanted[i]);
    }
    var first = this._lastType || this._rememberedType();
    var at = first ? indexOf(order, first) : -1;
    if (at > 0) order.unshift(order.splice(at, 1)[0]);
    return order;
  };

  Socket.prototype.connect = function (fn) {
    if (typeof fn === 'function') this.once('connect', fn);
    this._stopped = false;
    if (this.connected || this.connecting) return this;
    if (this._reconnectTimer) {
      clearTimeout(this._reconnectTimer);
      this._reconnectTimer = null;
    }
    this._round();
    return this;
  };

  Socket.prototype._round = function () {
    this._candidates = this._transportOrder();
    this._next(); // with no usable transport at all, the round fails at once
  };

  Socket.prototype._next = function () {
    var self = this;
    var type = this._candidates.shift();
    if (!type) return this._roundFailed();
    this.connecting = true;
    this.emit('connecting', [type]);
    if (!this.connecting) return; // a listener called disconnect()
    var transport = this.transport = new io.Transport[type](this, type);
    this._connectTimer = setTimeout(function () {
      self._connectTimer = null;
      if (self.transport === transport && !self.connected) {
        transport.close();
        self._attemptFailed();
      }
    }, this.options.connectTimeout);
    transport.open();
  };

  Socket.prototype._attemptFailed = function () {
    this.transport = null;
    if (this.options.tryTransportsOnConnectTimeout && this._candidates.length) {
      this._next();
    } else {
      this._roundFailed();
    }
  };

  Socket.prototype._roundFailed = function () {
    this.connecting = false;
    this.transport = null;
    this._candidates = [];
    if (this.reconnecting) {
      this._scheduleReconnect();
    } else {
      this.emit('connect_failed');
    }
  };

  // Called by the transport when the session id arrives.
  Socket.prototype._connected = function (transport) {
    if (transport !== this.transport) return;
    if (this._connectTimer) clearTimeout(this._connectTimer);
    this._connectTimer = null;
    this.connecting = false;
    this.connected = true;
    this._lastType = transport.type;
    if (this.options.rememberTransport) {
      this._cookieDocument().cookie = 'socketio=' + encodeURIComponent(transport.type) + '; path=/';
    }
    var batch = this._queue.join('');
    this._queue = [];
    if (batch) transport.write(batch);
    this.emit('connect');
    if (this.reconnecting && this.connected) {
      var attempts = this._attempts;
      this.reconnecting = false;
      this._attempts = 0;
      this.emit('reconnect', [transport.type, attempts]);
    }
  };

  // Called by the transport when it fails or closes.
  Socket.prototype._transportClosed = function (transport, reason) {
    if (transport !== this.transport) return;
    if (this.connected) {
      this._lost(reason);
      if (this.options.reconnect && !this._stopped && !this.reconnecting &&
          !this.connected && !this.connecting) {
        this._startReconnect();
      }
    } else if (this.connecting) {
      if (this._connectTimer) clearTimeout(this._connectTimer);
      this._connectTimer = null;
      this._attemptFailed();
    }
  };

  // A new session starts empty: the queue is reset to the subscriptions we hold.
  Socket.prototype._lost = function (reason) {
    this.connected = false;
    this.transport = null;
    this._queue = [];
    for (var i = 0; i < this.channels.length; i++) {
      this._queue.push(subscribePayload('__subscribe__', this.channels[i]));
    }
    this.emit('disconnect', [reason]);
  };

  Socket.prototype._startReconnect = function () {
    this.reconnecting = true;
    this._attempts = 0;
    this._delay = this.options.reconnectionDelay;
    this._scheduleReconnect();
  };

  Socket.prototype._scheduleReconnect = function () {
    var self = this;
    if (this._attempts >= this.options.maxReconnectionAttempts) {
      this.reconnecting = false;
      this._attempts = 0;
      this.emit('reconnect_failed');
      return;
    }
    this._attempts++;
    var delay = this._delay;
    this._delay *= 2;
    this.emit('reconnecting', [delay, this._attempts]);
    if (!this.reconnecting) return; // a listener called disconnect()
    this._reconnectTimer = setTimeout(function () {
      self._reconnectTimer = null;
      if (self.reconnecting && !self.connected && !self.connecting) self._round();
    }, delay);
  };

  Socket.prototype.send = function (value) {
    var payload = encode(value);
    if (this.connected) {
      this.transport.write(payload);
    } else {
      this._queue.push(payload);
    }
    return this;
  };

  Socket.prototype.subscribe = function (channel) {
    var name = channelName(channel);
    if (indexOf(this.channels, name) >= 0) return this;
    this.channels.push(name);
    var payload = subscribePayload('__subscribe__', name);
    if (this.connected) {
      this.transport.write(payload);
    } else {
      this._queue.push(payload);
    }
    return this;
  };

  Socket.prototype.unsubscribe = function (channel) {
    var name = channelName(channel);
    var at = indexOf(this.channels, name);
    if (at < 0) return this;
    this.channels.splice(at, 1);
    if (this.connected) {
      this.transport.write(subscribePayload('__unsubscribe__', name));
    } else { // the next session never had it: just drop the queued subscribe
      var queued = indexOf(this._queue, subscribePayload('__subscribe__', name));
      if (queued >= 0) this._queue.splice(queued, 1);
    }
    return this;
  };

  // Close the connection and stop reconnecting.  Subscriptions are kept and
  // sent again by the next connect(); the server notices the departure at
  // once on websocket and after its close timeout on the polling transports.
  Socket.prototype.disconnect = function () {
    this._stopped = true;
    if (this._connectTimer) clearTimeout(this._connectTimer);
    if (this._reconnectTimer) clearTimeout(this._reconnectTimer);
    this._connectTimer = this._reconnectTimer = null;
    this.reconnecting = false;
    this.connecting = false;
    this._candidates = [];
    var transport = this.transport, wasConnected = this.connected;
    if (transport) transport.close();
    if (wasConnected) {
      this._lost('client');
    } else {
      this.transport = null;
    }
    return this;
  };

  io.Socket = Socket;
  io.Emitter = Emitter;

  window.io = io;
  if (window.SOCKETIO_DEFAULTS) io.configure(window.SOCKETIO_DEFAULTS);
})(window, window.document);
