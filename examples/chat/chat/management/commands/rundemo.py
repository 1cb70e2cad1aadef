"""``manage.py rundemo [addrport] [--noreload]``: migrate, then runserver_socketio."""
import os

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from django_socketio import bootstrap


class Command(BaseCommand):
    help = "Create or update the demo database, then serve the chat (default 127.0.0.1:9000)."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", help="as for runserver_socketio")
        parser.add_argument("--noreload", action="store_false", dest="use_reloader")

    def handle(self, addrport=None, use_reloader=True, **options):
        call_command("migrate", interactive=False, verbosity=0)
        first_run = not bootstrap.PATCHED_EARLY and os.environ.get("RUN_MAIN") != "true"
        if first_run:
            self.stdout.write(f"Database ready: {settings.DATABASES['default']['NAME']}\n"
                              "For the staff page /system_message/ create a staff user with\n"
                              "  python examples/chat/manage.py createsuperuser\n")
        call_command("runserver_socketio", *([addrport] if addrport else []), use_reloader=use_reloader)
