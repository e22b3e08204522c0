"""The autograd engine: graph walking, gradient accumulation, recording modes, errors, dtypes, devices."""
import numpy as np
import pytest

import minidl as md

from .cases import as_numpy


def f64(data, device, requires_grad=True):
    return md.tensor(data, requires_grad=requires_grad, device=device, dtype="float64")


# --- graph walking ----------------------------------------------------------------------------

def test_10000_node_chain_needs_no_recursion(device):
    x = f64(1.0, device)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    assert as_numpy(x.grad) == pytest.approx(1.0001 ** 10_000, rel=1e-9)
    del y  # freeing the 10,000-deep chain must not hit the recursion limit either


def test_diamond_graph_sums_both_paths(device):
    x = f64([1.0, 2.0], device)
    a = x * 3.0
    y = (a * x + a).sum()  # d/dx (3x² + 3x) = 6x + 3
    y.backward()
    np.testing.assert_allclose(as_numpy(x.grad), [9.0, 15.0])


def test_backward_twice_accumulates_exactly_twice(device):
    x = f64([[0.5, -1.0], [2.0, 0.25]], device)
    w = f64([1.5, -0.5], device)
    y = ((x * w).tanh() * x).sum()
    y.backward()
    first_x, first_w = as_numpy(x.grad).copy(), as_numpy(w.grad).copy()
    y.backward()
    np.testing.assert_array_equal(as_numpy(x.grad), 2 * first_x)
    np.testing.assert_array_equal(as_numpy(w.grad), 2 * first_w)


def test_backward_after_a_step_changed_an_input_is_refused(device):
    """The graph saved the weights' old arrays, which the step changed in place: its backward would mix old
    and new values (an RNN state carried into the next batch without .detach() does the same)."""
    w = f64([[1.0, -0.5], [0.25, 2.0]], device)
    h = f64([0.5, 1.0], device, requires_grad=False)
    opt = md.optim.SGD([w], lr=0.1)
    loss = (w @ h).tanh().sum()
    loss.backward()
    opt.step()
    with pytest.raises(RuntimeError, match=r"shape \(2, 2\) of 'matmul' was changed in place.*\.detach\(\)"):
        loss.backward()
    state = (w @ h).tanh()              # a state from batch 1 ...
    state.sum().backward()
    opt.step()
    with pytest.raises(RuntimeError, match="optimizer.step"):
        (w @ state).sum().backward()    # ... carried into batch 2 without .detach()
    opt.zero_grad()
    (w @ state.detach()).sum().backward()   # detached, and a forward after the step: fine
    assert w.grad is not None
    loss = (w @ h).sum()
    with md.no_grad():
        w -= 0.1 * w.grad                   # a step written by hand, as the course's first loops do
    with pytest.raises(RuntimeError, match="changed in place"):
        loss.backward()


def test_a_numpy_input_refilled_before_backward_does_not_change_the_gradient():
    """Micro-batches read into one reused buffer: the ops kept the buffer, so the first batch's
    gradient was computed with the second batch's ids, inputs and targets."""
    md.manual_seed(0)
    linear, embedding = md.nn.Linear(2, 2), md.nn.Embedding(5, 2)
    xs, ys = np.array([[1, 0], [0, 1], [2, 2], [3, -1]], np.float32), np.array([0, 1, 1, 0])
    grads = []
    for reuse in (False, True):
        x_buffer, y_buffer, loss = np.empty((2, 2), np.float32), np.empty(2, np.int64), 0.0
        for start in (0, 2):
            x, y = xs[start:start + 2].copy(), ys[start:start + 2].copy()
            if reuse:
                x_buffer[:], y_buffer[:] = x, y
                x, y = x_buffer, y_buffer
            loss = loss + md.cross_entropy(linear(x) + embedding(y), y)
        linear.zero_grad(), embedding.zero_grad()
        loss.backward()
        grads.append((linear.weight.grad, embedding.weight.grad))
    for fresh, reused in zip(*grads):
        np.testing.assert_array_equal(fresh, reused)


def test_backward_needs_a_gradient_for_non_scalar_outputs(device):
    y = f64([1.0, 2.0], device) * 2.0
    with pytest.raises(RuntimeError, match="single-value"):
        y.backward()


def test_backward_with_explicit_gradient(device):
    x = f64([1.0, 2.0, 3.0], device)
    (x * x).backward(md.tensor([1.0, 0.0, -1.0], device=device, dtype="float64"))
    np.testing.assert_array_equal(as_numpy(x.grad), [2.0, 0.0, -6.0])


