"""A masked-LM checkpoint: the model's weights and, in one JSON string, what rebuilds it.

    model.<name>   parameters (the MLM head included); in an int8 copy (``minidl mlm
                   quantize``) each Linear's qweight/scale and the embedding table's
    meta           {"format", "settings" (TransformerClassifier keyword arguments),
                    "vocab", "tokenizer", "history" (training log), "role", "int8"}

Written atomically and read without pickle (``minidl.io``). The weights only, no optimizer
state: a student's file size is what the comparison with its teacher reports.
"""
from __future__ import annotations

import os

import minidl as md

from ..compress.quantize import QuantizedLinear, quantize
from ..data.vocab import Vocabulary
from ..io import CheckpointError, from_json_array, npz_meta, read_npz
from ..models.transformer import TransformerClassifier
from ..train.checkpoint import model_arrays, write
from .tokenizer import MLMTokenizer

FORMAT = "minidl-mlm-1"


def build_mlm(vocab_size, settings, device="cpu", seed=0, embeddings=None):
    """A TransformerClassifier with the MLM head; ``settings``: d_model, num_heads, num_layers,
    d_ff, max_len, dropout (its classification head reads [CLS], for fine-tuning later).

    The embedding table starts N(0, 0.02²) as in BERT, not N(0, 1) as for the sentiment
    models: it is also the output layer (tied), and N(0, 1) rows against the head's
    unit-variance features would start the logits at a spread of √D, the loss far above ln V.
    ``embeddings``: a (V, D) starting table instead (``corpus.cooccurrence_embeddings``)."""
    md.manual_seed(seed)
    model = TransformerClassifier(vocab_size, mlm_head=True, pooling="cls", device=device, **settings)
    if embeddings is not None:
        model.load_state_dict({"embedding.weight": embeddings}, strict=False)
    else:
        model.embedding.weight.data = model.embedding.weight.data * 0.02   # N(0, 1) -> N(0, 0.02²); [PAD] stays 0
    return model


def save_mlm(path, model, vocab, settings, history=None, role="mlm"):
    """Write ``model`` (float, or int8 after ``compress.quantize(model, embeddings=True)``)."""
    meta = {"format": FORMAT, "settings": settings, "vocab": vocab.to_dict(), "tokenizer": MLMTokenizer().to_dict(),
            "history": history or {}, "role": role,
            "int8": any(isinstance(m, QuantizedLinear) for _, m in model.named_modules())}
    return write(path, model, meta)


def is_mlm_checkpoint(path):
    """Is ``path`` a masked-LM checkpoint (what pretrain, distill and quantize may replace)?"""
    return npz_meta(path).get("format") == FORMAT


def load_mlm(path, device="cpu", for_training=False):
    """(model in eval mode, vocabulary, tokenizer, meta) of a ``save_mlm`` file. An int8 copy
    loads for scoring only: ``for_training`` refuses it."""
    if not os.path.exists(path):   # read_npz's hint is a classifier's (minidl train --out DIR)
        raise FileNotFoundError(f"no checkpoint at {os.fspath(path)!r}: check the path (minidl mlm pretrain and "
                                f"distill --out write masked-LM checkpoints)")
    arrays = read_npz(path)
    try:
        meta = from_json_array(arrays.pop("meta"))
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{path!r} is not a masked-LM checkpoint (no readable metadata); write one with "
                              f"minidl mlm pretrain or minidl.mlm.save_mlm") from e
    if meta.get("kind") == "mlm":
        raise CheckpointError(f"{path!r} is the training state of a masked-LM run (for --resume); give the "
                              f"checkpoint beside it, without .state")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path!r} is not a masked-LM checkpoint (format {meta.get('format')!r}, expected "
                              f"{FORMAT!r}); a classifier checkpoint of minidl train cannot fill masks")
    vocab = Vocabulary.from_dict(meta["vocab"])
    model = build_mlm(len(vocab), meta["settings"], device)
    if meta.get("int8"):
        if for_training:
            raise CheckpointError(f"{path!r} is an int8 copy (minidl mlm quantize), for evaluation and fill-mask "
                                  f"only: train from the float checkpoint it was made from")
        quantize(model, embeddings=True)
    model.load_state_dict(model_arrays(arrays))
    model.eval()
    return model, vocab, MLMTokenizer.from_dict(meta["tokenizer"]), meta
