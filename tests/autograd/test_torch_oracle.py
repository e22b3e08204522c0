"""minidl's hand-written gradients against ``torch.autograd`` used as an oracle.

The same computation is built twice -- with minidl ops on each backend, and with torch ops
on ``torch.float64`` tensors that require grad -- then both are back-propagated with the
same upstream gradient. Values and gradients must agree to 1e-10 (relative, or absolute
near zero). This also pins conventions finite differences cannot see: the gradient at a
tie (``max``/``maximum`` split it evenly, as torch does) and the padding row of an embedding.
"""
import numpy as np
import pytest
import torch

import minidl as md

from .cases import CASES, as_numpy, minidl_inputs, torch_inputs

ORACLE_TOL = 1e-10


def compare_with_torch(md_fn, torch_fn, arrays, device, label):
    tensors = minidl_inputs(arrays, device)
    out = md_fn(*tensors)
    torch_tensors = torch_inputs(arrays)
    expected = torch_fn(*torch_tensors)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=ORACLE_TOL, atol=ORACLE_TOL,
                               err_msg=f"{label}: forward differs from torch")
    grad_output = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(md.get_backend(device).asarray(grad_output, "float64"))
    expected.backward(torch.tensor(grad_output))
    for i, (t, t_torch) in enumerate(zip(tensors, torch_tensors)):
        if t.requires_grad:
            assert t.grad is not None, f"{label}: input {i} got no gradient"
            np.testing.assert_allclose(as_numpy(t.grad), t_torch.grad.numpy(), rtol=ORACLE_TOL, atol=ORACLE_TOL,
                                       err_msg=f"{label}: gradient of input {i} differs from torch")


@pytest.mark.parametrize("case", [c for c in CASES if c.torch_fn is not None], ids=repr)
def test_op_matches_torch(case, device):
    compare_with_torch(case.fn, case.torch_fn, case.draw(), device, case.id)


@pytest.mark.parametrize("name, md_fn, torch_fn", [
    ("maximum", md.maximum, torch.maximum),
    ("minimum", md.minimum, torch.minimum),
    ("max", lambda a, b: md.max(md.stack([a, b]), axis=0), lambda a, b: torch.amax(torch.stack([a, b]), 0)),
    ("max_all", lambda a, b: md.max(md.concat([a, b])), lambda a, b: torch.amax(torch.cat([a, b]))),
])
def test_ties_split_the_gradient_like_torch(device, name, md_fn, torch_fn):
    a = np.array([1.0, 2.0, 3.0, 3.0])
    b = np.array([1.0, 0.5, 3.0, 2.0])
    compare_with_torch(md_fn, torch_fn, [a, b], device, name)


def test_kinks_take_torch_subgradient(device):
    """At exactly 0: abs' = 0, relu' = 0, leaky_relu' = slope (torch's choices)."""
    x = np.array([0.0, 0.0, 1.0])
    compare_with_torch(md.abs, torch.abs, [x], device, "abs")
    compare_with_torch(md.relu, torch.relu, [x], device, "relu")
    compare_with_torch(lambda t: md.leaky_relu(t, 0.2), lambda t: torch.nn.functional.leaky_relu(t, 0.2), [x],
                       device, "leaky_relu")


def test_relu_of_negatives_is_zero_like_torch(device):
    """relu(−inf) read NaN (−inf · 0) and relu(−1) −0.0: it was x · (x > 0)."""
    x = np.array([-np.inf, -1.0, 0.0, 2.0, np.inf])
    compare_with_torch(md.relu, torch.relu, [x], device, "relu")
    assert not np.signbit(md.relu(md.tensor(x, device=device)).numpy()).any(), "relu gave -0.0"


def test_pow_at_a_zero_base_is_torchs(device):
    """d/da of a ** 0 and d/db at a = 0, b >= 0 are 0, as in torch (the formula read 0·inf: NaN), and 0.0 ** w
    failed in math.log(0)."""
    base, exponent = np.array([0.0, 0.0, 0.0, 0.0, 3.0]), np.array([-1.0, 0.0, 0.5, 2.0, 2.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        compare_with_torch(md.pow, torch.pow, [base, exponent], device, "a ** b")
        compare_with_torch(lambda x: x ** 0, lambda x: x ** 0, [base], device, "x ** 0")
        compare_with_torch(lambda w: 0.0 ** w, lambda w: 0.0 ** w, [exponent], device, "0.0 ** w")


def test_logsumexp_of_infinite_rows_is_torchs(device):
    """A row of −inf (every position masked) read nan: max − max = −inf − (−inf)."""
    inf = float("inf")
    rows = [[-inf, -inf], [1.0, 2.0], [inf, 1.0], [-inf, 3.0]]
    with np.errstate(divide="ignore", invalid="ignore"):
        ours = md.tensor(rows, device=device).logsumexp(axis=1).numpy()
    np.testing.assert_allclose(ours, torch.logsumexp(torch.tensor(rows), 1).numpy(), rtol=1e-6)


def test_dropout_is_inverted_dropout(device):
    """out = x * mask / (1 - p) with mask ~ Bernoulli(1 - p); the gradient uses the same mask."""
    p = 0.3
    rng = np.random.default_rng(0)
    x = md.tensor(rng.uniform(0.5, 1.5, (200, 50)), requires_grad=True, device=device, dtype="float64")
    out = md.dropout(x, p=p, generator=x.xp.new_generator(0))
    kept = out.numpy() != 0
    assert abs(kept.mean() - (1 - p)) < 0.02
    np.testing.assert_allclose(out.numpy()[kept], x.numpy()[kept] / (1 - p), rtol=1e-12)
    grad_output = rng.standard_normal(x.shape)
    out.backward(x.xp.asarray(grad_output, "float64"))
    np.testing.assert_allclose(as_numpy(x.grad), grad_output * kept / (1 - p), rtol=1e-12)


def test_dropout_off_in_eval_and_p0(device):
    x = md.randn(3, 4, device=device)
    assert np.array_equal(md.dropout(x, p=0.5, training=False).numpy(), x.numpy())
    assert np.array_equal(md.dropout(x, p=0.0).numpy(), x.numpy())
    assert not md.dropout(x, p=1.0).numpy().any()
