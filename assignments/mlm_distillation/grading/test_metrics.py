"""Task 4: top-1 / top-5 accuracy and agreement with the teacher (minidl/mlm/evaluate.py: accuracy,
agreement), on fixed choices whose answers are counted by hand."""
import numpy as np

from minidl.mlm import FillMaskCase, accuracy, agreement, build_vocabulary
from minidl.mlm.tokenizer import MASK

WORDS = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
VOCAB = build_vocabulary([WORDS], max_size=None, min_freq=1)
ID = {w: VOCAB[w] for w in WORDS}                                       # a -> 5, b -> 6, ..., j -> 14
ANSWERS = ["a", "b", "c", "d", "e", "f", "g", "h"]
CASES = [FillMaskCase(tokens=["x", MASK, "y"], position=1, answer=w) for w in ANSWERS]

# (8, 7) choices, best first; where each case's answer is:
CHOICES = np.array([
    [ID["a"], ID["b"], ID["c"], ID["d"], ID["e"], ID["f"], ID["g"]],    # a: 1st          -> top-1, top-5
    [ID["a"], ID["b"], ID["c"], ID["d"], ID["e"], ID["f"], ID["g"]],    # b: 2nd          -> top-5
    [ID["a"], ID["b"], ID["d"], ID["e"], ID["c"], ID["f"], ID["g"]],    # c: 5th          -> top-5
    [ID["a"], ID["b"], ID["c"], ID["e"], ID["f"], ID["d"], ID["g"]],    # d: 6th          -> neither
    [ID["a"], ID["b"], ID["c"], ID["d"], ID["f"], ID["g"], ID["e"]],    # e: 7th          -> neither
    [ID["f"], ID["a"], ID["b"], ID["c"], ID["d"], ID["e"], ID["g"]],    # f: 1st          -> top-1, top-5
    [ID["a"], ID["b"], ID["c"], ID["d"], ID["e"], ID["f"], ID["h"]],    # g: absent       -> neither
    [ID["h"], ID["h"], ID["a"], ID["b"], ID["c"], ID["d"], ID["e"]],    # h: 1st (twice)  -> top-1, top-5
])


def _check(what, got, want):
    assert isinstance(got, dict) and set(got) == {"top1", "top5"}, (
        f"{what} returned {got!r}; expected a dict with the keys 'top1' and 'top5'")
    for key in ("top1", "top5"):
        value = got[key]
        assert isinstance(value, (float, np.floating)) and abs(float(value) - want[key]) < 1e-12, (
            f"{what}[{key!r}] = {value!r}, expected {want[key]} (a float: the share of the cases)")


def test_accuracy():
    _check("accuracy(choices (8, 7), vocab, cases)", accuracy(CHOICES, VOCAB, CASES), {"top1": 3 / 8, "top5": 5 / 8})
    # only the first five columns count for top-5, however many there are
    _check("accuracy(choices[:, :5], vocab, cases)", accuracy(CHOICES[:, :5], VOCAB, CASES),
           {"top1": 3 / 8, "top5": 5 / 8})
    _check("accuracy(choices[:, :3], vocab, cases)", accuracy(CHOICES[:, :3], VOCAB, CASES),
           {"top1": 3 / 8, "top5": 4 / 8})
    _check("accuracy(choices[:, :1], vocab, cases)", accuracy(CHOICES[:, :1], VOCAB, CASES),
           {"top1": 3 / 8, "top5": 3 / 8})


def test_accuracy_on_a_few_cases():
    cases = [FillMaskCase(["i", MASK], 1, "j"), FillMaskCase([MASK, "i"], 0, "i")]
    choices = np.array([[ID["j"], ID["i"]], [ID["j"], ID["i"]]])
    _check("accuracy on 2 cases", accuracy(choices, VOCAB, cases), {"top1": 0.5, "top5": 1.0})
    _check("accuracy on 1 case", accuracy(choices[1:], VOCAB, cases[1:]), {"top1": 0.0, "top5": 1.0})


def test_agreement():
    # the teacher's first choices: a, b, c, d, e, f, g, h (its other columns do not count)
    teacher = np.array([[ID[w], ID["i"], ID["j"]] for w in ANSWERS])
    _check("agreement(student (8, 7), teacher (8, 3))", agreement(CHOICES, teacher), {"top1": 3 / 8, "top5": 5 / 8})
    _check("agreement(student (8, 5), teacher (8, 3))", agreement(CHOICES[:, :5], teacher), {"top1": 3 / 8, "top5": 5 / 8})
    _check("agreement(student (8, 1), teacher (8, 3))", agreement(CHOICES[:, :1], teacher), {"top1": 3 / 8, "top5": 3 / 8})
    _check("agreement(student (8, 7), teacher (8, 1))", agreement(CHOICES, teacher[:, :1]), {"top1": 3 / 8, "top5": 5 / 8})
    # the teacher's second and third choices never count: a student that matches only them agrees with nothing
    shifted = np.concatenate([teacher[:, 1:], teacher[:, :1]], axis=1)            # first choices i, i, ..., i
    _check("agreement(student, teacher whose first choice is always 'i')", agreement(CHOICES, shifted),
           {"top1": 0.0, "top5": 0.0})


def test_a_model_agrees_with_itself():
    _check("agreement(choices, choices)", agreement(CHOICES, CHOICES), {"top1": 1.0, "top5": 1.0})
