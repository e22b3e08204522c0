"""Low-rank factorisation: exact on low-rank weights, the energy rule, refusals, gradients,
and a factorised model that stays close, really shrinks on disk and reloads."""
import numpy as np
import pytest

import minidl as md
from minidl.compress.lowrank import LowRankLinear, choose_rank, factorize, max_useful_rank, ranks_of
from minidl.gradcheck import gradcheck
from minidl.nn import Linear, Module, ModuleList, Sequential, Tanh


def _linear(weight, bias=None, device="cpu", dtype="float64"):
    d_in, d_out = weight.shape
    layer = Linear(d_in, d_out, device=device, dtype=dtype)
    layer.weight.data = layer.weight.xp.asarray(weight, dtype)
    if bias is not None:
        layer.bias.data = layer.bias.xp.asarray(bias, dtype)
    return layer


def _spectrum_matrix(rng, d_in, d_out, s):
    u, _ = np.linalg.qr(rng.standard_normal((d_in, d_in)))
    v, _ = np.linalg.qr(rng.standard_normal((d_out, d_out)))
    k = len(s)
    return u[:, :k] @ np.diag(s) @ v[:, :k].T


def test_exact_on_a_low_rank_weight(rng):
    w = rng.standard_normal((32, 4)) @ rng.standard_normal((4, 24))
    layer = _linear(w, rng.standard_normal(24))
    low = LowRankLinear.from_linear(layer, rank=4)
    assert low.A.shape == (32, 4) and low.B.shape == (4, 24)
    assert np.abs(low.weight_matrix() - w).max() < 1e-12 * np.abs(w).max()
    x = md.tensor(rng.standard_normal((5, 32)), dtype="float64")
    np.testing.assert_allclose(low(x).numpy(), layer(x).numpy(), atol=1e-12)


def test_energy_rule_on_a_constructed_spectrum(rng):
    s = np.array([4.0, 3.0, 2.0, 1.0])            # σ² = 16, 9, 4, 1: total 30
    assert choose_rank(s, energy=0.5) == 1        # 16/30 = 0.533
    assert choose_rank(s, energy=0.8) == 2        # 25/30 = 0.833
    assert choose_rank(s, energy=25 / 30) == 2    # exactly on the boundary
    assert choose_rank(s, energy=0.9) == 3        # 29/30
    assert choose_rank(s, energy=1.0) == 4
    w = _spectrum_matrix(rng, 40, 30, s)
    low = LowRankLinear.from_linear(_linear(w), energy=0.8)
    assert low.rank == 2
    rel = np.linalg.norm(w - low.weight_matrix()) / np.linalg.norm(w)
    assert rel == pytest.approx(np.sqrt(5 / 30), rel=1e-9)  # the dropped σ²: 4 + 1


def test_rank_arguments_are_checked():
    with pytest.raises(ValueError, match="exactly one"):
        choose_rank([1.0, 0.5])
    with pytest.raises(ValueError, match="exactly one"):
        choose_rank([1.0, 0.5], rank=1, energy=0.5)
    with pytest.raises(ValueError, match="energy"):
        choose_rank([1.0, 0.5], energy=1.5)
    with pytest.raises(ValueError, match="rank"):
        choose_rank([1.0, 0.5], rank=3)
    # factorize skipped every layer for a rank of 0, rounded 2.7 down, and read a misspelled layer
    # name as "no rank given for this layer"
    net = lambda: Sequential(Linear(64, 48), Tanh(), Linear(48, 64))
    for rank in (0, -1, 2.7, "3", True):
        with pytest.raises(ValueError, match=f"factorize: a rank is a whole number >= 1, got {rank!r}"):
            factorize(net(), rank=rank)
    with pytest.raises(ValueError, match=r"factorize: energy must be in \(0, 1\], got 1.5"):
        factorize(net(), energy=1.5)
    with pytest.raises(ValueError, match="factorize: no Linear named 'layer0'; the Linears are 0, 2"):
        factorize(net(), rank={"layer0": 4, "2": 4})


def test_refuses_a_rank_that_saves_nothing(rng):
    layer = _linear(rng.standard_normal((8, 8)))
    assert max_useful_rank(8, 8) == 3
    with pytest.raises(ValueError, match=r"rank 4 does not save parameters for a 8×8 weight.*64 ≥ D_in·D_out = 64"):
        LowRankLinear.from_linear(layer, rank=4)
    with pytest.raises(ValueError, match="does not save"):
        LowRankLinear(8, 8, 4)
    assert LowRankLinear.from_linear(layer, rank=3).num_parameters() == 3 * 16 + 8
    model = Sequential(_linear(rng.standard_normal((8, 8))))
    with pytest.raises(ValueError, match=r"factorize: 0: rank 8 does not save parameters"):
        factorize(model, rank={"0": 9}, min_size=1)  # rank >= min(D_in, D_out), asked for this layer