def test_constants_get_no_gradient(device):
    x = f64([1.0, 2.0], device)
    c = f64([3.0, 4.0], device, requires_grad=False)
    (x * c).sum().backward()
    assert c.grad is None
    np.testing.assert_array_equal(as_numpy(x.grad), [3.0, 4.0])


# --- recording modes ----------------------------------------------------------------------------

def test_no_grad_records_nothing(device):
    x = f64([1.0, 2.0], device)
    with md.no_grad():
        assert not md.is_grad_enabled()
        y = (x * 2.0).exp().sum()
    assert md.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_no_grad_restores_on_error_and_works_as_decorator(device):
    with pytest.raises(KeyError):
        with md.no_grad():
            raise KeyError
    assert md.is_grad_enabled()

    @md.no_grad()
    def evaluate(t):
        return t * 2.0

    @md.no_grad   # as torch allows: it was a TypeError when the module was imported
    def bare(t):
        return t * 2.0

    x = f64([1.0], device)
    assert not evaluate(x).requires_grad and not evaluate(x).requires_grad  # the decorator is reusable
    assert not bare(x).requires_grad and not bare(x).requires_grad and (x * 2.0).requires_grad
    assert md.is_grad_enabled()


def test_enable_grad_inside_no_grad(device):
    x = f64([1.0], device)
    with md.no_grad():
        with md.enable_grad():
            y = x * 2.0
        z = x * 2.0
    assert y.requires_grad and not z.requires_grad


def test_detach_cuts_the_graph_and_shares_data(device):
    x = f64([1.0, 2.0], device)
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    (d * x).sum().backward()  # d is a constant here: d/dx = d, not 2x
    np.testing.assert_array_equal(as_numpy(x.grad), [1.0, 2.0])
    assert d.data is x.data or np.shares_memory(d.numpy(), x.numpy())


def test_retain_grad_keeps_intermediate_gradients(device):
    x = f64([1.0, -2.0], device)
    h = (x * 2.0).retain_grad()
    k = h * 1.0
    (h * h + k).sum().backward()
    np.testing.assert_array_equal(as_numpy(h.grad), 2 * h.numpy() + 1)
    assert k.grad is None  # intermediate tensors keep no gradient unless asked
    np.testing.assert_array_equal(as_numpy(x.grad), 2 * (2 * h.numpy() + 1))


# --- errors -----------------------------------------------------------------------------------------

MISMATCHES = [("add", (3, 4), (5,)), ("mul", (2, 3), (3, 2)), ("sub", (4,), (3,)), ("div", (2, 3), (2,)),
              ("maximum", (3, 4), (4, 3)), ("matmul", (2, 3), (4, 5)), ("matmul", (2, 2, 3), (3, 3, 4))]


@pytest.mark.parametrize("op, shape_a, shape_b", MISMATCHES, ids=[f"{op}{a}{b}" for op, a, b in MISMATCHES])
def test_shape_mismatch_names_op_and_shapes(device, op, shape_a, shape_b):
    a = md.zeros(*shape_a, device=device, requires_grad=True)
    b = md.zeros(*shape_b, device=device)
    with pytest.raises(md.ShapeError) as info:
        getattr(md, op)(a, b)
    message = str(info.value)
    assert op in message and str(shape_a) in message and str(shape_b) in message, message


@pytest.mark.parametrize("make", [
    lambda a, b: md.concat([a, b], axis=0),
    lambda a, b: md.stack([a, b]),
    lambda a, b: md.where(md.tensor(np.ones((3, 4), bool), device=a.device), a, b),
    lambda a, b: md.cross_entropy(a, md.tensor(np.zeros(5, dtype=np.int64), device=a.device)),
    lambda a, b: md.reshape(a, (5, 2)),
], ids=["concat", "stack", "where", "cross_entropy", "reshape"])
def test_other_shape_mismatches_raise_shape_error(device, make):
    a = md.zeros(3, 4, device=device)
    b = md.zeros(3, 5, device=device)
    with pytest.raises(md.ShapeError):
        make(a, b)


# the NaN/Inf below are deliberate: NumPy's warnings about them are expected noise
deliberate_nan = pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning",
                                            "ignore:invalid value:RuntimeWarning")


@deliberate_nan
def test_detect_anomaly_names_the_op_that_made_inf(device):
    x = f64([0.0, 1.0], device)
    with md.detect_anomaly():
        y = md.sqrt(x).sum()
        with pytest.raises(FloatingPointError, match="sqrt") as info:
            y.backward()
    assert "test_engine.py" in str(info.value)  # and the line of user code that created it


