"""Preprocessors: raw strings in, the arrays a Keras model consumes out.

Each one is fitted on training texts only, knows the ``input_dim`` its model needs, and saves to a
folder of JSON files (no pickle), so a saved model can be reloaded anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from textclass.errors import ModelFileError, ParameterError
from textclass.tokenize import Tokenizer, pad_sequences

_SIDES = ("pre", "post")


class SequencePreprocessor:
    """Texts -> padded int32 token-id matrices (Keras 2 ``Tokenizer`` + ``pad_sequences``).

    Parameters
    ----------
    num_words : int or None
        Keep token ids below this (the tutorial's 5000); None keeps every word.
    maxlen : int
        Padded width.
    padding, truncating : {"pre", "post"}
        Where padding is added / where long texts are cut; the tutorial uses "post".
    """

    kind = "sequences"

    def __init__(self, num_words: int | None = None, maxlen: int = 100, padding: str = "post",
                 truncating: str = "post") -> None:
        for name, value in (("padding", padding), ("truncating", truncating)):
            if value not in _SIDES:
                raise ParameterError(f"{name} must be 'pre' or 'post', got {value!r}")
        if not isinstance(maxlen, (int, np.integer)) or maxlen < 1:
            raise ParameterError(f"maxlen must be a positive integer, got {maxlen!r}")
        if num_words is not None and (not isinstance(num_words, (int, np.integer)) or num_words < 1):
            raise ParameterError(f"num_words must be a positive integer or None, got {num_words!r}")
        self.num_words = None if num_words is None else int(num_words)
        self.maxlen = int(maxlen)
        self.padding = padding
        self.truncating = truncating
        self.tokenizer: Tokenizer | None = None

    def fit(self, texts: Sequence[str]) -> SequencePreprocessor:
        self.tokenizer = Tokenizer(num_words=self.num_words).fit(texts)
        return self

    @property
    def input_dim(self) -> int:
        """The Embedding's input_dim: the tokenizer's vocab_size (len(word_index) + 1)."""
        return self.tokenizer.vocab_size

    def sequences(self, texts: Sequence[str]) -> list[list[int]]:
        """Unpadded token ids, one list per text."""
        return self.tokenizer.texts_to_sequences(texts)

    def pad(self, sequences: Sequence[Sequence[int]], width: int | None = None) -> np.ndarray:
        """Pad to ``maxlen``, then keep only ``width`` columns on the text's side.

        With ``width`` at least the longest (truncated) sequence, the dropped columns are all
        padding, so a model whose output does not depend on extra padding gives the same result.
        """
        padded = pad_sequences(sequences, maxlen=self.maxlen, padding=self.padding,
                               truncating=self.truncating)
        if width is None or width >= self.maxlen:
            return padded
        return padded[:, :width] if self.padding == "post" else padded[:, self.maxlen - width:]

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        return self.pad(self.sequences(texts))

    def batches(self, texts: Sequence[str], trim: int | None, batch_size: int,
                width_step: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(row indices, padded ids)`` per batch, for a forward pass over ``texts``.

        With ``trim`` (``ModelSpec.trim_extra``), rows go in order of length and each batch keeps
        only its longest text + ``trim`` columns, rounded up to ``width_step`` (few shapes).
        The estimator and the ONNX runtime share this, so both see the same arrays.
        """
        seqs = self.sequences(texts)
        order = np.arange(len(seqs))
        if trim is not None:
            lengths = np.fromiter((min(len(s), self.maxlen) for s in seqs), dtype=np.int64, count=len(seqs))
            order = np.argsort(lengths, kind="stable")
        for b in range(0, len(seqs), batch_size):
            idx = order[b:b + batch_size]
            width = None
            if trim is not None:
                width = min(self.maxlen, max(width_step, -(-(int(lengths[idx].max()) + trim) // width_step) * width_step))
            yield idx, self.pad([seqs[i] for i in idx], width)

    def get_config(self) -> dict:
        return {"num_words": self.num_words, "maxlen": self.maxlen, "padding": self.padding,
                "truncating": self.truncating}

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _write_json(folder / "preprocessor.json", {"kind": self.kind, "config": self.get_config()})
        _write_json(folder / "tokenizer.json", self.tokenizer.to_dict())

    @classmethod
    def load(cls, folder: str | Path) -> SequencePreprocessor:
        folder = Path(folder)
        self = cls(**_read_config(folder, cls.kind))
        self.tokenizer = Tokenizer.from_dict(_read_json(folder / "tokenizer.json"))
        return self


class BowPreprocessor:
    """Texts -> dense float32 word counts (scikit-learn ``CountVectorizer`` with its defaults).

    The vocabulary is stored as JSON, so no pickle is needed to reload it.
    """

    kind = "bow"

    def __init__(self, max_features: int | None = None) -> None:
        if max_features is not None and (not isinstance(max_features, (int, np.integer)) or max_features < 1):
            raise ParameterError(f"max_features must be a positive integer or None, got {max_features!r}")
        self.max_features = None if max_features is None else int(max_features)
        self.vectorizer = None

    def fit(self, texts: Sequence[str]) -> BowPreprocessor:
        from sklearn.feature_extraction.text import CountVectorizer

        self.vectorizer = CountVectorizer(max_features=self.max_features, dtype=np.float32).fit(texts)
        return self

    @property
    def input_dim(self) -> int:
        return len(self.vectorizer.vocabulary_)

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        return self.vectorizer.transform(texts).toarray()

    def get_config(self) -> dict:
        return {"max_features": self.max_features}

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _write_json(folder / "preprocessor.json", {"kind": self.kind, "config": self.get_config()})
        vocab = sorted(self.vectorizer.vocabulary_, key=self.vectorizer.vocabulary_.get)
        _write_json(folder / "vocabulary.json", vocab)

    @classmethod
    def load(cls, folder: str | Path) -> BowPreprocessor:
        from sklearn.feature_extraction.text import CountVectorizer

        folder = Path(folder)
        self = cls(**_read_config(folder, cls.kind))
        vocab = _read_json(folder / "vocabulary.json")
        # With a fixed vocabulary, fitting on no texts only installs it.
        self.vectorizer = CountVectorizer(vocabulary={w: i for i, w in enumerate(vocab)},
                                          dtype=np.float32).fit([])
        return self


PREPROCESSORS = {cls.kind: cls for cls in (SequencePreprocessor, BowPreprocessor)}


def load_preprocessor(folder: str | Path) -> SequencePreprocessor | BowPreprocessor:
    """Reload whichever preprocessor was saved in ``folder``."""
    kind = _read_json(Path(folder) / "preprocessor.json").get("kind")
    if kind not in PREPROCESSORS:
        raise ModelFileError(f"{Path(folder) / 'preprocessor.json'}: unknown preprocessor kind {kind!r}")
    return PREPROCESSORS[kind].load(folder)


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelFileError(f"{path}: cannot read: {e}") from None


def _read_config(folder: Path, kind: str) -> dict:
    meta = _read_json(folder / "preprocessor.json")
    if meta.get("kind") != kind:
        raise ModelFileError(f"{folder / 'preprocessor.json'}: expected kind {kind!r}, got {meta.get('kind')!r}")
    return meta["config"]
