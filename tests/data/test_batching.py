"""encode_dataset and batches: padding, masks, lengths, shuffling by (seed, epoch), bucketing."""
import logging

import numpy as np
import pytest

import minidl as md
from minidl.data.batching import Batch, batches, encode_dataset, num_batches
from minidl.data.dataset import TextDataset
from minidl.data.synthetic import make_reviews
from minidl.data.text import Tokenizer
from minidl.data.vocab import Vocabulary

TOKENIZER = Tokenizer()


def encoded_toy(**kwargs):
    texts = ["good movie", "a", "bad plot was bad", "fine", "<br />", "the plot was good fun yes", "dull dull"]
    data = TextDataset(texts, [1, 0, 0, 1, 0, 1, 0], ["neg", "pos"], name="toy")
    vocab = Vocabulary.build(TOKENIZER.tokenize_all(texts))
    return data, vocab, encode_dataset(data, TOKENIZER, vocab, **kwargs)


def all_batches(encoded, **kwargs):
    return list(batches(encoded, **kwargs))


def test_empty_reviews_are_dropped_counted_and_reported(caplog):
    with caplog.at_level(logging.WARNING, logger="minidl.data.batching"):
        data, vocab, encoded = encoded_toy()
    assert len(encoded) == 5 and encoded.dropped.tolist() == [1, 4]
    assert "toy: dropped 2 of 7 reviews that are empty after cleaning (indices 1, 4)" in caplog.text
    caplog.clear()
    data.info.update(source="toy.csv", lines=[2, 3, 5, 6, 7, 9, 10])   # a file's: its line numbers
    with caplog.at_level(logging.WARNING, logger="minidl.data.batching"):
        encode_dataset(data.subset(np.array([4, 1, 0])), TOKENIZER, vocab)
    assert "dropped 2 of 3 reviews that are empty after cleaning (lines of toy.csv: 7, 3)" in caplog.text
    assert encoded.index.tolist() == [0, 2, 3, 5, 6]
    assert encoded.labels.tolist() == [1, 0, 1, 1, 0] and encoded.labels.dtype == np.int64
    assert encoded.lengths.tolist() == [2, 4, 1, 6, 2]
    assert vocab.decode(encoded.ids[1]) == ["bad", "plot", "was", "bad"]
    assert all(x.dtype == np.int64 for x in encoded.ids)


def test_max_length_keeps_the_first_words():
    _, vocab, encoded = encoded_toy(max_length=3)
    assert encoded.lengths.tolist() == [2, 3, 1, 3, 2]
    assert vocab.decode(encoded.ids[3]) == ["the", "plot", "was"]


def test_padding_mask_and_lengths(device):
    _, vocab, encoded = encoded_toy()
    (batch,) = all_batches(encoded, batch_size=8, shuffle=False, device=device)
    assert isinstance(batch, Batch) and len(batch) == 5
    expected_device = md.tensor([0], device=device).device
    for t in (batch.ids, batch.mask, batch.lengths, batch.labels):
        assert t.device == expected_device
    assert batch.ids.shape == batch.mask.shape == (5, 6)
    assert batch.ids.dtype == batch.lengths.dtype == batch.labels.dtype == "int64"
    assert batch.mask.dtype == md.get_default_dtype()
    ids, mask, lengths = batch.ids.numpy(), batch.mask.numpy(), batch.lengths.numpy()
    assert lengths.tolist() == [2, 4, 1, 6, 2] and batch.index.tolist() == [0, 2, 3, 5, 6]
    for b in range(5):
        assert ids[b, :lengths[b]].tolist() == encoded.ids[b].tolist()
        assert (ids[b, lengths[b]:] == vocab.pad_id).all()
        assert mask[b].tolist() == [1.0] * lengths[b] + [0.0] * (6 - lengths[b])
    # the last real word, where a recurrent model reads its final state
    assert ids[np.arange(5), lengths - 1].tolist() == [x[-1] for x in encoded.ids]
    assert batch.labels.numpy().tolist() == encoded.labels.tolist()


def test_mask_follows_the_default_dtype():
    _, _, encoded = encoded_toy()
    with md.default_dtype("float64"):
        batch = next(batches(encoded, 2))
    assert batch.mask.dtype == "float64"


def order(encoded, **kwargs):
    return np.concatenate([b.index for b in batches(encoded, **kwargs)]).tolist()


@pytest.fixture(scope="module")
def synthetic():
    data = make_reviews(1000, seed=3)
    vocab = Vocabulary.build(TOKENIZER.tokenize_all(data.texts))
    return encode_dataset(data, TOKENIZER, vocab)