@deliberate_nan
def test_detect_anomaly_log_of_zero_and_negative(device):
    x = f64([0.0, 1.0], device)
    with md.detect_anomaly():
        with pytest.raises(FloatingPointError, match="'log'"):
            md.log(x).sum().backward()
    # log(-1) = nan in the forward; the first backward to produce a NaN is the mul that uses it
    x = f64([-1.0, 1.0], device)
    w = f64([2.0, 3.0], device)
    with md.detect_anomaly():
        with pytest.raises(FloatingPointError, match="'mul'.*input 1"):
            (md.log(x) * w).sum().backward()


@deliberate_nan
def test_without_detect_anomaly_inf_passes_silently(device):
    x = f64([0.0, 1.0], device)
    md.sqrt(x).sum().backward()
    assert np.isinf(as_numpy(x.grad)[0])


def test_mixing_devices_is_a_clear_error():
    a = md.tensor([1.0, 2.0], device="cpu")
    b = md.tensor([1.0, 2.0], device="torch")
    with pytest.raises(ValueError, match=r"different devices.*\.to\(device\)"):
        a + b
    x = md.ones(1, 1, 3, 4, device="torch")   # a padding mask on the CPU was an AttributeError inside the ops
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: inputs live on different devices"):
        md.scaled_dot_product_attention(x, x, x, mask=md.ones(1, 3))
    with pytest.raises(ValueError, match=r"window_attention: inputs live on different devices"):
        md.window_attention(x[0], x[0], x[0], md.ones(1, 3))


def test_unknown_device_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown device"):
        md.tensor([1.0], device="tpu")


def test_a_dtype_given_where_the_device_goes_is_named_a_dtype():
    x = md.tensor([1.0])
    for where in (lambda d: x.to(d), lambda d: md.nn.Linear(2, 1).to(d), lambda d: md.tensor([1.0], device=d)):
        for dtype in ("float64", np.float64):           # said "unknown device 'float64'", not how to convert
            with pytest.raises(ValueError, match=r"^'float64' is a dtype, not a device \(in Python: x\.to\(dtype='float64'\)\): use "
                                                 r"\"cpu\" \(NumPy\)"):   # (the command line's --device too)
                where(dtype)
    assert x.to(dtype=np.float64).dtype == "float64" and x.double().dtype == "float64"


def test_requires_grad_on_integers_is_refused():
    with pytest.raises(TypeError, match="floating-point"):
        md.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match=r"got int64; write the values as floats \(1\.0, not 1\) or pass "
                                        r"dtype=\"float32\" \(x\.float\(\) for a tensor you have\)$"):
        md.tensor([1, 2, 3], requires_grad=True)        # said what was wrong, not what to do
    assert md.tensor([1, 2, 3], dtype="float32", requires_grad=True).requires_grad
    assert md.arange(3).float().requires_grad_().requires_grad


# --- dtypes and devices ----------------------------------------------------------------------

def test_float32_by_default_float64_on_request(device):
    assert md.tensor([1.0, 2.0], device=device).dtype == "float32"
    assert md.randn(2, device=device).dtype == "float32"
    assert md.tensor([1.0], device=device, dtype="float64").dtype == "float64"
    assert md.zeros(2, device=device, dtype="float64").dtype == "float64"
    assert md.tensor([1, 2], device=device).dtype == "int64"  # integer data keeps its type
    with md.default_dtype("float64"):
        assert md.tensor([1.0], device=device).dtype == "float64"
        assert md.ones(2, device=device).dtype == "float64"
    assert md.get_default_dtype() == "float32"
    with pytest.raises(ValueError, match="float32"):
        md.set_default_dtype("float16")


def test_a_dtype_is_read_the_same_everywhere_as_a_name_or_a_numpy_or_torch_dtype(device):
    torch = pytest.importorskip("torch")
    for dtype in (np.float64, np.dtype("float64"), torch.float64):   # torch's backend and Module.to refused them
        assert md.tensor([1.0], device=device, dtype=dtype).dtype == "float64"
        assert md.zeros(2, device=device, dtype=dtype).dtype == md.randn(2, device=device, dtype=dtype).dtype
        assert md.ones(2, device=device).to(dtype=dtype).dtype == "float64"
        assert md.nn.Linear(2, 1, device=device).to(dtype=dtype).weight.dtype == "float64"
        with md.default_dtype(dtype):                                   # set_default_dtype(np.float64) was refused
            assert md.get_default_dtype() == "float64" and md.ones(2, device=device).dtype == "float64"
    with pytest.raises(ValueError, match=r"default dtype must be one of \('float32', 'float64'\), got <class 'int'>"):
        md.set_default_dtype(int)


