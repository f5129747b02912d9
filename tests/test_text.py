"""Tests for mmedu.text: tokenizer, vocabulary order, encodings, saving, bad input."""

import json
import random
import re
from collections import Counter

import numpy as np
import pytest
import torch

from mmedu.text import PAD, UNK, Vocabulary, tokenize

CAPTIONS = [
    "A thick, right-leaning digit; it is odd.",
    "A thin, upright digit; it is even.",
    "A thick digit 7. It is odd!",
    "",
]


def test_tokenize_examples():
    assert tokenize("A thick, right-leaning digit; it is odd.") == [
        "a", "thick", "right-leaning", "digit", "it", "is", "odd",
    ]
    assert tokenize("Digit 7 -- 12 ... well-known;x") == ["digit", "7", "12", "well-known", "x"]
    assert tokenize("Don't  STOP\tnow\n") == ["don't", "stop", "now"]
    assert tokenize("3.5, café") == ["3", "5", "café"]
    assert tokenize("") == [] and tokenize(" ,.; ") == []


def test_tokenize_matches_simple_split_on_plain_text():
    # Independent check: for text made only of lowercase words, spaces and trailing
    # punctuation, tokens are str.split() with the punctuation stripped.
    rng = random.Random(0)
    words = ["alpha", "beta", "right-leaning", "7", "x2", "zeta"]
    for _ in range(50):
        ws = [rng.choice(words) for _ in range(rng.randint(0, 8))]
        text = " ".join(w + rng.choice(["", ",", ".", ";"]) for w in ws)
        assert tokenize(text) == [w.strip(",.;") for w in text.split()]


def test_build_order_frequency_then_alphabetical():
    vocab = Vocabulary.build(["b a c", "c b", "c d"])
    # counts: c=3, b=2, a=1, d=1 → c, b, then a/d tie broken alphabetically
    assert vocab.tokens == (PAD, UNK, "c", "b", "a", "d")
    assert vocab.token_to_id(PAD) == 0 and vocab.token_to_id(UNK) == 1
    assert len(vocab) == 6


def test_build_is_independent_of_caption_order():
    rng = random.Random(1)
    shuffled = CAPTIONS * 3
    ref = Vocabulary.build(shuffled)
    for _ in range(5):
        rng.shuffle(shuffled)
        assert Vocabulary.build(shuffled) == ref
    # and against a brute-force ordering of the Counter
    counts = Counter(tok for t in CAPTIONS for tok in tokenize(t))
    expected = sorted(counts, key=lambda t: (-counts[t], t))
    assert list(ref.tokens[2:]) == expected


def test_min_freq_and_max_size():
    vocab = Vocabulary.build(["b a c", "c b", "c d"], min_freq=2)
    assert vocab.tokens == (PAD, UNK, "c", "b")
    vocab = Vocabulary.build(["b a c", "c b", "c d"], max_size=3)
    assert vocab.tokens == (PAD, UNK, "c")
    assert len(Vocabulary.build(CAPTIONS, max_size=2)) == 2


def test_token_lookup_round_trip_and_unknown():
    vocab = Vocabulary.build(CAPTIONS)
    for i, tok in enumerate(vocab.tokens):
        assert vocab.token_to_id(tok) == i
        assert vocab.id_to_token(i) == tok
    assert vocab.id_to_token(torch.tensor(2)) == vocab.tokens[2]  # e.g. an entry of encode()'s output
    assert vocab.token_to_id("zebra") == vocab.unk_id
    assert "thick" in vocab and "zebra" not in vocab
    with pytest.raises(ValueError, match=r"idx: expected an integer >= 0 and <= "):
        vocab.id_to_token(len(vocab))


def test_encode_padding_and_round_trip():
    vocab = Vocabulary.build(CAPTIONS)
    ids = vocab.encode(CAPTIONS)
    lengths = [len(tokenize(t)) for t in CAPTIONS]
    assert ids.dtype == torch.int64 and ids.shape == (4, max(lengths))
    for row, n in zip(ids, lengths):
        assert (row[:n] != vocab.pad_id).all() and (row[n:] == vocab.pad_id).all()
    assert vocab.decode(ids) == [" ".join(tokenize(t)) for t in CAPTIONS]
    # decode accepts numpy / nested lists too
    assert vocab.decode(ids.numpy()) == vocab.decode(ids.tolist())


