"""Bag-of-n-gram features without scikit-learn: what an exported linear or ``bow-dense`` model reads.

scikit-learn's ``CountVectorizer`` and ``TfidfVectorizer`` are the source of truth at training
time; an export stores their fitted state (vocabulary, idf, settings) as JSON and this module
reproduces their ``transform`` with the standard library and NumPy only, so a serving machine
needs neither scikit-learn nor SciPy. The analyzers are ports of scikit-learn's own
(``_word_ngrams``, ``_char_wb_ngrams``, ``_char_ngrams``); ``tests/test_export.py`` checks them
against ``build_analyzer`` on real sentences.

Examples
--------
>>> block = TermBlock(vocabulary={"good": 0, "food": 1, "good food": 2}, ngram_range=(1, 2))
>>> block.analyze("Good food, GOOD!")
['good', 'food', 'good', 'good food', 'food good']
>>> TextFeatures([block]).dense(["Good food, GOOD!"]).tolist()
[[2.0, 1.0, 1.0]]
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from textclass.errors import ModelFileError

__all__ = ["TermBlock", "TextFeatures"]

_WHITE_SPACES = re.compile(r"\s\s+")  # scikit-learn's, for the character analyzers
ANALYZERS = ("word", "char_wb", "char")
# CountVectorizer's default token_pattern. Under findall, r"\w\w+" finds exactly the same tokens
# (a match starts at the first \w of a run and takes the whole run, so both ends are word
# boundaries; runs of one character never match) and is faster without the \b checks.
DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
DEFAULT_TOKENS = re.compile(r"\w\w+")


class TermBlock:
    """One fitted vectorizer: an analyzer, its vocabulary and its weighting.

    Parameters mirror scikit-learn's ``CountVectorizer`` / ``TfidfVectorizer`` (defaults alike):
    ``analyzer``, ``ngram_range``, ``token_pattern``, ``lowercase``, ``binary``; the TF-IDF
    weighting is ``sublinear_tf``, ``idf`` (one weight per vocabulary column, None: counts) and
    ``norm`` ("l2", "l1" or None).
    """

    def __init__(self, vocabulary: Mapping[str, int], *, analyzer: str = "word",
                 ngram_range: Sequence[int] = (1, 1), token_pattern: str = DEFAULT_TOKEN_PATTERN,
                 lowercase: bool = True, binary: bool = False, sublinear_tf: bool = False,
                 idf: Sequence[float] | None = None, norm: str | None = None) -> None:
        if analyzer not in ANALYZERS:
            raise ModelFileError(f"unknown analyzer {analyzer!r}; expected one of {', '.join(ANALYZERS)}")
        if norm not in (None, "l1", "l2"):
            raise ModelFileError(f"unknown norm {norm!r}; expected 'l1', 'l2' or None")
        self.vocabulary = dict(vocabulary)
        self.analyzer = analyzer
        self.ngram_range = (int(ngram_range[0]), int(ngram_range[1]))
        self.token_pattern = token_pattern
        self.lowercase = bool(lowercase)
        self.binary = bool(binary)
        self.sublinear_tf = bool(sublinear_tf)
        self.idf = None if idf is None else np.asarray(idf, dtype=np.float64)
        self.norm = norm
        if self.idf is not None and len(self.idf) != len(self.vocabulary):
            raise ModelFileError(f"idf has {len(self.idf)} weights for a vocabulary of {len(self.vocabulary)}")
        self._findall = (DEFAULT_TOKENS if token_pattern == DEFAULT_TOKEN_PATTERN else re.compile(token_pattern)).findall

    # -- analyzers: ports of scikit-learn's ------------------------------------------------
    def analyze(self, text: str) -> list[str]:
        """The terms of ``text`` (with repeats), as scikit-learn's ``build_analyzer()`` gives them."""
        if self.lowercase:
            text = text.lower()
        if self.analyzer == "word":
            return self._word_ngrams(self._findall(text))
        text = _WHITE_SPACES.sub(" ", text)
        return self._char_wb_ngrams(text) if self.analyzer == "char_wb" else self._char_ngrams(text)

    def _word_ngrams(self, tokens: list[str]) -> list[str]:
        min_n, max_n = self.ngram_range
        if max_n == 1:
            return tokens
        terms = list(tokens) if min_n == 1 else []
        for n in range(max(min_n, 2), min(max_n + 1, len(tokens) + 1)):
            terms.extend(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
        return terms

    def _char_wb_ngrams(self, text: str) -> list[str]:
        min_n, max_n = self.ngram_range
        terms: list[str] = []
        for w in text.split():
            w = f" {w} "
            for n in range(min_n, max_n + 1):
                terms.extend(w[i:i + n] for i in range(max(1, len(w) - n + 1)))
                if len(w) <= n:  # a short word counts once, at its full length
                    break
        return terms

    def _char_ngrams(self, text: str) -> list[str]:
        min_n, max_n = self.ngram_range
        terms: list[str] = []
        for n in range(min_n, min(max_n + 1, len(text) + 1)):
            terms.extend(text[i:i + n] for i in range(len(text) - n + 1))
        return terms

    # -- weighting ---------------------------------------------------------------------------
    def weigh(self, rows: np.ndarray, cols: np.ndarray, counts: np.ndarray, n_rows: int) -> np.ndarray:
        """Values of the (row, col) entries from their counts: binary, sublinear tf, idf, norm."""
        values = counts.astype(np.float64)
        if self.binary:
            values[:] = 1.0
        if self.sublinear_tf:
            values = np.log(values) + 1.0
        if self.idf is not None:
            values *= self.idf[cols]
        if self.norm is not None:
            per_row = np.bincount(rows, weights=values * values if self.norm == "l2" else np.abs(values),
                                  minlength=n_rows)
            if self.norm == "l2":
                per_row = np.sqrt(per_row)
            per_row[per_row == 0.0] = 1.0  # scikit-learn leaves empty rows as they are
            values /= per_row[rows]
        return values

    # -- persistence -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        return {"analyzer": self.analyzer, "ngram_range": list(self.ngram_range),
                "token_pattern": self.token_pattern, "lowercase": self.lowercase, "binary": self.binary,
                "sublinear_tf": self.sublinear_tf, "norm": self.norm,
                "idf": None if self.idf is None else self.idf.tolist(), "vocabulary": terms}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TermBlock:
        try:
            settings = {k: v for k, v in d.items() if k != "vocabulary"}
            return cls({t: i for i, t in enumerate(d["vocabulary"])}, **settings)
        except (KeyError, TypeError, ValueError, re.error) as e:
            raise ModelFileError(f"malformed feature block: {e}") from None


