"""Tokenizer and pad_sequences: Keras 2 semantics, the tutorial's exact figures, JSON round trip."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from textclass.errors import DataError, ParameterError
from textclass.tokenize import KERAS_FILTERS, Tokenizer, pad_sequences


def _yelp_train() -> list[str]:
    """The tutorial's 750 yelp training sentences (file read directly, quoting disabled)."""
    from sklearn.model_selection import train_test_split

    home = Path(os.environ.get("TEXTCLASS_DATA", Path.home() / ".cache" / "textclass"))
    path = home / "uci-sentiment" / "yelp_labelled.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found (set TEXTCLASS_DATA to the data folder)")
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    sentences, y = [r[0] for r in rows], [int(r[1]) for r in rows]
    train, _, _, _ = train_test_split(sentences, y, test_size=0.25, random_state=1000)
    return train


# -- the tutorial's exact checks -------------------------------------------------------------
@pytest.fixture(scope="module")
def yelp():
    train = _yelp_train()
    return train, Tokenizer(num_words=5000).fit(train)


def test_tutorial_vocabulary(yelp):
    _, tok = yelp
    assert tok.vocab_size == 1747
    assert [tok.word_index[w] for w in ("the", "all", "happy", "sad")] == [1, 43, 320, 450]
    assert tok.document_count == 750


def test_tutorial_sequence(yelp):
    train, tok = yelp
    assert train[2] == "Of all the dishes, the salmon was the best, but all were great."
    assert tok.texts_to_sequences([train[2]]) == [[11, 43, 1, 171, 1, 283, 3, 1, 47, 26, 43, 24, 22]]


def test_tutorial_padded_sequence(yelp):
    train, tok = yelp
    x = pad_sequences(tok.texts_to_sequences(train), maxlen=100, padding="post")
    assert x.shape == (750, 100) and x.dtype == np.int32
    assert x[0, :23].tolist() == [1, 10, 3, 282, 739, 25, 8, 208, 30, 64, 459, 230, 13, 1, 124, 5,
                                  231, 8, 58, 5, 67, 0, 0]
    assert not x[0, 23:].any()


# -- Keras 2 rules on small strings ------------------------------------------------------------
def test_filters_lowercase_and_empty_tokens():
    tok = Tokenizer().fit(["Hello,World!!  it's   A\tTEST\n(really)"])
    assert list(tok.word_counts) == ["hello", "world", "it's", "a", "test", "really"]
    assert all(c not in w for w in tok.word_index for c in KERAS_FILTERS)


def test_split_is_only_the_split_character():
    # Keras 2 splits on " " only: other whitespace (not in the filters) stays inside words.
    tok = Tokenizer().fit(["a\u00a0b c\rd"])
    assert list(tok.word_index) == ["a\u00a0b", "c\rd"]


def test_ties_keep_first_appearance_order():
    tok = Tokenizer().fit(["b a c", "c a d", "d"])
    # counts: b1 a2 c2 d2 -> by count desc, ties in order of first appearance: a, c, d, b
    assert tok.word_index == {"a": 1, "c": 2, "d": 3, "b": 4}
    assert list(tok.word_counts) == ["b", "a", "c", "d"]
    assert tok.word_docs == {"b": 1, "a": 2, "c": 2, "d": 2}


def test_num_words_limits_sequences_not_word_index():
    tok = Tokenizer(num_words=3).fit(["a a a b b c", "d"])
    assert tok.word_index == {"a": 1, "b": 2, "c": 3, "d": 4}
    assert tok.texts_to_sequences(["a b c d e"]) == [[1, 2]]


def test_oov_token_takes_index_one():
    tok = Tokenizer(num_words=3, oov_token="<OOV>").fit(["a a a b b c"])
    assert tok.word_index == {"<OOV>": 1, "a": 2, "b": 3, "c": 4}
    assert tok.vocab_size == 5
    # b has index 3 >= num_words and e is unknown: both become the OOV index
    assert tok.texts_to_sequences(["a b c e"]) == [[2, 1, 1, 1]]


def test_lower_false_and_custom_split():
    tok = Tokenizer(lower=False, split="|").fit(["A|b||a"])
    assert tok.word_index == {"A": 1, "b": 2, "a": 3}
    assert tok.texts_to_sequences(["a|A|zz"]) == [[3, 1]]


def test_bad_input_is_named():
    tok = Tokenizer().fit(["a b"])
    with pytest.raises(DataError, match="text 1 is float"):
        tok.texts_to_sequences(["a", float("nan")])
    with pytest.raises(DataError, match="single string"):
        tok.fit("a b")
    with pytest.raises(DataError, match="not fitted"):
        Tokenizer().texts_to_sequences(["a"])
    with pytest.raises(ParameterError, match="num_words"):
        Tokenizer(num_words=-1).fit(["a"])


