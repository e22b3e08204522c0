"""The training loop: learning, early stopping, best checkpoint, exact resume, NaN stop, callbacks."""
import os

import numpy as np
import pytest

import minidl as md
from minidl import nn, optim
from minidl.io import npz_meta, read_npz
from minidl.train import Callback, TrainConfig, TrainingDiverged, fit, load_classifier, train, trainer
from minidl.train import checkpoint
from minidl.train.config import ConfigError

QUICK = dict(model="gru", hidden=8, embed_dim=8, epochs=2, batch_size=64, train_limit=600, eval_every=4,
             patience=None, validation=0.2)


class Crash(Exception):
    pass


class CrashAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step(self, step, loss):
        if step == self.step:
            raise Crash(f"simulated crash at step {step}")


class Recorder(Callback):
    def __init__(self):
        self.saved, self.evaluations = [], []

    def on_save(self, path, kind):
        self.saved.append((os.path.basename(path), kind))

    def on_evaluate(self, step, metrics):
        self.evaluations.append(step)


def weights(path):
    return {k: v for k, v in read_npz(path).items() if k.startswith("model.")}


@pytest.mark.parametrize("warmup_steps", [0, 6])   # 6: the crash and the resume fall after the warm-up's start
def test_resume_ends_exactly_where_an_uninterrupted_run_ends(tmp_path, warmup_steps):
    """With a warm-up and decay schedule too: resuming once raised KeyError: 'last_step'."""
    config = TrainConfig(**QUICK, dropout=0.2, warmup_steps=warmup_steps)  # dropout: the generator is restored too
    full = fit(config, out=tmp_path / "full", progress=False)
    with pytest.raises(Crash):
        fit(config, out=tmp_path / "cut", callbacks=[CrashAt(11)], progress=False)  # last save: step 8
    resumed = fit(config, out=tmp_path / "cut", resume=True, progress=False, log=lambda *a: None)
    assert resumed.steps == full.steps
    a, b = weights(tmp_path / "full" / "last.npz"), weights(tmp_path / "cut" / "last.npz")
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert resumed.test == full.test
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]


@pytest.mark.parametrize("changes", [dict(eval_every=3), dict(eval_every=1, patience=2, lr=0.0)])
def test_a_finished_run_resumed_trains_no_more(tmp_path, changes):
    """A run whose last save came after its last epoch (eval_every 3 of 8 steps an epoch), or one that
    stopped early, trained another epoch on every --resume and rewrote its results, exit 0."""
    config = TrainConfig(**{**QUICK, **changes})
    done = fit(config, out=tmp_path / "run", progress=False)
    files = {name: (tmp_path / "run" / name).read_bytes() for name in ("last.npz", "best.npz")}
    again = fit(config, out=tmp_path / "run", resume=True, progress=False, log=lambda *a: None)
    assert (again.steps, again.stopped_early, again.test) == (done.steps, done.stopped_early, done.test)
    assert done.steps == (16 if changes["eval_every"] == 3 else 3) and done.stopped_early == ("patience" in changes)
    assert {name: (tmp_path / "run" / name).read_bytes() for name in files} == files


class Average(Callback):
    """An independent running average of the weights (a copy at the first step, then the EMA rule), checked
    against best.npz whenever it is written."""

    def __init__(self, decay):
        self.decay, self.ema, self.checked = decay, None, 0

    def on_train_begin(self, model, optimizer):
        self.model = model

    def on_step(self, step, loss):
        now = {name: p.numpy().astype(np.float64) for name, p in self.model.named_parameters()}
        self.ema = now if self.ema is None else {k: self.decay * self.ema[k] + (1 - self.decay) * now[k] for k in now}

    def on_save(self, path, kind):
        if kind == "best":
            saved = weights(path)
            for name, value in self.ema.items():
                np.testing.assert_allclose(saved[f"model.{name}"], value, rtol=1e-5, atol=1e-6, err_msg=name)
            self.checked += 1


def test_a_weight_average_is_what_is_evaluated_and_kept_and_it_resumes_exactly(tmp_path):
    config = TrainConfig(**QUICK, dropout=0.2, weight_average=0.8)
    average = Average(0.8)
    full = fit(config, out=tmp_path / "full", callbacks=[average], progress=False)
    assert average.checked >= 1
    trained, best = weights(tmp_path / "full" / "last.npz"), weights(tmp_path / "full" / "best.npz")
    assert any(not np.array_equal(trained[k], best[k]) for k in trained), "last.npz: the trained weights"
    plain = fit(TrainConfig(**QUICK, dropout=0.2), progress=False)
    assert [h["loss"] for h in plain.history] != [h["loss"] for h in full.history], "the average is evaluated"
    with pytest.raises(Crash):
        fit(config, out=tmp_path / "cut", callbacks=[CrashAt(11)], progress=False)
    resumed = fit(config, out=tmp_path / "cut", resume=True, progress=False, log=lambda *a: None)
    for name, value in weights(tmp_path / "cut" / "last.npz").items():
        np.testing.assert_array_equal(value, trained[name], err_msg=name)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    assert resumed.test == full.test


