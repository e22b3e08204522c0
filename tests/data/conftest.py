"""Fixtures that GENERATE a small fake IMDB data set (random made-up words, never real reviews)."""
import random
import string
import tarfile
from pathlib import Path

import pytest

PER_CLASS = 6   # reviews per (split, class) in the fake data set
UNSUP = 8       # unlabelled reviews


def fake_words(rng, n):
    return ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(n)]


def fake_review(rng, vocabulary):
    """A few sentences of made-up words, with the <br /> tags real reviews have."""
    sentences = [" ".join(rng.choices(vocabulary, k=rng.randint(3, 12))).capitalize() + "."
                 for _ in range(rng.randint(1, 4))]
    return "<br /><br />".join(sentences)


def write_fake_imdb(root, per_class=PER_CLASS, unsup=UNSUP, seed=0):
    """``root/aclImdb`` in the official layout, plus the extra files the real archive has."""
    rng = random.Random(seed)
    vocabulary = fake_words(rng, 200)
    folder = Path(root) / "aclImdb"
    for split in ("train", "test"):
        for label, ratings in (("pos", (7, 8, 9, 10)), ("neg", (1, 2, 3, 4))):
            directory = folder / split / label
            directory.mkdir(parents=True)
            for review_id in range(per_class):
                (directory / f"{review_id}_{rng.choice(ratings)}.txt").write_text(fake_review(rng, vocabulary))
        (folder / split / "labeledBow.feat").write_text("0 0:1\n")
        (folder / split / "urls_pos.txt").write_text("http://example.invalid/\n")
    (folder / "train" / "unsup").mkdir()
    for review_id in range(unsup):
        (folder / "train" / "unsup" / f"{review_id}_0.txt").write_text(fake_review(rng, vocabulary))
    (folder / "imdb.vocab").write_text("\n".join(vocabulary))
    return folder


def write_archive(folder, archive, shuffle_seed=0):
    """``folder`` as a .tar.gz, its files added in a shuffled order (the loader must not care)."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    random.Random(shuffle_seed).shuffle(files)
    Path(archive).parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for path in files:
            tar.add(path, arcname=str(path.relative_to(Path(folder).parent)))
    return Path(archive)


def write_kaggle_csv(path, rows=20, seed=0, header=("review", "sentiment")):
    import csv

    rng = random.Random(seed)
    vocabulary = fake_words(rng, 100)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for i in range(rows):
            writer.writerow([fake_review(rng, vocabulary), "positive" if i % 2 else "negative"])
    return Path(path)


@pytest.fixture
def imdb_folder(tmp_path):
    """A folder holding a fake ``aclImdb/``."""
    write_fake_imdb(tmp_path / "extracted")
    return tmp_path / "extracted"


@pytest.fixture
def imdb_archive(imdb_folder, tmp_path):
    """A fake ``aclImdb_v1.tar.gz`` (alone in its folder) built from ``imdb_folder``."""
    return write_archive(imdb_folder / "aclImdb", tmp_path / "archive" / "aclImdb_v1.tar.gz")


@pytest.fixture
def isolated_data_env(tmp_path, monkeypatch):
    """No ``$MINIDL_DATA`` and an empty home, so that only the fake data can be found."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("MINIDL_DATA", raising=False)
    return home
