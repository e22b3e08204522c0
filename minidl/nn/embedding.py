"""``Embedding``: a trainable lookup table from token ids to vectors."""
from __future__ import annotations

from ..autograd import ops
from . import init
from .module import Module, Parameter


class Embedding(Module):
    """out[b, t] = W[ids[b, t]].

    Shapes: ids (B, T) of ints (any shape works) -> out (B, T, E); W (V, E) with
    V = ``num_embeddings``, E = ``embedding_dim``. W starts N(0, 1), as in PyTorch.

    ``padding_idx``: the id of the padding token. Its row starts at zero and never
    receives a gradient (the ``embedding`` op drops it), so padded positions always
    read the same vector. ``freeze=True`` keeps W fixed (``requires_grad=False``),
    e.g. for pretrained GloVe vectors (see ``from_pretrained``).
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, freeze=False, device=None,
                 dtype=None, _weight=None):
        super().__init__()
        init.check_sizes("Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"padding_idx={padding_idx} is outside the table of {num_embeddings} rows")
            padding_idx %= num_embeddings  # a negative index counts from the end, as in Python
        self.padding_idx = padding_idx
        if _weight is None:
            _weight = init.normal((num_embeddings, embedding_dim), 1.0, device, dtype)
            if padding_idx is not None:
                _weight.data[padding_idx] = 0
        _weight.requires_grad = not freeze
        self.weight = _weight

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, device=None, dtype=None):
        """An Embedding whose table W (V, E) is a copy of ``embeddings`` (a NumPy array, a
        Tensor or a torch tensor), kept exactly as given, padding row included. Frozen
        by default; ``freeze=False`` fine-tunes it."""
        weight = Parameter(embeddings, device=device, dtype=dtype)  # a copy: tuning leaves the caller's table alone
        if weight.ndim != 2:
            raise ValueError(f"from_pretrained: expected a (V, E) table, got shape {weight.shape}")
        return cls(*weight.shape, padding_idx=padding_idx, freeze=freeze, _weight=weight)

    def forward(self, ids):
        return ops.embedding(self.weight, ids, padding_idx=self.padding_idx)

    def extra_repr(self):
        padding = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        frozen = ", freeze=True" if not self.weight.requires_grad else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{padding}{frozen}"