def test_resume_refuses_other_settings_and_missing_checkpoints(tmp_path, monkeypatch):
    """... before the data are read: IMDB's took seconds, a teacher's scoring minutes, and then it said so."""
    fit(TrainConfig(**{**QUICK, "epochs": 1}), out=tmp_path, progress=False)
    monkeypatch.setattr(trainer, "prepare", lambda config: pytest.fail("the data were read first"))
    with pytest.raises(ValueError, match="different settings.*lr"):
        fit(TrainConfig(**{**QUICK, "epochs": 1, "lr": 0.5}), out=tmp_path, resume=True, progress=False)
    # named as the options a user typed (it said "model_options {}, now {...}, train_limit 600, now 300")
    with pytest.raises(ValueError, match=r"different settings \(--model-options \{\}, now \{'padding_idx': 0\}, "
                                         r"--train-limit 600, now 300\)"):
        fit(TrainConfig(**{**QUICK, "epochs": 1, "train_limit": 300, "model_options": {"padding_idx": 0}}),
            out=tmp_path, resume=True, progress=False)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        fit(TrainConfig(**QUICK), out=tmp_path / "empty", resume=True, progress=False)
    with pytest.raises(ValueError, match=r"^--resume continues the run in --out: give --out, the folder of the run"):
        fit(TrainConfig(**QUICK), resume=True, progress=False)
    with pytest.raises(ValueError, match="--overwrite replaces it: give one of them"):   # (overwrite was ignored)
        fit(TrainConfig(**QUICK), out=tmp_path, resume=True, overwrite=True, progress=False)


def test_resume_refuses_a_teacher_trained_again_since(tmp_path):
    """--teacher T --out S, then T trained again (--overwrite), then S --resume: the run went on learning
    from the new teacher's soft targets, without a word (0.614 uninterrupted, 0.63 resumed)."""
    quick = {**QUICK, "model": "mlp", "epochs": 1}
    teacher = fit(TrainConfig(**quick), out=tmp_path / "T", progress=False).checkpoint
    taught = TrainConfig(**{**quick, "epochs": 2}, teacher=f"nbsvm, {teacher}")   # (the space: a crash once)
    fit(taught, out=tmp_path / "S", progress=False)
    fit(taught, out=tmp_path / "S", resume=True, progress=False)   # the same teacher: it goes on
    fit(TrainConfig(**{**quick, "seed": 7}), out=tmp_path / "T", overwrite=True, progress=False)
    with pytest.raises(ValueError, match=f"--teacher {teacher} has changed since the run learned from it"):
        fit(taught, out=tmp_path / "S", resume=True, progress=False)


def test_a_teacher_in_the_folder_the_run_writes_is_refused_before_any_work(tmp_path, monkeypatch):
    """--teacher OUT/best.npz --out OUT --overwrite: the student's best.npz replaced its teacher, results.json named
    the student its own teacher, and every --resume was refused (the teacher had changed). Also by another path."""
    quick = {**QUICK, "model": "mlp", "epochs": 1}
    fit(TrainConfig(**quick), out=tmp_path / "run", progress=False)
    before = (tmp_path / "run" / "best.npz").read_bytes()
    os.symlink(tmp_path / "run", tmp_path / "link")
    monkeypatch.setattr(trainer, "prepare", lambda config: pytest.fail("the data were read first"))
    monkeypatch.chdir(tmp_path)
    for teacher, resume in (("nbsvm, run/best.npz", False), (str(tmp_path / "link" / "last.npz"), False),
                            ("link/best.npz", True)):
        with pytest.raises(ValueError, match=r"--teacher \S+ is a checkpoint this run writes in --out .*another --out"):
            fit(TrainConfig(**quick, teacher=teacher), out=tmp_path / "run", overwrite=not resume, resume=resume,
                progress=False)
    assert (tmp_path / "run" / "best.npz").read_bytes() == before


