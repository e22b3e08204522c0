"""A standard-library HTTP server for one local page (no web framework).

    minidl serve --teacher runs/mlm/teacher.npz --student runs/mlm/student.npz \\
                 --classifier runs/mlp/best.npz --classifier runs/transformer/best.npz --runs runs --port 8000

The models are loaded once, at start. The page has four views: fill-mask and classify, Graph (the
autograd graph of a typed expression or of a classifier's loss, forward and backward), Attention
(the transformer's maps per layer and head, the window model's weights) and Runs (the curves of
the runs and sweeps under --runs, polled while they train). Routes (all GET; answers are JSON
except the page, its script and the plots):

    /                                  page.html; ?text=...&run=fill|classify|both runs on load;
                                       ?view=graph|attention|runs opens a view (views.js: ?expr=..., ?model=N,
                                       ?backward=1 there)
    /views.js                          the script of the Graph, Attention and Runs views
    /api/fill-mask?text=...&k=5        {"text", "models": [{"role", "masks": [[{"token", "p"}] per [MASK]], "ms"}]}
    /api/classify?text=...             {"text", "models": [{"name", "path", "labels", "prediction", "probabilities",
                                                            "start" (RNN/GRU: the probabilities before the first
                                                            word, else null), "words", "known",
                                                            "columns": {name: [per word]}, "unread" (the
                                                            words past max_length, not read)}]}
    /api/info                          {"mlm": [{"role", "path", ...sizes}], "classifiers": [...], "max_chars",
                                        "attention": [indices of the classifiers with attention], "runs": DIR or null,
                                        "graph": {"max_chars", "functions"}}
    /api/graph?expr=...&backward=0|1   the graph of an expression (minidl/web/expression.py's grammar):
                                       {"svg", "nodes", "edges", "mode", "summary", "backward", "note", "output"}
    /api/graph?model=N&text=...&label=pos&backward=0|1
                                       the graph of classifier N's loss on the text (label: default the
                                       prediction): the same, with "words", "prediction", "label", "loss"
    /api/attention?text=...            {"text", "models": [{"name", "path", "words", "known", "prediction",
                                        "probabilities", and "kind": "transformer", "layers": [[(T, T) per head]
                                        per layer], or "kind": "window", "radius", "weights": (T, 2r+1)}]}
    /api/runs                          {"root", "runs", "sweeps", "plots", "skipped"} (minidl/web/runs.py)
    /api/runs/file?path=sub/plot.png   a plot under --runs (.png, .svg); a path out of the folder gets a 403

Bad input (no [MASK], empty text, unknown words only, a text too long, an unknown path, an
expression that does not parse or whose shapes do not fit, a path out of --runs) gets a 4xx
answer {"error": "what is wrong and how to fix it"}; a bug gets a 500 with one line, the traceback
going to the server's log only, never to the browser. The errors http.server finds itself (a bad
request line 400, an unknown method 501, a URL over 64 KiB 414, too many or too long headers 431,
...) come as the same JSON, and close the connection.

HTTP/1.1 with keep-alive (every answer has a Content-Length; ``Connection: close`` is honoured),
one daemon thread per connection, a listen backlog of REQUEST_QUEUE_SIZE. A connection silent for
TIMEOUT seconds, in the middle of a request or between two, is closed, so a stalled client
does not hold its thread for ever (the limit is per read: a client trickling a byte every few
seconds keeps its connection, and holds only its own thread).

Against DNS rebinding (a web page whose own name comes to point at 127.0.0.1, then reads the
API, paths included), a request is answered only if its Host names this machine's loopback
(127.0.0.1, localhost, ::1) or the host the server was started on (--host), with or without a
port; bound to every interface (0.0.0.0), also any IP address and this machine's hostname. Any
other Host gets a 403 saying which address to open. A request without Host is refused on
HTTP/1.1 (which requires one, 400) and answered on HTTP/1.0: browsers always send Host, so such
a request is no page's, and tools like ``curl -0`` or ``nc`` may leave it out.
"""
from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlparse

from ..errors import MinidlError
from ..compress.quantize import stored_numbers
from ..mlm import load_mlm
from ..mlm.cli import fill_mask
from ..train import load_classifier

