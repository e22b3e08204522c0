"""Distillation: the fused loss against finite differences and torch, the training loop, and
TinyBERT-style hidden-state and attention-map matching between transformers."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import minidl as md
from minidl.compress import IntermediateMatching, distill, distillation_loss, layer_map
from minidl.gradcheck import gradcheck
from minidl.models import build_model
from minidl.train import Callback

SETTINGS = [("kl", 0.5, 2.0), ("kl", 0.0, 1.0), ("kl", 0.3, 4.0), ("kl", 1.0, 2.0),
            ("mse", 0.5, 2.0), ("mse", 0.0, 2.0), ("mse", 0.8, 2.0)]


def _inputs(device, batch=5, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.standard_normal((batch, classes)) * 2
    t = rng.standard_normal((batch, classes)) * 2
    y = rng.integers(0, classes, batch)
    return (md.tensor(s, dtype="float64", device=device, requires_grad=True),
            md.tensor(t, dtype="float64", device=device), md.tensor(y, device=device), (s, t, y))


def _torch_loss(s, t, y, alpha, temperature, kind):
    hard = F.cross_entropy(s, y)
    if kind == "kl":
        soft = F.kl_div(F.log_softmax(s / temperature, -1), F.softmax(t / temperature, -1),
                        reduction="batchmean") * temperature ** 2
    else:
        soft = F.mse_loss(s, t)
    return alpha * hard + (1 - alpha) * soft


@pytest.mark.parametrize("kind,alpha,temperature", SETTINGS)
def test_gradcheck(device, kind, alpha, temperature):
    s, t, y, _ = _inputs(device)
    result = gradcheck(lambda s, t, y: distillation_loss(s, t, y, alpha, temperature, kind), [s, t, y])
    assert result.ok, str(result)


@pytest.mark.parametrize("kind,alpha,temperature", SETTINGS)
def test_matches_torch(device, kind, alpha, temperature):
    s, t, y, (s_np, t_np, y_np) = _inputs(device, seed=1)
    loss = distillation_loss(s, t, y, alpha, temperature, kind)
    loss.backward()
    s_torch = torch.tensor(s_np, requires_grad=True)
    expected = _torch_loss(s_torch, torch.tensor(t_np), torch.tensor(y_np), alpha, temperature, kind)
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-10, rel=1e-10)
    grad = s.grad.detach().cpu().numpy() if hasattr(s.grad, "detach") else np.asarray(s.grad)
    assert grad.dtype == np.float64
    np.testing.assert_allclose(grad, s_torch.grad.numpy(), rtol=1e-10, atol=1e-12)


def _grad(s_np, t_np, y_np, **kwargs):
    s = md.tensor(s_np, dtype="float64", requires_grad=True)
    distillation_loss(s, t_np, y_np, **kwargs).backward()
    return np.asarray(s.grad)


def test_alpha_one_is_cross_entropy():
    s, t, y, (s_np, t_np, y_np) = _inputs("cpu", seed=2)
    for kind in ("kl", "mse"):
        loss = distillation_loss(s, t, y, alpha=1.0, temperature=3.0, kind=kind)
        reference = md.cross_entropy(md.tensor(s_np, dtype="float64"), y_np)
        assert loss.item() == pytest.approx(reference.item(), rel=1e-12)
        # the teacher plays no part: any teacher gives the same gradient
        np.testing.assert_allclose(_grad(s_np, t_np, y_np, alpha=1.0, kind=kind),
                                   _grad(s_np, -5 * t_np, y_np, alpha=1.0, kind=kind), rtol=1e-12)


def test_student_equal_to_teacher_has_no_soft_loss():
    s, _, y, (s_np, _, y_np) = _inputs("cpu", seed=3)
    for kind in ("kl", "mse"):
        assert distillation_loss(s, s_np, y, alpha=0.0, kind=kind).item() == pytest.approx(0.0, abs=1e-12)
        np.testing.assert_allclose(_grad(s_np, s_np, y_np, alpha=0.0, kind=kind), 0.0, atol=1e-12)


def test_temperature_squared_keeps_the_gradient_size():
    """With α = 0 the gradient is T·(softmax(s/T) − softmax(t/T))/B; for large T that tends to
    ((s − mean s) − (t − mean t))/(C·B), so its size stays the same instead of falling like 1/T²."""
    _, _, _, (s_np, t_np, y_np) = _inputs("cpu", batch=6, classes=5, seed=4)
    batch, classes = s_np.shape
    centred = lambda a: a - a.mean(axis=1, keepdims=True)  # noqa: E731
    limit = (centred(s_np) - centred(t_np)) / (classes * batch)
    norms = []
    for temperature in (1.0, 2.0, 4.0, 8.0, 16.0, 64.0):
        grad = _grad(s_np, t_np, y_np, alpha=0.0, temperature=temperature)
        q = lambda a: np.exp(a / temperature) / np.exp(a / temperature).sum(1, keepdims=True)  # noqa: E731
        np.testing.assert_allclose(grad, temperature * (q(s_np) - q(t_np)) / batch, rtol=1e-10, atol=1e-14)
        norms.append(np.linalg.norm(grad))
    assert max(norms) / min(norms) < 3, norms
    # the gap to the limit shrinks like 1/T
    gaps = [np.abs(_grad(s_np, t_np, y_np, alpha=0.0, temperature=temperature) - limit).max()
            for temperature in (100.0, 1000.0)]
    assert gaps[1] < 0.2 * gaps[0] and gaps[1] < 0.01 * np.abs(limit).max(), gaps


def test_bad_arguments_are_named():
    s, t, y, _ = _inputs("cpu")
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(s, t, y, alpha=1.5)
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(s, t, y, temperature=0.0)
    with pytest.raises(ValueError, match="kind"):
        distillation_loss(s, t, y, kind="l2")
    with pytest.raises(md.ShapeError, match="same shape"):
        distillation_loss(s, np.zeros((5, 3)), y)
    with pytest.raises(md.ShapeError, match="targets"):
        distillation_loss(s, t, [0, 1])
    with pytest.raises(ValueError, match="targets must lie"):
        distillation_loss(s, t, [0, 1, 2, 3, 4])


# --- the training loop ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def teacher_and_data():
    """A GRU teacher that has learnt the synthetic corpus's negations (≈0.95 test accuracy, ~1 s).
    (3 epochs at lr 0.005 leave it at chance: the corpus needs negation modelled.)"""
    from minidl.train import TrainConfig, fit
    from minidl.train.prepare import prepare

    config = TrainConfig(model="gru", hidden=16, embed_dim=16, epochs=6, lr=0.02, train_limit=2000, patience=None)
    result = fit(config, progress=False, log=lambda *_: None)
    assert result.test["accuracy"] > 0.85
    return result.model, prepare(config)


def _student(name, vocab_size):
    md.manual_seed(1)
    return build_model(name, vocab_size, hidden=8, embed_dim=8)


def _check_teacher_untouched(teacher, before):
    after = teacher.state_dict()
    assert before.keys() == after.keys()
    for name in before:
        assert np.array_equal(before[name], after[name]), f"teacher parameter {name} changed"
    assert all(p.grad is None for p in teacher.parameters())  # run under no_grad: no graph, no gradient


def test_distill_teaches_the_student_and_leaves_the_teacher_alone(teacher_and_data):
    """α = 0: the labels are never used, so everything the student learns comes from the teacher.
    Cached teacher logits must give the same training as running the teacher every batch."""
    teacher, prepared = teacher_and_data
    before = teacher.state_dict()
    teacher.train()  # distill switches it to eval mode and back
    results = {}
    for cache in (False, True):
        student = _student("gru", len(prepared.vocab))
        history = distill(student, teacher, prepared.train, prepared.validation, epochs=3, lr=0.03, alpha=0.0,
                          cache_teacher=cache, log=None)
        results[cache] = (history, student.state_dict())
        assert history["loss"][-1] < history["loss"][0]
        assert len(history["validation_accuracy"]) == 3
        assert teacher.training
        _check_teacher_untouched(teacher, before)
    (plain, plain_weights), (cached, cached_weights) = results[False], results[True]
    # the table's logits come from batches of other shapes, which a BLAS may round differently
    # (OpenBLAS on an AMD EPYC does, by a few float32 ulps; Adam's steps on rare embedding rows,
    # g / √v, grow those to ~4e-5 in three epochs): the same training to rounding
    np.testing.assert_allclose(plain["loss"], cached["loss"], rtol=1e-5)
    for name in plain_weights:
        np.testing.assert_allclose(plain_weights[name], cached_weights[name], rtol=1e-3, atol=1e-4, err_msg=name)
    assert plain["validation_accuracy"][-1] > 0.8  # chance is 0.5; ≈0.9 observed


def test_distill_mse_without_validation(teacher_and_data):
    teacher, prepared = teacher_and_data
    before = teacher.state_dict()
    lines = []
    history = distill(_student("mlp", len(prepared.vocab)), teacher, prepared.train, epochs=2, lr=0.01,
                      kind="mse", cache_teacher=True, log=lines.append)
    assert history["loss"][1] < history["loss"][0]
    assert "validation_accuracy" not in history and len(lines) == 2
    _check_teacher_untouched(teacher, before)


def test_distill_rejects_bad_settings(teacher_and_data):
    teacher, prepared = teacher_and_data
    with pytest.raises(ValueError, match="alpha"):
        distill(_student("mlp", len(prepared.vocab)), teacher, prepared.train, alpha=-0.1)
    with pytest.raises(ValueError, match="same module"):
        distill(teacher, teacher, prepared.train)


# --- TinyBERT-style intermediate matching -------------------------------------------------------
IDS = np.array([[2, 3, 4, 0, 0], [5, 1, 3, 2, 4]])  # B = 2, T = 5; review 0 has 2 padded positions


def _batch(ids, device):
    mask = (ids > 0).astype(np.float64)
    return (md.tensor(ids, device=device), md.tensor(mask, device=device, dtype="float64"),
            md.tensor(mask.sum(axis=1).astype(np.int64), device=device))


def _transformer(device, d_model, num_heads, num_layers, seed, max_len=8, **options):
    md.manual_seed(seed)
    return build_model("transformer", 6, d_model=d_model, num_heads=num_heads, num_layers=num_layers, d_ff=4,
                       max_len=max_len, dropout=0.0, device=device, dtype="float64", **options)


def _matching_loss(student, teacher, matching, ids, device, real_ids=None):
    """The matching loss on ``ids``, masked as ``real_ids`` (default ``ids``) says."""
    inputs = (md.tensor(ids, device=device), *_batch(ids if real_ids is None else real_ids, device)[1:])
    with md.no_grad():
        _, teacher_states, teacher_attentions = teacher.forward_with_states(*inputs)
    _, states, attentions = student.forward_with_states(*inputs)
    return matching(states, teacher_states, attentions, teacher_attentions, inputs[1])


def test_layer_map_is_uniform():
    assert layer_map(2, 4) == [0, 2, 4]
    assert layer_map(3, 6) == [0, 2, 4, 6]
    assert layer_map(2, 3) == [0, 1, 3]
    assert layer_map(2, 2) == [0, 1, 2]
    with pytest.raises(ValueError, match="student has 3 layers but the teacher only 2"):
        layer_map(3, 2)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_forward_with_states_gives_the_forward_logits(device, pooling):
    model = _transformer(device, 8, 2, 2, seed=0, pooling=pooling)
    inputs = _batch(IDS, device)
    out, states, attentions = model.forward_with_states(*inputs)
    # forward takes the fused attention, forward_with_states the composition that forms the
    # probabilities: the same numbers up to rounding
    np.testing.assert_allclose(out.logits.numpy(), model(*inputs).logits.numpy(), rtol=1e-12, atol=1e-15)
    assert [s.shape for s in states] == [(2, 5, 8)] * 3 and [a.shape for a in attentions] == [(2, 2, 5, 5)] * 2
    assert all(t.requires_grad for t in states + attentions)
    # the last state is the residual stream before the pre-LN stack's final LayerNorm
    np.testing.assert_allclose(model.encoder.final_norm(states[-1]).numpy(), model.encode(*inputs[:2]).numpy(),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(attentions[-1].numpy().sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(model.encoder.layers[-1].attention.last_weights.numpy(), attentions[-1].numpy(),
                               rtol=1e-12, atol=1e-15)


def test_matching_an_identical_teacher_costs_nothing():
    model, twin = _transformer("cpu", 8, 2, 2, seed=0), _transformer("cpu", 8, 2, 2, seed=0)
    matching = IntermediateMatching(8, 8, hidden_weight=1.0, attention_weight=1.0, dtype="float64")
    matching.load_state_dict({"projection.weight": np.eye(8)})
    loss = _matching_loss(model, twin, matching, IDS, "cpu")
    assert loss.item() == 0.0
    loss.backward()
    assert all(not np.any(p.grad) for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("teacher_heads", [2, 3], ids=["head-by-head", "head-averaged"])
def test_matching_gradcheck(device, teacher_heads):
    """d loss / d (every student parameter that reaches a state, and W_h): student 1 layer, D = 8,
    2 heads; teacher 2 layers, D = 12, 2 heads (compared head by head) or 3 (averaged first)."""
    student = _transformer(device, 8, 2, 1, seed=0, max_len=5)
    teacher = _transformer(device, 12, teacher_heads, 2, seed=1, max_len=5)
    matching = IntermediateMatching(8, 12, hidden_weight=1.0, attention_weight=2.0, device=device, dtype="float64")
    inputs = _batch(IDS, device)
    with md.no_grad():
        _, teacher_states, teacher_attentions = teacher.forward_with_states(*inputs)

    def loss(*params):
        _, states, attentions = student.forward_with_states(*inputs)
        return matching(states, teacher_states, attentions, teacher_attentions, inputs[1])

    # the classifier head and the final LayerNorm come after the last state: no gradient to check
    params = [p for name, p in student.named_parameters() if not name.startswith(("out.", "encoder.final_norm."))]
    result = gradcheck(loss, params + list(matching.parameters()), seed=1)
    assert result.ok, result


def test_padded_positions_do_not_count(device):
    student, teacher = _transformer(device, 8, 2, 1, seed=0), _transformer(device, 12, 3, 2, seed=1)
    matching = IntermediateMatching(8, 12, hidden_weight=1.0, attention_weight=1.0, device=device, dtype="float64")
    loss = _matching_loss(student, teacher, matching, IDS, device).item()
    other_ids = IDS.copy()
    other_ids[0, 3:] = [5, 1]                     # other words under the padding (the mask stays 0 there)
    changed = _matching_loss(student, teacher, matching, other_ids, device, real_ids=IDS).item()
    assert changed == pytest.approx(loss, rel=1e-12)
    longer = _matching_loss(student, teacher, matching, np.pad(IDS, ((0, 0), (0, 3))), device).item()
    assert longer == pytest.approx(loss, rel=1e-12)


@pytest.fixture(scope="module")
def tiny_reviews():
    """64 synthetic reviews of 4 to 8 words, encoded (a few milliseconds)."""
    from minidl.data import Vocabulary, encode_dataset, make_reviews
    from minidl.data.text import Tokenizer

    reviews = make_reviews(64, seed=3, min_length=4, max_length=8, max_distance=3)
    tokenizer = Tokenizer()
    tokens = tokenizer.tokenize_all(reviews.texts)
    vocab = Vocabulary.build(tokens)
    return encode_dataset(reviews, tokenizer, vocab, token_lists=tokens), len(vocab)


@pytest.mark.parametrize("hidden_weight,attention_weight", [(1.0, 1.0), (1.0, 0.0), (0.0, 1.0)])
def test_distill_with_intermediate_matching(tiny_reviews, hidden_weight, attention_weight):
    train, vocab = tiny_reviews
    md.manual_seed(0)
    teacher = build_model("transformer", vocab, hidden=16, num_heads=4, num_layers=2, d_ff=16, max_len=8)
    student = build_model("transformer", vocab, hidden=8, num_heads=2, num_layers=1, d_ff=8, max_len=8)
    before = teacher.state_dict()
    history = distill(student, teacher, train, epochs=6, batch_size=16, lr=0.03, hidden_weight=hidden_weight,
                      attention_weight=attention_weight, log=None)
    losses = history["matching_loss"]
    assert len(losses) == 6 and losses[-1] < 0.8 * losses[0], losses
    matching = history["matching"]
    assert isinstance(matching, IntermediateMatching) and matching.projection.weight.shape == (8, 16)
    assert (matching.hidden_weight, matching.attention_weight) == (hidden_weight, attention_weight)
    _check_teacher_untouched(teacher, before)


def test_intermediate_matching_is_refused_where_it_cannot_work(tiny_reviews):
    train, vocab = tiny_reviews
    gru = build_model("gru", vocab, hidden=8, embed_dim=8)
    transformer = build_model("transformer", vocab, hidden=8, num_heads=2, num_layers=1, d_ff=8, max_len=8)
    deep = build_model("transformer", vocab, hidden=8, num_heads=2, num_layers=2, d_ff=8, max_len=8)
    with pytest.raises(ValueError, match="only a TransformerClassifier has, but the student is a GRUClassifier"):
        distill(gru, transformer, train, hidden_weight=1.0)
    with pytest.raises(ValueError, match="but the teacher is a GRUClassifier; distill it from the logits alone"):
        distill(transformer, gru, train, attention_weight=1.0)
    with pytest.raises(ValueError, match="cached teacher logits .* hold no hidden states"):
        distill(transformer, deep, train, hidden_weight=1.0, cache_teacher=True)
    with pytest.raises(ValueError, match="student has 2 layers but the teacher only 1"):
        distill(deep, transformer, train, hidden_weight=1.0)
    with pytest.raises(ValueError, match="must be >= 0"):
        distill(transformer, deep, train, attention_weight=-1.0)
    with pytest.raises(ValueError, match="not both 0"):
        IntermediateMatching(8, 16, hidden_weight=0.0, attention_weight=0.0)


def test_shared_teacher_logits_and_callbacks(teacher_and_data):
    """A table computed once serves a subset of the training set (looked up by review index),
    and callbacks see every step: GradualPruning reaches its target inside distill, and a
    callback returning True stops it."""
    from minidl.compress import GradualPruning, sparsity_report, teacher_logits_table, weight_matrices
    from minidl.compress.report import subset

    teacher, prepared = teacher_and_data
    table = teacher_logits_table(teacher, prepared.train)
    part = subset(prepared.train, 300, seed=1)
    runs = []
    for kwargs in ({"cache_teacher": True}, {"teacher_logits": table}):
        student = _student("gru", len(prepared.vocab))
        runs.append(distill(student, teacher, part, epochs=1, lr=0.01, log=None, **kwargs)["loss"])
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-6)   # the two tables' batches differ in shape

    student = _student("mlp", len(prepared.vocab))
    schedule = GradualPruning(initial=0.0, final=0.8, start=0, end=6, every=2,
                              parameters=weight_matrices(student))
    distill(student, teacher, part, epochs=1, lr=0.01, teacher_logits=table, callbacks=[schedule], log=None)
    assert [s for s, _ in schedule.history] == [2, 4, 6]  # steps count from 1, as in fit
    report = sparsity_report(student, names=weight_matrices(student))
    assert report.sparsity == pytest.approx(0.8, abs=1e-3)  # locked after step 6 until the end

    class StopAt3:
        steps = []

        def on_train_begin(self, model, optimizer):
            pass

        def on_step(self, step, loss):
            self.steps.append(step)
            return step == 3

    stopper = StopAt3()
    distill(_student("mlp", len(prepared.vocab)), teacher, part, epochs=2, teacher_logits=table,
            callbacks=[stopper], log=None)
    assert stopper.steps == [1, 2, 3]
    with pytest.raises(ValueError, match="compute it over the full training set"):
        distill(_student("mlp", len(prepared.vocab)), teacher, prepared.train, teacher_logits=table[:10], log=None)


@pytest.mark.parametrize("warmup_steps", [0, 3])
def test_distill_resumes_bit_for_bit(tiny_reviews, tmp_path, warmup_steps):
    """Killed after its first checkpoint, a distillation resumed from out/last.npz ends where an
    uninterrupted run ends, bit for bit: the student, W_h and the history (dropout, warm-up and
    decay, weight decay, clipping and validation all on)."""
    train, vocab = tiny_reviews

    def run(out, callbacks=(), resume=False):
        md.manual_seed(0)
        teacher = build_model("transformer", vocab, hidden=16, num_heads=4, num_layers=2, d_ff=16, max_len=8)
        student = build_model("transformer", vocab, hidden=8, num_heads=2, num_layers=1, d_ff=8, max_len=8,
                              dropout=0.1)
        history = distill(student, teacher, train, train, epochs=3, batch_size=16, lr=0.03, hidden_weight=1.0,
                          warmup_steps=warmup_steps, weight_decay=0.01, clip=1.0, out=out, resume=resume,
                          callbacks=callbacks, log=None)
        return student.state_dict(), history

    class CrashAt6(Callback):
        def on_step(self, step, loss):
            return step == 6                   # 4 steps an epoch: after the checkpoint at step 4

    whole, whole_history = run(tmp_path / "whole")
    run(tmp_path / "killed", callbacks=[CrashAt6()])
    resumed, resumed_history = run(tmp_path / "killed", resume=True)
    for name in whole:
        np.testing.assert_array_equal(whole[name], resumed[name], err_msg=name)
    for key in ("loss", "matching_loss", "validation_accuracy"):
        assert whole_history[key] == resumed_history[key] and len(whole_history[key]) == 3, key
    for name, value in whole_history["matching"].state_dict().items():
        np.testing.assert_array_equal(value, resumed_history["matching"].state_dict()[name], err_msg=name)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        run(tmp_path / "never", resume=True)
