"""An opt-in status endpoint: JSON, Prometheus text, and a self-refreshing page.

Off unless ``status_token`` or ``status_addresses`` is set.  A request is let
in when it carries the token (``Authorization: Bearer <token>`` or
``?token=<token>``) or comes from an allowed address (IPs or CIDR networks);
anything else gets 403.  Paths under the resource:

- ``status``          JSON
- ``status/metrics``  Prometheus text exposition format
- ``status/page``     an HTML page that shows the same figures every 2 s
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import time
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence
from urllib.parse import parse_qs

from .http import respond, text_response

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine

__all__ = ["StatusEndpoint", "snapshot", "prometheus_text"]


def snapshot(engine: "Engine") -> dict:
    """Every figure the endpoint shows, as plain JSON-able data."""
    by_transport: Dict[str, int] = {}
    for session in list(engine.sessions.values()):
        by_transport[session.transport] = by_transport.get(session.transport, 0) + 1
    stats = engine.stats
    backend = engine.backend
    channels = backend.channel_sizes()
    return {
        "uptime_seconds": round(time.time() - engine.started, 3),
        "sessions": {
            "total": len(engine.sessions),
            "by_transport": by_transport,
            "opened_total": stats.sessions_opened,
        },
        "channels": {"count": len(channels), "sizes": dict(sorted(channels.items())[:1000])},
        "messages": {"in": stats.messages_in, "out": stats.messages_out},
        "volume": {"chars_in": stats.chars_in, "bytes_out": stats.bytes_out},
        "disconnects": dict(stats.disconnects),
        "errors": {"handler": stats.handler_errors, "protocol": stats.protocol_errors},
        "forwarding": {"sent": stats.forwarded, "served": stats.served_for_others},
        "backend": {
            "name": getattr(backend, "name", type(backend).__name__),
            "state": getattr(backend, "state", "ok"),
        },
    }


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(data: dict) -> str:
    lines: List[str] = []

    def metric(name: str, kind: str, help_text: str, samples: Dict[str, float]) -> None:
        lines.append(f"# HELP socketio_{name} {help_text}")
        lines.append(f"# TYPE socketio_{name} {kind}")
        for labels, value in samples.items():
            lines.append(f"socketio_{name}{labels} {value}")

    metric(
        "sessions",
        "gauge",
        "Open sessions by transport.",
        {f'{{transport="{_label(t)}"}}': n for t, n in data["sessions"]["by_transport"].items()} or {"": 0},
    )
    metric(
        "sessions_opened_total",
        "counter",
        "Sessions opened since start.",
        {"": data["sessions"]["opened_total"]},
    )
    metric("channels", "gauge", "Channels with at least one subscriber.", {"": data["channels"]["count"]})
    metric(
        "channel_subscribers",
        "gauge",
        "Subscribers per channel.",
        {f'{{channel="{_label(c)}"}}': n for c, n in data["channels"]["sizes"].items()},
    )
    metric(
        "messages_received_total", "counter", "Messages received from clients.", {"": data["messages"]["in"]}
    )
    metric("messages_sent_total", "counter", "Messages written to clients.", {"": data["messages"]["out"]})
    metric(
        "received_characters_total",
        "counter",
        "Characters of payload received.",
        {"": data["volume"]["chars_in"]},
    )
    metric("sent_bytes_total", "counter", "Bytes of payload written.", {"": data["volume"]["bytes_out"]})
    metric(
        "disconnects_total",
        "counter",
        "Sessions ended, by reason.",
        {f'{{reason="{_label(r)}"}}': n for r, n in data["disconnects"].items()},
    )
    metric(
        "handler_errors_total",
        "counter",
        "Exceptions raised by event handlers.",
        {"": data["errors"]["handler"]},
    )
    metric(
        "protocol_errors_total", "counter", "Malformed payloads received.", {"": data["errors"]["protocol"]}
    )
    metric(
        "forwarded_requests_total",
        "counter",
        "Requests sent to (sent) or served for (served) the process owning their session.",
        {f'{{direction="{way}"}}': n for way, n in data["forwarding"].items()},
    )
    metric(
        "backend_up",
        "gauge",
        "1 when the channel backend is connected.",
        {f'{{backend="{_label(data["backend"]["name"])}"}}': 1 if data["backend"]["state"] == "ok" else 0},
    )
    return "\n".join(lines) + "\n"


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>socketio-wsgi status</title>
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
 h1{font-size:1.3em} table{border-collapse:collapse;margin:0 0 1.5em}
 td,th{border:1px solid #ccc;padding:.3em .8em;text-align:left} th{background:#f3f3f3}
 #error{color:#b00}
</style></head><body>
<h1>socketio-wsgi status</h1>
<p>Updated <span id="updated">never</span> <span id="error"></span></p>
<div id="tables"></div>
<script>
(function () {
  var token = new URLSearchParams(location.search).get("token");
  var url = location.pathname.replace(/\\/page$/, "") + (token ? "?token=" + encodeURIComponent(token) : "");
  function table(title, rows) {
    var t = document.createElement("table"), head = t.insertRow();
    var th = document.createElement("th"); th.colSpan = 2; th.textContent = title; head.appendChild(th);
    rows.forEach(function (r) {
      var tr = t.insertRow(); tr.insertCell().textContent = r[0]; tr.insertCell().textContent = r[1];
    });
    return t;
  }
  function pairs(obj) { return Object.keys(obj).map(function (k) { return [k, obj[k]]; }); }
  function render(d) {
    var box = document.getElementById("tables"); box.textContent = "";
    box.appendChild(table("Sessions", [["total", d.sessions.total],
                                       ["opened since start", d.sessions.opened_total]]
      .concat(pairs(d.sessions.by_transport))));
    box.appendChild(table("Messages", [["received", d.messages["in"]], ["sent", d.messages.out],
      ["characters received", d.volume.chars_in], ["bytes sent", d.volume.bytes_out]]));
    box.appendChild(table("Channels (" + d.channels.count + ")", pairs(d.channels.sizes)));
    box.appendChild(table("Disconnects by reason", pairs(d.disconnects)));
    box.appendChild(table("Errors", [["handler", d.errors.handler], ["protocol", d.errors.protocol]]));
    box.appendChild(table("Backend", [["name", d.backend.name], ["state", d.backend.state],
      ["uptime (s)", d.uptime_seconds]]));
    document.getElementById("updated").textContent = new Date().toLocaleTimeString();
    document.getElementById("error").textContent = "";
  }
  function refresh() {
    fetch(url, {cache: "no-store"}).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json();
    }).then(render).catch(function (e) { document.getElementById("error").textContent = String(e); });
  }
  refresh(); setInterval(refresh, 2000);
})();
</script></body></html>
"""


