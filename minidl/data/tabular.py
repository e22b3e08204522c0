"""Your own data: a CSV, TSV or JSON-lines file with a text column and a label column.

    ds = load_table("headlines.csv", text_column="headline", label_column="category")
    ds.label_names            # ["business", "science", "sport"]: sorted unique labels
    train, val = ds.split(0.1, seed=0)

Any number of classes. Labels become ints in ``range(len(ds.label_names))``; pass
``label_names=[...]`` to fix their order (and to reject any other value). Problems in the file
are reported, never silently dropped:

* a missing column -> ``DataFormatError`` naming the missing and the available columns;
* a label outside ``label_names`` (or no label, or a JSON list or object) -> ``DataFormatError``
  naming the row;
* a quote that is never closed (it would swallow the rest of the file into one text), or a
  row with more fields than the header (an unquoted comma in a text) -> ``DataFormatError``
  naming the line; so is a text or label column named twice in the header;
* bytes that are not valid in ``encoding`` -> replaced with U+FFFD, counted in
  ``ds.info["decode_errors"]`` and reported with a ``DataWarning``;
* labels that differ only in case, spaces or number format ("pos"/"Pos", "1"/"1.0") -> kept as
  separate classes and reported with a ``DataWarning``;
* empty texts -> kept (so row numbers still match the file), counted in
  ``ds.info["empty_texts"]`` and reported; the encoder drops them later, saying so.

A table that cannot train a classifier is refused when it is loaded, not with a crash or a
meaningless score later (``min_classes=1, min_rows=1`` switch this off):

* every text empty -> ``DataFormatError`` naming the text column;
* fewer than 2 classes among the rows with a text ("single-class data") -> ``DataFormatError``;
* fewer than ``MIN_ROWS`` rows with a text -> ``DataFormatError``: ``minidl train`` holds out
  20% of the rows for the test split and then a validation fraction (default 10%) of the rest,
  and an empty split fails later (7 rows is the least that fills all three; 10 leaves a margin).

``ds.info["lines"][i]`` is the line of the file where example ``i`` starts (1-based), for
finding a row again in an editor.
"""
from __future__ import annotations

import bisect
import csv
import difflib
import io
import json
import re
import warnings
from pathlib import Path

import numpy as np

from .dataset import TextDataset
from .errors import DataFormatError, DataNotFoundError, DataWarning, MissingColumnsError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
_INTEGER = re.compile(r"-?\d+")
_SHOWN = 5  # how many row numbers a report lists before "..."
MIN_ROWS = 10  # rows with a text that a table needs by default (see the module docstring)


