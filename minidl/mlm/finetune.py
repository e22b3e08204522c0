"""Does masked-LM pretraining help? Fine-tune the distilled student on IMDB sentiment, and
train the same architecture from other starting weights with the same settings, side by side:

    pretrained          the distilled masked-LM student (its MLM head dropped)
    cooccurrence only   random weights but the PPMI-SVD embedding table a student started with
                        ``--init cooccurrence`` (``corpus.cooccurrence_embeddings``)
    teacher embeddings  random weights but the teacher's embedding table, positions and output
      only              bias projected to the student's width, where a student distilled with
                        ``--init teacher`` started (``projection.start_from_teacher``)
                        Either shows what the word vectors alone give, without the
                        distilled layers.
    scratch             random weights throughout (as ``build_mlm`` draws them)

Both read [CLS] + the first ``length − 1`` tokens of a review (the MLM tokenizer and
vocabulary) and classify from the final state of [CLS] (BERT's recipe): the only difference
between the two runs is where the weights start. The pretrained run starts from every
weight of the masked-LM checkpoint but its MLM head, which classification does not use; the
classification head starts fresh in both.

Each run: AdamW, linear warm-up over the first 10 % of steps then decay, dropout as in the
checkpoint's settings, gradient clipping at 1; test loss and accuracy after every epoch.
"""
from __future__ import annotations

import time

import numpy as np

import minidl as md

from ..data.batching import EncodedDataset, batches, num_batches, subset
from ..data.imdb import load_imdb
from ..models.transformer import TransformerClassifier
from ..optim.schedule import LinearWarmupDecay
from ..train import loop as core
from ..train.trainer import evaluate
from .checkpoint import build_mlm, load_mlm
from .corpus import cooccurrence_embeddings, pretraining_texts
from .projection import start_from_teacher
from .tokenizer import CLS, MLMTokenizer


def encode_reviews(dataset, tokenizer, vocab, length):
    """A labelled TextDataset -> EncodedDataset of [CLS] + its first ``length − 1`` tokens."""
    ids = [np.concatenate([[vocab[CLS]], vocab.encode(tokenizer(text)[:length - 1])]).astype(np.int64)
           for text in dataset.texts]
    return EncodedDataset(ids, np.asarray(dataset.labels, dtype=np.int64), np.array([len(x) for x in ids]),
                          np.arange(len(ids)), pad_id=vocab.pad_id, label_names=list(dataset.label_names),
                          name=dataset.name)


def classifier(settings, vocab_size, device="cpu", pretrained=None, seed=0):
    """The student's architecture as a classifier ([CLS] pooling, no MLM head): random weights
    (as ``build_mlm`` starts them), or ``pretrained``'s state dict without its MLM head."""
    model = TransformerClassifier(vocab_size, pooling="cls", device=device, **settings)
    state = build_mlm(vocab_size, settings, "cpu", seed).state_dict() if pretrained is None else pretrained
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("mlm_head.")}, strict=False)
    return model