MAX_CHARS = 2000
MAX_K = 50
REQUEST_QUEUE_SIZE = 128    # the listen backlog: connections the kernel holds until a thread accepts them
TIMEOUT = 10.0              # seconds a connection may stay silent, within a request or between two
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# what to do, after the stdlib's own message, for the errors http.server answers itself
_HINTS = {400: "send a request line like GET /api/info HTTP/1.1",
          414: f"the request line is over 65,536 bytes; the API reads texts of at most {MAX_CHARS:,} characters",
          431: "send at most 100 headers, each line under 65,536 bytes",
          501: "the API answers GET only, e.g. GET /api/classify?text=...",
          505: "speak HTTP/1.1 or HTTP/1.0"}


class BadRequest(Exception):
    """The user's input is wrong; ``status`` is the HTTP status to answer with."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def _sizes(model, path):
    return {"path": os.fspath(path), "parameters": stored_numbers(model)[0],   # int8 weights too, as mlm evaluate
            "file_mb": round(os.path.getsize(path) / 1e6, 3)}   # MB (10⁶ bytes), as minidl mlm evaluate


def check_sources(teacher, student, classifiers, runs):
    """Refuse a set of models that cannot make a page, before anything is loaded."""
    if student and not teacher:   # before "no model to serve", which a --student alone also is
        raise MinidlError("--student needs a --teacher to sit beside")
    if not (teacher or classifiers or runs):
        raise MinidlError("no model to serve: give --teacher T.npz (and --student S.npz) for fill-mask, "
                          "and/or --classifier best.npz (repeatable) for classification, and/or --runs DIR "
                          "for the training curves")


class Models:
    """The loaded models and what the API does with them.

    One lock around every forward pass: minidl's no-grad switch is one global flag, and the
    server answers each request in its own thread."""

    def __init__(self, teacher=None, student=None, classifiers=(), device="cpu", runs=None):
        from .runs import RunsFolder

        check_sources(teacher, student, classifiers, runs)
        self.runs = RunsFolder(runs) if runs else None
        self.device, self.lock = device, threading.Lock()
        self.mlm = []                      # [(role, model, vocab, tokenizer, meta, sizes)]
        for role, path in (("teacher", teacher), ("student", student)):
            if path:
                model, vocab, tokenizer, meta = load_mlm(path, device)
                fill_mask(model, vocab, tokenizer, "[MASK]", 1, device)   # warm-up: the times shown exclude it
                self.mlm.append((role, model, vocab, tokenizer, meta, {"role": role, **_sizes(model, path),
                                                                       "settings": meta["settings"]}))
        self.classifiers = []              # [(model, vocab, tokenizer, label names, sizes)]
        for path in classifiers:
            model, vocab, tokenizer, labels, config = load_classifier(path, device)
            self.classifiers.append((model, vocab, tokenizer, labels, {
                "name": config.model, **_sizes(model, path), "labels": labels, "hidden": config.hidden,
                "embed_dim": int(model.embedding.weight.shape[1])}))

    def info(self):
        from .attention import kind_of
        from .expression import CALLABLE, MAX_CHARS as EXPRESSION_CHARS

        return {"mlm": [m[-1] for m in self.mlm], "classifiers": [c[-1] for c in self.classifiers],
                "max_chars": MAX_CHARS, "attention": [i for i, c in enumerate(self.classifiers) if kind_of(c[0])],
                "runs": self.runs.root if self.runs else None,
                "graph": {"max_chars": EXPRESSION_CHARS, "functions": list(CALLABLE)}}

    def fill_mask(self, text, k=5):
        _check(text, "the film was [MASK] .")
        if not self.mlm:
            raise BadRequest("no masked-LM is loaded: restart with minidl serve --teacher T.npz [--student S.npz]")
        if not 1 <= k <= MAX_K:
            raise BadRequest(f"k={k}: ask for 1 to {MAX_K} tokens per [MASK]")
        models = []
        for role, model, vocab, tokenizer, meta, _ in self.mlm:
            with self.lock:
                masks, seconds = fill_mask(model, vocab, tokenizer, text, k, self.device, role)
            models.append({"role": role, "ms": round(seconds * 1e3, 2),
                           "masks": [[{"token": token, "p": p} for token, p in found] for found in masks]})
        return {"text": text, "models": models}

    def classify(self, text):
        from ..train.explain import explain

        _check(text)
        if not self.classifiers:
            raise BadRequest("no classifier is loaded: restart with minidl serve --classifier runs/NAME/best.npz")
        models = []
        for model, vocab, tokenizer, labels, sizes in self.classifiers:
            with self.lock:
                result = explain(text, model, vocab, tokenizer, labels, self.device)
            columns = {name: [v if isinstance(v, str) else float(v) for v in values]
                       for name, values in result["columns"].items()}
            models.append({"name": sizes["name"], "path": sizes["path"], "labels": labels,
                           "prediction": result["prediction"], "probabilities": result["probabilities"],
                           "start": result["start"], "words": result["words"], "known": result["known"],
                           "columns": columns, "unread": result["unread"]})
        return {"text": text, "models": models}

    def graph(self, query):
        """/api/graph: an expression's graph (``expr``), or classifier ``model``'s on ``text``."""
        from .graphs import expression_graph, model_graph

        flag = query.get("backward", "0").lower()
        if flag not in ("0", "1", "", "false", "true"):   # "no" or "off" drew the backward
            raise BadRequest(f"backward={query['backward']!r}: give 1 (draw the gradients too) or 0")
        backward = flag in ("1", "true")
        if "expr" in query:
            with self.lock:
                return expression_graph(query["expr"], backward)
        if "model" not in query:
            raise BadRequest("give an expression, /api/graph?expr=x+%3D+[1,+2];+sum(tanh(x)), or a classifier and "
                             "a text, /api/graph?model=0&text=...")
        model, vocab, tokenizer, labels, sizes = self._classifier(query["model"])
        _check(query.get("text", ""))
        with self.lock:
            answer = model_graph(model, vocab, tokenizer, labels, query["text"], query.get("label") or None,
                                 backward, self.device)
        return {"name": sizes["name"], "path": sizes["path"], **answer}

    def _classifier(self, number):
        try:
            if int(number) < 0:   # Python would count from the end: -1 picked the last one
                raise IndexError(number)
            return self.classifiers[int(number)]
        except (ValueError, IndexError):
            names = ", ".join(f"{i}: {c[-1]['name']}" for i, c in enumerate(self.classifiers)) or "none is loaded"
            raise BadRequest(f"model={number!r}: give the number of a loaded classifier ({names})") from None

    def attention(self, text):
        """/api/attention: the attention maps of every classifier that has them."""
        from .attention import attention_maps, kind_of

        _check(text)
        found = [c for c in self.classifiers if kind_of(c[0])]
        if not found:
            raise BadRequest("no attention model is loaded: restart with minidl serve --classifier "
                             "runs/NAME/best.npz of a transformer or attention model (minidl train --model "
                             "transformer --out runs/NAME)")
        models = []
        for model, vocab, tokenizer, labels, sizes in found:
            with self.lock:
                maps = attention_maps(model, vocab, tokenizer, labels, text, self.device)
            models.append({"name": sizes["name"], "path": sizes["path"], **maps})
        return {"text": text, "models": models}

    def runs_listing(self):
        """/api/runs: what the runs folder holds now."""
        return self._runs().listing()

    def run_file(self, path):
        """/api/runs/file: (bytes, content type) of a plot inside the runs folder."""
        from .runs import OutsideError

        try:
            return self._runs().file(path)
        except OutsideError as e:
            raise BadRequest(str(e), 403) from None
        except FileNotFoundError as e:
            raise BadRequest(str(e), 404) from None

    def _runs(self):
        if self.runs is None:
            raise BadRequest("no runs folder: restart with minidl serve --runs runs (the folder that minidl train "
                             "--out runs/NAME and minidl sweep --results runs/NAME.jsonl write into)")
        return self.runs


def _check(text, example="the film was great ."):
    if not text.strip():
        raise BadRequest(f"the text is empty: type a sentence, e.g. \"{example}\"")
    if len(text) > MAX_CHARS:
        raise BadRequest(f"the text has {len(text):,} characters; at most {MAX_CHARS:,}: shorten it", 413)


def _needs(query, name, path):
    """The query's ``name`` parameter, or a 400 saying how to give it."""
    if name not in query:
        raise BadRequest(f"missing the {name}: {path}?{name}=...")
    return query[name]


