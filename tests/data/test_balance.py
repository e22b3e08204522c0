"""Over-, under- and re-sampling to balance the classes: sizes, seeding, originals kept."""
import numpy as np
import pytest

from minidl.data.balance import oversample, rebalance, undersample
from minidl.data.dataset import TextDataset
from minidl.data.errors import DataWarning


def make(counts=(10, 5, 3)):
    labels = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(1).shuffle(labels)
    texts = [f"text {i}" for i in range(len(labels))]
    return TextDataset(texts, labels, ["a", "b", "c"][:len(counts)], "toy", {"ids": list(range(len(labels)))})


def test_oversample_repeats_small_classes_up_to_the_largest():
    ds = make()
    out = oversample(ds, seed=0)
    assert out.class_counts() == {"a": 10, "b": 10, "c": 10}
    assert set(ds.texts) == set(out.texts)                  # every original is kept...
    assert sorted(out.info["ids"]) == out.info["ids"]        # ...in the dataset's order
    assert all(text == f"text {i}" for text, i in zip(out.texts, out.info["ids"]))  # info follows
    assert oversample(ds, target=12).class_counts() == {"a": 12, "b": 12, "c": 12}
    assert oversample(ds, target=4).class_counts() == {"a": 10, "b": 5, "c": 4}  # never removes
    assert out.name == "toy/oversampled"


def test_undersample_cuts_big_classes_down_to_the_smallest():
    ds = make()
    out = undersample(ds, seed=0)
    assert out.class_counts() == {"a": 3, "b": 3, "c": 3}
    assert len(set(out.texts)) == 9 and set(out.texts) <= set(ds.texts)  # no copies
    assert undersample(ds, target=6).class_counts() == {"a": 6, "b": 5, "c": 3}  # never adds


def test_rebalance_gives_exactly_target_per_class():
    ds = make()
    out = rebalance(ds, 5, seed=3)
    assert out.class_counts() == {"a": 5, "b": 5, "c": 5}
    b_and_c = {t for t, y in zip(ds.texts, ds.labels) if y > 0}
    assert b_and_c <= set(out.texts)                          # small classes keep all originals
    a_texts = [t for t, y in zip(out.texts, out.labels) if y == 0]
    assert len(set(a_texts)) == 5                              # the big one is cut without copies


def test_seeded_and_deterministic():
    ds = make()
    for fn, args in ((oversample, ()), (undersample, ()), (rebalance, (7,))):
        assert fn(ds, *args, seed=5).texts == fn(ds, *args, seed=5).texts
        assert fn(ds, *args, seed=5).texts != fn(ds, *args, seed=6).texts


def test_empty_class_and_bad_target():
    ds = TextDataset(["x", "y", "z"], [0, 0, 2], ["a", "b", "c"])
    with pytest.warns(DataWarning, match=r"\['b'\] have no examples"):
        assert oversample(ds).class_counts() == {"a": 2, "b": 0, "c": 2}
    assert undersample(ds).class_counts() == {"a": 1, "b": 0, "c": 1}
    for fn in (oversample, undersample, rebalance):
        with pytest.raises(ValueError, match="positive int"):
            fn(ds, 0)
