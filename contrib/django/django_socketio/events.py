"""The event decorators, as ``django_socketio.events`` exported them.

They are socketio_wsgi's own objects, so handlers registered here and through
``socketio_wsgi.events`` are one and the same registry::

    from django_socketio.events import on_message

    @on_message(channel="^room-")
    def message(request, socket, context, message):
        socket.send_and_broadcast_channel(message)
"""

from socketio_wsgi.errors import EventError
from socketio_wsgi.events import (
    Event,
    on_connect,
    on_disconnect,
    on_error,
    on_event,
    on_finish,
    on_message,
    on_subscribe,
    on_unsubscribe,
)

__all__ = [
    "Event",
    "EventError",
    "on_connect",
    "on_message",
    "on_subscribe",
    "on_unsubscribe",
    "on_error",
    "on_disconnect",
    "on_finish",
    "on_event",
]
