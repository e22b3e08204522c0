"""Cleaning and tokenisation: the course's default recipe, each step switched off, serialisation."""
import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl.data.stopwords import ENGLISH_STOP_WORDS, KEPT_FOR_SENTIMENT
from minidl.data.text import Tokenizer

REVIEW = "I didn't like it.<br /><br />See www.imdb.com/title/x... or https://t.co/abc 2/10"


def test_the_course_cleaning_is_the_default():
    # html and links gone, letters only ("didn't" -> "didn" + "t"), lower case, one-letter words dropped
    assert Tokenizer()(REVIEW) == ["didn", "like", "it", "see", "or"]


def test_each_step_can_be_switched_off():
    assert "br" in Tokenizer(strip_html=False)(REVIEW)
    assert {"www", "imdb", "com", "https", "co"} <= set(Tokenizer(strip_links=False)(REVIEW))
    assert Tokenizer(lowercase=False)("Great GREAT great") == ["Great", "GREAT", "great"]
    assert Tokenizer(letters_only=False)(REVIEW) == ["didn't", "like", "it", "see", "or", "10"]
    assert Tokenizer(min_word_length=1)(REVIEW)[:2] == ["i", "didn"]
    assert Tokenizer(min_word_length=3)(REVIEW) == ["didn", "like", "see"]


def test_html_tags_and_entities_but_not_comparisons():
    tok = Tokenizer()
    assert tok('<a href="http://x.org">Fine</a> <i>film</i> &amp; &quot;cast&quot;') == ["fine", "film", "cast"]
    assert tok("a < b and c > d <3") == ["and"]  # "<" that opens no tag is just punctuation
    assert tok("Good<br/>bad<BR>ugly<!-- note -->end") == ["good", "bad", "ugly", "end"]


def test_links_in_any_case_are_stripped():
    assert Tokenizer()("see WWW.Example.COM/page and HTTP://X.Y/z, then http://a.b") == ["see", "and", "then"]


def test_unicode_letters_are_letters():
    assert Tokenizer()("Café NAÏVE, déjà-vu… 3D") == ["café", "naïve", "déjà", "vu"]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
def test_ascii_fast_path_agrees_with_the_regex_path(text):
    """Pure-ASCII text takes a byte-translation shortcut; a non-ASCII non-letter forces the regex path."""
    for tok in (Tokenizer(), Tokenizer(lowercase=False), Tokenizer(min_word_length=1, strip_links=False)):
        assert tok(text) == tok(text + " \u2014")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
def test_letters_only_matches_the_course_regex(text):
    course = [w for w in re.sub("[^a-zA-Z]", " ", text).lower().split() if len(w) > 1]
    assert Tokenizer(strip_html=False, strip_links=False)(text) == course


def test_stop_words():
    text = "This is not the best, and no one would never say it was hardly good; I didn't"
    assert Tokenizer(stop_words="english")(text) == ["not", "best", "no", "never", "say", "hardly", "good", "didn"]
    assert Tokenizer(stop_words=["best", "GOOD"])("the best good") == ["the"]
    assert Tokenizer(stop_words=["The"], lowercase=False)("The the cat") == ["cat"]
    with pytest.raises(ValueError, match='"english"'):
        Tokenizer(stop_words="french")


def test_negators_are_not_stop_words():
    for word in ("not", "no", "never", "nor", "hardly", "don", "didn", "isn", "wasn", "cannot"):
        assert word not in ENGLISH_STOP_WORDS
    assert not ENGLISH_STOP_WORDS & KEPT_FOR_SENTIMENT
    assert {"the", "a", "and", "of", "is"} <= ENGLISH_STOP_WORDS
    assert all(re.fullmatch("[a-z]+", w) for w in ENGLISH_STOP_WORDS)


def test_max_length_keeps_the_first_words():
    words = ["w" + "x" * i for i in range(1, 151)]
    assert Tokenizer(max_length=100)(" ".join(words)) == words[:100]
    assert Tokenizer.course()(" ".join(words)) == words[:100]
    assert Tokenizer(max_length=3)("one two") == ["one", "two"]
    assert Tokenizer(max_length=np.int64(2)).to_dict()["max_length"] == 2  # a plain, JSON-able int


def test_round_trip_through_json():
    for tok in (Tokenizer(), Tokenizer.course(stop_words="english"),
                Tokenizer(stop_words={"zeta", "alpha"}, letters_only=False, min_word_length=1, lowercase=False)):
        settings_ = json.loads(json.dumps(tok.to_dict()))
        again = Tokenizer.from_dict(settings_)
        assert again == tok and again(REVIEW + " Zeta alpha") == tok(REVIEW + " Zeta alpha")
    assert Tokenizer(stop_words=["b", "a"]).to_dict()["stop_words"] == ["a", "b"]
    with pytest.raises(ValueError, match="unknown setting.*max_len"):
        Tokenizer.from_dict({"max_len": 100})


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="min_word_length"):
        Tokenizer(min_word_length=0)
    with pytest.raises(ValueError, match="max_length"):
        Tokenizer(max_length=0)
    with pytest.raises(ValueError, match="max_length"):
        Tokenizer(max_length=2.5)


def test_empty_and_blank_texts():
    assert Tokenizer()("") == [] and Tokenizer()("  <br /> 42 !") == []
    assert Tokenizer().tokenize_all(["a bc", ""]) == [["bc"], []]
