"""Vocabulary: built from the training split only, deterministic ids, saved with a model."""
import json
import os

import numpy as np
import pytest

import minidl as md
from minidl.data.text import Tokenizer
from minidl.data.vocab import TextEncodingError, Vocabulary, VocabularyError

TRAIN = [["the", "movie", "was", "good"], ["the", "plot", "was", "bad"], ["the", "movie", "bored", "me"]]


def test_specials_first_then_most_frequent_with_alphabetical_ties():
    vocab = Vocabulary.build(TRAIN)
    assert vocab.id_to_token == ["<pad>", "<unk>", "the", "movie", "was", "bad", "bored", "good", "me", "plot"]
    assert (vocab.pad_id, vocab.unk_id) == (0, 1)
    assert (vocab.pad_token, vocab.unk_token) == ("<pad>", "<unk>")
    assert all(vocab.token_to_id[t] == i for i, t in enumerate(vocab.id_to_token))
    assert len(vocab) == 10


def test_same_words_in_any_order_give_the_same_ids():
    shuffled = [list(reversed(tokens)) for tokens in reversed(TRAIN)]
    assert Vocabulary.build(shuffled) == Vocabulary.build(TRAIN)


def test_a_word_seen_only_in_the_test_split_is_unknown():
    vocab = Vocabulary.build(TRAIN)
    test = ["the", "movie", "was", "superb"]
    ids = vocab.encode(test)
    assert ids.dtype == np.int64 and ids.shape == (4,)
    assert ids[-1] == vocab.unk_id and "superb" not in vocab
    assert vocab.decode(ids) == ["the", "movie", "was", "<unk>"]
    assert vocab.coverage([test]) == pytest.approx(0.75)
    assert vocab.coverage(TRAIN) == 1.0


def test_max_size_counts_the_specials_and_keeps_the_most_frequent():
    vocab = Vocabulary.build(TRAIN, max_size=4)
    assert vocab.id_to_token == ["<pad>", "<unk>", "the", "movie"]
    assert vocab.config["max_size"] == 4
    with pytest.raises(ValueError, match="max_size"):
        Vocabulary.build(TRAIN, max_size=2)


def test_min_freq_drops_rare_words():
    vocab = Vocabulary.build(TRAIN, min_freq=2)
    assert vocab.id_to_token == ["<pad>", "<unk>", "the", "movie", "was"]
    assert vocab["good"] == vocab.unk_id and vocab["the"] == 2


def test_custom_specials_and_special_strings_in_the_data():
    vocab = Vocabulary.build([["<pad>", "hi", "hi"], ["<cls>"]], specials=("<pad>", "<unk>", "<cls>"))
    assert vocab.id_to_token == ["<pad>", "<unk>", "<cls>", "hi"]


def test_decode_accepts_tensors_and_rejects_unknown_ids(device):
    vocab = Vocabulary.build(TRAIN)
    assert vocab.decode(md.tensor([2, 3], device=device)) == ["the", "movie"]
    with pytest.raises(ValueError, match="outside this vocabulary of 10"):
        vocab.decode([2, 10])


def test_save_load_round_trip_is_json_next_to_a_tokenizer(tmp_path):
    tokenizer = Tokenizer(max_length=100)
    vocab = Vocabulary.build([tokenizer(t) for t in ["A fine film.", "A dull film!"]], min_freq=1)
    path = vocab.save(tmp_path / "vocab.json")
    assert os.listdir(tmp_path) == ["vocab.json"]  # no temporary file left behind
    with open(path, encoding="utf-8") as f:
        saved = json.load(f)
    assert saved["tokens"][:3] == ["<pad>", "<unk>", "film"] and saved["specials"] == ["<pad>", "<unk>"]
    loaded = Vocabulary.load(path)
    assert loaded == vocab and loaded.config == vocab.config
    # what a checkpoint stores: both as plain JSON
    bundle = json.loads(json.dumps({"tokenizer": tokenizer.to_dict(), "vocab": vocab.to_dict()}))
    again = Vocabulary.from_dict(bundle["vocab"])
    assert again.encode_text("FINE <br/> film", Tokenizer.from_dict(bundle["tokenizer"])).tolist() == [
        vocab["fine"], vocab["film"]]


def test_missing_and_corrupted_files_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no vocabulary at"):
        Vocabulary.load(tmp_path / "nope.json")
    path = Vocabulary.build(TRAIN).save(tmp_path / "vocab.json")
    text = open(path, encoding="utf-8").read()
    with open(path, "w", encoding="utf-8") as f:
        f.write(text[: len(text) // 2])  # an interrupted copy
    with pytest.raises(VocabularyError, match="corrupted") as info:
        Vocabulary.load(path)
    assert isinstance(info.value, md.MinidlError) and isinstance(info.value, ValueError)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"weights": [1, 2]}, f)
    with pytest.raises(VocabularyError, match="not a minidl vocabulary"):
        Vocabulary.load(path)
    broken = Vocabulary.build(TRAIN).to_dict()
    broken["tokens"] = ["<pad>", "<unk>", "the", "the"]
    with pytest.raises(VocabularyError, match="unique"):
        Vocabulary.from_dict(broken)


def test_encode_text_of_an_empty_review_names_the_cleaning():
    vocab = Vocabulary.build(TRAIN)
    with pytest.raises(TextEncodingError) as info:
        vocab.encode_text("<br /> 10/10 !! a", Tokenizer())
    assert str(info.value) == ("the text is empty after cleaning (the cleaning keeps words of two or more "
                               "letters): nothing to classify")
    assert isinstance(info.value, md.MinidlError) and isinstance(info.value, ValueError)
    with pytest.raises(TextEncodingError, match=r"keeps words of one or more letters or digits\)"):   # it said
        vocab.encode_text("<br /> !!", Tokenizer(min_word_length=1, keep_digits=True))              # "letters"


def test_encode_text_with_no_known_word_says_so():
    vocab = Vocabulary.build(TRAIN)
    with pytest.raises(TextEncodingError) as info:
        vocab.encode_text("Ein wirklich schöner Film, wirklich", Tokenizer())
    assert str(info.value) == ("none of the words ('ein', 'wirklich', 'schöner', 'film') are in the model's "
                               "vocabulary of 10 words; try a longer text in the language the model was trained on")
    many = " ".join(f"word{c}" for c in "abcdefg").replace("word", "xy")
    with pytest.raises(TextEncodingError, match=r"'xye', \.\.\.\) are in"):
        vocab.encode_text(many, Tokenizer())


def test_encode_text_keeps_unknown_words_among_known_ones():
    vocab = Vocabulary.build(TRAIN)
    ids = vocab.encode_text("The movie was superb", Tokenizer())
    assert ids.dtype == np.int64 and ids.tolist() == [2, 3, 4, vocab.unk_id]
    assert vocab.encode_text("The movie was superb", Tokenizer(), max_length=2).tolist() == [2, 3]
