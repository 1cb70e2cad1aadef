// The chat room page: join under a name, then talk; plain JavaScript and the
// socketio_wsgi client loaded by {% socketio %} (which also says where to connect).
(function () {
  'use strict';

  var room = JSON.parse(document.getElementById('chat-room').textContent);
  var messages = document.getElementById('messages');
  var users = document.getElementById('users');
  var status = document.getElementById('status');
  var form = document.getElementById('send');
  var input = document.getElementById('text');
  var button = document.getElementById('submit');
  var name = null;       // chosen name; sent again after a reconnect
  var joined = false;

  var socket = new io.Socket();
  socket.subscribe('room-' + room); // kept, and sent again on every new session

  function pad(n) { return (n < 10 ? '0' : '') + n; }

  function add(kind, who, text) {
    var atBottom = messages.scrollTop + messages.clientHeight >= messages.scrollHeight - 4;
    var item = document.createElement('li');
    item.className = kind;
    var now = new Date();
    var time = document.createElement('span');
    time.className = 'time';
    time.textContent = pad(now.getHours()) + ':' + pad(now.getMinutes()) + ':' + pad(now.getSeconds());
    item.appendChild(time);
    if (who) {
      var label = document.createElement('span');
      label.className = 'name';
      label.textContent = who;
      item.appendChild(label);
    }
    item.appendChild(document.createTextNode(text));
    messages.appendChild(item);
    if (atBottom) messages.scrollTop = messages.scrollHeight;
  }

  function showUsers(names) {
    users.textContent = '';
    names.slice().sort().forEach(function (n) {
      var item = document.createElement('li');
      item.textContent = n;
      users.appendChild(item);
    });
  }

  function currentUsers() {
    return Array.prototype.map.call(users.children, function (li) { return li.textContent; });
  }

  function start() {
    socket.send({room: room, action: 'start', name: name});
  }

  socket.on('connect', function () {
    status.textContent = 'connected';
    if (name) start(); // a reconnect: join again under the same name
  });

  socket.on('message', function (data) {
    switch (data.action) {
      case 'in-use':
        name = null;
        alert('That name is already in use in this room: choose another one.');
        input.value = '';
        input.focus();
        break;
      case 'started':
        joined = true;
        showUsers(data.users);
        button.textContent = 'Send';
        input.placeholder = 'Say something';
        input.value = '';
        break;
      case 'join':
        if (currentUsers().indexOf(data.name) < 0) showUsers(currentUsers().concat([data.name]));
        add('presence', '', data.name + ' joined');
        break;
      case 'leave':
        showUsers(currentUsers().filter(function (n) { return n !== data.name; }));
        add('presence', '', data.name + ' left');
        break;
      case 'message':
        add('message', data.name, data.message);
        break;
      case 'system':
        add('system', 'SYSTEM', data.message);
        break;
    }
  });

  // Reconnect for as long as the page is open: one attempt a second.
  function reconnectSoon() {
    status.textContent = 'reconnecting…';
    setTimeout(function () { socket.connect(); }, 1000);
  }
  socket.on('disconnect', function () {
    joined = false;
    showUsers([]);
    reconnectSoon();
  });
  socket.on('connect_failed', reconnectSoon);

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text || !socket.connected) return;
    if (!joined) {
      name = text;
      start();
    } else {
      socket.send({room: room, action: 'message', message: text});
      input.value = '';
    }
  });

  document.getElementById('leave').addEventListener('click', function () {
    window.location.href = '/';
  });

  socket.connect();
})();
