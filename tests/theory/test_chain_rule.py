"""Every formula of theory/chain_rule.md against minidl's backward.

The expected values are plain NumPy expressions of the hand-derived formulas, never
minidl itself, so a wrong backward (or an engine that drops one road of the sum)
fails here. float64 throughout; relative tolerance 1e-10.
"""
import numpy as np
import pytest

import minidl as md

RTOL = 1e-10


# --- 1. g(x, y, z) = f(x + y, 2x, z) with f(a, b, c) = tanh(a) * b + c^2 -------------------------

def g_minidl(x, y, z):
    a, b, c = x + y, 2 * x, z
    return md.tanh(a) * b + c * c


def g_partials(x, y, z):
    """(∂g/∂x, ∂g/∂y, ∂g/∂z) = (f_1 + 2 f_2, f_1, f_3) from the derivation."""
    a, b, c = x + y, 2 * x, z
    f_1 = (1 - np.tanh(a) ** 2) * b
    f_2 = np.tanh(a)
    f_3 = 2 * c
    return f_1 + 2 * f_2, f_1, f_3


def test_worked_example(minidl_grad):
    value, (dx, dy, dz) = minidl_grad(g_minidl, 0.5, 0.25, -1.0)
    # the six-digit numbers printed in chain_rule.md
    assert value == pytest.approx(1.635149, abs=5e-7)
    assert dx == pytest.approx(1.866884, abs=5e-7)
    assert dy == pytest.approx(0.596586, abs=5e-7)
    assert dz == pytest.approx(-2.0, abs=1e-15)
    np.testing.assert_allclose([dx, dy, dz], g_partials(0.5, 0.25, -1.0), rtol=RTOL)


def test_three_argument_rule_random(minidl_grad):
    rng = np.random.default_rng(1)
    x, y, z = rng.uniform(-2, 2, size=(3, 200))
    _, grads = minidl_grad(g_minidl, x, y, z)
    for got, expected in zip(grads, g_partials(x, y, z)):
        np.testing.assert_allclose(got, expected, rtol=RTOL)


# --- 2. a chain y = f1(f2(... fn(x))) -----------------------------------------------------------
# (name, minidl function, NumPy value, NumPy local derivative)
LOCAL_FUNCTIONS = [
    ("tanh", md.tanh, np.tanh, lambda u: 1 - np.tanh(u) ** 2),
    ("sigmoid", md.sigmoid, lambda u: 1 / (1 + np.exp(-u)), lambda u: np.exp(-u) / (1 + np.exp(-u)) ** 2),
    ("exp(-u/2)", lambda u: md.exp(u * -0.5), lambda u: np.exp(-0.5 * u), lambda u: -0.5 * np.exp(-0.5 * u)),
    ("square", lambda u: u * u, lambda u: u * u, lambda u: 2 * u),
    ("affine", lambda u: 0.8 * u + 0.1, lambda u: 0.8 * u + 0.1, lambda u: np.full_like(u, 0.8)),
    ("leaky_relu", lambda u: md.leaky_relu(u, 0.1), lambda u: np.where(u > 0, u, 0.1 * u),
     lambda u: np.where(u > 0, 1.0, 0.1)),
]


@pytest.mark.parametrize("n", range(1, 9))
def test_chain_product(minidl_grad, n):
    rng = np.random.default_rng(n)
    chain = [LOCAL_FUNCTIONS[i] for i in rng.integers(len(LOCAL_FUNCTIONS), size=n)]  # chain[0] is f1
    x = rng.uniform(-1.5, 1.5, size=100)

    def y_minidl(x):
        u = x
        for _, fn, _, _ in reversed(chain):  # fn first, f1 last
            u = fn(u)
        return u

    _, (dy_dx,) = minidl_grad(y_minidl, x)

    # u[k] is the input of f_{k+1} (0-based chain index k), u[n] = x
    u = [None] * (n + 1)
    u[n] = x
    for k in reversed(range(n)):
        u[k] = chain[k][2](u[k + 1])
    local = [chain[k][3](u[k + 1]) for k in range(n)]  # f_k'(u_{k+1})

    product = np.prod(local, axis=0)
    u_bar = np.ones_like(x)  # reverse mode: start at y, multiply by each local derivative
    for k in range(n):
        u_bar = u_bar * local[k]
    np.testing.assert_allclose(dy_dx, product, rtol=RTOL)
    np.testing.assert_allclose(u_bar, product, rtol=1e-14)