def fine_tune(model, train, test, epochs=3, batch_size=32, lr=5e-4, weight_decay=0.01, seed=0, device="cpu",
              name="model", log=print):
    """Train ``model`` on ``train`` with the training core; returns {"epochs": [test metrics
    per epoch], "seconds"}."""
    optimizer = md.optim.AdamW(list(model.parameters()), lr=lr, weight_decay=weight_decay)
    epoch_steps = num_batches(train, batch_size)
    total = epoch_steps * epochs   # a tenth of it warms up; none when it is one step ("need warmup_steps < total")
    schedule = LinearWarmupDecay(optimizer, min(max(1, total // 10), total - 1), total)
    md.manual_seed(seed)

    class Report(core.Callback):
        def on_evaluate(self, step, metrics):
            if log:
                log(f"{name} epoch {round(metrics['epoch'])}/{epochs}: test accuracy {metrics['accuracy']:.4f}, "
                    f"loss {metrics['loss']:.4f} ({metrics['seconds']:.0f} s)")

    start = time.perf_counter()

    def scored(model):
        metrics = {k: float(v) for k, v in evaluate(model, test, device=device).items() if np.isscalar(v)}
        return {**metrics, "seconds": time.perf_counter() - start}

    def epoch_batches(epoch):
        return batches(train, batch_size, seed=seed, epoch=epoch, bucket=True, device=device)

    def loss_fn(model, batch):
        return md.cross_entropy(model(batch.ids, batch.mask, batch.lengths).logits, batch.labels)

    loop, _ = core.train(model, epoch_batches, loss_fn, optimizer, epochs=epochs, epoch_steps=epoch_steps,
                         schedule=schedule, clip=1.0, evaluate=scored, every=epoch_steps, callbacks=[Report()],
                         log=log, advice=f"Lower the learning rate (now {lr}).")
    bookkeeping = ("step", "epoch", "seconds", "train_loss")
    return {"epochs": [{k: v for k, v in h.items() if k not in bookkeeping} for h in loop["history"]],
            "seconds": loop["seconds"]}


STARTS = ("pretrained", "teacher embeddings only", "cooccurrence only", "scratch")


def starting_state(name, settings, vocab, pretrained=None, teacher=None, texts=None, seed=0):
    """The state dict a fine-tuning run called ``name`` (one of STARTS) starts from; None for
    "scratch" (``classifier`` then draws the weights). ``pretrained``: the distilled student; ``teacher``: the
    teacher's model and ``texts`` the pretraining reviews (``pretraining_texts``), which the caller has read anyway
    (to check the teacher's vocabulary; with the labelled reviews it fine-tunes on, which they hold)."""
    if name == "pretrained":
        return pretrained.state_dict()
    if name == "scratch":
        return None
    model = build_mlm(len(vocab), settings, "cpu", seed)
    if name == "teacher embeddings only":
        start_from_teacher(model, teacher)
        return model.state_dict()
    tokenizer = MLMTokenizer()
    vectors = cooccurrence_embeddings([tokenizer(t) for t in texts], vocab, settings["d_model"], seed)
    return build_mlm(len(vocab), settings, "cpu", seed, vectors).state_dict()


def compare_pretraining(student_path, data=None, length=128, epochs=3, batch_size=32, lr=5e-4, train_limit=None,
                        seed=0, device="cpu", starts=STARTS, test_limit=None, teacher_path=None, log=print,
                        on_start=None):
    """Fine-tune the student of ``student_path`` and the same architecture from the other
    starts (module docstring) on IMDB; returns {name: history, "settings", "length", ...} for
    the names in ``starts`` (the baselines need only the student's settings and vocabulary,
    so they can run while it is still being distilled). "teacher embeddings only" needs the
    teacher's checkpoint, ``teacher_path``. ``on_start(result)``, if given, is called with the result
    so far as each start is done."""
    if unknown := sorted(set(starts) - set(STARTS)):
        raise ValueError(f"compare_pretraining: unknown start(s) {unknown}; choose from {list(STARTS)}")
    if "teacher embeddings only" in starts and teacher_path is None:
        raise ValueError('compare_pretraining: the start "teacher embeddings only" needs the teacher\'s checkpoint '
                         '(--teacher)')
    pretrained, vocab, tokenizer, meta = load_mlm(student_path, device, for_training=True)
    settings = meta["settings"]
    if length > settings["max_len"]:
        raise ValueError(f"length {length} is longer than the student's {settings['max_len']} positions; give a "
                         f"length of {settings['max_len']} or less")
    teacher, teacher_vocab = load_mlm(teacher_path)[:2] if "teacher embeddings only" in starts else (None, vocab)
    if teacher_vocab != vocab:   # before any fine-tuning
        raise ValueError(f"{teacher_path} and {student_path} have different vocabularies; give the teacher the "
                         f"student was distilled from")
    if log:
        log("reading and encoding the IMDB reviews ...")
    # the pretraining texts come with the labelled reviews: one read for both (a second pass over the archive
    # took about 8 s)
    texts, splits = pretraining_texts(data, log=None) if "cooccurrence only" in starts else (None, load_imdb(data))
    train = encode_reviews(subset(splits["train"], train_limit, seed), tokenizer, vocab, length)
    test = encode_reviews(subset(splits["test"], test_limit, seed), tokenizer, vocab, length)
    result = {"settings": settings, "length": length, "train_reviews": len(train), "test_reviews": len(test)}
    for name in starts:
        if log and name == "cooccurrence only":   # silent for half a minute
            log("cooccurrence only: PPMI-SVD vectors of the pretraining reviews (about 30 s) ...")
        state = starting_state(name, settings, vocab, pretrained, teacher, texts, seed)
        model = classifier(settings, len(vocab), device, state, seed)
        result[name] = fine_tune(model, train, test, epochs, batch_size, lr, seed=seed, device=device, name=name,
                                 log=log)
        if on_start is not None:
            on_start(result)
    return result
