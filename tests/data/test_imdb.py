"""IMDB: finding the data, reading the folder / archive / Kaggle CSV, splits, errors, download.

Everything runs on a small GENERATED fake data set (see conftest.py) except
``test_the_real_archive``, which runs only where the real archive can be found.
"""
import argparse
import contextlib
import errno
import functools
import hashlib
import http.server
import os
import threading
import time
import numpy as np
import pytest

from minidl import MinidlError
from minidl.cli import main
from minidl.data import cli as data_cli
from minidl.data import imdb
from minidl.data.errors import CorruptDataError, DataFormatError, DataNotFoundError, DataWarning, DownloadError
from minidl.data.imdb import download_imdb, find_imdb, load_imdb, load_imdb_unlabelled
from minidl.data.text import Tokenizer
from minidl.train.prepare import split_by_movie

from .conftest import PER_CLASS, UNSUP, write_archive, write_fake_imdb, write_kaggle_csv


# ------------------------------------------------------------------------------------------- finding

def test_find_accepts_every_form(imdb_folder, imdb_archive, tmp_path):
    assert find_imdb(imdb_folder) == imdb_folder / "aclImdb"            # a folder holding aclImdb/
    assert find_imdb(imdb_folder / "aclImdb") == imdb_folder / "aclImdb"  # aclImdb/ itself
    assert find_imdb(imdb_archive.parent) == imdb_archive               # a folder holding the archive
    assert find_imdb(imdb_archive) == imdb_archive                      # the archive itself
    (tmp_path / "kaggle").mkdir()
    csv = write_kaggle_csv(tmp_path / "kaggle" / "IMDB Dataset.csv")
    assert find_imdb(csv.parent) == csv and find_imdb(csv) == csv


def test_find_order_env_then_cache(imdb_archive, imdb_folder, isolated_data_env, monkeypatch):
    cache = isolated_data_env / ".cache" / "minidl"
    cache.mkdir(parents=True)
    (cache / "aclImdb_v1.tar.gz").write_bytes(imdb_archive.read_bytes())
    assert find_imdb() == cache / "aclImdb_v1.tar.gz"
    monkeypatch.setenv("MINIDL_DATA", str(imdb_folder))
    assert find_imdb() == imdb_folder / "aclImdb"
    monkeypatch.setenv("MINIDL_DATA", str(imdb_folder / "empty"))  # a wrong $MINIDL_DATA falls through
    assert find_imdb() == cache / "aclImdb_v1.tar.gz"


def test_not_found_lists_every_place_and_how_to_get_the_data(isolated_data_env, tmp_path, monkeypatch):
    with pytest.raises(DataNotFoundError) as err:
        find_imdb()
    message = str(err.value)
    assert str(isolated_data_env / ".cache" / "minidl") in message and "$MINIDL_DATA is not set" in message
    assert "minidl data download" in message and "download_imdb()" in message and "MINIDL_DATA" in message
    assert "\n" not in message, "one line, as every refusal (it was six: a list of places and of ways)"
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, MinidlError)

    monkeypatch.setenv("MINIDL_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError, match=f"{tmp_path} \\(\\$MINIDL_DATA\\): no aclImdb/"):
        load_imdb()
    with pytest.raises(DataNotFoundError) as err:
        load_imdb(tmp_path / "typo")  # an explicit path is the only place looked at
    assert f"{tmp_path / 'typo'} (the path given): does not exist" in str(err.value)
    assert "default folder" not in str(err.value)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataNotFoundError, match="not a .tar.gz archive"):
        find_imdb(tmp_path / "notes.txt")


# ------------------------------------------------------------------------------------------- reading

