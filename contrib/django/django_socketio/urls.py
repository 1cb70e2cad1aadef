"""``path("", include("django_socketio.urls"))``.

- ``<resource>/socket.io.js`` (name ``socketio_client``): the browser client,
  for pages served by a server that does not speak Socket.IO (``runserver``);
- ``<resource>/...`` (name ``socketio``): a plain 404 that explains why, when a
  Socket.IO request reaches Django instead of the socket server.

The socket server answers both paths itself before Django sees them.
"""

import re

from django.urls import path, re_path

from . import conf, views

_resource = conf.resource()

urlpatterns = [
    path(f"{_resource}/socket.io.js", views.client_js, name="socketio_client"),
    re_path(rf"^{re.escape(_resource)}/", views.socketio, name="socketio"),
]
