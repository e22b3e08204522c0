"""The fused attention's array path (NumPy, torch) and torch's CPU kernel: blocks of query rows, attention dropout,
and memory that grows linearly in T. The op's gradient check, backend agreement and torch
oracle are in the op catalogue (cases.py); the Triton kernel's checks in tests/kernels."""
import tracemalloc

import numpy as np
import pytest

import minidl as md
from minidl.autograd.ops import attention
from minidl.gradcheck import gradcheck


def _inputs(device, B=2, h=3, T=37, d=5, seed=0, requires_grad=True):
    rng = np.random.default_rng(seed)
    q, k, v = (md.tensor(rng.standard_normal((B, h, T, d)), device=device, dtype="float64",
                         requires_grad=requires_grad) for _ in range(3))
    mask = np.ones((B, T))
    mask[0, T // 2:] = 0.0                    # a padded sequence
    return q, k, v, mask


def _composed(q, k, v, mask, causal):
    """The definition, written with primitive ops: (B, h, T, T) scores, where, softmax."""
    scores = md.matmul(q, k.transpose(0, 1, 3, 2)) * (1.0 / np.sqrt(q.shape[-1]))
    allowed = attention.allowed_keys(q.xp, q.xp.asarray(mask), causal, q.shape[2])
    return md.matmul(md.softmax(md.where(md.tensor(allowed, device=q.device), scores, attention.MASKED_SCORE),
                                axis=-1), v)


def _assert_fused_equals_composed(q, k, v, mask, causal):
    """The fused op's output and dq, dk, dv equal _composed's to 1e-10, for one random upstream gradient."""
    upstream = np.random.default_rng(1).standard_normal(q.shape)
    results = []
    for attend in (md.scaled_dot_product_attention, _composed):
        for t in (q, k, v):
            t.grad = None
        out = attend(q, k, v, mask, causal)
        out.backward(upstream)
        results.append([out.numpy()] + [t.xp.to_numpy(t.grad) for t in (q, k, v)])
    for name, fused, composed in zip(("out", "dq", "dk", "dv"), *results):
        np.testing.assert_allclose(fused, composed, rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("block_elements", [1 << 22, 2 * 3 * 37 * 5, 1])   # one block; 5 rows; 1 row
@pytest.mark.parametrize("causal", [False, True])
def test_blocks_equal_the_composed_path(device, monkeypatch, causal, block_elements):
    """Output and the three gradients equal the composition to 1e-10, however the rows are
    cut, with a padded sequence and a sequence with no real token at all."""
    monkeypatch.setattr(attention, "BLOCK_ELEMENTS", block_elements)
    q, k, v, mask = _inputs(device)
    mask[1, :] = 0.0                          # queries that see no key attend uniformly, no gradient to s
    _assert_fused_equals_composed(q, k, v, mask, causal)


@pytest.mark.parametrize("causal", [False, True])
def test_torch_cpu_kernel_equals_the_composed_path(causal):
    """On torch CPU tensors the op runs PyTorch's fused attention (the backend's
    ``attention_kernel``): output and gradients equal the composition to 1e-10 in float64. A
    query that may see no key, attention dropout, or kernels.mode("reference") take the array
    path instead."""
    pytest.importorskip("torch")
    from minidl import kernels

    q, k, v, mask = _inputs("torch")
    mask[1, 5:9] = 0.0                         # a hole inside a sequence too
    _assert_fused_equals_composed(q, k, v, mask, causal)

    def path(mask, dropout=0.0):
        return md.scaled_dot_product_attention(q, k, v, mask, causal, dropout=dropout)._ctx.backend_kernel

    assert path(mask) and path(None)
    no_key = mask.copy()
    no_key[1, :] = 0.0
    assert not path(no_key) and not path(mask, dropout=0.1)
    if causal:
        first_padded = mask.copy()
        first_padded[0, 0] = 0.0               # query 0 of sequence 0 sees no key
        assert not path(first_padded)
    with kernels.mode("reference"):
        assert not path(mask)


@pytest.mark.parametrize("block_elements", [1 << 22, 2 * 2 * 9 * 3])
@pytest.mark.parametrize("causal", [False, True])
def test_dropout_gradcheck(device, monkeypatch, causal, block_elements):
    """With a fixed generator the dropout mask is a constant, so finite differences apply;
    the backward regenerates each block's mask from the forward's seed."""
    monkeypatch.setattr(attention, "BLOCK_ELEMENTS", block_elements)
    q, k, v, mask = _inputs(device, B=2, h=2, T=9, d=3)
    xp = q.xp
    mask = md.tensor(mask, device=device, dtype="float64")
    result = gradcheck(lambda q, k, v, mask: md.scaled_dot_product_attention(
        q, k, v, mask, causal, dropout=0.3, generator=xp.new_generator(7)), [q, k, v, mask], eps=1e-5)
    assert result.ok, result


def test_dropout_drops_weights_and_rescales(device):
    """out = (p · keep / (1 − p_drop)) v with the mask the op documents, about p_drop of
    the weights dropped."""
    q, k, v, mask = _inputs(device, requires_grad=False)
    xp = q.xp
    out = md.scaled_dot_product_attention(q, k, v, mask, dropout=0.25, generator=xp.new_generator(3)).numpy()
    seed = int(float(xp.rand((), "float64", xp.new_generator(3)) * 2 ** 52))
    keep = ~xp.to_numpy(attention.dropout_mask(xp, seed, 0, (2, 3, 37, 37), 0.25, "float64")) / 0.75
    p = md.softmax(md.tensor(np.where(mask[:, None, None, :] > 0, (q.numpy() @ k.numpy().swapaxes(-1, -2))
                                      / np.sqrt(5), attention.MASKED_SCORE), dtype="float64"), axis=-1).numpy()
    np.testing.assert_allclose(out, (p * keep) @ v.numpy(), rtol=1e-12, atol=1e-14)
    assert 0.2 < (keep == 0).mean() < 0.3


def _peak_bytes(T, causal):
    q, k, v, mask = _inputs("cpu", B=1, h=2, T=T, d=4, requires_grad=True)
    tracemalloc.start()
    out = md.scaled_dot_product_attention(q, k, v, mask, causal)
    out.backward(np.ones(out.shape))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


@pytest.mark.parametrize("causal", [False, True])
def test_memory_grows_linearly_in_T(monkeypatch, causal):
    """Doubling T from 1,024 to 2,048 doubles the peak memory of a forward and backward, where
    (B, h, T, T) scores would quadruple it: 2 × 2,048² float64 alone are 64 MiB."""
    monkeypatch.setattr(attention, "BLOCK_ELEMENTS", 1 << 16)
    small, large = _peak_bytes(1024, causal), _peak_bytes(2048, causal)
    assert large < 2.5 * small, f"peak {small / 2**20:.1f} MiB at T=1024, {large / 2**20:.1f} MiB at T=2048"
    assert large < 8 * 2**20


def test_one_block_keeps_the_probabilities_and_the_mask_instead_of_recomputing(monkeypatch):
    """Small attention is one block: the backward reuses the forward's p and dropout mask."""
    calls = []
    for name in ("_exponentials", "dropout_mask"):
        fn = getattr(attention, name)
        monkeypatch.setattr(attention, name, lambda *args, name=name, fn=fn: calls.append(name) or fn(*args))
    q, k, v, mask = _inputs("cpu")
    md.scaled_dot_product_attention(q, k, v, mask, dropout=0.1).sum().backward()
    assert calls == ["_exponentials", "dropout_mask"]
    monkeypatch.setattr(attention, "BLOCK_ELEMENTS", 2 * 3 * 37 * 10)          # blocks of 10 rows: 4 blocks
    calls.clear()
    md.scaled_dot_product_attention(q, k, v, mask, dropout=0.1).sum().backward()
    assert calls == ["_exponentials", "dropout_mask"] * 8, "4 blocks forward, 4 recomputed backward"


def test_bad_dropout_is_refused():
    q, k, v, mask = _inputs("cpu")
    with pytest.raises(ValueError, match="dropout is a probability"):
        md.scaled_dot_product_attention(q, k, v, mask, dropout=1.0)
