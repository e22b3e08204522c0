"""The command line: the demo sweep and the benchmark run end to end on tiny settings."""
import json

import numpy as np

from minidl.bench import mlp
from minidl.cli import main


def test_demo_writes_results_and_plot(tmp_path, capsys):
    main(["demo", "--out", str(tmp_path), "--hidden", "2,8", "--seeds", "0", "--steps", "30"])
    results = json.loads((tmp_path / "results.json").read_text())
    assert [row["hidden"] for row in results["summary"]] == [2, 8]
    assert all(len(run["losses"]) == 30 for run in results["runs"])
    assert results["runs"][0]["losses"][-1] < results["runs"][0]["losses"][0]  # it learns
    assert (tmp_path / "spirals.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "hidden" in capsys.readouterr().out


def test_bench_times_all_three_implementations():
    times = mlp.run(batch_size=8, sizes=(16, 8, 3), rounds=1, steps=2)
    assert set(times) == {"minidl", "pytorch", "numpy by hand"}
    assert all(t > 0 for t in times.values())
    assert "throughput vs PyTorch" in mlp.report(times)


def test_bench_steps_agree_with_each_other():
    """The three contenders must do the same update, or the ratio would compare different work."""
    rng = np.random.default_rng(0)
    batch = (rng.standard_normal((8, 16)).astype(np.float32), rng.integers(0, 3, 8))
    step, model = mlp._minidl_step(batch, (16, 8, 3), 0.1, 0.9, 0, "cpu")
    torch_step = mlp._torch_step(batch, model, 0.1, 0.9)
    numpy_step = mlp._numpy_step(batch, model, 0.1, 0.9)
    start = [w.copy() for w in mlp._weights(model)]
    for _ in range(3):
        step(), torch_step(), numpy_step()
    ours = mlp._weights(model)
    assert not np.allclose(ours[0], start[0])  # the weights did move
    for other in (torch_step.weights(), numpy_step.weights()):
        for a, b in zip(ours, other):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
