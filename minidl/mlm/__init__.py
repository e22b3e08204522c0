"""Masked-language modelling and its distillation (the distillation-toolkit project).

    tokenizer.py   word-level tokens with [PAD] [UNK] [CLS] [SEP] [MASK]
    masking.py     BERT's 15 % / 80-10-10 masking
    corpus.py      IMDB reviews -> pretraining segments and held-out fill-mask sentences
    checkpoint.py  save / load a masked-LM (weights, vocabulary, settings)
    pretrain.py    the training loop: a teacher from scratch, or a student distilled from it
    projection.py  a narrow student's start: the teacher's embeddings projected by SVD; head matching
    evaluate.py    fill-mask top-k, accuracy, agreement with the teacher, size and speed ratios
    finetune.py    the student fine-tuned on IMDB sentiment against the same network from other starts
"""
from .checkpoint import build_mlm, load_mlm, save_mlm
from .corpus import FillMaskCase, load_corpus, segments
from .evaluate import accuracy, agreement, compare, first_choices, top_k
from .masking import mask_tokens
from .pretrain import train_mlm
from .tokenizer import SPECIALS, MLMTokenizer, build_vocabulary

__all__ = ["FillMaskCase", "MLMTokenizer", "SPECIALS", "accuracy", "agreement", "build_mlm", "build_vocabulary",
           "compare", "first_choices", "load_corpus", "load_mlm", "mask_tokens", "save_mlm", "segments", "top_k",
           "train_mlm"]
