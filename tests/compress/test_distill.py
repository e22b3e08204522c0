"""Distillation: the fused loss against finite differences and torch, and the training loop."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import minidl as md
from minidl.compress import distill, distillation_loss
from minidl.gradcheck import gradcheck
from minidl.models import build_model

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
    Cached teacher logits must give bit-identical training to running the teacher every batch."""
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
    assert plain["loss"] == cached["loss"]
    for name in plain_weights:
        np.testing.assert_array_equal(plain_weights[name], cached_weights[name])
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
