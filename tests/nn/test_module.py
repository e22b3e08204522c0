"""Module mechanics: registration and names, train/eval, zero_grad, buffers, repr, to()."""
import numpy as np
import pytest

import minidl as md
from minidl import nn, optim


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4, padding_idx=0)
        self.encoder = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(0.5), nn.Linear(8, 2))
        self.norm = nn.LayerNorm(2)

    def forward(self, ids):
        return self.norm(self.encoder(self.embed(ids).mean(axis=1)))


def test_parameters_are_named_by_path_in_assignment_order():
    names = [name for name, _ in Classifier().named_parameters()]
    assert names == ["embed.weight", "encoder.0.weight", "encoder.0.bias", "encoder.3.weight",
                     "encoder.3.bias", "norm.weight", "norm.bias"]


def test_named_modules_and_children():
    model = Classifier()
    assert [name for name, _ in model.named_modules()] == [
        "", "embed", "encoder", "encoder.0", "encoder.1", "encoder.2", "encoder.3", "norm"]
    assert [type(m).__name__ for m in model.children()] == ["Embedding", "Sequential", "LayerNorm"]


def test_parameter_is_a_float_leaf_that_requires_grad():
    p = nn.Parameter([1, 2, 3])
    assert p.requires_grad and p.is_leaf and p.dtype == "float32"
    assert nn.Parameter(md.zeros(2, dtype="float64")).dtype == "float64"  # a Tensor keeps its dtype
    with pytest.raises(TypeError, match="floating-point"):
        nn.Parameter([1, 2], dtype="int64")
    table = np.zeros(3)
    nn.Parameter(table).data[0] = 1.0
    assert table[0] == 0, "a Parameter copies its data"


def test_assigning_a_plain_tensor_to_a_parameter_is_refused():
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="Parameter"):
        layer.weight = layer.weight * 2  # would silently stop training the weight
    layer.bias = None  # removing a parameter is fine
    assert [name for name, _ in layer.named_parameters()] == ["weight"]


def test_forgetting_super_init_is_explained():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Broken()


def test_modules_or_parameters_in_a_plain_container_are_refused():
    """A list or dict is not registered: its layers would silently not be trained, saved or loaded."""
    model = nn.Module()
    with pytest.raises(TypeError, match=r"list of Modules to 'blocks'.*ModuleList"):
        model.blocks = [nn.Linear(4, 4), nn.Linear(4, 2)]
    with pytest.raises(TypeError, match=r"dict of Parameters to 'scales'.*setattr"):
        model.scales = {"a": nn.Parameter([1.0])}
    model.blocks = nn.ModuleList([nn.Linear(4, 4)])
    model.sizes, model.cache = [4, 2], (md.zeros(2),)  # other lists and tuples are plain attributes
    with pytest.raises(TypeError, match=r"to keep them out on purpose, e\.g\. a frozen teacher: "
                                        r"object\.__setattr__\(self, '_teacher', \.\.\.\)"):
        model._teacher = (nn.Linear(4, 2),)   # a private name too: self._layers = [...] trained nothing
    object.__setattr__(model, "_teacher", (nn.Linear(4, 2),))   # the way out, on purpose
    assert [name for name, _ in model.named_parameters()] == ["blocks.0.weight", "blocks.0.bias"]


def test_shared_parameters_are_listed_once():
    first = nn.Linear(3, 3)
    model = nn.Sequential(first, nn.Tanh(), first)
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert model.num_parameters() == 12


def test_num_parameters_counts_frozen_ones_unless_asked():
    model = Classifier()
    model.embed.weight.requires_grad = False
    assert model.num_parameters() == 40 + (4 * 8 + 8) + (8 * 2 + 2) + 4
    assert model.num_parameters(trainable_only=True) == model.num_parameters() - 40


