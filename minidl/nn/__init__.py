"""Neural-network building blocks: ``Module``/``Parameter`` and the layers made of minidl ops."""
from . import init
from .attention import WindowSelfAttention
from .activation import GELU, LeakyReLU, ReLU, Sigmoid, Tanh
from .container import ModuleList, Sequential
from .dropout import Dropout
from .embedding import Embedding
from .layernorm import LayerNorm
from .linear import Linear
from .module import CheckpointError, LoadResult, Module, Parameter, StateDictError, read_npz
from .recurrent import GRU, ElmanRNN
from .transformer import MultiHeadSelfAttention, PositionEmbedding, TransformerEncoder, TransformerEncoderLayer

__all__ = ["CheckpointError", "Dropout", "ElmanRNN", "Embedding", "GRU", "GELU", "LayerNorm", "LeakyReLU", "Linear",
           "LoadResult", "Module", "ModuleList", "MultiHeadSelfAttention", "PositionEmbedding", "Parameter", "ReLU", "Sequential", "Sigmoid",
           "StateDictError", "Tanh", "TransformerEncoder", "TransformerEncoderLayer", "WindowSelfAttention", "init", "read_npz"]
