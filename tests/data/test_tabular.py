"""Your own data: CSV / TSV / JSON lines into a TextDataset, and every bad input named clearly."""
import json

import numpy as np
import pytest

from minidl import MinidlError
from minidl.data.errors import DataFormatError, DataNotFoundError, DataWarning
from minidl.data.tabular import decode_lines, load_table


def write_csv(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def test_csv_with_three_classes(tmp_path):
    path = write_csv(tmp_path / "news.csv", "id,headline,topic\n1,Markets rally,business\n2,Cup final,sport\n"
                                            "3,New comet,science\n4,Rates cut,business\n")
    ds = load_table(path, "headline", "topic")
    assert ds.texts == ["Markets rally", "Cup final", "New comet", "Rates cut"]
    assert ds.label_names == ["business", "science", "sport"]
    assert ds.labels.tolist() == [0, 2, 1, 0] and ds.labels.dtype == np.int64
    assert ds.name == "news" and ds.info["lines"] == [2, 3, 4, 5]
    assert ds.info["decode_errors"] == 0 and ds.info["empty_texts"] == 0
    assert ds.class_counts() == {"business": 2, "science": 1, "sport": 1}


def test_quoted_fields_with_newlines_keep_line_numbers(tmp_path):
    path = write_csv(tmp_path / "q.csv", 'text,label\n"one, ""two""\nthree",a\nfour,b\n')
    ds = load_table(path, "text", "label", name="quoted")
    assert ds.texts == ['one, "two"\nthree', "four"] and ds.info["lines"] == [2, 4] and ds.name == "quoted"


def test_tsv_jsonl_and_json(tmp_path):
    (tmp_path / "a.tsv").write_text("label\ttext\npos\tgood, fine\nneg\tbad\n")
    (tmp_path / "a.jsonl").write_text('{"text": "good", "label": "pos"}\n\n{"text": "bad", "label": "neg"}\n')
    (tmp_path / "a.json").write_text(json.dumps([{"text": "good", "label": "pos"}, {"text": "bad", "label": "neg"}]))
    (tmp_path / "lines.json").write_text('{"text": "good", "label": "pos"}\n{"text": "bad", "label": "neg"}\n')
    (tmp_path / "a.txt").write_text("label,text\npos,good\nneg,bad\n")
    for name, fmt in [("a.tsv", None), ("a.jsonl", None), ("a.json", None), ("lines.json", None), ("a.txt", "csv")]:
        ds = load_table(tmp_path / name, "text", "label", format=fmt)
        assert ds.texts == ["good, fine" if name == "a.tsv" else "good", "bad"], name
        assert ds.label_names == ["neg", "pos"] and ds.labels.tolist() == [1, 0], name
    with pytest.raises(ValueError, match="cannot tell the format.*format="):
        load_table(tmp_path / "a.txt", "text", "label")


def test_integer_labels_sort_numerically(tmp_path):
    (tmp_path / "n.jsonl").write_text("".join(json.dumps({"t": "x", "y": y}) + "\n" for y in [10, 2, 1, "2"]))
    ds = load_table(tmp_path / "n.jsonl", "t", "y")
    assert ds.label_names == ["1", "2", "10"] and ds.labels.tolist() == [2, 1, 0, 1]


def test_given_label_names_fix_the_order_and_reject_other_values(tmp_path):
    path = write_csv(tmp_path / "s.csv", "review,sentiment\ngreat,positive\nawful,negative\nmeh,neutral\n")
    with pytest.raises(DataFormatError) as err:
        load_table(path, "review", "sentiment", label_names=["negative", "positive"])
    message = str(err.value)
    assert "row 3 (line 4)" in message and "'neutral'" in message and "['negative', 'positive']" in message
    ds = load_table(path, "review", "sentiment", label_names=["positive", "neutral", "negative"])
    assert ds.labels.tolist() == [0, 2, 1] and ds.label_names == ["positive", "neutral", "negative"]
    with pytest.raises(ValueError, match="duplicates"):
        load_table(path, "review", "sentiment", label_names=["a", "a"])


def test_missing_columns_are_named_with_the_available_ones(tmp_path):
    path = write_csv(tmp_path / "s.csv", "review,sentiment\ngreat,positive\n")
    with pytest.raises(DataFormatError) as err:
        load_table(path, "text", "label")
    assert "'text' or 'label'" in str(err.value) and "['review', 'sentiment']" in str(err.value)
    assert isinstance(err.value, MinidlError)
    (tmp_path / "s.jsonl").write_text('{"review": "x", "stars": 1}\n')
    with pytest.raises(DataFormatError, match=r"no column 'label'.*\['review', 'stars'\]"):
        load_table(tmp_path / "s.jsonl", "review", "label")


def test_a_row_without_label_is_named(tmp_path):
    path = write_csv(tmp_path / "s.csv", "text,label\ngood,pos\nbad, \n")
    with pytest.raises(DataFormatError, match=r"row 2 \(line 3\) has no label in column 'label'"):
        load_table(path, "text", "label")
    (tmp_path / "s.jsonl").write_text('{"text": "a", "label": "x"}\n{"text": "b"}\n')
    with pytest.raises(DataFormatError, match="line 2 has no label"):
        load_table(tmp_path / "s.jsonl", "text", "label")


def test_non_utf8_bytes_are_replaced_counted_and_reported(tmp_path):
    path = write_csv(tmp_path / "latin.csv", b"text,label\ncaf\xe9 ok,a\nfine,b\n\"multi\nline \xff\",a\n")
    with pytest.warns(DataWarning, match=r"2 row\(s\).*not valid utf-8.*row 1 \(line 2\), row 3 \(line 4\)"):
        ds = load_table(path, "text", "label")
    assert ds.info["decode_errors"] == 2
    assert ds.texts[0] == "caf\ufffd ok" and ds.texts[1] == "fine" and ds.texts[2].endswith("\ufffd")
    assert load_table(path, "text", "label", encoding="latin-1").texts[0] == "café ok"


def test_a_utf8_byte_order_mark_is_skipped(tmp_path):
    path = write_csv(tmp_path / "bom.csv", "\ufefftext,label\nhello,a\n")
    assert load_table(path, "text", "label").texts == ["hello"]


def test_empty_texts_are_kept_counted_and_reported(tmp_path):
    path = write_csv(tmp_path / "e.csv", 'text,label\ngood,a\n,b\n"   ",a\n')
    with pytest.warns(DataWarning, match=r"2 row\(s\) have an empty text \(row 2 \(line 3\), row 3"):
        ds = load_table(path, "text", "label")
    assert len(ds) == 3 and ds.info["empty_texts"] == 2


def test_bad_files(tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_table(tmp_path / "nope.csv", "text", "label")
    with pytest.raises(DataFormatError, match="empty"):
        load_table(write_csv(tmp_path / "empty.csv", ""), "text", "label")
    (tmp_path / "broken.jsonl").write_text('{"text": "a", "label": "x"}\n{"text": \n')
    with pytest.raises(DataFormatError, match="line 2 is not valid JSON"):
        load_table(tmp_path / "broken.jsonl", "text", "label")
    (tmp_path / "list.jsonl").write_text('["a", "x"]\n')
    with pytest.raises(DataFormatError, match="line 1 is a JSON list, not an object"):
        load_table(tmp_path / "list.jsonl", "text", "label")


def test_decode_lines():
    assert decode_lines(b"a\nb") == ("a\nb", [])
    assert decode_lines(b"a\n\xffb\nc\n\xfe") == ("a\n\ufffdb\nc\n\ufffd", [2, 4])
    text, bad = decode_lines("x\ny".encode("utf-16"), "utf-16")
    assert text == "x\ny" and bad == []