def test_folder_and_archive_give_the_same_datasets(imdb_folder, imdb_archive):
    from_folder, from_archive = load_imdb(imdb_folder), load_imdb(imdb_archive)
    for split in ("train", "test"):
        a, b = from_folder[split], from_archive[split]
        assert a.texts == b.texts and np.array_equal(a.labels, b.labels)
        assert a.info["files"] == b.info["files"] and a.info["ratings"] == b.info["ratings"]
        assert a.label_names == ["neg", "pos"] and a.class_counts() == {"neg": PER_CLASS, "pos": PER_CLASS}
        assert a.name == f"imdb/{split}" and a.info["decode_errors"] == 0 and a.info["empty_texts"] == 0
        # the fixed order: by id, neg before pos; the texts are the files' contents
        assert a.labels.tolist() == [0, 1] * PER_CLASS and a.info["ids"] == sorted(a.info["ids"])
        for text, file, rating, label in zip(a.texts, a.info["files"], a.info["ratings"], a.labels):
            assert (imdb_folder / "aclImdb" / file).read_text() == text
            assert file.startswith(f"{split}/{['neg', 'pos'][label]}/") and (rating >= 7) == bool(label)


def test_archive_order_does_not_matter(imdb_folder, tmp_path):
    one = write_archive(imdb_folder / "aclImdb", tmp_path / "one" / "aclImdb_v1.tar.gz", shuffle_seed=1)
    two = write_archive(imdb_folder / "aclImdb", tmp_path / "two" / "aclImdb_v1.tar.gz", shuffle_seed=2)
    assert load_imdb(one)["train"].texts == load_imdb(two)["train"].texts


def test_unlabelled(imdb_folder, imdb_archive):
    texts = load_imdb_unlabelled(imdb_archive)
    assert len(texts) == UNSUP and texts == load_imdb_unlabelled(imdb_folder)
    assert texts[0] == (imdb_folder / "aclImdb" / "train" / "unsup" / "0_0.txt").read_text()
    assert load_imdb_unlabelled(imdb_archive, max_reviews=3) == texts[:3]


def test_course_split_and_validation(imdb_archive, monkeypatch):
    monkeypatch.setattr(imdb, "COURSE_TRAIN_SIZE", 2 * PER_CLASS + 4)  # the course's 30,000, scaled down
    course = load_imdb(imdb_archive, split="course")
    official = load_imdb(imdb_archive)
    assert len(course["train"]) == 2 * PER_CLASS + 4 and len(course["test"]) == 2 * PER_CLASS - 4
    assert course["train"].texts == official["train"].texts + official["test"].texts[:4]
    assert course["test"].texts == official["test"].texts[4:]
    assert course["train"].class_counts() == {"neg": PER_CLASS + 2, "pos": PER_CLASS + 2}

    splits = load_imdb(imdb_archive, validation=0.25, seed=1)
    assert len(splits["validation"]) == 3 and len(splits["train"]) == 2 * PER_CLASS - 3
    assert not set(splits["validation"].info["files"]) & set(splits["train"].info["files"])
    assert splits["validation"].name == "imdb/validation" and splits["train"].name == "imdb/train"
    assert load_imdb(imdb_archive, validation=0.25, seed=1)["validation"].texts == splits["validation"].texts
    assert load_imdb(imdb_archive, validation=0.25, seed=2)["validation"].texts != splits["validation"].texts


def test_max_reviews_keeps_a_balanced_prefix(imdb_archive):
    splits = load_imdb(imdb_archive, max_reviews=4)
    assert [len(s) for s in splits.values()] == [4, 4]
    assert splits["train"].class_counts() == {"neg": 2, "pos": 2} and len(splits["train"].info["ids"]) == 4


def test_bad_arguments(imdb_archive):
    for kwargs, match in [({"split": "random"}, "split"), ({"validation": 1.0}, "validation"),
                          ({"max_reviews": 0}, "max_reviews")]:
        with pytest.raises(ValueError, match=match):
            load_imdb(imdb_archive, **kwargs)


