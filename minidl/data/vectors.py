"""Word vectors: read and write the GloVe text format, and build vectors from a corpus with no network.

Three ways to give a model its word vectors:

* **learned** (the default): ``nn.Embedding(len(vocab), E, padding_idx=0)`` starts random and
  trains with the model; nothing to build.
* **pretrained GloVe** (or any file in the GloVe / word2vec text format, any dimension):
  ``table, coverage = load_glove("glove.6B.100d.txt", vocab)`` gives a ``(len(vocab), D)``
  table aligned to the vocabulary; ``nn.Embedding.from_pretrained(table, freeze=True,
  padding_idx=0)`` uses it.
* **built here**, from the IMDB reviews themselves: ``build_ppmi_svd(token_lists)`` counts
  which words occur near which (a symmetric window), turns the counts into positive
  pointwise mutual information (PPMI) and keeps the top singular directions (truncated SVD);
  Levy, Goldberg & Dagan (2015) show this count-based recipe is competitive with word2vec and
  GloVe. ``minidl vectors build --out FILE`` does it for IMDB and saves a GloVe-format file.

The file format: one word per line, then its D values, separated by single spaces::

    the 0.418 0.24968 -0.41242 ...

A word2vec text header line ("400000 100") is recognised and skipped.
"""
from __future__ import annotations

import gzip
import itertools
import os
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..io import atomic_path
from .errors import DataFormatError, SettingError

SPECIAL_TOKENS = ("<pad>", "<unk>")
PAD_TOKEN = "<pad>"
PROBE_WORDS = ("good", "bad", "awful", "movie")
_CHUNK_LINES = 20_000  # lines parsed per NumPy call when reading a vectors file


# ----------------------------------------------------------------------------- coverage
@dataclass
class Coverage:
    """How much of a vocabulary a set of vectors covers.

    ``found`` of ``total`` word types (special tokens such as ``<pad>`` and ``<unk>`` are not
    counted); with token counts, also the share of running text those types make up.
    ``missing``: the words without a vector, most frequent first when counts are known.
    """
    found: int
    total: int
    found_tokens: int | None = None
    total_tokens: int | None = None
    missing: list = field(default_factory=list, repr=False)

    @property
    def fraction(self):
        return self.found / self.total if self.total else 0.0

    @property
    def token_fraction(self):
        if self.total_tokens is None:
            return None
        return self.found_tokens / self.total_tokens if self.total_tokens else 0.0

    def __str__(self):
        text = f"found {self.found:,} of {self.total:,} words ({100 * self.fraction:.1f}%)"
        if self.total_tokens is not None:
            text += f", {100 * self.token_fraction:.1f}% of {self.total_tokens:,} tokens"
        if self.missing:
            text += "; missing e.g. " + ", ".join(self.missing[:8])
        return text


def _vocab_tokens(vocab):
    """The tokens of ``vocab`` in id order: a ``Vocabulary`` or any sequence of strings."""
    return list(getattr(vocab, "id_to_token", vocab))


