"""Your own data: a CSV, TSV or JSON-lines file with a text column and a label column.

    ds = load_table("headlines.csv", text_column="headline", label_column="category")
    ds.label_names            # ["business", "science", "sport"]: sorted unique labels
    train, val = ds.split(0.1, seed=0)

Any number of classes. Labels become ints in ``range(len(ds.label_names))``; pass
``label_names=[...]`` to fix their order (and to reject any other value). Problems in the file
are reported, never silently dropped:

* a missing column -> ``DataFormatError`` naming the missing and the available columns;
* a label outside ``label_names`` (or no label) -> ``DataFormatError`` naming the row;
* bytes that are not valid in ``encoding`` -> replaced with U+FFFD, counted in
  ``ds.info["decode_errors"]`` and reported with a ``DataWarning``;
* empty texts -> kept (so row numbers still match the file), counted in
  ``ds.info["empty_texts"]`` and reported; the encoder drops them later, saying so.

``ds.info["lines"][i]`` is the line of the file where example ``i`` starts (1-based), for
finding a row again in an editor.
"""
from __future__ import annotations

import bisect
import csv
import io
import json
import re
import warnings
from pathlib import Path

import numpy as np

from .dataset import TextDataset
from .errors import DataFormatError, DataNotFoundError, DataWarning

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
_INTEGER = re.compile(r"-?\d+")
_SHOWN = 5  # how many row numbers a report lists before "..."


def load_table(path, text_column, label_column, format=None, label_names=None, encoding="utf-8", name=None):
    """A ``TextDataset`` from a table file: one example per row.

    Args:
        path: a .csv, .tsv, .jsonl or .json file (.json: JSON lines, or one JSON array of objects).
        text_column, label_column: the column (JSON key) names.
        format: "csv", "tsv", "jsonl" or "json"; None infers it from the extension.
        label_names: the labels in the order you want (index = class id); None: the sorted
            unique values of the label column (numerically when they are all integers).
        encoding: of the file; a UTF-8 byte-order mark is skipped.
        name: the dataset's name (default: the file name without extension).
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"load_table: {path} is not a file" + ("" if path.exists() else " (it does not exist)"))
    fmt = _format_of(path, format)
    text, bad_lines = decode_lines(path.read_bytes(), encoding)
    rows, columns = _read_rows(text, fmt, path)
    _check_columns(path, fmt, columns, (text_column, label_column))
    texts, raw_labels, lines, where, bad_rows = _collect_rows(rows, text_column, label_column, bad_lines, path)

    names, labels = _encode_labels(raw_labels, label_names, where, path, label_column)
    empty = [where[i] for i, t in enumerate(texts) if not t.strip()]
    info = {"source": str(path), "format": fmt, "lines": lines,
            "decode_errors": len(bad_rows), "empty_texts": len(empty)}
    if bad_rows:
        warnings.warn(f"{path}: {len(bad_rows)} row(s) had bytes that are not valid {encoding} ({_listing(bad_rows)}); "
                      f"they were replaced with U+FFFD. Pass encoding= if the file is not {encoding}.",
                      DataWarning, stacklevel=2)
    if empty:
        warnings.warn(f"{path}: {len(empty)} row(s) have an empty text ({_listing(empty)}); they are kept in the "
                      f"dataset and dropped when it is encoded", DataWarning, stacklevel=2)
    return TextDataset(texts, labels, names, name or path.stem, info)


def _check_columns(path, fmt, columns, wanted):
    """Raise a DataFormatError naming the ``wanted`` columns that the file lacks, and those it has."""
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise DataFormatError(f"{path}: no column {' or '.join(map(repr, missing))}; the columns are "
                              f"{sorted(columns) if fmt in ('jsonl', 'json') else columns}. Pass the right names "
                              f"as text_column= / label_column= (--text-column / --label-column)")


def _collect_rows(rows, text_column, label_column, bad_lines, path):
    """The columns of ``rows`` (from ``_read_rows``) as lists, one entry per row: (texts,
    raw labels as strings, first lines, places such as "row 3 (line 4)"), and the places of
    the rows that held undecodable bytes (``bad_lines``: their sorted line numbers)."""
    texts, raw_labels, lines, where = [], [], [], []
    bad_rows = []
    for first_line, last_line, place, record in rows:
        raw_labels.append(_label_key(_row_label(record, label_column, place, path)))
        texts.append(_text_value(record.get(text_column)))
        lines.append(first_line)
        where.append(place)
        if bad_lines and (_any_between(bad_lines, first_line, last_line) if first_line is not None
                          else "\ufffd" in texts[-1] + raw_labels[-1]):  # a JSON array: no line numbers
            bad_rows.append(place)
    return texts, raw_labels, lines, where, bad_rows


def _row_label(record, label_column, place, path):
    """The label of one row (a string is stripped); a missing or empty one is an error."""
    label = record.get(label_column)
    if isinstance(label, str):
        label = label.strip()
    if label is None or label == "":
        raise DataFormatError(f"{path}: {place} has no label in column {label_column!r}")
    return label


def _text_value(value):
    """A row's text as a str: "" for a missing one, ``str(value)`` for a JSON number or other value."""
    return "" if value is None else value if isinstance(value, str) else str(value)


def decode_lines(data, encoding="utf-8"):
    """``data`` (bytes) as text, and the sorted 1-based numbers of the lines that were not valid.

    Invalid bytes become U+FFFD instead of stopping the load; the line numbers let the caller
    say which rows were affected. A UTF-8 byte-order mark is dropped.
    """
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8") and data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode(encoding), []
    except UnicodeDecodeError:
        pass
    try:
        ascii_compatible = "\n".encode(encoding) == b"\n"
    except LookupError:
        ascii_compatible = False
    if not ascii_compatible:  # e.g. UTF-16: lines cannot be cut at b"\n"; find the lines afterwards
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
            raise ValueError(f"load_table: unknown format {format!r}; use one of {sorted(set(FORMATS.values()))}")
        return format
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"load_table: cannot tell the format of {path} from its extension {suffix!r}; "
                         f"pass format= one of {sorted(set(FORMATS.values()))}")
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
        if not isinstance(records, list):
            raise DataFormatError(f"{path}: expected a JSON array of objects or one object per line")
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
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))  # long reviews are single fields
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise DataFormatError(f"{path}: the file is empty (expected a header row with the column names)") from None
    header = [h.strip() for h in header]
    rows, previous_end, number = [], reader.line_num, 0
    try:
        for fields in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not fields:  # a blank line
                continue
            number += 1
            record = dict(zip(header, fields))
            rows.append((start, reader.line_num, f"row {number} (line {start})", record))
    except csv.Error as e:
        raise DataFormatError(f"{path}: line {reader.line_num}: {e}") from None
    return rows, header


def _label_key(value):
    """Labels compare as strings: JSON's 1 and a CSV's "1" are the same class."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _encode_labels(raw_labels, label_names, where, path, label_column):
    if label_names is None:
        distinct = set(raw_labels)
        if all(_INTEGER.fullmatch(v) for v in distinct):
            names = sorted(distinct, key=int)
        else:
            names = sorted(distinct)
    else:
        names = [_label_key(n) for n in label_names]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
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


def _any_between(sorted_numbers, low, high):
    i = bisect.bisect_left(sorted_numbers, low)
    return i < len(sorted_numbers) and sorted_numbers[i] <= high


def _listing(places):
    shown = ", ".join(places[:_SHOWN])
    return shown + (f", ... {len(places) - _SHOWN} more" if len(places) > _SHOWN else "")
