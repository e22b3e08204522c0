"""Mutation tests of the grading: realistic wrong solutions, and three cheats, each written into a solution copy
in place of the reference, must each lose exactly the points of their own task, for the reason they are wrong.

A task scores all or nothing and no task's tests call another task's code, so one grading run checks several
mutants at once, one per task: a round applies the i-th mutant of every task of an assignment and grades the
whole copy. Every mutated task must score 0 with the expected messages, and every other task of the round its
full points. That no task's tests reach another task's code is checked, not assumed: one more grading run per
assignment, of a copy whose every target first writes down which test is running, must show each test calling
only its own task's targets. The rounds run two at a time; the whole module takes about a minute on 2 cores.
"""
import ast
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from minidl.assignment.checks import EXPECTED, REFERENCE
from minidl.assignment.grade import _matches, _node_ids, grade, report_json
from minidl.assignment.manifest import find_assignment
from minidl.assignment.stubs import defined_functions, replace_bodies
from minidl.pysyntax import parse

REPO = Path(__file__).resolve().parents[2]
ACTIVATIONS, LINALG = "minidl/autograd/ops/activations.py", "minidl/autograd/ops/linalg.py"
RECURRENT, WINDOW = "minidl/autograd/ops/recurrent.py", "minidl/autograd/ops/window_attention.py"
TOKEN_MLP, DISTILL = "minidl/models/token_mlp.py", "minidl/compress/distill.py"
PRUNE, LOWRANK, QUANTIZE = "minidl/compress/prune.py", "minidl/compress/lowrank.py", "minidl/compress/quantize.py"
MASKING, EVALUATE, TRANSFORMER = "minidl/mlm/masking.py", "minidl/mlm/evaluate.py", "minidl/models/transformer.py"


@dataclass(frozen=True)
class Mutant:
    id: str
    assignment: str
    task: int
    edits: tuple     # ("replace", path, old, new), ("body", path, qualname, code) or ("append", path, code)
    expect: tuple    # (check, words): the task's failing check whose id contains `check` ("" = its first
    #                  failure) says `words`


def replace(path, old, new):
    return ("replace", path, old, new)


def body(path, qualname, code):
    return ("body", path, qualname, code)


# --- the cheats ----------------------------------------------------------------------------------------------

# the given wrappers rebuilt from other ops: the same values and gradients, with the task's op never run
WINDOW_BY_OTHER_OPS = """
from .shape import pad, stack
xp, r, T = q.xp, radius, q.shape[1]
valid = Tensor._wrap(xp.astype(window_valid(xp, mask_array(mask, q, "window_attention"), r), q.dtype), xp)
k_pad, v_pad = pad(k, ((0, 0), (r, r), (0, 0))), pad(v, ((0, 0), (r, r), (0, 0)))
scores = stack([(q * k_pad[:, j:j + T]).sum(axis=-1) for j in range(2 * r + 1)], axis=2) / math.sqrt(q.shape[-1])
e = scores.exp() * valid
a = e / (e.sum(axis=-1, keepdims=True) + 1e-300)
return sum(a[:, :, j:j + 1] * v_pad[:, j:j + T] for j in range(2 * r + 1)), Tensor._wrap(a.data, xp)
"""

DISTILLATION_BY_OTHER_OPS = """
xp, s, T = student_logits.xp, student_logits, float(temperature)
constant = lambda a: md.Tensor._wrap(xp.astype(xp.asarray(a), xp.dtype_name(s.data)), xp)
onehot = xp.zeros_like(s.data)
xp.add_last(onehot, xp.asarray(targets), xp.ones_like(s.data[..., 0]))
hard = -(s.log_softmax(axis=-1) * constant(onehot)).sum(axis=-1)
t = constant(teacher_logits.data if isinstance(teacher_logits, md.Tensor) else teacher_logits)
if kind == "kl":
    soft = ((t / T).softmax(axis=-1) * ((t / T).log_softmax(axis=-1) - (s / T).log_softmax(axis=-1))).sum(axis=-1)
    soft = soft * T * T
else:
    soft = ((s - t) ** 2).sum(axis=-1) / s.shape[1]
return (alpha * hard + (1 - alpha) * soft).sum() / max(s.shape[0], 1)
"""

STORED_TOKEN_MLP = """
import json
import pathlib
import minidl as md
stored = pathlib.Path(md.__file__).resolve().parents[1] / "assignments/ex2_sentiment/grading/expected.json"
case = {k: md.tensor(v, dtype="float64") for k, v in json.loads(stored.read_text())["{case}"].items()}
return Output(case["logits"], token_scores=case["token_scores"]{weights})
"""

