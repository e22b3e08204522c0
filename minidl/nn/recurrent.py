"""Recurrent layers over a whole sequence: ``ElmanRNN`` and the course's ``GRU``.

Both take x (B, T, E) and return every hidden state (B, T, H). The input projection of
all T steps is one matmul; the recurrence itself is one fused graph node
(``minidl.autograd.ops.recurrent``), whose backward is BPTT written by hand.
"""
from __future__ import annotations

import math

from .. import creation
from ..autograd import ops
from . import init
from .module import Module


class _Recurrent(Module):
    gates = 1

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__()
        init.check_sizes(type(self).__name__, input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size = input_size, hidden_size
        bound = 1.0 / math.sqrt(hidden_size)  # torch.nn.RNN/GRU's default
        width = self.gates * hidden_size
        self.W_x = init.uniform((input_size, width), bound, device, dtype)   # (E, gates·H)
        self.b = init.uniform((width,), bound, device, dtype)                 # (gates·H,)
        self._make_hidden_weights(bound, device, dtype)

    def _initial_state(self, x, h0):
        if h0 is not None:
            return h0
        return creation.zeros(x.shape[0], self.hidden_size, device=x.device, dtype=x.dtype)

    def _project(self, x):
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__}({self.input_size}, {self.hidden_size}): expected input "
                             f"(B, T, {self.input_size}), got shape {x.shape}")
        if not str(x.dtype).startswith(("float", "bfloat")):   # else the op blamed the h0 made in x's dtype
            raise TypeError(f"{type(self).__name__}({self.input_size}, {self.hidden_size}): x must hold floats "
                            f"(e.g. embeddings), got {x.dtype}; look ids up in an Embedding first, or convert "
                            f"with x.float()")
        return ops.matmul(x, self.W_x) + self.b  # (B, T, gates·H): all steps in one product

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}"


class ElmanRNN(_Recurrent):
    """h_t = f(x_t @ W_x + b + h_{t-1} @ U), f = ReLU (the course) or tanh."""

    def __init__(self, input_size, hidden_size, nonlinearity="relu", device=None, dtype=None):
        if nonlinearity not in ("relu", "tanh"):
            raise ValueError(f'ElmanRNN: nonlinearity must be "relu" or "tanh", got {nonlinearity!r}')
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, device, dtype)

    def _make_hidden_weights(self, bound, device, dtype):
        if self.nonlinearity == "relu":
            # Identity recurrence, zero bias (Le et al., 2015, "IRNN"): at the start each ReLU
            # step copies the state forward, so what a word wrote survives to the last word
            # and so does the gradient back to it; random U makes the state vanish or explode.
            self.U = init.identity(self.hidden_size, device, dtype)
            self.b.data[...] = 0
        else:
            self.U = init.uniform((self.hidden_size, self.hidden_size), bound, device, dtype)  # (H, H)

    def forward(self, x, h0=None):
        return ops.elman_rnn(self._project(x), self._initial_state(x, h0), self.U, self.nonlinearity)

    def extra_repr(self):
        return f"{super().extra_repr()}, nonlinearity={self.nonlinearity!r}"


class GRU(_Recurrent):
    """The course's GRU: z = σ(x W_z + h U_z), r = σ(x W_r + h U_r),
    h̃ = tanh(x W_h + (r ⊙ h) U_h), h' = (1 − z) ⊙ h + z ⊙ h̃ (biases in b).
    W_x = [W_z | W_r | W_h] (E, 3H); U_zr = [U_z | U_r] (H, 2H); U_h (H, H)."""

    gates = 3

    def _make_hidden_weights(self, bound, device, dtype):
        self.U_zr = init.uniform((self.hidden_size, 2 * self.hidden_size), bound, device, dtype)
        self.U_h = init.uniform((self.hidden_size, self.hidden_size), bound, device, dtype)
        # Update-gate bias −2, so z ≈ 0.12 at the start: each step mostly keeps the previous
        # state (h' = (1 − z)h + z h̃), and a word's trace -- and its gradient -- survives many
        # steps; like the LSTM forget-gate bias of +1. Without it the GRU sits at chance for
        # epochs on reviews whose deciding word is 20 words from the end.
        self.b.data[:self.hidden_size] = -2.0

    def forward(self, x, h0=None):
        return ops.gru(self._project(x), self._initial_state(x, h0), self.U_zr, self.U_h)
