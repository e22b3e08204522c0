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


# --- keeping what the course's cleaning drops: short words, digits, negative contractions ---------------

SENTENCES = ["I didn't like it, 10/10.", "Won't stop", "a b I"]
OPTIONS = [Tokenizer(min_word_length=1), Tokenizer(keep_digits=True), Tokenizer(contractions="split"),
           Tokenizer(contractions="not"), Tokenizer(contractions="not", keep_digits=True, min_word_length=1),
           Tokenizer(contractions="split", lowercase=False, stop_words="english"),
           Tokenizer(contractions="split", letters_only=False), Tokenizer(contractions="not", min_word_length=4)]


def test_the_defaults_still_drop_short_words_digits_and_the_t_of_nt():
    assert [Tokenizer()(s) for s in SENTENCES] == [["didn", "like", "it"], ["won", "stop"], []]


def test_min_word_length_1_keeps_a_and_i():
    assert [Tokenizer(min_word_length=1)(s) for s in SENTENCES] == [
        ["i", "didn", "t", "like", "it"], ["won", "t", "stop"], ["a", "b", "i"]]
    assert Tokenizer(min_word_length=1, stop_words="english")("a b I") == ["b"]   # "a" and "i" are stop words


def test_keep_digits_keeps_runs_of_letters_and_digits():
    tok = Tokenizer(keep_digits=True)
    assert [tok(s) for s in SENTENCES] == [["didn", "like", "it", "10", "10"], ["won", "stop"], []]
    assert tok("the 90s, 2/10 and 3D_effects") == ["the", "90s", "10", "and", "3d", "effects"]
    assert Tokenizer(keep_digits=True, min_word_length=1)("2/10") == ["2", "10"]
    assert tok("Café 2/10 \u2014 déjà-vu 90s") == ["café", "10", "déjà", "vu", "90s"]      # the regex path
    # letters_only=False keeps digits already (and apostrophes inside words)
    assert Tokenizer(letters_only=False, keep_digits=True)(SENTENCES[0]) == Tokenizer(letters_only=False)(SENTENCES[0])


def test_contractions_split_and_not():
    split, spelled = Tokenizer(contractions="split"), Tokenizer(contractions="not")
    assert [split(s) for s in SENTENCES] == [["did", "n't", "like", "it"], ["will", "n't", "stop"], []]
    assert [spelled(s) for s in SENTENCES] == [["did", "not", "like", "it"], ["will", "not", "stop"], []]
    # the irregular ones are written as the verbs they are, not Penn Treebank's "ca", "wo", "sha"
    assert spelled("can't shan't ain't don't isn't") == ["can", "not", "shall", "not", "is", "not", "do", "not",
                                                         "is", "not"]
    assert split("Can\u2019t, WOULDN'T") == ["can", "n't", "would", "n't"]      # the curly apostrophe too
    assert Tokenizer(contractions="not", lowercase=False)("Won't, DIDN'T, Can't") == [
        "Will", "not", "DID", "NOT", "Can", "not"]
    assert Tokenizer(contractions="split", lowercase=False)("DIDN'T") == ["DID", "N'T"]
    # only negative contractions: "it's" is cleaned as before; a "not" stays a word like any other
    assert spelled("it's not a don") == split("it's not a don") == ["it", "not", "don"]
    assert Tokenizer(contractions="not", stop_words="english")("I didn't like it") == ["not", "like"]
    assert Tokenizer(contractions="split", letters_only=False)("didn't rock'n'roll 10") == [
        "did", "n't", "rock'n'roll", "10"]
    assert Tokenizer(contractions="not", min_word_length=4)("didn't like it") == ["like"]   # as "did not like it"
    assert Tokenizer(contractions="split", min_word_length=4)("couldn't") == ["could"]


def test_contractions_split_ignores_control_characters_in_the_text():
    """The split marks "n't" with \\x00 / \\x01 internally; the same characters in the text are separators."""
    tok = Tokenizer(contractions="split")
    assert tok("no\x00t didn't a\x01b") == ["no", "did", "n't"]
    assert tok("ab\x00cd\x01ef didn't") == ["ab", "cd", "ef", "did", "n't"]