def test_train_and_eval_reach_every_submodule():
    model = Classifier()
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_dropout_is_the_identity_in_eval_mode(device):
    x = md.randn(4, 6, device=device)
    layer = nn.Dropout(0.5)
    assert not np.array_equal(layer(x).numpy(), x.numpy())
    assert np.array_equal(layer.eval()(x).numpy(), x.numpy())


def test_zero_grad_clears_every_gradient():
    model = Classifier()
    model(np.array([[1, 2, 0]])).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_repr_is_a_tree():
    assert repr(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.LayerNorm(3)))) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): LayerNorm(3, eps=1e-05)\n"
        "  )\n"
        ")")


def test_sequential_and_module_list_index_and_slice():
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    assert isinstance(model[0], nn.Linear) and len(model) == 3
    head = model[:2]
    assert isinstance(head, nn.Sequential) and head(md.randn(5, 2)).shape == (5, 3)
    blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert [name for name, _ in blocks.named_parameters()][-1] == "2.bias"
    with pytest.raises(TypeError, match="Modules"):
        blocks.append(md.randn(2))


def test_buffers_are_saved_and_moved_but_not_trained(device):
    layer = nn.Linear(3, 2)
    layer.register_buffer("mask", md.ones(3, 2))
    assert "mask" in layer.state_dict()
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    layer.to(device=device, dtype="float64")
    assert layer.mask.device == md.Tensor.device_of(md.get_backend(device)) and layer.mask.dtype == "float64"
    with pytest.raises(TypeError, match="buffer"):
        layer.mask = np.ones((3, 2))


def test_linear_shapes_and_init():
    md.manual_seed(0)
    layer = nn.Linear(16, 4)
    assert layer.weight.shape == (16, 4) and layer.bias.shape == (4,)
    bound = 1 / np.sqrt(16)
    assert np.abs(layer.weight.numpy()).max() <= bound and np.abs(layer.weight.numpy()).max() > 0.8 * bound
    assert layer(md.randn(2, 5, 16)).shape == (2, 5, 4)  # any leading dimensions
    with pytest.raises(ValueError, match=r"\(\.\.\., 16\)"):
        layer(md.randn(2, 15))


def test_init_is_reproducible_from_the_seed():
    md.manual_seed(3)
    first = nn.Linear(4, 4).weight.numpy().copy()
    md.manual_seed(3)
    assert np.array_equal(nn.Linear(4, 4).weight.numpy(), first)


def test_embedding_freeze_and_from_pretrained(device):
    assert not nn.Embedding(5, 2, freeze=True).weight.requires_grad
    table = np.arange(10, dtype=np.float32).reshape(5, 2)
    layer = nn.Embedding.from_pretrained(table, padding_idx=-1, device=device)
    assert not layer.weight.requires_grad and layer.padding_idx == 4
    assert np.array_equal(layer(np.array([[4, 1]])).numpy(), [[[8, 9], [2, 3]]])  # kept as given
    tuned = nn.Embedding.from_pretrained(table, freeze=False)
    tuned.weight.data[0] = 100.0
    assert table[0, 0] == 0, "the caller's table must not change when the layer is trained"
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(5, 2, padding_idx=5)


def test_to_moves_between_backends_with_identical_outputs():
    md.manual_seed(0)
    model = Classifier().eval().to(dtype="float64")
    ids = np.array([[1, 2, 3], [4, 0, 0]])
    before = model(ids).numpy()
    params = list(model.parameters())
    model.to(device="torch")
    assert all(p.device == "torch" for p in model.parameters())
    assert [id(p) for p in model.parameters()] == [id(p) for p in params], "same Parameter objects"
    np.testing.assert_allclose(model(ids).numpy(), before, rtol=1e-13, atol=1e-15)
    model.to(device="cpu")
    assert np.array_equal(model(ids).numpy(), before)  # the values made the round trip exactly


