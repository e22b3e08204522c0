"""The course's sentiment models, by name, so a sweep or a checkpoint can rebuild them."""
from .base import Output, SentimentModel
from .recurrent import ElmanRNNClassifier, GRUClassifier
from .token_mlp import SoftmaxWeighted, TokenMLP
from .transformer import TransformerClassifier, TransformerMLMHead
from .window_attention import WindowAttention

MODELS = {
    "rnn": ElmanRNNClassifier,
    "gru": GRUClassifier,
    "mlp": TokenMLP,
    "softmax": SoftmaxWeighted,
    "attention": WindowAttention,
    "transformer": TransformerClassifier,
}


def build_model(name, vocab_size, **config):
    """``build_model("gru", len(vocab), hidden=64, embed_dim=100)``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](vocab_size, **config)


__all__ = ["ElmanRNNClassifier", "GRUClassifier", "MODELS", "Output", "SentimentModel", "SoftmaxWeighted",
           "TokenMLP", "TransformerClassifier", "TransformerMLMHead", "WindowAttention", "build_model"]
