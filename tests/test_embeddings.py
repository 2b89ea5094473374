"""Embedding matrix from GloVe / word2vec text files: layout, formats, errors, tutorial coverage."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from textclass.embeddings import build_embedding_matrix, embedding_coverage
from textclass.errors import DataError, ParameterError

WORD_INDEX = {"the": 1, "cat": 2, "sat": 3, "dog": 4}


def _gzip(src: Path, dst: Path) -> Path:
    with open(src, "rb") as f, gzip.open(dst, "wb") as g:
        shutil.copyfileobj(f, g)
    return dst


@pytest.mark.parametrize("compressed", [False, True])
def test_rows_follow_word_index(fixtures, tmp_path, compressed):
    path = fixtures / "embeddings_glove.txt"
    if compressed:
        path = _gzip(path, tmp_path / "vectors.txt.gz")
    m = build_embedding_matrix(path, WORD_INDEX)
    assert m.shape == (5, 3) and m.dtype == np.float32
    np.testing.assert_array_equal(m[1], np.float32([0.1, 0.2, 0.3]))
    np.testing.assert_array_equal(m[2], np.float32([-1.5, 2e-3, 0]))
    np.testing.assert_array_equal(m[3], np.float32([0.5, 0.25, 0.125]))
    assert not m[0].any() and not m[4].any()  # padding row and the missing "dog"
    assert embedding_coverage(m) == pytest.approx(3 / 5)


def test_word2vec_header_is_skipped(fixtures):
    m = build_embedding_matrix(fixtures / "embeddings_word2vec.txt", {"the": 1, "mat": 2, "zzz": 3}, dim=3)
    assert m.tolist()[1:] == [pytest.approx([0.1, 0.2, 0.3]), [7, 8, 9], [0, 0, 0]]


def test_dim_mismatch_names_line(fixtures):
    with pytest.raises(DataError, match=r"embeddings_glove\.txt, line 1: expected a word and 50 numbers, got 3"):
        build_embedding_matrix(fixtures / "embeddings_glove.txt", WORD_INDEX, dim=50)
    with pytest.raises(DataError, match="line 1: the header says 3 dimensions, expected 4"):
        build_embedding_matrix(fixtures / "embeddings_word2vec.txt", WORD_INDEX, dim=4)


def test_truncated_line_names_file_and_line(fixtures):
    # The broken line is reported whether or not its word is in the vocabulary.
    for index in (WORD_INDEX, {"nothing": 1}):
        with pytest.raises(DataError, match=r"embeddings_truncated\.txt, line 3: expected a word and 3 numbers, got 2"):
            build_embedding_matrix(fixtures / "embeddings_truncated.txt", index)


def test_non_numeric_value_names_line(fixtures):
    with pytest.raises(DataError, match=r"embeddings_nonnumeric\.txt, line 2: 'x' is not a number \(word 'cat'\)"):
        build_embedding_matrix(fixtures / "embeddings_nonnumeric.txt", WORD_INDEX)


def test_truncated_gzip_stream(fixtures, tmp_path):
    good = _gzip(fixtures / "embeddings_glove.txt", tmp_path / "v.txt.gz").read_bytes()
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(good[: len(good) - 12])
    with pytest.raises(DataError, match="cut.txt.gz.*truncated"):
        build_embedding_matrix(cut, WORD_INDEX)


def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(DataError, match="did you mean 'glove-6b-50d'"):
        build_embedding_matrix("glove-6b-5d", WORD_INDEX)
    with pytest.raises(DataError, match="no such vectors file"):
        build_embedding_matrix(tmp_path / "absent.txt", WORD_INDEX)
    with pytest.raises(ParameterError, match="dim"):
        build_embedding_matrix(tmp_path / "absent.txt", WORD_INDEX, dim=0)


def test_empty_file(tmp_path):
    (tmp_path / "empty.txt").write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match="holds no vectors"):
        build_embedding_matrix(tmp_path / "empty.txt", WORD_INDEX)


def test_coverage_counts_row_zero():
    assert embedding_coverage(np.array([[0, 0], [1, 0], [0, 0], [0, 2]])) == 0.5
    with pytest.raises(DataError, match="2-D"):
        embedding_coverage(np.zeros(3))


# -- the tutorial's coverage with GloVe 6B 50d -------------------------------------------------
def _data_home() -> Path:
    return Path(os.environ.get("TEXTCLASS_DATA", Path.home() / ".cache" / "textclass"))


def _glove() -> Path:
    path = _data_home() / "glove" / "glove.6B.50d.txt.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found (set TEXTCLASS_DATA to the data folder)")
    return path


@pytest.fixture(scope="module")
def yelp_word_index():
    from test_tokenize import _yelp_train

    from textclass.tokenize import Tokenizer

    return Tokenizer(num_words=5000).fit(_yelp_train()).word_index


def test_tutorial_glove_coverage(yelp_word_index):
    m = build_embedding_matrix(_glove(), yelp_word_index)
    assert m.shape == (1747, 50)
    assert round(embedding_coverage(m), 4) == 0.9508
    assert m[yelp_word_index["the"]][0] == pytest.approx(0.418, abs=1e-6)  # GloVe's first line


def test_builtin_name_resolves_through_data_layer(yelp_word_index, monkeypatch):
    _glove()
    pytest.importorskip("textclass.data", reason="textclass.data not available yet")
    monkeypatch.setenv("TEXTCLASS_DATA", str(_data_home()))
    m = build_embedding_matrix("glove-6b-50d", yelp_word_index)
    assert round(embedding_coverage(m), 4) == 0.9508
