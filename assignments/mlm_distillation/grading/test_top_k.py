"""Task 3: fill-mask top-k (minidl/mlm/evaluate.py: top_k).

No transformer runs here: ``top_k`` is given a stand-in model whose ``masked_lm_logits`` returns fixed
logits computed from the ids it receives, so that this task does not depend on task 2. The stand-in
answers the way the real method does (with ``positions``: (N, V) at the flat positions b·T + t;
without: (B, T, V)), and its logits at a position depend only on that row's real tokens and the
position, not on the padding or on the other rows of the batch. It also gives the special tokens
the largest logits, so that a special wins unless it is excluded."""
import numpy as np

import minidl as md
from minidl.assignment.checks import check_close, fixed
from minidl.mlm import build_vocabulary, top_k
from minidl.mlm.evaluate import _most_probable
from minidl.mlm.tokenizer import CLS, MASK, SPECIALS

WORDS = ["good", "bad", "film", "plot", "great", "the", "was"]
VOCAB = build_vocabulary([WORDS], max_size=None, min_freq=1)
V, NS = len(VOCAB), len(SPECIALS)
TABLE = fixed((53, V), seed=11, scale=3.0)
TABLE[:, :NS] += 10.0                                   # the specials would win if they were not excluded


def _numpy(x):
    if x is None:
        return None
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


def row_logits(row):
    """(T, V) logits of one row of ids: a function of its real (non-[PAD]) tokens and the position."""
    row = np.asarray(row, dtype=np.int64)
    key = int(np.sum((np.arange(len(row)) + 1) * row * (row != VOCAB.pad_id)))
    return TABLE[(key + 7 * np.arange(len(row))) % len(TABLE)]


class FakeModel:
    """Stands in for a TransformerClassifier with the MLM head; records what it was given."""

    def __init__(self):
        self.calls = []

    def masked_lm_logits(self, ids, mask, positions=None):
        ids, mask, positions = _numpy(ids), _numpy(mask), _numpy(positions)
        self.calls.append((ids, mask, positions))
        logits = np.stack([row_logits(row) for row in ids])           # (B, T, V)
        if positions is not None:
            logits = logits.reshape(-1, V)[np.asarray(positions, dtype=np.int64)]
        return md.tensor(logits, dtype="float64")


def reference(tokens, k):
    """One (ids, probabilities) pair per [MASK] of ``tokens``: the softmax over the ordinary tokens."""
    row = np.concatenate([[VOCAB[CLS]], VOCAB.encode(tokens)])
    logits = row_logits(row)[row == VOCAB[MASK]][:, NS:]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    best = np.argsort(-p, axis=1, kind="stable")[:, :k]
    return [(b + NS, q) for b, q in zip(best, np.take_along_axis(p, best, axis=1))]


SENTENCES = [["the", "film", "was", MASK, "."],
             [MASK, "plot", "was", MASK],
             ["good"],
             ["the", MASK, "was", "great", MASK, "!", MASK, "unseen"],   # "unseen" and "." "!" are [UNK]
             ["bad", "film", "was", "bad"]]


def _check(sentences, k, **kwargs):
    model = FakeModel()
    got = top_k(model, VOCAB, sentences, k=k, **kwargs)
    what = f"top_k(model, vocab, sentences, k={k}{''.join(f', {a}={b}' for a, b in kwargs.items())})"
    assert len(got) == len(sentences), f"{what}: {len(got)} results for {len(sentences)} sentences; expected one each"
    for i, (tokens, found) in enumerate(zip(sentences, got)):
        want = reference(tokens, k)
        assert len(found) == len(want), (f"{what}: sentence {i} {tokens} has {len(want)} [MASK], got {len(found)} "
                                         f"(ids, probabilities) pairs; expected one per [MASK], in order")
        for m, (pair, (want_ids, want_p)) in enumerate(zip(found, want)):
            ids, p = (np.asarray(x) for x in pair)
            where = f"sentence {i}, [MASK] {m + 1}"
            assert ids.shape == (k,) and p.shape == (k,), (
                f"{what}: {where}: ids {ids.shape} and probabilities {p.shape}, expected ({k},) each")
            assert not np.isin(ids, np.arange(NS)).any(), (
                f"{what}: {where}: predicted the special token(s) "
                f"{[VOCAB.id_to_token[int(j)] for j in ids if j < NS]}; specials must never be predicted")
            assert np.all(np.diff(p) <= 0), f"{what}: {where}: probabilities {p.round(4).tolist()} are not sorted, largest first"
            assert ids.tolist() == want_ids.tolist(), (
                f"{what}: {where}: ids {ids.tolist()} expected {want_ids.tolist()} (the k most probable ordinary "
                f"tokens; [CLS] prepended to the sentence)")
            check_close(f"{what}: {where}: probabilities", p, want_p,
                        "expected: the softmax over the ordinary tokens only (the specials' logits set to -inf)",
                        rtol=1e-6, atol=1e-9)
    return model, got


