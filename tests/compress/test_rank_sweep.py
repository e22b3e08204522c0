"""Accuracy against SVD rank on a small transformer trained on the built-in corpus: the error
falls to exactly 0 at full rank, the parameters grow to the teacher's, the full-rank model
scores as the teacher does, no rank collapses to chance, fine-tuning runs once per rank and
moves the metrics, the rows are JSON and the table and plots are written."""
import json

import numpy as np
import pytest

from minidl import optim
from minidl.compress.lowrank import LowRankLinear, factorize
from minidl.compress.rank_sweep import (default_ranks, eligible_linears, format_rank_sweep, full_rank,
                                        plot_rank_sweep, rank_sweep)
from minidl.data.batching import batches, subset
from minidl.models import build_model
from minidl.nn import Linear, Sequential, Tanh
from minidl.train import TrainConfig, fit, train
from minidl.train.prepare import prepare
from minidl.train.trainer import evaluate

CHANCE, MARGIN = 0.5, 0.15  # two balanced classes; the source projects' model sat at 0.147 at every rank


@pytest.fixture(scope="module")
def teacher():
    """A one-layer transformer (d 32, FFN 64: six factorisable Linears) at ≈0.99 test accuracy (~2 s)."""
    config = TrainConfig(model="transformer", hidden=32, embed_dim=32, max_length=30,
                         model_options={"num_heads": 2, "num_layers": 1, "d_ff": 64, "max_len": 30},
                         epochs=6, lr=0.01, optimizer="adamw", weight_decay=0.01, patience=None, train_limit=3000)
    result = fit(config, progress=False, log=lambda *_: None)
    assert result.test["accuracy"] > 0.9, result.test
    prepared = prepare(config)

    def copy():
        model = build_model(config.model, len(prepared.vocab), num_classes=len(prepared.label_names),
                            **config.model_config())
        model.load_state_dict(result.model.state_dict())
        return model

    test = subset(prepared.test, 500, 0)
    return copy, prepared, test, evaluate(result.model, test)


def _fine_tuner(prepared, calls):
    """A few steps of the training core on 300 training reviews; records each model it gets."""
    tune = subset(prepared.train, 300, 0)

    def loss_fn(model, batch):
        from minidl import cross_entropy
        return cross_entropy(model(batch.ids, batch.mask, batch.lengths).logits, batch.labels)

    def fine_tune(model):
        calls.append(model)
        params = [p for p in model.parameters() if p.requires_grad]
        train(model, lambda epoch: batches(tune, 32, seed=0, epoch=epoch), loss_fn, optim.Adam(params, lr=5e-4),
              steps=8, log=None)
    return fine_tune


@pytest.fixture(scope="module")
def sweep(teacher):
    copy, prepared, test, _ = teacher
    calls = []
    ranks = default_ranks(copy())
    rows = rank_sweep(copy, ranks, lambda m: evaluate(m, test), fine_tune=_fine_tuner(prepared, calls))
    return ranks, rows, calls


def test_default_ranks_go_from_two_to_full(teacher):
    model = teacher[0]()
    shapes = sorted({(m.in_features, m.out_features) for m in eligible_linears(model).values()})
    assert shapes == [(32, 32), (32, 64), (64, 32)]   # q, k, v, out; the two FFN layers; not the 32×2 head
    assert full_rank(model) == 32
    assert default_ranks(model) == [2, 4, 8, 16, 21, 32]   # 21 = max_useful_rank(32, 64); 15 for 32×32


def test_error_falls_to_zero_and_parameters_grow_to_the_teacher(sweep):
    ranks, rows, _ = sweep
    assert [r["rank"] for r in rows] == ranks
    for key in ("rel_error_mean", "rel_error_max"):
        values = [r[key] for r in rows]
        assert all(a > b for a, b in zip(values, values[1:])), (key, values)
    energy = [r["energy_mean"] for r in rows]
    assert all(a < b for a, b in zip(energy, energy[1:])), energy
    params = [r["params"] for r in rows]
    assert all(a < b for a, b in zip(params, params[1:])), params
    full = rows[-1]
    assert full["factorised"] == 0 and full["dense"] == 6 and full["layers"] == {}
    assert full["rel_error_mean"] == full["rel_error_max"] == 0.0 and full["energy_min"] == 1.0
    assert full["params"] == full["params_original"] and full["params_ratio"] == 1.0
    assert rows[0]["params"] < 0.6 * rows[0]["params_original"] and rows[0]["factorised"] == 6
    # measured error and the teacher's spectrum agree (Eckart–Young), up to float32 rounding
    for r in rows:
        assert r["energy_min"] == pytest.approx(1 - r["rel_error_max"] ** 2, abs=1e-5)


