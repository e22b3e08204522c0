"""The course's sentiment models, by name, so a sweep or a checkpoint can rebuild them."""
from .base import Output, SentimentModel
from .recurrent import ElmanRNNClassifier, GRUClassifier
from .token_mlp import SoftmaxWeighted, TokenMLP
from .transformer import TransformerClassifier, TransformerMLMHead
from .window_attention import WindowAttention

# The registry: each class declares its name and what it supports (see SentimentModel).
MODELS = {cls.name: cls for cls in (ElmanRNNClassifier, GRUClassifier, TokenMLP, SoftmaxWeighted, WindowAttention,
                                    TransformerClassifier)}
COURSE_MODELS = tuple(name for name, cls in MODELS.items() if cls.course)   # the five the demo sweeps


def describe():
    """"rnn (Elman RNN ...), gru (...), ...": the models for help texts."""
    return "; ".join(f"{name} ({cls.summary})" for name, cls in MODELS.items())


def build_model(name, vocab_size, **config):
    """``build_model("gru", len(vocab), hidden=64, embed_dim=100)``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](vocab_size, **config)


__all__ = ["COURSE_MODELS", "ElmanRNNClassifier", "GRUClassifier", "MODELS", "describe", "Output", "SentimentModel", "SoftmaxWeighted",
           "TokenMLP", "TransformerClassifier", "TransformerMLMHead", "WindowAttention", "build_model"]