def test_non_utf8_and_empty_reviews_are_kept_counted_and_reported(imdb_folder):
    neg = imdb_folder / "aclImdb" / "train" / "neg"
    first, second = sorted(neg.iterdir())[:2]
    first.write_bytes(b"Caf\xe9 latin-1 bytes \xff here")
    second.write_text("")
    with pytest.warns(DataWarning) as record:
        train = load_imdb(imdb_folder)["train"]
    messages = " | ".join(str(w.message) for w in record)
    assert "1 of 24 reviews were not valid UTF-8" in messages and f"train/neg/{first.name}" in messages
    assert "1 empty review(s)" in messages and f"train/neg/{second.name}" in messages
    assert train.info["decode_errors"] == 1 and train.info["empty_texts"] == 1
    assert train.texts[train.info["files"].index(f"train/neg/{first.name}")] == "Caf\ufffd latin-1 bytes \ufffd here"
    with pytest.warns(DataWarning):
        splits = load_imdb(imdb_folder, validation=0.5, seed=0)
    assert splits["train"].info["decode_errors"] + splits["validation"].info["decode_errors"] == 1
    assert splits["test"].info["decode_errors"] == 0


# ------------------------------------------------------------------------------------------- bad data

def test_truncated_archive(imdb_archive, tmp_path):
    data = imdb_archive.read_bytes()
    for cut in (len(data) // 2, len(data) - 100, 30):
        broken = tmp_path / f"cut{cut}" / "aclImdb_v1.tar.gz"
        broken.parent.mkdir()
        broken.write_bytes(data[:cut])
        with pytest.raises(CorruptDataError) as err:
            load_imdb(broken)
        message = str(err.value)
        assert f"the archive {broken} is corrupted or truncated" in message
        assert "delete it and download it again" in message and "minidl data download" in message
        assert isinstance(err.value, ValueError) and isinstance(err.value, MinidlError)


def test_damaged_archive(imdb_archive):
    data = bytearray(imdb_archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    imdb_archive.write_bytes(bytes(data))
    with pytest.raises(CorruptDataError, match="corrupted or truncated"):
        load_imdb(imdb_archive)


def test_garbage_archive(tmp_path):
    path = tmp_path / "aclImdb_v1.tar.gz"
    path.write_bytes(b"<html>404 Not Found</html>" * 20)
    with pytest.raises(CorruptDataError, match="corrupted or truncated"):
        load_imdb_unlabelled(path)


def test_incomplete_data_set(imdb_folder, tmp_path):
    for file in (imdb_folder / "aclImdb" / "test" / "pos").iterdir():
        file.unlink()
    with pytest.raises(DataFormatError, match=r"no reviews under aclImdb/test/pos/"):
        load_imdb(imdb_folder)
    archive = write_archive(imdb_folder / "aclImdb", tmp_path / "a" / "aclImdb_v1.tar.gz")
    with pytest.raises(DataFormatError, match=r"no reviews under aclImdb/test/pos/"):
        load_imdb(archive)


def test_a_partly_extracted_folder_is_refused_with_the_counts(imdb_folder, tmp_path):
    # tar stopped early: train/pos has 2 of its 6 reviews (the real case: 12,500 neg and 3 pos)
    for file in sorted((imdb_folder / "aclImdb" / "train" / "pos").iterdir())[2:]:
        file.unlink()
    with pytest.raises(DataFormatError) as err:
        load_imdb(imdb_folder)
    message = str(err.value)
    assert "\n" not in message and "incomplete" in message
    assert f"train/neg {PER_CLASS}, train/pos 2, test/neg {PER_CLASS}, test/pos {PER_CLASS}" in message
    assert "12,500" in message and "extract" in message and "MINIDL_DATA" in message and ".tar.gz" in message
    archive = write_archive(imdb_folder / "aclImdb", tmp_path / "a" / "aclImdb_v1.tar.gz")
    with pytest.raises(DataFormatError, match=r"train/pos 2.*download it again"):
        load_imdb(archive)
    assert len(load_imdb_unlabelled(imdb_folder)) == UNSUP  # train/unsup alone is complete


def test_a_folder_one_review_short_of_the_official_size_is_refused(imdb_folder, monkeypatch):
    monkeypatch.setattr(imdb, "OFFICIAL_PER_CLASS", PER_CLASS)  # the official 12,500, scaled down
    assert load_imdb(imdb_folder)["test"].class_counts() == {"neg": PER_CLASS, "pos": PER_CLASS}
    next((imdb_folder / "aclImdb" / "test" / "pos").iterdir()).unlink()
    with pytest.raises(DataFormatError, match=f"incomplete.*test/pos {PER_CLASS - 1} "):
        load_imdb(imdb_folder)


# ------------------------------------------------------------------------------------------- Kaggle CSV

def test_kaggle_csv(tmp_path, monkeypatch):
    csv = write_kaggle_csv(tmp_path / "IMDB Dataset.csv", rows=20)
    monkeypatch.setattr(imdb, "COURSE_TRAIN_SIZE", 12)
    splits = load_imdb(tmp_path, split="course")
    assert [len(splits["train"]), len(splits["test"])] == [12, 8]
    assert splits["train"].label_names == ["neg", "pos"] and splits["train"].labels.tolist() == [0, 1] * 6
    assert splits["test"].info["lines"][0] == 14 and splits["train"].info["decode_errors"] == 0
    with pytest.raises(DataFormatError, match='no official train/test split.*split="course"'):
        load_imdb(csv)
    with pytest.raises(DataFormatError, match=r"train on it as a table of your own \(minidl train --data .*IMDB "
                                              r"Dataset.csv --text-column review --label-column sentiment\)"):
        load_imdb(csv)   # the one advice, split="course", was Python's: no command takes it
    with pytest.raises(DataFormatError, match="no unlabelled reviews"):
        load_imdb_unlabelled(csv)


def test_kaggle_csv_without_the_columns(tmp_path):
    csv = write_kaggle_csv(tmp_path / "IMDB Dataset.csv", rows=3, header=("text", "label"))
    with pytest.raises(DataFormatError) as err:
        load_imdb(csv, split="course")
    # it advised --text-column / --label-column, which `minidl data info` and the IMDB commands do not have
    assert str(err.value) == (f"{csv} is not the IMDB CSV (its columns are ['text', 'label'], not review and "
                              f"sentiment); a table of your own trains with minidl train --data {csv} --text-column "
                              f"... --label-column ...")


# ------------------------------------------------------------------------------------------- movies

MOVIE_URL = "http://www.imdb.com/title/tt{:07d}/usercomments"


def write_movie_lists(folder, seed=0, most=8):
    """URL lists in ``folder/aclImdb/{train,test}/urls_{pos,neg}.txt``, line i for the review
    with id i, as the official archive has them: each review gets a movie, each movie 1 to
    ``most`` reviews of either class (test movies differ from train's). -> {(split, label,
    id): movie id}."""
    rng = np.random.default_rng(seed)
    movies, next_movie = {}, {"train": 1, "test": 500_000}
    for split in ("train", "test"):
        slots = [(label, i) for label in ("neg", "pos")
                 for i in range(len(list((folder / "aclImdb" / split / label).iterdir())))]
        rng.shuffle(slots)
        while slots:
            size = int(rng.integers(1, most + 1))
            for label, i in slots[:size]:
                movies[split, label, i] = f"tt{next_movie[split]:07d}"
            slots, next_movie[split] = slots[size:], next_movie[split] + 1
        for label in ("neg", "pos"):
            count = sum(1 for key in movies if key[:2] == (split, label))
            lines = [MOVIE_URL.format(int(movies[split, label, i][2:])) for i in range(count)]
            (folder / "aclImdb" / split / f"urls_{label}.txt").write_text("\n".join(lines) + "\n")
    return movies


@pytest.fixture
def imdb_with_movies(tmp_path):
    """A fake ``aclImdb/`` of 100 reviews per (split, class) with URL lists: (folder, movies)."""
    write_fake_imdb(tmp_path / "movies", per_class=100, unsup=1, seed=3)
    return tmp_path / "movies", write_movie_lists(tmp_path / "movies")


def test_each_review_gets_its_movie_from_the_url_lists(imdb_with_movies, tmp_path):
    folder, movies = imdb_with_movies
    archive = write_archive(folder / "aclImdb", tmp_path / "archive" / "aclImdb_v1.tar.gz")
    for source in (folder, archive):
        splits = load_imdb(source)
        for split in ("train", "test"):
            info = splits[split].info
            expected = [movies[split, file.split("/")[1], review_id] for file, review_id in zip(info["files"],
                                                                                            info["ids"])]
            assert info["movies"] == expected
    # subsets (max_reviews, the validation draw) carry the movies along with the reviews
    part = load_imdb(folder, max_reviews=10, validation=0.2)["validation"]
    assert part.info["movies"] == [movies["train", f.split("/")[1], i] for f, i in zip(part.info["files"],
                                                                                      part.info["ids"])]


def test_a_missing_or_short_url_list_leaves_the_movie_unknown(imdb_with_movies, imdb_folder):
    folder, movies = imdb_with_movies
    lines = (folder / "aclImdb" / "train" / "urls_pos.txt").read_text().splitlines()
    (folder / "aclImdb" / "train" / "urls_pos.txt").write_text("\n".join(lines[:50]) + "\n")   # ids 50.. unlisted
    (folder / "aclImdb" / "test" / "urls_neg.txt").unlink()
    splits = load_imdb(folder)
    for split, dataset in splits.items():
        for file, review_id, movie in zip(dataset.info["files"], dataset.info["ids"], dataset.info["movies"]):
            label = file.split("/")[1]
            known = not ((split, label) == ("test", "neg") or ((split, label) == ("train", "pos") and review_id >= 50))
            assert movie == (movies[split, label, review_id] if known else None)
    # the usual fake data set lists one URL that names no title: no movie at all
    assert set(load_imdb(imdb_folder)["train"].info["movies"]) == {None}


def test_the_validation_split_is_carved_by_movie(imdb_with_movies):
    folder, _ = imdb_with_movies
    train = load_imdb(folder)["train"]
    for seed in (0, 1, 2):
        kept, held = split_by_movie(train, 0.1, seed=seed)
        assert not set(kept.info["movies"]) & set(held.info["movies"])               # no movie on both sides
        assert abs(len(held) - 20) <= 4 and len(kept) + len(held) == 200             # movies of 1-8 reviews
        assert sorted(kept.info["files"] + held.info["files"]) == sorted(train.info["files"])
        again = split_by_movie(train, 0.1, seed=seed)[1]
        assert again.texts == held.texts and again.info["movies"] == held.info["movies"]   # one split per seed
        assert held.name == "imdb/train/validation" and kept.name == "imdb/train/train"
    assert split_by_movie(train, 0.1, seed=0)[1].texts != split_by_movie(train, 0.1, seed=1)[1].texts
    kept, held = split_by_movie(train, 0.3, seed=0)
    assert abs(len(held) - 60) <= 4 and not set(kept.info["movies"]) & set(held.info["movies"])


def test_prepare_holds_out_imdb_by_movie_and_other_data_at_random(imdb_with_movies, recwarn):
    from minidl.train.config import TrainConfig
    from minidl.train.prepare import prepare

    folder, _ = imdb_with_movies
    prepared = prepare(TrainConfig(data="imdb", data_path=str(folder), validation=0.1, seed=4, min_freq=1))
    kept, held = split_by_movie(load_imdb(folder)["train"], 0.1, seed=4)
    assert len(prepared.validation) == len(held) and len(prepared.train) == len(kept)
    assert prepared.validation.labels.tolist() == held.labels.tolist()
    assert not [w for w in recwarn if issubclass(w.category, DataWarning)]
    synthetic = prepare(TrainConfig(data="synthetic", validation=0.1, seed=4))
    assert len(synthetic.validation) == 500          # a tenth of the 5,000 reviews, the random split as before


def test_without_movies_the_split_is_random_and_says_so(imdb_folder):
    train = load_imdb(imdb_folder)["train"]
    with pytest.warns(DataWarning, match="lists no movies .* share movies with the training reviews"):
        kept, held = split_by_movie(train, 0.25, seed=1)
    expected = train.split(0.25, seed=1)
    assert held.texts == expected[1].texts and kept.texts == expected[0].texts


def test_the_real_archive_split_by_movie():
    """No movie in both the training and the validation split of the real archive, and about a
    tenth of the reviews held out (where the archive with its URL lists is present)."""
    try:
        source = find_imdb()
    except DataNotFoundError:
        pytest.skip("IMDB archive not found: set MINIDL_DATA to the folder holding aclImdb_v1.tar.gz")
    if source.suffix == ".csv":
        pytest.skip(f"found only the Kaggle CSV {source}; this test needs the official archive")
    train = load_imdb(source)["train"]
    known = sum(movie is not None for movie in train.info["movies"])
    if not known:
        pytest.skip(f"{source} has no URL lists (train/urls_pos.txt, urls_neg.txt): the movies are unknown")
    kept, held = split_by_movie(train, 0.1, seed=0)
    movies = set(train.info["movies"])
    print(f"\n{source}: {known:,} of {len(train):,} training reviews with a movie, {len(movies):,} movies; "
          f"validation {len(held):,} reviews ({len(held) / len(train):.3f}) of "
          f"{len(set(held.info['movies'])):,} movies")
    assert known == len(train) == 25_000
    assert not set(kept.info["movies"]) & set(held.info["movies"])
    assert abs(len(held) / len(train) - 0.1) <= 0.02


# ------------------------------------------------------------------------------------------- download

class _Handler(http.server.SimpleHTTPRequestHandler):
    requests = 0

    def log_message(self, *args):  # keep the test output quiet
        pass

    def do_GET(self):
        type(self).requests += 1
        if self.path == "/short.tar.gz":  # promises more bytes than it sends, then hangs up
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 100)
            return
        super().do_GET()


@contextlib.contextmanager
def serve(folder):
    """An HTTP server on 127.0.0.1 serving ``folder``; it stops when the block ends (or after 30 s)."""
    _Handler.requests = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    watchdog = threading.Timer(30, server.shutdown)
    watchdog.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        watchdog.cancel()
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_download_verifies_and_renames_into_place(imdb_archive, tmp_path, capsys):
    sha256 = hashlib.sha256(imdb_archive.read_bytes()).hexdigest()
    dest = tmp_path / "cache"
    with serve(imdb_archive.parent) as url:
        path = download_imdb(dest, url=f"{url}/aclImdb_v1.tar.gz", sha256=sha256.upper(), progress=False)
        assert path == dest / "aclImdb_v1.tar.gz" and path.read_bytes() == imdb_archive.read_bytes()
        assert os.listdir(dest) == ["aclImdb_v1.tar.gz"]  # no temporary file left
        assert download_imdb(dest, url=f"{url}/aclImdb_v1.tar.gz", sha256=sha256, progress=False) == path
        assert _Handler.requests == 1  # the verified file was kept, not downloaded again
        data_cli.main_download(argparse.Namespace(dest=str(dest), url=f"{url}/aclImdb_v1.tar.gz", sha256="",
                                              force=True))
        assert _Handler.requests == 2 and capsys.readouterr().out.strip() == str(path)
    assert load_imdb(path)["train"].class_counts() == {"neg": PER_CLASS, "pos": PER_CLASS}


def test_a_broken_archive_is_not_already_there_without_a_hash(imdb_archive, tmp_path):
    """--url without --sha256 took any file at the target as "already there", and data info then said to
    download it again: a loop."""
    dest = tmp_path / "cache"
    dest.mkdir()
    (dest / "aclImdb_v1.tar.gz").write_bytes(imdb_archive.read_bytes()[:-100])   # a copy cut short
    with serve(imdb_archive.parent) as url:
        path = download_imdb(dest, url=f"{url}/aclImdb_v1.tar.gz", progress=False)
        assert path.read_bytes() == imdb_archive.read_bytes() and _Handler.requests == 1
        assert download_imdb(dest, url=f"{url}/aclImdb_v1.tar.gz", progress=False) == path
        assert _Handler.requests == 1   # a whole one is kept


def test_download_with_the_wrong_hash_leaves_nothing(imdb_archive, tmp_path):
    dest = tmp_path / "cache"
    with serve(imdb_archive.parent) as url:
        with pytest.raises(CorruptDataError, match="has SHA-256 .* expected 0000"):
            download_imdb(dest, url=f"{url}/aclImdb_v1.tar.gz", sha256="0" * 64, progress=False)
        with pytest.raises(DownloadError, match="HTTP 404"):
            download_imdb(dest, url=f"{url}/missing.tar.gz", progress=False)
        with pytest.raises(DownloadError, match="stopped after 100 of 1,000 bytes|IncompleteRead"):
            download_imdb(dest, url=f"{url}/short.tar.gz", progress=False)
    assert not dest.exists() or os.listdir(dest) == []


def test_a_full_disk_during_download_is_named_as_such(imdb_archive, tmp_path, monkeypatch):
    from minidl.io import WriteError

    real_open = open

    class FullDisk:
        def __init__(self, path, mode="r", *args, **kwargs):
            self.file = real_open(path, mode, *args, **kwargs)

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    monkeypatch.setattr(imdb, "open", FullDisk, raising=False)
    dest = tmp_path / "cache"
    with serve(imdb_archive.parent) as url:
        with pytest.raises(WriteError) as err:
            download_imdb(dest, url=f"{url}/aclImdb_v1.tar.gz", progress=False)
    message = str(err.value)
    assert str(dest / "aclImdb_v1.tar.gz") in message and "No space left" in message and "network" not in message
    assert os.listdir(dest) == []

def test_download_without_a_server_is_a_clear_error(tmp_path):
    with serve(tmp_path) as url:
        pass  # the port is closed again now
    with pytest.raises(DownloadError, match="failed .*nothing was saved.*put it in"):
        download_imdb(tmp_path / "cache", url=f"{url}/aclImdb_v1.tar.gz", progress=False, timeout=5)
    assert not (tmp_path / "cache" / "aclImdb_v1.tar.gz").exists()


# ------------------------------------------------------------------------------------------- CLI

def test_info_command(imdb_archive, capsys):
    data_cli.main_info(argparse.Namespace(path=str(imdb_archive), tokenize=True))
    out, err = capsys.readouterr()
    assert err.startswith(f"reading the reviews of {imdb_archive} (about 10 s) ...\n")   # (silent for 10 s)
    assert f"IMDB reviews from {imdb_archive} (archive)" in out
    assert f"train   {PER_CLASS:>8}{PER_CLASS:>8}{2 * PER_CLASS:>8}" in out and f"unsup   {'':16}{UNSUP:>8}" in out
    assert "loaded in" in out and "words per review" in out


def test_commands_report_errors_without_a_traceback(tmp_path, capsys):
    assert data_cli.main_info(argparse.Namespace(path=str(tmp_path / "nowhere"), tokenize=False)) == 1
    assert "minidl data info: IMDB reviews not found" in capsys.readouterr().err
    args = argparse.Namespace(dest=str(tmp_path), url="http://127.0.0.1:9/x.tar.gz", sha256=None, force=False)
    with serve(tmp_path) as url:
        args.url = f"{url}/missing.tar.gz"
        assert data_cli.main_download(args) == 1
    assert "HTTP 404" in capsys.readouterr().err


def test_info_on_a_table_that_is_not_imdb_says_so_alone(tmp_path, capsys):
    """It printed "IMDB reviews from own.csv (csv)" to stdout, then the error that the file is not IMDB's."""
    table = tmp_path / "own.csv"
    table.write_text("text,label\na fine film,pos\n")
    assert data_cli.main_info(argparse.Namespace(path=str(table), tokenize=False)) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"minidl data info: {table} is not the IMDB CSV") and err.count("\n") == 1



