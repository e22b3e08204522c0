"""Every op's hand-written backward against centred finite differences, in float64, on every backend.

Tolerance: rel_error <= 1e-7 (CS231n's bound for a correct smooth op), except for the
piecewise-linear ops, which use 1e-6:

* ``abs``, ``relu``, ``leaky_relu`` -- kink at 0;
* ``maximum``, ``minimum``          -- kink where a = b;
* ``max`` (the reduction)           -- kink where two entries tie for the maximum.

Their inputs are drawn at least 0.05 away from the kink or tie (``cases.away_from_zero``,
``cases.apart``, ``cases.distinct``), far beyond eps = 1e-6, so the looser bound is a safety
margin rather than a need: a centred difference that straddled a kink would measure the
average of the two one-sided slopes, which no backward formula reproduces.

The catalogue of cases lives in ``cases.py`` (shared with the backend-agreement and
torch-oracle tests); the property-based tests below add random shapes with broadcasting.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import minidl as md
from minidl.autograd import ops
from minidl.gradcheck import gradcheck, numerical_gradient

from .cases import (CASES, KINK_TOL, SMOOTH_TOL, apart, as_numpy, away_from_zero, distinct, inputs, minidl_inputs,
                    normal, positive)

PROPERTY_SETTINGS = settings(derandomize=True, max_examples=25, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_every_op_has_a_case():
    covered = {name for case in CASES for name in case.ops}
    missing = set(ops.__all__) - covered
    assert not missing, f"ops without a gradient test: {sorted(missing)}"


@pytest.mark.parametrize("case", [c for c in CASES if c.finite_differences], ids=repr)
def test_op_gradcheck(case, device):
    tensors = minidl_inputs(case.draw(), device)
    result = gradcheck(case.fn, tensors, tol=case.tol)
    assert result.ok, f"{case.id} on {device}:\n{result}"


def test_embedding_padding_row_gets_no_gradient(device):
    """With padding_idx the padding row is used in the forward but must not learn."""
    rng = np.random.default_rng(0)
    weight = md.tensor(rng.standard_normal((5, 3)), requires_grad=True, device=device, dtype="float64")
    ids = md.tensor([[0, 2, 0], [4, 2, 1]], device=device)

    def fn(w):
        return md.embedding(w, ids, padding_idx=0)

    grad_output = rng.standard_normal((2, 3, 3))
    fn(weight).backward(md.get_backend(device).asarray(grad_output, "float64"))
    (numeric,) = numerical_gradient(fn, [weight], grad_output)
    analytic = as_numpy(weight.grad)
    assert np.all(analytic[0] == 0) and np.any(numeric[0] != 0)
    np.testing.assert_allclose(analytic[1:], numeric[1:], rtol=1e-7, atol=1e-9)


def test_getitem_negative_step(device):
    """``x[::-1]`` is a basic slice: NumPy takes it, torch tensors refuse negative steps."""
    (x,) = minidl_inputs([np.random.default_rng(0).standard_normal((3, 4))], device)
    np.testing.assert_array_equal(x[::-1, 1::-2].numpy(), x.numpy()[::-1, 1::-2])
    assert gradcheck(lambda t: t[::-1, 1::-2], [x]).ok


# --- property-based: random shapes that broadcast --------------------------------------------

def _each(draw_a, draw_b):
    """(shape_a, shape_b) -> rng -> [a, b], a drawn by the cases.py generator draw_a, b by draw_b."""
    return lambda shape_a, shape_b: inputs(draw_a(*shape_a), draw_b(*shape_b))


BINARY = {  # op -> (minidl function, (shape_a, shape_b) -> values of a and b, tolerance)
    "add": (md.add, _each(normal, normal), SMOOTH_TOL),
    "sub": (md.sub, _each(normal, normal), SMOOTH_TOL),
    "mul": (md.mul, _each(normal, normal), SMOOTH_TOL),
    "div": (md.div, _each(normal, away_from_zero), SMOOTH_TOL),
    "pow": (md.pow, _each(positive, normal), SMOOTH_TOL),
    "maximum": (md.maximum, apart, KINK_TOL),   # apart: a and b never tie
    "minimum": (md.minimum, apart, KINK_TOL),
    "where": (lambda a, b: md.where(a > b, a, b * 2.0), apart, SMOOTH_TOL),
}


@PROPERTY_SETTINGS
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       op=st.sampled_from(sorted(BINARY)), seed=st.integers(0, 2**16))
def test_binary_ops_broadcast(device, shapes, op, seed):
    fn, draw, tol = BINARY[op]
    (shape_a, shape_b), out_shape = shapes
    a, b = minidl_inputs(draw(shape_a, shape_b)(np.random.default_rng(seed)), device)
    assert fn(a, b).shape == out_shape
    result = gradcheck(fn, [a, b], tol=tol)
    assert result.ok, f"{op} {shape_a} with {shape_b}:\n{result}"


@PROPERTY_SETTINGS
@given(shape=array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3),
       op=st.sampled_from(["exp", "tanh", "sigmoid", "gelu", "relu", "abs", "sqrt", "log"]),
       seed=st.integers(0, 2**16))
def test_unary_ops_any_shape(device, shape, op, seed):
    draw = positive if op in ("sqrt", "log") else away_from_zero
    (x,) = minidl_inputs([draw(*shape)(np.random.default_rng(seed))], device)
    result = gradcheck(getattr(md, op), [x], tol=KINK_TOL if op in ("relu", "abs") else SMOOTH_TOL)
    assert result.ok, f"{op} on {shape}:\n{result}"


@st.composite
def shape_and_axes(draw):
    shape = draw(array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    axes = draw(st.none() | st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=len(shape),
                                     unique_by=lambda a: a % len(shape)).map(tuple)
                | st.integers(-len(shape), len(shape) - 1))
    return shape, axes


@PROPERTY_SETTINGS
@given(shape_axes=shape_and_axes(), keepdims=st.booleans(),
       op=st.sampled_from(["sum", "mean", "max", "logsumexp"]), seed=st.integers(0, 2**16))
def test_reductions_any_axes(device, shape_axes, keepdims, op, seed):
    shape, axis = shape_axes
    values = distinct(*shape)(np.random.default_rng(seed))  # no ties
    (x,) = minidl_inputs([values], device)

    def fn(t):
        return getattr(md, op)(t, axis=axis, keepdims=keepdims)

    expected = getattr(np, {"logsumexp": "sum"}.get(op, op))(values, axis=axis, keepdims=keepdims)
    assert fn(x).shape == np.shape(expected)
    result = gradcheck(fn, [x], tol=KINK_TOL if op == "max" else SMOOTH_TOL)
    assert result.ok, f"{op}(axis={axis}, keepdims={keepdims}) on {shape}:\n{result}"


@PROPERTY_SETTINGS
@given(shape=array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), data=st.data(),
       op=st.sampled_from(["softmax", "log_softmax"]), seed=st.integers(0, 2**16))
def test_softmax_any_axis(device, shape, data, op, seed):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    (x,) = minidl_inputs([np.random.default_rng(seed).standard_normal(shape)], device)
    result = gradcheck(lambda t: getattr(md, op)(t, axis=axis), [x])
    assert result.ok, f"{op}(axis={axis}) on {shape}:\n{result}"
