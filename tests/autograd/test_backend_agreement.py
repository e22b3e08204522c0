"""The NumPy and PyTorch backends compute the same numbers.

Every case of the catalogue runs on ``"cpu"`` (NumPy) and ``"torch"`` (PyTorch on the CPU)
in float64 with the same inputs and the same upstream gradient: forward values and input
gradients must agree to 1e-10 (both are float64 round-off apart, ~1e-16, when the op is
written once against the backend namespace). Ops that draw random numbers (dropout) are
left out: the two backends have different generators.

Both backends must also keep float32 data float32 through forward and backward.
"""
import numpy as np
import pytest

import minidl as md

from .cases import CASES, as_numpy, minidl_inputs

AGREEMENT_TOL = 1e-10


def run(case, device, dtype="float64"):
    """Forward value and gradients (as float64 NumPy arrays) of one case on one device."""
    tensors = minidl_inputs(case.draw(), device, dtype)
    out = case.fn(*tensors)
    grad_output = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(md.get_backend(device).asarray(grad_output, dtype))
    grads = [as_numpy(t.grad) for t in tensors if t.requires_grad]
    return out, grads, tensors


@pytest.mark.parametrize("case", [c for c in CASES if c.same_on_backends], ids=repr)
def test_numpy_and_torch_agree(case):
    out_np, grads_np, _ = run(case, "cpu")
    out_torch, grads_torch, _ = run(case, "torch")
    assert isinstance(out_np.data, np.ndarray) and not isinstance(out_torch.data, np.ndarray)
    np.testing.assert_allclose(out_torch.numpy(), out_np.numpy(), rtol=AGREEMENT_TOL, atol=AGREEMENT_TOL,
                               err_msg=f"{case.id}: forward values differ")
    for i, (g_torch, g_np) in enumerate(zip(grads_torch, grads_np)):
        np.testing.assert_allclose(g_torch, g_np, rtol=AGREEMENT_TOL, atol=AGREEMENT_TOL,
                                   err_msg=f"{case.id}: gradient of input {i} differs")


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_float32_stays_float32(case, device):
    out, _, tensors = run(case, device, dtype="float32")
    assert out.dtype == "float32", f"{case.id}: forward returned {out.dtype}"
    for i, t in enumerate(tensors):
        if t.requires_grad:
            assert md.get_backend(device).dtype_name(t.grad) == "float32", \
                f"{case.id}: gradient of input {i} is {md.get_backend(device).dtype_name(t.grad)}"
            assert tuple(t.grad.shape) == t.shape


def test_same_seed_same_dropout_mask_per_backend(device):
    xp = md.get_backend(device)
    x = md.ones(50, device=device)
    first = md.dropout(x, p=0.5, generator=xp.new_generator(7)).numpy()
    again = md.dropout(x, p=0.5, generator=xp.new_generator(7)).numpy()
    other = md.dropout(x, p=0.5, generator=xp.new_generator(8)).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_both_backends_implement_exactly_the_contract():
    """``backend.Backend`` lists the namespace; each backend implements every name (an
    abstract method left out would make it impossible to build) and offers nothing public
    beyond it, so code written against the contract runs on either."""
    import inspect

    from minidl import backend

    contract = {name for name, member in vars(backend.Backend).items()
                if not name.startswith("_") and callable(member)}
    for cls in (backend.NumpyBackend, backend.TorchBackend):
        assert not inspect.isabstract(cls), f"{cls.__name__} misses {sorted(cls.__abstractmethods__)}"
        public = {name for name, member in vars(cls).items() if not name.startswith("_") and callable(member)}
        assert public == contract, (cls.__name__, sorted(public ^ contract))
        for attribute in ("name", "device", "negative_step_slices"):
            assert hasattr(backend.get_backend("cpu" if cls is backend.NumpyBackend else "torch"), attribute)


@pytest.mark.parametrize("device", ["cpu", "torch"])
def test_copies_and_pickles_keep_the_one_backend_of_their_device(device):
    """copy.deepcopy(model) and pickle keep each tensor on its device's backend object (a copied
    NumPy backend once made tensors report device "torch", so a copied model could not meet
    its own inputs)."""
    import copy
    import pickle

    from minidl.nn import Linear

    layer = Linear(4, 3, device=device)
    for twin in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert twin.weight.xp is layer.weight.xp and twin.weight.device == layer.weight.device
        x = md.tensor(np.ones((2, 4), np.float32), device=device)
        np.testing.assert_array_equal(twin(x).numpy(), layer(x).numpy())


