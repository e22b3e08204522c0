"""minidl serve's API: the JSON shapes, the 4xx errors with what to do, start and stop, the CLI."""
import json
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import numpy as np
import pytest

from minidl.cli import main
from minidl.mlm import load_mlm
from minidl.mlm.cli import fill_mask
from minidl.web import Models

from .conftest import serving


def get(url):
    """(status, decoded body: JSON as a dict, anything else as text) of a GET, 4xx/5xx included."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            status, kind, body = response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as e:
        status, kind, body = e.code, e.headers["Content-Type"], e.read().decode()
    return status, json.loads(body) if kind == "application/json" else body


def test_info_lists_the_models_and_their_sizes(url, checkpoints):
    status, info = get(url + "/api/info")
    assert status == 200 and info["max_chars"] == 2000
    assert [(m["role"], m["path"]) for m in info["mlm"]] == [("teacher", str(checkpoints["teacher"])),
                                                             ("student", str(checkpoints["student"]))]
    assert [c["name"] for c in info["classifiers"]] == ["mlp", "gru"]
    for model in info["mlm"] + info["classifiers"]:
        assert model["parameters"] > 0 and 0 < model["file_mb"] < 1
    assert info["mlm"][0]["parameters"] > info["mlm"][1]["parameters"], "the student is the smaller one"


def test_info_counts_an_int8_student_by_the_numbers_it_stores(checkpoints, tmp_path):
    """An int8 copy keeps its weights in qweight buffers: /api/info counted only its float parameters
    (3,570 for mlm evaluate's 80,946)."""
    int8 = tmp_path / "int8.npz"
    assert main(["mlm", "quantize", "--model", str(checkpoints["student"]), "--out", str(int8)]) == 0
    student = load_mlm(checkpoints["student"])[0]
    info = Models(checkpoints["teacher"], int8).info()
    assert info["mlm"][1]["parameters"] == sum(int(p.size()) for p in student.parameters())


def test_fill_mask_gives_sorted_top_k_per_mask_for_teacher_and_student(url, checkpoints):
    text = "the acting was [MASK] and the plot was [MASK]"
    status, result = get(f"{url}/api/fill-mask?text={quote(text)}&k=3")
    assert status == 200 and result["text"] == text
    assert [m["role"] for m in result["models"]] == ["teacher", "student"]
    for model in result["models"]:
        assert len(model["masks"]) == 2 and model["ms"] >= 0
        for candidates in model["masks"]:
            p = [c["p"] for c in candidates]
            assert len(candidates) == 3 and p == sorted(p, reverse=True) and 0 < p[-1] and sum(p) <= 1
    teacher, vocab, tokenizer, _ = load_mlm(checkpoints["teacher"])
    expected, _ = fill_mask(teacher, vocab, tokenizer, text, 3)
    assert [[(c["token"], c["p"]) for c in found] for found in result["models"][0]["masks"]] == expected


def test_classify_gives_each_model_its_per_word_columns(url):
    status, result = get(f"{url}/api/classify?text={quote('the acting was great but the plot was terrible')}")
    assert status == 200 and [m["name"] for m in result["models"]] == ["mlp", "gru"]
    for model in result["models"]:
        assert set(model["probabilities"]) == {"neg", "pos"}
        assert np.isclose(sum(model["probabilities"].values()), 1, atol=1e-5)
        assert model["prediction"] == max(model["probabilities"], key=model["probabilities"].get)
        assert len(model["words"]) == len(model["known"]) == 9 and model["known"][4] is False   # "but"
        assert all(len(column) == 9 for column in model["columns"].values())
    mlp, gru = result["models"]
    assert list(mlp["columns"]) == ["score"] and list(gru["columns"]) == ["p(pos) so far"]
    assert gru["columns"]["p(pos) so far"][-1] == pytest.approx(gru["probabilities"]["pos"], abs=1e-5)


def test_classify_says_how_many_words_past_max_length_it_did_not_read(url):
    """A 120-word text came back as 100 words with no sign that 20 were not read (minidl explain says so)."""
    for model in get(f"{url}/api/classify?text={quote('great ' * 120)}")[1]["models"]:
        assert len(model["words"]) == 100 and model["unread"] == 20
    assert all(model["unread"] == 0 for model in get(f"{url}/api/classify?text=great")[1]["models"])


def test_classify_gives_an_rnn_its_prediction_before_the_first_word(url, models):
    """The first word's colour is its change from the model's own start (here p(pos) far from 0.5), not from 0.5."""
    mlp, gru = get(f"{url}/api/classify?text=great")[1]["models"]
    bias = models.classifiers[1][0].out.bias.numpy()            # the state before any word is zeros
    expected = np.exp(bias) / np.exp(bias).sum()
    assert mlp["start"] is None and mlp["labels"] == gru["labels"] == ["neg", "pos"]
    assert [gru["start"]["neg"], gru["start"]["pos"]] == pytest.approx(expected, abs=1e-6)
    assert gru["start"]["pos"] != pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("path, status, message", [
    ("/api/fill-mask?text=the+film+was+good", 400, "no [MASK] in"),
    ("/api/fill-mask?text=+++", 400, "the text is empty"),
    ("/api/fill-mask?text=" + "the+" * 40 + "%5BMASK%5D", 400, "the teacher reads at most 31"),
    ("/api/fill-mask?text=%5BMASK%5D&k=abc", 400, "k='abc' is not a whole number"),
    ("/api/fill-mask?text=%5BMASK%5D&k=0", 400, "ask for 1 to 50"),
    ("/api/fill-mask", 400, "missing the text"),
    ("/api/classify?text=zzyzx+qwghlm", 400, "none of the words"),
    ("/api/classify?text=%3Cbr+%2F%3E+1+2+3+%21", 400, "empty after cleaning"),
    ("/api/classify?text=" + "a" * 2001, 413, "2,001 characters; at most 2,000"),
    ("/api/nothing", 404, "nothing at /api/nothing"),
])
def test_bad_input_gets_a_json_error_saying_what_to_fix(url, path, status, message):
    got, body = get(url + path)
    assert got == status and list(body) == ["error"] and message in body["error"], body


def test_a_bug_answers_500_without_a_traceback(url, models, monkeypatch, capsys):
    def broken(text):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(models, "classify", broken)
    status, body = get(f"{url}/api/classify?text=good")
    assert status == 500 and body == {"error": "internal error (RuntimeError); the server's log has the details"}
    assert "Traceback" in capsys.readouterr().err, "the traceback goes to the server's log"


def test_the_page_and_concurrent_requests(url):
    status, page = get(url + "/")
    assert status == 200 and "Fill the [MASK]s" in page and "/api/classify" in page
    query = f"{url}/api/fill-mask?text={quote('[MASK] was great')}"
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: get(query)[1]["models"][0]["masks"], range(16)))
    assert all(a == answers[0] for a in answers), "one lock around the forward passes: the same answer each time"


