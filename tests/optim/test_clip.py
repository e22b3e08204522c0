"""clip_grad_norm_ against torch.nn.utils.clip_grad_norm_."""
import numpy as np
import pytest
import torch

from minidl import nn
from minidl.optim import clip_grad_norm_


@pytest.mark.parametrize("max_norm", [0.5, 100.0])  # clipped, and left alone
def test_matches_torch(device, rng, max_norm):
    grads = [rng.standard_normal(s) for s in [(3, 4), (4,), (2, 5)]]
    ours = [nn.Parameter(np.zeros(g.shape), device=device, dtype="float64") for g in grads]
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = p.xp.asarray(g, "float64"), torch.tensor(g)
    ours.append(nn.Parameter(np.zeros(2)))  # no gradient: ignored
    total = clip_grad_norm_(ours, max_norm)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm)
    assert isinstance(total, float)
    assert total == pytest.approx(expected.item(), rel=1e-12)
    assert total == pytest.approx(np.sqrt(sum((g ** 2).sum() for g in grads)), rel=1e-12)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.xp.to_numpy(p.grad), q.grad.numpy(), rtol=1e-12)


def test_gradients_are_replaced_not_scaled_in_place(rng):
    shared = rng.standard_normal(4)
    a, b = nn.Parameter(np.zeros(4), dtype="float64"), nn.Parameter(np.zeros(4), dtype="float64")
    a.grad = b.grad = shared  # the engine may share one gradient array between two tensors
    original = shared.copy()
    total = clip_grad_norm_([a, b], max_norm=0.1)
    assert np.array_equal(shared, original)
    assert total == pytest.approx(np.sqrt(2) * np.linalg.norm(original))
    assert np.linalg.norm(np.concatenate([a.grad, b.grad])) == pytest.approx(0.1, rel=1e-5)
