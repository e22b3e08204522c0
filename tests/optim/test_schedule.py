"""The linear warm-up / linear decay schedule on hand-computed points."""
import numpy as np
import pytest

from minidl import nn, optim
from minidl.optim import LinearWarmupDecay, get_lr


@pytest.mark.parametrize("step, expected", [
    (0, 0.0), (1, 0.25), (2, 0.5), (4, 1.0),  # warm-up over 4 steps to base_lr = 1
    (6, 0.75), (8, 0.5), (11, 0.125), (12, 0.0), (50, 0.0),  # decay over steps 4..12
])
def test_values_to_zero(step, expected):
    assert get_lr(step, base_lr=1.0, warmup_steps=4, total_steps=12) == pytest.approx(expected)


@pytest.mark.parametrize("step, expected", [(2, 0.5), (4, 1.0), (8, 0.55), (12, 0.1), (50, 0.1)])
def test_values_to_a_floor(step, expected):
    assert get_lr(step, base_lr=1.0, warmup_steps=4, total_steps=12, min_lr=0.1) == pytest.approx(expected)


def test_a_warm_up_to_the_last_step_ends_at_min_lr():
    """warmup_steps == total_steps divided by zero at the end of the warm-up."""
    assert [get_lr(step, 1.0, 3, 3, min_lr=0.1) for step in (2, 3, 4)] == [pytest.approx(2 / 3), 0.1, 0.1]


def test_no_warmup_starts_at_base():
    assert get_lr(0, base_lr=0.3, warmup_steps=0, total_steps=10) == pytest.approx(0.3)
    assert get_lr(5, base_lr=0.3, warmup_steps=0, total_steps=10) == pytest.approx(0.15)


def test_scheduler_sets_every_group_lr_each_step():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.2}], lr=1.0)
    scheduler = LinearWarmupDecay(opt, warmup_steps=4, total_steps=12)
    seen = []
    for _ in range(13):
        seen.append([group["lr"] for group in opt.param_groups])
        scheduler.step()
    seen = np.array(seen)
    expected = [get_lr(s, 1.0, 4, 12) for s in range(13)]
    np.testing.assert_allclose(seen[:, 0], expected)
    np.testing.assert_allclose(seen[:, 1], 0.2 * np.array(expected))  # each group from its own base
    assert scheduler.lr == 0.0


def test_scheduler_resumes_from_state_dict():
    opt = optim.Adam([nn.Parameter(np.ones(2))], lr=0.01)
    scheduler = LinearWarmupDecay(opt, warmup_steps=10, total_steps=100)
    for _ in range(30):
        scheduler.step()
    state = scheduler.state_dict()
    fresh_opt = optim.Adam([nn.Parameter(np.ones(2))], lr=0.01)
    fresh = LinearWarmupDecay(fresh_opt, warmup_steps=10, total_steps=100)
    fresh.load_state_dict(state)
    assert fresh.lr == pytest.approx(scheduler.lr) == pytest.approx(get_lr(30, 0.01, 10, 100))


def test_a_second_schedule_on_one_optimizer_starts_from_the_base_lr():
    """A notebook cell run again: the first schedule set lr to 0 (warm-up step 0); the second
    starts from the group's initial_lr, as torch's schedulers do, not from that 0."""
    opt = optim.Adam([nn.Parameter(np.ones(2))], lr=0.01)
    LinearWarmupDecay(opt, warmup_steps=10, total_steps=100)
    scheduler = LinearWarmupDecay(opt, warmup_steps=10, total_steps=100)
    assert scheduler.base_lrs == [0.01]
    for _ in range(10):
        scheduler.step()
    assert scheduler.lr == pytest.approx(0.01)


def test_bad_settings_are_refused():
    opt = optim.SGD([nn.Parameter(np.ones(2))], lr=0.1)
    with pytest.raises(ValueError, match="warmup_steps < total_steps"):
        LinearWarmupDecay(opt, warmup_steps=10, total_steps=10)
    with pytest.raises(ValueError, match="min_lr"):
        LinearWarmupDecay(opt, warmup_steps=1, total_steps=10, min_lr=1.0)
