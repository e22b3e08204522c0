"""Writes train.tsv, dev.tsv and test.tsv in the current folder: the README's "your own data"
example (tests/train/test_own_data.py writes the same triple). Run: python docs/own_data_example.py"""
import os
import sys

from minidl.data import make_reviews

if there := [name for name in ("train.tsv", "dev.tsv", "test.tsv") if os.path.exists(name)]:   # (it wrote over them)
    sys.exit(f"{', '.join(there)} already here: run this in another folder (it writes train.tsv, dev.tsv, test.tsv)")
reviews = make_reviews(900, seed=5, min_length=6, max_length=12, negation_prob=0.0, max_distance=3)
rows = list(zip(reviews.texts, reviews.labels))
with open("train.tsv", "w") as f:               # phrases of the first 600 sentences, column "sentence"
    f.write("sentence\tlabel\n")
    for text, label in rows[:600]:
        words = text.split()
        for phrase in (text, " ".join(words[:len(words) // 2 + 2]), " ".join(words[2:])):
            f.write(f"{phrase}\t{label}\n")
for name, part in (("dev.tsv", rows[600:750]), ("test.tsv", rows[750:])):   # whole sentences, column "content"
    with open(name, "w") as f:
        f.write("content\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in part))