class StatusEndpoint:
    def __init__(self, engine: "Engine", token: Optional[str], addresses: Sequence[str]):
        self.engine = engine
        self.token = token
        self.networks = [ipaddress.ip_network(a, strict=False) for a in addresses]

    @property
    def enabled(self) -> bool:
        return bool(self.token or self.networks)

    def allowed(self, environ: dict) -> bool:
        if self.token:
            header = environ.get("HTTP_AUTHORIZATION", "")
            given = header[7:] if header.startswith("Bearer ") else ""
            if not given:
                given = parse_qs(environ.get("QUERY_STRING", "")).get("token", [""])[0]
            if given and hmac.compare_digest(given.encode(), self.token.encode()):
                return True
        try:
            remote = ipaddress.ip_address(environ.get("REMOTE_ADDR", ""))
        except ValueError:
            return False
        return any(remote in net for net in self.networks)

    def serve(self, view: str, environ: dict, start_response: Callable) -> List[bytes]:
        if view not in ("", "metrics", "page"):
            return text_response(start_response, 404, "status views: status, status/metrics, status/page")
        if not self.allowed(environ):
            return text_response(start_response, 403, "status: token or allowed address required")
        if view == "page":
            return respond(
                start_response,
                200,
                PAGE.encode(),
                "text/html; charset=UTF-8",
                [("X-Content-Type-Options", "nosniff")],
            )
        data = snapshot(self.engine)
        if view == "metrics":
            return respond(
                start_response,
                200,
                prometheus_text(data).encode(),
                "text/plain; version=0.0.4; charset=utf-8",
            )
        return respond(start_response, 200, json.dumps(data).encode(), "application/json")