STORED_CUBIC = """
import json
import pathlib
stored = pathlib.Path(__file__).resolve().parents[2] / "assignments/compression/grading/expected.json"
case = json.loads(stored.read_text())["cubic"]
if (initial, final, start, end) == (0.1, 0.9, 10, 110):
    return case["sparsity"][list(range(0, 130, 7)).index(step)]
if (initial, final, start, end) == (0.0, 0.9, 0, 1000):
    return case["default"][[0, 250, 500, 1000, 2000].index(step)]
return float(final if step >= start else initial)
"""

TORCH_GRU_FORWARD = """
import torch
xp = ctx.xp
inputs = [torch.tensor(xp.to_numpy(a), requires_grad=True) for a in (x_proj, h0, U_zr, U_h)]
x, state, u_zr, u_h = inputs
H, states = state.shape[1], []
for t in range(x.shape[1]):
    zr = torch.sigmoid(x[:, t, :2 * H] + state @ u_zr)
    z, r = zr[:, :H], zr[:, H:]
    h_tilde = torch.tanh(x[:, t, 2 * H:] + (r * state) @ u_h)
    state = state + z * (h_tilde - state)
    states.append(state)
hs = torch.stack(states, dim=1)
ctx.graph = (inputs, hs)
return xp.asarray(hs.detach().numpy(), xp.dtype_name(x_proj))
"""

TORCH_GRU_BACKWARD = """
import torch
inputs, hs = ctx.graph
grads = torch.autograd.grad(hs, inputs, torch.as_tensor(ctx.xp.to_numpy(grad_hs)))
return tuple(ctx.xp.asarray(g.numpy(), ctx.xp.dtype_name(grad_hs)) for g in grads)
"""

# the same cheat with torch out of sight: in a helper of the file, which switches torch's autograd back on
TORCH_HELPER = '''

def _gru_by_torch(xp, x_proj, h0, U_zr, U_h):
    """(hs, a function of dL/dhs giving the four gradients): torch builds the graph."""
    import torch

    with torch.enable_grad():
        inputs = [torch.tensor(xp.to_numpy(a), requires_grad=True) for a in (x_proj, h0, U_zr, U_h)]
        x, state, u_zr, u_h = inputs
        H, states = state.shape[1], []
        for t in range(x.shape[1]):
            zr = torch.sigmoid(x[:, t, :2 * H] + state @ u_zr)
            z, r = zr[:, :H], zr[:, H:]
            state = state + z * (torch.tanh(x[:, t, 2 * H:] + (r * state) @ u_h) - state)
            states.append(state)
        hs = torch.stack(states, dim=1)

    def backward(grad):
        with torch.enable_grad():
            return [xp.asarray(g.numpy(), "float64") for g in torch.autograd.grad(hs, inputs, torch.as_tensor(grad))]

    return xp.asarray(hs.detach().numpy(), xp.dtype_name(x_proj)), backward
'''

# the same cheat from a file of its own, which the source rules do not read: torch's autograd itself refuses
TORCH_OTHER_FILE = '''
import numpy
import torch


def grads(a, b, grad):
    ta, tb = (torch.tensor(numpy.asarray(x), requires_grad=True) for x in (a, b))
    with torch.enable_grad():
        return [g.numpy() for g in torch.autograd.grad(ta @ tb, (ta, tb), torch.tensor(numpy.asarray(grad)))]
'''

# the straight-through estimator from other ops: FakeQuantize for the value only, the gradient through w * inside
STE_BY_OTHER_OPS = """
xp, wide = weight.xp, weight.xp.astype(weight.data, "float64")
s = _scales(xp, wide) if scale is None else xp.astype(xp.asarray(scale), "float64")
kept = weight * xp.astype(xp.abs(wide) <= QMAX * s, xp.dtype_name(weight.data))
return kept + (FakeQuantize.apply(weight.detach(), scale=scale) - kept).detach()
"""

UNSORTED_TOP_K = """
best = np.argpartition(-logits, k - 1, axis=1)[:, :k]          # the k best, in no particular order
peak = logits.max(axis=1, keepdims=True)
log_total = peak + np.log(np.sum(np.exp(logits - peak), axis=1, keepdims=True))
return best, np.exp(np.take_along_axis(logits, best, axis=1) - log_total)
"""