def test_an_out_holding_another_run_or_a_file_is_refused_before_any_work(tmp_path, monkeypatch):
    """fit replaced another run's checkpoints without a word (minidl train refused that folder), and with a
    file as out it trained up to its first save; overwrite=True replaces the run."""
    run, notes, config = tmp_path / "run", tmp_path / "notes.txt", TrainConfig(**{**QUICK, "epochs": 1})
    fit(config, out=run, progress=False)
    before = (run / "best.npz").read_bytes()
    notes.write_text("mine")
    monkeypatch.setattr(trainer, "prepare", lambda config: pytest.fail("the data were read first"))
    other = TrainConfig(**{**QUICK, "epochs": 1, "model": "mlp"})
    with pytest.raises(OSError, match=r"holds another run \(last.npz, best.npz\); pass --resume .* --overwrite .*"
                                      r"from Python: fit\(..., resume=True / overwrite=True\)"):
        fit(other, out=run, progress=False)
    with pytest.raises(OSError, match="notes.txt is a file; give a folder"):
        fit(other, out=notes, progress=False)
    assert (run / "best.npz").read_bytes() == before and notes.read_text() == "mine"
    monkeypatch.undo()
    assert fit(other, out=run, overwrite=True, progress=False).config["model"] == "mlp"
    assert (run / "best.npz").read_bytes() != before


def test_a_checkpoint_cut_short_is_called_corrupted_not_someone_elses(tmp_path, monkeypatch):
    """A truncated last.npz "is there and was not written by minidl train" (eval called it corrupted), also to
    --resume, which cannot go on from it, and to --overwrite."""
    config = TrainConfig(**{**QUICK, "epochs": 1})
    fit(config, out=tmp_path, progress=False)
    with open(tmp_path / "last.npz", "r+b") as f:
        f.truncate(2000)
    monkeypatch.setattr(trainer, "prepare", lambda config: pytest.fail("the data were read first"))
    for flags in ({"resume": True}, {"overwrite": True}, {}):
        with pytest.raises(OSError, match=r"last.npz is corrupted \(not a complete .npz archive: truncated by an "
                                             r"interrupted copy or download\); give another path, or move the file "
                                             r"away first$"):
            fit(config, out=tmp_path, progress=False, **flags)
    assert os.path.getsize(tmp_path / "last.npz") == 2000


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path):
    class Poison(Callback):
        def on_train_begin(self, model, optimizer):
            self.model = model

        def on_step(self, step, loss):
            if step == 6:  # after the save at step 4
                for p in self.model.parameters():
                    p.data[...] = np.nan
            return False

    with pytest.raises(TrainingDiverged, match=r"became nan at step 7.*last good checkpoint is .*last.npz \(step 4\)"):
        fit(TrainConfig(**QUICK), out=tmp_path, callbacks=[Poison()], progress=False)
    good = weights(tmp_path / "last.npz")
    assert all(np.isfinite(v).all() for v in good.values())
    assert checkpoint.read(tmp_path / "last.npz")[0]["loop"]["step"] == 4


def test_non_finite_optimizer_state_stops_the_run_and_is_never_saved(tmp_path):
    """An overflow that leaves the loss finite (--lr 1e10 used to end with exit 0 and inf Adam
    moments in its checkpoints): the run stops at the next evaluation, names the last good
    checkpoint, and every file it left holds finite weights and moments."""
    class Overflow(Callback):
        def on_train_begin(self, model, optimizer):
            self.optimizer = optimizer

        def on_step(self, step, loss):
            if step == 6:  # after the save at step 4; Adam's update m / sqrt(inf) = 0 keeps the loss finite
                state = next(iter(self.optimizer.state.values()))
                state["exp_avg_sq"][...] = np.inf
            return False

    with pytest.raises(TrainingDiverged, match=r"exp_avg_sq .*non-finite at step 8.*last good checkpoint is "
                                               r".*last.npz \(step 4\)"):
        fit(TrainConfig(**QUICK), out=tmp_path, callbacks=[Overflow()], progress=False)
    for name in ("last.npz", "best.npz"):
        arrays = read_npz(tmp_path / name)
        assert all(np.isfinite(v).all() for v in arrays.values() if v.dtype.kind == "f"), name
        assert checkpoint.read(tmp_path / name)[0]["loop"]["step"] == 4, name


def test_early_stopping_and_best_checkpoint(tmp_path):
    recorder = Recorder()
    # lr = 0 never improves after the first evaluation: stop after `patience` more
    result = fit(TrainConfig(**{**QUICK, "lr": 0.0, "patience": 2, "epochs": 5}), out=tmp_path,
                 callbacks=[recorder], progress=False, log=lambda *a: None)
    assert result.stopped_early
    assert recorder.evaluations == [4, 8, 12]
    assert recorder.saved[:2] == [("best.npz", "best"), ("last.npz", "last")]
    assert ("best.npz", "best") not in recorder.saved[2:]
    assert result.best_validation["step"] == 4