@pytest.mark.parametrize("bucket", [False, True])
def test_shuffling_is_fixed_by_seed_and_epoch(synthetic, bucket):
    first = order(synthetic, batch_size=32, seed=0, epoch=0, bucket=bucket)
    assert first == order(synthetic, batch_size=32, seed=0, epoch=0, bucket=bucket)
    assert first != order(synthetic, batch_size=32, seed=0, epoch=1, bucket=bucket)
    assert first != order(synthetic, batch_size=32, seed=1, epoch=0, bucket=bucket)
    assert first != sorted(first)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("bucket", [False, True])
def test_every_review_once_per_epoch(synthetic, shuffle, bucket):
    seen = order(synthetic, batch_size=48, shuffle=shuffle, bucket=bucket, epoch=2)
    assert sorted(seen) == synthetic.index.tolist()
    sizes = [len(b) for b in batches(synthetic, 48, shuffle=shuffle, bucket=bucket)]
    assert len(sizes) == num_batches(synthetic, 48) == 21 and sum(sizes) == 1000
    assert sorted(sizes)[1:] == [48] * 20


def test_no_shuffle_keeps_the_dataset_order(synthetic):
    assert order(synthetic, batch_size=100, shuffle=False) == list(range(1000))


def test_drop_last_skips_only_the_short_batch(synthetic):
    for bucket in (False, True):
        sizes = [len(b) for b in batches(synthetic, 48, bucket=bucket, drop_last=True)]
        assert sizes == [48] * 20 == [48] * num_batches(synthetic, 48, drop_last=True)
    assert num_batches(96, 48, drop_last=True) == num_batches(96, 48) == 2


def padding_fraction(encoded, **kwargs):
    cells = real = 0
    for b in batches(encoded, **kwargs):
        cells += b.ids.shape[0] * b.ids.shape[1]
        real += int(b.lengths.numpy().sum())
    return 1 - real / cells


def test_bucketing_reduces_padding(synthetic):
    plain = padding_fraction(synthetic, batch_size=32, seed=0)
    bucketed = padding_fraction(synthetic, batch_size=32, seed=0, bucket=True)
    print(f"padding: {plain:.1%} of the cells without bucketing, {bucketed:.1%} with")
    # lengths uniform on 8..30: about 40 % padding at random, a few % once sorted in chunks
    assert plain > 0.3 and bucketed < 0.1
    sorted_all = padding_fraction(synthetic, batch_size=32, shuffle=False, bucket=True)
    assert sorted_all <= bucketed


def test_bucketed_batches_arrive_in_shuffled_length_order(synthetic):
    longest = [int(b.lengths.numpy().max()) for b in batches(synthetic, 32, bucket=True)]
    assert longest != sorted(longest)


def test_bad_batch_size():
    _, _, encoded = encoded_toy()
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        next(batches(encoded, 0))
    with pytest.raises(ValueError, match="max_length"):
        encoded_toy(max_length=0)


def test_word_dropout_hides_only_real_words_the_same_way_for_the_same_seed_and_epoch():
    data = make_reviews(200, seed=0)
    vocab = Vocabulary.build(TOKENIZER.tokenize_all(data.texts))
    encoded = encode_dataset(data, TOKENIZER, vocab)
    plain = all_batches(encoded, batch_size=16, seed=3, epoch=1)
    hidden = all_batches(encoded, batch_size=16, seed=3, epoch=1, word_dropout=0.25, unk_id=vocab.unk_id)
    again = all_batches(encoded, batch_size=16, seed=3, epoch=1, word_dropout=0.25, unk_id=vocab.unk_id)
    other = all_batches(encoded, batch_size=16, seed=3, epoch=2, word_dropout=0.25, unk_id=vocab.unk_id)
    changed = real = 0
    for a, b, c in zip(plain, hidden, again):
        ids, shown, mask = a.ids.numpy(), b.ids.numpy(), a.mask.numpy() > 0
        np.testing.assert_array_equal(shown, c.ids.numpy())                 # a resumed epoch sees the same words
        np.testing.assert_array_equal(b.index, a.index)                     # same reviews, same order
        np.testing.assert_array_equal(shown[~mask], ids[~mask])             # padding untouched
        assert set(np.unique(shown[shown != ids])) <= {vocab.unk_id}        # a hidden word reads <unk>
        changed += int((shown != ids)[mask & (ids != vocab.unk_id)].sum())
        real += int((mask & (ids != vocab.unk_id)).sum())
    assert 0.2 < changed / real < 0.3
    assert any((b.ids.numpy() != c.ids.numpy()).any() for b, c in zip(hidden, other) if b.ids.shape == c.ids.shape)
