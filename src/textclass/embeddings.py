"""Pretrained word vectors (GloVe / word2vec text format) as an embedding matrix.

The file is streamed line by line and only the vocabulary's words are parsed, so a 400,000-word
file costs a pass over its text, not a dict of 400,000 arrays. Every line's field count is
checked (cheap), so a truncated or malformed file is reported with its line number even when
the broken line holds a word outside the vocabulary; the numbers themselves are parsed, and
checked, only for the vocabulary's words.

Examples
--------
>>> from textclass.tokenize import Tokenizer
>>> tok = Tokenizer().fit(train_texts)                               # doctest: +SKIP
>>> matrix = build_embedding_matrix("glove-6b-50d", tok.word_index)  # doctest: +SKIP
>>> embedding_coverage(matrix)                                       # doctest: +SKIP
0.9508...
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .errors import DataError, ParameterError, did_you_mean

__all__ = ["VECTORS", "build_embedding_matrix", "embedding_coverage"]

#: Built-in vectors: name -> (folder under ``data_home()``, file names to look for, in order).
VECTORS: dict[str, tuple[str, tuple[str, ...]]] = {
    "glove-6b-50d": ("glove", ("glove.6B.50d.txt.gz", "glove.6B.50d.txt")),
}


def _resolve(path_or_name: str | os.PathLike[str]) -> Path:
    """A vectors file path, or the cached file of a built-in vectors name (fetched if needed)."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    name = str(path_or_name)
    if name not in VECTORS:
        raise DataError(
            f"{name}: no such vectors file, and not a built-in vectors name"
            f"{did_you_mean(name, VECTORS)}; built-in: {', '.join(VECTORS)}"
        )
    from .data import data_home, fetch_dataset  # lazy: the data layer is only needed for names

    folder, files = VECTORS[name]
    for base in (data_home() / folder, None):
        if base is None:
            base = fetch_dataset(name)
        for file in files:
            if (base / file).is_file():
                return base / file
    raise DataError(f"{name}: fetched into {base}, but none of {', '.join(files)} is there")


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="\n")
    return open(path, encoding="utf-8", newline="\n")


def build_embedding_matrix(
    path_or_name: str | os.PathLike[str],
    word_index: Mapping[str, int],
    dim: int | None = None,
) -> np.ndarray:
    """Read pretrained vectors for the words of ``word_index`` into a float32 matrix.

    Parameters
    ----------
    path_or_name : path or str
        A GloVe / word2vec text file (``word v1 v2 ... vdim`` per line; plain or ``.gz``; an
        optional word2vec header line ``count dim`` is skipped), or a built-in vectors name such
        as ``"glove-6b-50d"``, looked up in the data cache and fetched if missing.
    word_index : mapping of str to int
        Word -> row, as ``Tokenizer.word_index`` (indices from 1; row 0 stays zero for padding).
    dim : int, optional
        Expected vector size; by default the file's. A file of another size is an error.

    Returns
    -------
    numpy.ndarray of shape (len(word_index) + 1, dim), float32
        Row i holds word i's vector; rows of words absent from the file are zeros.

    Raises
    ------
    DataError
        The file is missing, not UTF-8, or a line has the wrong number of values or a
        non-numeric value (the message names the file and line).
    """
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1):
        raise ParameterError(f"dim must be a positive integer or None, got {dim!r}")
    path = _resolve(path_or_name)
    n_rows = max(word_index.values(), default=0) + 1  # len(word_index) + 1 for a tokenizer's index
    matrix: np.ndarray | None = None if dim is None else np.zeros((n_rows, dim), dtype=np.float32)
    lineno = 0
    try:
        with _open_text(path) as f:
            for lineno, line in enumerate(f, 1):
                line = line.rstrip("\r\n ")
                if not line:
                    continue
                n_fields = line.count(" ") + 1
                if lineno == 1 and n_fields == 2 and line.replace(" ", "").isdigit():
                    header_dim = int(line.split(" ")[1])  # word2vec header: "count dim"
                    if dim is None:
                        dim = header_dim
                        matrix = np.zeros((n_rows, dim), dtype=np.float32)
                    elif header_dim != dim:
                        raise DataError(f"{path}, line 1: the header says {header_dim} dimensions, expected {dim}")
                    continue
                if dim is None:
                    if n_fields < 2:
                        raise DataError(f"{path}, line {lineno}: expected a word and its vector, got {line[:60]!r}")
                    dim = n_fields - 1
                    matrix = np.zeros((n_rows, dim), dtype=np.float32)
                if n_fields != dim + 1:
                    raise DataError(
                        f"{path}, line {lineno}: expected a word and {dim} numbers, got "
                        f"{n_fields - 1} value(s) (truncated or malformed file?)"
                    )
                word, _, values = line.partition(" ")
                row = word_index.get(word)
                if row is not None:
                    try:
                        matrix[row] = np.array(values.split(" "), dtype=np.float32)
                    except ValueError:
                        bad = next(v for v in values.split(" ") if not _is_float(v))
                        raise DataError(f"{path}, line {lineno}: {bad!r} is not a number (word {word!r})") from None
    except FileNotFoundError:
        raise DataError(f"{path}: no such vectors file") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}, line {lineno + 1}: not UTF-8 text ({e.reason})") from None
    except (EOFError, OSError) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}, after line {lineno}: unreadable or truncated file ({e})") from None
    if matrix is None:
        raise DataError(f"{path}: the file holds no vectors")
    return matrix


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def embedding_coverage(matrix: np.ndarray) -> float:
    """Share of rows that hold a vector (any non-zero value), over all rows including row 0.

    That is the tutorial's measure: non-zero rows / vocab_size (0.9508 for yelp with GloVe 50d).
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise DataError(f"expected a non-empty 2-D embedding matrix, got shape {matrix.shape}")
    return float(np.count_nonzero(np.any(matrix != 0, axis=1)) / matrix.shape[0])