@pytest.mark.parametrize("name", ["own.tsv", "own.jsonl", "own.csv"])
def test_a_table_of_ones_own_is_told_how_it_trains_and_vectors_build_says_so_first(tmp_path, capsys, name):
    """A TSV or JSONL table got "IMDB reviews not found ... get it with minidl data download" (a CSV got the
    advice to train on it); vectors build printed "reading and tokenising ... (about 10 s)" before refusing."""
    table = tmp_path / name
    table.write_text("text\tlabel\na fine film\tpos\n")
    if not name.endswith(".csv"):
        assert data_cli.main_info(argparse.Namespace(path=str(table), tokenize=False)) == 1
        assert capsys.readouterr().err == (f"minidl data info: {table} is not the IMDB data (an archive, an aclImdb/ "
                                           f"folder or the Kaggle CSV); a table of your own trains with minidl train "
                                           f"--data {table} --text-column ... --label-column ...\n")
    said = []
    args = argparse.Namespace(method="ppmi", dim=4, window=2, min_count=1, max_vocab=100, smoothing=0.75, power=0.5,
                              seed=0, data=str(table), out=str(tmp_path / "v.txt"))
    with pytest.raises(DataFormatError, match=f"^{table} is (not the IMDB data|a CSV .* no unlabelled reviews)"):
        data_cli.main_build(args, log=said.append)
    assert said == []

