"""One catalogue of op test cases, shared by the gradcheck, backend-agreement and torch-oracle tests.

Each ``OpCase`` says how to draw its inputs (NumPy arrays, from a seeded generator), the
computation in minidl and the same computation in PyTorch (the oracle). Input rules:

* a floating-point array becomes a float64 Tensor with ``requires_grad=True`` (it is checked);
* ``Const(array)`` becomes a constant Tensor (float targets, masks);
* integer and boolean arrays (class targets, ids, indices, conditions) are constants too.

Values are drawn a safe distance from kinks and ties (see ``away_from_zero``, ``distinct``,
``apart``): a centred difference straddling a kink measures the average of the two one-sided
slopes, which no backward formula gives.

A note on tiny gradients: the numerical gradient carries round-off (about 1e-13 absolute for
O(1) values with gradcheck's five-point stencil, 1e-10 with the textbook three-point one), so
an element whose true gradient is tiny shows a large rel_error even when the backward is
exact. A case that fails that way (ratio analytic/numeric = 1.000000x, torch oracle
agreeing) gets another ``seed``, not a looser tolerance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

import minidl as md

SMOOTH_TOL = 1e-7
KINK_TOL = 1e-6


class Const:
    """Marks a float input as a constant (no requires_grad)."""

    def __init__(self, array):
        self.array = np.asarray(array, dtype=np.float64)


@dataclass
class OpCase:
    id: str
    ops: tuple  # the names in minidl.autograd.ops.__all__ this case exercises
    inputs: object  # rng -> list of arrays / Const
    fn: object  # minidl Tensors -> Tensor
    torch_fn: object = None  # torch tensors -> tensor; None: checked by a dedicated test instead
    kink: bool = False  # piecewise op: looser tolerance, see test_ops_gradcheck's docstring
    same_on_backends: bool = True  # False when the op draws random numbers (dropout)
    finite_differences: bool = True  # False: not the derivative by design, or values too large for eps
    seed: int = 0  # of the input values; see the note on tiny gradients in the module docstring

    def draw(self):
        return self.inputs(np.random.default_rng(self.seed))

    @property
    def tol(self):
        return KINK_TOL if self.kink else SMOOTH_TOL

    def __repr__(self):
        return self.id


# --- input generators -------------------------------------------------------------------

def normal(*shape):
    return lambda rng: rng.standard_normal(shape)


def positive(*shape, low=0.5, high=2.0):
    return lambda rng: rng.uniform(low, high, shape)


def away_from_zero(*shape, margin=0.2):
    """Random signs, magnitudes in [margin, 1.5]: never within ``margin`` of a kink at 0."""
    return lambda rng: rng.choice([-1.0, 1.0], shape) * rng.uniform(margin, 1.5, shape)


def distinct(*shape):
    """All values at least 0.15 apart (no ties for max), in random order."""
    n = int(np.prod(shape, dtype=int))
    return lambda rng: ((rng.permutation(n) - n / 2) * 0.25 + rng.uniform(-0.05, 0.05, n)).reshape(shape)


def apart(shape_a, shape_b):
    """Two arrays that, once broadcast, differ by at least 0.05 everywhere (no ties in maximum).

    a = 0.5 k + jitter and b = 0.5 m + 0.25 + jitter, |jitter| <= 0.1, for integers k, m.
    """
    def draw(rng):
        a = 0.5 * rng.integers(-3, 4, shape_a) + rng.uniform(-0.1, 0.1, shape_a)
        b = 0.5 * rng.integers(-3, 4, shape_b) + 0.25 + rng.uniform(-0.1, 0.1, shape_b)
        return [a, b]
    return draw


def inputs(*generators):
    """Combine per-input generators (callables or fixed arrays) into one rng -> list."""
    def draw(rng):
        return [g(rng) if callable(g) else g for g in generators]
    return draw


def integers(high, *shape, seed=1):
    return np.random.default_rng(seed).integers(0, high, shape)


def const(generator):
    return lambda rng: Const(generator(rng))


# --- turning inputs into minidl / torch tensors --------------------------------------------

def minidl_inputs(arrays, device, dtype="float64"):
    out = []
    for a in arrays:
        if isinstance(a, Const):
            out.append(md.tensor(a.array, device=device, dtype=dtype))
        elif np.asarray(a).dtype.kind == "f":
            out.append(md.tensor(a, device=device, dtype=dtype, requires_grad=True))
        else:
            out.append(md.tensor(np.asarray(a), device=device))
    return out


def torch_inputs(arrays):
    out = []
    for a in arrays:
        if isinstance(a, Const):
            out.append(torch.tensor(a.array, dtype=torch.float64))
        elif np.asarray(a).dtype.kind == "f":
            out.append(torch.tensor(a, dtype=torch.float64, requires_grad=True))
        else:
            out.append(torch.as_tensor(np.asarray(a)))
    return out


def as_numpy(array):
    """A backend array (``t.grad``) as a NumPy array, dtype unchanged."""
    return array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)


# --- torch oracles for the fused losses -------------------------------------------------------

def torch_cross_entropy(logits, targets, mask=None, reduction="mean"):
    C = logits.shape[-1]
    loss = F.cross_entropy(logits.reshape(-1, C), targets.reshape(-1), reduction="none").reshape(targets.shape)
    return _torch_reduce(loss, mask, reduction)


def torch_bce(logits, targets, mask=None, reduction="mean"):
    loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return _torch_reduce(loss, mask, reduction)


def _torch_reduce(loss, mask, reduction):
    if mask is not None:
        loss = loss * mask.to(loss.dtype)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / (mask.to(loss.dtype).sum() if mask is not None else loss.numel())


def _dropout(x):
    # a fresh generator per call: gradcheck runs fn many times and needs the same mask each time
    return md.dropout(x, p=0.3, generator=x.xp.new_generator(0))


# --- the catalogue -------------------------------------------------------------------------------

MASK_2x3 = np.array([[1, 0, 1], [1, 1, 0]])
BOOL_3x4 = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])
WINDOW_MASK = np.array([[1] * 9 + [0] * 3, [1] * 12, [1] * 2 + [0] * 10], dtype=np.float64)


def torch_elman(x, h0, U, nonlinearity):
    h, states = h0, []
    for t in range(x.shape[1]):
        h = nonlinearity(x[:, t] + h @ U)
        states.append(h)
    return torch.stack(states, dim=1)


def torch_gru(x, h0, U_zr, U_h):
    """The course's GRU (r ⊙ h before the matrix), one torch op at a time."""
    H = h0.shape[1]
    h, states = h0, []
    for t in range(x.shape[1]):
        zr = torch.sigmoid(x[:, t, :2 * H] + h @ U_zr)
        z, r = zr[:, :H], zr[:, H:]
        h_tilde = torch.tanh(x[:, t, 2 * H:] + (r * h) @ U_h)
        h = (1 - z) * h + z * h_tilde
        states.append(h)
    return torch.stack(states, dim=1)