def _token_counts(tokens, counts):
    """Per-id counts as an int array, from a mapping token -> count or a sequence aligned to ids."""
    if hasattr(counts, "get"):
        return np.array([counts.get(t, 0) for t in tokens], dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    if counts.shape != (len(tokens),):
        raise ValueError(f"counts has shape {counts.shape}; expected one count per vocabulary id ({len(tokens)},)")
    return counts


def vocabulary_coverage(vocab, words, counts=None):
    """A ``Coverage``: which of ``vocab``'s word types appear in ``words`` (the vectors' words).

    ``counts``: token counts (a mapping token -> count such as a ``Counter`` over the training
    tokens, or a sequence aligned to vocabulary ids) add the token coverage.
    """
    tokens = _vocab_tokens(vocab)
    available = words if isinstance(words, (set, dict)) else set(words)
    specials = set(getattr(vocab, "specials", None) or SPECIAL_TOKENS)
    ids = [i for i, t in enumerate(tokens) if t not in specials]
    found_ids = [i for i in ids if tokens[i] in available]
    missing_ids = [i for i in ids if tokens[i] not in available]
    if counts is None:
        return Coverage(len(found_ids), len(ids), missing=[tokens[i] for i in missing_ids])
    per_id = _token_counts(tokens, counts)
    missing_ids.sort(key=lambda i: -per_id[i])  # stable: ties keep vocabulary order
    return Coverage(len(found_ids), len(ids), int(per_id[found_ids].sum()), int(per_id[ids].sum()),
                    [tokens[i] for i in missing_ids])


def embedding_matrix(vocab, words, matrix, seed=0, missing="random"):
    """A ``(len(vocab), D)`` float32 table whose row i is the vector of the vocabulary's token i.

    ``words`` (V',) and ``matrix`` (V', D): any word vectors (``load_glove`` without a vocab,
    ``build_ppmi_svd``). Rows of the table:

    * the padding token (``vocab.pad_id``, or ``<pad>`` in a list of tokens): zeros, so padded
      positions add nothing (pass ``padding_idx=vocab.pad_id`` to keep it so);
    * a token found in ``words``: its vector;
    * a token not found (``<unk>`` included, unless the file has it): with ``missing="random"``
      (the default) a seeded draw from N(0, σ²), σ the standard deviation of the values of
      the vectors found for this vocabulary (of all of ``matrix`` if none is found), so an
      unseen word looks like a typical word and training can move it; with
      ``missing="zeros"`` a zero row.

    The table plugs into ``nn.Embedding.from_pretrained(table, freeze=True, padding_idx=0)``.
    """
    if missing not in ("random", "zeros"):
        raise ValueError(f'missing must be "random" or "zeros", got {missing!r}')
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != len(words):
        raise ValueError(f"matrix of shape {matrix.shape} does not hold one row for each of the {len(words)} words")
    tokens = _vocab_tokens(vocab)
    row_of = {w: i for i, w in reversed(list(enumerate(words)))}  # the first occurrence wins
    table = np.zeros((len(tokens), matrix.shape[1]), dtype=np.float32)
    ids = [i for i, t in enumerate(tokens) if t in row_of]
    rows = [row_of[tokens[i]] for i in ids]
    if missing == "random":
        reference = matrix[rows] if rows else matrix
        scale = float(reference.std()) if reference.size else 1.0
        table[:] = np.random.default_rng(seed).normal(0.0, scale, size=table.shape)
    table[ids] = matrix[rows]
    pad_id = getattr(vocab, "pad_id", tokens.index(PAD_TOKEN) if PAD_TOKEN in tokens else None)
    if pad_id is not None:
        table[pad_id] = 0.0
    return table


# ----------------------------------------------------------------------------- reading
def _open_text(path):
    path = os.fspath(path)
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"PK" and path.endswith(".npz"):   # unzipping one gives .npy arrays, not vectors
        raise DataFormatError(f"{path} is a NumPy archive (a minidl checkpoint?), not word vectors; give a GloVe "
                              f"text file (.txt or .txt.gz, e.g. from minidl vectors build)")
    if magic == b"PK":
        raise DataFormatError(f"{path} is a zip archive; unzip it and pass one of the .txt files inside "
                              f"(e.g. glove.6B.100d.txt)")
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace")   # -sig: a BOM (Windows editors)
    return open(path, encoding="utf-8-sig", errors="replace")                  # was read into the first word


def _is_float(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


class _GloveParser:
    """Splits lines into (word, values text), checks every line's dimension, parses in chunks."""

    def __init__(self, path, dim, errors):
        self.path, self.dim, self.errors = os.fspath(path), dim, errors
        self.dim_source = "as requested" if dim is not None else None
        self.skipped = []           # (line number, reason) for errors="skip"
        self.lines = 0              # the lines that held a word and its values

    def fail(self, number, reason):
        if self.errors == "raise":
            raise DataFormatError(f"{self.path}, line {number}: {reason}")
        self.skipped.append((number, reason))

    def read_header(self, line):
        """Whether the first ``line`` is a word2vec text header ("count dim"); if so, it sets
        the dimension (which must match a requested one)."""
        header = line.split()
        if not (len(header) == 2 and all(h.isdigit() for h in header)):
            return False
        if self.dim is not None and int(header[1]) != self.dim:
            raise DataFormatError(f"{self.path}: the header says dimension {header[1]}, "
                                  f"but dim={self.dim} was requested")
        self.dim, self.dim_source = int(header[1]), "from the word2vec header on line 1"
        return True

    def split(self, number, line):
        """(word, values text) or None for a blank or skipped line."""
        line = line.rstrip("\r\n")
        if not line.strip():
            return None
        word, _, rest = line.partition(" ")
        n_values = rest.count(" ") + 1 if rest else 0
        if self.dim is not None and n_values == self.dim and word:
            return word, rest
        fields = line.split()  # the slow path: tabs, repeated spaces, words with spaces, errors
        if len(fields) < 2:
            self.fail(number, f"a word with no values ({line[:40]!r})")
            return None
        if self.dim is None:
            self.dim, self.dim_source = len(fields) - 1, f"inferred from line {number}"
        if len(fields) - 1 == self.dim:
            return fields[0], " ".join(fields[1:])
        if len(fields) - 1 < self.dim or _is_float(fields[-self.dim - 1]):
            self.fail(number, f"{len(fields) - 1} values, but the vectors have dimension {self.dim} "
                              f"({self.dim_source}); is the file truncated or a mix of two files?")
            return None
        # more fields than D + 1 whose extra ones are not numbers: a word with spaces in it
        # (glove.840B has a few, such as ". . ."); the last D fields are the vector
        return " ".join(fields[:-self.dim]), " ".join(fields[-self.dim:])

    def parse(self, chunk):
        """The (n, D) float32 values of a chunk of (line number, word, values text); lines
        that fail to parse are raised or dropped. Returns (words, values)."""
        _, words, rests = zip(*chunk)
        try:
            values = np.loadtxt(rests, dtype=np.float32, delimiter=" ", comments=None, ndmin=2)
        except ValueError:
            values = None
        if values is not None and np.isfinite(values).all():
            return list(words), values
        kept, rows = [], []
        for number, word, rest in chunk:  # find the offending line(s)
            try:
                with np.errstate(over="ignore"):    # 1e39 -> inf, refused below
                    row = np.array(rest.split(" "), dtype=np.float32)
            except ValueError:
                self.fail(number, f"a value is not a number ({rest[:60]!r})" + (
                    "; a vectors file is GloVe text: a word and its numbers on each line (minidl vectors build "
                    "writes one)" if self.errors == "raise" else ""))
                continue
            if np.isfinite(row).all():
                rows.append(row)
                kept.append(word)
            else:
                self.fail(number, f"a value is nan, inf or too large for float32 ({rest[:60]!r})")
        return kept, np.array(rows, dtype=np.float32).reshape(len(rows), self.dim)


def load_glove(path, vocab=None, dim=None, counts=None, seed=0, missing="random", errors="raise", log=print):
    """Read word vectors in the GloVe text format ("word v1 v2 ... vD" per line), any D.

    ``path``: a .txt file, or gzip-compressed (.gz); a first line "count dim" (word2vec text
    format) is skipped. D is inferred from the first line (or checked against ``dim``).
    A line with another number of values, or a value that is not a number, raises a
    ``ValueError`` naming the line; ``errors="skip"`` drops such lines instead and reports
    how many. If a word appears twice, its first vector wins.

    * Without ``vocab``: returns ``(words, matrix)``, a list of V strings and a (V, D) float32 array.
    * With ``vocab`` (a ``Vocabulary`` or a list of tokens in id order): returns
      ``(table, coverage)``, a ``(len(vocab), D)`` float32 table aligned to the vocabulary
      (see ``embedding_matrix`` for the pad row and words the file lacks, ``seed`` and
      ``missing``) and a ``Coverage`` ("found 18,234 of 20,000 words (91.2%)"); ``counts``
      (token counts) adds the share of running text covered. Only the vocabulary's words are
      parsed, so a 2-million-word file loads quickly.

    ``log``: where the summary lines go (``None`` for silence).
    """
    if errors not in ("raise", "skip"):
        raise ValueError(f'errors must be "raise" or "skip", got {errors!r}')
    wanted = set(_vocab_tokens(vocab)) if vocab is not None else None
    parser = _GloveParser(path, dim, errors)
    try:
        with _open_text(path) as f:
            blocks, duplicates = _read_vectors(f, parser, wanted)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:   # a download or copy cut short
        raise DataFormatError(f"{parser.path} is a damaged gzip file ({e}); copy or download it again") from None
    if not parser.lines:   # (a word2vec header alone, a download cut short after it, read as 0 words and went on)
        raise DataFormatError(f"{parser.path} holds no word vectors (is it empty, or cut short after its header?)")
    words = [w for block_words, _ in blocks for w in block_words]
    matrix = np.concatenate([values for _, values in blocks]) if blocks else np.zeros((0, parser.dim), np.float32)
    if log is not None:
        scope = "vocabulary words" if vocab is not None else "words"
        first = min(parser.skipped, default=None)   # the first malformed line skipped, and why
        note = f" (skipped {len(parser.skipped)} malformed lines, first: line {first[0]}: {first[1]})" if first else ""
        note += f" ({duplicates} repeated words ignored)" if duplicates else ""
        log(f"read {len(words):,} {scope} with {parser.dim}-d vectors from {parser.path}{note}")
    if vocab is None:
        return words, matrix
    coverage = vocabulary_coverage(vocab, words, counts)
    if log is not None:
        log(str(coverage))
    return embedding_matrix(vocab, words, matrix, seed=seed, missing=missing), coverage


def _read_vectors(lines, parser, wanted):
    """Parse the open vectors file ``lines`` with ``parser``, in chunks of ``_CHUNK_LINES``
    lines: returns ([(words, (n, D) float32 values)] per chunk, the number of repeated words
    ignored). ``wanted``: the set of words to keep (None: all); only they are parsed."""
    seen, chunk, blocks, duplicates = set(), [], [], 0
    for number, line in enumerate(lines, start=1):
        if number == 1 and parser.read_header(line):
            continue
        item = parser.split(number, line)
        if item is None:
            continue
        parser.lines += 1
        word, rest = item
        if word in seen:  # the first vector of a word wins
            duplicates += 1
            continue
        if wanted is not None and word not in wanted:
            continue
        seen.add(word)
        chunk.append((number, word, rest))
        if len(chunk) == _CHUNK_LINES:
            blocks.append(parser.parse(chunk))
            chunk = []
    if chunk:
        blocks.append(parser.parse(chunk))
    return blocks, duplicates


# ----------------------------------------------------------------------------- writing
def save_glove(path, words, matrix, precision=6):
    """Write ``words`` (V,) and ``matrix`` (V, D) in the GloVe text format, each value with
    ``precision`` decimals (so ``load_glove`` gives them back to within 0.5·10^-precision).
    A path ending in .gz is gzip-compressed. The file is written atomically: a crash leaves
    the old file, never half of the new one."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != len(words):
        raise ValueError(f"matrix of shape {matrix.shape} does not hold one row for each of the {len(words)} words")
    if not np.isfinite(matrix).all():
        raise ValueError("the matrix holds NaN or Inf values; the GloVe format cannot carry them")
    for i, word in enumerate(words):
        if not isinstance(word, str) or not word or len(word.split()) != 1 or word != word.strip():
            raise ValueError(f"word {i} ({word!r}) is empty or holds whitespace; a GloVe line is "
                             f"'word v1 ... vD' separated by spaces, so it could not be read back")
    row_format = " ".join([f"%.{precision}f"] * matrix.shape[1])
    path = os.fspath(path)
    with atomic_path(path) as tmp:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(tmp, "wt", encoding="utf-8", newline="\n") as f:
            for word, row in zip(words, matrix.tolist()):
                f.write(f"{word} {row_format % tuple(row)}\n")
    return path


# ----------------------------------------------------------------------------- building: PPMI + SVD
_WEIGHTINGS = {
    "harmonic": lambda k, window: 1.0 / k,                   # GloVe: a word k apart counts 1/k
    "linear": lambda k, window: (window - k + 1) / window,   # word2vec's dynamic window, in expectation
    "uniform": lambda k, window: 1.0,
}


def count_words(token_lists, min_count=5, max_vocab=30000):
    """The vocabulary of the vectors: words seen at least ``min_count`` times, the
    ``max_vocab`` most frequent (ties in alphabetical order). Returns (words, counts)."""
    counts = Counter(itertools.chain.from_iterable(token_lists))
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    if max_vocab is not None:
        kept = kept[:max_vocab]
    return kept, np.array([counts[w] for w in kept], dtype=np.int64)


def cooccurrence_matrix(token_lists, words, window=5, weighting="harmonic"):
    """X (V, V), a ``scipy.sparse.csr_matrix`` (float64): X[w, c] sums weight(k) over every
    time word c occurs k ≤ ``window`` positions before or after word w in the same text.

    Words not in ``words`` keep their place (they are gaps, so "distance" is distance in the
    text) but are not counted. X is symmetric. No Python loop over tokens: the texts are
    concatenated into one id array with ``window`` gap ids between texts (so no window spans
    two texts), and for each offset k the pairs are ``ids[:-k]`` against ``ids[k:]``.
    """
    import scipy.sparse as sp

    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if weighting not in _WEIGHTINGS:
        raise ValueError(f"weighting must be one of {sorted(_WEIGHTINGS)}, got {weighting!r}")
    index = {w: i for i, w in enumerate(words)}
    gap = (None,) * window
    total = sum(len(t) for t in token_lists) + window * len(token_lists)
    stream = itertools.chain.from_iterable(itertools.chain(tokens, gap) for tokens in token_lists)
    ids = np.fromiter(map(index.get, stream, itertools.repeat(-1)), dtype=np.int32, count=total)
    V = len(words)
    X = sp.csr_matrix((V, V), dtype=np.float64)
    for k in range(1, window + 1):
        left, right = ids[:-k], ids[k:]
        keep = (left >= 0) & (right >= 0)
        pairs = sp.coo_matrix((np.ones(int(keep.sum())), (left[keep], right[keep])), shape=(V, V)).tocsr()
        X = X + _WEIGHTINGS[weighting](k, window) * pairs
    return (X + X.T).tocsr()


def ppmi(counts, smoothing=0.75):
    """Positive pointwise mutual information of a (words × contexts) count matrix (sparse or dense).

        PMI(w, c) = log( P(w, c) / (P(w) · P_α(c)) ),   PPMI = max(PMI, 0)

    with P(w, c) = #(w, c) / N, P(w) = #(w) / N and the context distribution smoothed,
    P_α(c) = #(c)^α / Σ_c' #(c')^α (α = ``smoothing``; Levy, Goldberg & Dagan 2015: α = 0.75
    keeps rare contexts from getting huge PMI). Cells with no count stay 0 (PMI would be
    -inf). Returns a ``scipy.sparse.csr_matrix`` (float64).
    """
    import scipy.sparse as sp

    X = sp.csr_matrix(counts, dtype=np.float64)
    X.sum_duplicates()
    X.eliminate_zeros()
    word_totals = np.asarray(X.sum(axis=1)).ravel()
    context_smoothed = np.asarray(X.sum(axis=0)).ravel() ** smoothing
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    # log( #(w,c) · Σ #(c')^α / (#(w) · #(c)^α) ): the N's cancel
    pmi = np.log(X.data) + np.log(context_smoothed.sum()) - np.log(word_totals[rows]) - np.log(context_smoothed[X.indices])
    M = sp.csr_matrix((np.maximum(pmi, 0.0), X.indices.copy(), X.indptr.copy()), shape=X.shape)
    M.eliminate_zeros()
    return M


def truncated_svd(matrix, dim, power_iterations=5, oversample=20, seed=0):
    """The ``dim`` largest singular values of a (sparse or dense) matrix A and their left
    singular vectors: U (n, dim) float64, s (dim,) in decreasing order.

    Randomized SVD (Halko, Martinsson & Tropp 2011): Q = an orthonormal basis of A·Ω for a
    seeded Gaussian Ω with ``dim + oversample`` columns, sharpened by ``power_iterations``
    rounds of Q ← orth(A·orth(Aᵀ·Q)) (each multiplies the gap between kept and dropped
    singular values), then the small exact SVD of QᵀA. Every step is a sparse × dense
    product, which is what makes a 30,000-word PPMI matrix take seconds rather than the
    minutes ARPACK (``scipy.sparse.linalg.svds``) needs. The products run in float32; the
    small SVD in float64. Each singular vector's sign is fixed (largest entry positive) so
    runs agree.
    """
    import scipy.sparse as sp

    if not 1 <= dim < min(matrix.shape):
        raise SettingError(f"dim={dim} must be at least 1 and less than the number of words ({min(matrix.shape)}); "
                           f"lower the dimension, or lower min_count / raise max_vocab to keep more words")
    A = sp.csr_matrix(matrix, dtype=np.float32)
    At = A.T.tocsr()
    width = min(dim + oversample, min(A.shape))
    omega = np.random.default_rng(seed).standard_normal((A.shape[1], width)).astype(np.float32)
    Q, _ = np.linalg.qr(A @ omega)
    for _ in range(power_iterations):
        Q, _ = np.linalg.qr(At @ Q)
        Q, _ = np.linalg.qr(A @ Q)
    B = (At @ Q).T.astype(np.float64)           # Qᵀ A, (width, n_columns)
    U_small, s, _ = np.linalg.svd(B, full_matrices=False)
    U = Q.astype(np.float64) @ U_small[:, :dim]
    s = s[:dim]
    signs = np.sign(U[np.abs(U).argmax(axis=0), np.arange(dim)])
    return U * np.where(signs == 0, 1.0, signs), s


def check_whole_numbers(**settings):
    """``name=(value, least)`` each: raise a one-line SettingError for a value that is not a whole
    number >= least (the vector builders' settings, checked before any work)."""
    for name, (value, least) in settings.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < least:
            raise SettingError(f"{name}={value!r} is not allowed; pass a whole number >= {least}")


def check_ppmi_arguments(dim=100, window=5, min_count=5, max_vocab=30000, smoothing=0.75, power=0.5):
    """Raise a one-line SettingError for a setting ``build_ppmi_svd`` cannot use (called before any work)."""
    check_whole_numbers(dim=(dim, 1), window=(window, 1), min_count=(min_count, 1), max_vocab=(max_vocab, 2))
    if dim >= max_vocab:  # the SVD of a V x V matrix, V <= max_vocab, has fewer than dim directions
        raise SettingError(f"dim={dim} needs more than {dim} words, but max_vocab={max_vocab} keeps at most "
                           f"{max_vocab}; pass a dim below max_vocab")
    if not (isinstance(smoothing, (int, float)) and 0 < smoothing <= 1):
        raise SettingError(f"smoothing={smoothing!r} is not allowed; pass a number in (0, 1] "
                           f"(0.75 as word2vec; 1: none)")
    if not (isinstance(power, (int, float)) and 0 <= power <= 1):
        raise SettingError(f"power={power!r} is not allowed; pass a number in [0, 1] (0.5; 1 is the textbook U·Σ)")


def build_ppmi_svd(token_lists, dim=100, window=5, min_count=5, max_vocab=30000, smoothing=0.75, power=0.5,
                   weighting="harmonic", seed=0, log=None):
    """Word vectors from a tokenised corpus, no network: co-occurrence counts → PPMI → truncated SVD.

    1. vocabulary: the ``max_vocab`` most frequent words seen ≥ ``min_count`` times;
    2. X = co-occurrence counts within ``window`` words either side, weighted by ``weighting``
       ("harmonic": 1/distance, as GloVe; "linear"; "uniform") — see ``cooccurrence_matrix``;
    3. M = PPMI(X) with context smoothing α = ``smoothing`` — see ``ppmi``;
    4. M ≈ U Σ Vᵀ with the top ``dim`` singular values; word vectors U·Σ^``power`` (Levy et
       al. 2015 found p = 0.5 or 0 better than the "textbook" p = 1), each scaled to unit
       length, so a dot product is a cosine similarity.

    Returns (words, matrix): V words, most frequent first, and a (V, dim) float32 array.
    ``log``: a function for progress lines (e.g. ``print``), or None.
    """
    say = log or (lambda *_: None)
    start = time.perf_counter()
    words, counts = count_words(token_lists, min_count, max_vocab)
    say(f"vocabulary: {len(words):,} words seen >= {min_count} times "
        f"({counts.sum():,} of {sum(len(t) for t in token_lists):,} tokens) [{time.perf_counter() - start:.1f} s]")
    if len(words) <= dim:
        raise SettingError(f"only {len(words)} words are seen >= {min_count} times, too few for {dim}-d vectors; "
                           f"use a larger corpus, a lower min_count or a lower dim")
    X = cooccurrence_matrix(token_lists, words, window, weighting)
    say(f"co-occurrences: {X.nnz:,} word pairs within {window} words [{time.perf_counter() - start:.1f} s]")
    M = ppmi(X, smoothing)
    del X
    say(f"PPMI (alpha={smoothing}): {M.nnz:,} positive cells [{time.perf_counter() - start:.1f} s]")
    say(f"SVD: the top {dim} of a {M.shape[0]:,} x {M.shape[1]:,} matrix, randomized (on IMDB 4-30 s on two "
        f"cores) ...")
    U, s = truncated_svd(M, dim, seed=seed)
    vectors = U * s ** power
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    say(f"SVD: top {dim} singular values {s[0]:.1f} ... {s[-1]:.1f} [{time.perf_counter() - start:.1f} s]")
    return words, vectors.astype(np.float32)


# ----------------------------------------------------------------------------- using them
def nearest_neighbours(word, words, matrix, k=10):
    """The ``k`` words whose vectors have the highest cosine similarity with ``word``'s:
    a list of (word, similarity), most similar first, ``word`` itself left out."""
    try:
        i = words.index(word) if isinstance(words, list) else list(words).index(word)
    except ValueError:
        raise KeyError(f"{word!r} has no vector (it is not among the {len(words):,} words)") from None
    matrix = np.asarray(matrix, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1)
    unit = matrix / np.where(norms > 0, norms, 1.0)[:, None]
    similarity = unit @ unit[i]
    similarity[i] = -np.inf
    k = min(k, len(words) - 1)
    top = np.argpartition(-similarity, k - 1)[:k] if k > 0 else np.array([], dtype=np.int64)
    top = top[np.argsort(-similarity[top], kind="stable")]
    return [(words[j], float(similarity[j])) for j in top]


def format_neighbours(word, words, matrix, k=10):
    """One line: "good: great (0.81), decent (0.77), ..." (or why there is none). A word the file
    lacks as written is looked up lowercased, as the cleaning writes every word ("Awful" had no vector)."""
    for query in dict.fromkeys((word, word.lower())):
        try:
            neighbours = nearest_neighbours(query, words, matrix, k)
        except KeyError:
            continue
        return f"{word if query == word else f'{word} (as {query})'}: " + ", ".join(f"{w} ({s:.2f})"
                                                                                 for w, s in neighbours)
    return f"{word}: (no vector)"