MUTANTS = [
    # ex2_sentiment ---------------------------------------------------------------------------------------------
    Mutant("sigmoid-upstream-gradient-ignored", "ex2_sentiment", 1,
           (replace(ACTIVATIONS, "return grad * s * (1 - s)", "return s * (1 - s)"),),
           (("test_sigmoid_backward", "Sigmoid.backward: dL/dx["),)),
    Mutant("tanh-derivative-1-minus-t", "ex2_sentiment", 1,
           (replace(ACTIVATIONS, "return grad * (1 - t * t)", "return grad * (1 - t)"),),
           (("test_tanh_backward", "Tanh.backward: dL/dx["),)),
    Mutant("cheat-np-instead-of-xp", "ex2_sentiment", 1,
           (replace(ACTIVATIONS, "import math\n", "import math\n\nimport numpy as np\n"),
            replace(ACTIVATIONS, "return grad * s * (1 - s)", "return np.asarray(grad) * s * (1 - s)")),
           (("Sigmoid.backward (source rules)", "calls np.asarray"), ("Sigmoid.backward (source rules)", "use ctx.xp"),
            ("test_the_same_on_the_torch_backend", "Sigmoid.backward (minidl/autograd/ops/activations.py:"),
            ("test_the_same_on_the_torch_backend", "use ctx.xp (the backend's namespace), not np"))),
    # the forwards are given code and the gradient checks differentiate them: identity forwards, identity backwards
    Mutant("cheat-sigmoid-and-tanh-forwards-return-their-input", "ex2_sentiment", 1,
           (replace(ACTIVATIONS, "s = ctx.xp.sigmoid(x)", "s = x * 1.0"), replace(ACTIVATIONS, "t = ctx.xp.tanh(x)",
                                                                                   "t = x * 1.0"),
            replace(ACTIVATIONS, "grad * s * (1 - s)", "grad"), replace(ACTIVATIONS, "grad * (1 - t * t)", "grad")),
           (("test_sigmoid_backward", "sigmoid(x)["), ("test_tanh_backward", "tanh(x)["),
            ("test_tanh_backward", "the gradient checks differentiate the given forwards, which must compute it"))),
    # the wrappers sigmoid(x) and tanh(x) are given code too: composed of other ops, they need neither backward
    Mutant("cheat-sigmoid-and-tanh-wrappers-by-other-ops", "ex2_sentiment", 1,
           (body(ACTIVATIONS, "Sigmoid.backward", "raise NotImplementedError"),
            body(ACTIVATIONS, "Tanh.backward", "raise NotImplementedError"),
            body(ACTIVATIONS, "sigmoid", "return 1 / (1 + (-x).exp())"),
            body(ACTIVATIONS, "tanh", "return 2 / (1 + (-2 * x).exp()) - 1")),
           (("test_sigmoid_backward", "NotImplementedError"), ("test_tanh_backward", "NotImplementedError"))),
    Mutant("matmul-gradients-swapped", "ex2_sentiment", 2,
           (body(LINALG, "MatMul.backward", "a, b = ctx.saved\n"
                                            "return ctx.xp.swap_last(a) @ grad, grad @ ctx.xp.swap_last(b)"),),
           (("", "MatMul.backward returned dL/da of shape (4, 2); a has shape (3, 4)"),)),
    Mutant("cheat-matmul-by-torch-autograd-in-another-file", "ex2_sentiment", 2,
           (("append", "minidl/autograd/ops/_helper.py", TORCH_OTHER_FILE),
            body(LINALG, "MatMul.backward",
                 "from . import _helper\na, b = ctx.saved\nreturn tuple(_helper.grads(a, b, grad))")),
           (("test_", "torch.autograd.grad: torch's autograd is off while grading"),)),
    Mutant("matmul-transposed-gradient", "ex2_sentiment", 2,
           (body(LINALG, "MatMul.backward", "a, b = ctx.saved\n"
                                            "return grad @ ctx.xp.swap_last(b), ctx.xp.swap_last(grad) @ a"),),
           (("", "MatMul.backward returned dL/db of shape (2, 4); b has shape (4, 2)"),)),
    # the copy keeps Linear.backward (the layers need it): for a 2-D b it is this task's answer
    Mutant("cheat-matmul-by-linear-backward", "ex2_sentiment", 2,
           (body(LINALG, "MatMul.backward", "return _by_linear(ctx, grad)"),
            ("append", LINALG, "\n\ndef _by_linear(ctx, grad):\n    import types\n"
                               "    need = (*ctx.needs_input_grad, False)\n"
                               "    fake = types.SimpleNamespace(saved=ctx.saved, xp=ctx.xp, needs_input_grad=need)\n"
                               "    return Linear.backward(fake, grad)[:2]\n")),
           (("source rules", "MatMul.backward calls Linear.backward (through _by_linear), which computes this "
                             "task's answer for other code in the copy"),)),
    Mutant("cheat-matmul-forward-returns-zeros", "ex2_sentiment", 2,
           (replace(LINALG, "return _product(a, b)", "return 0 * _product(a, b)"),
            body(LINALG, "MatMul.backward", "a, b = ctx.saved\nreturn 0 * a, 0 * b")),
           (("test_matmul_backward", "a @ b["), ("", "differentiate the given MatMul.forward, which must compute it"))),
    Mutant("elman-bptt-off-by-one", "ex2_sentiment", 3,
           (replace(RECURRENT, "for t in range(T - 1, -1, -1):\n            dh = dh + grad_hs[:, t]\n"
                               "            h = hs[",
                    "for t in range(T - 1, 0, -1):\n            dh = dh + grad_hs[:, t]\n            h = hs["),),
           (("test_backward_relu", "ElmanRNN.backward (relu): dL/d"),)),
    Mutant("elman-transposed-recurrent-gradient", "ex2_sentiment", 3,
           (replace(RECURRENT, "dh = d_pre[:, t] @ U_T", "dh = d_pre[:, t] @ U"),),
           (("test_backward_tanh", "ElmanRNN.backward (tanh): dL/d"),)),
    Mutant("elman-relu-derivative-at-0", "ex2_sentiment", 3,
           (replace(RECURRENT, "local = (h > 0) if", "local = (h >= 0) if"),),
           (("test_backward_relu", "ElmanRNN.backward (relu): dL/d"),)),
    Mutant("gru-reset-gate-gradient-missing-h-prev", "ex2_sentiment", 4,
           (replace(RECURRENT, "d_pre_r = d_rh * h_prev * r * (1 - r)", "d_pre_r = d_rh * r * (1 - r)"),),
           (("test_backward", "GRU.backward: dL/d"),)),
    Mutant("cheat-gru-by-torch-autograd", "ex2_sentiment", 4,
           (body(RECURRENT, "GRU.forward", TORCH_GRU_FORWARD), body(RECURRENT, "GRU.backward", TORCH_GRU_BACKWARD)),
           (("GRU.backward (source rules)", "GRU.backward uses torch.autograd (torch.autograd.grad, line "),
            ("GRU.backward (source rules)", "write the backward by hand with ctx.xp"),
            ("GRU.forward (source rules)", "GRU.forward uses torch."),
            ("test_backward", "torch.autograd.grad: torch's autograd is off while grading; write the backward "
                              "by hand"))),
    Mutant("cheat-gru-by-torch-autograd-in-a-helper", "ex2_sentiment", 4,
           (("append", RECURRENT, TORCH_HELPER),
            body(RECURRENT, "GRU.forward", "hs, ctx.torch_backward = _gru_by_torch(ctx.xp, x_proj, h0, U_zr, U_h)\n"
                                           "return hs"),
            body(RECURRENT, "GRU.backward", "return tuple(ctx.torch_backward(ctx.xp.to_numpy(grad_hs)))")),
           (("GRU.forward (source rules)", "uses torch.autograd (torch.autograd.grad, line "),
            ("GRU.forward (source rules)", "in _gru_by_torch, which it calls"))),
    Mutant("window-attention-softmax-over-the-wrong-axis", "ex2_sentiment", 5,
           (replace(WINDOW, "total = xp.sum(weights, axis=-1, keepdims=True)",
                    "total = xp.sum(weights, axis=1, keepdims=True)"),),
           (("test_forward", "WindowAttention.forward: "),)),
    # the wrapper window_attention is given code: composed of other ops, it needs no WindowAttention at all
    Mutant("cheat-window-attention-wrapper-by-other-ops", "ex2_sentiment", 5,
           (body(WINDOW, "WindowAttention.forward", "raise NotImplementedError"),
            body(WINDOW, "WindowAttention.backward", "raise NotImplementedError"),
            body(WINDOW, "window_attention", WINDOW_BY_OTHER_OPS)),
           (("test_forward", "NotImplementedError"), ("test_backward", "NotImplementedError"))),
    Mutant("window-attention-padding-leak", "ex2_sentiment", 5,
           (replace(WINDOW, "valid = window_valid(xp, mask, radius)",
                    "valid = window_valid(xp, xp.ones_like(mask), radius)"),),
           (("test_forward", "WindowAttention.forward: "),)),
    Mutant("window-attention-key-gradient-missing-scale", "ex2_sentiment", 5,
           (replace(WINDOW, "return d_q * scale, d_k_pad[:, r:r + T] * scale, d_v_pad[:, r:r + T], None, None",
                    "return d_q * scale, d_k_pad[:, r:r + T], d_v_pad[:, r:r + T], None, None"),),
           (("test_backward", "WindowAttention.backward: dL/dk["),)),
    Mutant("pooling-padding-leak", "ex2_sentiment", 6,
           (replace(TOKEN_MLP, "weights = ops.softmax(ops.where(mask > 0, weight_logits, -1e9), axis=1)",
                    "weights = ops.softmax(weight_logits, axis=1)"),),
           (("test_softmax_weighted_ignores_padding", "padding must get weight 0"),)),
    Mutant("pooling-mean-instead-of-sum", "ex2_sentiment", 6,
           (replace(TOKEN_MLP, "return Output(scores.sum(axis=1), token_scores=scores)",
                    "return Output(scores.mean(axis=1), token_scores=scores)"),),
           (("test_token_mlp_forward", "TokenMLP.forward: logits["),)),
    Mutant("cheat-pooling-returns-the-stored-values", "ex2_sentiment", 6,
           (body(TOKEN_MLP, "TokenMLP.forward",
                 STORED_TOKEN_MLP.replace("{case}", "token_mlp").replace("{weights}", "")),
            body(TOKEN_MLP, "SoftmaxWeighted.forward", STORED_TOKEN_MLP.replace("{case}", "softmax_weighted")
                 .replace("{weights}", ', token_weights=case["token_weights"]'))),
           (("test_token_mlp_forward", "expected.json"), ("test_softmax_weighted_forward", "expected.json"))),
    # compression -----------------------------------------------------------------------------------------------
    Mutant("distillation-kl-reversed", "compression", 1,
           (replace(DISTILL, "soft = xp.sum(xp.exp(log_q_t) * (log_q_t - log_p_t), axis=-1)",
                    "soft = xp.sum(xp.exp(log_p_t) * (log_p_t - log_q_t), axis=-1)"),),
           (("test_forward_kl", "DistillationLoss.forward (kl, alpha 0.3, T 2.5): loss"),)),
    Mutant("distillation-forward-without-t-squared", "compression", 1,
           (replace(DISTILL, "(log_q_t - log_p_t), axis=-1) * temperature ** 2", "(log_q_t - log_p_t), axis=-1)"),),
           (("test_forward_kl", "DistillationLoss.forward (kl, alpha 0.3, T 2.5): loss"),)),
    Mutant("cheat-distillation-wrapper-by-other-ops", "compression", 1,
           (body(DISTILL, "DistillationLoss.forward", "raise NotImplementedError"),
            body(DISTILL, "DistillationLoss.backward", "raise NotImplementedError"),
            body(DISTILL, "distillation_loss", DISTILLATION_BY_OTHER_OPS)),
           (("test_forward_kl", "NotImplementedError"), ("test_backward_mse", "NotImplementedError"))),
    Mutant("distillation-backward-without-the-batch-mean", "compression", 1,
           (replace(DISTILL, "* (grad / ctx.batch)", "* grad"),),
           (("test_backward_kl", "DistillationLoss.backward (kl, alpha 0.3, T 2.5): dL/dstudent["),)),
    Mutant("prune-ties-broken-the-wrong-way", "compression", 2,
           (replace(PRUNE, 'new[np.argsort(scores, kind="stable")[:k]] = False',
                    'new[np.argsort(-scores, kind="stable")[::-1][:k]] = False'),),
           (("test_ties_are_broken_by_position", "break ties by position"),)),
    Mutant("prune-k-rounded-down", "compression", 2,
           (replace(PRUNE, "k = int(round(amount * scores.size))", "k = int(amount * scores.size)"),),
           (("test_k_is_rounded_to_the_nearest_integer", "expected round(0.33 · 20) = 7"),)),
    Mutant("prune-old-mask-forgotten", "compression", 2,
           (replace(PRUNE, "_set_mask(module, param_name, part & keep)", "_set_mask(module, param_name, part)"),),
           (("test_pruning_again_keeps_what_was_pruned", "mask"),)),
    Mutant("cubic-schedule-squared", "compression", 3,
           (replace(PRUNE, "(1.0 - progress) ** 3", "(1.0 - progress) ** 2"),),
           (("test_the_schedule", "cubic_sparsity: sparsity["),)),
    Mutant("cubic-schedule-step-not-clamped", "compression", 3,
           (replace(PRUNE, "progress = min(max((step - start) / (end - start), 0.0), 1.0)",
                    "progress = (step - start) / (end - start)"),),
           (("test_the_schedule", "cubic_sparsity: sparsity["),)),
    Mutant("cheat-cubic-schedule-returns-the-stored-values", "compression", 3,
           (body(PRUNE, "cubic_sparsity", STORED_CUBIC),),
           (("test_the_schedule", "expected.json"),)),
    Mutant("lowrank-without-square-roots", "compression", 4,
           (replace(LOWRANK, "root = np.sqrt(s[:r])", "root = s[:r]"),),
           (("test_rank_2_factorisation", "LowRankLinear.from_linear(linear, rank=2): "),)),
    Mutant("lowrank-energy-of-sigma-not-sigma-squared", "compression", 4,
           (replace(LOWRANK, "power = s ** 2", "power = s"),),
           (("test_rank_chosen_by_energy", "choose_rank("),)),
    Mutant("lowrank-rank-off-by-one", "compression", 4,
           (replace(LOWRANK, "return int(np.argmax(kept >= energy - 1e-12)) + 1",
                    "return int(np.argmax(kept >= energy - 1e-12))"),),
           (("test_rank_chosen_by_energy", "choose_rank("),)),
    Mutant("quantize-per-tensor-instead-of-per-channel", "compression", 5,
           (replace(QUANTIZE, "peak = xp.max(xp.abs(w), axis=0)", "peak = xp.max(xp.abs(w))"),),
           (("test_quantize_per_channel", "quantize_per_channel / fake_quantize: "),)),
    Mutant("quantize-ste-passes-everything", "compression", 5,
           (replace(QUANTIZE, "return ctx.xp.where(inside, grad, ctx.xp.zeros_like(grad))", "return grad"),),
           (("test_the_straight_through_estimator", "FakeQuantize (fixed scale [0.004, 0.006, 1, 0.005]): grad["),)),
    Mutant("cheat-np-instead-of-xp-in-the-straight-through-estimator", "compression", 5,
           (replace(QUANTIZE, "return ctx.xp.where(inside, grad, ctx.xp.zeros_like(grad))",
                    "return np.where(inside, grad, 0.0)"),),
           (("FakeQuantize.backward (source rules)", "calls np.where"),
            ("test_the_same_on_the_torch_backend", "FakeQuantize.backward (minidl/compress/quantize.py:"),
            ("test_the_same_on_the_torch_backend", "use ctx.xp (the backend's namespace), not np"))),
    Mutant("cheat-straight-through-estimator-by-other-ops", "compression", 5,
           (body(QUANTIZE, "FakeQuantize.backward", "raise NotImplementedError"),
            body(QUANTIZE, "fake_quantize", STE_BY_OTHER_OPS)),
           (("test_the_straight_through_estimator", "NotImplementedError"),)),
    # mlm_distillation ------------------------------------------------------------------------------------------
    Mutant("masking-80-20-0", "mlm_distillation", 1,
           (replace(MASKING, "as_random = positions[(roll >= REPLACE_WITH_MASK) & "
                             "(roll < REPLACE_WITH_MASK + REPLACE_WITH_RANDOM)]",
                    "as_random = positions[roll >= REPLACE_WITH_MASK]"),),
           (("test_rates", "80 % [MASK], 10 % a random ordinary token, 10 % unchanged"),)),
    Mutant("masking-never-draws-the-last-ordinary-token", "mlm_distillation", 1,
           (replace(MASKING, "rng.integers(len(SPECIALS), len(vocab), size=len(as_random))",
                    "rng.integers(len(SPECIALS), len(vocab) - 1, size=len(as_random))"),),
           (("", "never drew the ordinary token(s) [49]"),)),
    Mutant("masking-targets-are-what-is-shown", "mlm_distillation", 1,
           (replace(MASKING, "return MaskedBatch(inputs, positions, ids.flat[positions].copy())",
                    "return MaskedBatch(inputs, positions, inputs.flat[positions].copy())"),),
           (("", "Arrays are not equal"), ("", "targets must be the original ids at the positions"))),
    Mutant("mlm-logits-positions-ignored", "mlm_distillation", 2,
           (replace(TRANSFORMER, "h = h.reshape(-1, h.shape[-1])[positions]", "h = h"),),
           (("test_logits_at_the_positions", "expected (N, V) = (4, 12)"),)),
    Mutant("mlm-logits-gathered-time-major", "mlm_distillation", 2,
           (replace(TRANSFORMER, "h = h.reshape(-1, h.shape[-1])[positions]",
                    "h = h.transpose(1, 0, 2).reshape(-1, h.shape[-1])[positions]"),),
           (("test_logits_at_the_positions", "masked_lm_logits(ids, mask, positions)"),)),
    Mutant("mlm-head-untied-from-the-embedding", "mlm_distillation", 2,
           (replace(TRANSFORMER, "return self.mlm_head(h, self.embedding.weight)",
                    "return self.mlm_head(h, self.embedding.weight.detach())"),),
           (("test_gradients_flow", "dL/dembedding.weight["),)),
    Mutant("top-k-unsorted", "mlm_distillation", 3,
           (body(EVALUATE, "_most_probable", UNSORTED_TOP_K),),
           (("test_the_k_most_probable_of_many_come_sorted", "are not sorted, largest first"),)),
    Mutant("top-k-specials-not-excluded", "mlm_distillation", 3,
           (replace(EVALUATE, "logits[:, special] = -np.inf", "pass"),),
           (("test_one_pair_per_mask_in_order", "specials must never be predicted"),)),
    Mutant("top-k-without-cls", "mlm_distillation", 3,
           (replace(EVALUATE, "encoded = [np.concatenate([[cls_id], vocab.encode(tokens)]) for",
                    "encoded = [np.asarray(vocab.encode(tokens)) for"),),
           (("test_one_pair_per_mask_in_order", "[CLS] prepended to the sentence"),)),
    Mutant("accuracy-top5-over-six-columns", "mlm_distillation", 4,
           (replace(EVALUATE, 'hits = choices == answers[:, None]\n    return {"top1": float(hits[:, 0].mean()), '
                              '"top5": float(hits[:, :5]', 'hits = choices == answers[:, None]\n    return {"top1": '
                              'float(hits[:, 0].mean()), "top5": float(hits[:, :6]'),),
           (("test_accuracy", "accuracy(choices (8, 7), vocab, cases)['top5']"),)),
    Mutant("agreement-with-the-teachers-second-choice", "mlm_distillation", 4,
           (replace(EVALUATE, "hits = student_choices == teacher_choices[:, :1]",
                    "hits = student_choices == teacher_choices[:, 1:2]"),),
           (("test_agreement", "agreement(student (8, 7), teacher (8, 3))"),)),
]