def load_table(path, text_column, label_column, format=None, label_names=None, encoding="utf-8", name=None,
               min_rows=MIN_ROWS, min_classes=2):
    """A ``TextDataset`` from a table file: one example per row.

    Args:
        path: a .csv, .tsv, .jsonl or .json file (.json: JSON lines, or one JSON array of objects).
        text_column, label_column: the column (JSON key) names.
        format: "csv", "tsv", "jsonl" or "json"; None infers it from the extension.
        label_names: the labels in the order you want (index = class id); None: the sorted
            unique values of the label column (numerically when they are all integers).
        encoding: of the file; a UTF-8 byte-order mark is skipped.
        name: the dataset's name (default: the file name without extension).
        min_rows, min_classes: the fewest rows with a non-empty text, and the fewest classes
            among them, that the table must have (a ``DataFormatError`` otherwise); 1 and 1 to
            read any table.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"load_table: {path} is not a file" + ("" if path.exists() else " (it does not exist)"))
    fmt = _format_of(path, format)
    data = path.read_bytes()
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") and _is_utf8(encoding):
        raise DataFormatError(f"{path} is UTF-16 (Excel's \"Unicode text\"); save it as UTF-8 (\"CSV UTF-8\")")
    text, bad_lines = decode_lines(data, encoding)
    rows, columns = _read_rows(text, fmt, path)
    _check_columns(path, columns, (text_column, label_column))
    texts, raw_labels, lines, where, bad_rows = _collect_rows(rows, text_column, label_column, bad_lines, path)

    names, labels = _encode_labels(raw_labels, label_names, where, path, label_column)
    empty = [where[i] for i, t in enumerate(texts) if not t.strip()]
    _check_trainable(path, texts, labels, names, text_column, label_column, columns, min_rows, min_classes)
    info = {"source": str(path), "format": fmt, "lines": lines,
            "decode_errors": len(bad_rows), "empty_texts": len(empty)}
    if bad_rows:
        warnings.warn(f"{path}: {len(bad_rows)} row(s) had bytes that are not valid {encoding} ({listing(bad_rows)}); "
                      f"they were replaced with U+FFFD. If the file is not {encoding}, save it as UTF-8 (or, "
                      f"from Python, pass encoding=)",
                      DataWarning, stacklevel=2)
    if len(names) > max(10, len(texts) // 2) and min_classes > 1:    # about one row a class: nothing to learn
        warnings.warn(f"{path}: column {label_column!r} has {len(names):,} different labels in {len(texts):,} rows; "
                      f"is it the label column (not an id)? Else check --label-column", DataWarning, stacklevel=2)
    if label_names is None:   # the file's own labels: one class may be written two ways, or mistyped
        _warn_alike(path, names, label_column)
        _warn_typos(path, names, labels, [f"line {line}" if line else place for line, place in zip(lines, where)])
    if empty:
        warnings.warn(f"{path}: {len(empty)} row(s) have an empty text ({listing(empty)}); they are kept in the "
                      f"dataset and dropped when it is encoded", DataWarning, stacklevel=2)
    return TextDataset(texts, labels, names, name or path.stem, info)


def _check_columns(path, columns, wanted):
    """Raise a DataFormatError naming a ``wanted`` column the header names twice, or the ``wanted``
    columns that the file lacks, and those it has."""
    twice = [c for c in wanted if isinstance(columns, list) and columns.count(c) > 1]
    if twice:  # dict(zip(header, fields)) would keep the last of them
        raise DataFormatError(f"{path}: the header names column {twice[0]!r} {columns.count(twice[0])} times; "
                              f"rename all but one")
    if missing := [c for c in wanted if c not in columns]:
        raise MissingColumnsError(f"{path}: no column {' or '.join(map(repr, missing))}; the columns are "
                                  f"{_column_list(columns)}. Pass the right names as text_column= / "
                                  f"label_column= (--text-column / --label-column)", _column_list(columns))


def _check_trainable(path, texts, labels, names, text_column, label_column, columns, min_rows, min_classes):
    """Raise a DataFormatError for a table that cannot train a classifier: every text empty, or,
    among the rows with a text, fewer than ``min_rows`` rows or ``min_classes`` classes, or (training)
    a class with none. ``columns``: the file's column names."""
    usable = np.array([bool(t.strip()) for t in texts], dtype=bool)
    if not texts and min_rows > 0:
        raise DataFormatError(f"{path}: no rows, only the column names; add rows (one example per row)")
    if texts and not usable.any():
        raise DataFormatError(f"{path}: every text in column {text_column!r} is empty ({len(texts)} rows); is it the "
                              f"column with the texts? The columns are {_column_list(columns)}")
    present = [names[i] for i in np.unique(labels[usable])]
    if len(present) < min_classes:
        kind = (f"single-class data: AUC is undefined and the model learns nothing; every row with a text has label "
                f"{present[0]!r}" if len(present) == 1 else f"{len(present)} classes ({present})")
        raise DataFormatError(f"{path}: {kind} in column {label_column!r}; a classifier needs rows of at least "
                              f"{min_classes} classes. Add rows of the other class(es), or check --label-column")
    # a class with no text was a class all the same: the untrained model still chose it, and accuracy fell to 0
    if min_classes > 1 and (absent := [name for name in names if name not in present]):
        raise DataFormatError(f"{path}: class {absent[0]!r} has no row with a text, so a model cannot learn it; "
                              f"give it rows with a text, or remove it (its rows, or its name in --label-names)")
    if int(usable.sum()) < min_rows:
        raise DataFormatError(f"{path}: only {int(usable.sum())} rows with a text; training needs at least {min_rows} "
                              f"(20% of the rows are held out for testing and a validation fraction of the rest, "
                              f"and none of the three may be empty). Add rows")


def _column_list(columns):
    """The columns as a report shows them: in file order (a list) or sorted (a set, from JSON)."""
    return columns if isinstance(columns, list) else sorted(columns)


def _collect_rows(rows, text_column, label_column, bad_lines, path):
    """The columns of ``rows`` (from ``_read_rows``) as lists, one entry per row: (texts,
    raw labels as strings, first lines, places such as "row 3 (line 4)"), and the places of
    the rows that held undecodable bytes (``bad_lines``: their sorted line numbers)."""
    texts, raw_labels, lines, where, bad_rows = [], [], [], [], []
    for first_line, last_line, place, record in rows:
        raw_labels.append(_label_key(_row_label(record, label_column, place, path)))
        text = record.get(text_column)
        texts.append("" if text is None else str(text))   # a missing text is "", a JSON number its digits
        lines.append(first_line)
        where.append(place)
        if bad_lines and (_any_between(bad_lines, first_line, last_line) if first_line is not None
                          else "\ufffd" in texts[-1] + raw_labels[-1]):  # a JSON array: no line numbers
            bad_rows.append(place)
    return texts, raw_labels, lines, where, bad_rows


