"""The course's finding, reproduced: windowed attention is right when the negator is within
its radius and fooled beyond it; the GRU is not fooled by distance."""
from minidl.experiments import probe


def test_attention_is_fooled_beyond_its_radius_and_the_gru_is_not():
    results = probe.run(models=("attention", "gru"), seed=0, radius=5)
    attention, gru = results["attention"]["by_distance"], results["gru"]["by_distance"]
    assert min(attention[d] for d in range(1, 6)) >= 0.9, attention      # the sentiment word sees "not"
    assert max(attention[d] for d in range(11, 13)) <= 0.5, attention    # no word sees both: below chance
    assert min(gru.values()) >= 0.95, gru
