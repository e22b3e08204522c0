"""minidl.mlm.projection: a student started from the teacher's embedding table (SVD), the
head-feature matching loss, and the fill-mask top-k selection (``evaluate._most_probable``)."""
import json

import numpy as np
import pytest

import minidl as md
from minidl.gradcheck import gradcheck
from minidl.mlm import build_mlm, build_vocabulary, compare, finetune, load_mlm, save_mlm, segments, train_mlm
from minidl.mlm.evaluate import _most_probable
from minidl.mlm.projection import head_matching_loss, start_from_teacher, teacher_basis
from tests.data.conftest import write_fake_imdb

TEACHER = dict(d_model=16, num_heads=2, num_layers=1, d_ff=32, max_len=16, dropout=0.0)


def _teacher(V=40):
    teacher = build_mlm(V, TEACHER, "cpu", seed=3)
    teacher.embedding.weight.data = np.random.default_rng(0).standard_normal((V, 16)).astype(np.float32)
    teacher.mlm_head.bias.data = np.linspace(-1, 1, V).astype(np.float32)
    return teacher


def test_basis_is_orthonormal_and_spans_the_best_subspace():
    teacher = _teacher()
    table = teacher.embedding.weight.numpy().astype(np.float64)
    Q = teacher_basis(teacher, 6)
    np.testing.assert_allclose(Q.T @ Q, np.eye(6), atol=1e-10)
    # the projected table E Q Qᵀ is the best rank-6 table: its error is the discarded singular values
    S = np.linalg.svd(table, compute_uv=False)
    assert np.isclose(np.linalg.norm(table - table @ Q @ Q.T) ** 2, (S[6:] ** 2).sum())
    with pytest.raises(ValueError, match="between 1 and the teacher's 16"):
        teacher_basis(teacher, 17)


