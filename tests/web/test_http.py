"""minidl serve's HTTP layer: keep-alive under concurrent clients, the per-connection timeout, the
Host allow-list against DNS rebinding, JSON for the errors http.server answers itself, and
``minidl bench serve``. No test asserts a time: the timeouts below only keep a failure from hanging."""
import argparse
import http.client
import json
import socket
from urllib.parse import quote, urlsplit

import pytest

from minidl.autograd.function import MinidlError
from minidl.bench import serve as bench
from minidl.web.server import _host_name

from .conftest import serving

CLASSIFY = "/api/classify?text=" + quote("the acting was great but the plot was terrible")


def address(url):
    parts = urlsplit(url)
    return parts.hostname, parts.port


def raw(url, data):
    """(status, headers, body as JSON) of the answer to ``data``, sent as is on a new connection,
    which the server must then close."""
    with socket.create_connection(address(url), timeout=30) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        status, headers, body = response.status, response.headers, response.read()
        assert sock.recv(1) == b"", "the server closes the connection"
    assert headers["Content-Type"] == "application/json" and int(headers["Content-Length"]) == len(body)
    return status, headers, json.loads(body)


def get(url, path, headers=None):
    """(status, body as JSON) of one GET on a new http.client connection, with ``headers``."""
    connection = http.client.HTTPConnection(*address(url), timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_concurrent_keep_alive_clients_get_every_answer(url):
    result = bench.load(url, CLASSIFY, requests=200, clients=16)
    assert (result["requests"], result["clients"], result["errors"]) == (200, 16, 0), result["first_error"]
    assert result["connections"] == 16, "each client keeps its one connection"


def test_requests_share_one_connection_until_connection_close(url):
    connection = http.client.HTTPConnection(*address(url), timeout=30)
    answers = []
    for path in ("/api/info", "/api/nothing", CLASSIFY):   # a 4xx of the API keeps the connection too
        connection.request("GET", path)
        response = connection.getresponse()
        answers.append((response.status, response.version, response.getheader("Connection"),
                        json.loads(response.read())))
        if path == "/api/info":
            sock = connection.sock
        assert sock is not None and connection.sock is sock, "the same connection serves the next request"
    assert [a[:3] for a in answers] == [(200, 11, None), (404, 11, None), (200, 11, None)]
    assert answers[2][3]["models"][0]["name"] == "mlp"
    connection.request("GET", "/api/info", headers={"Connection": "close"})
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Connection") == "close" and response.read()
    assert connection.sock is None, "the answer to Connection: close ends the connection"
    port = address(url)[1]
    assert raw(url, f"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())[0] == 200


def test_a_silent_or_stalled_client_is_cut_off_while_others_are_served(models):
    for url in serving(models, timeout=0.5):
        with socket.create_connection(address(url), timeout=30) as stalled, \
                socket.create_connection(address(url), timeout=30) as silent:
            stalled.sendall(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n")     # no blank line: incomplete
            assert get(url, "/api/info")[0] == 200, "another client is served meanwhile"
            assert stalled.recv(1) == b"" and silent.recv(1) == b"", "the server closed both connections"
        assert get(url, "/api/info")[0] == 200


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "127.0.0.1", "localhost:{port}", "LocalHost", "[::1]:{port}",
                                  "[::1]"])
def test_hosts_of_this_machine_are_answered(url, host):
    status, info = get(url, "/api/info", {"Host": host.format(port=address(url)[1])})
    assert status == 200 and info["max_chars"] == 2000


@pytest.mark.parametrize("host", ["evil.example:{port}", "evil.example", "127.0.0.1.evil.example:{port}",
                                  "localhost.evil.example", "localhost:x", "10.0.0.1:{port}", ""])
def test_other_hosts_get_403_saying_which_address_to_open(url, host):
    port = address(url)[1]
    status, body = get(url, "/api/info", {"Host": host.format(port=port)})
    assert status == 403 and list(body) == ["error"], body
    assert "DNS rebinding" in body["error"] and f"open the page as http://127.0.0.1:{port}/" in body["error"]


def test_a_missing_host_is_refused_on_http_1_1_only(url):
    status, _, body = raw(url, b"GET /api/info HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert status == 400 and "needs one Host header, got 0" in body["error"]
    for request_line in (b"GET /api/info HTTP/1.0", b"GET /api/info"):      # no version: answered as HTTP/1.0
        status, _, body = raw(url, request_line + b"\r\n\r\n")
        assert status == 200 and body["max_chars"] == 2000


@pytest.mark.parametrize("header, name", [("127.0.0.1:8000", "127.0.0.1"), ("LocalHost.", "localhost"),
                                          ("[::1]:8000", "::1"), ("::1", "::1"), ("[::1]", "::1"),
                                          ("evil.example:8000", "evil.example"), ("localhost:80x", None),
                                          ("[::1]x", None)])
def test_host_names_are_read_without_port_and_brackets(header, name):
    assert _host_name(header) == name


@pytest.mark.parametrize("request_bytes, status, message", [
    (b"BREW /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 501, "Unsupported method ('BREW'): the API answers GET"),
    (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414, "over 65,536 bytes"),
    (b"GET /api/info HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n", 431,
     "Too many headers"),
    (b"GET /api/info HTTP/1.1\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n", 431, "Line too long"),
    (b"GET /api/info HTTP/x.y\r\n\r\n", 400, "Bad request version ('HTTP/x.y')"),
    (b"GET /api/info HTTP/2.0\r\n\r\n", 505, "Invalid HTTP version"),
])
def test_errors_of_http_server_itself_are_json_too(url, request_bytes, status, message):
    got, headers, body = raw(url, request_bytes)
    assert got == status and list(body) == ["error"] and message in body["error"], body
    assert headers["Connection"] == "close"


def test_minidl_bench_serve_prints_a_table_or_json(checkpoints, capsys):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser.add_subparsers(dest="what"))
    args = parser.parse_args(["serve", "--requests", "20", "--clients", "4", "--classifier", str(checkpoints["mlp"]),
                              "--json"])
    assert args.run(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["requests"], result["clients"], result["connections"], result["errors"]) == (20, 4, 4, 0)
    assert result["p50_ms"] <= result["p95_ms"] <= result["p99_ms"] and result["requests_per_s"] > 0
    args = parser.parse_args(["serve", "--requests", "6", "--clients", "2"])   # a tiny MLP trained on the spot
    assert args.run(args) == 0
    header, values = capsys.readouterr().out.splitlines()[1:3]
    assert header.split() == ["requests", "clients", "connections", "errors", "mean", "ms", "p50", "ms", "p95",
                              "ms", "p99", "ms", "requests/s"]
    assert values.split()[:4] == ["6", "2", "2", "0"]
    with pytest.raises(MinidlError, match="whole numbers >= 1"):
        bench.run(requests=0)


def test_bench_serve_counts_failed_requests_and_exits_1(checkpoints, capsys):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser.add_subparsers(dest="what"))
    args = parser.parse_args(["serve", "--requests", "4", "--clients", "2", "--classifier", str(checkpoints["mlp"]),
                              "--text", "zzyzx", "--json"])
    assert args.run(args) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["errors"] == 4 and result["first_error"].startswith("400: ") and "none of the words" in \
        result["first_error"]


def test_bench_serve_refuses_an_empty_text_before_any_request(capsys):
    """--text "" sent every request to fail, then exited 1, with fill-mask's advice."""
    from minidl.cli import main

    assert main(["bench", "serve", "--text", " "]) == 1
    assert capsys.readouterr().err == ("minidl bench serve: --text is empty: give a review to classify, or leave "
                                       "--text out\n")
