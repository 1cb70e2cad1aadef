"""Chat rooms on a plain WSGI application (see app.py)."""