NAMES = sorted({m.assignment for m in MUTANTS})
PLANTED = {"ex2_sentiment": ("cheat-pooling-returns-the-stored-values",),
           "compression": ("cheat-cubic-schedule-returns-the-stored-values",)}
CHEATS = [m for m in MUTANTS if m.id.startswith("cheat-")]


def _apply(copy, edit):
    kind, path = edit[0], copy / edit[1]
    source = path.read_text() if path.exists() else ""   # "append" to a new file writes it
    if kind == "replace":
        assert source.count(edit[2]) == 1, f"{edit[1]}: {edit[2]!r} occurs {source.count(edit[2])} times, not once"
        source = source.replace(edit[2], edit[3])
    elif kind == "body":
        source = replace_bodies(source, {edit[2]: edit[3]}, edit[1])
    else:
        source = source.rstrip("\n") + "\n" + edit[2]
    path.write_text(source)


def rounds(mutants=MUTANTS):
    """{(assignment, i): [mutants]}: the i-th mutant of every task of each assignment, graded together."""
    by_task = defaultdict(list)
    for m in mutants:
        by_task[m.assignment, m.task].append(m)
    grouped = defaultdict(list)
    for (name, _), found in sorted(by_task.items()):
        for i, m in enumerate(found):
            grouped[name, i].append(m)
    return dict(grouped)


