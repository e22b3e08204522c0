"""minidl.mlm: tokenizer, masking, segments, fill-mask cases, the masked-position head,
the training loop (pretraining learns; distillation follows the teacher), checkpoints."""
import json
import os

import numpy as np
import pytest

import minidl as md
from minidl.cli import main
from minidl.compress import distillation_loss
from minidl.data.vocab import TextEncodingError
from minidl.gradcheck import gradcheck
from minidl.io import CheckpointError
from minidl.mlm import (SPECIALS, MLMTokenizer, accuracy, agreement, build_mlm, build_vocabulary, first_choices,
                        load_mlm, mask_tokens, save_mlm, segments, top_k, train_mlm)
from minidl.mlm import cli as mlm_cli
from minidl.mlm.cli import fill_mask
from minidl.mlm.corpus import FillMaskCase, fill_mask_cases, load_corpus, sentences
from minidl.mlm.pretrain import state_path
from minidl.mlm.projection import start_from_teacher
from minidl.mlm.tokenizer import CLS, MASK, PAD, UNK
from minidl.train import Callback, load_classifier
from tests.data.conftest import write_fake_imdb

TINY = dict(d_model=16, num_heads=2, num_layers=1, d_ff=32, max_len=16, dropout=0.0)


def test_tokenizer_keeps_punctuation_contractions_and_specials():
    tokens = MLMTokenizer()("I didn't like it.<br />[MASK] 10/10! [mask] www.imdb.com")
    assert tokens == ["i", "didn't", "like", "it", ".", MASK, "10", "/", "10", "!", "[", "mask", "]"]
    assert MLMTokenizer.from_dict(MLMTokenizer().to_dict())("A [CLS]") == ["a", CLS]


def test_vocabulary_puts_the_specials_first():
    vocab = build_vocabulary([["b", "a", "b"], ["c", "b", "a"]], max_size=None, min_freq=1)
    assert vocab.id_to_token[:5] == list(SPECIALS)
    assert vocab.pad_id == 0 and vocab[PAD] == 0 and vocab[UNK] == 1
    assert vocab.id_to_token[5:] == ["b", "a", "c"]


def _vocab(words=50):
    return build_vocabulary([[f"w{i}" for i in range(words)]], max_size=None, min_freq=1)


def test_masking_rates_and_targets():
    vocab = _vocab()
    rng = np.random.default_rng(0)
    ids = rng.integers(5, len(vocab), (200, 50))
    ids[:, 0] = vocab[CLS]
    ids[:, 40:] = vocab.pad_id
    ids[:, 10] = vocab[UNK]
    mask = (ids != vocab.pad_id).astype(np.float32)
    masked = mask_tokens(ids, mask, vocab, rng)
    rows, cols = np.divmod(masked.positions, ids.shape[1])
    assert not np.isin(cols, [0, 10]).any() and cols.max() < 40, "never [CLS], [UNK] or padding"
    np.testing.assert_array_equal(masked.targets, ids[rows, cols])
    candidates = 200 * 38
    assert abs(len(masked.positions) / candidates - 0.15) < 0.01
    shown = masked.inputs[rows, cols]
    assert abs(np.mean(shown == vocab[MASK]) - 0.8) < 0.03
    assert abs(np.mean(shown == ids[rows, cols]) - (0.1 + 0.1 / (len(vocab) - 5))) < 0.03
    assert np.all(shown[shown != vocab[MASK]] >= len(SPECIALS)), "random replacements are ordinary tokens"
    untouched = np.ones(ids.shape, bool)
    untouched[rows, cols] = False
    np.testing.assert_array_equal(masked.inputs[untouched], ids[untouched])


def test_masking_always_hides_something_and_checks_the_rate():
    vocab = _vocab()
    ids = np.array([[vocab[CLS], 7]])
    masked = mask_tokens(ids, np.ones_like(ids), vocab, np.random.default_rng(0), rate=0.01)
    np.testing.assert_array_equal(masked.positions, [1])
    with pytest.raises(ValueError, match="rate"):
        mask_tokens(ids, np.ones_like(ids), vocab, np.random.default_rng(0), rate=1.5)


def test_segments_cut_reviews_and_prepend_cls():
    vocab = _vocab()
    texts = [[f"w{i}" for i in range(20)], ["w1", "w2"]]
    data = segments(texts, vocab, length=8, min_length=3)
    assert [len(x) for x in data.ids] == [8, 8, 7, 3]        # [CLS] + 7, 7, 6 tokens; a short review kept whole
    assert all(x[0] == vocab[CLS] for x in data.ids)
    np.testing.assert_array_equal(data.index, [0, 0, 0, 1])
    assert list(vocab.decode(data.ids[1][1:])) == [f"w{i}" for i in range(7, 14)]


def test_fill_mask_cases_hide_one_known_word():
    tokens = [["aa", "bb", "cc", "dd", "ee", "."] * 3 + ["aa", "zz", "bb", "cc", "dd", "!"]]
    assert len(sentences(tokens)) == 4
    vocab = build_vocabulary([["aa", "bb", "cc", "dd", "ee", ".", "!"]], max_size=None, min_freq=1)
    cases = fill_mask_cases(tokens, vocab, n=3, seed=1)
    assert len(cases) == 3, "the sentence with the unknown 'zz' is left out"
    for case in cases:
        assert case.tokens.count(MASK) == 1 and case.tokens[case.position] == MASK
        assert case.answer in {"aa", "bb", "cc", "dd", "ee"}, "a word is hidden, never punctuation"
    with pytest.raises(ValueError, match="only 3 usable sentences"):
        fill_mask_cases(tokens, vocab, n=4)


def test_logits_at_positions_are_the_full_logits_gathered(device):
    model = build_mlm(30, TINY, device)
    model.eval()
    ids = md.tensor(np.array([[2, 5, 6, 7, 0], [2, 8, 9, 10, 11]]), device=device)
    mask = md.tensor(np.array([[1, 1, 1, 1, 0], [1] * 5], dtype=np.float32), device=device)
    positions = np.array([1, 3, 6, 9])
    full = model.masked_lm_logits(ids, mask).numpy().reshape(10, 30)
    picked = model.masked_lm_logits(ids, mask, md.tensor(positions, device=device)).numpy()
    np.testing.assert_allclose(picked, full[positions], rtol=1e-5, atol=1e-6)


