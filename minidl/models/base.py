"""What every sentiment model shares: the word embeddings in, the ``Output`` out.

All models read a padded batch -- ids (B, T) ints, mask (B, T) with 1.0 on real words,
lengths (B,) -- and return an ``Output`` whose ``logits`` (B, C) feed the cross-entropy.
Models that score words one by one also return those scores, so ``minidl explain`` can
print each word's contribution, and the attention weights where they have them.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..nn import Dropout, Embedding, Module


@dataclass
class Output:
    logits: object                 # (B, C)
    token_scores: object = None    # (B, T, C): each word's sub-score per class (0 on padding)
    token_weights: object = None   # (B, T): softmax weight of each word (SoftmaxWeighted)
    attention: object = None       # (B, T, 2r+1): windowed attention weights (WindowAttention)


class SentimentModel(Module):
    """Base class: an embedding table (V, E), learned by default, or pretrained vectors
    (``embeddings``: a (V, E) array aligned to the vocabulary) frozen or fine-tuned.

    Each model declares what the registry (``minidl.models.MODELS``) tells the demo, sweeps,
    help texts and structured pruning about it:

        name          its name in ``build_model`` and on the command line
        summary       one line for help texts
        course        one of the course's five sentiment models (the demo sweeps them)
        hidden_list   ``hidden`` may be a list of layer sizes (else one int)
        prefix_states it answers after every prefix of a review (``prefix_logits``)
        width_option  its own keyword for the width ``hidden`` sets (TransformerClassifier:
                      d_model), which ``minidl train --model-options`` must not set too
        prunable_units()  {name: (recurrent layer, the Linear that alone reads its states)}:
                      what ``compress.prune_rnn_units`` may shrink
    """

    name = None
    summary = ""
    course = False
    hidden_list = False
    prefix_states = False
    width_option = None

    def prunable_units(self):
        return {}

    def __init__(self, vocab_size, embed_dim=100, num_classes=2, embeddings=None, freeze_embeddings=False,
                 dropout=0.0, padding_idx=0, device=None, dtype=None):
        super().__init__()
        if embeddings is not None:
            self.embedding = Embedding.from_pretrained(embeddings, freeze=freeze_embeddings, padding_idx=padding_idx,
                                                       device=device, dtype=dtype)
            if self.embedding.num_embeddings != vocab_size:
                raise ValueError(f"pretrained embeddings have {self.embedding.num_embeddings} rows but the "
                                 f"vocabulary has {vocab_size} words; align them with the same Vocabulary")
        else:
            self.embedding = Embedding(vocab_size, embed_dim, padding_idx=padding_idx, freeze=freeze_embeddings,
                                       device=device, dtype=dtype)
        self.embed_dim = self.embedding.embedding_dim
        self.num_classes = num_classes
        self.dropout = Dropout(dropout)

    def embed(self, ids):
        """(B, T) ids -> (B, T, E) vectors, with dropout while training."""
        return self.dropout(self.embedding(ids))