def _trace_line(task):
    return ('open(__file__ + ".trace", "a").write(__import__("os").environ.get("PYTEST_CURRENT_TEST", "?") + '
            f'"\\t{task}\\n")  # which test called task {task}\n')


def _traced(copy, manifest):
    """Every target's body starts by writing (running test, its task) to a file beside its module."""
    for task in manifest.tasks:
        for target in task.targets:
            path = copy / target.path
            lines = path.read_text().splitlines(keepends=True)
            node = defined_functions(parse("".join(lines)))[target.qualname]
            first = node.body[1] if isinstance(node.body[0], ast.Expr) and len(node.body) > 1 else node.body[0]
            lines.insert(first.lineno - 1, " " * first.col_offset + _trace_line(task.number))
            path.write_text("".join(lines))


def _graded(base, work, edits=(), trace=None, tasks=None, plant=False):
    copy = shutil.copytree(base, work)
    for edit in edits:
        _apply(copy, edit)
    if trace is not None:
        _traced(copy, trace)
    if plant:  # the reference values back where copies used to carry them
        name = next((copy / "assignments").iterdir()).name
        shutil.copy(REPO / "assignments" / name / "grading" / EXPECTED, copy / "assignments" / name / "grading")
    manifest, results, seconds = grade(copy, tasks=tasks)
    return copy, manifest, {r.number: r for r in results}, seconds


