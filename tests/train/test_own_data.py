"""Your own data from the command line: train / validation / test files, columns that differ
between files, labels matched by name, and every bad input answered in one line before any work."""
import json
import os
import shutil

import numpy as np
import pytest

from minidl.cli import main
from minidl.data import make_reviews


def _write(path, header, rows):
    with open(path, "w", encoding="utf-8") as f:
        f.write("\t".join(header) + "\n")
        for row in rows:
            f.write("\t".join(str(v) for v in row) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def triple(tmp_path_factory):
    """A train/dev/test TSV triple like a public sentence-level sentiment set: the training file
    holds phrases of its sentences (column "sentence"), dev and test whole sentences (column
    "content"); labels 0/1."""
    folder = tmp_path_factory.mktemp("own")
    sentences = make_reviews(900, seed=5, min_length=6, max_length=12, negation_prob=0.0, max_distance=3)
    rows = [(text, int(label)) for text, label in zip(sentences.texts, sentences.labels)]
    phrases = []
    for text, label in rows[:600]:
        words = text.split()
        phrases += [(text, label), (" ".join(words[:len(words) // 2 + 2]), label), (" ".join(words[2:]), label)]
    return {"train": _write(folder / "train.tsv", ("sentence", "label"), phrases),
            "dev": _write(folder / "dev.tsv", ("content", "label"), rows[600:750]),
            "test": _write(folder / "test.tsv", ("content", "label"), rows[750:]),
            "folder": folder}


def _train(triple, out, *extra):
    return main(["train", "--data", triple["train"], "--validation-data", triple["dev"], "--test-data", triple["test"],
                 "--text-column", "sentence,content", "--label-names", "0=neg,1=pos", "--model", "mlp",
                 "--hidden", "16", "--embed-dim", "16", "--epochs", "3", "--lr", "0.01", "--min-freq", "1",
                 "--out", str(out), "--quiet", *extra])


def test_train_on_train_stop_on_dev_report_test_then_eval_every_row(triple, capsys):
    out = triple["folder"] / "run"
    assert _train(triple, out, "--json") == 0
    printed = json.loads(capsys.readouterr().out)
    results = json.loads((out / "results.json").read_text())
    assert results["test"]["n"] == 150 and printed["test"]["accuracy"] == results["test"]["accuracy"]
    assert results["label_names"] == ["neg", "pos"] and results["test"]["accuracy"] > 0.8
    assert results["config"]["validation_data"] == triple["dev"]

    assert main(["eval", "--checkpoint", str(out / "best.npz"), "--data", triple["dev"], "--json"]) == 0
    dev = json.loads(capsys.readouterr().out)
    assert dev["n"] == 150 and dev["accuracy"] > 0.8                  # every row, not a 20 % slice

    # the same rows labelled by name, in another order: matched by name, the same metrics
    named = _write(triple["folder"] / "named.csv", ("text", "label"), [])
    with open(triple["dev"], encoding="utf-8") as f:
        lines = f.read().splitlines()[1:]
    with open(named, "w", encoding="utf-8") as f:
        f.write("text,label\n" + "".join(f"{t},{['neg', 'pos'][int(y)]}\n" for t, y in
                                         (line.split("\t") for line in reversed(lines))))
    assert main(["eval", "--checkpoint", str(out / "best.npz"), "--data", named, "--text-column", "text"]) == 0
    table = capsys.readouterr().out
    assert "150 reviews" in table and "neg" in table and "pos" in table and f"{dev['accuracy']:.4f}" in table


def test_eval_refuses_labels_the_checkpoint_does_not_know(triple, capsys):
    out = triple["folder"] / "run2"
    assert _train(triple, out) == 0
    capsys.readouterr()
    fresh = _write(triple["folder"] / "fresh.tsv", ("content", "label"), [("a fine film", "fresh"),
                                                                          ("a dull film", "rotten")])
    assert main(["eval", "--checkpoint", str(out / "best.npz"), "--data", fresh]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'fresh'" in err and "'rotten'" in err and "0=neg" in err

    # one class only: AUC is undefined and reads null; the JSON stays valid JSON
    positive = _write(triple["folder"] / "pos.tsv", ("content", "label"), [("good good film", 1)] * 5)
    assert main(["eval", "--checkpoint", str(out / "best.npz"), "--data", positive, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["auc"] is None


def test_eval_of_a_checkpoint_reads_its_test_data_file_alone_and_names_it(triple, capsys):
    """eval --checkpoint of a run with --test-data read the training file too, and a column missing there was
    said of it ("train.tsv: no column 'content'"), though the test split it scores is the --test-data file."""
    out = triple["folder"] / "run_test_data"
    assert _train(triple, out) == 0
    trained = json.loads((out / "results.json").read_text())["test"]
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(out / "best.npz"), "--text-column", "content", "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["n"] == 150 and scored["accuracy"] == trained["accuracy"]
    assert main(["eval", "--checkpoint", str(out / "best.npz"), "--label-column", "stars"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{triple['test']}: no column 'stars'" in err, err
    # the checkpoint's files are not those of --data synthetic: "--test-data go with --data FILE"
    assert main(["eval", "--checkpoint", str(out / "best.npz"), "--data", "synthetic", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 1000


BAD_SETTINGS = [
    (["--model", "nosuch"], "--model 'nosuch' is not a model"),
    (["--hidden", "0"], "--hidden must be a whole number >= 1"),
    (["--hidden", "[4,3]"], "a list of layer sizes is for mlp, softmax"),
    (["--batch-size", "0"], "--batch-size must be a whole number >= 1"),
    (["--validation", "1.5"], "--validation must lie in [0, 1)"),
    (["--model-options", '{"bogus": 1}'], "--model-options ['bogus']: gru has no such setting"),
    (["--lr", "-0.1"], "--lr must be a number >= 0"),
    (["--clip-norm", "0"], "--clip-norm must be a number > 0 (or none)"),
    (["--data", "no/such/file.csv"], "no such file"),
    (["--test-data", "no/such/test.tsv"], "--test-data 'no/such/test.tsv': no such file"),
    (["--data", "tests"], "--data 'tests': is a folder, not a file"),      # "no such file" before
    (["--data-path", "tests/data/conftest.py"], "--data-path 'tests/data/conftest.py': it says where the IMDB "
                                                "data is, for --data imdb; --data is 'synthetic'"),  # was ignored
    (["--label-names", "a,b"], "--label-names 'a,b': it is for tables of your own (--data FILE, --validation-data, "
                               "--test-data); --data synthetic has its own texts and labels"),   # was ignored too
    (["--data", "imdb", "--text-column", "review"], "--text-column 'review': it is for tables of your own"),
    (["--data", "tests/data/conftest.py", "--label-names", "0=neg,pos"], 'all as "neg,pos" or all as "0=neg,1=pos"'),
    (["--data", "tests/data/conftest.py", "--label-names", "pos"], "give two or more distinct labels"),
    # every row went to class 1 (a "1" was class 0's label and class 1's name), and the test accuracy read 1.0
    (["--data", "tests/data/conftest.py", "--label-names", "1=0,2=1"], "--label-names '1=0,2=1': the name '1' is "
                                                                       "another class's label in the file"),
    # "minidl train: None (tried text columns [], ...)"
    (["--data", "tests/data/conftest.py", "--text-column", ""], "--text-column '' names no column"),
    (["--data", "tests/data/conftest.py", "--label-column", " ,"], "--label-column ' ,' names no column"),
    # accepted without a word: the test score was the training score; --validation was ignored
    (["--data", "tests/data/conftest.py", "--test-data", "tests/data/../data/conftest.py"],
     "--test-data 'tests/data/../data/conftest.py' is the --data file: the test score would be a training score"),
    (["--data", "tests/data/conftest.py", "--validation-data", "tests/data/conftest.py"],
     "is the --data file: early stopping would pick the model on reviews it trained on"),
    # the test score chose the checkpoint
    (["--data", "tests/conftest.py", "--validation-data", "tests/data/conftest.py", "--test-data",
      "tests/data/../data/conftest.py"], "--test-data 'tests/data/../data/conftest.py' is the --validation-data "
                                         "file: the test score would have chosen the checkpoint"),
    (["--data", "tests/data/conftest.py", "--validation-data", "tests/conftest.py", "--validation", "0.3"],
     "--validation 0.3 holds out a share of --data for validation, --validation-data gives the validation reviews"),
]


@pytest.mark.parametrize("flags,message", BAD_SETTINGS)
def test_bad_settings_are_one_line_before_any_work(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--out", str(out), *flags]) == 1
    captured = capsys.readouterr()
    assert len(captured.err.strip().splitlines()) == 1 and message in captured.err, captured.err
    assert captured.err.startswith("minidl train: ") and not out.exists()   # nothing written


def test_a_missing_gpu_is_one_line(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    assert main(["train", "--device", "cuda", "--out", str(tmp_path / "run")]) == 1
    assert "PyTorch sees no CUDA GPU" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_model_options_that_are_not_json_are_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--model-options", "radius=5"])
    assert stop.value.code == 2 and "give a JSON object" in capsys.readouterr().err


def test_out_folders_that_cannot_take_the_run(tmp_path, capsys):
    """A file, a path under a file, and another run's folder are refused before training;
    --resume and --overwrite are the two ways into a used folder."""
    quick = ["train", "--epochs", "1", "--train-limit", "200", "--quiet"]
    a_file = tmp_path / "file.txt"
    a_file.write_text("mine")
    for out in (a_file, a_file / "run"):
        assert main([*quick, "--out", str(out)]) == 1
        assert "is a file" in capsys.readouterr().err and a_file.read_text() == "mine"
    run = tmp_path / "run"
    assert main([*quick, "--out", str(run)]) == 0
    before = (run / "best.npz").read_bytes()
    capsys.readouterr()
    assert main([*quick, "--lr", "0.01", "--out", str(run)]) == 1
    err = capsys.readouterr().err
    assert "holds another run" in err and "--overwrite" in err and (run / "best.npz").read_bytes() == before
    assert main([*quick, "--lr", "0.01", "--out", str(run), "--resume"]) == 1       # other settings
    err = capsys.readouterr().err
    assert "different settings" in err and "--debug" not in err and (run / "best.npz").read_bytes() == before
    assert main([*quick, "--lr", "0.01", "--out", str(run), "--overwrite"]) == 0
    assert (run / "best.npz").read_bytes() != before
    mine = tmp_path / "mine"      # files of the user's that share a run's names: --overwrite replaced them
    mine.mkdir()
    (mine / "results.json").write_text('{"my": "data"}')
    assert main([*quick, "--out", str(mine), "--overwrite"]) == 1
    assert "results.json is there and was not written by minidl train" in capsys.readouterr().err
    assert (mine / "results.json").read_text() == '{"my": "data"}' and not (mine / "best.npz").exists()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write into a read-only folder")
def test_a_read_only_out_is_refused_before_training(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["train", "--epochs", "1", "--out", str(locked / "run")]) == 1
        assert "cannot write" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


def test_the_train_table_names_the_labels(tmp_path, capsys):
    assert main(["train", "--epochs", "1", "--train-limit", "300", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "confusion matrix" in out and "neg" in out and "accuracy" in out
    assert not out.lstrip().startswith("{")
    assert np.isfinite(float(out.split("accuracy")[1].split()[5]))


def test_tokenizer_options_travel_in_the_checkpoint(tmp_path, capsys):
    """--min-word-length 1 --keep-digits --contractions not: the checkpoint re-tokenises new
    text the same way, and explain shows every word, the dropped ones marked."""
    from minidl.train import load_classifier

    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--train-limit", "200", "--quiet", "--out", str(out),
                 "--min-word-length", "1", "--keep-digits", "--contractions", "not"]) == 0
    tokenizer = load_classifier(out / "best.npz")[2]
    assert tokenizer("I didn't like it, 10/10.") == ["i", "did", "not", "like", "it", "10", "10"]
    capsys.readouterr()
    assert main(["explain", "I didn't like it <br /> at all", "--checkpoint", str(out / "best.npz")]) == 0
    printed = capsys.readouterr().out
    assert "didn't" in printed and "dropped by cleaning: HTML tag" in printed
    assert main(["train", "--contractions", "maybe", "--out", str(tmp_path / "bad")]) == 1
    assert "--contractions must be one of split, not (or left out)" in capsys.readouterr().err   # None: untypeable


def test_a_file_whose_texts_all_clean_to_nothing_is_one_line(tmp_path, capsys):
    digits = tmp_path / "digits.csv"
    digits.write_text("text,label\n" + "".join(f"{i} {7 * i} !!,{i % 2}\n" for i in range(30)))
    assert main(["train", "--data", str(digits), "--epochs", "1", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "empty after cleaning" in err and "--keep-digits" in err
    assert main(["train", "--data", str(digits), "--epochs", "1", "--quiet", "--keep-digits",
                 "--min-word-length", "1"]) == 0


def test_a_test_or_scored_file_whose_texts_all_clean_to_nothing_is_one_line_before_training(triple, tmp_path, capsys):
    """It crashed with NumPy's "need at least one array to concatenate": train --test-data after training (the
    checkpoints written, no results.json), eval --data after loading."""
    numbers = _write(tmp_path / "numbers.tsv", ("content", "label"), [("10/10", 1), ("1/10", 0)])
    out = tmp_path / "run"
    assert main(["train", "--data", triple["train"], "--test-data", numbers, "--text-column", "sentence,content",
                 "--epochs", "1", "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"{numbers}: all 2 reviews are empty after cleaning" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert _train(triple, out) == 0
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(out / "best.npz"), "--data", numbers]) == 1
    assert f"{numbers}: all 2 reviews are empty after cleaning" in capsys.readouterr().err


def test_a_min_freq_that_leaves_no_word_is_refused(triple, tmp_path, capsys):
    """--min-freq 100000 kept no word: every review read as <unk>, a constant classifier scored, exit 0."""
    assert _train(triple, tmp_path / "run", "--min-freq", "100000") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--min-freq 100000 leaves no word in the vocabulary (the most frequent is seen" in err[0]
    # the label column named as a text column too: the model read the label (test accuracy 1.0)
    assert _train(triple, tmp_path / "run", "--text-column", "sentence,label") == 1
    assert capsys.readouterr().err.strip().endswith("--text-column and --label-column both name 'label': the model "
                                                    "would read the label; give two columns")


def test_a_metric_that_needs_two_classes_is_refused_on_one_class_validation(triple, tmp_path, capsys):
    """--metric auc on validation reviews of one class: AUC was NaN at every evaluation, so the first
    checkpoint was kept and the run stopped early, with a test accuracy far below --metric accuracy's."""
    rows = [line.split("\t") for line in open(triple["dev"], encoding="utf-8").read().splitlines()[1:]]
    positive = _write(tmp_path / "positive.tsv", ("content", "label"), [row for row in rows if row[1] == "1"])
    for metric in ("auc", "f1"):
        assert _train({**triple, "dev": positive}, tmp_path / metric, "--metric", metric) == 1
        err = capsys.readouterr().err.strip().splitlines()
        kept = sum(row[1] == "1" for row in rows)
        assert err[-1].endswith(f"--metric {metric} cannot rank the checkpoints: the {kept} validation "
                                f"reviews are all 'pos'; choose --metric accuracy or loss, or give validation "
                                f"reviews of two classes or more"), err
        assert not (tmp_path / metric / "best.npz").exists()


def test_a_checkpoint_reads_its_own_data_again_only_as_it_was(tmp_path, capsys, monkeypatch):
    """A checkpoint keeps its data file's path as given: eval from another folder said only
    "load_table: my.csv is not a file", and after an edit of the file it scored a "test split" of
    the new one (which may hold reviews it was trained on), exit 0; --resume went on with it."""
    monkeypatch.chdir(tmp_path)
    sentences = make_reviews(60, seed=1, min_length=4, max_length=8, max_distance=3)
    _write(tmp_path / "my.tsv", ("text", "label"), zip(sentences.texts, sentences.labels))
    train = ["train", "--data", "my.tsv", "--model", "mlp", "--hidden", "4", "--epochs", "1", "--min-freq", "1",
             "--quiet", "--out", "run"]
    assert main(train) == 0 and main(["eval", "--checkpoint", "run/best.npz"]) == 0
    capsys.readouterr()
    monkeypatch.chdir(tmp_path / "run")
    # the recorded absolute path, as it was: read there (it was "which is not here; run from the folder it was ...")
    assert main(["eval", "--checkpoint", "best.npz"]) == 0
    kept = (tmp_path / "my.tsv").read_bytes()
    (tmp_path / "my.tsv").write_bytes(kept + b"one more review\t1\n")   # ... only as it was
    assert main(["eval", "--checkpoint", "best.npz"]) == 1
    assert f"{tmp_path / 'my.tsv'} has changed since best.npz was trained on it" in capsys.readouterr().err
    (tmp_path / "my.tsv").write_bytes(kept)
    (tmp_path / "run" / "my.tsv").write_text("text\tlabel\nanother file\t1\n")   # "my.tsv has changed ...; restore"
    assert main(["eval", "--checkpoint", "best.npz"]) == 1
    assert capsys.readouterr().err == (f"minidl eval: best.npz was trained on --data {tmp_path / 'my.tsv'}; the my.tsv "
                                       f"here is another file: run from the folder it was trained in\n")
    (tmp_path / "my.tsv").rename(tmp_path / "kept.tsv")   # ... but only while that file is there as it was
    assert main(["eval", "--checkpoint", "best.npz"]) == 1
    assert "my.tsv has changed since best.npz was trained on it" in capsys.readouterr().err
    (tmp_path / "kept.tsv").rename(tmp_path / "my.tsv")
    monkeypatch.chdir(tmp_path)
    with open("my.tsv", "a") as f:
        f.write("one more review\t1\n")
    assert main(["eval", "--checkpoint", "run/best.npz"]) == 1
    assert capsys.readouterr().err == ("minidl eval: my.tsv has changed since run/best.npz was trained on it (--data; "
                                       "its SHA-256 differs), so its splits would be other reviews; restore the file, "
                                       "or score a file whole with --data FILE\n")
    assert main(["eval", "--checkpoint", "run/best.npz", "--data", "my.tsv"]) == 0   # a file scored whole: any file
    os.rename("my.tsv", "moved.tsv")   # moved: another folder cannot help (the message said to run from one)
    assert main(["eval", "--checkpoint", "run/best.npz"]) == 1
    assert capsys.readouterr().err.endswith("which is not here; it is not there either: restore the file, or score a "
                                            "file whole with --data FILE\n")
    os.rename("moved.tsv", "my.tsv")
    assert main([*train, "--resume"]) == 1 and "my.tsv has changed since run/last.npz" in capsys.readouterr().err
    shutil.copy("my.tsv", "other.tsv")   # --resume with another --data: the first file was blamed for changing
    assert main([*train[:2], "other.tsv", *train[3:], "--resume"]) == 1
    assert capsys.readouterr().err == ("minidl train: run/last.npz was trained on --data my.tsv, and this run gives "
                                       "--data other.tsv; give the same file\n")


def test_warnings_about_the_data_are_one_line_each(tmp_path, capsys):
    """Bytes that are not UTF-8 were reported in Python's warning format: the file and line of
    minidl's code, then that line of source; the advice named an option the command lacks."""
    table = tmp_path / "latin.csv"
    table.write_bytes(b"text,label\n" + b"".join(b"caf\xe9 film %d good,pos\nbad film %d,neg\n" % (i, i)
                                                   for i in range(15)))
    assert main(["train", "--data", str(table), "--epochs", "1", "--quiet", "--model", "mlp", "--hidden", "4"]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warning == [f"minidl train: warning: {table}: 15 row(s) had bytes that are not valid utf-8 (row 1 (line 2), "
                       f"row 3 (line 4), row 5 (line 6), row 7 (line 8), row 9 (line 10), ... 10 more); they were "
                       f"replaced with U+FFFD. If the file is not utf-8, save it as UTF-8 (or, from Python, pass "
                       f"encoding=)"], warning


def test_train_windows_cut_each_training_text_into_windows_and_leave_the_rest_alone(tmp_path):
    """--train-windows: words 1-N, N+1-2N, ... of each training text are examples with its label
    (a last window under N/2 words is left out); validation and test still read the first N."""
    from minidl.train import TrainConfig
    from minidl.train.prepare import prepare

    words = [f"w{chr(97 + i)}" for i in range(23)]      # wa, wb, ...: letters only, as the cleaning keeps
    rows = [(" ".join(words[:n]), n % 2) for n in (23, 9, 4, 2)] * 3
    train = _write(tmp_path / "train.tsv", ("text", "label"), rows)
    held = _write(tmp_path / "held.tsv", ("text", "label"), rows[:4])
    config = dict(data=train, validation_data=held, test_data=held, max_length=4, min_freq=1)
    first, windowed = (prepare(TrainConfig(**config, train_windows=windows)) for windows in (False, True))
    # 23 words: 6 windows (the 3 words left over are under N/2); 9: 2 (1 left over); 4: 1; 2: 1 (a first window)
    assert len(first.train) == 12 and len(windowed.train) == 3 * (6 + 2 + 1 + 1)
    decoded = [windowed.vocab.decode(ids) for ids in windowed.train.ids[:10]]
    assert decoded[:6] == [words[i:i + 4] for i in range(0, 24, 4)][:6]
    assert decoded[6:8] == [words[0:4], words[4:8]] and decoded[8:] == [words[:4], words[:2]]
    np.testing.assert_array_equal(windowed.train.labels[:10], [1] * 6 + [1] * 2 + [0, 0])
    for split in ("validation", "test"):
        np.testing.assert_array_equal(np.concatenate(getattr(windowed, split).ids),
                                      np.concatenate(getattr(first, split).ids))
        assert max(getattr(windowed, split).lengths) == 4


def test_many_unknown_labels_are_a_short_line(triple, capsys):
    """eval --label-column text listed every review's text as an unknown label, on one line."""
    out = triple["folder"] / "run3"
    assert _train(triple, out) == 0
    capsys.readouterr()
    texts = _write(triple["folder"] / "texts.tsv", ("content", "label"),
                   [(f"review {i} " + "word " * 30, "pos") for i in range(50)])
    assert main(["eval", "--checkpoint", str(out / "best.npz"), "--data", texts, "--label-column", "content"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 600 and "... 45 more are not among the checkpoint" in err, err


def test_a_run_with_validation_data_resumes_whatever_its_unused_validation_share_was(triple, tmp_path):
    """--validation with --validation-data is refused now; a run started with both before (its config holds
    validation 0.2) was refused at --resume either way: with --validation 0.2 by the new check, without it as
    trained with other settings."""
    from minidl.io import from_json_array, json_array, read_npz, write_npz

    out = tmp_path / "run"
    assert _train(triple, out) == 0
    arrays = read_npz(out / "last.npz")
    meta = from_json_array(arrays["meta"])
    meta["config"]["validation"] = 0.2
    write_npz(out / "last.npz", {**arrays, "meta": json_array(meta)})
    assert _train(triple, out, "--resume") == 0


def test_a_class_with_no_training_row_is_refused_before_training(tmp_path, capsys):
    """--train-limit 60 of a file sorted by label trained on 'neg' rows alone (validation too: accuracy 1.0 at
    once, an early stop, 'pos' never predicted), and a class of 2 rows lost both to the test/validation split;
    both ran without a word. The Python API (prepare) is refused the same."""
    from minidl.train.config import ConfigError, TrainConfig
    from minidl.train.prepare import prepare

    rows = [(f"a {'dull' if label == 'neg' else 'fine'} film number {i}", label)
            for label in ("neg", "pos") for i in range(50)]
    ordered = _write(tmp_path / "sorted.tsv", ("text", "label"), rows)
    out = tmp_path / "run"
    assert main(["train", "--data", ordered, "--train-limit", "40", "--epochs", "1", "--out", str(out)]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"minidl train: class 'pos' has no training row: --train-limit 40 took the first 40 training rows of "
        f"{ordered}, which are sorted by label; shuffle the file or raise the limit") and not out.exists()
    held = np.random.default_rng(0).permutation(51)[-1]          # a row that the seeded 20 % test split takes
    half = rows[::2]
    rare = _write(tmp_path / "rare.tsv", ("text", "label"), half[:held] + [("an odd film", "odd")] + half[held:])
    for limit in (None, 400):   # (--train-limit 400, more than the file, was blamed: the test split took the row)
        with pytest.raises(ConfigError, match="^class 'odd' has no training row: the test split of .*rare.tsv took its "
                                              "rows; add rows of it, or give --test-data$"):
            prepare(TrainConfig(data=rare, seed=0, train_limit=limit))


def test_a_copy_of_the_validation_file_is_refused_as_the_test_file(triple, tmp_path, capsys):
    """The --validation-data file again (a copy, byte for byte) as --test-data was accepted: the test score
    was the validation score that chose the checkpoint."""
    copy = tmp_path / "copy.tsv"
    shutil.copy(triple["dev"], copy)
    assert _train({**triple, "test": str(copy)}, tmp_path / "run") == 1
    assert capsys.readouterr().err == (f"minidl train: --test-data {str(copy)!r} is a copy of the --validation-data "
                                       f"file: the test score would have chosen the checkpoint; give reviews kept out "
                                       f"of training and validation, or leave it out (a share of --data is held out "
                                       f"then)\n") and not (tmp_path / "run").exists()