def test_masked_lm_loss_gradcheck_and_backends_agree():
    """The whole path a distillation step differentiates: encoder, gather at the masked
    positions, tied head, KD loss over the vocabulary. Checked on the embedding table (read
    by both the lookup and the tied output product), the head and the encoder's first and
    last weights (every element: the numerical gradient is the slow part)."""
    settings = {**TINY, "d_model": 8, "d_ff": 8, "num_layers": 2}
    state = build_mlm(12, settings, "cpu").state_dict()
    # back to N(0, 1) rows: with BERT's 0.02 the deep gradients are ~1e-8, below what
    # centred differences resolve, and the check would measure rounding, not the backward
    state["embedding.weight"] = state["embedding.weight"] * 50.0

    def loss(device):
        model = build_mlm(12, settings, device)
        model.to(dtype="float64")
        model.load_state_dict(state)
        ids = md.tensor(np.array([[2, 5, 4, 7], [2, 4, 9, 0]]), device=device)
        mask = md.tensor(np.array([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=np.float64), device=device)
        positions, targets = md.tensor([2, 5], device=device), md.tensor([6, 8], device=device)
        teacher = md.tensor(np.linspace(-1, 1, 24).reshape(2, 12), dtype="float64", device=device)
        fn = lambda *params: distillation_loss(model.masked_lm_logits(ids, mask, positions), teacher, targets, 0.3)
        weights = [p for name, p in model.named_parameters() if name.endswith("weight") and p.ndim == 2]
        return fn, [model.embedding.weight, model.mlm_head.bias, weights[1], weights[-2]]

    values = []
    for device in ("cpu", "torch"):
        fn, params = loss(device)
        result = gradcheck(fn, params, eps=1e-4, tol=1e-6)
        assert result.ok, str(result)
        values.append(fn().item())
    assert abs(values[0] - values[1]) < 1e-10


TOPICS, NOISE = ["a", "c", "e", "g"], ["x", "y", "z"]


def _toy_corpus(n=300, seed=0):
    """Texts of one topic word and some noise words: a hidden word is the text's topic word
    (or noise), learnable from any other position in a few dozen steps."""
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(n):
        topic = TOPICS[rng.integers(len(TOPICS))]
        texts.append([NOISE[rng.integers(3)] if rng.random() < 0.25 else topic for _ in range(12)])
    return texts


def test_pretraining_learns_and_distillation_follows_the_teacher(tmp_path):
    texts = _toy_corpus()
    vocab = build_vocabulary(texts, max_size=None, min_freq=1)
    data = segments(texts, vocab, length=13)
    cases = [FillMaskCase([topic, "x", topic, MASK, topic, "y"], 3, topic) for topic in TOPICS]
    settings = {**TINY, "max_len": 13}
    teacher = build_mlm(len(vocab), settings, "torch")
    before = accuracy(first_choices(teacher, vocab, cases, device="torch"), vocab, cases)
    history = train_mlm(teacher, data, vocab, 100, settings, tmp_path / "teacher.npz", cases=cases, batch_size=32,
                        lr=1e-2, eval_every=50, device="torch", log=None)
    assert history["step"] == [50, 100] and history["loss"][-1] < history["loss"][0]
    assert before["top1"] < 0.5 and history["top1"][-1] == 1.0, (before, history)
    loaded, loaded_vocab, _, meta = load_mlm(tmp_path / "teacher.npz", "torch")
    assert loaded_vocab == vocab and meta["history"]["top1"] == history["top1"] and meta["role"] == "teacher"
    more = train_mlm(load_mlm(tmp_path / "teacher.npz", "torch")[0], data, vocab, 10, settings, tmp_path / "more.npz",
                     cases=cases, batch_size=32, lr=1e-3, eval_every=50, device="torch", history=meta["history"],
                     log=None)
    assert more["step"] == [50, 100, 110] and more["seconds"][2] > more["seconds"][1] and history["step"] == [50, 100]

    student_settings = {**settings, "d_model": 8, "d_ff": 16}
    student = build_mlm(len(vocab), student_settings, "torch", seed=1)
    teacher_choices = first_choices(loaded, vocab, cases, device="torch")
    untrained = agreement(first_choices(student, vocab, cases, device="torch"), teacher_choices)
    train_mlm(student, data, vocab, 100, student_settings, tmp_path / "student.npz", teacher=loaded, cases=cases,
              batch_size=32, lr=1e-2, eval_every=100, hidden_weight=1.0, attention_weight=1.0, device="torch",
              role="student", log=None)
    trained = agreement(first_choices(student, vocab, cases, device="torch"), teacher_choices)
    assert untrained["top1"] < 0.5 and trained["top1"] == 1.0, (untrained, trained)
    # the assignment's recipe: started from the teacher's projected embeddings, soft targets and head features
    student = build_mlm(len(vocab), student_settings, "torch", seed=1)
    start_from_teacher(student, loaded)
    history = train_mlm(student, data, vocab, 100, student_settings, None, teacher=loaded, cases=cases, batch_size=32,
                        lr=1e-2, eval_every=50, head_weight=1.0, device="torch", role="student", log=None)
    trained = agreement(first_choices(student, vocab, cases, device="torch"), teacher_choices)
    assert trained["top1"] == 1.0 and history["loss"][-1] < history["loss"][0], (trained, history)
    np.testing.assert_array_equal(loaded.state_dict()["embedding.weight"],
                                  load_mlm(tmp_path / "teacher.npz")[0].state_dict()["embedding.weight"])


@pytest.mark.parametrize("distil", [False, True])
def test_training_resumes_bit_for_bit(tmp_path, distil):
    """Killed after a checkpoint, pretraining (or distillation with TinyBERT matching) resumed
    from the state beside ``out`` ends where an uninterrupted run ends, bit for bit: weights,
    history, and the files written (dropout, warm-up and decay, clipping all on)."""
    texts = _toy_corpus(120)
    vocab = build_vocabulary(texts, max_size=None, min_freq=1)
    data = segments(texts, vocab, length=13)
    cases = [FillMaskCase([topic, "x", topic, MASK, topic, "y"], 3, topic) for topic in TOPICS]
    settings = {**TINY, "max_len": 13, "dropout": 0.1}
    teacher = build_mlm(len(vocab), settings, "cpu", seed=2) if distil else None
    extra = dict(teacher=teacher, hidden_weight=1.0, alpha=0.5) if distil else {}

    class CrashAt13(Callback):
        def on_step(self, step, loss):
            return step == 13                  # after the checkpoint at step 10

    def run(out, callbacks=(), resume=False):
        model = build_mlm(len(vocab), settings, "cpu", seed=1)
        history = train_mlm(model, data, vocab, 24, settings, out, cases=cases, batch_size=16, lr=1e-2, warmup=4,
                            eval_every=10, seed=3, resume=resume, callbacks=callbacks, log=None, **extra)
        return model.state_dict(), history

    whole, whole_history = run(tmp_path / "whole.npz")
    run(tmp_path / "killed.npz", callbacks=[CrashAt13()])
    resumed, resumed_history = run(tmp_path / "killed.npz", resume=True)
    for name in whole:
        np.testing.assert_array_equal(whole[name], resumed[name], err_msg=name)
    for key in ("step", "loss", "top1", "top5"):
        assert whole_history[key] == resumed_history[key], key
    assert whole_history["step"] == [10, 20, 24]
    assert load_mlm(tmp_path / "killed.npz")[3]["history"]["loss"] == whole_history["loss"]
    with pytest.raises(CheckpointError, match="masked-LM run's training state"):
        load_classifier(state_path(tmp_path / "killed.npz"))
    with pytest.raises(FileNotFoundError, match="no training state"):
        run(tmp_path / "never.npz", resume=True)


def test_ctrl_c_clears_the_progress_bar_before_its_message(tmp_path, capsys):
    """Interrupted, pretrain and distill left their bar on the line, and minidl's "interrupted; --resume goes
    on from ..." was glued onto it: the bar is cleared on the way out, as at the end of a run."""
    class CtrlC(Callback):
        def on_step(self, step, loss):
            if step == 3:
                raise KeyboardInterrupt

    texts = _toy_corpus(30)
    vocab = build_vocabulary(texts, max_size=None, min_freq=1)
    settings = {**TINY, "max_len": 13}
    try:
        train_mlm(build_mlm(len(vocab), settings, "cpu"), segments(texts, vocab, length=13), vocab, 10, settings,
                  tmp_path / "m.npz", batch_size=16, eval_every=5, callbacks=[CtrlC()])
    except KeyboardInterrupt:   # where minidl's main prints its message (pytest.raises let the bar be collected)
        bar = capsys.readouterr().err
    assert "3/10" in bar and bar.endswith("\r") and bar.split("\r")[-2].strip() == "", repr(bar[-200:])


def test_a_finished_run_resumed_stays_as_it_is_and_other_settings_are_refused(tmp_path):
    """Resuming a run that reached its last step used to train one more step (and so on with every
    --resume: "step 41/40"); resuming with another learning rate, seed or step count went on
    without a word, away from where the run would have ended."""
    texts = _toy_corpus(60)
    vocab = build_vocabulary(texts, max_size=None, min_freq=1)
    data = segments(texts, vocab, length=13)
    settings = {**TINY, "max_len": 13}

    def run(resume=False, **changes):
        options = {**dict(batch_size=16, lr=1e-2, warmup=2, eval_every=4, seed=3), **changes}
        model = build_mlm(len(vocab), settings, "cpu", seed=1)
        history = train_mlm(model, data, vocab, 8, settings, tmp_path / "m.npz", resume=resume, log=None, **options)
        return model.state_dict(), history

    finished, history = run()
    files = {path: open(path, "rb").read() for path in (tmp_path / "m.npz", state_path(tmp_path / "m.npz"))}
    again, again_history = run(resume=True)
    assert again_history == history and history["step"] == [4, 8]
    for name in finished:
        np.testing.assert_array_equal(finished[name], again[name], err_msg=name)
    for changes, words in (({"lr": 0.5}, "lr 0.01, now 0.5"), ({"seed": 5}, "seed 3, now 5"),
                           ({"source": {"max_reviews": 10}}, "max_reviews None, now 10")):
        with pytest.raises(ValueError, match=f"different settings \\({words}\\)"):
            run(resume=True, **changes)
    assert {path: open(path, "rb").read() for path in files} == files


def test_the_inputs_are_never_the_output(tmp_path, capsys):
    """mlm distill --out TEACHER used to replace the teacher with its student, exit 0; evaluate
    and finetune wrote their JSON over a checkpoint they read. Each is one line, exit 2, before
    any work, and the file stays."""
    vocab = _vocab(10)
    teacher = save_mlm(tmp_path / "teacher.npz", build_mlm(len(vocab), TINY, "cpu"), vocab, TINY)
    before = open(teacher, "rb").read()
    for command in (["mlm", "distill", "--teacher", str(teacher), "--out", str(teacher)],
                    ["mlm", "pretrain", "--resume-from", str(teacher), "--out", str(teacher), "--overwrite"],
                    ["mlm", "evaluate", "--teacher", str(teacher), "--student", str(teacher), "--out", str(teacher)],
                    ["mlm", "finetune", "--student", str(teacher), "--out", str(teacher)]):
        assert main(command) == 2, command
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and f"({teacher}); name another file, so {teacher} stays" in err[0], err
    assert open(teacher, "rb").read() == before


def test_a_second_run_or_a_changed_resume_is_refused_before_the_reviews_are_read(tmp_path, capsys, monkeypatch):
    """pretrain over an earlier run's --out replaced it without a word, and a --resume with another
    --lr or --max-reviews was refused only after the corpus loaded (about 9 s on IMDB). Each is
    now one line, exit 2, before any review is read, and the files stay; the same options pass."""
    class Stop(Callback):   # after the save at step 2 of 4: a run to resume (a finished one reads no reviews)
        def on_step(self, step, loss):
            return step == 3

    texts = _toy_corpus(60)
    vocab = build_vocabulary(texts, max_size=None, min_freq=1)
    settings = {"d_model": 16, "num_heads": 2, "num_layers": 1, "d_ff": 32, "max_len": 32, "dropout": 0.1}
    out = tmp_path / "m.npz"
    source = {"data": None, "max_reviews": None, "max_vocab": 8000, "init": "cooccurrence", "resume_from": None}
    train_mlm(build_mlm(len(vocab), settings, "cpu"), segments(texts, vocab, length=32), vocab, 4, settings, out,
              eval_every=2, source=source, callbacks=[Stop()], log=None)   # what the command line below records
    files = {path: open(path, "rb").read() for path in (out, state_path(out))}
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "no-reviews-here"))
    common = ["mlm", "pretrain", "--out", str(out), "--d-model", "16", "--heads", "2", "--layers", "1", "--d-ff",
              "32", "--length", "32", "--steps", "4", "--eval-every", "2", "--device", "cpu"]
    for options, words in (([], "holds an earlier run; pass --resume to continue it, --overwrite to replace it"),
                           (["--resume", "--overwrite"], "--overwrite replaces it: give one of them"),   # (ignored)
                           (["--resume", "--lr", "0.5"], "other options (--lr 0.001, now 0.5)"),
                           (["--resume", "--d-model", "32"], "other options (--d-model 16, now 32)"),
                           (["--resume", "--heads", "4"], "other options (--heads 2, now 4)"),   # (num_heads)
                           (["--resume", "--max-reviews", "10"], "other options (--max-reviews None, now 10)")):
        assert main([*common, *options]) == 2, options
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and words in err[0], err
    assert main([*common, "--resume"]) == 1   # the same options: on to the reviews, which are not there
    assert "no-reviews-here" in capsys.readouterr().err
    assert {path: open(path, "rb").read() for path in files} == files
    (tmp_path / "m.state.npz").write_bytes(files[state_path(out)][:2000])   # a copy cut short: no use to --overwrite
    for options in (["--resume"], ["--overwrite"]):   # ("not a training state"; then "not written by minidl mlm")
        assert main([*common, *options]) == 2
        assert "m.state.npz is corrupted (not a complete .npz archive: truncated by" in capsys.readouterr().err
    (tmp_path / "m.state.npz").write_text("not a training state")
    assert main([*common, "--resume"]) == 2
    assert "m.state.npz is not a minidl training state" in capsys.readouterr().err