# --- 3. nested y = f1(x, f2(x, ... fn(x))) with f_k(x, u) = tanh(a_k x + b_k u) + c_k x u ------------

def nested_minidl(coefficients):
    def y(x):
        u = md.zeros_like(x)  # u_{n+1} = 0, a constant
        for a, b, c in reversed(coefficients):  # f_n first
            u = md.tanh(a * x + b * u) + c * x * u
        return u
    return y


def nested_roads(coefficients, x):
    """A_k = ∂f_k/∂x and B_k = ∂f_k/∂u at (x, u_{k+1}), for k = 1..n (list index k-1)."""
    n = len(coefficients)
    A, B = [None] * n, [None] * n
    u = np.zeros_like(x)
    for k in reversed(range(n)):
        a, b, c = coefficients[k]
        t = np.tanh(a * x + b * u)
        A[k] = a * (1 - t * t) + c * u
        B[k] = b * (1 - t * t) + c * x
        u = t + c * x * u
    return A, B


def nested_recursion(A, B):
    """d_{n+1} = 0, d_k = A_k + B_k d_{k+1}; returns d_1."""
    d = np.zeros_like(A[0])
    for k in reversed(range(len(A))):
        d = A[k] + B[k] * d
    return d


def nested_path_terms(A, B):
    """The n roads: term j = B_1 ... B_{j-1} A_j."""
    terms, prefix = [], np.ones_like(A[0])
    for k in range(len(A)):
        terms.append(prefix * A[k])
        prefix = prefix * B[k]
    return terms


def random_nested(n, seed):
    rng = np.random.default_rng(100 + seed)
    coefficients = [tuple(float(v) for v in rng.uniform([0.3, 0.3, -0.8], [1.5, 1.5, 0.8])) for _ in range(n)]
    x = rng.uniform(-1.5, 1.5, size=50)
    return coefficients, x


@pytest.mark.parametrize("n", range(1, 7))
def test_nested_recursion(minidl_grad, n):
    coefficients, x = random_nested(n, n)
    _, (dy_dx,) = minidl_grad(nested_minidl(coefficients), x)
    np.testing.assert_allclose(dy_dx, nested_recursion(*nested_roads(coefficients, x)), rtol=RTOL)


@pytest.mark.parametrize("n", range(1, 7))
def test_nested_path_sum(minidl_grad, n):
    coefficients, x = random_nested(n, n)
    A, B = nested_roads(coefficients, x)
    path_sum = np.sum(nested_path_terms(A, B), axis=0)
    np.testing.assert_allclose(path_sum, nested_recursion(A, B), rtol=1e-12)
    _, (dy_dx,) = minidl_grad(nested_minidl(coefficients), x)
    np.testing.assert_allclose(dy_dx, path_sum, rtol=RTOL)


def test_nested_each_road_counts(minidl_grad):
    """Leaving out any one road moves the answer far outside RTOL: the checks above can see it."""
    coefficients, x = random_nested(6, 6)
    A, B = nested_roads(coefficients, x)
    terms = nested_path_terms(A, B)
    total = np.sum(terms, axis=0)
    _, (dy_dx,) = minidl_grad(nested_minidl(coefficients), x)
    for j in range(len(terms)):
        missing_one = total - terms[j]
        relative_gap = np.max(np.abs(dy_dx - missing_one) / np.abs(dy_dx))
        assert relative_gap > 1e3 * RTOL, f"road {j + 1} is too small to be detected"