def test_rank_above_a_matrix_maximum_keeps_it_dense(sweep):
    _, rows, _ = sweep
    at = {r["rank"]: r for r in rows}
    assert at[8]["factorised"] == 6
    assert at[16]["factorised"] == 2 and set(at[16]["layers"].values()) == {16}   # 32×32: max 15, dense
    assert sorted(at[16]["layers"]) == ["encoder.layers.0.feed_forward.0", "encoder.layers.0.feed_forward.3"]
    assert at[21]["factorised"] == 2 and at[32]["factorised"] == 0


def test_full_rank_scores_as_the_teacher_and_no_rank_collapses(sweep, teacher):
    _, rows, _ = sweep
    original = teacher[3]
    assert rows[-1]["before"]["accuracy"] == original["accuracy"]
    assert rows[-1]["before"]["loss"] == pytest.approx(original["loss"], rel=1e-12)
    accuracies = [r["before"]["accuracy"] for r in rows]
    assert min(accuracies) >= CHANCE + MARGIN, accuracies
    assert len(set(accuracies)) > 1, accuracies    # the factorisation really changed the model
    assert accuracies[-2] >= original["accuracy"] - 0.05   # rank 21: 99.6 % of the parameters


def test_fine_tune_runs_once_per_rank_and_moves_the_metrics(sweep):
    ranks, rows, calls = sweep
    assert len(calls) == len(ranks) and len({id(m) for m in calls}) == len(ranks)
    assert isinstance(calls[0].encoder.layers[0].attention.query, LowRankLinear)
    for r in rows:
        assert r["after"] is not None and r["after"]["loss"] != r["before"]["loss"]


def test_rows_are_json_and_rebuild_the_architecture(sweep, teacher):
    _, rows, _ = sweep
    again = json.loads(json.dumps(rows))
    assert again == rows
    model = teacher[0]()
    row = rows[2]
    factorize(model, rank=row["layers"])
    assert model.num_parameters() == row["params"]


def test_table_and_plots(sweep, tmp_path):
    _, rows, _ = sweep
    table = format_rank_sweep(rows)
    lines = table.splitlines()
    assert lines[0].split() == ["rank", "factorised", "params", "of", "orig.", "err", "mean", "err", "max",
                                "energy", "accuracy", "tuned"]
    assert len(lines) == 2 + len(rows) + 1 and lines[-1].startswith("* every matrix dense")
    assert lines[2].split()[0] == "2" and lines[-2].split()[0] == "32*"
    assert all(len(line) <= 120 for line in lines)
    paths = plot_rank_sweep(rows, tmp_path / "sweep")
    assert paths == [str(tmp_path / "sweep.png"), str(tmp_path / "sweep.svg")]
    png, svg = (open(p, "rb").read() for p in paths)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert b"<svg" in svg[:1000] and len(svg) > 10_000


def test_without_fine_tune_and_on_a_plain_linear_stack(rng):
    """A Linear stack on an easy 4-class task: the same rules, no fine-tune column."""
    model = Sequential(Linear(40, 64), Tanh(), Linear(64, 48), Tanh(), Linear(48, 4))
    x = rng.standard_normal((256, 40)).astype("float32")
    labels = np.argmax(x[:, :4], axis=1)
    state = model.state_dict()

    def copy():
        fresh = Sequential(Linear(40, 64), Tanh(), Linear(64, 48), Tanh(), Linear(48, 4))
        fresh.load_state_dict(state)
        return fresh

    def score(m):
        from minidl import tensor
        return {"accuracy": float(np.mean(m(tensor(x)).numpy().argmax(axis=1) == labels))}

    rows = rank_sweep(copy, [1, 24, 27, 1000], score, min_size=1024)
    assert [r["factorised"] for r in rows] == [2, 2, 1, 0]   # max_useful_rank: 24 (40×64), 27 (64×48)
    assert rows[2]["layers"] == {"2": 27} and rows[2]["rel_error_max"] > 0.0 == rows[3]["rel_error_max"]
    assert [r["dense"] for r in rows] == [0, 0, 1, 2]        # the 48×4 head is below min_size: not counted
    assert all(r["after"] is None for r in rows) and rows[3]["before"] == score(model)
    assert "tuned" not in format_rank_sweep(rows)


def test_bad_arguments_are_refused(teacher):
    copy = teacher[0]
    with pytest.raises(ValueError, match="integers ≥ 1"):
        rank_sweep(copy, [0, 2], lambda m: {})
    with pytest.raises(ValueError, match="integers ≥ 1"):
        rank_sweep(copy, [], lambda m: {})
    with pytest.raises(ValueError, match="min_size"):
        rank_sweep(copy, [2], lambda m: {}, min_size=10 ** 9)
    same = copy()
    with pytest.raises(ValueError, match="NEW"):
        rank_sweep(lambda: same, [2], lambda m: {})

