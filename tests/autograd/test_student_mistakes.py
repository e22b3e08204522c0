"""A student's usual mistakes with the Python API: each is an error naming the mistake and the
fix, never a silent wrong result or a traceback from deep inside (a new-user sweep found each)."""
import numpy as np
import pytest

import minidl as md
from minidl import nn, optim
from minidl.data import Tokenizer, Vocabulary
from minidl.data.dataset import TextDataset


@pytest.mark.parametrize("device", ["cpu", "torch"])
def test_an_axis_out_of_range_is_an_error_not_another_axis(device):
    """x.mean(axis=2) of a 2-D tensor read axis 0 (2 % 2), unsqueeze(7) put the axis anywhere."""
    x = md.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], device=device)
    for call in (lambda: x.mean(axis=2), lambda: x.max(axis=-3), lambda: x.sum(axis=(0, 2))):
        with pytest.raises(md.ShapeError, match="is out of range for a 2-D tensor"):
            call()
    for call in (lambda: x.unsqueeze(7), lambda: x.squeeze(5)):
        with pytest.raises(IndexError, match="is out of range"):
            call()
    assert x.mean(axis=-1).tolist() == [2.0, 5.0] and x.unsqueeze(-1).shape == (2, 3, 1)


@pytest.mark.parametrize("device", ["cpu", "torch"])
def test_concat_and_stack_refuse_an_axis_out_of_range_and_a_bare_tensor(device):
    """concat(axis=2) of 2-D tensors joined them along axis 0 (2 % 2), stack(axis=3) along axis 0, and
    concat(a) put a's rows end to end: each a silently wrong shape."""
    a, b = md.ones(2, 3, device=device), md.zeros(2, 3, device=device)
    for call, words in ((lambda: md.concat([a, b], axis=2), "concat: axis 2 is out of range for a 2-D tensor"),
                        (lambda: md.concat([a, b], axis=-3), "concat: axis -3 is out of range"),
                        (lambda: md.stack([a, b], axis=3), "stack: axis 3 is out of range for a 3-D tensor"),
                        (lambda: md.stack([a, b], axis=-4), "stack: axis -4 is out of range")):
        with pytest.raises(md.ShapeError, match=words):
            call()
    for call in (lambda: md.concat(a), lambda: md.stack(a)):
        with pytest.raises(TypeError, match=r"takes a list or tuple of tensors, got one Tensor"):
            call()
    assert md.concat([a, b], axis=-1).shape == (2, 6) and md.stack((a, b), axis=-1).shape == (2, 3, 2)


@pytest.mark.parametrize("device", ["cpu", "torch"])
def test_pad_refuses_a_negative_width_on_both_backends(device):
    """torch's pad cropped a (2, 3) tensor to (1, 4) and backward then blamed the op; NumPy refused in its words."""
    x = md.tensor(np.arange(6.0).reshape(2, 3), device=device, requires_grad=True)
    with pytest.raises(md.OpError, match=r"pad: pad_width \(\(-1, 0\), \(0, 1\)\) has a negative width"):
        md.pad(x, ((-1, 0), (0, 1)))
    with pytest.raises(md.ShapeError, match=r"pad_width has 1 \(before, after\) pairs but the input \(2, 3\) has 2"):
        md.pad(x, ((1, 0),))
    assert md.pad(x, ((1, 0), (0, 1))).shape == (3, 4)


@pytest.mark.parametrize("call, words", [
    (lambda x: md.dropout(x, p=1.5), "dropout: p is a probability in [0, 1], got 1.5"),
    (lambda x: md.layer_norm(x, eps=-1.0), "layer_norm: eps is added to the variance and must be >= 0"),
    (lambda x: md.scaled_dot_product_attention(x, x, x, dropout=1.5), "dropout is a probability in [0, 1), got 1.5")])
def test_an_op_refusing_an_argument_raises_op_error(call, words):
    """The README promises md.OpError (a ValueError); these raised a bare ValueError."""
    with pytest.raises(md.OpError) as raised:
        call(md.randn(1, 1, 2, 3))
    assert words in str(raised.value)


