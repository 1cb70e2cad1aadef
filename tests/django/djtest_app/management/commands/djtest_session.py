"""``manage.py djtest_session NAME [--staff]``: print a logged-in session key."""
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--staff", action="store_true")

    def handle(self, username, staff=False, **options):
        user, _ = get_user_model().objects.get_or_create(username=username, defaults={"is_staff": staff})
        user.set_password("pw-" + username)
        user.save()
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.save()
        self.stdout.write(session.session_key)
