"""Your own data: CSV / TSV / JSON lines into a TextDataset, and every bad input named clearly."""
import json
import warnings

import numpy as np
import pytest

from minidl import MinidlError
from minidl.data.errors import DataFormatError, DataNotFoundError, DataWarning
from minidl.data.tabular import decode_lines, load_table


def read(path, *args, **kwargs):
    """``load_table`` for the parsing tests, whose tiny tables (1 to 4 rows, sometimes one class) are
    on purpose: only the checks that a table can train a model are switched off."""
    return load_table(path, *args, min_rows=1, min_classes=1, **kwargs)


def write_csv(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def test_csv_with_three_classes(tmp_path):
    path = write_csv(tmp_path / "news.csv", "id,headline,topic\n1,Markets rally,business\n2,Cup final,sport\n"
                                            "3,New comet,science\n4,Rates cut,business\n")
    ds = read(path, "headline", "topic")
    assert ds.texts == ["Markets rally", "Cup final", "New comet", "Rates cut"]
    assert ds.label_names == ["business", "science", "sport"]
    assert ds.labels.tolist() == [0, 2, 1, 0] and ds.labels.dtype == np.int64
    assert ds.name == "news" and ds.info["lines"] == [2, 3, 4, 5]
    assert ds.info["decode_errors"] == 0 and ds.info["empty_texts"] == 0
    assert ds.class_counts() == {"business": 2, "science": 1, "sport": 1}


def test_quoted_fields_with_newlines_keep_line_numbers(tmp_path):
    path = write_csv(tmp_path / "q.csv", 'text,label\n"one, ""two""\nthree",a\nfour,b\n')
    ds = read(path, "text", "label", name="quoted")
    assert ds.texts == ['one, "two"\nthree', "four"] and ds.info["lines"] == [2, 4] and ds.name == "quoted"


def test_tsv_jsonl_and_json(tmp_path):
    (tmp_path / "a.tsv").write_text("label\ttext\npos\tgood, fine\nneg\tbad\n")
    (tmp_path / "a.jsonl").write_text('{"text": "good", "label": "pos"}\n\n{"text": "bad", "label": "neg"}\n')
    (tmp_path / "a.json").write_text(json.dumps([{"text": "good", "label": "pos"}, {"text": "bad", "label": "neg"}]))
    (tmp_path / "lines.json").write_text('{"text": "good", "label": "pos"}\n{"text": "bad", "label": "neg"}\n')
    (tmp_path / "a.txt").write_text("label,text\npos,good\nneg,bad\n")
    for name, fmt in [("a.tsv", None), ("a.jsonl", None), ("a.json", None), ("lines.json", None), ("a.txt", "csv")]:
        ds = read(tmp_path / name, "text", "label", format=fmt)
        assert ds.texts == ["good, fine" if name == "a.tsv" else "good", "bad"], name
        assert ds.label_names == ["neg", "pos"] and ds.labels.tolist() == [1, 0], name
    with pytest.raises(ValueError, match="cannot tell the format.*format="):
        load_table(tmp_path / "a.txt", "text", "label")


def test_integer_labels_sort_numerically(tmp_path):
    (tmp_path / "n.jsonl").write_text("".join(json.dumps({"t": "x", "y": y}) + "\n" for y in [10, 2, 1, "2"]))
    ds = read(tmp_path / "n.jsonl", "t", "y")
    assert ds.label_names == ["1", "2", "10"] and ds.labels.tolist() == [2, 1, 0, 1]


def test_given_label_names_fix_the_order_and_reject_other_values(tmp_path):
    path = write_csv(tmp_path / "s.csv", "review,sentiment\ngreat,positive\nawful,negative\nmeh,neutral\n")
    with pytest.raises(DataFormatError) as err:
        load_table(path, "review", "sentiment", label_names=["negative", "positive"])
    message = str(err.value)
    assert "row 3 (line 4)" in message and "'neutral'" in message and "['negative', 'positive']" in message
    ds = read(path, "review", "sentiment", label_names=["positive", "neutral", "negative"])
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
        ds = read(path, "text", "label")
    assert ds.info["decode_errors"] == 2
    assert ds.texts[0] == "caf\ufffd ok" and ds.texts[1] == "fine" and ds.texts[2].endswith("\ufffd")
    assert read(path, "text", "label", encoding="latin-1").texts[0] == "café ok"


def test_a_utf8_byte_order_mark_is_skipped(tmp_path):
    path = write_csv(tmp_path / "bom.csv", "\ufefftext,label\nhello,a\n")
    assert read(path, "text", "label").texts == ["hello"]


def test_a_utf16_file_is_one_line(tmp_path):
    """Excel's UTF-16 export read as "no column 'text'; the columns are ['\\x00t\\x00e...']", with advice to rename
    columns."""
    utf16 = tmp_path / "u16.tsv"
    utf16.write_bytes(("text\tlabel\r\n" + "a great film\tpos\r\na dull film\tneg\r\n" * 6).encode("utf-16"))
    assert one_line_error(lambda: load_table(utf16, "text", "label")).endswith(
        "u16.tsv is UTF-16 (Excel's \"Unicode text\"); save it as UTF-8 (\"CSV UTF-8\")")
    assert load_table(utf16, "text", "label", encoding="utf-16").texts[0] == "a great film"   # said: it reads


def test_empty_texts_are_kept_counted_and_reported(tmp_path):
    path = write_csv(tmp_path / "e.csv", 'text,label\ngood,a\n,b\n"   ",a\n')
    with pytest.warns(DataWarning, match=r"2 row\(s\) have an empty text \(row 2 \(line 3\), row 3"):
        ds = read(path, "text", "label")
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


# ------------------------------------------------------------------ input that would train nothing or train wrong

def one_line_error(call):
    """The DataFormatError ``call()`` raises; its message must be one line (the CLI prints it as is)."""
    with pytest.raises(DataFormatError) as err:
        call()
    assert isinstance(err.value, MinidlError) and "\n" not in str(err.value)
    return str(err.value)


def rows(n, labels=("pos", "neg")):
    """A CSV body of ``n`` rows with distinct texts and the ``labels`` in turn."""
    return "".join(f"review number {i},{labels[i % len(labels)]}\n" for i in range(n))


def test_an_unterminated_quote_is_named_with_the_line_where_it_opens(tmp_path):
    # the quote on line 4 never closes: csv would read lines 4-14 as one text and drop 10 rows silently
    path = write_csv(tmp_path / "q.csv", "text,label\n" + rows(2) + '"oops, a lone quote,pos\n' + rows(10))
    message = one_line_error(lambda: load_table(path, "text", "label"))
    assert str(path) in message and "line 4" in message and "never closed" in message and "to line 14" in message
    tsv = write_csv(tmp_path / "q.tsv", "text\tlabel\n" + rows(12).replace(",", "\t") + '"cut off\tneg\n')
    assert "line 14" in one_line_error(lambda: load_table(tsv, "text", "label"))
    # ... or closes far below, mid-text (a 6" hero): the rows between were one text, under the last row's label
    far = write_csv(tmp_path / "far.tsv", "text\tlabel\n" + rows(2).replace(",", "\t") + '"oops, my mum\tpos\n'
                    + rows(10).replace(",", "\t") + 'a 6" tall hero\tneg\n')
    message = one_line_error(lambda: load_table(far, "text", "label"))
    assert "line 4: a quote" in message and "only closes on line 15" in message
    header = write_csv(tmp_path / "h.csv", 'text,"label\n' + rows(12))
    assert "line 1" in one_line_error(lambda: load_table(header, "text", "label"))
    # closed quotes (newlines and "" inside) and a stray quote inside a field still read as before
    fine = write_csv(tmp_path / "fine.csv", 'text,label\n"two\nlines, ""quoted""",pos\nsay "hi" there,neg\n' + rows(10))
    ds = load_table(fine, "text", "label")
    assert ds.texts[:2] == ['two\nlines, "quoted"', 'say "hi" there'] and len(ds) == 12


def test_a_row_with_more_fields_than_the_header_is_refused_not_cut(tmp_path):
    """An unquoted comma in a text: the row's fields past the header's were dropped, so "dull film,
    was terrible,0" trained as the text "dull film" of the class "was terrible" (or, with the label
    first, every text cut to its first word), exit 0. A trailing empty field is still read."""
    path = write_csv(tmp_path / "c.csv", "text,label\n" + rows(3) + "dull film, was terrible,neg\n" + rows(9))
    message = one_line_error(lambda: load_table(path, "text", "label"))
    assert message == (f"{path}: line 5 has 3 fields but the header has 2; is there a comma in a text? Put that "
                       f'text in quotes ("...")')
    first = write_csv(tmp_path / "l.tsv", "label\ttext\n" + "".join(f"pos\tgood\tfilm {i}\n" for i in range(12)))
    assert "line 2 has 3 fields" in one_line_error(lambda: load_table(first, "text", "label"))
    trailing = write_csv(tmp_path / "t.csv", "text,label\n" + rows(12).replace("\n", ",\n"))
    assert load_table(trailing, "text", "label").texts[0] == "review number 0"


def test_a_label_column_of_nearly_one_row_a_class_is_warned_of(tmp_path):
    """An id column taken for the labels trained a 200-class model to accuracy 0, exit 0, without a word."""
    path = write_csv(tmp_path / "ids.csv", "text,label\n" + "".join(f"review {i},{1000 + i}\n" for i in range(30)))
    with pytest.warns(DataWarning, match="column 'label' has 30 different labels in 30 rows; is it the label column"):
        load_table(path, "text", "label")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_table(path, "text", "label", min_rows=1, min_classes=1)    # read to score, not to train: no warning
        load_table(write_csv(tmp_path / "ten.csv", "text,label\n" + rows(30, labels="abcdefghij")), "text", "label")


def test_labels_that_differ_only_in_case_or_number_format_are_warned_of(tmp_path):
    """1 and 1.0, or pos and Pos, trained as separate classes without a word."""
    numbers = write_csv(tmp_path / "n.csv", "text,label\n" + "".join(f"review {i},{['0', '1', '1.0'][i % 3]}\n"
                                                                     for i in range(30)))
    with pytest.warns(DataWarning, match=r"column 'label' has labels that differ only in case, spaces or how a "
                                         r"number is written \('1' and '1.0'\); each is a class of its own"):
        assert load_table(numbers, "text", "label").label_names == ["0", "1", "1.0"]
    records = ({"text": f"review {i}", "label": ["neg", "pos", "Pos"][i % 3]} for i in range(30))
    cases = write_csv(tmp_path / "c.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    with pytest.warns(DataWarning, match=r"\('Pos' and 'pos'\)"):
        load_table(cases, "text", "label")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_table(write_csv(tmp_path / "ok.csv", "text,label\n" + rows(30)), "text", "label")
        load_table(cases, "text", "label", label_names=["neg", "pos", "Pos"])   # named on purpose: no warning


def test_a_column_named_twice_in_the_header_is_refused(tmp_path):
    """text,label,label: the last label column was taken without a word."""
    path = write_csv(tmp_path / "d.csv", "text,label,label\n" + rows(12).replace("\n", ",pos\n"))
    assert one_line_error(lambda: load_table(path, "text", "label")) == (
        f"{path}: the header names column 'label' 2 times; rename all but one")
    assert len(load_table(write_csv(tmp_path / "n.csv", "text,label,note,note\n" + rows(12)), "text", "label")) == 12


@pytest.mark.parametrize("value", [[1, 2], {"stars": 5}, []])
def test_a_label_that_is_a_list_or_an_object_is_refused(tmp_path, value):
    lines = [json.dumps({"text": f"review {i}", "label": ["pos", "neg"][i % 2]}) for i in range(12)]
    lines[4] = json.dumps({"text": "a review", "label": value})
    (tmp_path / "l.jsonl").write_text("\n".join(lines) + "\n")
    message = one_line_error(lambda: load_table(tmp_path / "l.jsonl", "text", "label"))
    assert "line 5" in message and json.dumps(value) in message and "'label'" in message
    (tmp_path / "l.json").write_text("[" + ",".join(lines) + "]")
    assert "record 5" in one_line_error(lambda: load_table(tmp_path / "l.json", "text", "label"))


def test_single_class_data_is_refused(tmp_path):
    path = write_csv(tmp_path / "one.csv", "text,label\n" + rows(20, labels=("pos",)))
    message = one_line_error(lambda: load_table(path, "text", "label"))
    assert "single-class" in message and "'pos'" in message and "'label'" in message and "AUC" in message
    # a class whose every text is empty counts as missing: the model would see one class only
    path = write_csv(tmp_path / "hollow.csv", "text,label\n" + rows(20, labels=("pos",)) + ',neg\n" ",neg\n')
    assert "single-class" in one_line_error(lambda: load_table(path, "text", "label"))
    with pytest.warns(DataWarning, match="empty text"):
        assert load_table(path, "text", "label", min_classes=1).label_names == ["neg", "pos"]


def test_a_class_with_no_text_to_learn_from_is_refused_for_training(tmp_path):
    """It became a class all the same: the untrained model chose it for most test rows (accuracy 0), silently."""
    path = write_csv(tmp_path / "three.csv", "text,label\n" + rows(20) + '"",neutral\n')
    message = one_line_error(lambda: load_table(path, "text", "label"))
    assert "class 'neutral' has no row with a text, so a model cannot learn it" in message
    both = write_csv(tmp_path / "two.csv", "text,label\n" + rows(20))
    assert "class 'neutral'" in one_line_error(lambda: load_table(both, "text", "label",
                                                                  label_names=["neg", "neutral", "pos"]))
    with pytest.warns(DataWarning, match="empty text"):   # a file only scored may lack one
        assert read(path, "text", "label").label_names == ["neg", "neutral", "pos"]


def test_a_table_too_small_to_split_is_refused(tmp_path):
    path = write_csv(tmp_path / "tiny.csv", "text,label\n" + rows(3))
    message = one_line_error(lambda: load_table(path, "text", "label"))
    assert str(path) in message and "3 rows" in message and "at least 10" in message
    assert len(load_table(path, "text", "label", min_rows=3)) == 3
    assert len(load_table(write_csv(tmp_path / "ten.csv", "text,label\n" + rows(10)), "text", "label")) == 10
    header_only = write_csv(tmp_path / "header.csv", "text,label\n")
    assert "no rows" in one_line_error(lambda: load_table(header_only, "text", "label"))


def test_a_text_column_with_only_empty_texts_is_refused(tmp_path):
    path = write_csv(tmp_path / "e.csv", "id,text,label\n" + "".join(f"{i}, ,{'ab'[i % 2]}\n" for i in range(12)))
    message = one_line_error(lambda: load_table(path, "text", "label"))
    assert "every text in column 'text' is empty" in message and "['id', 'text', 'label']" in message


def test_decode_lines():
    assert decode_lines(b"a\nb") == ("a\nb", [])
    assert decode_lines(b"a\n\xffb\nc\n\xfe") == ("a\n\ufffdb\nc\n\ufffd", [2, 4])
    text, bad = decode_lines("x\ny".encode("utf-16"), "utf-16")
    assert text == "x\ny" and bad == []


def test_a_label_of_a_row_or_two_that_looks_like_another_is_warned_of(tmp_path):
    """A typo ("postive" beside "positive") became a class of its own, one more output, without a word."""
    path = write_csv(tmp_path / "typo.csv", "text,label\n" + rows(30, labels=["negative", "positive"])
                     + "a fine film,postive\n")
    with pytest.warns(DataWarning, match=r"typo.csv: label 'postive' \(line 32\) looks like 'positive': a "
                                         r"typo\? fix the rows, or give --label-names$"):
        assert load_table(path, "text", "label").label_names == ["negative", "positive", "postive"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_table(path, "text", "label", label_names=["negative", "positive", "postive"])   # named on purpose
        load_table(write_csv(tmp_path / "rare.csv", "text,label\n" + rows(30) + "an odd film,odd\n"), "text", "label")
        load_table(write_csv(tmp_path / "stars.csv", "text,label\n" + rows(300, labels=["2star", "3star"])   # a
                             + "a bad film,1star\n" * 9), "text", "label")   # rare class of 9 rows was called a typo
        load_table(write_csv(tmp_path / "small.csv", "text,label\n" + rows(20, labels=["class_a", "class_b"])
                             + "a film,class_c\n" * 2), "text", "label")   # a small file's class of two rows too
        titles = "".join(f"a film,movie title number {i // 2 if i < 2000 else i}\n" for i in range(4000))
    names = [f"category {chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(55)]   # 55 labels: not too many
    many = "".join(f"a film {i},{names[i % 55]}\n" for i in range(1100)) + "a film x,categroy ab\n"
    with pytest.warns(DataWarning, match=r"label 'categroy ab' \(line 1102\) looks like 'category ab'"):
        load_table(write_csv(tmp_path / "many.csv", "text,label\n" + many), "text", "label")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.warns(DataWarning, match="different labels"):   # 2,000 warnings, and 33 s
            load_table(write_csv(tmp_path / "titles.csv", "text,label\n" + titles), "text", "label")
    typos = "".join(f"a film,{label}\n" for label in ("postive", "negatve", "nuetral", "positve", "negativ", "neutrall"))
    with pytest.warns(DataWarning, match=r"labels 'negativ' .*; \.\.\. 1 more: a typo\?"):   # the sixth went unsaid
        load_table(write_csv(tmp_path / "six.csv", "text,label\n" + rows(300, labels=["negative", "positive",
                                                                                        "neutral"]) + typos),
                   "text", "label")