def test_a_classifier_only_server_refuses_fill_mask_clearly(checkpoints):
    for url in serving(Models(classifiers=[checkpoints["mlp"]])):
        assert get(url + "/api/info")[1]["mlm"] == []
        status, body = get(f"{url}/api/fill-mask?text=%5BMASK%5D")
        assert status == 400 and "no masked-LM is loaded" in body["error"]


def test_the_command_line_needs_a_model_and_reports_bad_paths(tmp_path, checkpoints, capsys):
    assert main(["serve"]) == 1
    assert "no model to serve" in capsys.readouterr().err
    for alone in ([], ["--classifier", "c.npz"]):   # a --student alone was "no model to serve"
        assert main(["serve", "--student", "s.npz", *alone]) == 1
        assert "--student needs a --teacher" in capsys.readouterr().err
    assert main(["serve", "--classifier", str(tmp_path / "missing.npz"), "--port", "0"]) == 1
    assert capsys.readouterr().err == (f"minidl serve: no checkpoint at {str(tmp_path / 'missing.npz')!r}: check the "
                                       f"path (minidl train --out DIR writes DIR/best.npz)\n")   # one line, no --debug
    assert main(["serve", "--classifier", str(checkpoints["teacher"]), "--port", "0"]) == 1
    assert "is a masked-LM checkpoint" in capsys.readouterr().err
    assert main(["serve", "--classifier", str(tmp_path / "missing.npz"), "--port", "70000"]) == 1
    assert capsys.readouterr().err == ("minidl serve: --port must be a port number in 0-65535 (0: any free one), "
                                       "got 70000\n")                  # was a traceback (OverflowError)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--classifier", str(tmp_path / "missing.npz"), "--port", str(port)]) == 1
    # the port is taken before any model is read: a port in use is said first, at once
    assert f"cannot listen on 127.0.0.1:{port} (Address already in use); give another --port" in capsys.readouterr().err
    assert main(["serve", "--classifier", str(tmp_path / "missing.npz"), "--host", "nosuch.invalid"]) == 1
    assert "give a --host this machine answers to (e.g. 127.0.0.1)" in capsys.readouterr().err   # was: another --port


def test_every_option_of_serve_says_its_default(capsys):
    """--classifier was the one option of minidl serve --help without "(default: ...)"."""
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    entries = re.split(r"\n  (?=-)", capsys.readouterr().out.split("options:")[1])[2:]   # after -h, --help
    assert len(entries) == 7 and all("(default: " in " ".join(entry.split()) for entry in entries), entries


@pytest.mark.parametrize("host, url", [(None, "http://127.0.0.1:"), ("::1", "http://[::1]:")])
def test_minidl_serve_prints_its_url_and_serves(checkpoints, host, url):
    """Also on an IPv6 host: --host ::1 was refused ("Address family for hostname not supported"), the server's
    socket was IPv4."""
    if host == "::1":
        try:
            with socket.socket(socket.AF_INET6) as probe:
                probe.bind(("::1", 0))
        except OSError as e:
            pytest.skip(f"this machine has no IPv6 loopback ({e})")
    command = [sys.executable, "-m", "minidl.cli", "serve", "--classifier", str(checkpoints["mlp"]), "--port", "0",
               *(["--host", host] if host else [])]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as server:
        try:
            line = server.stdout.readline()
            assert line.startswith(f"minidl serve: {url}"), line
            status, info = get(line.split()[2] + "api/info")
            assert status == 200 and info["classifiers"][0]["name"] == "mlp"
        finally:
            server.terminate()
