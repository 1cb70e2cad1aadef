// A tiny echo app on the real Socket.IO 0.6.18 node server, for browser tests.
//
// Usage: node echo_server.js <node_modules dir> <port> [transport,...]
// (default transports: websocket,xhr-polling,jsonp-polling)
// Binds 127.0.0.1 only.  Prints "listening <port>" once ready.  For every
// message it receives it sends back {echo: <value>, type: <kind>} (so the test
// sees what the server decoded), and for strings also the string itself.
'use strict';

// socket.io 0.6 reads process.EventEmitter, which node removed long ago.
process.EventEmitter = require('events').EventEmitter;

var path = require('path');
var http = require('http');

var modules = process.argv[2];
var port = parseInt(process.argv[3], 10);
var transports = (process.argv[4] || 'websocket,xhr-polling,jsonp-polling').split(',');
if (!modules || !(port > 0)) {
  console.error('usage: node echo_server.js <node_modules dir> <port> [transports]');
  process.exit(2);
}
var io = require(path.join(modules, 'socket.io'));

function kind(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

var server = http.createServer(function (req, res) {
  res.writeHead(404, {'Content-Type': 'text/plain'});
  res.end('not found');
});

// No flashsocket, so no Flash policy server on port 843.
var options = {log: false, transports: transports, flashPolicyServer: false};
var listener = io.listen(server, options);

listener.on('connection', function (client) {
  client.on('message', function (message) {
    if (typeof message === 'string') client.send(message);
    client.send({echo: message, type: kind(message)});
  });
});

server.listen(port, '127.0.0.1', function () {
  process.stdout.write('listening ' + port + '\n');
});

// Stop when the test that started us goes away (stdin closes).
process.stdin.on('end', function () { process.exit(0); });
process.stdin.resume();
