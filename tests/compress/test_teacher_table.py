"""teacher_logits_table runs the teacher in eval mode: a teacher left in train mode (dropout
on) gives the same table every time, the eval-mode one, and keeps its modes."""
import numpy as np
import pytest

import minidl as md
from minidl.compress import teacher_logits_table
from minidl.data import batches
from minidl.models import build_model


@pytest.fixture(scope="module")
def reviews():
    """64 synthetic reviews of 4 to 8 words, encoded (a few milliseconds)."""
    from minidl.data import Vocabulary, encode_dataset, make_reviews
    from minidl.data.text import Tokenizer

    data = make_reviews(64, seed=3, min_length=4, max_length=8, max_distance=3)
    tokenizer = Tokenizer()
    tokens = tokenizer.tokenize_all(data.texts)
    vocab = Vocabulary.build(tokens)
    return encode_dataset(data, tokenizer, vocab, token_lists=tokens), len(vocab)


def test_teacher_in_train_mode_gives_the_eval_table_and_keeps_its_modes(reviews):
    encoded, vocab = reviews
    md.manual_seed(0)
    teacher = build_model("transformer", vocab, hidden=16, num_heads=4, num_layers=1, d_ff=16, max_len=8,
                          dropout=0.5)
    teacher.train()
    batch = next(iter(batches(encoded, 64, shuffle=False)))
    with md.no_grad():  # dropout really is on in train mode: two passes differ
        first, second = (teacher(batch.ids, batch.mask, batch.lengths).logits.numpy() for _ in range(2))
    assert not np.array_equal(first, second)

    teacher.encoder.eval()  # a mixed state, restored module by module
    modes = [m.training for m in teacher.modules()]
    tables = [teacher_logits_table(teacher, encoded, batch_size=16) for _ in range(2)]
    np.testing.assert_array_equal(tables[0], tables[1])
    assert [m.training for m in teacher.modules()] == modes and teacher.training

    teacher.eval()
    with md.no_grad():
        expected = teacher(batch.ids, batch.mask, batch.lengths).logits.numpy()
    np.testing.assert_allclose(tables[0][batch.index], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(teacher_logits_table(teacher, encoded, batch_size=16), tables[0])
    assert not any(m.training for m in teacher.modules())


def test_the_table_shows_a_bar_of_the_reviews_scored(reviews, capsys):
    """A teacher scoring IMDB's training and unlabelled reviews (minutes) said one line, then nothing until done."""
    encoded, vocab = reviews
    teacher = build_model("gru", vocab, hidden=4)
    quiet = teacher_logits_table(teacher, encoded, batch_size=16)
    assert capsys.readouterr().err == ""
    np.testing.assert_array_equal(teacher_logits_table(teacher, encoded, batch_size=16, progress="scoring"), quiet)
    shown = capsys.readouterr().err
    assert "scoring:" in shown and "/64 " in shown, shown   # (a bar of the 64 reviews, cleared when done)
