"""Task 6: from per-word sub-scores to a review's logits: TokenMLP (sum) and SoftmaxWeighted (a softmax
over the review's words) in minidl/models/token_mlp.py. Forward only: no gradient check here, so that
this task does not depend on task 2 (matmul's backward)."""
import numpy as np

from minidl.assignment.checks import check_close, check_outputs, expected, fixed
from minidl.models import SoftmaxWeighted, TokenMLP

VOCAB, EMBED = 12, 5
IDS = np.array([[3, 7, 1, 9, 4, 2], [5, 11, 8, 0, 0, 0]])  # the second review: 3 words, then padding (id 0)
CONTEXT = "ids (2, 6) with the second review padded after 3 words, float64 weights"


def build(cls):
    model = cls(VOCAB, hidden=[4, 3], embed_dim=EMBED, dtype="float64")
    for seed, (_, p) in enumerate(sorted(model.named_parameters())):
        p.data[...] = fixed(p.shape, seed=seed, scale=0.7)
    return model.eval()


def batch(ids):
    import minidl as md

    mask = (ids != 0).astype(np.float64)
    return md.tensor(ids), md.tensor(mask, dtype="float64"), md.tensor(mask.sum(1).astype(np.int64))


def case_token_mlp():
    out = build(TokenMLP)(*batch(IDS))
    return {"logits": out.logits, "token_scores": out.token_scores}


def case_softmax_weighted():
    out = build(SoftmaxWeighted)(*batch(IDS))
    return {"logits": out.logits, "token_scores": out.token_scores, "token_weights": out.token_weights}


def _padded(cls):
    """The same reviews with two more columns of padding: the logits must not change."""
    model = build(cls)
    return model(*batch(IDS)).logits, model(*batch(np.pad(IDS, ((0, 0), (0, 2))))).logits


def test_token_mlp_forward():
    check_outputs("TokenMLP.forward", case_token_mlp(), expected(__file__, "token_mlp"), CONTEXT)


def test_token_mlp_ignores_padding():
    short, long = _padded(TokenMLP)
    check_close("TokenMLP.forward: logits with 2 more padding words", long, short,
                "expected: the logits without them; padding must not count")


def test_softmax_weighted_forward():
    check_outputs("SoftmaxWeighted.forward", case_softmax_weighted(), expected(__file__, "softmax_weighted"), CONTEXT)


def test_softmax_weighted_ignores_padding():
    short, long = _padded(SoftmaxWeighted)
    check_close("SoftmaxWeighted.forward: logits with 2 more padding words", long, short,
                "expected: the logits without them; padding must get weight 0")