@pytest.mark.parametrize("device", ["cpu", "torch"])
def test_an_axis_may_be_a_numpy_integer(device):
    """x.sum(axis=np.int64(1)) failed on both backends ("'numpy.int64' object is not iterable"), softmax on torch,
    and x.transpose(np.int64(0), np.int64(1)) of a matrix was the identity permutation, silently."""
    x, i = md.tensor(np.arange(6.0).reshape(2, 3), device=device), np.int64
    for call in (lambda a: x.sum(axis=a), lambda a: x.mean(axis=a), lambda a: x.max(axis=a),
                 lambda a: x.logsumexp(axis=a), lambda a: md.softmax(x, axis=a), lambda a: md.log_softmax(x, axis=a),
                 lambda a: md.concat([x, x], axis=a), lambda a: md.stack([x, x], axis=a),
                 lambda a: x.unsqueeze(a).squeeze(a), lambda a: x.transpose(a, 1 - a)):
        for axis in (0, 1):
            np.testing.assert_allclose(call(i(axis)).numpy(), call(axis).numpy(), rtol=1e-6)
    assert x.sum(axis=(i(0), np.int32(-1))).item() == 15.0 and x.transpose(i(0), i(1)).shape == (3, 2)
    for axis in (True, (True,), np.True_):   # read as axis 1, or "'numpy.bool' object is not iterable"
        with pytest.raises(md.ShapeError, match=r"axis=.*True.* is not an axis; give an int"):
            x.sum(axis=axis)


def test_a_tensor_iterates_over_its_rows_and_is_true_only_as_one_value():
    """Iteration ended in getitem's ShapeError (list(t), zip, for, max); bool(t) was len(t) > 0,
    so `if x > 0` took every non-empty mask for True; `if loss < 0.1` failed on a 0-d tensor."""
    t = md.tensor([1.0, 2.0, 3.0], requires_grad=True)
    rows = list(t)
    assert [r.item() for r in rows] == [1.0, 2.0, 3.0] and max(t).item() == 3.0
    m = md.randn(3, 2, requires_grad=True)
    sum(r * r for r in m).sum().backward()                  # the rows stay in the graph
    np.testing.assert_allclose(m.grad, 2 * m.numpy(), rtol=1e-6)
    (rows[1] * 5).backward()
    np.testing.assert_array_equal(t.grad, [0.0, 5.0, 0.0])
    loss = md.tensor(0.05)
    assert (loss < 0.1) and float(loss) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="truth value of a tensor of 2 values is ambiguous"):
        bool(md.tensor([-1.0, -2.0]) > 0)
    for call in (lambda: len(loss), lambda: list(loss)):
        with pytest.raises(TypeError, match="0-d tensor"):
            call()


def test_a_list_of_tensors_is_stacked_not_cut_from_the_graph():
    a = md.tensor(1.0, requires_grad=True)
    with pytest.raises(TypeError, match=r"md.stack\(tensors\)"):
        md.tensor([a * 2, a * 3])


