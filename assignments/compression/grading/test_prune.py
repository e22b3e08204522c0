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


def test_an_amount_outside_0_1_is_refused():
    for amount in (1.0, -0.1):
        with pytest.raises(ValueError):
            prune_l1_per_layer(model(), amount)
    net = model()
    prune_l1_per_layer(net, 0.0)
    assert np.all(get_mask(net[0]).numpy() == 1), "prune_l1_per_layer(model, 0.0) must keep every weight"
