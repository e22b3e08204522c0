"""Task 4: the course's GRU over a whole sequence, forward and backward (minidl/autograd/ops/recurrent.py),
and a short training run that must learn the built-in corpus."""
import numpy as np

import minidl as md
from minidl import optim
from minidl.assignment.checks import check_backends, check_gradients, check_outputs, describe, expected, fixed, tensor
from minidl.autograd import ops
from minidl.autograd.ops.recurrent import GRU   # the op, not the given wrapper gru
from minidl.data import Tokenizer, Vocabulary, batches, encode_dataset, make_corpus
from minidl.nn import Parameter

B, T, H = 2, 4, 3


def inputs():
    return {"x_proj": fixed((B, T, 3 * H), seed=1), "h0": fixed((B, H), seed=2, scale=0.5),
            "U_zr": fixed((H, 2 * H), seed=3, scale=0.8), "U_h": fixed((H, H), seed=4, scale=0.8)}


def case_gru():
    return {"hs": GRU.apply(*(tensor(v) for v in inputs().values()))}


def test_forward():
    check_outputs("GRU.forward", case_gru(), expected(__file__, "gru"), describe(inputs()))


def test_backward():
    check_gradients("GRU.backward", GRU.apply, {name: tensor(v) for name, v in inputs().items()})


def test_the_same_on_the_torch_backend():
    check_backends("gru", GRU.apply, inputs())


def test_a_gru_learns_the_built_in_corpus():
    # Only the GRU op is the student's here: the input projection is an embedding table of width 3H
    # (the same as one-hot words @ W_x + b) and the read-out an elementwise product summed, so no
    # other task's code (matmul's backward) is involved.
    hidden, epochs = 8, 6
    corpus = make_corpus(n_train=2000, n_test=500, seed=0)
    tokenizer = Tokenizer()
    vocab = Vocabulary.build(tokenizer.tokenize_all(corpus["train"].texts), min_freq=1)
    train, test = (encode_dataset(corpus[split], tokenizer, vocab) for split in ("train", "test"))
    rng = np.random.default_rng(0)
    table = rng.uniform(-0.5, 0.5, (len(vocab), 3 * hidden))
    table[:, :hidden] -= 2.0  # update-gate bias -2: each step mostly keeps the state at first
    weights = {"table": table, "U_zr": rng.uniform(-0.5, 0.5, (hidden, 2 * hidden)),
               "U_h": rng.uniform(-0.5, 0.5, (hidden, hidden)), "w_out": rng.uniform(-0.5, 0.5, (hidden, 2)),
               "b_out": np.zeros(2)}
    params = {name: Parameter(value, dtype="float64") for name, value in weights.items()}
    optimizer = optim.Adam(list(params.values()), lr=0.02)

    def logits(batch):
        n = batch.ids.shape[0]
        hs = GRU.apply(ops.embedding(params["table"], batch.ids), md.zeros(n, hidden, dtype="float64"),
                     params["U_zr"], params["U_h"])
        last = hs[md.arange(n), batch.lengths - 1]
        return (last.unsqueeze(-1) * params["w_out"]).sum(axis=1) + params["b_out"]

    losses = []
    for epoch in range(epochs):
        total = []
        for batch in batches(train, 32, seed=0, epoch=epoch, bucket=True):
            loss = md.cross_entropy(logits(batch), batch.labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total.append(float(loss.item()))
        losses.append(float(np.mean(total)))
    with md.no_grad():
        correct = sum(int((logits(batch).numpy().argmax(-1) == batch.labels.numpy()).sum())
                      for batch in batches(test, 250, shuffle=False))
    accuracy = correct / len(test)
    assert accuracy >= 0.9, (
        f"GRU training: test accuracy {accuracy:.3f} after {epochs} epochs on the built-in corpus, expected at "
        f"least 0.9 (the reference reaches 0.99; a bag of words about 0.7). Mean training loss per epoch: "
        + ", ".join(f"{x:.3f}" for x in losses))