@pytest.mark.parametrize("role, command, wrote", [("teacher", ["distill", "--teacher", "T.npz"], "pretrain"),
                                                  ("student", ["pretrain"], "distill")])
def test_resuming_the_other_commands_checkpoint_names_the_command_that_resumes_it(tmp_path, capsys, role, command,
                                                                                 wrote):
    """distill --resume on a pretrain checkpoint (or the reverse) was refused as "trained with other options (...
    init 'cooccurrence', now 'teacher' ...); give the same options as the first time", which no option can give."""
    texts = _toy_corpus(30)
    vocab = build_vocabulary(texts, max_size=None, min_freq=1)
    settings = {**TINY, "max_len": 13}
    teacher = save_mlm(tmp_path / "T.npz", build_mlm(len(vocab), settings, "cpu"), vocab, settings)
    train_mlm(build_mlm(len(vocab), settings, "cpu"), segments(texts, vocab, length=13), vocab, 2, settings,
              tmp_path / "m.npz", batch_size=16, eval_every=2, role=role, log=None)
    command = [str(teacher) if option == "T.npz" else option for option in command]
    assert main(["mlm", *command, "--out", str(tmp_path / "m.npz"), "--resume"]) == 2
    assert capsys.readouterr().err == (f"minidl mlm {command[0]}: --resume: {tmp_path / 'm.npz'} is a `minidl mlm "
                                       f"{wrote}` checkpoint: resume it with that command\n")


