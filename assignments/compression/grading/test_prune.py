"""Task 2: magnitude pruning with masks (minidl/compress/prune.py: _prune, used by prune_l1_per_layer and
prune_global_magnitude)."""
import numpy as np
import pytest

from minidl import nn
from minidl.assignment.checks import check_close, check_outputs, expected, fixed
from minidl.compress import get_mask, prune_global_magnitude, prune_l1_per_layer

CONTEXT = "Sequential(Linear(5, 4), ReLU, Linear(4, 3)) with fixed float64 weights"


def model():
    net = nn.Sequential(nn.Linear(5, 4, dtype="float64"), nn.ReLU(), nn.Linear(4, 3, dtype="float64"))
    net[0].weight.data[...] = fixed((5, 4), seed=1)
    net[2].weight.data[...] = fixed((4, 3), seed=2, scale=0.3)  # smaller: a global threshold empties it first
    return net


def state(net):
    return {"mask_0": get_mask(net[0]), "mask_2": get_mask(net[2]), "weight_0": net[0].weight, "weight_2": net[2].weight}


def case_prune_per_layer():
    net = model()
    prune_l1_per_layer(net, 0.5)
    return state(net)


def case_prune_global():
    net = model()
    prune_global_magnitude(net, 0.5)
    return state(net)


def tied_model():
    """Weights with many equal magnitudes (and both signs): which of the tied ones go is decided by position."""
    net = model()
    net[0].weight.data[...] = np.tile([0.3, -0.1, 0.2, 0.1, -0.2], 4).reshape(5, 4)
    net[2].weight.data[...] = np.tile([-0.2, 0.1, 0.2], 4).reshape(4, 3)
    return net


def case_prune_ties():
    per_layer, together = tied_model(), tied_model()
    prune_l1_per_layer(per_layer, 0.35)
    prune_global_magnitude(together, 0.4)
    return {"per_layer_0": get_mask(per_layer[0]), "per_layer_2": get_mask(per_layer[2]),
            "global_0": get_mask(together[0]), "global_2": get_mask(together[2])}


def case_prune_twice():
    net = model()
    prune_l1_per_layer(net, 0.3)
    prune_l1_per_layer(net, 0.6)
    return state(net)


def test_per_layer_pruning():
    check_outputs("prune_l1_per_layer(model, 0.5)", case_prune_per_layer(), expected(__file__, "prune_per_layer"),
                  CONTEXT)


def test_global_pruning():
    check_outputs("prune_global_magnitude(model, 0.5)", case_prune_global(), expected(__file__, "prune_global"),
                  CONTEXT)


def test_pruning_again_keeps_what_was_pruned():
    check_outputs("prune_l1_per_layer 0.3, then 0.6", case_prune_twice(), expected(__file__, "prune_twice"), CONTEXT)
    net = model()
    prune_l1_per_layer(net, 0.5)
    before = get_mask(net[0]).numpy().copy()
    prune_l1_per_layer(net, 0.2)  # a lower target: nothing comes back
    check_close("prune_l1_per_layer 0.5, then 0.2: mask of layer 0", get_mask(net[0]), before,
                "expected: the 0.5 mask unchanged (amount is the target sparsity, and pruned weights stay pruned)")


def _pruned(net, i):
    return np.flatnonzero(get_mask(net[i]).numpy().ravel() == 0).tolist()


def test_ties_are_broken_by_position():
    net = model()
    for i in (0, 2):
        net[i].weight.data[...] = 0.5 * np.sign(fixed(net[i].weight.shape, seed=i + 5))  # all |w| equal
    prune_l1_per_layer(net, 0.35)
    for i, k in ((0, 7), (2, 4)):
        assert _pruned(net, i) == list(range(k)), (
            f"prune_l1_per_layer(model, 0.35) on a layer {i} whose weights all have |w| = 0.5 zeroed the flat "
            f"positions {_pruned(net, i)}; expected the first {k}, {list(range(k))}: break ties by position "
            f"(a stable sort of |w|, e.g. np.argsort(..., kind=\"stable\"))")
    check_outputs("pruning weights with equal |w| (per layer 0.35, global 0.4)", case_prune_ties(),
                  expected(__file__, "prune_ties"), "the two layers' weights tile a few magnitudes of both signs; "
                  "ties broken by position")


def test_k_is_rounded_to_the_nearest_integer():
    for amount, want in ((0.33, (7, 4)), (0.27, (5, 3))):
        net = model()
        prune_l1_per_layer(net, amount)
        got = tuple(len(_pruned(net, i)) for i in (0, 2))
        assert got == want, (
            f"prune_l1_per_layer(model, {amount}) zeroed {got[0]} of the 20 weights of layer 0 and {got[1]} of the "
            f"12 of layer 2; expected round({amount} · 20) = {want[0]} and round({amount} · 12) = {want[1]}: a "
            f"group of n weights loses k = round(amount · n), not its floor or ceiling")


def test_an_amount_outside_0_1_is_refused():
    for amount in (1.0, -0.1):
        with pytest.raises(ValueError):
            prune_l1_per_layer(model(), amount)
    net = model()
    prune_l1_per_layer(net, 0.0)
    assert np.all(get_mask(net[0]).numpy() == 1), "prune_l1_per_layer(model, 0.0) must keep every weight"
