"""Members-only chat rooms on a Flask application (see app.py)."""
