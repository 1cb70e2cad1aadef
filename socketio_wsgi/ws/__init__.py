"""The websocket layer: a pure protocol object and its gevent driver.

* :mod:`~socketio_wsgi.ws.protocol` — RFC 6455 framing, fragments, limits and
  the close handshake as a state machine without I/O;
* :mod:`~socketio_wsgi.ws.deflate` — permessage-deflate (RFC 7692);
* :mod:`~socketio_wsgi.ws.handshake` — the opening handshake checks;
* :mod:`~socketio_wsgi.ws.connection` — the gevent driver (one writer, one
  close path, write deadlines).

Apps use :func:`socketio_wsgi.websocket.accept`.
"""
