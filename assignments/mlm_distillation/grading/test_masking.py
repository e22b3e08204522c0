"""Task 1: BERT's masking (minidl/mlm/masking.py: mask_tokens).

The order in which a solution draws its random numbers is its own choice, so these checks do not
compare with the reference draw for draw: they check what must hold for every draw (which positions
may be chosen, what the targets are, what an untouched position shows) and, on a batch of about
25,000 candidate positions, the rates, with tolerances of about 4 to 5 standard deviations."""
import numpy as np
import pytest

from minidl.mlm import build_vocabulary, mask_tokens
from minidl.mlm.tokenizer import CLS, MASK, PAD, SPECIALS, UNK

WORDS = 45   # ordinary tokens: ids 5..49


def vocabulary():
    return build_vocabulary([[f"w{i}" for i in range(WORDS)]], max_size=None, min_freq=1)


VOCAB = vocabulary()
V, NS = len(VOCAB), len(SPECIALS)
PAD_ID, UNK_ID, CLS_ID, MASK_ID = VOCAB[PAD], VOCAB[UNK], VOCAB[CLS], VOCAB[MASK]


def big_batch(rows=500, length=64):
    """(ids, mask, candidate): [CLS] first, ordinary words, some [UNK], padding after each row's length,
    and at the end of some rows ordinary ids that the mask marks as not real (mask 0)."""
    t = np.arange(length)
    b = np.arange(rows)[:, None]
    ids = NS + (b * 31 + t * 17 + (b * t) % 13) % WORDS            # ordinary ids, spread over the vocabulary
    ids[(b * 7 + t * 3) % 19 == 0] = UNK_ID                        # about 1 in 19 positions: [UNK]
    ids[:, 0] = CLS_ID
    lengths = 40 + (np.arange(rows) * 7) % 25                      # 40..64 real positions
    real = t[None, :] < lengths[:, None]
    ids[~real & (b % 2 == 0)] = PAD_ID                             # even rows: [PAD] after the end
    mask = real.astype(np.float32)                                 # odd rows: ordinary ids, but mask 0
    candidate = real & ~np.isin(ids, [PAD_ID, CLS_ID, UNK_ID])
    return ids, mask, candidate


def _run(ids, mask, seed, **kwargs):
    before = np.array(ids, copy=True)
    masked = mask_tokens(ids, mask, VOCAB, np.random.default_rng(seed), **kwargs)
    assert np.array_equal(ids, before), "mask_tokens changed the ids it was given: work on a copy"
    for name in ("inputs", "positions", "targets"):
        assert hasattr(masked, name), f"mask_tokens must return a MaskedBatch (inputs, positions, targets); no {name}"
    inputs, positions, targets = (np.asarray(masked.inputs), np.asarray(masked.positions),
                                  np.asarray(masked.targets))
    assert inputs.shape == ids.shape, f"mask_tokens: inputs has shape {inputs.shape}, expected the ids' {ids.shape}"
    assert positions.ndim == 1 and targets.shape == positions.shape, (
        f"mask_tokens: positions {positions.shape} and targets {targets.shape} must both be (N,)")
    assert positions.size == 0 or np.issubdtype(positions.dtype, np.integer), (
        f"mask_tokens: positions must be integer flat indices b·T + t, got dtype {positions.dtype}")
    assert len(np.unique(positions)) == len(positions), "mask_tokens: a position is chosen twice"
    assert positions.size == 0 or (positions.min() >= 0 and positions.max() < ids.size), (
        f"mask_tokens: positions must be flat indices b·T + t in 0..{ids.size - 1}")
    return inputs, positions.astype(np.int64), targets


def _check_consistent(ids, candidate, inputs, positions, targets, what):
    """What must hold for every draw."""
    assert candidate.flat[positions].all(), (
        f"mask_tokens ({what}): chose position(s) {positions[~candidate.flat[positions]][:5].tolist()} (flat), which "
        f"are [CLS], [PAD], [UNK] or outside the mask; only real positions with an ordinary word may be chosen")
    np.testing.assert_array_equal(targets, ids.flat[positions],
                                  err_msg=f"mask_tokens ({what}): targets must be the original ids at the positions")
    untouched = np.ones(ids.shape, bool)
    untouched.flat[positions] = False
    bad = np.flatnonzero(untouched & (inputs != ids))
    assert bad.size == 0, (f"mask_tokens ({what}): position(s) {bad[:5].tolist()} (flat) were not chosen but their "
                           f"input differs from the original id: only chosen positions may change")
    shown = inputs.flat[positions]
    odd = shown[(shown != MASK_ID) & (shown != targets)]
    assert np.all((odd >= NS) & (odd < V)), (
        f"mask_tokens ({what}): a random replacement must be an ordinary token (ids {NS}..{V - 1}), got "
        f"{sorted(set(odd[(odd < NS) | (odd >= V)].tolist()))[:5]}")


