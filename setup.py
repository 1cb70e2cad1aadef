"""Metadata lives in setup.cfg; only the package list is computed here, so a
new sub-package (of socketio_wsgi or of the Django app in contrib/django) is
never left out of the wheel."""
from setuptools import find_namespace_packages, find_packages, setup

DJANGO_APP = "contrib/django/django_socketio"

setup(packages=[
    # namespace packages too: socketio_wsgi/static/... holds the browser client
    *find_namespace_packages(include=["socketio_wsgi", "socketio_wsgi.*"], exclude=["*.__pycache__"]),
    "django_socketio",
    *(f"django_socketio.{name}" for name in find_packages(DJANGO_APP)),
])
