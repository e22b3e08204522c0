"""Every claim of theory/vanishing_gradients.md, measured with minidl's backward.

Scalar chains run elementwise: a vector of starting points x goes through the same
layers, so one backward gives dh_n/dh_0 for every starting point. Expected values are
hand-derived NumPy formulas (never minidl), compared with a relative tolerance and no
absolute floor, because the interesting gradients here are as small as 1e-30.
"""
import math

import numpy as np
import pytest

import minidl as md
from theory.gradient_flow import gradient_norms

RTOL = 1e-10
GRID = np.linspace(-20, 20, 4001)  # step 0.01, contains 0 exactly
assert GRID[2000] == 0.0


def sigmoid_np(z):
    return 1 / (1 + np.exp(-z))


def sigmoid_slope_np(z):
    """σ'(z) = e^{-|z|} / (1 + e^{-|z|})², free of the cancellation in σ(1 − σ)."""
    e = np.exp(-np.abs(z))
    return e / (1 + e) ** 2


def random_chain(n, seed, weight_range, size=200):
    rng = np.random.default_rng(seed)
    w = rng.uniform(*weight_range, size=n)
    w = np.where(np.abs(w) < 0.05, 0.05, w)  # keep weights away from 0 so no factor is 0 by accident
    return [float(v) for v in w], [float(v) for v in rng.normal(0, 1, size=n)], rng.normal(0, 1, size=size)


def chain_minidl(phi, weights, biases, skip=False):
    def chain(h):
        for w, b in zip(weights, biases):
            out = phi(w * h + b)
            h = h + out if skip else out
        return h
    return chain


def pre_activations(phi_np, weights, biases, x, skip=False):
    """z_1..z_n of the chain, computed in NumPy."""
    zs, h = [], x
    for w, b in zip(weights, biases):
        z = w * h + b
        zs.append(z)
        h = h + phi_np(z) if skip else phi_np(z)
    return zs


# --- sigmoid -------------------------------------------------------------------------------------

def test_sigmoid_slope_at_most_quarter(minidl_grad):
    _, (slope,) = minidl_grad(md.sigmoid, GRID)
    assert slope.max() <= 0.25
    assert slope[2000] == 0.25 and np.argmax(slope) == 2000
    # σ(1 − σ) is exact to ~1e-16 absolute; where σ ≈ 1 that is a large relative error, hence atol
    np.testing.assert_allclose(slope, sigmoid_slope_np(GRID), rtol=1e-9, atol=1e-15)
    assert slope[GRID == 2.0] == pytest.approx(0.105, abs=5e-4)
    assert slope[GRID == 5.0] == pytest.approx(0.0066, abs=5e-5)


@pytest.mark.parametrize("n", range(1, 13))
def test_sigmoid_chain_bound(minidl_grad, n):
    weights, biases, x = random_chain(n, n, (-3, 3))
    _, (grad,) = minidl_grad(chain_minidl(md.sigmoid, weights, biases), x)
    zs = pre_activations(sigmoid_np, weights, biases, x)
    expected = np.prod([w * sigmoid_slope_np(z) for w, z in zip(weights, zs)], axis=0)
    np.testing.assert_allclose(grad, expected, rtol=RTOL)
    assert np.all(np.abs(grad) <= 0.25 ** n * np.prod(np.abs(weights)))


def test_sigmoid_chain_decays_geometrically(device):
    """dh_n/dh_k for every k of one depth-30 chain (retain_grad), |w_k| <= 1: each layer divides by >= 4."""
    n = 30
    weights, biases, x = random_chain(n, 7, (-1, 1))
    h = md.tensor(x, requires_grad=True, device=device, dtype="float64")
    layers = [h]
    for w, b in zip(weights, biases):
        h = md.sigmoid(w * h + b).retain_grad()
        layers.append(h)
    h.sum().backward()
    grads = np.array([t.xp.to_numpy(t.grad) for t in layers])  # grads[k] = dh_n/dh_k

    zs = pre_activations(sigmoid_np, weights, biases, x)
    factors = np.array([w * sigmoid_slope_np(z) for w, z in zip(weights, zs)])  # layer k+1's factor
    for k in range(n + 1):
        np.testing.assert_allclose(grads[k], np.prod(factors[k:], axis=0), rtol=RTOL)
    magnitude = np.abs(grads)
    assert np.all(magnitude[:-1] <= 0.25 * magnitude[1:])
    assert np.all(magnitude[0] <= 4.0 ** -n)