def test_gradcheck(device, rng):
    md.manual_seed(0)
    layer = LowRankLinear(5, 6, 2, device=device, dtype="float64")
    x = md.tensor(rng.standard_normal((2, 3, 5)), dtype="float64", device=device, requires_grad=True)
    result = gradcheck(lambda x, *_: layer(x), [x, layer.A, layer.B, layer.bias])
    assert result.ok, result


def _mlp(rng, device="cpu"):
    """A 'trained-ish' MLP: weights with the decaying spectra trained layers have."""
    md.manual_seed(1)
    model = Sequential(Linear(32, 64, device=device), Tanh(), Linear(64, 64, device=device), Tanh(),
                       Linear(64, 10, device=device))
    for layer in (model[0], model[2]):
        d_in, d_out = layer.weight.shape
        s = 3.0 * np.exp(-np.arange(min(d_in, d_out)) / 2)
        layer.weight.data = layer.weight.xp.asarray(_spectrum_matrix(rng, d_in, d_out, s), "float32")
    return model


def test_factorised_model_stays_close_shrinks_and_reloads(tmp_path, rng, device):
    model = _mlp(rng, device)
    x = md.tensor(rng.standard_normal((16, 32)), device=device)
    before = model(x).numpy()
    n_before = model.num_parameters()
    model.save(tmp_path / "float.npz")

    report = factorize(model, energy=0.9999, min_size=1024)
    assert [r.name for r in report] == ["0", "2", "4"]
    assert [r.replaced for r in report] == [True, True, False]
    assert "min_size" in report[2].reason
    assert report[0].rank == report[1].rank == 10  # σ² tail share q^r ≤ 1e-4 with q = 1/e
    for r in report[:2]:
        assert r.rel_error <= 0.01 and r.params_after < r.params_before
    assert isinstance(model[0], LowRankLinear) and isinstance(model[4], Linear)
    assert model.num_parameters() == n_before - sum(r.params_before - r.params_after for r in report)
    after = model(x).numpy()
    assert np.abs(after - before).max() < 0.05 * np.abs(before).max()

    model.save(tmp_path / "lowrank.npz")
    size_float = (tmp_path / "float.npz").stat().st_size
    size_low = (tmp_path / "lowrank.npz").stat().st_size
    assert size_low < 0.5 * size_float, (size_low, size_float)

    fresh = _mlp(np.random.default_rng(5), device)
    factorize(fresh, rank=ranks_of(report), min_size=1024)
    fresh.load(tmp_path / "lowrank.npz")
    np.testing.assert_array_equal(fresh(x).numpy(), after)


def test_a_layer_a_rank_dict_names_is_factorised_whatever_its_size(tmp_path, rng):
    """min_size skipped it without a word: a model factorised with min_size=100 and saved could not be
    rebuilt with factorize(fresh, rank=ranks_of(report)) (the default min_size) to load it."""
    model = Sequential(Linear(16, 32), Tanh(), Linear(32, 16))
    report = factorize(model, rank=3, min_size=100)
    model.save(tmp_path / "small.npz")
    fresh = Sequential(Linear(16, 32), Tanh(), Linear(32, 16))
    again = factorize(fresh, rank=ranks_of(report))
    assert [r.replaced for r in again] == [True, True] and [r.rank for r in again] == [3, 3]
    fresh.load(tmp_path / "small.npz")
    x = md.tensor(rng.standard_normal((4, 16)))
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())


def test_skips_layers_where_the_rank_saves_nothing(rng):
    model = Sequential(Linear(40, 40))
    model[0].weight.data = rng.standard_normal((40, 40)).astype("float32")  # a flat spectrum
    report = factorize(model, energy=0.999, min_size=0)
    assert not report[0].replaced and "does not save parameters" in report[0].reason
    assert isinstance(model[0], Linear) and report[0].params_after == report[0].params_before


def test_nested_trees_lists_and_tied_layers(rng):
    class Net(Module):
        def __init__(self):
            super().__init__()
            self.shared = Linear(48, 48)
            self.blocks = ModuleList([Sequential(Linear(48, 48), Tanh()), self.shared])
            self.head = Linear(48, 2)

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return self.head(self.shared(x))

    net = Net()
    report = factorize(net, rank=4, min_size=0)
    assert [r.name for r in report] == ["shared", "blocks.0.0", "head"]
    assert [r.replaced for r in report] == [True, True, False]  # head: 4·50 ≥ 96
    assert net.blocks[1] is net.shared and isinstance(net.shared, LowRankLinear)
    assert list(net.blocks._modules) == ["0", "1"] and list(net.blocks[0]._modules) == ["0", "1"]
    assert isinstance(net.blocks[0][0], LowRankLinear)
    assert net(md.tensor(rng.standard_normal((3, 48)))).shape == (3, 2)


def test_refuses_a_bare_linear():
    with pytest.raises(TypeError, match="from_linear"):
        factorize(Linear(64, 64), rank=2)