def _k(query):
    try:
        return int(query.get("k", 5))
    except ValueError:
        raise BadRequest(f"k={query['k']!r} is not a whole number; e.g. k=5") from None


FILES = {"/": ("page.html", "text/html; charset=utf-8"), "/index.html": ("page.html", "text/html; charset=utf-8"),
         "/views.js": ("views.js", "text/javascript; charset=utf-8")}
# path -> (models, query) -> a JSON value, or (bytes, content type) for a file
ROUTES = {
    "/api/info": lambda models, query: models.info(),
    "/api/fill-mask": lambda models, query: models.fill_mask(_needs(query, "text", "/api/fill-mask"), _k(query)),
    "/api/classify": lambda models, query: models.classify(_needs(query, "text", "/api/classify")),
    "/api/graph": lambda models, query: models.graph(query),
    "/api/attention": lambda models, query: models.attention(_needs(query, "text", "/api/attention")),
    "/api/runs": lambda models, query: models.runs_listing(),
    "/api/runs/file": lambda models, query: models.run_file(_needs(query, "path", "/api/runs/file")),
}


def _host_name(header):
    """The host in a Host header, lower case, without its port or IPv6 brackets: "[::1]:8000" -> "::1",
    "LocalHost:8000" -> "localhost"; None where the port is not a number."""
    header = header.strip().lower()
    if header.startswith("["):
        name, _, port = header[1:].partition("]")
    elif header.count(":") == 1:
        name, _, port = header.partition(":")
        port = ":" + port
    else:                                   # no port, or a bare IPv6 address
        name, port = header, ""
    if port and not (port.startswith(":") and port[1:].isdigit()):
        return None
    return name.removesuffix(".")