def test_gradients_have_the_dtype_of_their_tensor(device):
    x = md.tensor([1.0, 2.0], requires_grad=True, device=device)
    (x * 3.0).sum().backward()
    assert md.get_backend(device).dtype_name(x.grad) == "float32"


@pytest.mark.parametrize("target", ["cpu", "torch"])
def test_to_moves_data_and_gradients_flow_back(device, target):
    x = f64([[1.0, 2.0], [3.0, 4.0]], device)
    y = x.to(target)
    assert y.device == target and isinstance(y.data, np.ndarray) == (target == "cpu")
    (y * y).sum().backward()
    assert type(x.grad) is type(x.data)
    np.testing.assert_array_equal(as_numpy(x.grad), 2 * x.numpy())


def test_to_dtype_gradients_come_back_in_the_source_dtype(device):
    x = f64([1.0, 2.0], device)
    y = x.to(dtype="float32")
    assert y.dtype == "float32"
    (y * y).sum().backward()
    assert md.get_backend(device).dtype_name(x.grad) == "float64"
    np.testing.assert_array_equal(as_numpy(x.grad), [2.0, 4.0])


@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("float64", "float32")])
@pytest.mark.parametrize("op", ["matmul", "linear"])
def test_matmul_and_linear_promote_float32_with_float64_on_both_devices(op, dtypes):
    """NumPy's @ promotes float32 with float64; torch's refused the mix ('expected m1 and m2 to have the same
    dtype'), though both devices give the widest float dtype: the same dtype and numbers on both now."""
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(shape) for shape in [(2, 4, 3), (3, 2), (2,)]]
    results, inputs = {}, 2 if op == "matmul" else 3   # x, W (and b, in W's dtype)
    for device in ("cpu", "torch"):
        x, w, b = (md.tensor(v, dtype=dtype, device=device, requires_grad=True)
                   for v, dtype in zip(values, dtypes + dtypes[1:]))
        out = x @ w if op == "matmul" else md.linear(x, w, b)
        (out * out).sum().backward()
        grads = [p.grad for p in (x, w, b)[:inputs]]
        assert out.dtype == "float64"
        assert [md.get_backend(device).dtype_name(g) for g in grads] == list(dtypes + dtypes[1:])[:inputs]
        results[device] = [out.numpy()] + [as_numpy(g) for g in grads]
    for on_cpu, on_torch in zip(results["cpu"], results["torch"]):
        np.testing.assert_allclose(on_torch, on_cpu, rtol=1e-6)


def test_to_an_integer_dtype_leaves_the_graph(device):
    """x.to(dtype="int64") of a tensor that requires grad came back requiring grad, as no integer tensor can
    (requires_grad_ refuses it); torch gives requires_grad False."""
    x = f64([1.5, 2.0], device)
    y = x.to(dtype="int64")
    assert y.dtype == "int64" and not y.requires_grad and y._ctx is None
    np.testing.assert_array_equal(as_numpy(y.data), [1, 2])


def test_graph_across_devices_with_broadcasting():
    """A computation that starts on one device, moves, and broadcasts on both sides."""
    a = f64([[1.0], [2.0]], "cpu")  # (2, 1), broadcast against (2, 3) on the CPU
    b = f64(np.ones((2, 3)), "cpu")
    c = f64([1.0, 2.0, 3.0], "torch")  # (3,), broadcast on the torch side
    y = ((a + b).to("torch") * c).sum()
    y.backward()
    np.testing.assert_array_equal(as_numpy(a.grad), [[6.0], [6.0]])
    np.testing.assert_array_equal(as_numpy(c.grad), [5.0, 5.0, 5.0])
    assert isinstance(a.grad, np.ndarray)