@pytest.mark.parametrize("distil", [False, True])
def test_resuming_a_finished_run_says_so_before_the_reviews_are_read(tmp_path, capsys, monkeypatch, distil):
    """pretrain and distill --resume of a run that has done its steps read the reviews (14 s on IMDB) first."""
    monkeypatch.setattr(mlm_cli, "_corpus", lambda *a, **k: pytest.fail("the reviews were read"))
    texts = _toy_corpus(30)
    vocab = build_vocabulary(texts, max_size=None, min_freq=1)
    settings = {**TINY, "max_len": 13, "dropout": 0.1}
    teacher = save_mlm(tmp_path / "T.npz", build_mlm(len(vocab), settings, "cpu"), vocab, settings)
    command = ["distill", "--teacher", str(teacher), "--d-model", "16", "--layers", "1", "--d-ff", "32"] if distil \
        else ["pretrain", "--d-model", "16", "--heads", "2", "--layers", "1", "--d-ff", "32", "--length", "13"]
    source = {"data": None, "max_reviews": None, "max_vocab": None if distil else 8000,   # as the command records
              "init": "teacher" if distil else "cooccurrence", "resume_from": None}
    if distil:
        source["teacher"] = mlm_cli.file_sha256(teacher)
    train_mlm(build_mlm(len(vocab), settings, "cpu"), segments(texts, vocab, length=13), vocab, 2, settings,
              tmp_path / "m.npz", lr=2e-3 if distil else 1e-3, role="student" if distil else "teacher",
              source=source, log=None)
    assert main(["mlm", *command, "--out", str(tmp_path / "m.npz"), "--steps", "2", "--device", "cpu",
                 "--resume"]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'm.npz'} has finished its 2 steps already: nothing to train\n"


def test_top_k_never_predicts_specials_and_reads_every_mask():
    vocab = _vocab(10)
    model = build_mlm(len(vocab), TINY, "cpu")
    model.mlm_head.bias.data[:5] = 100.0                       # specials would win if they were allowed
    found = top_k(model, vocab, [["w1", MASK, "w2", MASK], ["w3"]], k=3)
    assert len(found[0]) == 2 and found[1] == []
    for ids, probabilities in found[0]:
        assert np.all(ids >= 5) and np.all(np.diff(probabilities) <= 0) and probabilities.sum() <= 1.0


