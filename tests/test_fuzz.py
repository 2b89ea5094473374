"""Property-based tests: arbitrary bytes and shapes given to the file readers and the tokenizer
give a result or a TextclassError, never another exception. Bounded and derandomized, so CI
runs the same examples every time in a few seconds."""

from __future__ import annotations

import io
import json
import string
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from textclass.data import read_table
from textclass.errors import TextclassError
from textclass.predict import iter_text_chunks
from textclass.tokenize import Tokenizer, pad_sequences

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

# Bytes that look like the formats often enough to get past the first check: separators,
# quotes, newlines, braces, a BOM, stray Latin-1 and invalid UTF-8, NUL.
PIECES = [b"text", b"label", b",", b"\t", b";", b"|", b'"', b"\n", b"\r\n", b"{", b"}", b"[", b"]", b":",
          b'"text"', b'"label"', b"pos", b"neg", b"1", b"0", b"-1.5", b"null", b"\xef\xbb\xbf", b"\xa3", b"\xff",
          b"\x00", b" ", b"a b", b"text,label\n", b'{"text": "x", "label": ', b"\xc3\xa9"]
RAW = st.one_of(st.binary(max_size=300),
                st.lists(st.sampled_from(PIECES), max_size=40).map(b"".join))


def read_or_refuse(path: Path, **kwargs):
    """The property: a DataFrame with text (and label) columns, or a TextclassError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a dropped repeated header, detected tags: fine
        try:
            df = read_table(path, **kwargs)
        except TextclassError:
            return None
    assert "text" in df.columns and len(df) > 0
    assert all(isinstance(t, str) and t.strip() for t in df["text"])
    if kwargs.get("labels", True):
        assert "label" in df.columns and df["label"].notna().all()
    return df


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
@FUZZ
@given(raw=RAW)
def test_text_formats_from_arbitrary_bytes(suffix, raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data{suffix}"
        path.write_bytes(raw)
        read_or_refuse(path)
        read_or_refuse(path, labels=False)
        try:
            for chunk in iter_text_chunks(path, chunk_size=7):
                assert all(isinstance(t, str) for t in chunk)
        except TextclassError:
            pass


CELL = st.one_of(st.none(), st.text(max_size=12), st.integers(-3, 3), st.floats(allow_nan=True),
                 st.booleans(), st.lists(st.text(string.ascii_lowercase, max_size=3), max_size=3),
                 st.dictionaries(st.text(max_size=2), st.integers(), max_size=2))
COLUMNS = st.sampled_from(["text", "label", "review", "tags", "x", "1", ""])


@FUZZ
@given(rows=st.lists(st.dictionaries(COLUMNS, CELL, max_size=4), min_size=0, max_size=8))
def test_jsonl_of_arbitrary_shapes(rows):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        read_or_refuse(path)


@FUZZ
@given(columns=st.lists(COLUMNS, min_size=1, max_size=4, unique=True), data=st.data())
def test_parquet_of_arbitrary_shapes(columns, data):
    n = data.draw(st.integers(0, 6))
    kinds = {c: data.draw(st.sampled_from(["str", "int", "float", "list", "null"])) for c in columns}
    values = {
        "str": st.one_of(st.none(), st.text(max_size=10)),
        "int": st.integers(-5, 5),
        "float": st.floats(allow_nan=True, width=32),
        "list": st.lists(st.text(string.ascii_lowercase, min_size=1, max_size=3), max_size=3),
        "null": st.none(),
    }
    frame = pd.DataFrame({c: pd.Series([data.draw(values[kinds[c]]) for _ in range(n)], dtype=object)
                          for c in columns})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.parquet"
        try:
            frame.to_parquet(path)
        except Exception:  # noqa: BLE001 - a frame pyarrow itself cannot store is not our input
            path.write_bytes(data.draw(RAW))
        read_or_refuse(path)


@FUZZ
@given(raw=RAW)
def test_parquet_from_arbitrary_bytes(raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.parquet"
        path.write_bytes(raw)
        read_or_refuse(path)
        try:
            list(iter_text_chunks(path))
        except TextclassError:
            pass


NAME = st.text(string.ascii_letters + string.digits + "._- é", min_size=1, max_size=8)


@FUZZ
@given(tree=st.dictionaries(NAME, st.dictionaries(NAME, RAW, max_size=3), max_size=3))
def test_folder_of_arbitrary_files(tree):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        root.mkdir()
        for label, files in tree.items():
            if label in (".", ".."):
                continue
            (root / label).mkdir(exist_ok=True)
            for name, raw in files.items():
                if name not in (".", ".."):
                    (root / label / name).write_bytes(raw)
        read_or_refuse(root)


TEXTS = st.lists(st.one_of(st.text(max_size=40), st.binary(max_size=10).map(lambda b: b.decode("latin-1"))),
                 max_size=8)


@FUZZ
@given(texts=TEXTS, more=TEXTS, num_words=st.one_of(st.none(), st.integers(0, 6)),
       oov=st.one_of(st.none(), st.text(max_size=4)), filters=st.text(max_size=5), split=st.text(max_size=2))
def test_tokenizer_on_arbitrary_text(texts, more, num_words, oov, filters, split):
    try:
        tok = Tokenizer(num_words=num_words, oov_token=oov, filters=filters, split=split).fit(texts)
        seqs = tok.texts_to_sequences(more)
    except TextclassError:
        return
    assert len(seqs) == len(more)
    limit = num_words if num_words else len(tok.word_index) + 1
    assert all(isinstance(i, int) and 1 <= i < max(limit, 2) for s in seqs for i in s)
    padded = pad_sequences(seqs, maxlen=5, padding="post")
    assert padded.shape == (len(more), 5) and padded.dtype == np.int32
    again = Tokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.texts_to_sequences(more) == seqs


@FUZZ
@given(raw=RAW)
def test_saved_tokenizer_from_arbitrary_bytes(raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tok.json"
        path.write_bytes(raw)
        try:
            Tokenizer.load(path)
        except TextclassError:
            pass


def test_stdin_lines_of_arbitrary_text():
    stream = io.StringIO("a\n\n  \nb\r\nc")
    assert list(iter_text_chunks(stream, chunk_size=2)) == [["a", "b"], ["c"]]