class TextFeatures:
    """Blocks side by side (scikit-learn's ``FeatureUnion``): texts -> sparse triplets or a dense matrix."""

    def __init__(self, blocks: Sequence[TermBlock]) -> None:
        self.blocks = list(blocks)
        sizes = [len(b.vocabulary) for b in self.blocks]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.n_features = int(self.offsets[-1])

    def sparse(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, cols, values)`` of the feature matrix, row-major with sorted columns (CSR order)."""
        n = len(texts)
        parts = [self._block(b, texts, n, int(off)) for b, off in zip(self.blocks, self.offsets)]
        rows = np.concatenate([p[0] for p in parts])
        cols = np.concatenate([p[1] for p in parts])
        values = np.concatenate([p[2] for p in parts])
        if len(parts) > 1:
            order = np.lexsort((cols, rows))
            rows, cols, values = rows[order], cols[order], values[order]
        return rows, cols, values

    def dense(self, texts: Sequence[str], dtype: Any = np.float64) -> np.ndarray:
        """The feature matrix as a dense ``(len(texts), n_features)`` array."""
        rows, cols, values = self.sparse(texts)
        out = np.zeros((len(texts), self.n_features), dtype=dtype)
        out[rows, cols] = values  # (row, col) pairs are unique
        return out

    @staticmethod
    def _block(block: TermBlock, texts: Sequence[str], n: int, offset: int):
        terms = [block.analyze(t) for t in texts]
        per_doc = np.fromiter(map(len, terms), dtype=np.int64, count=n)
        flat = list(itertools.chain.from_iterable(terms))
        ids = np.fromiter(map(block.vocabulary.get, flat, itertools.repeat(-1)), dtype=np.int64, count=len(flat))
        known = ids >= 0
        rows = np.repeat(np.arange(n, dtype=np.int64), per_doc)[known]
        width = max(len(block.vocabulary), 1)
        keys, counts = np.unique(rows * width + ids[known], return_counts=True)  # sorted, deduplicated
        rows, cols = keys // width, keys % width
        return rows, cols + offset, block.weigh(rows, cols, counts, n)

    def to_dict(self) -> dict[str, Any]:
        return {"blocks": [b.to_dict() for b in self.blocks]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TextFeatures:
        try:
            return cls([TermBlock.from_dict(b) for b in d["blocks"]])
        except (KeyError, TypeError) as e:
            raise ModelFileError(f"malformed features: {e}") from None