def test_to_changes_dtype_and_drops_gradients(device):
    model = nn.Linear(3, 2)
    model(md.randn(1, 3)).sum().backward()
    model.to(device=device, dtype="float64")
    assert all(p.dtype == "float64" and p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="float"):
        model.to(dtype="int64")


def test_optimizer_built_before_to_keeps_training_the_moved_model():
    md.manual_seed(0)
    model = nn.Linear(3, 1)
    opt = optim.Adam(model.parameters(), lr=0.1)
    x = np.ones((4, 3))
    for device in ("cpu", "torch"):
        model.to(device=device)  # the Adam moments follow the parameters lazily
        before = model.weight.numpy().copy()
        opt.zero_grad()
        model(md.tensor(x, device=device)).sum().backward()
        opt.step()
        assert not np.array_equal(model.weight.numpy(), before)


def test_layers_compute_what_torch_computes(device, rng):
    """Forward values against torch.nn.functional, float64 (the gradients are checked in
    test_layers_gradcheck.py; this pins down what the layers compute)."""
    import torch
    import torch.nn.functional as F

    x = rng.standard_normal((2, 3, 4))
    tx = torch.tensor(x)
    linear = nn.Linear(4, 5, device=device, dtype="float64")
    W, b = (torch.tensor(p.numpy()) for p in linear.parameters())
    np.testing.assert_allclose(linear(md.tensor(x, device=device, dtype="float64")).numpy(),
                               F.linear(tx, W.T, b).numpy(), rtol=1e-12)  # torch stores W as (D_out, D_in)
    norm = nn.LayerNorm(4, eps=1e-3, device=device, dtype="float64")
    norm.load_state_dict({"weight": rng.standard_normal(4), "bias": rng.standard_normal(4)})
    gamma, beta = (torch.tensor(p.numpy()) for p in norm.parameters())
    np.testing.assert_allclose(norm(md.tensor(x, device=device, dtype="float64")).numpy(),
                               F.layer_norm(tx, (4,), gamma, beta, eps=1e-3).numpy(), rtol=1e-10, atol=1e-12)
    ids = np.array([[3, 0], [1, 1]])
    embed = nn.Embedding(4, 2, device=device, dtype="float64")
    assert np.array_equal(embed(ids).numpy(), embed.weight.numpy()[ids])
    for ours, theirs in [(nn.ReLU(), F.relu), (nn.Tanh(), torch.tanh), (nn.Sigmoid(), torch.sigmoid),
                         (nn.GELU(), F.gelu), (nn.GELU("tanh"), lambda t: F.gelu(t, approximate="tanh")),
                         (nn.LeakyReLU(0.2), lambda t: F.leaky_relu(t, 0.2))]:
        np.testing.assert_allclose(ours(md.tensor(x, device=device, dtype="float64")).numpy(),
                                   theirs(tx).numpy(), rtol=1e-12, atol=1e-15, err_msg=repr(ours))


@pytest.mark.parametrize("make, message", [
    (lambda: nn.GRU(4, 0), "GRU needs whole-number sizes >= 1, got input_size=4, hidden_size=0"),
    (lambda: nn.ElmanRNN(4, -2), "ElmanRNN needs whole-number sizes >= 1, got input_size=4, hidden_size=-2"),
    (lambda: nn.Embedding(-1, 3), "Embedding needs whole-number sizes >= 1, got num_embeddings=-1, embedding_dim=3"),
    (lambda: nn.GRU(4, 2.5), r"hidden_size=2.5 \(hidden / 2 is a float; hidden // 2 is not\)"),
    (lambda: nn.MultiHeadSelfAttention(64, 0), "MultiHeadSelfAttention needs whole-number sizes >= 1"),
])
def test_layer_sizes_are_checked_as_linear_checks_them(make, message):
    """A ZeroDivisionError, 'math domain error', 'negative dimensions' or a TypeError deep in NumPy, where
    nn.Linear said what was wrong."""
    with pytest.raises(ValueError, match=message):
        make()