def test_a_run_that_did_all_its_steps_did_not_stop_early(tmp_path):
    """Patience ran out at the last evaluation, after the last step: it said "early stop at step 24" and
    "stopped early" (results.json too), and so did a --resume of it, though no step was left."""
    logged, config = [], TrainConfig(**{**QUICK, "lr": 0.0, "patience": 2, "epochs": 3, "eval_every": 8})
    result = fit(config, out=tmp_path, progress=False, log=logged.append)
    assert (result.steps, result.stopped_early, logged) == (24, False, [])
    again = fit(config, out=tmp_path, resume=True, progress=False, log=lambda *a: None)
    assert (again.steps, again.stopped_early, again.test) == (24, False, result.test)


def test_it_learns_and_the_checkpoint_classifies_new_text(tmp_path):
    # a bag of words cannot learn the built-in corpus's negations; the GRU can
    config = TrainConfig(model="gru", hidden=16, embed_dim=16, epochs=6, lr=0.02, train_limit=2000, patience=None)
    result = fit(config, out=tmp_path, progress=False)
    assert result.history[-1]["train_loss"] < 0.69  # the epoch's mean loss, below chance level log 2
    assert result.test["accuracy"] > 0.85
    model, vocab, tokenizer, labels, loaded = load_classifier(tmp_path / "best.npz")
    assert labels == ["neg", "pos"] and loaded.model == "gru"
    assert vocab.encode_text("a truly wonderful film", tokenizer).ndim == 1


def test_the_embedding_table_learns_at_its_own_rate_and_word_dropout_resumes_exactly(tmp_path):
    from minidl.train.trainer import build
    from minidl.train.prepare import prepare

    config = TrainConfig(**QUICK, embedding_lr=1e-4, word_dropout=0.2)
    model, optimizer = build(config, prepare(config))
    groups = optimizer.param_groups
    assert [g["lr"] for g in groups] == [config.lr, 1e-4]
    assert groups[1]["params"] == [model.embedding.weight]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    full = fit(config, out=tmp_path / "full", progress=False)
    with pytest.raises(Crash):
        fit(config, out=tmp_path / "cut", callbacks=[CrashAt(11)], progress=False)
    resumed = fit(config, out=tmp_path / "cut", resume=True, progress=False, log=lambda *a: None)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    assert resumed.test == full.test


class Tables(Callback):
    """The embedding table after every step."""

    def __init__(self):
        self.after = []

    def on_train_begin(self, model, optimizer):
        self.model = model
        self.after.append(model.embedding.weight.numpy().copy())

    def on_step(self, step, loss):
        self.after.append(self.model.embedding.weight.numpy().copy())


def test_a_frozen_warm_up_keeps_the_table_fixed_for_its_steps_then_fine_tunes_it_and_resumes_exactly(tmp_path):
    config = TrainConfig(**QUICK, embedding_freeze_steps=6, embedding_lr=1e-2)
    tables = Tables()
    full = fit(config, out=tmp_path / "full", callbacks=[tables], progress=False)
    assert full.steps > 7
    for step in range(1, 7):                                       # 6 steps: unchanged
        np.testing.assert_array_equal(tables.after[step], tables.after[0], err_msg=f"step {step}")
    assert not np.array_equal(tables.after[7], tables.after[6])    # step 7: learning
    plain = TrainConfig(**QUICK, embedding_lr=1e-2)
    assert [h["loss"] for h in fit(plain, progress=False).history] != [h["loss"] for h in full.history]
    for crash in (5, 11):                                         # saved at step 4 (frozen) and 8 (learning)
        cut = tmp_path / f"cut{crash}"
        with pytest.raises(Crash):
            fit(config, out=cut, callbacks=[CrashAt(crash)], progress=False)
        resumed = fit(config, out=cut, resume=True, progress=False, log=lambda *a: None)
        assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
        for name, value in weights(cut / "last.npz").items():
            np.testing.assert_array_equal(value, weights(tmp_path / "full" / "last.npz")[name], err_msg=name)


def test_a_run_from_embeddings_records_the_width_of_the_file_and_resumes(tmp_path):
    """The model is as wide as --embeddings' vectors; its checkpoints and results recorded --embed-dim's value."""
    vectors = tmp_path / "v.txt"
    vectors.write_text("good 1 0 0\nbad 0 1 0\n")
    config = TrainConfig(**{**QUICK, "embed_dim": 50}, embeddings=str(vectors))
    with pytest.raises(Crash):
        fit(config, out=tmp_path / "run", callbacks=[CrashAt(5)], progress=False)
    assert npz_meta(tmp_path / "run" / "last.npz")["config"]["embed_dim"] == 3
    result = fit(config, out=tmp_path / "run", resume=True, progress=False, log=lambda *a: None)
    assert result.config["embed_dim"] == 3 == load_classifier(result.checkpoint)[4].embed_dim
    vectors.write_text("gut 1 0 0\nschlecht 0 1 0\n")   # no word of the data: a random table, trained or frozen
    with pytest.raises(ValueError, match=r"none of the vocabulary's \d+ words has a vector there"):   # (the file
        fit(TrainConfig(**QUICK, embeddings=str(vectors), freeze_embeddings=True), progress=False)   # read anew)
    with pytest.raises(ValueError, match="every training review is empty after cleaning"):   # not the vectors' fault
        fit(TrainConfig(**QUICK, embeddings=str(vectors), min_word_length=50), progress=False)