def _is_ip(name):
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


class Handler(BaseHTTPRequestHandler):
    """GET only; ``self.server`` is a ``Server``, ``self.server.models`` a ``Models``."""

    protocol_version = "HTTP/1.1"           # keep-alive: the connection serves request after request
    default_request_version = "HTTP/1.0"    # not 0.9: every answer has its status line and headers, those
                                            # to a bad request line and to "GET /path" without a version too
    disable_nagle_algorithm = True          # else the body, sent after the headers, waits for their ACK

    def setup(self):
        self.timeout = self.server.timeout_s   # StreamRequestHandler.setup sets it on the socket
        super().setup()

    def handle_one_request(self):
        try:                                # wait for the next request: an idle connection closes quietly
            self.rfile.peek(1)
        except (TimeoutError, ConnectionError):
            self.close_connection = True
            return
        super().handle_one_request()

    def do_GET(self):
        if self.headers.get("Content-Length", "0") != "0" or "Transfer-Encoding" in self.headers:
            self.close_connection = True    # a body is never read: the next request cannot be found
        url = urlparse(self.path)
        query = {name: values[-1] for name, values in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            self._check_host()
            self._answer(url.path, query)
        except BadRequest as e:
            self._json(e.status, {"error": str(e)})
        except MinidlError as e:                # TextEncodingError: no [MASK], empty after cleaning, unknown words
            self._json(400, {"error": str(e)})
        except Exception as e:                  # a bug: the traceback stays in the server's log
            traceback.print_exc(file=sys.stderr)
            self._json(500, {"error": f"internal error ({type(e).__name__}); the server's log has the details"})

    def _answer(self, path, query):
        if path in FILES:
            name, content_type = FILES[path]
            return self._send(200, resources.files(__package__).joinpath(name).read_bytes(), content_type)
        if path not in ROUTES:
            raise BadRequest(f"nothing at {path}: the page is /, the API /api/fill-mask?text=..., "
                             f"/api/classify?text=..., /api/graph?expr=..., /api/attention?text=..., /api/runs "
                             f"and /api/info", 404)
        value = ROUTES[path](self.server.models, query)
        if isinstance(value, tuple):             # a plot from the runs folder: shown, never run as a page
            return self._send(200, value[0], value[1], {"Content-Security-Policy": "default-src 'none'; "
                                                        "style-src 'unsafe-inline'; sandbox",
                                                        "X-Content-Type-Options": "nosniff"})
        return self._json(200, value)

    def _check_host(self):
        """Raise BadRequest (403, or 400 for a missing or repeated Host on HTTP/1.1) unless the Host
        header is one of this server's names (see the module's docstring)."""
        hosts = self.headers.get_all("Host") or []
        if not hosts and self.request_version != "HTTP/1.1":
            return
        if len(hosts) != 1:
            raise BadRequest(f"an HTTP/1.1 request needs one Host header, got {len(hosts)}: send Host: "
                             f"{self.server.address}")
        name, server = _host_name(hosts[0]), self.server
        if name in server.host_names or server.any_interface and name is not None and _is_ip(name):
            return
        raise BadRequest(f"Host {hosts[0]!r} is not a name of this server (a guard against DNS rebinding): "
                         f"open the page as http://{server.address}/", 403)

    def send_error(self, code, message=None, explain=None):
        """The errors http.server answers itself (400, 414, 431, 501, 505, ...) as the API's JSON
        {"error": ...}; the connection closes after them, the rest of the request unread."""
        text = message or self.responses.get(code, ("error",))[0]
        self.log_error("code %d, message %s", code, text)
        self.close_connection = True
        self._json(code, {"error": f"{text}: {_HINTS[code]}" if code in _HINTS else text})

    def _json(self, status, value):
        self._send(status, json.dumps(value).encode(), "application/json")

    def _send(self, status, body, content_type, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format, *args):
        if not self.server.quiet:
            super().log_message(format, *args)


class Server(ThreadingHTTPServer):
    """One daemon thread per connection, and a listen backlog that holds a burst of clients (the
    default of 5 makes the kernel drop the others' connection attempts, each retried a second later)."""

    request_queue_size = REQUEST_QUEUE_SIZE
    daemon_threads = True

    def __init__(self, address, handler):
        # an IPv6 host (::1, ::) needs an IPv6 socket: the default IPv4 one refused it ("Address family for
        # hostname not supported")
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)

    def server_bind(self):
        if self.address_family == socket.AF_INET6:    # "::" takes IPv4 too, as every interface (0.0.0.0) does
            with contextlib.suppress(OSError):
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def make_server(models, host="127.0.0.1", port=0, quiet=False, timeout=TIMEOUT):
    """A threaded HTTP/1.1 server for ``models`` (not yet serving: call serve_forever). Port 0: any free
    one. ``timeout``: seconds a connection may stay silent before it is closed."""
    server = Server((host, port), Handler)
    server.models, server.quiet, server.timeout_s = models, quiet, timeout
    bound, port = server.server_address[:2]
    server.any_interface = bound in ("0.0.0.0", "::", "")
    server.host_names = {*LOOPBACK, host.lower().strip("[]"), bound,
                         *([socket.gethostname().lower()] if server.any_interface else [])} - {""}
    # the address to suggest in a 403: the loopback where the server listens there too
    shown = "127.0.0.1" if server.any_interface or host.lower() == "localhost" else host   # ::1 is IPv6 only
    server.address = f"[{shown}]:{port}" if ":" in shown else f"{shown}:{port}"
    return server


