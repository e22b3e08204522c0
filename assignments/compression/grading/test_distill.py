"""Task 1: the distillation loss, forward and backward (minidl/compress/distill.py), and a student that
learns from a teacher with it."""
import numpy as np

import minidl as md
from minidl import nn, optim
from minidl.assignment.checks import check_backends, check_gradients, check_outputs, expected, fixed, tensor
from minidl.compress.distill import DistillationLoss   # the op, not the given wrapper distillation_loss

STUDENT, TEACHER = fixed((4, 3), seed=1, scale=2.0), fixed((4, 3), seed=2, scale=2.0)
TARGETS = np.array([0, 2, 1, 2])
SETTINGS = {"kl": dict(alpha=0.3, temperature=2.5, kind="kl"), "mse": dict(alpha=0.6, temperature=1.0, kind="mse")}
CONTEXT = "student and teacher logits (4, 3), targets [0, 2, 1, 2], float64"


def _distill(student, teacher, targets, alpha, temperature, kind="kl"):
    """DistillationLoss itself, given the teacher's logits and the targets as arrays of the student's backend."""
    xp = student.xp
    return DistillationLoss.apply(student, xp.asarray(teacher), xp.asarray(targets), alpha, temperature, kind)


def _loss(kind):
    return lambda s: _distill(s, TEACHER, TARGETS, **SETTINGS[kind])


def case_distill_kl():
    return {"loss": _loss("kl")(tensor(STUDENT))}


def case_distill_mse():
    return {"loss": _loss("mse")(tensor(STUDENT))}


def test_forward_kl():
    check_outputs("DistillationLoss.forward (kl, alpha 0.3, T 2.5)", case_distill_kl(), expected(__file__, "distill_kl"),
                  CONTEXT)


def test_forward_mse():
    check_outputs("DistillationLoss.forward (mse, alpha 0.6)", case_distill_mse(), expected(__file__, "distill_mse"),
                  CONTEXT)


def test_backward_kl():
    check_gradients("DistillationLoss.backward (kl, alpha 0.3, T 2.5)", _loss("kl"), {"student": tensor(STUDENT)})


def test_backward_mse():
    check_gradients("DistillationLoss.backward (mse, alpha 0.6)", _loss("mse"), {"student": tensor(STUDENT)})


def test_the_same_on_the_torch_backend():
    check_backends("distillation_loss (kl)", _loss("kl"), {"student": STUDENT})


def test_a_student_learns_from_its_teacher():
    x = fixed((300, 6), seed=3, scale=1.5)
    teacher = x @ fixed((6, 3), seed=4, scale=2.0)    # a fixed linear teacher
    labels = teacher.argmax(axis=1)
    md.manual_seed(0)
    student = nn.Linear(6, 3, dtype="float64")
    optimizer = optim.Adam(student.parameters(), lr=0.05)
    inputs, losses = md.tensor(x, dtype="float64"), []
    for _ in range(200):
        loss = _distill(student(inputs), teacher, labels, alpha=0.5, temperature=2.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.item()))
    agreement = float((student(inputs).numpy().argmax(axis=1) == labels).mean())
    assert agreement >= 0.95 and losses[-1] < 0.5 * losses[0], (
        f"distillation: after 200 Adam steps the student agrees with its teacher on {agreement:.1%} of 300 "
        f"inputs (expected at least 95 %) and the loss went from {losses[0]:.4f} to {losses[-1]:.4f} (expected "
        f"to halve at least; the reference reaches 99 % and {losses[0]:.2f} -> 0.11)")