def test_one_pair_per_mask_in_order():
    _check(SENTENCES, k=3)


def test_k_is_respected():
    _check(SENTENCES, k=1)
    _, got = _check(SENTENCES[:2], k=len(WORDS))
    total = float(np.sum(got[0][0][1]))
    assert abs(total - 1.0) < 1e-6, (f"top_k(k={len(WORDS)}, every ordinary token): the probabilities sum to "
                                     f"{total:.6f}, expected 1 (a softmax over the ordinary tokens)")


def test_the_result_does_not_depend_on_the_batch_size():
    _check(SENTENCES, k=2, batch_size=2)


def test_cls_is_prepended_and_padding_marked():
    model, _ = _check(SENTENCES, k=2, batch_size=3)
    assert model.calls, "top_k never called model.masked_lm_logits"
    wanted = {tuple(np.concatenate([[VOCAB[CLS]], VOCAB.encode(s)]).tolist()): s for s in SENTENCES}
    seen = set()
    for ids, mask, _ in model.calls:
        assert ids.ndim == 2, f"top_k gave masked_lm_logits ids of shape {ids.shape}, expected (B, T)"
        for b, row in enumerate(ids.tolist()):
            real = tuple(row[:len(row) - next((n for n, x in enumerate(reversed(row)) if x != VOCAB.pad_id), 0)])
            assert real in wanted, (f"top_k gave masked_lm_logits the row {row}; expected [CLS] (id {VOCAB[CLS]}) and "
                                    f"then the sentence's ids, padded with [PAD] (id {VOCAB.pad_id})")
            seen.add(real)
            if mask is not None:
                want_mask = np.asarray(row) != VOCAB.pad_id
                assert mask.shape == ids.shape and np.array_equal(np.asarray(mask[b]) != 0, want_mask), (
                    f"top_k: the mask of row {row} is {np.asarray(mask[b]).tolist()}; expected 1 on real tokens, 0 on "
                    f"padding")
    missing = [s for r, s in wanted.items() if MASK in s and r not in seen]
    assert not missing, f"top_k never gave the model the sentence(s) {missing}"


def test_the_k_most_probable_of_many_come_sorted():
    # np.argpartition and torch.topk(sorted=False) find the k best in no particular order (on a handful of
    # tokens argpartition happens to sort them; on many it does not): they must come most probable first
    logits, k = fixed((4, 500), seed=5, scale=4.0), 250
    ids, p = (np.asarray(x) for x in _most_probable(logits.copy(), k))
    what = f"_most_probable(logits (4, 500), k={k})"
    assert ids.shape == (4, k) and p.shape == (4, k), (
        f"{what}: ids {ids.shape} and probabilities {p.shape}, expected (4, {k}) each")
    for n in range(4):
        assert np.all(np.diff(p[n]) <= 0), (
            f"{what}: the probabilities of row {n} are not sorted, largest first (np.argpartition and torch.topk(..., "
            f"sorted=False) leave the k best in no particular order: sort those k)")
        best = set(np.argsort(-logits[n])[:k].tolist())
        assert set(ids[n].tolist()) == best, f"{what}: row {n} holds ids that are not among its {k} largest logits"
    peak = logits.max(axis=1, keepdims=True)
    log_total = peak + np.log(np.exp(logits - peak).sum(axis=1, keepdims=True))
    check_close(f"{what}: probabilities", p, np.exp(np.take_along_axis(logits, ids, axis=1) - log_total),
                "expected: the softmax over the whole row at those ids", rtol=1e-6, atol=1e-12)


def test_sentences_without_mask_give_empty_lists():
    model = FakeModel()
    got = top_k(model, VOCAB, [["good", "film"], ["bad"]], k=3)
    assert [list(x) for x in got] == [[], []], (
        f"top_k on two sentences without [MASK] gave {got}; expected [[], []] (no [MASK], nothing to fill)")


def test_k_below_1_is_refused():
    import pytest

    with pytest.raises(ValueError):
        top_k(FakeModel(), VOCAB, SENTENCES[:1], k=0)
