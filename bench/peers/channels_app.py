"""Peer: Django Channels 4 on daphne with the in-memory channel layer.

The same text protocol as :mod:`bench.peers.plain_app` (``hello``, ``sub:``,
``pub:<channel>:<data>``, echo).  ``pub`` uses ``group_send``, so each member's
consumer receives the event and writes it.  Heartbeats are daphne's websocket
pings (``--ping-interval 10``).  No long polling: Channels has no such transport.

Run: ``daphne -v 0 -b 127.0.0.1 -p 8003 --ping-interval 10 bench.peers.channels_app:application``.
"""
import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only",
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=["channels"],
        CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer",
                                    "CONFIG": {"capacity": 10_000}}},
        ROOT_URLCONF=__name__,
        USE_TZ=True,
    )
    django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

urlpatterns: list = []


class BenchConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.joined = []
        await self.accept()
        await self.send(text_data="hello")

    async def disconnect(self, code) -> None:
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if text_data.startswith("sub:"):
            group = text_data[4:]
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.append(group)
        elif text_data.startswith("pub:"):
            group, _, data = text_data[4:].partition(":")
            await self.channel_layer.group_send(group, {"type": "fan", "text": data,
                                                        "sender": self.channel_name})
        else:
            await self.send(text_data=text_data)

    async def fan(self, event) -> None:
        if event["sender"] != self.channel_name:
            await self.send(text_data=event["text"])


application = ProtocolTypeRouter({
    "websocket": URLRouter([path("ws/", BenchConsumer.as_asgi())]),
})