def test_a_frozen_warm_up_and_a_table_frozen_throughout_are_refused_together(tmp_path):
    vectors = tmp_path / "v.txt"
    vectors.write_text("good 1 0\nbad 0 1\n")
    with pytest.raises(ConfigError, match="give one of them"):
        TrainConfig(**QUICK, embedding_freeze_steps=6, freeze_embeddings=True, embeddings=str(vectors)).check()
    for ignored in ({}, {"embeddings": str(vectors), "embedding_lr": 0.5}):   # each was ignored without a word
        with pytest.raises(ConfigError, match="^--freeze-embeddings keeps the table of --embeddings FILE fixed"):
            TrainConfig(**QUICK, freeze_embeddings=True, **ignored).check()
    with pytest.raises(ConfigError, match="--embedding-freeze-steps must be a whole number >= 0"):
        TrainConfig(**QUICK, embedding_freeze_steps=-1).check()


@pytest.mark.parametrize("setting, value, words", [("word_dropout", 1.0, "--word-dropout must lie in [0, 1)"),
                                                   ("embedding_lr", -1.0, "--embedding-lr must be a number >= 0"),
                                                   ("weight_average", 1.0, "--weight-average must lie in [0, 1)"),
                                                   # (these two ran in no test: coverage)
                                                   ("device", "gpu", '--device must be "cpu" (NumPy), "torch"'),
                                                   ("model_options", [5], "--model-options must be a JSON object")])
def test_bad_word_dropout_embedding_lr_and_weight_average_are_refused_before_any_work(setting, value, words):
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**QUICK, **{setting: value}).check()


@pytest.mark.parametrize("model, options, flag", [
    ("transformer", {"d_model": 128}, "--hidden"),     # the transformer's d_model was hidden or d_model: 64, silently
    ("gru", {"hidden": 12}, "--hidden"),               # the option won over --hidden, which the records showed
    ("gru", {"embed_dim": 3}, "--embed-dim"),
    ("attention", {"dropout": 0.5}, "--dropout"),
])
def test_a_model_option_that_a_flag_sets_is_refused_naming_the_flag(model, options, flag):
    name = next(iter(options))
    with pytest.raises(ConfigError, match=f"--model-options '{name}': {flag} sets it; give {flag} instead"):
        TrainConfig(**{**QUICK, "model": model, "model_options": options}).check()


def test_padding_idx_is_the_vocabularys_and_not_a_model_option():
    """{"padding_idx": 2} froze a real word's vector at zero, 5 was "outside the table of 3 rows" (the model built
    to check), and the message for an unknown setting listed padding_idx; 0, which older records hold, still works."""
    for pad in (2, 5, "x", 0.0):
        with pytest.raises(ConfigError, match=f"^--model-options padding_idx {pad!r}: the vocabulary sets it"):
            TrainConfig(**{**QUICK, "model_options": {"padding_idx": pad}}).check()
    with pytest.raises(ConfigError, match=r"gru has no such setting; it takes \[\]$"):
        TrainConfig(**{**QUICK, "model_options": {"radius": 5}}).check()
    TrainConfig(**{**QUICK, "model_options": {"padding_idx": 0}}).check()


def test_a_transformer_with_fewer_positions_than_its_longest_review_is_refused_before_training(tmp_path):
    """It stopped at the first batch longer than max_len, with a message that said --debug shows where."""
    config = {**QUICK, "model": "transformer", "hidden": 8, "model_options": {"num_heads": 2, "max_len": 10}}
    with pytest.raises(ConfigError, match=r"max_len=10 words, but the longest review it would read has \d+ "
                                          r"\(--max-length 100\); give --max-length 10 or less"):
        fit(TrainConfig(**config), out=tmp_path / "run", progress=False)
    assert not os.path.exists(tmp_path / "run" / "last.npz")
    fit(TrainConfig(**{**config, "max_length": 10, "epochs": 1}), progress=False)   # what the message says works