def _row_label(record, label_column, place, path):
    """The label of one row (a string is stripped); a missing or empty one is an error, and so
    is a JSON list or object, which would otherwise become a class of its own ("[1, 2]")."""
    label = record.get(label_column)
    if isinstance(label, str):
        label = label.strip()
    if label is None or label == "":
        raise DataFormatError(f"{path}: {place} has no label in column {label_column!r}")
    if isinstance(label, (list, dict)):
        shown = json.dumps(label)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise DataFormatError(f"{path}: {place} has the label {shown} in column {label_column!r}, a JSON "
                              f"{'list' if isinstance(label, list) else 'object'}; a label is one string, number "
                              f"or true/false (one class per row)")
    return label


def _is_utf8(encoding):
    return encoding.lower().replace("_", "-") in ("utf-8", "utf8")


def decode_lines(data, encoding="utf-8"):
    """``data`` (bytes) as text, and the sorted 1-based numbers of the lines that were not valid.

    Invalid bytes become U+FFFD instead of stopping the load; the line numbers let the caller
    say which rows were affected. A UTF-8 byte-order mark is dropped.
    """
    if _is_utf8(encoding) and data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode(encoding), []
    except UnicodeDecodeError:
        pass
    if "\n".encode(encoding) != b"\n":  # e.g. UTF-16: lines cannot be cut at b"\n"; find the lines afterwards
        text = data.decode(encoding, errors="replace")
        return text, [i + 1 for i, line in enumerate(io.StringIO(text, newline="")) if "\ufffd" in line]
    lines, bad = [], []
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(line.decode(encoding))
        except UnicodeDecodeError:
            lines.append(line.decode(encoding, errors="replace"))
            bad.append(number)
    return "\n".join(lines), bad


def _format_of(path, format):
    if format is not None:
        if format not in set(FORMATS.values()):
            raise DataFormatError(f"load_table: unknown format {format!r}; use one of {sorted(set(FORMATS.values()))}")
        return format
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise DataFormatError(f"cannot tell the format of {path} from its extension {suffix!r}: name it "
                              f"{', '.join(FORMATS)} (or, from Python, pass format=)")
    return FORMATS[suffix]


def _read_rows(text, fmt, path):
    """[(first line, last line, "row N (line L)", {column: value})], and the column names."""
    if fmt in ("csv", "tsv"):
        return _read_delimited(text, "," if fmt == "csv" else "\t", path)
    if fmt == "json" and text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataFormatError(f"{path}: not valid JSON ({e})") from None
        rows = [(None, None, f"record {i + 1}", r) for i, r in enumerate(records)]
    else:
        rows = []
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                rows.append((number, number, f"line {number}", json.loads(line)))
            except json.JSONDecodeError as e:
                raise DataFormatError(f"{path}: line {number} is not valid JSON ({e}); a JSON-lines file "
                                      f"has one object per line") from None
    columns = set()
    for _, _, place, record in rows:
        if not isinstance(record, dict):
            raise DataFormatError(f"{path}: {place} is a JSON {type(record).__name__}, not an object "
                                  f"with named fields")
        columns.update(record)
    return rows, columns


def _read_delimited(text, delimiter, path):
    """Rows as ``_read_rows`` gives them. A quote that is never closed swallows the rest of the file
    into one field, and only the csv module's strict mode says so; so the file is read strictly
    first, and read again leniently (as it always was: a stray quote inside a field is kept) only
    when strict mode objects to something else."""
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))  # long reviews are single fields
    state = {"start": 1, "line": 0}  # where the row being read starts; the last line read
    try:
        return _parse_delimited(text, delimiter, path, True, state)
    except csv.Error as e:
        if "end of data" in str(e):  # the end of the file inside a quoted field
            raise DataFormatError(f"{path}: line {state['start']}: a quote (\") opens a field that is never closed, "
                                  f"so the rest of the file (to line {state['line']}) would be one text; close it, or "
                                  f"write a quote inside a quoted field as two (\"\")") from None
        if state["line"] > state["start"]:   # the quoted field ran over lines: the rows between would be one text
            raise DataFormatError(f"{path}: line {state['start']}: a quote (\") opens a field that only closes on line "
                                  f"{state['line']}, so the rows between would be one text; close it on its own line, "
                                  f"or write a quote inside a quoted field as two (\"\")") from None
    try:
        return _parse_delimited(text, delimiter, path, False, state)
    except csv.Error as e:
        raise DataFormatError(f"{path}: line {state['line']}: {e}") from None


