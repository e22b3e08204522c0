"""Latency and throughput of ``minidl serve``'s API under concurrent clients, on this machine's loopback.

    minidl bench serve --requests 500 --clients 16 [--classifier runs/mlp/best.npz] [--json]

Starts the server in this process on a free loopback port with one classifier (by default a tiny
MLP trained here on the built-in corpus in well under a second), then C client threads, each on
one keep-alive connection (http.client), share N requests ``GET /api/classify?text=...`` between
them, all starting at once. A request's latency runs from sending it to having read the whole
answer; requests/s is N over the time from the first request sent to the last answer read. The
clients share the process (and its GIL) with the server, so their own work is in the numbers too.
"""
from __future__ import annotations

import http.client
import json
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote, urlsplit

import numpy as np

from ..errors import MinidlError
from ..command import at_least
from ..train import TrainConfig, fit
from ..web.server import Models, make_server

TEXT = "the acting was great but the plot was terrible"


def load(url, path, requests=500, clients=16):
    """Send ``requests`` GETs of ``url`` + ``path`` from ``clients`` threads at once, each thread on one
    keep-alive connection (opened again only after a failure or a ``Connection: close``); a dict of
    the counts and the latencies in ms. Errors: answers other than 200, and failed connections."""
    target, clients = urlsplit(url), min(clients, requests)
    start = threading.Barrier(clients)

    def client(count):
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        seconds, errors, connections = [], [], 0
        start.wait()
        began = time.perf_counter()
        for _ in range(count):
            connections += connection.sock is None      # http.client connects on the first request
            sent = time.perf_counter()
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read()
                if response.status != 200:
                    errors.append(f"{response.status}: {body[:200].decode(errors='replace')}")
            except (OSError, http.client.HTTPException) as e:
                errors.append(f"{type(e).__name__}: {e}")
                connection.close()
            seconds.append(time.perf_counter() - sent)
        connection.close()
        return began, time.perf_counter(), seconds, errors, connections

    with ThreadPoolExecutor(clients) as pool:
        began, ended, seconds, errors_by_client, connections = zip(
            *pool.map(client, [requests // clients + (i < requests % clients) for i in range(clients)]))
    ms = 1e3 * np.concatenate(seconds)
    errors = [error for by_client in errors_by_client for error in by_client]
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"url": url + path, "requests": requests, "clients": clients,
            "connections": sum(connections), "errors": len(errors),
            "first_error": errors[0] if errors else None, "mean_ms": round(float(ms.mean()), 2),
            "p50_ms": round(float(p50), 2), "p95_ms": round(float(p95), 2), "p99_ms": round(float(p99), 2),
            "requests_per_s": round(requests / (max(ended) - min(began)), 1)}


def run(requests=500, clients=16, classifier=None, text=TEXT):
    """Serve ``classifier`` (a minidl train checkpoint; default: a tiny MLP trained here) on a free
    loopback port, ``load`` its /api/classify with ``text``, stop the server; ``load``'s dict."""
    if requests < 1 or clients < 1:
        raise MinidlError(f"--requests {requests} --clients {clients}: give whole numbers >= 1 for both")
    with tempfile.TemporaryDirectory() as folder:
        if classifier is None:
            fit(TrainConfig(model="mlp", hidden=16, embed_dim=16, epochs=2, train_limit=1000, patience=None),
                out=folder, progress=False, log=lambda *a: None)
            classifier = f"{folder}/best.npz"
        server = make_server(Models(classifiers=[classifier]), port=0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        return load(f"http://127.0.0.1:{server.server_address[1]}", "/api/classify?text=" + quote(text),
                    requests, clients)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def report(result):
    """The table people read."""
    columns = ["requests", "clients", "connections", "errors", "mean_ms", "p50_ms", "p95_ms", "p99_ms",
               "requests_per_s"]
    titles = [name.replace("_ms", " ms").replace("_per_s", "/s") for name in columns]
    lines = [f"GET {result['url']}",
             "".join(f"{title:>13}" for title in titles),
             "".join(f"{result[name]:>13}" for name in columns)]
    if result["first_error"]:
        lines.append(f"first error: {result['first_error']}")
    return "\n".join(lines)


def add_arguments(bench):
    """``minidl bench serve``, one of ``bench``'s sub-commands (an argparse sub-parsers object); sets args.run."""
    serve = bench.add_parser("serve", help="minidl serve's API under concurrent keep-alive clients on this "
                                           "machine's loopback: latency percentiles and requests/s")
    serve.add_argument("--requests", type=at_least(1), default=500,
                       help="requests in all, shared between the clients")
    serve.add_argument("--clients", type=at_least(1), default=16,
                       help="concurrent clients, each a thread on one keep-alive connection")
    serve.add_argument("--classifier", default=None, help="the checkpoint to serve, best.npz of minidl train "
                                                          "(default: a tiny MLP trained here in under a second)")
    serve.add_argument("--text", default=TEXT, help="the review every request classifies")
    serve.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")
    serve.set_defaults(run=main)


def main(args):
    """Run the benchmark and print its table (or JSON); the exit code: 1 if any request failed, else 0."""
    if not args.text.strip():   # every request would fail
        raise MinidlError("--text is empty: give a review to classify, or leave --text out")
    result = run(args.requests, args.clients, args.classifier, args.text)
    print(json.dumps(result, indent=1) if args.json else report(result))
    return 1 if result["errors"] else 0
