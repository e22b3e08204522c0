"""``minidl serve``: a local web page with a masked-LM teacher and student side by side, and the
sentiment classifiers' per-word sub-scores (server.py: the HTTP API; page.html: the page)."""
from .server import Models, make_server

__all__ = ["Models", "make_server"]
