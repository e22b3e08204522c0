"""Tiny models for tests/web, made once per session in about two seconds: a masked-LM teacher
trained on four sentences and a student distilled from it, and two classifiers trained on the
built-in corpus, one with per-word scores (TokenMLP) and one without (GRU)."""
import threading

import pytest

from minidl.mlm import build_mlm, build_vocabulary, segments, train_mlm
from minidl.train import TrainConfig, fit
from minidl.web import Models, make_server

SENTENCES = ["the acting was great and the plot was good", "the film was bad and the music was terrible",
             "a wonderful cast , a boring story", "i loved the music but hated the ending"]
TEACHER = dict(d_model=16, num_heads=2, num_layers=1, d_ff=32, max_len=32, dropout=0.0)
STUDENT = dict(TEACHER, d_model=8, d_ff=16)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    """{"teacher", "student", "mlp", "gru"}: checkpoint paths."""
    folder = tmp_path_factory.mktemp("models")
    texts = [s.split() for s in SENTENCES]
    vocab = build_vocabulary(texts, max_size=None, min_freq=1)
    data = segments(texts * 8, vocab, length=TEACHER["max_len"])
    paths, teacher = {}, None
    for role, settings in (("teacher", TEACHER), ("student", STUDENT)):
        paths[role] = folder / f"{role}.npz"
        model = build_mlm(len(vocab), settings, "torch")
        train_mlm(model, data, vocab, 40, settings, paths[role], teacher=teacher, batch_size=16, lr=1e-2,
                  eval_every=40, device="torch", role=role, log=None)
        teacher = model
    for model in ("mlp", "gru"):
        fit(TrainConfig(model=model, hidden=8, embed_dim=8, epochs=6, lr=0.02, train_limit=1000, patience=None),
            out=folder / model, progress=False, log=lambda *a: None)
        paths[model] = folder / model / "best.npz"
    return paths


@pytest.fixture(scope="session")
def models(checkpoints):
    return Models(checkpoints["teacher"], checkpoints["student"], [checkpoints["mlp"], checkpoints["gru"]])


def serving(models, **options):
    """Start a server on a free port in a thread (``options`` go to make_server); yields its URL; stops
    it and checks it stopped."""
    server = make_server(models, port=0, quiet=True, **options)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        assert not thread.is_alive(), "the server thread did not stop"


@pytest.fixture(scope="module")
def url(models):
    yield from serving(models)