# --- tanh ----------------------------------------------------------------------------------------

def test_tanh_slope_at_most_one(minidl_grad):
    _, (slope,) = minidl_grad(md.tanh, GRID)
    assert slope.max() <= 1.0
    assert slope[2000] == 1.0 and np.argmax(slope) == 2000
    np.testing.assert_allclose(slope, 1 / np.cosh(GRID) ** 2, rtol=1e-9, atol=1e-15)
    # tanh'(z) = 4 σ'(2z): the sigmoid's shape, four times as steep
    np.testing.assert_allclose(slope, 4 * sigmoid_slope_np(2 * GRID), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("n", range(1, 13))
def test_tanh_chain_bound(minidl_grad, n):
    weights, biases, x = random_chain(n, 50 + n, (-1, 1))
    _, (grad,) = minidl_grad(chain_minidl(md.tanh, weights, biases), x)
    zs = pre_activations(np.tanh, weights, biases, x)
    expected = np.prod([w / np.cosh(z) ** 2 for w, z in zip(weights, zs)], axis=0)
    np.testing.assert_allclose(grad, expected, rtol=RTOL)
    product_of_weights = np.prod(np.abs(weights))
    delta = np.min(np.abs(zs), axis=0)  # the pre-activation closest to 0, per starting point
    assert np.all(np.abs(grad) <= product_of_weights)
    assert np.all(np.abs(grad) <= (1 - np.tanh(delta) ** 2) ** n * product_of_weights * (1 + 1e-12))


# --- ReLU and leaky ReLU -----------------------------------------------------------------------

def per_point_chain(n, seed, size):
    """Weights and biases drawn separately for each of ``size`` starting points (arrays of shape (size,)),
    so that every pattern of signs of the pre-activations occurs."""
    rng = np.random.default_rng(seed)
    weights = rng.choice([-1, 1], size=(n, size)) * rng.uniform(0.5, 2, size=(n, size))
    return list(weights), list(rng.normal(0, 1, size=(n, size))), rng.normal(0, 1, size=size)


def test_relu_chain_pass_or_kill(minidl_grad):
    n = 6
    weights, biases, x = per_point_chain(n, 3, 2000)
    _, (grad,) = minidl_grad(chain_minidl(md.relu, weights, biases), x)
    zs = np.array(pre_activations(lambda z: np.maximum(z, 0), weights, biases, x))
    alive = np.all(zs > 0, axis=0)
    assert 10 < alive.sum() < len(x) - 10  # both cases occur
    np.testing.assert_array_equal(grad[~alive], 0.0)
    np.testing.assert_allclose(grad[alive], np.prod(weights, axis=0)[alive], rtol=1e-12)


@pytest.mark.parametrize("alpha", [0.01, 0.1])
def test_leaky_relu_chain_is_alpha_power(minidl_grad, alpha):
    n = 6
    weights, biases, x = per_point_chain(n, 4, 4000)
    _, (grad,) = minidl_grad(chain_minidl(lambda z: md.leaky_relu(z, alpha), weights, biases), x)
    zs = np.array(pre_activations(lambda z: np.where(z > 0, z, alpha * z), weights, biases, x))
    m = np.sum(zs < 0, axis=0)
    assert set(m.tolist()) == set(range(n + 1))
    np.testing.assert_allclose(grad, alpha ** m * np.prod(weights, axis=0), rtol=1e-12)
    assert np.all(grad != 0)


# --- skip connections ----------------------------------------------------------------------------

def random_skip_setup(seed, size=500):
    """h(x) = σ(a x + b), g(v) = σ(c v + d), f = tanh, with |a|, |c| <= 1 so |g'|, |h'| <= 1/4."""
    rng = np.random.default_rng(seed)
    a, c = (float(v) for v in rng.uniform(-1, 1, size=2))
    b, d = (float(v) for v in rng.normal(0, 1, size=2))
    return a, b, c, d, rng.uniform(-3, 3, size=size)


def skip_minidl(a, b, c, d):
    """x -> f(x + g(x + h(x)))."""
    return lambda x: md.tanh(x + md.sigmoid(c * (x + md.sigmoid(a * x + b)) + d))


def plain_minidl(a, b, c, d):
    """x -> f(g(h(x)))."""
    return lambda x: md.tanh(md.sigmoid(c * md.sigmoid(a * x + b) + d))


@pytest.mark.parametrize("seed", range(5))
def test_skip_formula(minidl_grad, seed):
    a, b, c, d, x = random_skip_setup(seed)
    _, (grad,) = minidl_grad(skip_minidl(a, b, c, d), x)
    v = x + sigmoid_np(a * x + b)
    u = x + sigmoid_np(c * v + d)
    f_prime = 1 / np.cosh(u) ** 2
    g_prime = c * sigmoid_slope_np(c * v + d)
    h_prime = a * sigmoid_slope_np(a * x + b)
    np.testing.assert_allclose(grad, f_prime * (1 + g_prime * (1 + h_prime)), rtol=RTOL)


@pytest.mark.parametrize("seed", range(5))
def test_skip_lower_bound(minidl_grad, seed):
    """Below f, the skip version keeps >= 11/16 of the slope; the plain chain f(g(h(x))) keeps <= 1/16."""
    a, b, c, d, x = random_skip_setup(seed)
    _, (skip,) = minidl_grad(skip_minidl(a, b, c, d), x)
    _, (plain,) = minidl_grad(plain_minidl(a, b, c, d), x)
    u_skip = x + sigmoid_np(c * (x + sigmoid_np(a * x + b)) + d)
    u_plain = sigmoid_np(c * sigmoid_np(a * x + b) + d)
    assert np.all(np.abs(skip) >= 11 / 16 / np.cosh(u_skip) ** 2)
    assert np.all(np.abs(plain) <= 1 / 16 / np.cosh(u_plain) ** 2)


def test_residual_chain_never_vanishes(minidl_grad):
    n = 30
    rng = np.random.default_rng(9)
    biases = [float(v) for v in rng.normal(0, 1, size=n)]
    x = rng.normal(0, 2, size=300)

    # positive weights up to 1: every residual factor 1 + w σ' >= 1, every plain factor <= 1/4
    weights = [float(v) for v in rng.uniform(0.05, 1, size=n)]
    _, (residual,) = minidl_grad(chain_minidl(md.sigmoid, weights, biases, skip=True), x)
    _, (plain,) = minidl_grad(chain_minidl(md.sigmoid, weights, biases), x)
    zs = pre_activations(sigmoid_np, weights, biases, x, skip=True)
    expected = np.prod([1 + w * sigmoid_slope_np(z) for w, z in zip(weights, zs)], axis=0)
    np.testing.assert_allclose(residual, expected, rtol=RTOL)
    assert np.all(residual >= 1.0)
    assert np.all(np.abs(plain) <= 4.0 ** -n)

    # weights of either sign up to 2: every residual factor lies in [1/2, 3/2]
    weights = [float(v) for v in rng.uniform(-2, 2, size=n)]
    _, (residual,) = minidl_grad(chain_minidl(md.sigmoid, weights, biases, skip=True), x)
    zs = pre_activations(sigmoid_np, weights, biases, x, skip=True)
    factors = np.array([1 + w * sigmoid_slope_np(z) for w, z in zip(weights, zs)])
    assert np.all((factors >= 0.5) & (factors <= 1.5))
    np.testing.assert_allclose(residual, np.prod(factors, axis=0), rtol=RTOL)


# --- the figure's network ------------------------------------------------------------------------

def gradient_norms_numpy(activation, depth, skip, width, seed, batch=32, branch_scale=1.0):
    """The figure's network back-propagated by hand in NumPy (same random draws as gradient_norms)."""
    phi, slope = {
        "sigmoid": (sigmoid_np, sigmoid_slope_np),
        "tanh": (np.tanh, lambda z: 1 / np.cosh(z) ** 2),
        "relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0) * 1.0),
        "leaky_relu": (lambda z: np.where(z > 0, z, 0.01 * z), lambda z: np.where(z > 0, 1.0, 0.01)),
    }[activation]
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((batch, width))
    Ws, zs = [], []
    for _ in range(depth):
        W = rng.standard_normal((width, width)) * (branch_scale / math.sqrt(width))
        z = h @ W
        h = h + phi(z) if skip else phi(z)
        Ws.append(W)
        zs.append(z)
    r = rng.standard_normal(width) / math.sqrt(width)
    g = np.broadcast_to(r / batch, (batch, width))
    norms = [np.linalg.norm(g)]
    for W, z in zip(reversed(Ws), reversed(zs)):
        through_branch = (g * slope(z)) @ W.T
        g = g + through_branch if skip else through_branch
        norms.append(np.linalg.norm(g))
    return norms[::-1]


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu"])
@pytest.mark.parametrize("skip", [False, True])
def test_gradient_norms_match_hand_backprop(device, activation, skip):
    got = gradient_norms(activation, depth=10, skip=skip, width=16, seed=3, device=device)
    assert len(got) == 11
    np.testing.assert_allclose(got, gradient_norms_numpy(activation, 10, skip, 16, 3), rtol=1e-9)


def test_gradient_norms_orderings(device):
    depth, width, seeds = 12, 32, range(3)

    def bottom_over_top(activation, skip):
        ratios = [norms[0] / norms[-1] for norms in
                  (gradient_norms(activation, depth, skip, width, seed, device) for seed in seeds)]
        return float(np.exp(np.mean(np.log(ratios))))

    plain = {a: bottom_over_top(a, False) for a in ("sigmoid", "tanh", "leaky_relu")}
    residual = {a: bottom_over_top(a, True) for a in ("sigmoid", "tanh", "leaky_relu")}
    assert plain["sigmoid"] < 1e-3 * plain["leaky_relu"]
    assert plain["sigmoid"] < 1e-3 * plain["tanh"]
    for activation in residual:
        assert residual[activation] >= plain[activation]
    assert residual["sigmoid"] > 0.5  # the identity road keeps the bottom layer's gradient


def test_gradient_norms_rejects_unknown_activation():
    with pytest.raises(ValueError, match="activation must be one of"):
        gradient_norms("softplus", depth=2)


def test_the_figure_command_refuses_a_device_in_one_line(tmp_path, capsys):
    """--device gpu (or cuda without a GPU) was a traceback at the first tensor."""
    from theory.gradient_flow import main

    with pytest.raises(SystemExit) as stop:
        main(["--out", str(tmp_path / "g.png"), "--depth", "2", "--width", "2", "--seeds", "1", "--device", "gpu"])
    assert stop.value.code == 2 and not list(tmp_path.iterdir())
    assert capsys.readouterr().err.splitlines()[-1].startswith("python -m theory.gradient_flow: error: --device: "
                                                               "unknown device 'gpu'")


def test_the_figure_command_refuses_an_out_below_a_file_before_the_work(tmp_path, capsys, monkeypatch):
    """It computed every profile, printed the tables, then stopped with a FileExistsError traceback."""
    import theory.gradient_flow as gradient_flow

    monkeypatch.setattr(gradient_flow, "relative_profile", lambda *a: pytest.fail("the profiles were computed"))
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as stop:
        gradient_flow.main(["--out", str(tmp_path / "notes.txt" / "g.png"), "--depth", "2", "--seeds", "1"])
    assert stop.value.code == 2 and "notes.txt is a file, so no folder can be made there" in capsys.readouterr().err


@pytest.mark.parametrize("error, code, said", [
    (MemoryError("Unable to allocate 12 GiB"), 1, "out of memory: Unable to allocate 12 GiB; give smaller sizes "
                                                  "(e.g. --width)"),
    (KeyboardInterrupt(), 130, "interrupted")])
def test_the_figure_command_answers_out_of_memory_and_ctrl_c_in_one_line(tmp_path, capsys, monkeypatch, error, code,
                                                                         said):
    """--width 40000 ended in a MemoryError traceback and Ctrl-C in a KeyboardInterrupt's; a long run showed nothing
    until its tables (a bar of the profiles is on stderr)."""
    import theory.gradient_flow as gradient_flow

    def profile(*args):
        raise error
    monkeypatch.setattr(gradient_flow, "relative_profile", profile)
    assert gradient_flow.main(["--out", str(tmp_path / "g.png"), "--depth", "2", "--seeds", "1"]) == code
    err = capsys.readouterr().err
    assert "profiles:   0%" in err and err.endswith(f"python -m theory.gradient_flow: {said}\n")
    assert not list(tmp_path.iterdir())
