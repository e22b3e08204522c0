"""Tensor methods and Module registry paths that no test reached (coverage): each forwarding method gives its op's
result and gradient, the reflected and in-place operators, what a tensor prints, and the Module's refusals."""
import numpy as np
import pytest

import minidl as md
from minidl import nn


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "abs", "sigmoid", "tanh", "relu", "softmax", "log_softmax"])
def test_each_method_is_its_op(name, device):
    x = md.tensor([[0.5, 2.0], [1.5, 0.25]], device=device, dtype="float64", requires_grad=True)
    y = md.tensor(x.numpy(), device=device, dtype="float64", requires_grad=True)
    getattr(x, name)().sum().backward()
    getattr(md, name)(y).sum().backward()
    np.testing.assert_array_equal(getattr(x, name)().numpy(), getattr(md, name)(y).numpy())
    np.testing.assert_array_equal(x.grad if device == "cpu" else md.tensor(x.grad).numpy(),
                                  y.grad if device == "cpu" else md.tensor(y.grad).numpy())


def test_reflected_matmul_in_place_division_and_float(device):
    w = md.tensor([[1.0, 2.0], [3.0, 4.0]], device=device, requires_grad=True)
    x = np.array([[1.0, -1.0]], dtype=np.float32)
    np.testing.assert_allclose((x @ w).numpy(), [[-2.0, -2.0]])    # a NumPy array on the left: __rmatmul__
    with md.no_grad():
        w /= 2.0                                                    # a parameter's step, in place
    np.testing.assert_allclose(w.numpy(), [[0.5, 1.0], [1.5, 2.0]])
    assert w.float() is not w and w.float().dtype == "float32"
    with pytest.raises(TypeError, match=r"float\(\) of a tensor of 4 values; .numpy\(\) gives them all"):
        float(w)


def test_what_a_tensor_prints_and_squeeze_of_a_wide_axis():
    x = md.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "Tensor([1., 2.], device='cpu', dtype=float32, requires_grad=True)"
    assert repr(x * 2).endswith("requires_grad=True, op=mul)")
    assert repr(nn.Parameter(md.zeros(1))) == "Parameter([0.], device='cpu', dtype=float32, requires_grad=True)"
    with pytest.raises(ValueError, match=r"squeeze: axis 0 has size 2, not 1 \(shape \(2,\)\)"):
        x.squeeze(0)
    x.grad = np.ones(2)
    x.zero_grad()
    assert x.grad is None
    assert md.tensor(md.tensor([1.0], dtype="float64")).dtype == "float64"   # a Tensor keeps its dtype, as torch's
    for data, what in ((["a"], "text"), ([1.0, None], "objects"), ([1j], "complex")):   # not an array ops fail on
        with pytest.raises(TypeError, match=f"a Tensor holds real numbers or booleans, not {what}"):   # later
            md.tensor(data)


def test_a_grad_is_none_or_an_array_of_the_tensor_s_shape_on_its_backend(device):
    p = md.tensor([1.0, 2.0], device=device, requires_grad=True)
    p.grad = kept = p.xp.ones_like(p.data)
    other = "torch" if device == "cpu" else "cpu"
    for grad, got in (([1, 2], "list"), (p.xp.ones((3,), "float32"), rf"shape \(3,\) on {device}"),
                      (md.tensor([1.0, 1.0], device=other).data, rf"shape \(2,\) on {other}")):
        with pytest.raises(TypeError, match=rf"^.grad must be None or an array of shape \(2,\) on {device}, got {got}"):
            p.grad = grad                           # was taken; Adam's step failed after scaling its moments
    assert p.grad is kept
    md.optim.Adam([p], lr=0.5).step()
    np.testing.assert_allclose(p.numpy(), [0.5, 1.5], rtol=1e-5)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 2)
        self.register_buffer("mask", md.ones(2))


def test_the_module_registry_refuses_what_would_silently_break_it():
    net = _Net()
    with pytest.raises(TypeError, match="cannot assign a int to sub-module 'layer' \\(a Module or None expected\\)"):
        net.layer = 3
    with pytest.raises(TypeError, match="buffer 'mask' must be a Tensor or None, got list"):
        net.mask = [1, 1]
    with pytest.raises(KeyError, match="'layer' is already a parameter or sub-module of _Net"):
        net.register_buffer("layer", md.ones(1))
    with pytest.raises(TypeError, match="buffer 'extra' must be a Tensor or None, got int"):
        net.register_buffer("extra", 1)
    assert [name for name, _ in net.named_children()] == ["layer"] and list(net.buffers())[0] is net.mask
    del net.layer                                                  # forgotten by the registry too
    assert list(net.named_children()) == [] and list(net.parameters()) == []
    net.layer = None
    assert "layer" not in net.state_dict()

    class Early(nn.Module):
        def __init__(self):
            self.register_buffer("mask", md.ones(1))
    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\) in Early.__init__ before register_buffer"):
        Early()
    with pytest.raises(NotImplementedError, match="_Net must define forward"):
        _Net()(md.ones(2))