@pytest.mark.parametrize("width", [6, 16])
def test_a_student_producing_the_projected_features_scores_like_the_rank_limited_teacher(width):
    """start_from_teacher's promise: with f_s = f_t Q the student's logits are f_t Q Qᵀ Eᵀ + b,
    the teacher's own logits when the student is as wide as the teacher (Q is then a rotation)."""
    teacher = _teacher()
    student = build_mlm(40, {**TEACHER, "d_model": width, "max_len": 12}, "cpu")
    Q = start_from_teacher(student, teacher)
    table, bias = teacher.embedding.weight.numpy().astype(np.float64), teacher.mlm_head.bias.numpy()
    np.testing.assert_allclose(student.embedding.weight.numpy(), table @ Q, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(student.position.weight.numpy(),
                               teacher.position.weight.numpy()[:12] @ Q, rtol=1e-5, atol=1e-6)
    f_teacher = np.random.default_rng(1).standard_normal((5, 16))
    student_logits = student.mlm_head.logits(md.tensor((f_teacher @ Q).astype(np.float32)),
                                             student.embedding.weight).numpy()
    np.testing.assert_allclose(student_logits, f_teacher @ Q @ Q.T @ table.T + bias, rtol=1e-4, atol=1e-4)
    if width == 16:
        np.testing.assert_allclose(student_logits, f_teacher @ table.T + bias, rtol=1e-4, atol=1e-4)


def test_start_from_teacher_refuses_mismatches():
    teacher = _teacher()
    with pytest.raises(ValueError, match="vocabularies differ"):
        start_from_teacher(build_mlm(41, {**TEACHER, "d_model": 8}, "cpu"), teacher)
    with pytest.raises(ValueError, match="max_len 20 exceeds"):
        start_from_teacher(build_mlm(40, {**TEACHER, "d_model": 8, "max_len": 20}, "cpu"), teacher)
    with pytest.raises(ValueError, match="between 1 and the teacher's 16"):
        start_from_teacher(build_mlm(40, {**TEACHER, "d_model": 32, "num_heads": 2}, "cpu"), teacher)


@pytest.mark.parametrize("device", ["cpu", "torch"])
def test_head_matching_loss_value_and_gradient(device):
    rng = np.random.default_rng(2)
    f_student, f_teacher = rng.standard_normal((7, 4)), rng.standard_normal((7, 10))
    Q = np.linalg.qr(rng.standard_normal((10, 4)))[0]
    student = md.tensor(f_student, requires_grad=True, dtype="float64", device=device)
    teacher = md.tensor(f_teacher, requires_grad=True, dtype="float64", device=device)
    basis = md.tensor(Q, dtype="float64", device=device)
    loss = head_matching_loss(student, teacher, basis)
    assert np.isclose(loss.item(), np.mean((f_student - f_teacher @ Q) ** 2))
    loss.backward()
    assert teacher.grad is None                                   # the teacher is a constant
    result = gradcheck(lambda s: head_matching_loss(s, teacher, basis), [student], eps=1e-5, tol=1e-7)
    assert result.ok, str(result)
    exact = md.tensor(f_teacher @ Q, dtype="float64", device=device)
    assert head_matching_loss(exact, teacher, basis).item() < 1e-28


def test_head_weight_needs_a_teacher_and_is_not_negative():
    vocab = build_vocabulary([["w1", "w2", "w3"]], max_size=None, min_freq=1)
    data = segments([["w1", "w2", "w3"]], vocab, length=4)
    model = build_mlm(len(vocab), TEACHER, "cpu")
    with pytest.raises(ValueError, match="pass a teacher"):
        train_mlm(model, data, vocab, 1, TEACHER, head_weight=1.0, log=None)
    with pytest.raises(ValueError, match="head_weight must be >= 0"):
        train_mlm(model, data, vocab, 1, TEACHER, teacher=build_mlm(len(vocab), TEACHER, "cpu"), head_weight=-1.0,
                  log=None)


def test_most_probable_equals_a_full_sort():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((30, 200)).astype(np.float32)
    logits[:, :5] = -np.inf                                       # the specials
    best, probabilities = _most_probable(logits, 7)
    full = np.exp(logits.astype(np.float64) - logits.max(axis=1, keepdims=True))
    full /= full.sum(axis=1, keepdims=True)
    reference = np.argsort(-full, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(best, reference)
    np.testing.assert_allclose(probabilities, np.take_along_axis(full, reference, axis=1), rtol=1e-12)


def test_fine_tuning_starts(tmp_path):
    """"teacher embeddings only" is the distilled student's starting point without its training:
    projected embeddings and positions, fresh layers; "pretrained" is the student itself."""
    from minidl.mlm.finetune import STARTS, starting_state

    vocab = build_vocabulary([[f"w{i}" for i in range(35)]], max_size=None, min_freq=1)
    teacher = _teacher(len(vocab))
    teacher_path = save_mlm(tmp_path / "teacher.npz", teacher, vocab, TEACHER)
    settings = {**TEACHER, "d_model": 8}
    student = build_mlm(len(vocab), settings, "cpu", seed=5)
    start_from_teacher(student, teacher)
    fresh = build_mlm(len(vocab), settings, "cpu", seed=0).state_dict()
    state = starting_state("teacher embeddings only", settings, vocab, teacher=load_mlm(teacher_path)[0])
    for name in ("embedding.weight", "position.weight", "mlm_head.bias"):
        np.testing.assert_allclose(state[name], student.state_dict()[name], rtol=1e-5, atol=1e-6)
    layer = "encoder.layers.0.attention.query.weight"
    np.testing.assert_array_equal(state[layer], fresh[layer])
    assert starting_state("scratch", settings, vocab) is None
    assert starting_state("pretrained", settings, vocab, pretrained=student) is not None
    assert "teacher embeddings only" in STARTS


def test_rank_limited_teacher_scores_through_the_projected_table():
    from minidl.mlm.projection import RankLimitedTeacher

    teacher = _teacher()
    ids = md.tensor(np.array([[2, 7, 4, 9], [2, 11, 4, 0]]))
    mask = md.tensor(np.array([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=np.float32))
    positions = md.tensor([2, 6])
    full = teacher.masked_lm_logits(ids, mask, positions).numpy()
    np.testing.assert_allclose(RankLimitedTeacher(teacher, 16).masked_lm_logits(ids, mask, positions).numpy(), full,
                               rtol=1e-4, atol=1e-4)
    Q = teacher_basis(teacher, 5)
    features = teacher.mlm_head.transform(teacher.encode(ids, mask).reshape(-1, 16)[positions]).numpy()
    table = teacher.embedding.weight.numpy().astype(np.float64)
    np.testing.assert_allclose(RankLimitedTeacher(teacher, 5).masked_lm_logits(ids, mask, positions).numpy(),
                               features @ Q @ Q.T @ table.T + teacher.mlm_head.bias.numpy(), rtol=1e-4, atol=1e-4)


def test_compare_reports_the_thesis_table_and_the_rank_limited_teacher(tmp_path):
    from minidl.mlm.corpus import FillMaskCase
    from minidl.mlm.tokenizer import MASK

    words = [f"w{i}" for i in range(35)]
    vocab = build_vocabulary([words], max_size=None, min_freq=1)
    teacher = _teacher(len(vocab))
    student = build_mlm(len(vocab), {**TEACHER, "d_model": 8}, "cpu", seed=1)
    paths = [save_mlm(tmp_path / f"{role}.npz", model, vocab, TEACHER)
             for role, model in (("teacher", teacher), ("student", student))]
    cases = [FillMaskCase([words[i], MASK, words[i + 1]], 1, words[i + 2]) for i in range(10)]
    result = compare(teacher, student, vocab, cases, *paths, repeats=1)
    assert result["sentences"] == 10 and result["rank_limited_teacher"]["width"] == 8
    for part in (result["agreement"], result["rank_limited_teacher"]["agreement"]):
        assert 0 <= part["top1"] <= part["top5"] <= 1
    assert result["size_ratio"] > 1 and result["speed_ratio"] > 0
    assert "rank_limited_teacher" not in compare(teacher, teacher, vocab, cases, repeats=1)
    assert compare(teacher, teacher, vocab, cases, repeats=1)["agreement"] == {"top1": 1.0, "top5": 1.0}


def test_fine_tuning_checks_the_teacher_and_the_length_first_and_runs_one_step(tmp_path):
    """A teacher of another vocabulary was found out after the "pretrained" start had fine-tuned (three
    epochs over IMDB thrown away); a run of one step failed in the schedule ("need warmup_steps <
    total_steps"); a --length past the student's positions did not say what to give."""
    from minidl.mlm.finetune import compare_pretraining

    write_fake_imdb(tmp_path / "imdb", per_class=6, unsup=0)
    vocab = build_vocabulary([[f"w{i}" for i in range(35)]], max_size=None, min_freq=1)
    student = save_mlm(tmp_path / "student.npz", build_mlm(len(vocab), TEACHER, "cpu", seed=5), vocab, TEACHER)
    other = build_vocabulary([[f"v{i}" for i in range(20)]], max_size=None, min_freq=1)
    teacher = save_mlm(tmp_path / "teacher.npz", build_mlm(len(other), TEACHER, "cpu", seed=3), other, TEACHER)
    read = []
    with pytest.raises(ValueError, match="have different vocabularies; give the teacher the student was distilled"):
        compare_pretraining(student, tmp_path / "imdb", length=16, teacher_path=teacher, log=read.append)
    assert read == [], "refused before the reviews were read"
    with pytest.raises(ValueError, match="longer than the student's 16 positions; give a length of 16 or less"):
        compare_pretraining(student, tmp_path / "imdb", length=32, starts=("pretrained",), log=None)
    result = compare_pretraining(student, tmp_path / "imdb", length=16, epochs=1, batch_size=64,
                                 starts=("pretrained",), log=None)
    assert len(result["pretrained"]["epochs"]) == 1


def test_fine_tuning_reads_the_reviews_and_the_teacher_once(tmp_path, monkeypatch):
    """The cooccurrence start read the labelled reviews again (a second pass over the IMDB archive) and the
    teacher's start loaded the teacher again, after the vocabulary check had loaded it."""
    from minidl.data import imdb

    write_fake_imdb(tmp_path / "imdb", per_class=6, unsup=4)
    vocab = build_vocabulary([[f"w{i}" for i in range(35)]], max_size=None, min_freq=1)
    student = save_mlm(tmp_path / "student.npz", build_mlm(len(vocab), TEACHER, "cpu", seed=5), vocab, TEACHER)
    teacher = save_mlm(tmp_path / "teacher.npz", build_mlm(len(vocab), TEACHER, "cpu", seed=3), vocab, TEACHER)
    reads, loads, read_reviews, load_mlm = [], [], imdb.read_imdb_reviews, finetune.load_mlm
    monkeypatch.setattr(imdb, "read_imdb_reviews", lambda source, parts=imdb.LABELLED: reads.append(tuple(parts))
                        or read_reviews(source, parts))
    monkeypatch.setattr(finetune, "load_mlm", lambda path, *a, **k: loads.append(path) or load_mlm(path, *a, **k))
    result = finetune.compare_pretraining(student, tmp_path / "imdb", length=16, epochs=1, batch_size=64,
                                          starts=("teacher embeddings only", "cooccurrence only"), teacher_path=teacher,
                                          log=None)
    assert {"teacher embeddings only", "cooccurrence only"} <= set(result)
    assert sorted(reads) == sorted([tuple(imdb.LABELLED), tuple(imdb.UNLABELLED)])
    assert loads == [student, teacher]


def test_an_interrupted_finetune_keeps_the_starts_it_finished(tmp_path, monkeypatch):
    """mlm finetune wrote its JSON only at the end: an interrupt in the last start lost every start before it."""
    from minidl.cli import main

    write_fake_imdb(tmp_path / "imdb", per_class=6, unsup=0)
    vocab = build_vocabulary([[f"w{i}" for i in range(35)]], max_size=None, min_freq=1)
    student = save_mlm(tmp_path / "student.npz", build_mlm(len(vocab), TEACHER, "cpu", seed=5), vocab, TEACHER)
    out, fine_tune = tmp_path / "ft.json", finetune.fine_tune
    command = ["mlm", "finetune", "--student", str(student), "--data", str(tmp_path / "imdb"), "--out", str(out),
               "--length", "16", "--epochs", "1", "--batch-size", "64"]

    def interrupted_in_the_second_start(model, *args, name, **options):
        if name == "scratch":
            raise KeyboardInterrupt
        return fine_tune(model, *args, name=name, **options)

    monkeypatch.setattr(finetune, "fine_tune", interrupted_in_the_second_start)
    assert main([*command, "--starts", "pretrained,scratch"]) == 130
    assert "pretrained" in json.loads(out.read_text()) and "scratch" not in json.loads(out.read_text())
    monkeypatch.undo()
    assert main([*command, "--starts", "scratch"]) == 0
    assert {"pretrained", "scratch"} <= set(json.loads(out.read_text()))
    monkeypatch.setattr(finetune, "STARTS", ("pretrained",))   # a run without --starts keeps the others
    assert main(command) == 0
    assert {"pretrained", "scratch"} <= set(json.loads(out.read_text()))