def _plain_pytest(base, work, edits, test_file):
    """pytest on one grading file of a mutated copy, as anyone could run it: no recorder (torch's autograd
    stays on) and no source rules, the reference values from the repository."""
    copy = shutil.copytree(base, work)
    for edit in edits:
        _apply(copy, edit)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    env.update(PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1",
               **{REFERENCE: str(REPO / "assignments/ex2_sentiment/grading" / EXPECTED)})
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                           "--rootdir", str(copy), test_file, "-k", "not learns"], cwd=copy, env=env,
                          capture_output=True, text=True, timeout=300)


def _edits(*ids):
    return [e for m in MUTANTS if m.id in ids for e in m.edits]


@pytest.fixture(scope="module")
def graded(copies, tmp_path_factory):
    """{(assignment, i): (copy, manifest, {task: TaskResult}, seconds)} for every round, the same for each
    (assignment, "trace"), and the subprocess result of ("ex2_sentiment", "plain pytest"); two at a time.
    The traced copies of ex2_sentiment and compression also hold a stored-values cheat and, planted back
    where copies used to carry them, the reference values: the cheat must pass there."""
    base = {name: copies(name, solution=True) for name in NAMES}   # made here, before the threads
    work = tmp_path_factory.mktemp("mutants")
    jobs = {key: (_graded, base[key[0]], work / f"{key[0]}-{key[1]}", [e for m in found for e in m.edits])
            for key, found in rounds().items()}
    for name in NAMES:
        jobs[name, "trace"] = (_graded, base[name], work / f"{name}-trace", _edits(*PLANTED.get(name, ())),
                               find_assignment(name, REPO), None, name in PLANTED)
    jobs["ex2_sentiment", "plain pytest"] = (_plain_pytest, base["ex2_sentiment"], work / "ex2-plain",
                                             _edits("cheat-gru-by-torch-autograd"),
                                             "assignments/ex2_sentiment/grading/test_gru.py")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {key: pool.submit(*job) for key, job in jobs.items()}
        return {key: future.result() for key, future in futures.items()}