def test_encode_truncates_and_pads_to_max_len():
    vocab = Vocabulary.build(CAPTIONS)
    full = vocab.encode(CAPTIONS)
    short = vocab.encode(CAPTIONS, max_len=3)
    assert short.shape == (4, 3)
    torch.testing.assert_close(short, full[:, :3])
    long = vocab.encode(CAPTIONS, max_len=12)
    assert long.shape == (4, 12)
    torch.testing.assert_close(long[:, : full.shape[1]], full)
    assert (long[:, full.shape[1]:] == 0).all()
    assert vocab.encode(["", ""]).shape == (2, 1)
    assert vocab.encode([]).shape == (0, 1)


def test_encode_unknown_words():
    vocab = Vocabulary.build(["a thick digit"])
    ids = vocab.encode(["a zebra digit flies"])
    assert ids.tolist() == [[vocab.token_to_id("a"), 1, vocab.token_to_id("digit"), 1]]
    assert vocab.decode(ids) == ["a <unk> digit <unk>"]


def test_bag_of_words_matches_counter():
    vocab = Vocabulary.build(CAPTIONS[:2])  # CAPTIONS[2] holds unknown words
    texts = CAPTIONS + ["odd odd odd thick zebra zebra lion"]
    bow = vocab.bag_of_words(texts)
    assert bow.dtype == torch.float32 and bow.shape == (len(texts), len(vocab))
    expected = np.zeros((len(texts), len(vocab)), dtype=np.float32)
    for i, t in enumerate(texts):
        for tok in t.lower().replace(",", " ").replace(";", " ").replace(".", " ").replace("!", " ").split():
            j = vocab.tokens.index(tok) if tok in vocab.tokens else 1
            expected[i, j] += 1
    np.testing.assert_array_equal(bow.numpy(), expected)
    assert (bow[:, 0] == 0).all()
    # bag of words = histogram of the encoded ids (pad column aside)
    ids = vocab.encode(texts)
    hist = torch.zeros_like(bow).scatter_add_(1, ids, torch.ones_like(ids, dtype=torch.float32))
    hist[:, 0] = 0
    torch.testing.assert_close(bow, hist)
    binary = vocab.bag_of_words(texts, binary=True)
    torch.testing.assert_close(binary, (bow > 0).float())


def test_to_dict_from_dict_json_round_trip():
    vocab = Vocabulary.build(CAPTIONS, min_freq=1)
    restored = Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert restored == vocab
    torch.testing.assert_close(restored.encode(CAPTIONS), vocab.encode(CAPTIONS))


def test_single_string_is_refused():
    vocab = Vocabulary.build(CAPTIONS)
    for call in (Vocabulary.build, vocab.encode, vocab.bag_of_words):
        with pytest.raises(TypeError, match="expected a list of strings, got a single str"):
            call("a thick digit")


def test_bad_input():
    vocab = Vocabulary.build(CAPTIONS)
    with pytest.raises(TypeError, match="got int at position 1"):
        vocab.encode(["ok", 3])
    with pytest.raises(TypeError, match="text: expected a str, got list"):
        tokenize(["a"])
    with pytest.raises(ValueError, match="min_freq: expected an integer >= 1, got 0"):
        Vocabulary.build(CAPTIONS, min_freq=0)
    with pytest.raises(ValueError, match="max_size: expected an integer >= 2, got 1"):
        Vocabulary.build(CAPTIONS, max_size=1)
    with pytest.raises(ValueError, match="max_len: expected an integer >= 1, got 0"):
        vocab.encode(CAPTIONS, max_len=0)
    with pytest.raises(ValueError, match=re.escape("ids: expected a 2-D tensor (N, L)")):
        vocab.decode(torch.tensor([2, 3]))
    with pytest.raises(TypeError, match="ids: expected an integer tensor, got dtype torch.float32"):
        vocab.decode(torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"ids: expected ids in \[0, "):
        vocab.decode(torch.tensor([[0, len(vocab)]]))
    with pytest.raises(ValueError, match="tokens: expected the list to start with"):
        Vocabulary(["a", "b"])
    with pytest.raises(ValueError, match="expected unique tokens, 'a' appears"):
        Vocabulary([PAD, UNK, "a", "a"])
    with pytest.raises(ValueError, match="format 'mmedu.text.Vocabulary'"):
        Vocabulary.from_dict({"tokens": [PAD, UNK]})