def test_fill_mask_errors_and_checkpoint_errors(tmp_path):
    vocab = _vocab(10)
    model = build_mlm(len(vocab), TINY, "cpu")
    with pytest.raises(TextEncodingError, match=r"no \[MASK\]"):
        fill_mask(model, vocab, MLMTokenizer(), "nothing hidden here")
    found, seconds = fill_mask(model, vocab, MLMTokenizer(), "w1 [MASK] w2", k=2)
    assert len(found) == 1 and len(found[0]) == 2 and seconds > 0
    path = save_mlm(tmp_path / "m.npz", model, vocab, TINY)
    data = open(path, "rb").read()
    open(tmp_path / "cut.npz", "wb").write(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupted"):
        load_mlm(tmp_path / "cut.npz")
    model.save(tmp_path / "bare.npz")
    with pytest.raises(CheckpointError, match="not a masked-LM checkpoint"):
        load_mlm(tmp_path / "bare.npz")
    with pytest.raises(FileNotFoundError, match=r"check the path \(minidl mlm pretrain and distill --out write"):
        load_mlm(tmp_path / "nothere.npz")   # the hint was a classifier's, minidl train --out DIR


def test_train_mlm_refuses_distillation_settings_without_a_teacher():
    vocab = _vocab(10)
    data = segments([["w1", "w2", "w3"]], vocab, length=4)
    with pytest.raises(ValueError, match="pass a teacher"):
        train_mlm(build_mlm(len(vocab), TINY, "cpu"), data, vocab, 1, TINY, alpha=0.5, log=None)


def test_fine_tuning_starts_from_the_pretrained_weights_but_the_mlm_head():
    from minidl.mlm.finetune import classifier, encode_reviews
    from minidl.data.dataset import TextDataset

    vocab = build_vocabulary([["good", "bad", "film", "."]], max_size=None, min_freq=1)
    mlm = build_mlm(len(vocab), TINY, "cpu", seed=3)
    pretrained = classifier(TINY, len(vocab), "cpu", mlm.state_dict())
    scratch = classifier(TINY, len(vocab), "cpu")
    assert pretrained.mlm_head is None and pretrained.pooling == "cls"
    np.testing.assert_array_equal(pretrained.state_dict()["embedding.weight"], mlm.state_dict()["embedding.weight"])
    assert not np.allclose(scratch.state_dict()["embedding.weight"], mlm.state_dict()["embedding.weight"])
    data = TextDataset(["Good film.", "A bad, bad film! " * 10], [1, 0], ["neg", "pos"], name="two")
    encoded = encode_reviews(data, MLMTokenizer(), vocab, length=6)
    assert [list(vocab.decode(x)) for x in encoded.ids] == [[CLS, "good", "film", "."],
                                                           [CLS, UNK, "bad", UNK, "bad", "film"]]  # "a", "," unknown
    np.testing.assert_array_equal(encoded.labels, [1, 0])


def test_fill_mask_command_prints_teacher_and_student(tmp_path, capsys):
    vocab = _vocab(10)
    teacher, student = (save_mlm(tmp_path / f"{role}.npz", build_mlm(len(vocab), TINY, "cpu", seed), vocab, TINY)
                        for seed, role in enumerate(("teacher", "student")))
    assert main(["fill-mask", "w1 [MASK] w2", "--teacher", str(teacher), "--student", str(student), "-k", "3",
                 "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "w1 [MASK] w2" and "teacher (" in lines[1] and "student (" in lines[1] and len(lines) == 5
    assert main(["fill-mask", "xyzzy [MASK] w2 xyzzy qwerty", "--teacher", str(teacher), "--device", "cpu"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "(not in the teacher's vocabulary, read as [UNK]: xyzzy, qwerty)"
    # a student of another vocabulary: a note of its own (the note was the last model's, without saying whose)
    small = _vocab(3)
    small = save_mlm(tmp_path / "small.npz", build_mlm(len(small), TINY, "cpu", seed=2), small, TINY)
    assert main(["fill-mask", "w1 [MASK] w5", "--teacher", str(teacher), "--student", str(small), "--device",
                 "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "(not in the student's vocabulary, read as [UNK]: w5)" and lines[2].startswith("  teacher (")
    assert main(["fill-mask", "no mask here", "--teacher", str(teacher), "--device", "cpu"]) == 1
    assert "no [MASK]" in capsys.readouterr().err
    assert main(["fill-mask", "w1 " * 20 + "[MASK]", "--teacher", str(teacher), "--device", "cpu"]) == 1
    assert capsys.readouterr().err == ("minidl fill-mask: the text has 21 tokens; the teacher reads at most 15: "
                                       "shorten it\n")   # an error of the position table's, "--debug shows where"
    # -k past the vocabulary (an IndexError once) shows each word once: the specials are never predicted
    assert main(["fill-mask", "w1 [MASK] w2", "--teacher", str(teacher), "-k", "100000", "--device", "cpu"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2 + len(vocab) - len(SPECIALS)


def test_a_masked_lm_is_refused_as_a_classifier_checkpoint(tmp_path):
    vocab = _vocab(10)
    path = save_mlm(tmp_path / "m.npz", build_mlm(len(vocab), TINY, "cpu"), vocab, TINY)
    with pytest.raises(CheckpointError, match="masked-LM checkpoint .* fill-mask"):
        load_classifier(path)


@pytest.mark.parametrize("command", [["mlm", "pretrain"], ["mlm", "distill", "--teacher", "teacher.npz"]])
def test_resume_without_a_saved_state_is_one_line(tmp_path, capsys, command):
    """--resume with nothing to resume from: one line naming the missing file, exit 2, before any work."""
    assert main([*command, "--out", str(tmp_path / "run.npz"), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "run.state.npz" in err and "without --resume" in err


@pytest.mark.parametrize("command", [["mlm", "pretrain"], ["mlm", "distill", "--teacher", "no-such-teacher.npz"]])
@pytest.mark.parametrize("options, words", [(["--steps", "0"], "--steps: must be a whole number >= 1, got 0"),
                                            (["--heads", "3", "--d-model", "32"], "--heads 3 must divide --d-model 32"),
                                            (["--dropout", "1"], "--dropout must lie in [0, 1), got 1.0"),
                                            (["--out", "FOLDER"], "is a folder; give the path of a file"),
                                            (["--out", "run.txt"], "a NumPy archive; name it run.npz")])
def test_bad_settings_and_outs_are_one_line_before_the_reviews_are_read(tmp_path, capsys, monkeypatch, command,
                                                                         options, words):
    """They used to be found after the corpus and its PPMI vectors were built (a minute or more), or never
    (--out run.txt was written, a NumPy archive under that name)."""
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "no-reviews-here"))
    (tmp_path / "FOLDER").mkdir()
    options = [str(tmp_path / o) if o == "FOLDER" else o for o in options]
    out = [] if "--out" in options else ["--out", str(tmp_path / "run.npz")]
    try:
        code = main([*command, *out, *options])
    except SystemExit as stop:       # argparse's refusal: the one line
        code = stop.code
    assert code == 2
    err = capsys.readouterr().err.split("\nminidl mlm")[-1]
    assert len(err.splitlines()) == 1 and words in err


def test_an_int8_copy_saves_smaller_reloads_the_same_and_is_refused_for_training(tmp_path, capsys):
    """minidl mlm quantize: the copy reloads into the int8 model it was written from (same logits),
    its choices stay those of the float model on a clear case, the file is smaller, and
    training from it, or quantising onto the source, is refused in one line."""
    from minidl.compress.quantize import QuantizedEmbedding, QuantizedLinear, quantize

    vocab = _vocab(200)
    settings = {**TINY, "d_model": 32, "d_ff": 64}
    float_path = save_mlm(tmp_path / "student.npz", build_mlm(len(vocab), settings, "cpu", seed=2), vocab, settings)
    assert main(["mlm", "quantize", "--model", str(float_path), "--out", str(tmp_path / "int8.npz")]) == 0
    assert "smaller" in capsys.readouterr().out
    loaded, loaded_vocab, _, meta = load_mlm(tmp_path / "int8.npz")
    assert meta["int8"] and loaded_vocab == vocab and isinstance(loaded.embedding, QuantizedEmbedding)
    assert any(isinstance(m, QuantizedLinear) for _, m in loaded.named_modules())
    reference = load_mlm(float_path)[0]
    quantize(reference, embeddings=True)
    ids = md.tensor(np.array([[2, 7, 4, 9, 11]]))
    mask, positions = md.tensor(np.ones((1, 5), np.float32)), md.tensor(np.array([1, 3]))
    np.testing.assert_array_equal(loaded.masked_lm_logits(ids, mask, positions).numpy(),
                                  reference.masked_lm_logits(ids, mask, positions).numpy())
    assert os.path.getsize(tmp_path / "int8.npz") < 0.55 * os.path.getsize(float_path)   # small: meta, biases
    with pytest.raises(CheckpointError, match="int8 copy"):
        load_mlm(tmp_path / "int8.npz", for_training=True)
    # distilled from as a teacher: it ran, printing the int8 copy's 3,506 "parameters" for the teacher's 76,786
    assert main(["mlm", "distill", "--teacher", str(tmp_path / "int8.npz"), "--out", str(tmp_path / "s.npz")]) == 1
    assert "int8 copy" in capsys.readouterr().err and not os.path.exists(tmp_path / "s.npz")
    before = open(float_path, "rb").read()
    assert main(["mlm", "quantize", "--model", str(float_path), "--out", str(float_path)]) == 2
    assert main(["mlm", "quantize", "--model", str(tmp_path / "int8.npz"), "--out", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "--out is --model" in err[0] and "already an int8 copy" in err[1]
    assert open(float_path, "rb").read() == before and not os.path.exists(tmp_path / "x.npz")
    # a trained masked-LM at --out was replaced by the int8 copy of another: only an int8 copy is replaced
    other = save_mlm(tmp_path / "teacher.npz", build_mlm(len(vocab), settings, "cpu", seed=3), vocab, settings)
    trained = open(other, "rb").read()
    assert main(["mlm", "quantize", "--model", str(float_path), "--out", str(other)]) == 2
    assert "is there and was not written by minidl mlm quantize" in capsys.readouterr().err
    assert open(other, "rb").read() == trained
    assert main(["mlm", "quantize", "--model", str(float_path), "--out", str(tmp_path / "int8.npz")]) == 0


def test_too_few_held_out_sentences_name_the_settings_that_give_more(tmp_path):
    """A small vocabulary leaves few test sentences with every word known: the error says which
    settings give more (it named none, only "give more texts")."""
    write_fake_imdb(tmp_path / "imdb", per_class=20, unsup=20)
    with pytest.raises(ValueError, match=r"from 40 test reviews and a 12-token vocabulary\): a larger vocabulary, "
                                         r"more reviews or fewer held-out sentences give enough"):   # no option names:
        load_corpus(tmp_path / "imdb", max_vocab=12, cases=10, log=None)


def test_too_few_held_out_sentences_name_the_options_on_the_command_line(tmp_path, capsys, monkeypatch):
    """pretrain and distill hold out 1,000 sentences, no option: "fewer held-out sentences" had no way to it."""
    write_fake_imdb(tmp_path / "imdb", per_class=20, unsup=20)
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "imdb"))
    assert main(["mlm", "pretrain", "--out", str(tmp_path / "p.npz"), "--max-vocab", "12", "--device", "cpu"]) == 1
    assert capsys.readouterr().err.rstrip().endswith("vocabulary): more reviews (a larger --max-reviews, or none: "
                                                     "all) or a larger --max-vocab give enough")


def test_evaluate_command_prints_a_table_or_json_and_takes_an_int8_student(tmp_path, capsys):
    """minidl mlm evaluate on a small made-up IMDB: the table by default, the same numbers as
    JSON with --json (and in --out), and an int8 student counted by the numbers it stores."""
    write_fake_imdb(tmp_path / "imdb", per_class=20, unsup=20)
    corpus = load_corpus(tmp_path / "imdb", cases=10, log=None)
    settings = {**TINY, "max_len": 128}
    paths = {role: save_mlm(tmp_path / f"{role}.npz", build_mlm(len(corpus.vocab), {**settings, **size}, "cpu"),
                            corpus.vocab, {**settings, **size})
             for role, size in (("teacher", {"d_model": 32, "d_ff": 64}), ("student", {"d_model": 16}))}
    assert main(["mlm", "quantize", "--model", str(paths["student"]), "--out", str(tmp_path / "int8.npz")]) == 0
    common = ["mlm", "evaluate", "--teacher", str(paths["teacher"]), "--data", str(tmp_path / "imdb"), "--cases",
              "10", "--device", "cpu"]
    capsys.readouterr()
    assert main([*common, "--student", str(paths["student"])]) == 0
    printed = capsys.readouterr()
    table = printed.out.splitlines()   # and what it does while it compares (13-30 s of silence on IMDB)
    assert printed.err.splitlines()[-1] == "both models' choices on 10 sentences, then each timed three times ..."
    assert table[0].startswith("teacher vs student on 10 held-out") and "x smaller" in table[3]
    assert table[4].startswith("sentences/s") and "x faster" in table[4] and table[7].startswith("agreement")
    assert main([*common, "--student", str(tmp_path / "int8.npz"), "--json", "--out", str(tmp_path / "r.json")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == json.load(open(tmp_path / "r.json")) and result["sentences"] == 10
    student = load_mlm(paths["student"])[0]
    assert result["student"]["parameters"] == sum(int(p.size()) for p in student.parameters())
    assert result["size_ratio"] > 1 and 0 <= result["agreement"]["top5"] <= 1


@pytest.mark.parametrize("option, words", [(["--alpha", "-1"], "--alpha is the weight of the hard-label term"),
                                           (["--attention-weight", "-0.5"], "--attention-weight must be a finite "),
                                           (["--head-weight", "inf"], "--head-weight must be a finite number >= 0")])
def test_distillation_settings_are_one_line_before_the_teacher_is_read(tmp_path, capsys, option, words):
    assert main(["mlm", "distill", "--teacher", "no-such.npz", "--out", str(tmp_path / "s.npz"), *option]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and words in err[0], err


def test_metadata_takes_a_byte_a_character_and_files_of_four_byte_characters_still_load(tmp_path):
    """The vocabulary is most of a checkpoint's metadata; stored as NumPy str (UCS-4) text it took four
    bytes a character, over a third of the int8 student of the course's pipeline."""
    import zipfile

    from minidl.io import npz_meta, read_npz, write_npz

    vocab = _vocab(2000)
    path = save_mlm(tmp_path / "m.npz", build_mlm(len(vocab), TINY, "cpu", seed=0), vocab, TINY)
    text = json.dumps(npz_meta(path))
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("meta.npy").file_size < len(text) + 200   # the text and a .npy header
    old = tmp_path / "old.npz"
    write_npz(old, {**read_npz(path), "meta": np.array(text)})
    assert os.path.getsize(old) > os.path.getsize(path) + 3 * len(text) - 200
    model, old_vocab, _, meta = load_mlm(old)
    assert old_vocab == vocab and meta == npz_meta(path) == npz_meta(old)


def test_a_training_state_given_for_a_checkpoint_says_so(tmp_path):
    texts = _toy_corpus(30)
    vocab = build_vocabulary(texts, max_size=None, min_freq=1)
    settings = {**TINY, "max_len": 13}
    train_mlm(build_mlm(len(vocab), settings, "cpu"), segments(texts, vocab, length=13), vocab, 2, settings,
              tmp_path / "m.npz", batch_size=16, eval_every=2, log=None)
    with pytest.raises(CheckpointError, match="training state of a masked-LM run .* without .state"):
        load_mlm(state_path(tmp_path / "m.npz"))


def test_finetune_keeps_other_starts_only_when_they_ran_with_the_same_options(tmp_path, capsys):
    """--starts with an --out of another --train-limit or seed merged both into one file, under the
    new run's numbers."""
    from minidl.io import file_sha256

    student = tmp_path / "s.npz"
    student.write_bytes(b"a student")
    out = tmp_path / "ft.json"
    options = {"student": file_sha256(student), "data": None, "length": 128, "epochs": 3, "batch_size": 32,
               "lr": 5e-4, "train_limit": 40, "test_limit": None, "seed": 0}
    out.write_text(json.dumps({"settings": {}, "length": 128, "options": options, "scratch": {}}))
    assert main(["mlm", "finetune", "--student", str(student), "--out", str(out), "--starts", "scratch",
                 "--train-limit", "80"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "holds runs with other options (--train-limit 40, now 80)" in err[0], err
    # without --starts (every start) too: the file was replaced, and with it the starts the run did not make
    assert main(["mlm", "finetune", "--student", str(student), "--out", str(out), "--train-limit", "80"]) == 2
    assert "holds runs with other options (--train-limit 40, now 80)" in capsys.readouterr().err
    assert "scratch" in json.loads(out.read_text())


def test_a_file_of_the_user_where_the_training_state_goes_is_never_replaced(tmp_path, capsys):
    """pretrain --out P.npz replaced a P.state.npz of the user's."""
    (tmp_path / "P.state.npz").write_text("mine")
    assert main(["mlm", "pretrain", "--out", str(tmp_path / "P.npz")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "P.state.npz is there and was not written by minidl mlm" in err[0], err
    assert (tmp_path / "P.state.npz").read_text() == "mine"


def test_a_student_its_teacher_cannot_teach_is_refused_before_the_reviews_are_read(tmp_path, capsys, monkeypatch):
    """A student wider than the teacher under --init teacher, or deeper with intermediate matching, was refused
    after reading and tokenising the reviews (9 s on 1,000), in the words of teacher_basis and layer_map;
    pretrain --length 1 likewise (segments)."""
    monkeypatch.setattr(mlm_cli, "_corpus", lambda *a, **k: pytest.fail("the reviews were read"))
    vocab = _vocab()
    teacher = save_mlm(tmp_path / "teacher.npz", build_mlm(len(vocab), TINY, "cpu", seed=0), vocab, TINY)
    common = ["mlm", "distill", "--teacher", str(teacher), "--out", str(tmp_path / "s.npz"), "--heads", "2"]
    assert main([*common, "--d-model", "32", "--layers", "1"]) == 2
    assert "--init teacher projects the teacher's embeddings, of width 16: give --d-model at most that (got 32)" \
        in capsys.readouterr().err
    assert main([*common, "--d-model", "16", "--layers", "3", "--hidden-weight", "1"]) == 2
    assert "give --layers at most the teacher's 1 (got 3), or both weights 0" in capsys.readouterr().err
    for command in (["pretrain", "--out", str(tmp_path / "p.npz")],   # finetune trained on [CLS] alone
                    ["finetune", "--student", str(teacher), "--out", str(tmp_path / "f.json")]):
        with pytest.raises(SystemExit):
            main(["mlm", *command, "--length", "1"])
        assert "argument --length: must be a whole number >= 2, got 1" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "s.npz")
    # pretrain --resume-from went on with the checkpoint's model, dropping the --d-model and --layers given
    assert main(["mlm", "pretrain", "--out", str(tmp_path / "p.npz"), "--resume-from", str(teacher), "--d-model", "64",
                 "--layers", "3", "--heads", "2"]) == 2
    assert (f"--resume-from {teacher} goes on with its model's settings, not --d-model 64 (it has 16), --layers 3 "
            f"(it has 1): leave them out") in capsys.readouterr().err
    # ... and the segment length, dropout, vocabulary size and initialisation given, which it had not named
    assert main(["mlm", "pretrain", "--out", str(tmp_path / "p.npz"), "--resume-from", str(teacher), "--length", "64",
                 "--dropout", "0.3", "--max-vocab", "30", "--init", "random"]) == 2
    assert (f"not --dropout 0.3 (it has {TINY['dropout']}), --length 64 (it has {TINY['max_len']}), --max-vocab 30 "
            f"(it has {len(vocab)} tokens), --init random (it has its trained embeddings): leave them out") \
        in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "p.npz")
    # --max-vocab is a ceiling: the first run's own, above the vocabulary it got, goes on (to read the reviews)
    with pytest.raises(pytest.fail.Exception, match="the reviews were read"):
        main(["mlm", "pretrain", "--out", str(tmp_path / "p.npz"), "--resume-from", str(teacher), "--max-vocab",
              "100000"])



def test_pretrain_distill_and_fill_mask_run_end_to_end_from_the_command_line(tmp_path, capsys, monkeypatch):
    """No test ran `mlm pretrain` or `mlm distill` to the end through the command line (coverage): the
    reading, the model, the training, the files and what they print; then fill-mask on both checkpoints."""
    import functools

    write_fake_imdb(tmp_path / "imdb", per_class=20, unsup=20)
    monkeypatch.setattr(mlm_cli, "load_corpus", functools.partial(load_corpus, cases=10))   # a tiny corpus
    shape = ["--layers", "1", "--heads", "2", "--dropout", "0", "--steps", "4", "--eval-every", "2", "--device",
             "cpu", "--data", str(tmp_path / "imdb")]
    teacher, student = tmp_path / "teacher.npz", tmp_path / "student.npz"
    assert main(["mlm", "pretrain", "--out", str(teacher), "--d-model", "16", "--d-ff", "32", "--length", "24",
                 "--max-vocab", "300", "--init", "cooccurrence", *shape]) == 0
    printed = capsys.readouterr().out
    assert "pretraining on " in printed and " segments of up to 24 tokens " in printed
    assert load_mlm(teacher)[3]["history"]["step"] == [2, 4]
    assert main(["mlm", "distill", "--teacher", str(teacher), "--out", str(student), "--d-model", "8", "--d-ff",
                 "16", *shape]) == 0
    model, vocab, _, meta = load_mlm(student)
    assert meta["role"] == "student" and meta["settings"]["d_model"] == 8 and meta["history"]["step"] == [2, 4]
    assert vocab.to_dict() == load_mlm(teacher)[1].to_dict()     # the teacher's vocabulary, for comparable ids
    capsys.readouterr()
    assert main(["fill-mask", "the movie was [MASK] .", "--teacher", str(teacher), "--student", str(student),
                 "-k", "3", "--device", "cpu"]) == 0
    assert "teacher" in capsys.readouterr().out


def test_held_out_sentences_fit_the_models_length():
    """--length 16 trained, then crashed at the first evaluation: a held-out sentence of 29 tokens, with [CLS],
    did not fit max_len 16. The sentences are cut to fit; at the default length they are the same as before."""
    from minidl.mlm.corpus import held_out_cases

    texts = [" ".join(["good"] * n) + " ." for n in range(5, 30)] * 4   # sentences of 6 to 30 tokens
    vocab = build_vocabulary([MLMTokenizer()(t) for t in texts], max_size=None, min_freq=1)
    short = held_out_cases(texts, vocab, 20, 0, "more", length=16)
    assert max(len(case.tokens) for case in short) <= 15
    assert held_out_cases(texts, vocab, 20, 0, "more") == fill_mask_cases([MLMTokenizer()(t) for t in texts], vocab, 20)
    with pytest.raises(ValueError, match="a length of 6 tokens holds no held-out sentence .* give a length of 7"):
        held_out_cases(texts, vocab, 20, 0, "more reviews", length=6)   # more reviews could never help


def test_a_refusal_names_a_recorded_hash_as_one():
    """--teacher '3f2a...' read as the file name of a teacher; it is the SHA-256 of the file the run read."""
    from minidl.mlm.cli import _option

    assert (_option("teacher"), _option("student"), _option("train_limit")) == (
        "--teacher (its SHA-256)", "--student (its SHA-256)", "--train-limit")