def test_new_settings_are_checked():
    with pytest.raises(ValueError, match="keep_digits"):
        Tokenizer(keep_digits="yes")
    with pytest.raises(ValueError, match="contractions.*expand"):
        Tokenizer(contractions="expand")
    with pytest.raises(ValueError, match="contractions"):
        Tokenizer(contractions=["not"])
    assert Tokenizer(keep_digits=np.bool_(True)).to_dict()["keep_digits"] is True     # a plain, JSON-able bool


def test_new_settings_round_trip_and_old_dicts_still_load():
    for tok in OPTIONS:
        again = Tokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
        assert again == tok and [again(s) for s in SENTENCES] == [tok(s) for s in SENTENCES]
    assert Tokenizer(contractions="not").to_dict()["contractions"] == "not"
    # the settings a checkpoint saved before keep_digits and contractions existed
    old = {"lowercase": True, "strip_html": True, "strip_links": True, "letters_only": True, "min_word_length": 2,
           "stop_words": None, "max_length": 100}
    assert Tokenizer.from_dict(old) == Tokenizer.course()
    assert Tokenizer.from_dict(old)(REVIEW) == ["didn", "like", "it", "see", "or"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(alphabet=st.characters(max_codepoint=127), max_size=80),
                 st.text(alphabet=list("nNtT'\u2019 aIdo0719./-<>&;w:"), max_size=60)))
def test_fast_path_and_regex_path_agree_with_every_option(text):
    """Switching off the pure-ASCII shortcut (the module's ``_is_ascii``) changes no tokenizer's words."""
    from unittest import mock

    import minidl.data.text as text_module

    for tok in [Tokenizer(), *OPTIONS]:
        fast = tok(text)
        with mock.patch.object(text_module, "_is_ascii", lambda s: False):
            assert tok(text) == fast, tok


# --- trace: what became of each word as written ----------------------------------------------------------

def test_trace_shows_every_word_and_why_it_was_dropped():
    text = "I didn't like it, 10/10.<br /><a href=\"x y\">See</a> www.imdb.com &amp; the zzyzx"
    traced = Tokenizer().trace(text)
    assert [t.word for t in traced] == ["I", "didn't", "like", "it,", "10/10.", "<br />", '<a href="x y">', "See",
                                        "</a>", "www.imdb.com", "&amp;", "the", "zzyzx"]
    assert [(t.tokens, t.dropped) for t in traced] == [
        ([], "too short"), ([("didn", None)], None), ([("like", None)], None), ([("it", None)], None),
        ([], "not letters"), ([], "HTML tag"), ([], "HTML tag"), ([("see", None)], None), ([], "HTML tag"),
        ([], "link"), ([], "not letters"), ([("the", None)], None), ([("zzyzx", None)], None)]
    tok = Tokenizer(contractions="not", keep_digits=True, stop_words="english", max_length=4)
    traced = {t.word: (t.tokens, t.dropped) for t in tok.trace(text)}
    assert traced["didn't"] == ([("did", "stop word"), ("not", None)], None)
    assert traced["10/10."] == ([("10", None), ("10", None)], None)
    assert traced["&amp;"] == ([], "no letters or digits")
    assert traced["See"] == ([("see", "past max_length")], None)
    assert traced["it,"] == ([("it", "stop word")], None)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80),
                 st.text(alphabet=list("nt' aI0/.<>!-b r&;mpwWh:ps\n\u2019\u00e9\u2014"), max_size=80)))
def test_the_kept_tokens_of_trace_are_the_tokenizer_words(text):
    """Cleaning word by word (HTML tags whole) gives what cleaning the whole text gives."""
    for tok in [Tokenizer(), Tokenizer(strip_html=False, strip_links=False), Tokenizer(stop_words="english",
                                                                                     max_length=5), *OPTIONS]:
        traced = tok.trace(text)
        assert [token for t in traced for token, why in t.tokens if why is None] == tok(text), tok
        assert all(bool(t.tokens) != bool(t.dropped) for t in traced)
    assert "".join(t.word for t in Tokenizer(strip_html=False).trace(text)) == "".join(text.split())