def torch_band_attention(q, k, v, mask, radius):
    """Dense T×T attention with a band mask |i − j| <= radius and padded keys removed."""
    T = q.shape[1]
    scores = q @ k.transpose(1, 2) / q.shape[-1] ** 0.5
    i = torch.arange(T)
    band = (i[:, None] - i[None, :]).abs() <= radius
    allowed = band[None] & (mask[:, None, :] > 0)
    weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
    weights = torch.where(allowed.any(dim=-1, keepdim=True), weights, 0.0)  # rows with no key: 0, not NaN
    return (weights @ v) * mask[..., None]  # padding rows give 0


def torch_attention(q, k, v, mask=None, causal=False):
    """PyTorch's own fused attention, boolean mask: True where query i may see key j."""
    T = q.shape[2]
    allowed = torch.ones(1, 1, T, T, dtype=torch.bool)
    if mask is not None:
        allowed = allowed & (mask > 0)[:, None, None, :]
    if causal:
        allowed = allowed & torch.ones(T, T, dtype=torch.bool).tril()
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)


ATTENTION_MASK = np.array([[1] * 5 + [0] * 2, [1] * 7], dtype=np.float64)  # every query keeps a key

IDS = np.array([[0, 2, 5, 2], [1, 0, 3, 3]])

CASES = [
    # elementwise arithmetic, with broadcasting and Python scalars
    OpCase("add_broadcast", ("add",), inputs(normal(3, 1, 4), normal(2, 4)), md.add, torch.add),
    OpCase("add_0d_and_array", ("add",), inputs(normal(), normal(2, 3)), lambda a, b: a + b, lambda a, b: a + b),
    OpCase("add_python_scalar", ("add",), inputs(normal(2, 3)), lambda x: 1.5 + x, lambda x: 1.5 + x),
    OpCase("sub_broadcast", ("sub",), inputs(normal(2, 3, 1), normal(3, 4)), md.sub, torch.sub),
    OpCase("rsub_python_scalar", ("sub",), inputs(normal(2, 3)), lambda x: 2.0 - x, lambda x: 2.0 - x),
    OpCase("mul_broadcast", ("mul",), inputs(normal(4, 1), normal(1, 5)), md.mul, torch.mul),
    OpCase("mul_same_tensor_twice", ("mul",), inputs(normal(3, 2)), lambda x: x * x, lambda x: x * x),
    OpCase("mul_python_scalar", ("mul",), inputs(normal(2, 3)), lambda x: 3.0 * x, lambda x: 3.0 * x),
    OpCase("div_broadcast", ("div",), inputs(normal(2, 3), away_from_zero(3)), md.div, torch.div),
    OpCase("rdiv_python_scalar", ("div",), inputs(away_from_zero(2, 3)), lambda x: 2.0 / x, lambda x: 2.0 / x),
    OpCase("neg", ("neg",), inputs(normal(2, 3)), md.neg, torch.neg),
    OpCase("neg_operator", ("neg",), inputs(normal(4)), lambda x: -x, lambda x: -x),
    OpCase("pow_integer_exponent", ("pow",), inputs(normal(2, 3)), lambda x: x ** 3, lambda x: x ** 3),
    OpCase("pow_fractional_exponent", ("pow",), inputs(positive(2, 3)), lambda x: md.pow(x, 2.5), lambda x: x ** 2.5),
    OpCase("pow_negative_exponent", ("pow",), inputs(positive(2, 3)), lambda x: x ** -1.5, lambda x: x ** -1.5),
    OpCase("pow_tensor_exponent", ("pow",), inputs(positive(2, 3), normal(3)), md.pow, torch.pow),
    OpCase("pow_scalar_base", ("pow",), inputs(normal(2, 3)), lambda x: 2.0 ** x, lambda x: 2.0 ** x),
    OpCase("exp", ("exp",), inputs(normal(2, 3)), md.exp, torch.exp),
    OpCase("log", ("log",), inputs(positive(2, 3)), md.log, torch.log),
    OpCase("sqrt", ("sqrt",), inputs(positive(2, 3)), md.sqrt, torch.sqrt),
    OpCase("abs", ("abs",), inputs(away_from_zero(3, 4)), md.abs, torch.abs, kink=True),
    OpCase("maximum_broadcast", ("maximum",), apart((3, 1, 4), (2, 4)), md.maximum, torch.maximum, kink=True),
    OpCase("maximum_python_scalar", ("maximum",), inputs(lambda rng: away_from_zero(3, 4)(rng) + 0.3),
           lambda x: md.maximum(x, 0.3), lambda x: torch.clamp(x, min=0.3), kink=True),
    OpCase("minimum_broadcast", ("minimum",), apart((2, 4), (3, 1, 4)), md.minimum, torch.minimum, kink=True),
    OpCase("where_broadcast", ("where",), inputs(normal(3, 4), normal(2, 1, 4), BOOL_3x4),
           lambda a, b, c: md.where(c, a, b), lambda a, b, c: torch.where(c, a, b)),
    OpCase("where_scalar_branch", ("where",), inputs(normal(3, 4), BOOL_3x4),
           lambda a, c: md.where(c, 0.5, a), lambda a, c: torch.where(c, 0.5, a)),

    # activations
    OpCase("sigmoid", ("sigmoid",), inputs(lambda rng: 3 * rng.standard_normal((3, 4))), md.sigmoid, torch.sigmoid),
    OpCase("tanh", ("tanh",), inputs(normal(3, 4)), md.tanh, torch.tanh),
    OpCase("relu", ("relu",), inputs(away_from_zero(3, 4)), md.relu, torch.relu, kink=True),
    OpCase("relu_method", ("relu",), inputs(away_from_zero(5)), lambda x: x.relu(), torch.relu, kink=True),
    OpCase("leaky_relu", ("leaky_relu",), inputs(away_from_zero(3, 4)),
           lambda x: md.leaky_relu(x, 0.1), lambda x: F.leaky_relu(x, 0.1), kink=True),
    OpCase("leaky_relu_default_slope", ("leaky_relu",), inputs(away_from_zero(3, 4)), md.leaky_relu, F.leaky_relu,
           kink=True),
    OpCase("gelu_exact", ("gelu",), inputs(lambda rng: 2 * rng.standard_normal((3, 4))), md.gelu, F.gelu),
    OpCase("gelu_tanh", ("gelu",), inputs(lambda rng: 2 * rng.standard_normal((3, 4))),
           lambda x: md.gelu(x, approximate="tanh"), lambda x: F.gelu(x, approximate="tanh")),

    # matmul: 2-D, batched, broadcast batch dimensions, 1-D operands
    OpCase("matmul_2d", ("matmul",), inputs(normal(3, 4), normal(4, 2)), md.matmul, torch.matmul),
    OpCase("linear_3d", ("linear",), inputs(normal(2, 3, 4), normal(4, 5), normal(5)), md.linear,
           lambda x, w, b: x @ w + b),
    OpCase("linear_2d_no_bias", ("linear",), inputs(normal(3, 4), normal(4, 2)), md.linear, lambda x, w: x @ w),
    OpCase("linear_vector", ("linear",), inputs(normal(4), normal(4, 3), normal(3)), md.linear,
           lambda x, w, b: x @ w + b),
    OpCase("matmul_batched", ("matmul",), inputs(normal(2, 3, 4), normal(2, 4, 5)), lambda a, b: a @ b, torch.matmul),
    OpCase("matmul_batch_broadcast", ("matmul",), inputs(normal(2, 1, 3, 4), normal(3, 4, 2)), md.matmul,
           torch.matmul),
    OpCase("matmul_3d_by_2d", ("matmul",), inputs(normal(2, 3, 4), normal(4, 2)), md.matmul, torch.matmul),
    OpCase("matmul_vector_matrix", ("matmul",), inputs(normal(4), normal(4, 3)), md.matmul, torch.matmul),
    OpCase("matmul_matrix_vector", ("matmul",), inputs(normal(3, 4), normal(4)), md.matmul, torch.matmul),
    OpCase("matmul_vector_vector", ("matmul",), inputs(normal(4), normal(4)), md.matmul, torch.matmul),
    OpCase("matmul_vector_batch", ("matmul",), inputs(normal(4), normal(2, 4, 3)), md.matmul, torch.matmul),

    # shapes
    OpCase("reshape", ("reshape",), inputs(normal(2, 3, 4)), lambda x: md.reshape(x, (4, 6)),
           lambda x: x.reshape(4, 6)),
    OpCase("reshape_minus_one", ("reshape",), inputs(normal(2, 3, 4)), lambda x: x.reshape(3, -1),
           lambda x: x.reshape(3, -1)),
    OpCase("unsqueeze", ("reshape",), inputs(normal(2, 3)), lambda x: x.unsqueeze(-1), lambda x: x.unsqueeze(-1)),
    OpCase("squeeze", ("reshape",), inputs(normal(3, 1, 2)), lambda x: x.squeeze(1), lambda x: x.squeeze(1)),
    OpCase("transpose_reverse", ("transpose",), inputs(normal(2, 3, 4)), md.transpose, lambda x: x.permute(2, 1, 0)),
    OpCase("transpose_axes", ("transpose",), inputs(normal(2, 3, 4)), lambda x: md.transpose(x, (1, 0, 2)),
           lambda x: x.permute(1, 0, 2)),
    OpCase("permute_negative_axes", ("permute",), inputs(normal(2, 3, 4)), lambda x: md.permute(x, (-1, 0, 1)),
           lambda x: x.permute(-1, 0, 1)),
    OpCase("permute_method", ("transpose",), inputs(normal(2, 3, 4)), lambda x: x.permute(2, 0, 1),
           lambda x: x.permute(2, 0, 1)),
    OpCase("T", ("transpose",), inputs(normal(3, 4)), lambda x: x.T, lambda x: x.T),
    OpCase("broadcast_to", ("broadcast_to",), inputs(normal(3, 1)), lambda x: md.broadcast_to(x, (2, 3, 4)),
           lambda x: x.broadcast_to(2, 3, 4)),
    OpCase("broadcast_to_from_0d", ("broadcast_to",), inputs(normal()), lambda x: x.broadcast_to((2, 3)),
           lambda x: x.broadcast_to(2, 3)),
    OpCase("getitem_slices", ("getitem",), inputs(normal(3, 5)), lambda x: x[1:, ::2], lambda x: x[1:, ::2]),
    OpCase("getitem_int", ("getitem",), inputs(normal(3, 4)), lambda x: x[1], lambda x: x[1]),
    OpCase("getitem_negative_ints", ("getitem",), inputs(normal(3, 4)), lambda x: x[-1, 2], lambda x: x[-1, 2]),
    OpCase("getitem_none_and_slice", ("getitem",), inputs(normal(3, 4)), lambda x: x[:, None, 1:3],
           lambda x: x[:, None, 1:3]),
    OpCase("getitem_ellipsis", ("getitem",), inputs(normal(2, 3, 4)), lambda x: x[..., 0], lambda x: x[..., 0]),
    OpCase("getitem_list_repeated", ("getitem",), inputs(normal(3, 4)), lambda x: md.getitem(x, [0, 2, 0]),
           lambda x: x[[0, 2, 0]]),
    OpCase("getitem_int_array_2d_repeated", ("getitem",), inputs(normal(3, 4)),
           lambda x: x[np.array([[0, 1], [1, 1]])], lambda x: x[torch.tensor([[0, 1], [1, 1]])]),
    OpCase("getitem_int_tensor", ("getitem",), inputs(normal(4, 3), np.array([3, 0, 3, 3])),
           lambda x, i: x[i], lambda x, i: x[i]),
    OpCase("getitem_two_int_arrays", ("getitem",), inputs(normal(3, 4)), lambda x: x[[0, 1, 0], [2, 2, 2]],
           lambda x: x[[0, 1, 0], [2, 2, 2]]),
    OpCase("getitem_slice_and_int_list", ("getitem",), inputs(normal(3, 4)), lambda x: x[:, [1, 1, 0]],
           lambda x: x[:, [1, 1, 0]]),
    OpCase("getitem_bool_mask", ("getitem",), inputs(normal(3, 4), BOOL_3x4), lambda x, m: x[m], lambda x, m: x[m]),
    OpCase("getitem_bool_rows", ("getitem",), inputs(normal(3, 4)), lambda x: x[np.array([True, False, True])],
           lambda x: x[torch.tensor([True, False, True])]),
    OpCase("concat", ("concat",), inputs(normal(2, 3), normal(1, 3), normal(4, 3)), lambda *t: md.concat(t),
           lambda *t: torch.cat(t)),
    OpCase("concat_last_axis", ("concat",), inputs(normal(2, 3), normal(2, 1)), lambda *t: md.concat(t, axis=-1),
           lambda *t: torch.cat(t, dim=-1)),
    OpCase("stack", ("stack",), inputs(normal(2, 3), normal(2, 3)), lambda *t: md.stack(t), lambda *t: torch.stack(t)),
    OpCase("stack_middle_axis", ("stack",), inputs(normal(2, 3), normal(2, 3), normal(2, 3)),
           lambda *t: md.stack(t, axis=1), lambda *t: torch.stack(t, dim=1)),
    OpCase("stack_last_axis", ("stack",), inputs(normal(2, 3), normal(2, 3)), lambda *t: md.stack(t, axis=-1),
           lambda *t: torch.stack(t, dim=-1)),
    OpCase("pad", ("pad",), inputs(normal(2, 3)), lambda x: md.pad(x, ((1, 2), (0, 1))),
           lambda x: F.pad(x, (0, 1, 1, 2))),
    OpCase("pad_value", ("pad",), inputs(normal(2, 2, 3)), lambda x: md.pad(x, ((0, 0), (1, 0), (2, 2)), value=1.5),
           lambda x: F.pad(x, (2, 2, 1, 0, 0, 0), value=1.5)),

    # reductions
    OpCase("sum_all", ("sum",), inputs(normal(2, 3, 4)), md.sum, torch.sum),
    OpCase("sum_axis", ("sum",), inputs(normal(2, 3, 4)), lambda x: x.sum(axis=1), lambda x: x.sum(1)),
    OpCase("sum_axes_keepdims", ("sum",), inputs(normal(2, 3, 4)), lambda x: x.sum(axis=(0, 2), keepdims=True),
           lambda x: x.sum((0, 2), keepdim=True)),
    OpCase("sum_negative_axis", ("sum",), inputs(normal(2, 3, 4)), lambda x: md.sum(x, -1), lambda x: x.sum(-1)),
    OpCase("sum_0d", ("sum",), inputs(normal()), md.sum, torch.sum),
    # axis=() reduces no axis, as in NumPy (torch's dim=() is every axis: the torch backend summed all)
    OpCase("sum_no_axes", ("sum",), inputs(normal(2, 3)), lambda x: x.sum(axis=()), lambda x: x.clone()),
    OpCase("mean_no_axes", ("mean",), inputs(normal(2, 3)), lambda x: x.mean(axis=()), lambda x: x.clone()),
    OpCase("max_no_axes", ("max",), inputs(distinct(2, 3)), lambda x: x.max(axis=()), lambda x: x.clone(), kink=True),
    OpCase("mean_all", ("mean",), inputs(normal(2, 3, 4)), md.mean, torch.mean),
    OpCase("mean_axis", ("mean",), inputs(normal(2, 3, 4)), lambda x: x.mean(axis=-2), lambda x: x.mean(-2)),
    OpCase("mean_axes_keepdims", ("mean",), inputs(normal(2, 3, 4)), lambda x: x.mean(axis=(0, 1), keepdims=True),
           lambda x: x.mean((0, 1), keepdim=True)),
    OpCase("max_all", ("max",), inputs(distinct(2, 3, 4)), md.max, torch.amax, kink=True),
    OpCase("max_axis", ("max",), inputs(distinct(2, 3, 4)), lambda x: x.max(axis=1), lambda x: x.amax(1), kink=True),
    OpCase("max_axes_keepdims", ("max",), inputs(distinct(2, 3, 4)), lambda x: x.max(axis=(0, 2), keepdims=True),
           lambda x: x.amax((0, 2), keepdim=True), kink=True),
    OpCase("logsumexp_all", ("logsumexp",), inputs(normal(2, 3, 4)), md.logsumexp,
           lambda x: torch.logsumexp(x, (0, 1, 2))),
    OpCase("logsumexp_axis", ("logsumexp",), inputs(normal(2, 3, 4)), lambda x: x.logsumexp(axis=-1),
           lambda x: torch.logsumexp(x, -1)),
    OpCase("logsumexp_axes_keepdims", ("logsumexp",), inputs(normal(2, 3, 4)),
           lambda x: x.logsumexp(axis=(0, 1), keepdims=True), lambda x: torch.logsumexp(x, (0, 1), keepdim=True)),
    # values where a naive exp overflows (exp(1000) = inf in float64): checked against torch only,
    # since round-off of outputs ~1000 swamps a centred difference with eps = 1e-6
    OpCase("logsumexp_large_values", ("logsumexp",), inputs(lambda rng: 1000 + rng.standard_normal((3, 4))),
           lambda x: md.logsumexp(x, axis=1), lambda x: torch.logsumexp(x, 1), finite_differences=False),
    OpCase("logsumexp_moderate_values", ("logsumexp",), inputs(lambda rng: 20 + rng.standard_normal((3, 4))),
           lambda x: md.logsumexp(x, axis=1), lambda x: torch.logsumexp(x, 1)),

    # softmax and losses
    OpCase("softmax", ("softmax",), inputs(normal(3, 5)), md.softmax, lambda x: torch.softmax(x, -1)),
    OpCase("softmax_axis0", ("softmax",), inputs(normal(3, 2, 4)), lambda x: x.softmax(axis=0),
           lambda x: torch.softmax(x, 0)),
    OpCase("softmax_large_values", ("softmax",), inputs(lambda rng: 1000 * rng.standard_normal((3, 4))),
           md.softmax, lambda x: torch.softmax(x, -1), finite_differences=False),
    OpCase("log_softmax", ("log_softmax",), inputs(normal(3, 5)), md.log_softmax,
           lambda x: torch.log_softmax(x, -1)),
    OpCase("log_softmax_axis1", ("log_softmax",), inputs(normal(2, 3, 4)), lambda x: x.log_softmax(axis=1),
           lambda x: torch.log_softmax(x, 1)),
    OpCase("cross_entropy", ("cross_entropy",), inputs(normal(4, 5), np.array([0, 4, 2, 2])), md.cross_entropy,
           torch_cross_entropy),
    OpCase("cross_entropy_large_logits", ("cross_entropy",), inputs(lambda rng: 1000 + rng.standard_normal((4, 5)),
                                                                    np.array([0, 4, 2, 2])),
           md.cross_entropy, torch_cross_entropy, finite_differences=False),
    OpCase("bce_with_logits_large_logits", ("binary_cross_entropy_with_logits",),
           inputs(lambda rng: 800 * rng.choice([-1.0, 1.0], (2, 3)), const(lambda rng: rng.uniform(0, 1, (2, 3)))),
           md.binary_cross_entropy_with_logits, torch_bce, finite_differences=False),
    OpCase("cross_entropy_3d_masked", ("cross_entropy",), inputs(normal(2, 3, 5), integers(5, 2, 3), MASK_2x3),
           lambda z, y, m: md.cross_entropy(z, y, mask=m), lambda z, y, m: torch_cross_entropy(z, y, mask=m)),
    OpCase("cross_entropy_bool_mask_sum", ("cross_entropy",),
           inputs(normal(2, 3, 5), integers(5, 2, 3), MASK_2x3.astype(bool)),
           lambda z, y, m: md.cross_entropy(z, y, mask=m, reduction="sum"),
           lambda z, y, m: torch_cross_entropy(z, y, mask=m, reduction="sum")),
    OpCase("cross_entropy_none", ("cross_entropy",), inputs(normal(2, 3, 5), integers(5, 2, 3)),
           lambda z, y: md.cross_entropy(z, y, reduction="none"),
           lambda z, y: torch_cross_entropy(z, y, reduction="none")),
    OpCase("cross_entropy_none_masked", ("cross_entropy",), inputs(normal(2, 3, 5), integers(5, 2, 3), MASK_2x3),
           lambda z, y, m: md.cross_entropy(z, y, mask=m, reduction="none"),
           lambda z, y, m: torch_cross_entropy(z, y, mask=m, reduction="none")),
    OpCase("bce_with_logits", ("binary_cross_entropy_with_logits",),
           inputs(lambda rng: 3 * rng.standard_normal((2, 3)), const(lambda rng: rng.integers(0, 2, (2, 3)))),
           md.binary_cross_entropy_with_logits, torch_bce),
    OpCase("bce_with_logits_soft_targets_masked", ("binary_cross_entropy_with_logits",),
           inputs(normal(2, 3), lambda rng: rng.uniform(0.05, 0.95, (2, 3)), Const(MASK_2x3)),
           lambda z, y, m: md.binary_cross_entropy_with_logits(z, y, mask=m),
           lambda z, y, m: torch_bce(z, y, mask=m)),
    OpCase("bce_with_logits_sum", ("binary_cross_entropy_with_logits",),
           inputs(normal(4), const(lambda rng: rng.uniform(0, 1, 4))),
           lambda z, y: md.binary_cross_entropy_with_logits(z, y, reduction="sum"),
           lambda z, y: torch_bce(z, y, reduction="sum")),
    OpCase("bce_with_logits_none", ("binary_cross_entropy_with_logits",),
           inputs(normal(2, 3), const(lambda rng: rng.uniform(0, 1, (2, 3)))),
           lambda z, y: md.binary_cross_entropy_with_logits(z, y, reduction="none"),
           lambda z, y: torch_bce(z, y, reduction="none")),

    # layers
    OpCase("embedding", ("embedding",), inputs(normal(6, 3), IDS), md.embedding, lambda w, i: F.embedding(i, w)),
    OpCase("embedding_padding_idx", ("embedding",), inputs(normal(6, 3), IDS),
           lambda w, i: md.embedding(w, i, padding_idx=0), lambda w, i: F.embedding(i, w, padding_idx=0),
           finite_differences=False),  # the padding row is used but, by design, never learns
    OpCase("dropout", ("dropout",), inputs(away_from_zero(4, 5)), _dropout, None, same_on_backends=False),
    OpCase("layer_norm", ("layer_norm",), inputs(normal(2, 3, 5), normal(5), normal(5)), md.layer_norm,
           lambda x, w, b: F.layer_norm(x, (5,), w, b)),
    OpCase("layer_norm_no_affine", ("layer_norm",), inputs(normal(4, 6)), lambda x: md.layer_norm(x, eps=1e-3),
           lambda x: F.layer_norm(x, (6,), eps=1e-3), seed=1),  # seed 0 has a gradient element of 5e-5

    # fused sequence ops (one graph node for a whole sequence), against step-by-step torch loops
    OpCase("elman_rnn_relu", ("elman_rnn",), inputs(normal(3, 5, 4), normal(3, 4), lambda rng: 0.5 * rng.standard_normal((4, 4))),
           md.elman_rnn, lambda x, h0, U: torch_elman(x, h0, U, torch.relu)),
    OpCase("elman_rnn_tanh", ("elman_rnn",), inputs(normal(2, 6, 3), normal(2, 3), normal(3, 3)),
           lambda x, h0, U: md.elman_rnn(x, h0, U, "tanh"), lambda x, h0, U: torch_elman(x, h0, U, torch.tanh)),
    OpCase("gru_course_equations", ("gru",), inputs(normal(3, 6, 12), normal(3, 4), normal(4, 8), normal(4, 4)),
           md.gru, lambda x, h0, U_zr, U_h: torch_gru(x, h0, U_zr, U_h)),
    OpCase("window_attention_padded", ("window_attention",),
           inputs(normal(3, 12, 4), normal(3, 12, 4), normal(3, 12, 4), Const(WINDOW_MASK)),
           lambda q, k, v, m: md.window_attention(q, k, v, m, 2)[0],
           lambda q, k, v, m: torch_band_attention(q, k, v, m, 2)),
    OpCase("window_attention_radius_5", ("window_attention",),
           inputs(normal(2, 9, 3), normal(2, 9, 3), normal(2, 9, 3), Const(WINDOW_MASK[:2, :9])),
           lambda q, k, v, m: md.window_attention(q, k, v, m, 5)[0],
           lambda q, k, v, m: torch_band_attention(q, k, v, m, 5)),
    OpCase("scaled_dot_product_attention", ("scaled_dot_product_attention",),
           inputs(normal(2, 3, 6, 4), normal(2, 3, 6, 4), normal(2, 3, 6, 4)),
           md.scaled_dot_product_attention, torch_attention),
    OpCase("scaled_dot_product_attention_padded_causal", ("scaled_dot_product_attention",),
           inputs(normal(2, 2, 7, 3), normal(2, 2, 7, 3), normal(2, 2, 7, 3), Const(ATTENTION_MASK)),
           lambda q, k, v, m: md.scaled_dot_product_attention(q, k, v, m, causal=True),
           lambda q, k, v, m: torch_attention(q, k, v, m, causal=True)),

    # a small composed model: everything above must chain
    OpCase("mlp_composed", ("matmul", "add", "gelu", "layer_norm", "cross_entropy"),
           inputs(normal(4, 3), normal(3, 5), normal(5), normal(5, 3), np.array([0, 2, 1, 2])),
           lambda x, w1, b1, w2, y: md.cross_entropy(md.layer_norm(md.gelu(x @ w1 + b1)) @ w2, y),
           lambda x, w1, b1, w2, y: torch_cross_entropy(F.layer_norm(F.gelu(x @ w1 + b1), (5,)) @ w2, y)),
]

