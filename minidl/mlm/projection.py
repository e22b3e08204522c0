"""Starting a narrow student from its teacher: the teacher's embedding table projected by SVD.

The masked-LM head is tied to the embedding table E (V, D_t): logits = f Eᵀ + b, f (N, D_t)
the head's features. With the SVD E = U S Wᵀ and Q = W[:, :D_s] (D_t, D_s), the best rank-D_s
table is E Q Qᵀ, and a student of width D_s whose table is E_s = E Q (V, D_s) computes

    f_s E_sᵀ = f_s Qᵀ Eᵀ      which equals the teacher's f_t Q Qᵀ Eᵀ when  f_s = f_t Q.

So the student starts with the teacher's word vectors (their D_s most important directions),
positions P_s = P_t Q and output bias b, and ``train_mlm(head_weight=…)`` can ask it to
produce the teacher's features in that basis, a dense target at every masked position:

    L_head = Σ_{n,j} (f_s[n, j] − (f_t Q)[n, j])² / (N·D_s)

``RankLimitedTeacher`` is that perfect student: the teacher scoring with E Q Qᵀ, whose
agreement with the full teacher (``minidl mlm evaluate`` reports it) is what a student of
width D_s could reach through this output layer.
"""
from __future__ import annotations

import numpy as np

import minidl as md

from ..autograd import ops


def teacher_basis(teacher, width):
    """Q (D_t, width): the top ``width`` right singular vectors of the teacher's embedding table."""
    table = teacher.embedding.weight.numpy().astype(np.float64)             # (V, D_t)
    if not 1 <= width <= table.shape[1]:
        raise ValueError(f"teacher_basis: the student's width must be between 1 and the teacher's "
                         f"{table.shape[1]}, got {width}")
    _, _, w_transposed = np.linalg.svd(table, full_matrices=False)
    return w_transposed[:width].T


def start_from_teacher(student, teacher):
    """Copy the teacher's embedding table, positions and output bias into ``student``, projected
    onto Q (in place); returns Q (D_t, D_s) as a float64 array. Both models must share the
    vocabulary, the student's max_len must not exceed the teacher's, and neither may project
    its embeddings (embed_dim = d_model)."""
    for model, role in ((student, "student"), (teacher, "teacher")):
        if model.project is not None or model.mlm_head is None:
            raise ValueError(f"start_from_teacher: the {role} must be a masked-LM built by build_mlm "
                             f"(embed_dim = d_model, with the MLM head)")
    if student.embedding.weight.shape[0] != teacher.embedding.weight.shape[0]:
        raise ValueError(f"start_from_teacher: vocabularies differ ({student.embedding.weight.shape[0]} vs "
                         f"{teacher.embedding.weight.shape[0]} words); distil with the teacher's vocabulary")
    if student.position.max_len > teacher.position.max_len:
        raise ValueError(f"start_from_teacher: the student's max_len {student.position.max_len} exceeds the "
                         f"teacher's {teacher.position.max_len}")
    basis = teacher_basis(teacher, student.d_model)
    dtype = student.embedding.weight.numpy().dtype
    positions = teacher.position.weight.numpy()[:student.position.max_len].astype(np.float64)
    student.load_state_dict({
        "embedding.weight": (teacher.embedding.weight.numpy().astype(np.float64) @ basis).astype(dtype),
        "position.weight": (positions @ basis).astype(dtype),
        "mlm_head.bias": teacher.mlm_head.bias.numpy().astype(dtype)}, strict=False)
    return basis


def head_matching_loss(student_features, teacher_features, basis):
    """L_head of the module docstring: student_features (N, D_s), teacher_features (N, D_t)
    (constants: no gradient reaches the teacher), basis Q (D_t, D_s) a Tensor -> scalar."""
    difference = student_features - ops.matmul(teacher_features.detach(), basis)   # (N, D_s)
    return (difference * difference).sum() / float(difference.shape[0] * difference.shape[1])


class RankLimitedTeacher:
    """The teacher with its output table E replaced by E Q Qᵀ (Q = ``teacher_basis(teacher,
    width)``): what a student of that width would score if its features were exactly f_t Q.
    Only ``masked_lm_logits`` (all that ``evaluate.top_k`` calls); the input lookup keeps E."""

    def __init__(self, teacher, width):
        basis = teacher_basis(teacher, width)
        table = teacher.embedding.weight.numpy().astype(np.float64)
        self.teacher, self.width = teacher, width
        self.table = md.tensor(table @ basis @ basis.T, device=teacher.embedding.weight.device,
                               dtype=teacher.embedding.weight.dtype)

    def masked_lm_logits(self, ids, mask, positions=None):
        h = self.teacher.encode(ids, mask)                                   # (B, T, D_t)
        if positions is not None:
            h = h.reshape(-1, h.shape[-1])[positions]                        # (N, D_t)
        return self.teacher.mlm_head(h, self.table)