def _parse_delimited(text, delimiter, path, strict, state):
    """(rows, header) of a CSV / TSV text; ``state`` follows the reader (the first line of the
    row being read, the last line read) so that a csv.Error can be placed in the file."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=strict)
    state["start"] = 1
    try:
        header = [h.strip() for h in next(reader)]
        rows, number = [], 0
        state["start"] = reader.line_num + 1
        for fields in reader:
            start, state["start"] = state["start"], reader.line_num + 1
            if not fields:  # a blank line
                continue
            number += 1
            if any(field.strip() for field in fields[len(header):]):   # zip would drop them: a text cut short
                raise DataFormatError(f"{path}: line {start} has {len(fields)} fields but the header has "
                                      f"{len(header)}; is there a {'comma' if delimiter == ',' else 'tab'} in a "
                                      f"text? Put that text in quotes (\"...\")")
            rows.append((start, reader.line_num, f"row {number} (line {start})", dict(zip(header, fields))))
    except StopIteration:
        raise DataFormatError(f"{path}: the file is empty (expected a header row with the column names)") from None
    finally:
        state["line"] = reader.line_num
    return rows, header


def _label_key(value):
    """Labels compare as strings: JSON's 1 and a CSV's "1" are the same class."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _encode_labels(raw_labels, label_names, where, path, label_column):
    if label_names is None:
        distinct = set(raw_labels)
        names = sorted(distinct, key=int if all(_INTEGER.fullmatch(v) for v in distinct) else None)
    else:
        names = [_label_key(n) for n in label_names]
        if duplicates := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"load_table: label_names has duplicates {duplicates}")
    index = {n: i for i, n in enumerate(names)}
    labels = np.empty(len(raw_labels), dtype=np.int64)
    for i, value in enumerate(raw_labels):
        try:
            labels[i] = index[value]
        except KeyError:
            raise DataFormatError(f"{path}: {where[i]} has label {value!r} in column {label_column!r}, which is "
                                  f"not one of the label names {names}") from None
    return names, labels


def _warn_alike(path, names, label_column):
    """Warn, once, of the groups of ``names`` that differ only in case, spaces or how a number is written
    ("Pos" and "pos", "1" and "1.0"): a user's one class, split in two."""
    groups = {}
    for name in names:
        try:
            form = float(name)
        except ValueError:
            form = " ".join(name.casefold().split())
        groups.setdefault(form, []).append(name)
    if alike := [group for group in groups.values() if len(group) > 1]:
        shown = "; ".join(" and ".join(map(repr, group)) for group in alike[:_SHOWN])
        warnings.warn(f"{path}: column {label_column!r} has labels that differ only in case, spaces or how a number "
                      f"is written ({shown}); each is a class of its own. If they mean one class, write them one way "
                      f"in the file", DataWarning, stacklevel=3)


def _warn_typos(path, names, labels, places):
    """Warn, once, of the labels of one or two rows in a file of 20 times as many that are nearly a label of
    more rows ("postive" beside "positive"): a typo became a class of its own, an output the model never learns.
    (Not of rare classes of many rows, nor where the label-column warning says labels are too many.)
    ``places``: where each row is ("line 39")."""
    counts = np.bincount(labels, minlength=len(names))
    if len(names) > max(10, len(labels) // 2):   # (3,000 titles: 2,000 warnings, 33 s)
        return
    typos = [(name, like[0]) for i, name in enumerate(names)
             if counts[i] <= 2 and 20 * counts[i] <= len(labels) and any(c.isalpha() for c in name)
             and (like := difflib.get_close_matches(name, [n for n, c in zip(names, counts) if c > 2], 1, 0.8))]
    if typos:
        shown = [f"{name!r} ({listing([places[k] for k in np.flatnonzero(labels == names.index(name))])}) looks "
                 f"like {like!r}" for name, like in typos]
        more = f"; ... {len(shown) - _SHOWN} more" if len(shown) > _SHOWN else ""
        warnings.warn(f"{path}: label{'s' * (len(shown) > 1)} {'; '.join(shown[:_SHOWN])}{more}: a typo? fix the "
                      f"rows, or give --label-names", DataWarning, stacklevel=3)


def _any_between(sorted_numbers, low, high):
    i = bisect.bisect_left(sorted_numbers, low)
    return i < len(sorted_numbers) and sorted_numbers[i] <= high


def listing(places):
    """The first few of ``places`` (texts such as "line 7" or a file name), then how many more:
    "a, b, c, d, e, ... 7 more"."""
    shown = ", ".join(places[:_SHOWN])
    return shown + (f", ... {len(places) - _SHOWN} more" if len(places) > _SHOWN else "")
