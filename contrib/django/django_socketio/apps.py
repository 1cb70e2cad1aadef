"""The app: checks the settings and loads every app's ``events`` module at start-up."""

from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import Iterable, List, Optional

from django.apps import AppConfig, apps

__all__ = ["SocketIOConfig", "autodiscover"]

log = logging.getLogger("django_socketio")


def autodiscover(app_configs: Optional[Iterable[AppConfig]] = None) -> List[str]:
    """Import ``<app>.events`` for every installed app that has one.

    An app without an ``events`` module is skipped; an ``events`` module that
    exists but fails to import raises its own error, with its traceback (0.3.9
    swallowed it and the handlers silently never fired).  Returns the names
    of the apps whose events were loaded.
    """
    loaded = []
    for app_config in apps.get_app_configs() if app_configs is None else app_configs:
        if app_config.name == __package__:  # our own events module only re-exports
            continue
        name = f"{app_config.name}.events"
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:  # the app is a module, not a package
            spec = None
        if spec is None:
            continue
        importlib.import_module(name)
        log.info("loaded events from %s", app_config.name)
        loaded.append(app_config.name)
    return loaded


class SocketIOConfig(AppConfig):
    name = "django_socketio"
    label = "django_socketio"
    verbose_name = "Socket.IO"

    #: the apps whose ``events`` module was loaded, in order
    events_loaded: List[str] = []

    def ready(self) -> None:
        from . import checks, conf  # noqa: F401  (checks registers the system checks)

        conf.check()
        self.events_loaded = autodiscover()