@pytest.mark.parametrize("model, options, words", [
    ("attention", {"radius": -1}, "WindowSelfAttention: radius is how many words either side a word sees"),
    ("rnn", {"nonlinearity": "sigmoid"}, 'ElmanRNN: nonlinearity must be "relu" or "tanh"'),
    ("transformer", {"num_heads": 3}, "must be divisible by num_heads=3"),
    ("transformer", {"causal": "yes"}, "causal is true or false, got 'yes'"),   # JSON's "yes" read as True
    ("transformer", {"pre_norm": 2}, "pre_norm is true or false, got 2"),
    ("transformer", {"num_layers": -1}, "TransformerEncoder takes a whole number of layers >= 0, got num_layers=-1"),
    ("transformer", {"num_layers": 1.5}, "TransformerEncoder takes a whole number of layers >= 0, got num_layers=1.5"),
    ("transformer", {"max_len": 0}, "PositionEmbedding needs whole-number sizes >= 1, got max_len=0"),
    ("transformer", {"max_len": -3}, "PositionEmbedding needs whole-number sizes >= 1, got max_len=-3"),
])
def test_a_model_option_its_constructor_refuses_is_a_config_error_before_any_work(model, options, words):
    """The model is built once on a 3-word vocabulary by check(): the value is refused in one line, not
    after the data is prepared (or, for a radius, at the first forward pass), and the random state
    the run will draw its weights from is left as it was."""
    with pytest.raises(ConfigError, match=f"--model {model} cannot be built with these settings: .*{words}"):
        TrainConfig(**{**QUICK, "model": model, "model_options": options}).check()
    md.manual_seed(0)
    expected = md.randn(4).numpy()
    md.manual_seed(0)
    TrainConfig(**{**QUICK, "model": "attention"}).check()
    np.testing.assert_array_equal(md.randn(4).numpy(), expected)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_a_diverging_command_prints_one_line(tmp_path, capsys):
    """NumPy's overflow warnings came before the divergence message (here they would raise). And
    the overflow is the divergence: the GRU's sigmoids and tanhs squash the infinite
    pre-activations of its 1e20 weights to ±1, so on some CPUs (their BLAS) no value the core
    checked ever became non-finite and the run ended with exit 0 and a test loss of 2e21."""
    from minidl.cli import main

    assert main(["train", "--epochs", "1", "--quiet", "--out", str(tmp_path / "run"), "--lr", "1e20",
                 "--clip-norm", "none", "--train-limit", "300"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "Lower the learning rate" in err[0], err
    assert "a value overflowed to infinity in the forward pass at step 2" in err[0], err



def test_the_core_names_a_loss_fn_or_evaluate_that_returns_the_wrong_thing():
    """A per-example loss failed in .item() ("can only convert an array of size 1"), a float loss with
    "'float' object has no attribute 'item'", a float from evaluate with "'float' object is not
    iterable" -- and left the model in eval mode."""
    net = nn.Sequential(nn.Linear(4, 2))
    X, Y = md.randn(8, 4), md.tensor(np.arange(8) % 2)
    run = lambda loss_fn, **kw: train(net, lambda e: [(X, Y)], loss_fn, optim.SGD(net.parameters(), lr=0.1), epochs=1,
                                      **kw)
    with pytest.raises(TypeError, match=r"loss_fn must return a Tensor holding one number .*got Tensor of shape "
                                        r"\(8,\)"):
        run(lambda m, b: m(b[0]).sum(axis=1))
    with pytest.raises(TypeError, match="loss_fn must return a Tensor holding one number .*got float"):
        run(lambda m, b: 0.5)
    with pytest.raises(TypeError, match=r"evaluate must return a dict of metrics like \{'loss': 0.42\}, got float"):
        run(lambda m, b: md.cross_entropy(m(b[0]), b[1]), evaluate=lambda m: 0.5, every=1)
    with pytest.raises(ValueError, match=r"metric='acc' is not among what evaluate returns \(loss, accuracy\)"):
        run(lambda m, b: md.cross_entropy(m(b[0]), b[1]), evaluate=lambda m: {"loss": 0.5, "accuracy": 0.5},
            metric="acc")   # a typo: a KeyError traceback at the second evaluation, or none at all with one
    assert net.training


def test_settings_that_would_change_nothing_are_refused(tmp_path):
    """--distill-alpha / --temperature without --teacher trained the plain run; --embedding-freeze-steps
    past the run's steps kept the table frozen throughout; --warmup-steps past them was the
    schedule's "need 0 <= warmup_steps < total_steps"."""
    with pytest.raises(ConfigError, match="--distill-alpha 0.3 and --temperature 5: distillation settings, with no "
                                          "--teacher"):
        TrainConfig(**{**QUICK, "distill_alpha": 0.3, "temperature": 5}).check()
    for name, words in (("embedding_freeze_steps", "the embedding table would never learn"),
                        ("warmup_steps", "the learning rate would never decay")):
        with pytest.raises(ConfigError, match=rf"--{name.replace('_', '-')} 16 is not fewer than the run's 16 steps "
                                              rf"\(2 epoch\(s\) of 8\), so {words}"):
            fit(TrainConfig(**{**QUICK, name: 16}), progress=False)


def test_a_time_limit_says_it_stopped_the_run():
    """A resumed run with --time-limit counts the seconds of the run it resumed; one resumed past its limit
    stopped after one step without a word, then with a word: each --resume trained one step more."""
    net, said = nn.Sequential(nn.Linear(4, 2)), []
    X, Y = md.randn(8, 4), md.tensor(np.arange(8) % 2)
    loop, _ = train(net, lambda e: [(X, Y)], lambda m, b: md.cross_entropy(m(b[0]), b[1]),
                    optim.SGD(net.parameters(), lr=0.1), epochs=5, loop={"seconds": 100.0}, time_limit=50,
                    log=said.append)
    assert loop["step"] == 0 and said == ["time limit of 50 s reached at step 0 (the run's seconds, those before "
                                          "any resume included)"]


@pytest.mark.parametrize("bad, words", [(dict(patience=0), r"patience must be a whole number >= 1 \(or None\), got 0"),
                                        (dict(epochs=-2), "epochs must be"), (dict(epochs=2.5), "got 2.5"),
                                        (dict(every=0), "every must be"), (dict(batches=[]), "batches must be a "
                                                                                             "function of the epoch"),
                                        (dict(optimizer=None), "optimizer must be an optimizer instance"),
                                        (dict(schedule=0.1), "schedule must be a schedule instance"),
                                        (dict(callbacks=Callback()), "callbacks must be a list of callback instances"),
                                        (dict(callbacks=[Callback]), "callbacks must be a list"),
                                        (dict(time_limit=-5), "time_limit must be a number of seconds > 0")])
def test_counts_that_train_nothing_and_parts_of_the_wrong_kind_are_refused(bad, words):
    """patience=0 or epochs=-2 trained nothing and said nothing, epochs=2.5 ran 3, a list of batches read
    "TypeError: 'list' object is not callable", an optimizer class "no attribute 'param_groups'"; schedule=0.1
    failed after the first step had changed the weights."""
    net = nn.Linear(4, 2)
    X, Y = md.randn(8, 4), md.tensor(np.arange(8) % 2)
    settings = {"batches": lambda e: [(X, Y)], "epochs": 5, "evaluate": lambda m: {"loss": 1.0}, "every": 4,
                "optimizer": optim.Adam(net.parameters()), **bad}
    before = net.weight.numpy().copy()
    with pytest.raises((ValueError, TypeError), match=words):
        train(net, settings.pop("batches"), lambda m, b: md.cross_entropy(m(b[0]), b[1]), settings.pop("optimizer"),
              **settings)
    np.testing.assert_array_equal(net.weight.numpy(), before)


def test_an_error_metric_keeps_its_lowest_and_a_used_up_iterator_is_named():
    """Every metric but "loss" was maximised: metric="error" kept the worst model. An iterator given as every
    epoch's batches trained one epoch, then said "is the training set empty?"."""
    md.manual_seed(0)
    X = md.randn(64, 2)
    Y = md.tensor((X.numpy()[:, 0] > 0).astype(np.int64))
    net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    loss_fn = lambda m, b: md.cross_entropy(m(b[0]), b[1])   # noqa: E731
    error = lambda m: {"error": float((m(X).numpy().argmax(1) != Y.numpy()).mean())}   # noqa: E731
    loop, _ = train(net, lambda e: [(X, Y)], loss_fn, optim.Adam(net.parameters(), lr=0.05), epochs=10,
                    evaluate=error, every=1, metric="error", log=None)
    assert loop["best"]["error"] == min(h["error"] for h in loop["history"]) < loop["history"][0]["error"]
    from minidl.train.loop import lower_is_better
    assert all(map(lower_is_better, ("val_loss", "Loss", "nll", "cross_entropy", "MSE", "ppl", "top1_error",
                                     "num_errors", "valperplexity")))
    assert not any(map(lower_is_better, ("accuracy", "f1", "auc", "top1", "precision", "recall")))
    import torch   # the Python API's own kinds of values still pass TrainConfig's type check
    TrainConfig(device=torch.device("cpu"), bucket=np.bool_(False)).check()
    batches = iter([(X[:32], Y[:32]), (X[32:], Y[32:])])
    with pytest.raises(ValueError, match="an iterator used up in an earlier epoch"):
        train(net, lambda e: batches, loss_fn, optim.SGD(net.parameters(), lr=0.1), epochs=2, log=None)


def test_a_non_finite_gradient_norm_validation_loss_or_weight_stops_the_run_naming_it():
    """Three of the divergence stops ran in no test (coverage): a gradient norm that is not finite (with clip), a
    validation loss that is not, and a weight made non-finite outside the optimizer (here by a callback)."""
    X, Y = md.randn(8, 4), md.tensor(np.arange(8) % 2)
    cross_entropy = lambda m, b: md.cross_entropy(m(b[0]), b[1])      # noqa: E731

    class Poison(Callback):
        def on_step(self, step, loss):
            if step == 2:                                   # after the last step before the evaluation
                net[0].weight.data[0, 0] = np.nan

    cases = (dict(loss_fn=lambda m, b: md.sqrt(m(b[0]) * 0.0).sum(), clip=1.0, words="the gradient norm became nan"),
             dict(evaluate=lambda m: {"loss": float("inf")}, words="the validation loss became inf at step 2"),
             dict(callbacks=[Poison()], words="parameter 0.weight became non-finite at step 2"))
    for case in cases:
        net = nn.Sequential(nn.Linear(4, 2))
        words = case.pop("words")
        with pytest.raises(TrainingDiverged, match=words):
            train(net, lambda e: [(X, Y)] * 2, case.pop("loss_fn", cross_entropy), optim.SGD(net.parameters(), lr=0.1),
                  epochs=1, every=2, log=None, **case)


def test_each_evaluation_shows_a_bar_of_the_reviews_it_scores(capsys):
    """The validation and --test-curve scoring ran under a frozen training bar (about 40 s per evaluation for
    IMDB's 25,000 test reviews); the final test scoring was silent too."""
    fit(TrainConfig(**{**QUICK, "epochs": 1, "test_curve": True}), progress=True, log=lambda *_: None)
    err = capsys.readouterr().err
    assert "validation:   0%" in err and "test:   0%" in err and "review/s" in err


def _tiny_run(tmp_path):
    """(net, X, Y, its SGD, Checkpoints of "last" in tmp_path): a Linear(4, 2) on 8 random rows, for train()."""
    from minidl.train.loop import Checkpoints

    net = nn.Linear(4, 2)
    X, Y = md.randn(8, 4), md.tensor(np.arange(8) % 2)
    opt = optim.SGD(net.parameters(), lr=0.1)
    return net, X, Y, opt, Checkpoints({"last": str(tmp_path / "last.npz")},
                                       lambda path, loop: checkpoint.save_state(path, net, opt, loop))


def test_metrics_given_as_numpy_scalars_or_tensors_are_saved_as_numbers(tmp_path):
    """An evaluate returning np.float32 or a 0-d Tensor failed at the first checkpoint: "Object of type float32 is
    not JSON serializable"."""
    net, X, Y, opt, save = _tiny_run(tmp_path)
    loop, _ = train(net, lambda e: [(X, Y)], lambda m, b: md.cross_entropy(m(b[0]), b[1]), opt, epochs=2, every=1,
                    evaluate=lambda m: {"loss": md.cross_entropy(m(X), Y), "accuracy": np.float32(0.5)},
                    checkpoints=save, log=None)
    assert checkpoint.read(tmp_path / "last.npz")[0]["loop"]["history"][-1]["accuracy"] == 0.5
    assert all(isinstance(h["loss"], float) for h in loop["history"])
    # a metric of several numbers stays as it is, and a bar of unknown length (no epoch_steps) is fine
    loop, _ = train(net, lambda e: [(X, Y)], lambda m, b: md.cross_entropy(m(b[0]), b[1]), opt, epochs=1,
                    evaluate=lambda m: {"loss": 1.0, "per_class": md.tensor([0.5, 0.7])}, progress="training", log=None)
    assert loop["history"][-1]["per_class"].shape == (2,)


def test_a_metric_of_several_numbers_is_refused_at_the_first_evaluation_when_it_is_saved_or_picks_the_best(tmp_path):
    """{"confusion": np.eye(2)} trained, then the first checkpoint was a traceback ("Object of type ndarray is
    not JSON serializable"); as the metric it failed comparing arrays. A 0-d array is a number."""
    net, X, Y, opt, save = _tiny_run(tmp_path)
    run = lambda value, **kw: train(net, lambda e: [(X, Y)], lambda m, b: md.cross_entropy(m(b[0]), b[1]), opt,  # noqa
                                    epochs=2, every=1, evaluate=lambda m: {"loss": 1.0, "confusion": value}, log=None,
                                    **kw)
    for value in (np.eye(2), md.tensor([0.5, 0.7])):
        with pytest.raises(TypeError, match=r"^train: evaluate's 'confusion' holds \d numbers \(shape \(2(, 2)?,?\)\), "
                                            r"but a metric that is saved in the checkpoints' history is one number"):
            run(value, checkpoints=save)
        assert not (tmp_path / "last.npz").exists()
        with pytest.raises(TypeError, match="'confusion' holds .* a metric that picks the best is one number"):
            run(value, metric="confusion")
    loop, _ = run(np.array(0.25), checkpoints=save)
    assert checkpoint.read(tmp_path / "last.npz")[0]["loop"]["history"][-1]["confusion"] == 0.25
