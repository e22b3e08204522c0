"""``minidl serve``: a local web page with a masked-LM teacher and student side by side, the
sentiment classifiers' per-word sub-scores, and three views of what happens inside: the autograd
graph of a typed expression or a classifier's loss (expression.py: the little language; graphs.py),
the attention maps (attention.py) and the curves of a folder of runs (runs.py). server.py: the
HTTP API; page.html and views.js: the page."""
from .server import Models, make_server

__all__ = ["Models", "make_server"]