def test_a_hand_written_function_that_breaks_the_contract_is_named():
    """Too few gradients were dropped by zip (b.grad stayed None), a Tensor gradient left the
    optimizer updating nothing, and a forward without return became a tensor of None."""
    a, b = md.tensor([1.0, 2.0], requires_grad=True), md.tensor([3.0, 4.0], requires_grad=True)

    class Mul(md.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return g

    class Twice(md.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return md.tensor(g * 2)

    class Forgot(md.Function):
        @staticmethod
        def forward(ctx, x):
            x * 2

    with pytest.raises(md.OpError, match="mul.backward returned 1 gradient.s. for 2 inputs"):
        Mul.apply(a, b).sum().backward()
    with pytest.raises(md.OpError, match="is a minidl Tensor, not an array"):
        Twice.apply(a).sum().backward()
    with pytest.raises(md.OpError, match="forgot: forward returned None"):
        Forgot.apply(a)

    class Transposed(md.Function):   # (2, 3) for a (3, 2) input was reshaped into a scrambled gradient, silently
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return (g * 2).T

    with pytest.raises(md.OpError, match=r"transposed.backward returned a gradient of shape \(2, 3\) for input 0 "
                                         r"of shape \(3, 2\); return one of the input's shape"):
        Transposed.apply(md.ones(3, 2, requires_grad=True)).sum().backward()

    class TwoOutputs(md.Function):
        @staticmethod
        def forward(ctx, x):
            return x, x * 2   # NumPy stacked the two into one (2, ...) array; torch failed on tuple.shape

    with pytest.raises(md.OpError, match="two_outputs: forward returned a tuple; return the output array"):
        TwoOutputs.apply(a)


    class Wrapped(md.Function):
        @staticmethod
        def forward(ctx, x):
            return md.tensor(x) * 2   # an object-dtype tensor that required grad, then a misleading error

        @staticmethod
        def backward(ctx, g):
            return g * 2

    with pytest.raises(md.OpError, match="wrapped: forward returned a minidl Tensor; return the output array"):
        Wrapped.apply(a)
    with pytest.raises(md.OpError, match=r"mul: the Tensor y= is given by keyword; give Tensor inputs by position"):
        Mul.apply(a, y=b)   # b received no gradient: 'mul.backward returned 1 gradient(s) for 1 inputs' blamed backward


@pytest.mark.parametrize("device", ["cpu", "torch"])
def test_a_hand_written_backward_may_return_a_list_but_not_a_number(device):
    """[g * y, g * x] read as one gradient for two inputs, [g * 2] failed on list.shape, and a Python number
    (a scalar op's constant derivative) on float.shape: AttributeErrors naming no op."""
    a, b = (md.tensor(v, device=device, requires_grad=True) for v in ([1.0, 2.0], [3.0, 4.0]))

    class ListMul(md.Function):
        @staticmethod
        def forward(ctx, x, y):
            ctx.save_for_backward(x, y)
            return x * y

        @staticmethod
        def backward(ctx, g):
            x, y = ctx.saved
            return [g * y, g * x]

    class Double(md.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return 2.0

    ListMul.apply(a, b).sum().backward()
    assert a.grad.tolist() == [3.0, 4.0] and b.grad.tolist() == [1.0, 2.0]
    for x in (md.tensor(3.0, device=device, requires_grad=True), a):
        with pytest.raises(md.OpError, match=r"double.backward returned a float for input 0, not an array; return "
                                             r"an array of the input's shape"):
            Double.apply(x).sum().backward()


def test_transpose_of_two_axes_swaps_them_as_in_torch():
    """x.transpose(0, 1) of a matrix was NumPy's identity permutation (q @ k.transpose(-2, -1) silently wrong for
    a square k); permute keeps the permutation."""
    x = md.tensor([[1.0, -2.0], [3.0, 4.0]], requires_grad=True)
    assert x.transpose(0, 1).tolist() == x.transpose(-2, -1).tolist() == x.T.tolist() == [[1.0, 3.0], [-2.0, 4.0]]
    assert x.permute(0, 1).tolist() == [[1.0, -2.0], [3.0, 4.0]]
    (x.transpose(1, 0) * md.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    assert x.grad.tolist() == [[1.0, 3.0], [2.0, 4.0]]
    y = md.ones(2, 3, 4)
    assert y.transpose(-2, -1).shape == (2, 4, 3) and y.transpose(0, 2, 1).shape == (2, 4, 3)
    assert y.permute(2, 0, 1).shape == (4, 2, 3) and y.transpose((2, 1, 0)).shape == (4, 3, 2)
    with pytest.raises(ValueError, match=r"transpose\(0, 3\): a tensor of shape \(2, 3, 4\) has axes 0..2"):
        y.transpose(0, 3)


def test_strings_where_token_lists_go_are_refused():
    """build(texts) counted characters (an 18-token vocabulary of letters), encode('the movie')
    gave one <unk> per character, vocab[2] gave unk_id."""
    with pytest.raises(TypeError, match="tokenize first"):
        Vocabulary.build(["the movie was great", "awful movie"])
    vocab = Vocabulary.build([["the", "movie"]])
    with pytest.raises(TypeError, match="got the str 'the movie'"):
        vocab.encode("the movie")
    with pytest.raises(TypeError, match=r"vocab.id_to_token\[i\] is the token of id i"):
        vocab[2]
    assert vocab.encode(["the", "film"]).tolist() == [vocab["the"], vocab.unk_id]
    with pytest.raises(TypeError, match=r"got a int first, 2; ids turn back into tokens with decode\(ids\)"):
        vocab.encode([2, 3])                                    # ids for tokens: every one read <unk>
    with pytest.raises(TypeError, match="ids turn back into tokens"):
        vocab.encode(vocab.encode(["the", "movie"]))            # encode's own ids, an array
    with pytest.raises(TypeError, match="tokenize_all takes a list of texts, got the str 'a great movie'"):
        Tokenizer().tokenize_all("a great movie")               # one empty word list per character


def test_settings_are_given_by_name_and_labels_are_class_indices():
    """Tokenizer(100) set lowercase=100; float labels were truncated (0.7 -> 0), strings failed in int()."""
    with pytest.raises(ValueError, match=r"lowercase must be True or False, got 100; pass settings by name"):
        Tokenizer(100)
    for labels in ([0.0, 0.7], ["pos", "neg"]):
        with pytest.raises(ValueError, match="labels are class indices 0..1"):
            TextDataset(["a b", "c d"], labels, ["neg", "pos"])
    assert TextDataset(["a b", "c d"], [1.0, 0.0], ["neg", "pos"]).labels.tolist() == [1, 0]


def test_optimizer_settings_that_would_reverse_or_stop_training_are_refused():
    model = nn.Linear(2, 2)
    for call, words in ((lambda: optim.SGD(model, lr=0.1), "takes the parameters, e.g. model.parameters()"),
                        (lambda: optim.SGD(model.parameters, lr=0.1), "got method"),
                        (lambda: optim.SGD(model.weight, lr=0.1), "e.g. model.parameters.. or .w, b., got Parameter"),
                        (lambda: optim.SGD([md.randn(3, requires_grad=True) * 0.01], lr=0.1),   # never a .grad
                         r"cannot optimize a tensor of shape \(3,\) made by an op"),
                        (lambda: optim.SGD(model.parameters(), lr="0.1"), "lr must be a number >= 0"),
                        (lambda: optim.SGD(model.parameters(), lr=float("nan")), "lr must be a number >= 0"),
                        (lambda: optim.SGD(model.parameters(), lr=0.1, momentum=1.5), r"momentum must lie in \[0, 1\)"),
                        (lambda: optim.LinearWarmupDecay(optim.SGD(model.parameters(), lr=0.1), 0, 10, min_lr=-1.0),
                         "min_lr=-1.0 is below 0"),
                        (lambda: optim.clip_grad_norm_(model.parameters(), 0.0), "max_norm must be > 0")):
        with pytest.raises((TypeError, ValueError), match=words):
            call()


def test_types_where_others_go_are_named():
    """Linear(hidden / 2, ...) failed ten frames deep in NumPy's random; load_state_dict('f.npz')
    listed each character as an unexpected key; batches(text_dataset) and a tokenizer given a list
    failed on a missing attribute."""
    from minidl.data.batching import batches

    with pytest.raises(ValueError, match=r"in_features=2.0, out_features=3 \(hidden / 2 is a float"):
        nn.Linear(2.0, 3)
    for state in ("ck/l.npz", nn.Linear(2, 3)):
        with pytest.raises(TypeError, match=r"model.load\(path\) reads a file"):
            nn.Linear(2, 3).load_state_dict(state)
    with pytest.raises(TypeError, match=r"encode_dataset\(dataset, tokenizer, vocab\)"):
        next(batches(TextDataset(["a b"], [0], ["neg", "pos"]), 2))
    with pytest.raises(TypeError, match=r"tokenize_all\(texts\) takes a list"):
        Tokenizer()(["a", "b"])


@pytest.mark.parametrize("device", ["cpu", "torch"])
def test_targets_and_ids_of_the_wrong_dtype_are_named(device):
    """Float targets or ids read as NumPy's "arrays used as indices must be of integer type" (a
    ShapeError), int logits as "Cannot cast ufunc 'exp' output"."""
    logits = md.randn(4, 3, device=device)
    for call in (lambda: md.cross_entropy(logits, md.tensor([0.0, 1.0, 2.0, 1.0], device=device)),
                 lambda: md.cross_entropy(md.tensor([[1, 2]] * 4, device=device),
                                          md.tensor([0, 1, 0, 1], device=device))):
        with pytest.raises(md.OpError, match="logits are floats and targets class indices"):
            call()
    with pytest.raises(md.OpError, match="embedding: ids are row numbers"):
        nn.Embedding(10, 4, device=device)(md.tensor([1.0, 2.0], device=device))
    with pytest.raises(md.OpError, match=r"embedding: the arguments are \(weight, ids\), got int64 first and "
                                         r"float32 second \(PyTorch's order is \(ids, weight\)\)"):
        md.embedding(md.tensor([1, 2], device=device), md.randn(5, 3, device=device))   # torch's F.embedding order


def test_arange_takes_one_count():
    """md.arange(0, 1, 0.25), NumPy's start, stop, step, said "unknown device '1'"."""
    with pytest.raises(TypeError, match="1 positional argument"):
        md.arange(0, 1, 0.25)
    assert md.arange(3, device="torch").tolist() == [0, 1, 2]


def test_equality_compares_values_as_in_torch():
    """== and != compared identity: np.mean(preds == y) was 0.0 for a perfect model, y == 1 was False."""
    y, preds = md.tensor([0, 1, 1, 0]), np.array([0, 1, 1, 0])
    assert (y == 1).tolist() == [False, True, True, False] and (y != 1).tolist() == [True, False, False, True]
    assert (preds == y).numpy().mean() == 1.0 and (y == md.tensor(preds)).tolist() == [True] * 4
    assert y.eq(1).tolist() == (y == 1).tolist()
    assert {y: "kept"}[y] == "kept" and y in {y}   # still hashed by identity: dicts and sets of tensors work


def test_numpy_reads_a_tensor_s_values():
    """np.mean of a list of losses crashed inside NumPy ('str' object has no attribute 'type'); np.asarray gave an
    object array. An array times a tensor is still the tensor's operator (in the graph)."""
    assert np.mean([md.tensor(0.5), md.tensor(0.7)]) == pytest.approx(0.6)
    assert np.asarray(md.tensor([1.0, 2.0], device="torch")).tolist() == [1.0, 2.0]
    w = md.tensor([1.0, 2.0], requires_grad=True)
    product = np.array([2.0, 3.0]) * w
    assert isinstance(product, md.Tensor) and product.requires_grad

