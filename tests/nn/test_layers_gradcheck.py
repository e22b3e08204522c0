"""Every layer's gradient, with respect to its input and to each of its parameters, against
centred finite differences: float64, on every backend.

Tolerance 1e-7 throughout, including ReLU and LeakyReLU: their inputs are drawn at least
0.1 away from the kink at 0 (``away_from_zero``), far beyond eps = 1e-6, so no
finite difference straddles it and the smooth-op bound applies.
"""
import numpy as np
import pytest

import minidl as md
from minidl import nn
from minidl.gradcheck import gradcheck

TOL = 1e-7


def inputs(rng, *shape, device):
    return md.tensor(rng.standard_normal(shape), requires_grad=True, device=device, dtype="float64")


def away_from_zero(rng, *shape, device):
    """Entries in ±[0.1, 1.1]: no finite difference crosses a kink at 0."""
    values = rng.uniform(0.1, 1.1, shape) * rng.choice([-1.0, 1.0], shape)
    return md.tensor(values, requires_grad=True, device=device, dtype="float64")


def check(module, *xs):
    """gradcheck of module(*xs) with respect to the inputs and every trainable parameter.

    The parameters are passed to gradcheck as extra inputs that ``fn`` ignores: gradcheck
    nudges their ``.data`` in place, which is exactly what the module reads."""
    params = [p for p in module.parameters() if p.requires_grad]
    # seed=1: gradcheck's random grad_output must not equal the input drawn from the rng
    # fixture (also seeded 0); for LayerNorm, g = x makes the whole gradient cancel to ~0
    result = gradcheck(lambda *args: module(*args[:len(xs)]), [*xs, *params], tol=TOL, seed=1)
    assert result.ok, str(result)
    return result


@pytest.mark.parametrize("bias", [True, False])
def test_linear(device, rng, bias):
    md.manual_seed(0)
    layer = nn.Linear(4, 3, bias=bias, device=device, dtype="float64")
    check(layer, inputs(rng, 5, 4, device=device))  # x (B, D_in)


def test_linear_with_leading_dimensions(device, rng):
    layer = nn.Linear(4, 3, dtype="float64").to(device=device)
    check(layer, inputs(rng, 2, 3, 4, device=device))  # x (B, T, D_in): W's gradient sums over B and T


def test_embedding(device):
    layer = nn.Embedding(6, 3, device=device, dtype="float64")
    ids = md.tensor([[0, 2, 2], [5, 1, 2]], device=device)  # repeated ids: their gradients add up
    check(layer, ids)


def test_embedding_padding_row_gets_no_gradient(device, rng):
    layer = nn.Embedding(5, 3, padding_idx=0, device=device, dtype="float64")
    assert not np.any(layer.weight.numpy()[0]), "the padding row starts at zero"
    out = layer(md.tensor([[0, 1, 0], [3, 0, 3]], device=device))
    out.backward(md.tensor(rng.standard_normal(out.shape), device=device, dtype="float64"))
    grad = md.get_backend(device).to_numpy(layer.weight.grad)
    assert not np.any(grad[0])
    assert np.any(grad[1]) and np.any(grad[3]) and not np.any(grad[2])


def test_dropout_in_training(device, rng):
    layer = nn.Dropout(0.3)

    def same_mask_every_call(x):
        md.manual_seed(0)  # finite differences call the layer many times: fix its mask
        return layer(x)

    result = gradcheck(same_mask_every_call, [inputs(rng, 4, 5, device=device)], tol=TOL, seed=1)
    assert result.ok, str(result)


def test_layer_norm(device, rng):
    layer = nn.LayerNorm(5, device=device, dtype="float64")
    # move γ and β away from 1 and 0 so a gradient that ignored them would show
    layer.load_state_dict({"weight": rng.uniform(0.5, 1.5, 5), "bias": rng.standard_normal(5)})
    check(layer, inputs(rng, 2, 3, 5, device=device))  # x (B, T, E)


def test_layer_norm_without_affine(device, rng):
    layer = nn.LayerNorm(6, elementwise_affine=False)
    assert list(layer.parameters()) == []
    # without γ the gradient is g projected off two directions, and on (3, 4) inputs one
    # element cancels to ~1e-4, where finite-difference round-off (~1e-10) is 1e-6 relative
    check(layer, inputs(rng, 4, 6, device=device))


@pytest.mark.parametrize("activation", [nn.Tanh(), nn.Sigmoid(), nn.GELU(), nn.GELU(approximate="tanh"),
                                        nn.ReLU(), nn.LeakyReLU(0.1)], ids=repr)
def test_activation(device, rng, activation):
    check(activation, away_from_zero(rng, 3, 4, device=device))


def test_mlp(device, rng):
    md.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(device=device, dtype="float64")
    check(model, inputs(rng, 5, 3, device=device))