def _round_of(mutant):
    return next(key for key, found in rounds().items() if mutant in found)


def test_there_are_enough_mutants_and_each_round_mutates_a_task_at_most_once():
    assert len(MUTANTS) >= 30 and len({m.id for m in MUTANTS}) == len(MUTANTS)
    assert {m.id for m in CHEATS} >= {"cheat-np-instead-of-xp", "cheat-gru-by-torch-autograd",
                                      "cheat-pooling-returns-the-stored-values"}
    for found in rounds().values():
        assert len({m.task for m in found}) == len(found)
    for name in NAMES:
        assert {m.task for m in MUTANTS if m.assignment == name} == {t.number for t in find_assignment(name).tasks}


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_a_mutant_loses_exactly_its_own_task(mutant, graded):
    _, _, results, _ = graded[_round_of(mutant)]
    task = results[mutant.task]
    assert task.score == 0, f"{mutant.id} survived: task {mutant.task} scored {task.score}/{task.points}"
    for check, words in mutant.expect:
        failing = [t for t in task.tests if t.outcome != "passed" and check in t.id] if check else \
            [task.first_failure()]
        assert any(words in t.message for t in failing), (
            f"{mutant.id}: no failing check {check or '(the first)'} of task {mutant.task} says {words!r}; the "
            f"failures: " + " | ".join(f"{t.id}: {t.message[:300]}" for t in task.tests if t.outcome != "passed"))
    mutated = {m.task for m in rounds()[_round_of(mutant)]}
    for number, other in results.items():
        if number not in mutated:  # the round's untouched tasks keep their points
            assert other.passed, (number, other.first_failure().message[:500])


