"""Task 4: top-1 / top-5 accuracy and agreement with the teacher (minidl/mlm/evaluate.py: accuracy,
agreement), on fixed choices. The shares are compared with the reference's (which this file does not
spell out), and two rules are checked as they stand: a model agrees with itself entirely, and a
teacher's choices after its first never count."""
import numpy as np

from minidl.assignment.checks import expected
from minidl.mlm import FillMaskCase, accuracy, agreement, build_vocabulary
from minidl.mlm.tokenizer import MASK

WORDS = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
VOCAB = build_vocabulary([WORDS], max_size=None, min_freq=1)
ID = {w: VOCAB[w] for w in WORDS}                                       # a -> 5, b -> 6, ..., j -> 14
ANSWERS = ["a", "b", "c", "d", "e", "f", "g", "h"]
CASES = [FillMaskCase(tokens=["x", MASK, "y"], position=1, answer=w) for w in ANSWERS]

# (8, 7) choices, best first; where each case's answer is among them:
CHOICES = np.array([
    [ID["a"], ID["b"], ID["c"], ID["d"], ID["e"], ID["f"], ID["g"]],    # a: 1st
    [ID["a"], ID["b"], ID["c"], ID["d"], ID["e"], ID["f"], ID["g"]],    # b: 2nd
    [ID["a"], ID["b"], ID["d"], ID["e"], ID["c"], ID["f"], ID["g"]],    # c: 5th
    [ID["a"], ID["b"], ID["c"], ID["e"], ID["f"], ID["d"], ID["g"]],    # d: 6th
    [ID["a"], ID["b"], ID["c"], ID["d"], ID["f"], ID["g"], ID["e"]],    # e: 7th
    [ID["f"], ID["a"], ID["b"], ID["c"], ID["d"], ID["e"], ID["g"]],    # f: 1st
    [ID["a"], ID["b"], ID["c"], ID["d"], ID["e"], ID["f"], ID["h"]],    # g: absent
    [ID["h"], ID["h"], ID["a"], ID["b"], ID["c"], ID["d"], ID["e"]],    # h: 1st (twice)
])


TEACHER = np.array([[ID[w], ID["i"], ID["j"]] for w in ANSWERS])  # first choices a, b, ..., h; then i, j
FEW = [FillMaskCase(["i", MASK], 1, "j"), FillMaskCase([MASK, "i"], 0, "i")]
FEW_CHOICES = np.array([[ID["j"], ID["i"]], [ID["j"], ID["i"]]])
CALLS = {   # the name of its reference value: (what the message calls it, the call)
    "accuracy_k7": ("accuracy(choices (8, 7), vocab, cases)", lambda: accuracy(CHOICES, VOCAB, CASES)),
    "accuracy_k5": ("accuracy(choices[:, :5], vocab, cases)", lambda: accuracy(CHOICES[:, :5], VOCAB, CASES)),
    "accuracy_k3": ("accuracy(choices[:, :3], vocab, cases)", lambda: accuracy(CHOICES[:, :3], VOCAB, CASES)),
    "accuracy_k1": ("accuracy(choices[:, :1], vocab, cases)", lambda: accuracy(CHOICES[:, :1], VOCAB, CASES)),
    "accuracy_two": ("accuracy on 2 cases", lambda: accuracy(FEW_CHOICES, VOCAB, FEW)),
    "accuracy_one": ("accuracy on 1 case", lambda: accuracy(FEW_CHOICES[1:], VOCAB, FEW[1:])),
    "agreement_7_3": ("agreement(student (8, 7), teacher (8, 3))", lambda: agreement(CHOICES, TEACHER)),
    "agreement_5_3": ("agreement(student (8, 5), teacher (8, 3))", lambda: agreement(CHOICES[:, :5], TEACHER)),
    "agreement_1_3": ("agreement(student (8, 1), teacher (8, 3))", lambda: agreement(CHOICES[:, :1], TEACHER)),
    "agreement_7_1": ("agreement(student (8, 7), teacher (8, 1))", lambda: agreement(CHOICES, TEACHER[:, :1])),
}


def case_metrics():
    return {name: [call()["top1"], call()["top5"]] for name, (_, call) in CALLS.items()}


def _check(what, got, want):
    assert isinstance(got, dict) and set(got) == {"top1", "top5"}, (
        f"{what} returned {got!r}; expected a dict with the keys 'top1' and 'top5'")
    for key in ("top1", "top5"):
        value = got[key]
        assert isinstance(value, (float, np.floating)) and abs(float(value) - want[key]) < 1e-12, (
            f"{what}[{key!r}] = {value!r}, not the expected share of the cases (a float)")


def _check_calls(*names):
    want = None
    for name in names:
        got = CALLS[name][1]()   # the code under test before the reference values: its own errors come first
        want = want or expected(__file__, "metrics")
        _check(CALLS[name][0], got, {"top1": float(want[name][0]), "top5": float(want[name][1])})


def test_accuracy():
    # only the first five columns count for top-5, however many there are
    _check_calls("accuracy_k7", "accuracy_k5", "accuracy_k3", "accuracy_k1")


def test_accuracy_on_a_few_cases():
    _check_calls("accuracy_two", "accuracy_one")


def test_agreement():
    # the teacher's first choices: a, b, c, d, e, f, g, h (its other columns do not count)
    _check_calls("agreement_7_3", "agreement_5_3", "agreement_1_3", "agreement_7_1")
    # the teacher's second and third choices never count: a student that matches only them agrees with nothing
    shifted = np.concatenate([TEACHER[:, 1:], TEACHER[:, :1]], axis=1)            # first choices i, i, ..., i
    _check("agreement(student, teacher whose first choice is always 'i')", agreement(CHOICES, shifted),
           {"top1": 0.0, "top5": 0.0})


def test_a_model_agrees_with_itself():
    _check("agreement(choices, choices)", agreement(CHOICES, CHOICES), {"top1": 1.0, "top5": 1.0})
