"""Benchmarks of socketio_wsgi against real peers (see ``python -m bench --help``).

Not part of the installed package and not tests: numbers live here, the test
suite only checks that ``python -m bench --quick`` runs.
"""