# ------------------------------------------------------------------------------------------- the real thing

def test_the_real_archive():
    """All 100,000 reviews loaded and tokenised (where the archive is present); the time is printed."""
    try:
        source = find_imdb()
    except DataNotFoundError:
        pytest.skip("IMDB archive not found: set MINIDL_DATA to the folder holding aclImdb_v1.tar.gz "
                    "(or run `minidl data download`)")
    if source.suffix == ".csv":
        pytest.skip(f"found only the Kaggle CSV {source}; this test needs the official archive")
    start = time.perf_counter()
    splits = load_imdb(source)
    unlabelled = load_imdb_unlabelled(source)
    loaded = time.perf_counter() - start
    tokenizer = Tokenizer()
    words = sum(len(tokenizer(text)) for texts in (splits["train"].texts, splits["test"].texts, unlabelled)
                for text in texts)
    total = time.perf_counter() - start
    print(f"\nIMDB from {source}: loaded 100,000 reviews in {loaded:.1f} s, loaded + tokenised in {total:.1f} s "
          f"({words:,} words)")
    for name in ("train", "test"):
        assert len(splits[name]) == 25_000 and splits[name].class_counts() == {"neg": 12_500, "pos": 12_500}
        assert isinstance(splits[name].info["decode_errors"], int)
    assert len(unlabelled) == 50_000   # the time is printed above, not asserted: CI machines are shared


