"""Settings of the test project (in-process tests and subprocess servers).

``DJTEST_DB`` names the SQLite file of a subprocess server; ``DJTEST_EVENTS``
a file its handlers append lifecycle lines to; ``DJTEST_EXTRA_APPS`` adds
apps (comma-separated); ``DJTEST_DEBUG=1`` turns DEBUG on; ``DJTEST_BACKEND``
sets ``SOCKETIO_BACKEND``; ``DJTEST_ALLOWED_HOSTS`` (comma-separated) replaces
``ALLOWED_HOSTS``.
"""
import os

SECRET_KEY = "djtest-only-not-a-secret"
DEBUG = os.environ.get("DJTEST_DEBUG") == "1"
ALLOWED_HOSTS = (os.environ["DJTEST_ALLOWED_HOSTS"].split(",") if os.environ.get("DJTEST_ALLOWED_HOSTS")
                 else ["127.0.0.1", "localhost", "[::1]"])
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "django_socketio",
    "djtest_app",
] + [app for app in os.environ.get("DJTEST_EXTRA_APPS", "").split(",") if app]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "djtest_app.middleware.refuse_flagged",
]
ROOT_URLCONF = "djtest.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                         "NAME": os.environ.get("DJTEST_DB", ":memory:")}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
STATIC_URL = "/static/"
SOCKETIO_BACKEND = os.environ.get("DJTEST_BACKEND") or None
USE_TZ = True
