"""Task 3: the Elman RNN over a whole sequence, forward and backward (minidl/autograd/ops/recurrent.py)."""
from minidl.assignment.checks import check_backends, check_gradients, check_outputs, describe, expected, fixed, tensor
from minidl.autograd.ops.recurrent import ElmanRNN   # the op, not the given wrapper elman_rnn

B, T, H = 2, 4, 3


def inputs():
    return {"x_proj": fixed((B, T, H), seed=1), "h0": fixed((B, H), seed=2, scale=0.5),
            "U": fixed((H, H), seed=3, scale=0.8)}


def case_elman_relu():
    return {"hs": ElmanRNN.apply(*(tensor(v) for v in inputs().values()), "relu")}


def case_elman_tanh():
    return {"hs": ElmanRNN.apply(*(tensor(v) for v in inputs().values()), "tanh")}


def test_forward_relu():
    check_outputs("ElmanRNN.forward (relu)", case_elman_relu(), expected(__file__, "elman_relu"), describe(inputs()))


def test_forward_tanh():
    check_outputs("ElmanRNN.forward (tanh)", case_elman_tanh(), expected(__file__, "elman_tanh"), describe(inputs()))


def test_backward_relu():
    check_gradients("ElmanRNN.backward (relu)", lambda x, h0, U: ElmanRNN.apply(x, h0, U, "relu"),
                    {name: tensor(v) for name, v in inputs().items()})


def test_backward_tanh():
    check_gradients("ElmanRNN.backward (tanh)", lambda x, h0, U: ElmanRNN.apply(x, h0, U, "tanh"),
                    {name: tensor(v) for name, v in inputs().items()})


def test_the_same_on_the_torch_backend():
    check_backends("elman_rnn (tanh)", lambda x, h0, U: ElmanRNN.apply(x, h0, U, "tanh"), inputs())