@pytest.mark.parametrize("call, name, fix", [
    (lambda x: md.elman_rnn(x, md.zeros(2, 3), md.zeros(3, 3), nonlinearity="sigmoid"), "elman_rnn", "relu"),
    (lambda x: md.window_attention(x, x, x, np.ones((2, 3)), -1), "window_attention", ">= 0"),
    (lambda x: md.cross_entropy(x.reshape(6, 3), md.tensor(np.array([0, 1, 2, 3, 0, 1]))), "cross_entropy",
     "[0, 3)"),
], ids=["bad nonlinearity", "negative radius", "target out of range"])
def test_an_ops_own_errors_pass_through_unchanged(call, name, fix):
    """An op's refusal of an argument is not a shape error, and names the public function once
    (it used to read 'ShapeError: elmanrnn: elman_rnn: ...')."""
    x = md.zeros(2, 3, 3, requires_grad=True)
    with pytest.raises(md.OpError) as info:
        call(x)
    assert not isinstance(info.value, md.ShapeError) and isinstance(info.value, ValueError)
    message = str(info.value)
    assert message.startswith(f"{name}: ") and message.count(name) == 1 and fix in message, message


def test_op_names_are_the_public_functions():
    from minidl.autograd.ops import activations, attention, linalg, recurrent, reductions, shape

    classes = [recurrent.ElmanRNN, attention.ScaledDotProductAttention, linalg.MatMul, reductions.LogSumExp,
               shape.GetItem, activations.LeakyReLU]
    names = ["elman_rnn", "scaled_dot_product_attention", "matmul", "logsumexp", "getitem", "leaky_relu"]
    assert [c.op_name() for c in classes] == names
    assert all(callable(getattr(md, n)) for n in names if n != "getitem")


@pytest.mark.parametrize("device", ["cpu", "torch"])
def test_an_in_place_update_of_a_parameter_under_no_grad_updates_it(device):
    """p -= lr * p.grad, PyTorch's hand-written SGD step, rebound the loop variable and left the model as it was."""
    w = md.ones(2, 2, device=device, requires_grad=True)
    (w * 3).sum().backward()
    with md.no_grad():
        for p in [w]:
            p -= 0.5 * p.grad
            p *= 2
    assert w.numpy().tolist() == [[-1.0, -1.0], [-1.0, -1.0]] and w.requires_grad
    with pytest.raises(md.OpError, match=r"would not be recorded; write it under md.no_grad\(\)"):
        w -= 1
    x = md.ones(3, device=device)   # not a parameter: x += 1 is still x = x + 1, a new tensor
    y = x
    x += 1
    assert y.numpy().tolist() == [1.0, 1.0, 1.0] and x.numpy().tolist() == [2.0, 2.0, 2.0]


@pytest.mark.parametrize("device, other", [("cpu", "torch"), ("torch", "cpu")])
def test_an_in_place_update_refuses_another_device_or_shape_as_p_minus_t_does(device, other):
    """p -= t with t on the other device raised 'unsupported operand type(s) for -=' (cpu p) or changed p (torch p);
    a t that broadcasts beyond p's shape raised NumPy's 'non-broadcastable output operand'. Now p - t's words."""
    p = md.ones(3, device=device, requires_grad=True)
    with md.no_grad():
        with pytest.raises(ValueError, match=rf"^sub: inputs live on different devices \({other} and {device}\); move"):
            p -= 0.1 * md.ones(3, device=other)   # (the order p - t gives)
        with pytest.raises(ValueError, match=rf"^sub: inputs live on different devices \({other} and {device}\); move"):
            p - 0.1 * md.ones(3, device=other)
        with pytest.raises(TypeError, match=r"an operand is None \(a .grad is None until backward\(\)"):
            p -= p.grad   # no backward yet: p became NaN (cpu), or a TypeError about np.object_ (torch)
        with pytest.raises(md.ShapeError, match=r"^sub: shapes \(3,\) and \(2, 3\) broadcast to \(2, 3\), not to"):
            p -= md.ones(2, 3, device=device)
        with pytest.raises(md.ShapeError, match=r"^div: shapes \(3,\) and \(2,\) cannot be broadcast together"):
            p /= np.ones(2)
    assert p.numpy().tolist() == [1.0, 1.0, 1.0]