def test_only_real_ordinary_positions_are_chosen_and_targets_are_the_originals():
    ids, mask, candidate = big_batch()
    for seed in (0, 1, 2):
        inputs, positions, targets = _run(ids, mask, seed)
        _check_consistent(ids, candidate, inputs, positions, targets, f"500 × 64 batch, rng seed {seed}")


@pytest.mark.parametrize("rate", [0.15, 0.3])
def test_rates(rate):
    ids, mask, candidate = big_batch()
    n = int(candidate.sum())
    inputs, positions, targets = _run(ids, mask, 0, rate=rate)
    _check_consistent(ids, candidate, inputs, positions, targets, f"rate {rate}")
    chosen = len(positions) / n
    tol = 5 * np.sqrt(rate * (1 - rate) / n)
    assert abs(chosen - rate) < tol, (f"mask_tokens(rate={rate}): chose {chosen:.2%} of the {n} candidate positions, "
                                      f"expected {rate:.0%} ± {tol:.1%}: each candidate is chosen with probability rate")
    shown = inputs.flat[positions]
    m = len(positions)
    shares = {"[MASK]": np.mean(shown == MASK_ID),
              "unchanged": np.mean(shown == targets),
              "a random other token": np.mean((shown != MASK_ID) & (shown != targets))}
    # a random replacement equals the original with probability 1 / (number of ordinary tokens)
    want = {"[MASK]": 0.8, "unchanged": 0.1 + 0.1 / WORDS, "a random other token": 0.1 * (1 - 1 / WORDS)}
    for name, got in shares.items():
        tol = 5 * np.sqrt(want[name] * (1 - want[name]) / m)
        assert abs(got - want[name]) < tol, (
            f"mask_tokens(rate={rate}): of the {m} chosen positions {got:.1%} show {name}, expected "
            f"{want[name]:.1%} ± {tol:.1%} (80 % [MASK], 10 % a random ordinary token, 10 % unchanged)")


def test_random_replacements_cover_the_ordinary_tokens():
    # about 1,200 random replacements, about 27 per ordinary token: a uniform draw misses none of them
    # (each with probability about e^-27), while a draw that leaves out the first or the last id never shows it
    ids, mask, candidate = big_batch()
    inputs, positions, targets = _run(ids, mask, 3, rate=0.5)
    shown = inputs.flat[positions]
    replaced = shown[(shown != MASK_ID) & (shown != targets)]
    seen = set(replaced.tolist())
    missing = sorted(set(range(NS, V)) - seen)
    assert not missing, (
        f"mask_tokens: {len(replaced)} random replacements never drew the ordinary token(s) {missing[:8]} (the "
        f"ordinary ids are {NS}..{V - 1}, the last one included); draw each uniformly from all of them, e.g. "
        f"rng.integers({NS}, len(vocab)), whose upper bound is excluded")
    extra = sorted(seen - set(range(NS, V)))
    assert not extra, (f"mask_tokens: random replacements drew {extra[:8]}, which are not ordinary tokens "
                       f"({NS}..{V - 1})")


def test_at_least_one_position_is_chosen_when_possible():
    ids = np.array([[CLS_ID, 7, UNK_ID, 9, PAD_ID]])
    mask = np.array([[1, 1, 1, 1, 0]], dtype=np.float32)
    candidate = np.array([[False, True, False, True, False]])
    for seed in range(20):
        inputs, positions, targets = _run(ids, mask, seed, rate=0.01)
        assert len(positions) >= 1, (f"mask_tokens(rate=0.01) on [[CLS], 7, [UNK], 9, [PAD]] (rng seed {seed}) chose "
                                     f"no position; at least one must be chosen whenever there is a candidate")
        _check_consistent(ids, candidate, inputs, positions, targets, f"one short row, rng seed {seed}")
    inputs, positions, targets = _run(np.array([[CLS_ID, 7]]), np.ones((1, 2)), 0, rate=0.01)
    assert positions.tolist() == [1] and targets.tolist() == [7], (
        f"mask_tokens on [[CLS], 7]: chose {positions.tolist()} with targets {targets.tolist()}, expected [1] and [7] "
        f"(the only candidate)")


def test_a_batch_without_candidates_chooses_nothing():
    ids = np.array([[CLS_ID, UNK_ID, PAD_ID], [CLS_ID, PAD_ID, PAD_ID]])
    mask = np.array([[1, 1, 0], [1, 0, 0]], dtype=np.float32)
    inputs, positions, targets = _run(ids, mask, 0)
    assert len(positions) == 0 and len(targets) == 0, (
        f"mask_tokens on a batch of [CLS], [UNK] and [PAD] only chose {positions.tolist()}; expected no position")
    np.testing.assert_array_equal(inputs, ids, err_msg="mask_tokens: nothing chosen, so the inputs are the ids")


@pytest.mark.parametrize("rate", [0.0, 1.0, 1.5, -0.1])
def test_a_rate_outside_0_1_is_refused(rate):
    ids = np.array([[CLS_ID, 7, 8]])
    with pytest.raises(ValueError):
        mask_tokens(ids, np.ones_like(ids), VOCAB, np.random.default_rng(0), rate=rate)