def add_arguments(commands):
    serve = commands.add_parser("serve", help="a local web page: fill-mask teacher vs student, the "
                                              "classifiers' per-word sub-scores, autograd graphs, attention maps "
                                              "and training curves")
    serve.add_argument("--teacher", default=None, help="a masked-LM checkpoint from minidl mlm pretrain, for "
                                                       "fill-mask (default: none; then give --classifier)")
    serve.add_argument("--student", default=None, help="a second one beside it, from minidl mlm distill "
                                                       "(default: the teacher alone)")
    serve.add_argument("--classifier", action="append", default=[], help="a minidl train checkpoint "
                                                                         "(best.npz); repeatable (default: none)")
    serve.add_argument("--runs", default=None, help="a folder of training runs and sweeps (minidl train --out "
                                                    "folders, minidl sweep .jsonl files, their plots) for the Runs "
                                                    "view (default: none; the view then says how to start it)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="the address to listen on; 127.0.0.1: this machine only, 0.0.0.0: every network interface")
    serve.add_argument("--port", type=int, default=8000, help="the port to listen on; 0: any free one")
    serve.add_argument("--device", default="cpu", help='"cpu" (NumPy), "torch" or "cuda"')
    serve.set_defaults(run=main)


def main(args):
    """Take the port, load the models (a MinidlError or FileNotFoundError is reported by minidl.cli), then
    serve until Ctrl-C. The port comes first: a port in use is said at once, not after a model's load."""
    if not 0 <= args.port <= 65535:
        raise MinidlError(f"--port must be a port number in 0-65535 (0: any free one), got {args.port}")
    check_sources(args.teacher, args.student, args.classifier, args.runs)
    try:
        server = make_server(None, args.host, args.port)
    except OSError as error:
        fix = ("a --host this machine answers to (e.g. 127.0.0.1)" if isinstance(error, socket.gaierror)   # not a port
               else "another --port (0: any free one) or --host")
        raise MinidlError(f"cannot listen on {args.host}:{args.port} ({error.strerror or error}); give {fix}") from None
    with server:   # closed on the way out: a model that cannot be loaded, Ctrl-C, an error
        server.models = Models(args.teacher, args.student, args.classifier, args.device, args.runs)
        host, port = server.server_address[:2]
        host = f"[{host}]" if ":" in host else host    # an IPv6 address in a URL: http://[::1]:8000/
        print(f"minidl serve: http://{host}:{port}/  (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    return 0
