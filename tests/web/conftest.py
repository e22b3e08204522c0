"""Tiny models for tests/web, made once per session in a few seconds: a masked-LM teacher
trained on four sentences and a student distilled from it, and four classifiers trained on the
built-in corpus, one with per-word scores (TokenMLP), one without (GRU), and two with attention
(a 2-layer, 2-head transformer and window attention of radius 2), each folder with the
results.json that ``minidl train --out`` writes; a folder of runs for the Runs view; and the
headless Chromium that the browser tests drive (they skip without one)."""
import dataclasses
import json
import shutil
import subprocess
import threading

import pytest

from minidl.mlm import build_mlm, build_vocabulary, segments, train_mlm
from minidl.train import TrainConfig, fit
from minidl.web import Models, make_server

SENTENCES = ["the acting was great and the plot was good", "the film was bad and the music was terrible",
             "a wonderful cast , a boring story", "i loved the music but hated the ending"]
TEACHER = dict(d_model=16, num_heads=2, num_layers=1, d_ff=32, max_len=32, dropout=0.0)
STUDENT = dict(TEACHER, d_model=8, d_ff=16)
CLASSIFIERS = {"mlp": {}, "gru": {}, "transformer": {"num_heads": 2, "num_layers": 2, "d_ff": 16, "max_len": 64},
               "attention": {"radius": 2}}
PLOT_COLOUR = (0xff, 0x7f, 0x0e)       # the plot in the runs folder: one orange bar
PLOT = ('<svg xmlns="http://www.w3.org/2000/svg" width="300" height="120"><rect width="300" height="120" '
        'fill="white"/><rect x="20" y="20" width="200" height="80" fill="#ff7f0e"/></svg>')


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
    for model, options in CLASSIFIERS.items():
        result = fit(TrainConfig(model=model, hidden=8, embed_dim=8, epochs=6, lr=0.02, train_limit=1000,
                                 patience=None, model_options=options), out=folder / model, progress=False,
                     log=lambda *a: None)
        (folder / model / "results.json").write_text(json.dumps(dataclasses.asdict(result)))   # as minidl train
        paths[model] = folder / model / "best.npz"
    return paths


@pytest.fixture(scope="session")
def runs(checkpoints, tmp_path_factory):
    """A --runs folder: two finished runs (mlp, gru), a sweep of both, a plot, and a half-written file."""
    folder = tmp_path_factory.mktemp("runs")
    records = []
    for model in ("mlp", "gru"):
        (folder / model).mkdir()
        shutil.copy(checkpoints[model].parent / "results.json", folder / model / "results.json")
        result = json.loads((folder / model / "results.json").read_text())
        records.append({"key": model, **{k: result[k] for k in ("config", "test", "history")}})
    (folder / "sweep").mkdir()
    (folder / "sweep" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "sweep" / "plot.svg").write_text(PLOT)
    (folder / "broken.json").write_text('{"config": {"model": "gru"}, "hist')
    return folder


def one_epoch_runs(folder):
    """A --runs folder as a user's sweep left it: two sweeps of one epoch appended to one file with
    --set lr=0.001 and --set lr=0.01 (mlp, two seeds each) and a gru job, and a run after its first
    evaluation, with its validation numbers only (one point a chart). -> the sweep's records."""
    def record(model, hidden, seed, lr, accuracy):
        evaluation = {"step": 9, "epoch": 1.0, "loss": 0.69, "accuracy": accuracy}
        return {"key": f"{model}-{hidden}-{seed}-{lr}", "test": {"accuracy": accuracy, "f1": 0.5, "auc": 0.5},
                "config": {"model": model, "hidden": hidden, "seed": seed, "epochs": 1, "lr": lr},
                "history": [evaluation]}

    records = [record("mlp", 4, seed, lr, 0.5 + seed / 10 + lr) for lr in (0.001, 0.01) for seed in (0, 1)]
    records.append(record("gru", 8, 0, 0.01, 0.6))
    (folder / "lrs").mkdir(parents=True)
    (folder / "lrs" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "first").mkdir()
    first = {"config": {"model": "gru", "hidden": 8, "seed": 0},
             "history": [{"epoch": 1.0, "loss": 0.633, "accuracy": 0.5}]}
    (folder / "first" / "results.json").write_text(json.dumps(first))
    return records


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


@pytest.fixture(scope="session")
def views_models(checkpoints, runs):
    """The classifiers with and without attention, and the runs folder: what the Graph, Attention and
    Runs views read."""
    return Models(classifiers=[checkpoints[name] for name in ("mlp", "transformer", "attention")], runs=runs)


@pytest.fixture(scope="module")
def views_url(views_models):
    yield from serving(views_models)


@pytest.fixture(scope="session")
def chromium():
    """The browser's path; skips (before any model is made) where there is none."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("chromium is not installed: apt-get install chromium (make test installs it where it can)")


WIDTH, HEIGHT = 1200, 900


def browse(chromium, url, folder):
    """Open ``url`` in headless Chromium (10 s of virtual time for its scripts) -> (the DOM, the screenshot's path)."""
    screenshot = folder / "page.png"
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--window-size={WIDTH},{HEIGHT}", "--virtual-time-budget=10000",
               f"--user-data-dir={folder / 'profile'}", f"--screenshot={screenshot}", "--dump-dom", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=folder)
    assert done.returncode == 0 and screenshot.exists(), done.stderr[-2000:]
    return done.stdout, screenshot


def _rgb(screenshot):
    """The screenshot as (H, W, 3) ints in 0-255."""
    import numpy as np
    from matplotlib.image import imread

    image = imread(screenshot)                                     # (H, W, 3 or 4) floats in [0, 1]
    assert image.shape[:2] == (HEIGHT, WIDTH)
    return np.round(image[..., :3] * 255).astype(int)


def pixels(screenshot, colour, tolerance=2):
    """How many pixels of the screenshot have ``colour`` (r, g, b in 0-255), within ``tolerance``."""
    import numpy as np

    return int((np.abs(_rgb(screenshot) - colour).max(axis=-1) <= tolerance).sum())


def ink(screenshot):
    """The fraction of the screenshot that is not (nearly) white: about 0 for a blank page."""
    return float((_rgb(screenshot) < 250).any(axis=-1).mean())
