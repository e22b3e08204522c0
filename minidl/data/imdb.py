"""The IMDB movie reviews (Maas et al., 2011): find them, read them, download them.

    splits = load_imdb()                       # {"train": TextDataset, "test": TextDataset}
    splits["train"].class_counts()             # {"neg": 12500, "pos": 12500}
    unlabelled = load_imdb_unlabelled()        # 50,000 texts of train/unsup (for word vectors)

Where the data comes from (``find_imdb``): the ``path`` you pass, else ``$MINIDL_DATA``, else
``~/.cache/minidl``. In that place any of these is accepted:

* ``aclImdb_v1.tar.gz``, the official archive, read as a stream: nothing is extracted;
* ``aclImdb/``, the extracted folder: ``{train,test}/{pos,neg}/<id>_<rating>.txt`` and
  ``train/unsup/``;
* ``IMDB Dataset.csv``, the Kaggle copy (columns ``review`` and ``sentiment``); it has no
  official split and no unlabelled reviews.

The path may also name one of these directly. An explicit ``path`` is the only place looked
at, so a typo is an error rather than a silent fall-back to another copy.

Splits (``split=``):

* ``"official"`` (default): the archive's 25,000 train and 25,000 test reviews.
* ``"course"``: the course's template, which read the Kaggle CSV and cut it at row 30,000:
  train = the first 30,000 reviews, test = the other 20,000. From the archive the same cut
  is applied to a fixed order: the official train reviews, then the official test reviews,
  each ordered by review id with neg before pos (so train gets all 25,000 official train
  reviews plus the test reviews with id < 2,500; both sides stay balanced).

Reviews always come in that fixed order (by split, then id, neg before pos), whatever the
order inside the archive, so the two classes alternate and any prefix is balanced.
``dataset.info`` keeps, per review, its ``ids``, ``ratings`` (1-4 neg, 7-10 pos), ``files``
and ``movies``; and ``decode_errors``, the number of files that were not valid UTF-8 (their bad
bytes are replaced with U+FFFD and a ``DataWarning`` says how many).

Movies: the official archive lists each review's IMDb URL in ``{train,test}/urls_{pos,neg}.txt``,
line i (counting from 0) for the review with id i, e.g. ``http://www.imdb.com/title/tt0453418/
usercomments``: the movie's page, not the review's. ``movies`` holds that title id
("tt0453418"), or None where the list, its line or a title in it is missing (the Kaggle CSV,
copies without the lists). A movie has at most 30 reviews and train and test share no movie;
so a validation split carved from train by movie (``train.prepare``) is as unseen as the test.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import re
import sys
import tarfile
import urllib.error
import urllib.request
import warnings
import zlib
from collections import Counter, namedtuple
from http.client import HTTPException
from pathlib import Path

from ..io import WriteError, atomic_path, file_sha256
from .dataset import TextDataset
from .errors import (CorruptDataError, DataFormatError, DataNotFoundError, DataWarning, DownloadError,
                     MissingColumnsError)
from .tabular import FORMATS, listing, load_table

OFFICIAL_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
OFFICIAL_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
ARCHIVE_NAME = "aclImdb_v1.tar.gz"
FOLDER_NAME = "aclImdb"
CSV_NAME = "IMDB Dataset.csv"
LABEL_NAMES = ["neg", "pos"]
COURSE_TRAIN_SIZE = 30_000
OFFICIAL_PER_CLASS = 12_500  # reviews in each of train/neg, train/pos, test/neg, test/pos
UNLABELLED_SIZE = 50_000      # reviews in train/unsup
MAX_CLASS_RATIO = 2          # a split whose classes differ more than this is incomplete
ENV_VAR = "MINIDL_DATA"

LABELLED = ("train/neg", "train/pos", "test/neg", "test/pos")
UNLABELLED = ("train/unsup",)
_MEMBER = re.compile(r"(?:^|/)(train|test)/(pos|neg|unsup)/(\d+)_(\d+)\.txt$")
_URLS = re.compile(r"(?:^|/)(train|test)/urls_(pos|neg|unsup)\.txt$")
_MOVIE = re.compile(r"/title/(tt\d+)")
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
_HOW_TO_GET = (f"get it with `minidl data download` (the official archive, 84 MB, into ~/.cache/minidl; in Python "
               f"minidl.data.download_imdb()), or put {ARCHIVE_NAME} (or the extracted {FOLDER_NAME}/ folder) in a "
               f"folder and set {ENV_VAR} to it")

Review = namedtuple("Review", "split label id rating text bad_bytes movie", defaults=(None,))


# ---------------------------------------------------------------------------------------- finding

def default_data_dir():
    """``~/.cache/minidl``: where ``download_imdb`` saves and ``find_imdb`` looks last."""
    return Path.home() / ".cache" / "minidl"


def find_imdb(path=None):
    """The IMDB source to read: an archive, an ``aclImdb`` folder or a CSV file (a ``Path``).

    Looks in ``path`` if given (only there), else in ``$MINIDL_DATA`` and then in
    ``~/.cache/minidl``. Raises ``DataNotFoundError`` listing every place it looked.
    """
    if path is not None:
        places = [(Path(path).expanduser(), "the path given")]
    else:
        places = []
        if os.environ.get(ENV_VAR):
            places.append((Path(os.environ[ENV_VAR]).expanduser(), f"${ENV_VAR}"))
        places.append((default_data_dir(), "the default folder"))
    looked = []
    for place, why in places:
        found = _find_in(place, why, looked)
        if found is not None:
            return found
    if path is None and not os.environ.get(ENV_VAR):
        looked.append(f"${ENV_VAR} is not set")
    raise DataNotFoundError(f"IMDB reviews not found (looked in {'; '.join(looked)}); {_HOW_TO_GET}")   # one line


def _find_in(place, why, looked):
    if place.is_file():
        if place.name.lower().endswith(_ARCHIVE_SUFFIXES) or place.suffix.lower() == ".csv":
            return place
        if place.suffix.lower() in FORMATS:   # "IMDB reviews not found ... minidl data download": a user's own table
            raise DataFormatError(f"{place} is not the IMDB data (an archive, an {FOLDER_NAME}/ folder or the Kaggle "
                                  f"CSV); a table of your own trains with minidl train --data {place} --text-column "
                                  f"... --label-column ...")
        looked.append(f"{place} ({why}): a file, but not a .tar.gz archive, an {FOLDER_NAME}/ folder or a .csv")
        return None
    if not place.is_dir():
        looked.append(f"{place} ({why}): does not exist")
        return None
    if _is_imdb_folder(place):
        return place
    if _is_imdb_folder(place / FOLDER_NAME):
        return place / FOLDER_NAME
    for name in (ARCHIVE_NAME, CSV_NAME):
        if (place / name).is_file():
            return place / name
    looked.append(f"{place} ({why}): no {FOLDER_NAME}/ (with train/ and test/), {ARCHIVE_NAME} or {CSV_NAME}")
    return None


def _is_imdb_folder(folder):
    return (folder / "train").is_dir() and (folder / "test").is_dir()


def _kind(source):
    if source.is_dir():
        return "folder"
    return "csv" if source.suffix.lower() == ".csv" else "archive"


# ---------------------------------------------------------------------------------------- reading

def read_imdb_reviews(source, parts=LABELLED):
    """Every review of ``parts`` (e.g. ``("train/pos", "test/neg")``) in ``source`` (an archive
    or an ``aclImdb`` folder), as ``Review`` tuples in the fixed order (split, id, neg/pos)."""
    source = Path(source)
    parts = tuple(parts)
    if _kind(source) == "csv":
        raise DataFormatError(f"{source} is a CSV file; read it with load_imdb()")
    reviews, urls = (_take(_folder_files(source, parts), Path.read_bytes, parts) if source.is_dir()
                     else _read_archive(source, parts))
    reviews = _with_movies(reviews, urls)
    found = Counter(f"{r.split}/{r.label}" for r in reviews)
    counts = {part: found[part] for part in parts}
    empty = [part for part, n in counts.items() if n == 0]
    if empty:
        raise DataFormatError(f"{source} has no reviews under {', '.join(f'{FOLDER_NAME}/{p}/' for p in empty)}: "
                              f"it is not the complete IMDB data set (expected "
                              f"{FOLDER_NAME}/{{train,test}}/{{pos,neg}}/<id>_<rating>.txt and "
                              f"{FOLDER_NAME}/train/unsup/); {_HOW_TO_GET}")
    _check_complete(source, counts)
    order = {"train": 0, "test": 1, "neg": 0, "pos": 1, "unsup": 2}
    reviews.sort(key=lambda r: (order[r.split], r.id, order[r.label]))
    return reviews


def _check_complete(source, counts):
    """Raise a DataFormatError when the labelled counts ({"train/neg": n, ...}) show a partly
    extracted (or partly packed) data set, which would otherwise train on what happens to be there.

    The official data set has ``OFFICIAL_PER_CLASS`` reviews in each labelled part. Smaller copies
    (a sample, the tests' fake data) are allowed, so the rules are: the two classes of a split
    differ by at most ``MAX_CLASS_RATIO``, and when one part has the official size, every part has.
    """
    labelled = {part: n for part, n in counts.items() if part in LABELLED}
    pairs = [(labelled[f"{split}/neg"], labelled[f"{split}/pos"]) for split in ("train", "test")
             if f"{split}/neg" in labelled and f"{split}/pos" in labelled]
    lopsided = any(max(pair) > MAX_CLASS_RATIO * min(pair) for pair in pairs)
    short = OFFICIAL_PER_CLASS in labelled.values() and min(labelled.values()) < OFFICIAL_PER_CLASS
    if not (lopsided or short):
        return
    found = ", ".join(f"{part} {n:,}" for part, n in labelled.items())
    fix = (f"re-extract {ARCHIVE_NAME} (tar -xzf {ARCHIVE_NAME}) and let it finish, or point {ENV_VAR} (or the "
           f"path) at the .tar.gz itself, which is read without extracting" if source.is_dir() else
           "delete it and download it again with `minidl data download`")
    raise DataFormatError(f"{source} is incomplete: found {found} reviews, the official data set has "
                          f"{OFFICIAL_PER_CLASS:,} in each; {fix}")


def _with_movies(reviews, urls):
    """Each review with its movie's IMDb title id, from line ``id`` of its part's URL list
    (``urls``: {"train/pos": [line, ...]}); None where that line is missing or names no title."""
    out = []
    for r in reviews:
        lines = urls.get(f"{r.split}/{r.label}", ())
        match = _MOVIE.search(lines[r.id]) if r.id < len(lines) else None
        out.append(r._replace(movie=match[1]) if match else r)
    return out


def _decode(data, split, label, review_id, rating):
    try:
        return Review(split, label, review_id, rating, data.decode("utf-8"), False)
    except UnicodeDecodeError:
        return Review(split, label, review_id, rating, data.decode("utf-8", errors="replace"), True)


def _take(files, read, parts):
    """(reviews, URL lists {part: lines}) of ``parts`` among ``files``: (path such as "train/pos/0_9.txt",
    handle) of each regular file, ``read(handle)`` its bytes. The folder and the archive share it."""
    reviews, urls = [], {}
    for name, handle in files:
        if (listed := _URLS.search(name)) and f"{listed[1]}/{listed[2]}" in parts:
            urls[f"{listed[1]}/{listed[2]}"] = read(handle).decode("utf-8", errors="replace").splitlines()
        elif (match := _MEMBER.search(name)) and f"{match[1]}/{match[2]}" in parts:
            reviews.append(_decode(read(handle), match[1], match[2], int(match[3]), int(match[4])))
    return reviews, urls


def _folder_files(folder, parts):
    """(path, Path) of the URL list and of every regular file of each of ``parts`` in an ``aclImdb`` folder."""
    for part in parts:
        split, label = part.split("/")
        if (folder / split / f"urls_{label}.txt").is_file():
            yield f"{split}/urls_{label}.txt", folder / split / f"urls_{label}.txt"
        if (folder / part).is_dir():   # a missing part is reported by the caller with the others
            with os.scandir(folder / part) as entries:
                yield from ((f"{part}/{entry.name}", Path(entry.path)) for entry in entries if entry.is_file())


def _read_archive(archive, parts):
    """(reviews, URL lists {part: lines}) of ``parts`` in the archive, in one pass over it."""
    try:
        with open(archive, "rb") as raw:
            # gzip ourselves (rather than tarfile's "r|gz") so that the stream's CRC and length are checked
            compressed = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if compressed else raw
            # "r|": one forward pass over the stream, nothing written to disk
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                found = _take(((m.name, m) for m in tar if m.isfile()), lambda m: tar.extractfile(m).read(), parts)
            while stream.read(1 << 20):  # to the end: a truncated tail fails here, not silently
                pass
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise CorruptDataError(f"the archive {archive} is corrupted or truncated ({type(e).__name__}: {e}); "
                               f"delete it and download it again with `minidl data download` "
                               f"(or minidl.data.download_imdb())") from None
    return found


def _dataset(reviews, name, source):
    info = {"source": str(source), "ids": [r.id for r in reviews], "ratings": [r.rating for r in reviews],
            "files": [f"{r.split}/{r.label}/{r.id}_{r.rating}.txt" for r in reviews],
            "movies": [r.movie for r in reviews],
            "decode_errors": sum(r.bad_bytes for r in reviews), "empty_texts": sum(not r.text.strip() for r in reviews)}
    return TextDataset([r.text for r in reviews], [LABEL_NAMES.index(r.label) for r in reviews],
                       list(LABEL_NAMES), name, info)


def _report(source, reviews):
    """Warn about files that were not valid UTF-8 and about empty reviews (both are kept)."""
    bad = [r for r in reviews if r.bad_bytes]
    if bad:
        warnings.warn(f"{source}: {len(bad)} of {len(reviews)} reviews were not valid UTF-8 ({_files(bad)}); their "
                      f"bad bytes were replaced with U+FFFD (counted in dataset.info['decode_errors'])",
                      DataWarning, stacklevel=3)
    empty = [r for r in reviews if not r.text.strip()]
    if empty:
        warnings.warn(f"{source}: {len(empty)} empty review(s) ({_files(empty)}); they are kept here (counted in "
                      f"dataset.info['empty_texts']) and dropped when the dataset is encoded",
                      DataWarning, stacklevel=3)


def _files(reviews):
    return listing([f"{r.split}/{r.label}/{r.id}_{r.rating}.txt" for r in reviews])


# ---------------------------------------------------------------------------------------- loading

def load_imdb(path=None, split="official", validation=0.0, seed=0, max_reviews=None):
    """The labelled IMDB reviews: ``{"train": ..., "test": ...}`` (and ``"validation"``).

    Args:
        path: where the data is (see ``find_imdb``); None: ``$MINIDL_DATA``, then ``~/.cache/minidl``.
        split: "official" (25,000 / 25,000) or "course" (first 30,000 / the other 20,000; see
            the module docstring).
        validation: a fraction of train (e.g. 0.1) moved, by a seeded random draw, to a
            "validation" split; 0 for none.
        seed: for the validation draw.
        max_reviews: keep only the first ``max_reviews`` of train and of test (balanced, as the
            classes alternate), for quick experiments; the validation split is cut from those.
    Labels: 0 = "neg", 1 = "pos".
    """
    if split not in ("official", "course"):
        raise ValueError(f'load_imdb: split must be "official" or "course", got {split!r}')
    if not 0.0 <= validation < 1.0:
        raise ValueError(f"load_imdb: validation must be a fraction in [0, 1), got {validation}")
    if max_reviews is not None and (isinstance(max_reviews, bool) or not isinstance(max_reviews, int)
                                    or max_reviews < 1):
        raise ValueError(f"load_imdb: max_reviews must be None or a positive int, got {max_reviews!r}")
    source = find_imdb(path)
    if _kind(source) == "csv":
        train, test = _load_csv(source, split)
    else:
        reviews = read_imdb_reviews(source, LABELLED)
        _report(source, reviews)
        # the official cut is where the train reviews end: read_imdb_reviews puts them first
        cut = sum(r.split == "train" for r in reviews) if split == "official" else COURSE_TRAIN_SIZE
        train, test = _dataset(reviews[:cut], "imdb/train", source), _dataset(reviews[cut:], "imdb/test", source)
    if max_reviews is not None:
        train, test = (_recount(ds.subset(range(min(max_reviews, len(ds))))) for ds in (train, test))
    out = {"train": train, "test": test}
    if validation > 0:
        out["train"], out["validation"] = map(_recount, train.split(validation, seed))
        out["train"].name, out["validation"].name = "imdb/train", "imdb/validation"
    return out


def _recount(dataset):
    """The counts in ``info`` for a subset: U+FFFD marks a replaced byte (only if the whole had some).
    Returns ``dataset``, its counts updated in place."""
    if dataset.info.get("decode_errors"):
        dataset.info["decode_errors"] = sum("\ufffd" in t for t in dataset.texts)
    dataset.info["empty_texts"] = sum(not t.strip() for t in dataset.texts)
    return dataset


def _load_csv(source, split):
    try:
        table = load_table(source, text_column="review", label_column="sentiment",
                           label_names=["negative", "positive"], name="imdb")
    except MissingColumnsError as e:   # its advice named options that the IMDB commands do not have
        raise DataFormatError(f"{source} is not the IMDB CSV (its columns are {e.columns}, not review and "
                              f"sentiment); a table of your own trains with minidl train --data {source} "
                              f"--text-column ... --label-column ...") from None
    if split == "official":   # (the advice was split="course" alone, which no command takes)
        raise DataFormatError(f"{source} is the Kaggle CSV, which has no official train/test split: train on it as "
                              f"a table of your own (minidl train --data {source} --text-column review "
                              f"--label-column sentiment), from Python pass split=\"course\" (first "
                              f"{COURSE_TRAIN_SIZE:,} rows train, the rest test), or use the official archive "
                              f"(`minidl data download`)")
    table.label_names = list(LABEL_NAMES)
    cut = min(COURSE_TRAIN_SIZE, len(table))
    return _recount(table.subset(range(cut), "imdb/train")), _recount(table.subset(range(cut, len(table)), "imdb/test"))


def load_imdb_unlabelled(path=None, max_reviews=None):
    """The 50,000 unlabelled reviews of ``train/unsup`` (a list of str, ordered by id)."""
    source = find_imdb(path)
    if _kind(source) == "csv":
        raise DataFormatError(f"{source} is the Kaggle CSV, which has no unlabelled reviews; they come with the "
                              f"official archive; {_HOW_TO_GET}")
    reviews = read_imdb_reviews(source, UNLABELLED)
    _report(source, reviews)
    return [r.text for r in reviews[:max_reviews]]


# ---------------------------------------------------------------------------------------- download

def download_imdb(dest=None, url=OFFICIAL_URL, sha256=None, progress=True, force=False, timeout=60):
    """Download the archive to ``dest`` (a folder; default ``~/.cache/minidl``) and return its path.

    The bytes stream into a temporary file beside the target, their SHA-256 is checked, and only
    then is the file renamed into place: an interrupted or wrong download leaves nothing behind.
    ``sha256``: the expected hex digest; None means the official archive's for the official URL
    and no check for any other URL. An existing file with the right hash is kept (``force``
    downloads again).
    """
    folder = Path(dest).expanduser() if dest is not None else default_data_dir()
    target = folder / ARCHIVE_NAME
    if sha256 is None and url == OFFICIAL_URL:
        sha256 = OFFICIAL_SHA256
    expected = sha256.lower() if sha256 else None
    if target.is_file() and not force:
        if file_sha256(target) == expected if expected else _whole_gzip(target):   # (a broken one was "there")
            _say(f"{target} is already there", progress)
            return target
        _say(f"{target} exists but {f'its SHA-256 is not {expected}' if expected else 'is no whole gzip archive'}; "
             f"downloading it again", progress)

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_path(target) as tmp:
            received, length, sha, head = _save_stream(response, tmp, progress)
            _check_download(url, received, length, sha, head, expected)
    except (DownloadError, WriteError):  # WriteError: the disk, not the network (an OSError too)
        raise
    except urllib.error.HTTPError as e:
        raise DownloadError(f"downloading {url} failed: HTTP {e.code} {e.reason}. {_manual(url, folder)}") from None
    except (urllib.error.URLError, OSError, HTTPException) as e:
        reason = getattr(e, "reason", None) or e
        raise DownloadError(f"downloading {url} failed ({type(e).__name__}: {reason}); nothing was saved. "
                            f"{_manual(url, folder)}") from None
    _say(f"saved {target} ({received / 2**20:.1f} MiB, SHA-256 {sha})", progress)
    return target


def _whole_gzip(path):
    """Whether ``path`` is a complete gzip stream (its CRC and length check out): an archive with no
    hash to compare, from a URL of the user's."""
    try:
        with gzip.open(path) as f:
            while f.read(1 << 20):
                pass
    except (OSError, EOFError, zlib.error):
        return False
    return True


def _save_stream(response, path, progress):
    """Write ``response``'s bytes to ``path``, with a progress bar; -> (bytes received, the length
    the server announced or None, their SHA-256 as hex, their first two bytes)."""
    from tqdm.auto import tqdm

    length = response.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    digest, received, head = hashlib.sha256(), 0, b""
    with open(path, "wb") as out, tqdm(total=length, unit="B", unit_scale=True, unit_divisor=1024,
                                       desc=ARCHIVE_NAME, disable=not progress) as bar:
        while chunk := response.read(1 << 20):
            head = head if len(head) >= 2 else (head + chunk)[:2]
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    return received, length, digest.hexdigest(), head


def _check_download(url, received, length, sha, head, expected):
    """Refuse a download cut short, with another hash than ``expected``, or that is no gzip archive."""
    if length is not None and received != length:
        raise DownloadError(f"downloading {url} stopped after {received:,} of {length:,} bytes; "
                            f"nothing was saved, try again")
    if expected is not None and sha != expected:
        raise CorruptDataError(f"the file downloaded from {url} has SHA-256 {sha}, expected "
                               f"{expected}: it is damaged or not the expected archive; nothing was saved. "
                               f"Try again, or pass the right --sha256 (sha256= in Python)")
    if head != b"\x1f\x8b":   # what a URL of the user's gives is checked, hash or not
        raise CorruptDataError(f"the file downloaded from {url} is not a gzip archive, as {ARCHIVE_NAME} is; "
                               f"nothing was saved. Check the URL")


def _manual(url, folder):
    return (f"Check the network, or fetch {url} yourself and put it in {folder} (or in a folder named by "
            f"${ENV_VAR})")


def _say(message, progress):
    if progress:
        print(message, file=sys.stderr)
