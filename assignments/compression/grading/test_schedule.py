"""Task 3: the cubic sparsity schedule of gradual pruning (minidl/compress/prune.py: cubic_sparsity)."""
from minidl.assignment.checks import check_outputs, expected
from minidl.compress import cubic_sparsity

STEPS = list(range(0, 130, 7))


def case_cubic():
    return {"sparsity": [cubic_sparsity(t, initial=0.1, final=0.9, start=10, end=110) for t in STEPS],
            "default": [cubic_sparsity(t) for t in (0, 250, 500, 1000, 2000)]}


def test_the_schedule():
    check_outputs("cubic_sparsity", case_cubic(), expected(__file__, "cubic"),
                  f"steps {STEPS} with initial 0.1, final 0.9, start 10, end 110; 'default' at steps 0, 250, 500, "
                  f"1000, 2000 with the defaults")


def case_cubic_no_ramp():
    return {"sparsity": [cubic_sparsity(t, initial=0.2, final=0.8, start=50, end=50) for t in (0, 49, 50, 80)]}


def test_a_schedule_without_ramp():
    # end <= start: the initial sparsity before start, the final one from start on
    check_outputs("cubic_sparsity with start = end = 50, initial 0.2, final 0.8", case_cubic_no_ramp(),
                  expected(__file__, "cubic_no_ramp"), "at steps 0, 49, 50, 80")