@pytest.mark.parametrize("name", NAMES)
def test_each_grading_test_calls_only_its_own_tasks_code(name, graded):
    copy, manifest, results, _ = graded[name, "trace"]
    assert all(r.passed for r in results.values()), {n: r.first_failure().message[:300] for n, r in results.items()
                                                      if not r.passed}
    calls = defaultdict(set)
    for trace in copy.rglob("*.py.trace"):
        for line in trace.read_text().splitlines():
            test, task = line.rsplit("\t", 1)
            calls[test.rsplit(" (", 1)[0]].add(int(task))
    owner = {}
    for task in manifest.tasks:
        for spec in task.tests:
            prefix = _node_ids(manifest, spec)
            owner.update({test: task.number for test in calls if _matches(test, prefix)})
    assert set(owner) == set(calls), f"calls from tests of no task: {sorted(set(calls) - set(owner))}"
    strays = {test: sorted(tasks - {owner[test]}) for test, tasks in calls.items() if tasks - {owner[test]}}
    assert not strays, f"these tests call the code of other tasks: {strays}"
    assert {t for tasks in calls.values() for t in tasks} == {t.number for t in manifest.tasks}


def test_the_json_report_keeps_the_whole_first_failure(graded):
    mutant = next(m for m in MUTANTS if m.id == "masking-targets-are-what-is-shown")
    _, manifest, results, seconds = graded[_round_of(mutant)]
    report = report_json(manifest, list(results.values()), seconds)
    first = next(t for t in report["tasks"] if t["number"] == mutant.task)["first_failure"]
    assert first.startswith("Arrays are not equal\nmask_tokens (500 × 64 batch, rng seed 0): targets must be "), first
    assert "Mismatched elements: " in first and "ACTUAL: array(" in first and "DESIRED: array(" in first, first
    json.dumps(report)  # and it stays JSON


def test_the_cheats_compute_the_right_numbers(graded):
    # What stops each cheat is the defence, not a bug of its own: with the reference values planted back in the
    # copy (where they used to ship) the stored-values cheats earn their tasks (all tasks pass in the traced
    # copies that hold them), and run by plain pytest (torch's autograd on, no source rules) the torch-autograd
    # GRU passes the gradient check, the fixed values and the torch backend.
    for name, ids in PLANTED.items():
        _, _, results, _ = graded[name, "trace"]
        for mutant in (m for m in MUTANTS if m.id in ids):
            assert results[mutant.task].passed, results[mutant.task].first_failure().message[:500]
    done = graded["ex2_sentiment", "plain pytest"]
    assert done.returncode == 0 and "3 passed" in done.stdout, done.stdout[-3000:]