def test_a_python_float_beside_an_integer_tensor_keeps_its_value_on_both_backends():
    """torch's maximum / minimum / where got the float cut to the integer tensor's dtype: 1.5 -> 1."""
    from minidl.autograd import ops

    for device in ("cpu", "torch"):
        i, cond = md.tensor([1, 2, 3], device=device), md.tensor([True, False, True], device=device)
        assert ops.maximum(i, 1.5).numpy().tolist() == [1.5, 2, 3], device
        assert ops.minimum(i, 2.5).numpy().tolist() == [1, 2, 2.5], device
        assert ops.where(cond, i, 1.5).numpy().tolist() == [1, 1.5, 3], device


def test_integers_meeting_floats_give_the_same_dtype_on_both_backends():
    """NumPy promoted int64 to float64 (int64 + float32, int64 * 0.5, the mean or exp of integers),
    PyTorch to float32: one rule now, the widest float input or else the default dtype. Gradients
    take their input's dtype. torch's refusal of int64 @ float32 is a dtype error, not a ShapeError."""
    from minidl.autograd.function import OpError

    for device in ("cpu", "torch"):
        i, f = md.tensor([1, 2, 3], device=device), md.tensor([0.5, 1.5, 2.5], device=device)
        results = [i + f, i / 2, i * 0.5, i ** 0.5, i.mean(), i.exp(), i.softmax(), i.sigmoid(),   # sigmoid was
                   md.tensor([True, False], device=device).mean()]                                # a ShapeError
        assert [r.dtype for r in results] == ["float32"] * len(results), device
        assert (i + f.double()).dtype == "float64" and (i + 1).dtype == "int64"
        with md.default_dtype("float64"):
            assert (i / 2).dtype == "float64" and (i + f).dtype == "float32"
        w = md.tensor([0.5, 1.5, 2.5], device=device, requires_grad=True)
        (w * md.tensor(np.array([1, 2, 3]), device=device)).sum().backward()
        assert md.tensor(w.grad, device=device).dtype == "float32" and w.grad.tolist() == [1, 2, 3]
    with pytest.raises(OpError, match=r"input dtypes: float32, int64\); give the inputs one dtype"):
        md.tensor([[1, 2]], device="torch") @ md.tensor([[1.0], [2.0]], device="torch")


@pytest.mark.parametrize("device", ["cpu", "torch"])
def test_an_integer_tensor_and_an_array_of_floats_give_floats(device):
    """tensor([1, 2]) * np.array([0.5, 0.5]) was Tensor([0, 0], int64): the array was cast to the tensor's
    dtype (md.mul gave [0.5, 1.0]); a float tensor keeps its dtype, and integers meeting integers stay integers."""
    i = md.tensor([1, 2], device=device)
    assert (i * np.array([0.5, 0.5])).numpy().tolist() == [0.5, 1.0]
    assert (i + [0.5, 0.5]).numpy().tolist() == [1.5, 2.5] and (np.array([0.5, 0.5]) + i).numpy().tolist() == [1.5, 2.5]
    assert (i + np.array(0.5)).numpy().tolist() == [1.5, 2.5] and (i - [1, 1]).dtype == "int64"
    assert (md.tensor([1.0, 2.0], device=device) * np.array([0.5, 0.5])).dtype == "float32"


def test_numpy_arrays_given_to_ops_take_the_device_and_float_dtype_of_their_tensors():
    """md.matmul(x32, np.ones((3, 2))) and nn.Linear(3, 2)(np.ones((2, 3))) were float64 on "cpu" and an
    AttributeError on "torch"; md.where refused a float mask (batch.mask is one) on "torch"."""
    from minidl import nn

    values = {}
    for device in ("cpu", "torch"):
        x = md.tensor(np.arange(6.0).reshape(2, 3), device=device, requires_grad=True)
        mask = md.tensor([[1.0, 0.0, 1.0]], device=device)
        outs = [md.matmul(x, np.ones((3, 2))), md.matmul(np.full((2, 2), 0.5), x), md.where(mask, x, np.zeros(3))]
        assert [(out.dtype, out.device) for out in outs] == [("float32", device)] * 3
        sum(out.sum() for out in outs).backward()
        values[device] = [out.numpy() for out in outs] + [as_numpy(x.grad)]
        layer = nn.Linear(3, 2, device=device)
        assert layer(np.ones((2, 3))).dtype == "float32"
        np.testing.assert_array_equal(layer(np.ones((2, 3))).numpy(), layer(md.ones(2, 3, device=device)).numpy())
    for cpu, torch_value in zip(values["cpu"], values["torch"]):
        np.testing.assert_array_equal(cpu, torch_value)
