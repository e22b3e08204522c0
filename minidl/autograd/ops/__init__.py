"""Every differentiable op of minidl, each a ``Function`` with a hand-written backward.

One file per family: ``elementwise`` (arithmetic, exp/log/sqrt/abs, maximum/where),
``activations`` (sigmoid, tanh, relu, leaky_relu, gelu), ``linalg`` (matmul, linear),
``shape`` (reshape, transpose, broadcast_to, getitem, concat/stack, pad, to),
``reductions`` (sum, mean, max, logsumexp), ``losses`` (softmax, log_softmax,
cross_entropy, binary_cross_entropy_with_logits), ``layers`` (embedding,
dropout, layer_norm), and the fused ops: ``recurrent`` (elman_rnn, gru over a whole
sequence), ``window_attention``, and ``attention`` (scaled_dot_product_attention, the
transformer's).
"""
from .activations import gelu, leaky_relu, relu, sigmoid, tanh
from .attention import scaled_dot_product_attention
from .elementwise import abs, add, div, exp, log, maximum, minimum, mul, neg, pow, sqrt, sub, where
from .layers import dropout, embedding, layer_norm
from .linalg import linear, matmul
from .losses import binary_cross_entropy_with_logits, cross_entropy, log_softmax, softmax
from .recurrent import elman_rnn, gru
from .reductions import logsumexp, max, mean, sum
from .shape import broadcast_to, concat, getitem, pad, permute, reshape, stack, transpose
from .window_attention import window_attention

__all__ = [
    "abs", "add", "binary_cross_entropy_with_logits", "broadcast_to", "concat", "cross_entropy",
    "div", "dropout", "elman_rnn", "embedding", "exp", "gelu", "getitem", "gru", "layer_norm", "leaky_relu", "log",
    "linear", "log_softmax", "logsumexp", "matmul", "max", "maximum", "mean", "minimum", "mul", "neg", "pad",
    "permute", "pow", "relu", "reshape", "scaled_dot_product_attention", "sigmoid", "softmax", "sqrt", "stack", "sub", "sum", "tanh",
    "transpose", "where", "window_attention",
]