def test_round_trip(tmp_path):
    tok = Tokenizer(num_words=4, oov_token="<unk>").fit(["Zeta alpha, alpha! ümlaut zeta", "beta"])
    path = tmp_path / "tok.json"
    tok.save(path)
    back = Tokenizer.load(path)
    assert back.word_index == tok.word_index
    assert list(back.word_counts.items()) == list(tok.word_counts.items())
    assert back.document_count == 2 and back.get_config() == tok.get_config()
    texts = ["alpha beta gamma ÜMLAUT", "zeta"]
    assert back.texts_to_sequences(texts) == tok.texts_to_sequences(texts)
    assert json.loads(path.read_text(encoding="utf-8"))["format"] == "textclass.Tokenizer"


def test_load_rejects_other_json(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"a": 1}', encoding="utf-8")
    with pytest.raises(DataError, match="other.json: not a saved textclass Tokenizer"):
        Tokenizer.load(path)


# -- pad_sequences -----------------------------------------------------------------------------
SEQS = [[1, 2, 3, 4], [5], [], [6, 7]]


@pytest.mark.parametrize(
    ("padding", "truncating", "expected"),
    [
        ("pre", "pre", [[2, 3, 4], [0, 0, 5], [0, 0, 0], [0, 6, 7]]),
        ("post", "pre", [[2, 3, 4], [5, 0, 0], [0, 0, 0], [6, 7, 0]]),
        ("pre", "post", [[1, 2, 3], [0, 0, 5], [0, 0, 0], [0, 6, 7]]),
        ("post", "post", [[1, 2, 3], [5, 0, 0], [0, 0, 0], [6, 7, 0]]),
    ],
)
def test_pad_and_truncate(padding, truncating, expected):
    x = pad_sequences(SEQS, maxlen=3, padding=padding, truncating=truncating)
    assert x.dtype == np.int32 and x.tolist() == expected


def test_pad_maxlen_none_is_longest_and_value():
    x = pad_sequences(SEQS, value=-1)
    assert x.shape == (4, 4)
    assert x.tolist() == [[1, 2, 3, 4], [-1, -1, -1, 5], [-1] * 4, [-1, -1, 6, 7]]


def test_pad_matches_naive_keras_loop():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, 50, rng.integers(0, 12)).tolist() for _ in range(200)]
    for padding in ("pre", "post"):
        for truncating in ("pre", "post"):
            expected = np.zeros((len(seqs), 7), dtype=np.int32)
            for i, s in enumerate(seqs):
                t = s[-7:] if truncating == "pre" else s[:7]
                if t:
                    if padding == "post":
                        expected[i, : len(t)] = t
                    else:
                        expected[i, -len(t):] = t
            got = pad_sequences(seqs, 7, padding=padding, truncating=truncating)
            np.testing.assert_array_equal(got, expected)


def test_pad_edge_cases_and_errors():
    assert pad_sequences([]).shape == (0, 0)
    assert pad_sequences([[], []], maxlen=2).tolist() == [[0, 0], [0, 0]]
    assert pad_sequences(np.array([[1, 2], [3, 4]]), maxlen=3).tolist() == [[0, 1, 2], [0, 3, 4]]
    with pytest.raises(ParameterError, match="padding must be 'pre' or 'post'"):
        pad_sequences(SEQS, padding="left")
    with pytest.raises(ParameterError, match="maxlen"):
        pad_sequences(SEQS, maxlen=0)
    with pytest.raises(DataError, match="sequences of integers"):
        pad_sequences([[1, "a"]])


@pytest.mark.parametrize("filters", [KERAS_FILTERS, "", "]^-\\"])
@pytest.mark.parametrize("split", [" ", "\\", "|"])
def test_filtering_matches_keras_translate(filters, split):
    texts = ["A]b^c-d\\e f|G!h\ti\nj  k", "x\\\\y||z]]", ""]
    table = str.maketrans({c: split for c in filters})
    expected = [[w for w in t.lower().translate(table).split(split) if w] for t in texts]
    tok = Tokenizer(filters=filters, split=split).fit(texts)
    assert tok._words(texts) == expected
    words = [w for seq in expected for w in seq]
    assert list(tok.word_counts) == list(dict.fromkeys(words))
    back = {i: w for w, i in tok.word_index.items()}
    assert [[back[i] for i in seq] for seq in tok.texts_to_sequences(texts)] == expected


def test_non_string_with_lower_false():
    tok = Tokenizer(lower=False, filters="").fit(["a"])
    with pytest.raises(DataError, match="text 0 is int"):
        tok.texts_to_sequences([3])
    with pytest.raises(DataError, match="text 1 is NoneType"):
        Tokenizer(lower=False).fit(["a", None])
