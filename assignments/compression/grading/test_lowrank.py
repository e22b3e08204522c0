"""Task 4: low-rank factorisation by truncated SVD (minidl/compress/lowrank.py: LowRankLinear.from_linear,
choose_rank)."""
import numpy as np
import pytest

from minidl import nn
from minidl.assignment.checks import check_close, check_outputs, expected, fixed, tensor
from minidl.compress import LowRankLinear, choose_rank

CONTEXT = "Linear(6, 5) with fixed float64 weights"
SINGULAR_VALUES = np.array([4.0, 2.0, 1.0, 0.5, 0.25])
ENERGIES = (0.5, 0.75, 0.8, 0.95, 0.99, 1.0)   # two of them exactly on a boundary of the cumulative energy


def linear():
    layer = nn.Linear(6, 5, dtype="float64")
    layer.weight.data[...] = fixed((6, 5), seed=1)
    layer.bias.data[...] = fixed((5,), seed=2)
    return layer


def case_lowrank():
    layer = LowRankLinear.from_linear(linear(), rank=2)
    # A and B are unique only up to signs; their product and AᵀA = BBᵀ = Σ_r are not
    return {"product": layer.A.numpy() @ layer.B.numpy(), "AtA": layer.A.numpy().T @ layer.A.numpy(),
            "BBt": layer.B.numpy() @ layer.B.numpy().T, "bias": layer.bias}


def test_rank_2_factorisation():
    got = case_lowrank()
    check_outputs("LowRankLinear.from_linear(linear, rank=2)", got, expected(__file__, "lowrank"), CONTEXT)
    layer = LowRankLinear.from_linear(linear(), rank=2)
    assert (layer.A.shape, layer.B.shape, layer.rank) == ((6, 2), (2, 5), 2), (
        f"from_linear(rank=2): A {layer.A.shape}, B {layer.B.shape}, rank {layer.rank}; expected A (6, 2), B (2, 5)")
    assert layer.A.dtype == "float64", f"from_linear: A is {layer.A.dtype}, expected the Linear's dtype float64"
    x = fixed((3, 6), seed=3)
    check_close("LowRankLinear(x) after from_linear", layer(tensor(x, requires_grad=False)),
                x @ got["product"] + linear().bias.numpy(), "x (3, 6); expected x @ (A @ B) + bias")


def case_ranks():
    return {"ranks": [choose_rank(SINGULAR_VALUES, energy=energy) for energy in ENERGIES]}


def test_rank_chosen_by_energy():
    got = case_ranks()["ranks"]
    for energy, rank, want in zip(ENERGIES, got, expected(__file__, "ranks")["ranks"]):
        assert rank == want, (f"choose_rank(σ = {SINGULAR_VALUES.tolist()}, energy={energy}) gave rank {rank}, not "
                              f"the expected: the smallest r whose σ_1² + ... + σ_r² reaches {energy} of Σσ²")
    assert choose_rank(SINGULAR_VALUES, rank=3) == 3, "choose_rank(σ, rank=3) must return 3"
    layer = LowRankLinear.from_linear(linear(), energy=0.6)
    assert layer.rank == choose_rank(np.linalg.svd(linear().weight.numpy(), compute_uv=False), energy=0.6), (
        f"from_linear(energy=0.6) chose rank {layer.rank}, not choose_rank's")


def test_bad_ranks_are_refused():
    for kwargs in ({}, {"rank": 2, "energy": 0.9}, {"rank": 0}, {"rank": 6}, {"energy": 1.5}):
        with pytest.raises(ValueError):
            choose_rank(SINGULAR_VALUES, **kwargs)
    # rank 3 of a 6×5 weight: 3·(6 + 5) = 33 ≥ 30 parameters, no saving
    with pytest.raises(ValueError, match="does not save"):
        LowRankLinear.from_linear(linear(), rank=3)
