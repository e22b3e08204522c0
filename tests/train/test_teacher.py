"""Training with a teacher (minidl/train/teacher.py): its logits as soft targets, unlabelled
reviews it labels, an ensemble of teachers, and the settings refused before any work."""
import re

import numpy as np
import pytest

import minidl as md
from minidl.data.batching import batches
from minidl.data.dataset import TextDataset
from minidl.train import TrainConfig, fit, load_classifier
from minidl.train.config import ConfigError
from minidl.train.prepare import prepare
from minidl.train.teacher import teacher_logits
from minidl.train.trainer import evaluate

QUICK = dict(model="gru", hidden=8, embed_dim=8, epochs=1, batch_size=64, train_limit=300, eval_every=None,
             patience=None, validation=0.2)


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    """Two small trained classifiers on the synthetic corpus: their best.npz paths."""
    folder = tmp_path_factory.mktemp("teachers")
    paths = []
    for seed in (0, 1):
        fit(TrainConfig(**QUICK, seed=seed), out=folder / f"t{seed}", progress=False)
        paths.append(str(folder / f"t{seed}" / "best.npz"))
    return paths


def test_the_table_holds_each_teachers_logits_and_an_ensemble_their_mean(teachers):
    texts = TextDataset(["a fine film", "awful", "!!", "good plot but awful acting"], [1, 0, 0, 0], ["neg", "pos"])
    one, two = (teacher_logits(path, texts) for path in teachers)
    model, vocab, tokenizer, _, _ = load_classifier(teachers[0])
    for i, text in enumerate(texts.texts):
        ids = vocab.encode(tokenizer(text))
        if not len(ids):
            np.testing.assert_array_equal(one[i], 0.0)       # nothing left to read: uniform targets
            continue
        with md.no_grad():
            expected = model(md.tensor(np.array([ids])), md.ones((1, len(ids))), md.tensor(np.array([len(ids)])))
        np.testing.assert_allclose(one[i], expected.logits.numpy()[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(teacher_logits(",".join(teachers), texts), (one + two) / 2, rtol=1e-6, atol=1e-6)


def test_a_baseline_teacher_is_trained_on_the_labelled_reviews_only(teachers):
    """"nbsvm": minidl.baseline's NB-SVM fitted to the labelled reviews given, scoring the texts;
    mixed with a checkpoint, the mean of the two."""
    from minidl.baseline import fit_baseline

    labelled = TextDataset(["a fine good film", "awful bad plot", "good acting", "bad awful"] * 5, [1, 0, 1, 0] * 5,
                           ["neg", "pos"])
    texts = TextDataset(["good film", "bad plot", "nothing known"], [0, 0, 0], ["neg", "pos"])
    model, _, (x,) = fit_baseline("nbsvm", labelled, [texts.texts], 100)
    with md.no_grad():
        expected = model(x.astype(model.weight.dtype)).numpy()
    logits = teacher_logits("nbsvm", texts, labelled=labelled, max_length=100)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
    assert logits[0].argmax() == 1 and logits[1].argmax() == 0
    both = teacher_logits(f"nbsvm,{teachers[0]}", texts, labelled=labelled, max_length=100)
    np.testing.assert_allclose(both, (logits + teacher_logits(teachers[0], texts)) / 2, rtol=1e-5, atol=1e-6)


def test_a_checkpoints_table_is_kept_beside_it_and_read_back_bit_for_bit(teachers, monkeypatch, capsys):
    """The second run on the same texts reads the kept table (the teacher is not run again) and
    gets the same numbers; other texts, or the same in another order, are scored afresh."""
    import glob
    import importlib
    import os

    distill = importlib.import_module("minidl.compress.distill")     # the module; minidl.compress.distill is a function

    texts = TextDataset(["kept table one", "a second review", "and a third"], [0, 1, 0], ["neg", "pos"])
    before = set(glob.glob(teachers[1] + ".logits-*.npy"))
    first = teacher_logits(teachers[1], texts)
    kept = set(glob.glob(teachers[1] + ".logits-*.npy")) - before
    assert len(kept) == 1 and not glob.glob(os.path.join(os.path.dirname(teachers[1]), ".*.tmp*"))  # no temporary left
    calls = []
    real = distill.teacher_logits_table
    monkeypatch.setattr(distill, "teacher_logits_table", lambda *a, **k: calls.append(1) or real(*a, **k))
    capsys.readouterr()
    np.testing.assert_array_equal(teacher_logits(teachers[1], texts), first)
    assert calls == [] and "logits from" in capsys.readouterr().err
    reordered = TextDataset(texts.texts[::-1], [0, 1, 0], ["neg", "pos"])
    np.testing.assert_array_equal(teacher_logits(teachers[1], reordered), first[::-1])
    assert calls == [1]
    path = kept.pop()
    os.remove(path)                                          # gone: scored again, the same numbers
    np.testing.assert_array_equal(teacher_logits(teachers[1], texts), first)
    assert "review/s" not in capsys.readouterr().err   # no bar: fit(progress=False), train --quiet, a sweep's workers
    assert calls == [1, 1]
    with open(path, "r+b") as f:                             # cut short: scored again and written whole
        f.truncate(40)
    np.testing.assert_array_equal(teacher_logits(teachers[1], texts), first)
    assert calls == [1, 1, 1] and np.load(path).shape == first.shape


def test_alpha_one_is_training_on_the_labels_alone(teachers):
    plain = fit(TrainConfig(**QUICK, seed=2), progress=False)
    taught = fit(TrainConfig(**QUICK, seed=2, teacher=teachers[0], distill_alpha=1.0), progress=False)
    np.testing.assert_allclose([h["train_loss"] for h in taught.history], [h["train_loss"] for h in plain.history],
                               rtol=1e-6)
    assert taught.test["accuracy"] == pytest.approx(plain.test["accuracy"])


def test_the_student_moves_towards_its_teacher(teachers):
    """alpha 0: the soft term alone; the student then agrees with the teacher more than a
    student trained on the labels does (the synthetic teacher is far from perfect)."""
    config = dict(QUICK, seed=3, epochs=3)
    plain = fit(TrainConfig(**config), progress=False)
    taught = fit(TrainConfig(**config, teacher=teachers[0], distill_alpha=0.0, temperature=1.0), progress=False)
    test = prepare(TrainConfig(**config)).test
    teacher, *_ = load_classifier(teachers[0])

    def choices(model):
        probabilities = []
        model.eval()
        with md.no_grad():
            for batch in batches(test, 128, shuffle=False):
                probabilities.append(model(batch.ids, batch.mask, batch.lengths).logits.numpy().argmax(1))
        return np.concatenate(probabilities)

    goal = choices(teacher)
    assert (choices(taught.model) == goal).mean() > (choices(plain.model) == goal).mean()
    assert evaluate(taught.model, test)["accuracy"] > 0.5


def test_unlabelled_reviews_join_training_labelled_by_the_teacher(tmp_path, monkeypatch):
    from tests.data.conftest import UNSUP, write_fake_imdb

    write_fake_imdb(tmp_path / "imdb")
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "imdb"))
    base = dict(model="mlp", hidden=[4], embed_dim=4, epochs=1, batch_size=4, data="imdb", validation=0.0)
    fit(TrainConfig(**base), out=tmp_path / "teacher", progress=False)
    teacher = str(tmp_path / "teacher" / "best.npz")
    plain = prepare(TrainConfig(**base))
    taught = prepare(TrainConfig(**base, teacher=teacher, unlabelled=5))
    assert len(taught.train) == len(plain.train) + 5 <= len(plain.train) + UNSUP
    assert taught.vocab.to_dict() == plain.vocab.to_dict()             # the labelled reviews' vocabulary
    assert taught.teacher_logits.shape == (len(taught.train), 2)
    n = len(plain.train)
    np.testing.assert_array_equal(taught.train.labels[:n], plain.train.labels)
    np.testing.assert_array_equal(taught.train.labels[n:], taught.teacher_logits[n:].argmax(1))
    result = fit(TrainConfig(**base, teacher=teacher, unlabelled=5), progress=False)
    assert result.steps == -(-len(taught.train) // 4)


@pytest.mark.parametrize("settings, words", [
    (dict(unlabelled=10), "--unlabelled 10: the unlabelled reviews are labelled by the teacher"),
    (dict(teacher="nowhere/best.npz"), "--teacher 'nowhere/best.npz': no such file"),
    (dict(teacher="NBSVM"), "--teacher 'NBSVM': no such file; give the best.npz of a minidl train run, or a "
                            "baseline"),   # the baselines (tfidf, nbsvm) were not named
    (dict(teacher="TEACHER", distill_alpha=1.5), "--distill-alpha is the share of the label term"),
    (dict(teacher="TEACHER", temperature=0), "--temperature must be > 0"),
    (dict(teacher="TEACHER", temperature=float("inf")), "--temperature must be > 0 and at most 1e6"),   # nan loss
    (dict(teacher="TEACHER", temperature=1e200), "--temperature must be > 0 and at most 1e6"),   # T² overflowed
    (dict(teacher="TEACHER", train_windows=True), "--teacher with --train-windows"),
    (dict(teacher="TEACHER", unlabelled=10), "--unlabelled 10: unlabelled reviews come with --data imdb only"),
    (dict(teacher="TEACHER", unlabelled=-1), "--unlabelled must be a whole number >= 0"),
    (dict(teacher="TEACHER", unlabelled=60000, data="imdb"), "--unlabelled 60000: IMDB has 50,000 unlabelled"),
])
def test_teacher_settings_that_cannot_work_are_refused_in_one_line(teachers, settings, words):
    settings = {k: teachers[0] if v == "TEACHER" else v for k, v in settings.items()}
    with pytest.raises(ConfigError, match="^" + words.replace("(", r"\(").replace("-", r"\-")):
        TrainConfig(**QUICK, **settings).check()


def test_a_file_that_is_not_a_classifier_checkpoint_is_refused_as_a_teacher(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"not an npz")
    with pytest.raises(ConfigError, match="--teacher"):
        TrainConfig(**QUICK, teacher=str(tmp_path / "x.npz")).check()


def test_a_run_folder_as_a_teacher_is_told_to_name_the_checkpoint_in_it(teachers):
    """It was "no such file; give the best.npz of a minidl train run", as if the folder were not there."""
    with pytest.raises(ConfigError, match=r"is a directory, not a \.npz file; pass the checkpoint file inside it, "
                                          r"one of best\.npz"):
        TrainConfig(**QUICK, teacher=teachers[0].removesuffix("best.npz")).check()


def test_teachers_that_cannot_teach_this_data_are_refused_in_one_line(teachers, tmp_path):
    """An empty --teacher, a weights file or masked-LM that no minidl train wrote, a teacher of other labels and
    nbsvm on three classes: each a ConfigError naming the teacher and what to give instead (most ran in no test)."""
    from minidl import nn
    from minidl.mlm import build_mlm, build_vocabulary, save_mlm

    nn.Linear(2, 2).save(tmp_path / "weights.npz")
    settings = dict(d_model=8, num_heads=2, num_layers=1, d_ff=16, max_len=8, dropout=0.0)
    vocab = build_vocabulary([["a", "b"]], max_size=None, min_freq=1)
    save_mlm(tmp_path / "mlm.npz", build_mlm(len(vocab), settings, "cpu"), vocab, settings)
    for spec, words in ((" , ", "--teacher ' , ': give a checkpoint, e.g. runs/gru/best.npz, or a baseline"),
                        (str(tmp_path / "weights.npz"), "without minidl training metadata"),
                        (str(tmp_path / "mlm.npz"), "mlm.npz' is a masked-LM checkpoint")):
        with pytest.raises(ConfigError, match=re.escape(words)):
            TrainConfig(**QUICK, teacher=spec).check()
    table = tmp_path / "three.csv"
    table.write_text("text,label\n" + "".join(f"review number {i} is {w},{w}\n"
                                              for i in range(30) for w in ("good", "bad", "meh")))
    own = {**QUICK, "data": str(table), "train_limit": None}
    for teacher, words in ((teachers[0], "classifies ['neg', 'pos'] but the data has ['bad', 'good', 'meh']; give "
                                         "a teacher trained on the same labels"),
                           ("nbsvm", "--teacher nbsvm compares two classes; the data has 3 (bad, good, meh): use "
                                     "--teacher tfidf")):
        with pytest.raises(ConfigError, match=re.escape(words)):
            fit(TrainConfig(**own, teacher=teacher), progress=False)
