"""Fill-mask predictions and the thesis's teacher-versus-student evaluation.

On N held-out sentences with one hidden word each (``corpus.fill_mask_cases``):

    top-k accuracy     the hidden word is among the model's k most probable tokens
    top-k agreement    the TEACHER's first choice is among the student's k most probable
                       tokens (top-1 agreement: both give the same first choice)
    size ratio         teacher file / student file (weights only: float32, or int8 for a copy
                       written by ``minidl mlm quantize``)
    parameters         numbers stored for the weights, int8 ones included
    speed ratio        student sentences/s / teacher sentences/s, both timed here, one after
                       the other, each the best of ``repeats`` passes over all N sentences
    rank-limited       (a student narrower than its teacher) the agreement of the teacher
      teacher          scoring through the best rank-D_s output table: that of a student
                       whose features were exactly the teacher's in its basis (``projection``)

Special tokens are never predicted: their logits are set to −inf before the softmax.
"""
from __future__ import annotations

import os
import time

import numpy as np

import minidl as md

from ..compress.quantize import stored_numbers
from .projection import RankLimitedTeacher
from .tokenizer import CLS, MASK, SPECIALS


def top_k(model, vocab, token_lists, k=5, batch_size=128, device="cpu"):
    """For each token list (holding one or more [MASK]), a list with one (ids (k,), probabilities
    (k,)) pair per [MASK], in order. [CLS] is prepended as in pretraining."""
    if k < 1:
        raise ValueError(f"top_k: k must be >= 1, got {k}")
    mask_id, cls_id, special = vocab[MASK], vocab[CLS], [vocab[s] for s in SPECIALS]
    results = []
    with md.no_grad():
        for start in range(0, len(token_lists), batch_size):
            encoded = [np.concatenate([[cls_id], vocab.encode(tokens)]) for tokens in token_lists[start:start + batch_size]]
            T = max(len(e) for e in encoded)
            ids = np.full((len(encoded), T), vocab.pad_id, dtype=np.int64)
            for b, e in enumerate(encoded):
                ids[b, :len(e)] = e
            positions = np.flatnonzero(ids == mask_id)
            if len(positions) == 0:
                results.extend([] for _ in encoded)
                continue
            logits = model.masked_lm_logits(md.tensor(ids, device=device),
                                            md.tensor((ids != vocab.pad_id).astype(np.float32), device=device),
                                            md.tensor(positions, device=device)).numpy()       # (N, V)
            logits[:, special] = -np.inf
            best, probabilities = _most_probable(logits, min(k, logits.shape[1] - len(special)))
            rows = iter(zip(best, probabilities))
            for b in range(len(encoded)):
                results.append([next(rows) for _ in range(int(np.sum(ids[b] == mask_id)))])
    return results


def _most_probable(logits, k):
    """logits (N, V) -> the k most probable ids (N, k), best first, and their probabilities
    (N, k). ``torch.topk`` finds them without sorting whole rows: a full sort of every row
    would cost more than the student model itself. Ties come in an unspecified order."""
    import torch   # here, not at the top: `minidl --help` imports this package and must stay fast

    logits = torch.from_numpy(np.ascontiguousarray(logits))
    chosen, best = torch.topk(logits, k, dim=1)
    log_total = torch.logsumexp(logits.double(), dim=1, keepdim=True)
    return best.numpy(), torch.exp(chosen.double() - log_total).numpy()


def first_choices(model, vocab, cases, k=5, device="cpu"):
    """(N, k) token ids: each case's k most probable tokens at its [MASK]."""
    return np.stack([found[0][0] for found in top_k(model, vocab, [c.tokens for c in cases], k, device=device)])


def accuracy(choices, vocab, cases):
    """{"top1", "top5"} accuracies of (N, k) choices against the cases' hidden words."""
    answers = np.array([vocab[c.answer] for c in cases])
    hits = choices == answers[:, None]
    return {"top1": float(hits[:, 0].mean()), "top5": float(hits[:, :5].any(axis=1).mean())}


def agreement(student_choices, teacher_choices):
    """{"top1", "top5"}: how often the teacher's first choice is the student's first / in its top 5."""
    hits = student_choices == teacher_choices[:, :1]
    return {"top1": float(hits[:, 0].mean()), "top5": float(hits[:, :5].any(axis=1).mean())}


def sentences_per_second(model, vocab, cases, repeats=3, device="cpu"):
    """Fill-mask throughput on all ``cases`` (batches of 128), the best of ``repeats`` passes
    after a warm-up pass over the first batch."""
    token_lists = [c.tokens for c in cases]
    top_k(model, vocab, token_lists[:128], device=device)
    best = float("inf")
    for _ in range(repeats):
        tick = time.perf_counter()
        top_k(model, vocab, token_lists, device=device)
        best = min(best, time.perf_counter() - tick)
    return len(cases) / best


def compare(teacher, student, vocab, cases, teacher_path=None, student_path=None, repeats=3, device="cpu"):
    """The evaluation of the module docstring, as one dict (``student`` and ``teacher`` share ``vocab``)."""
    teacher_choices = first_choices(teacher, vocab, cases, device=device)
    student_choices = first_choices(student, vocab, cases, device=device)

    def measured(model, choices):
        return {"accuracy": accuracy(choices, vocab, cases), "parameters": stored_numbers(model)[0],
                "sentences_per_s": sentences_per_second(model, vocab, cases, repeats, device)}
    result = {"sentences": len(cases), "teacher": measured(teacher, teacher_choices),
              "student": measured(student, student_choices), "agreement": agreement(student_choices, teacher_choices)}
    if student.d_model < teacher.d_model and student.project is None and teacher.project is None:
        # what a student of this width could reach through its output layer (``projection``)
        limited = first_choices(RankLimitedTeacher(teacher, student.d_model), vocab, cases, device=device)
        result["rank_limited_teacher"] = {"width": student.d_model, "agreement": agreement(limited, teacher_choices)}
    if teacher_path and student_path:
        for role, path in (("teacher", teacher_path), ("student", student_path)):
            result[role]["size_mb"] = os.path.getsize(path) / 1e6
        result["size_ratio"] = result["teacher"]["size_mb"] / result["student"]["size_mb"]
    result["speed_ratio"] = result["student"]["sentences_per_s"] / result["teacher"]["sentences_per_s"]
    return result