def test_download_refuses_a_bad_hash_or_a_file_as_dest_before_downloading(tmp_path, capsys):
    """A malformed --sha256 was found after the download; a file as --dest read "cannot write
    FILE/aclImdb_v1.tar.gz: File exists"."""
    (tmp_path / "notes.txt").write_text("mine")
    never = "file:///no/such/archive.tar.gz"   # a download would fail differently
    assert main(["data", "download", "--dest", str(tmp_path), "--url", never, "--sha256", "abc"]) == 2
    assert "is not a SHA-256 (64 hexadecimal digits)" in capsys.readouterr().err
    assert main(["data", "download", "--dest", str(tmp_path / "notes.txt"), "--url", never]) == 1
    assert f"--dest {tmp_path / 'notes.txt'} is a file; give a folder" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_url_that_gives_no_archive_saves_nothing(tmp_path, capsys):
    """A URL of the user's without --sha256 saved whatever came (a text file) as the archive."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "notes.txt").write_text("my notes\n")
    dest = tmp_path / "cache"
    with serve(tmp_path / "site") as url:
        with pytest.raises(CorruptDataError, match="is not a gzip archive, as aclImdb_v1.tar.gz is; nothing was saved"):
            download_imdb(dest, url=f"{url}/notes.txt", progress=False)
    assert not dest.exists() or os.listdir(dest) == []
    assert main(["data", "download", "--dest", str(dest), "--url", " "]) == 2
    assert "--url is empty" in capsys.readouterr().err