def test_a_slip_in_a_forward_is_its_own_error_not_a_shape_error():
    """A NameError in a student's forward read "ShapeError: window_attention: name 'd_k' is not defined (input
    shapes: ...)": a hunt for a shape bug. The array library's errors are still ShapeErrors naming the shapes."""
    class Slip(md.Function):
        @staticmethod
        def forward(ctx, x):
            return x / d_k ** 0.5   # noqa: F821 - the slip

        @staticmethod
        def backward(ctx, grad):
            return grad

    with pytest.raises(NameError, match="name 'd_k' is not defined"):
        Slip.apply(md.ones(2, 3))
    class Product(md.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a @ b   # the library's own shape error

        @staticmethod
        def backward(ctx, grad):
            return grad, grad

    with pytest.raises(md.ShapeError, match=r"input shapes: \(2, 3\), \(4, 5\)"):
        Product.apply(md.ones(2, 3), md.ones(4, 5))

    class Clip(md.Function):   # the library's other errors: "ShapeError: clip: return arrays must be of ArrayType"
        @staticmethod
        def forward(ctx, x):
            return np.clip(x, -1.0, 1.0, 0)   # the slip: out=0

        @staticmethod
        def backward(ctx, grad):
            return grad

    with pytest.raises(md.OpError, match=r"clip: .* \(inputs: float32 \(3,\)\)") as info:
        Clip.apply(md.ones(3))
    assert not isinstance(info.value, md.ShapeError)

    class Huge(md.Function):   # NumPy's "Unable to allocate 335. GiB ... with shape" read ShapeError, torch's OpError
        @staticmethod
        def forward(ctx, x, error):
            raise error

    for error in (MemoryError("Unable to allocate 335. GiB for an array with shape (300000, 300000)"),
                  RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 360000000000 bytes")):
        with pytest.raises(MemoryError):
            Huge.apply(md.ones(3), error)
    for device in ("cpu", "torch"):   # one mistake, one class on both devices (torch: "dim 0 appears multiple times")
        with pytest.raises(md.ShapeError):
            md.ones(2, 3, device=device).mean(axis=(0, 0))


@pytest.mark.parametrize("device", ["cpu", "torch"])
def test_two_leaves_never_share_one_gradient_array(device):
    """add's backward hands the same array to both inputs: base.grad was delta.grad, so scaling one gradient in
    place (p.grad *= 0.5, clipping by hand) scaled the other too."""
    base = md.ones(2, 2, device=device, requires_grad=True)
    delta = md.zeros(2, 2, device=device, requires_grad=True)
    (md.ones(3, 2, device=device) @ (base + delta)).sum().backward()
    assert base.grad is not delta.grad
    for p in (base, delta):
        p.grad *= 0.5
    assert md.tensor(base.grad).numpy().tolist() == [[1.5, 1.5], [1.5, 1.5]]


@pytest.mark.parametrize("device", ["cpu", "torch"])
@pytest.mark.parametrize("loss", [lambda x: x.sum(), lambda x: x.mean(), lambda x: (x + 1).sum(),
                                  lambda x: x.reshape(12).sum()], ids=["sum", "mean", "add", "reshape"])
def test_a_leaf_gradient_is_a_writable_array_of_its_own(device, loss):
    """sum's backward is a read-only broadcast view (strides 0): x.grad *= 0.5 raised NumPy's 'output array is
    read-only' (torch: 'more than one element of the written-to tensor refers to a single memory location')."""
    x = md.ones(3, 4, device=device, requires_grad=True)
    loss(x).backward()
    expected = as_numpy(x.grad) * 0.5
    x.grad *= 0.5
    np.testing.assert_allclose(as_numpy(x.grad), expected)


@pytest.mark.parametrize("device", ["cpu", "torch"])
@pytest.mark.parametrize("output", [lambda x: x, lambda x: x + 0, lambda x: x.reshape(4, 3).reshape(3, 4)],
                         ids=["leaf", "add", "reshape"])
def test_backward_keeps_the_callers_gradient_unchanged(device, output):
    """y.backward(g) stored g itself (or a view of it) as x.grad, as torch does not: x.grad *= 2 changed g."""
    x = md.zeros(3, 4, device=device, requires_grad=True)
    for g in [md.ones(3, 4, device=device)] + ([np.ones((3, 4), np.float32)] if device == "cpu" else []):
        x.grad = None
        output(x).backward(g)
        x.grad *= 2
        assert as_numpy(g.data).tolist() == np.ones((3, 4)).tolist()


def test_a_gradient_on_another_device_is_one_line():
    x = md.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"backward\(\): grad lives on torch, the output on cpu; move it with"):
        (x * x).backward(md.tensor([1.0, 1.0], device="torch"))
    # a gradient of another shape, an op with no Tensor input (neither ran in a test: coverage)
    with pytest.raises(ValueError, match=r"backward\(\): grad has shape \(3,\), output has \(2,\)"):
        (x * x).backward(np.ones(3))
    with pytest.raises(TypeError, match="exp: needs at least one minidl Tensor input"):
        md.exp(np.ones(2))
