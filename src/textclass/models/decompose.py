"""Linear text models as exact sums over the places of a text where their features occur.

``decompose(pipeline)`` turns a fitted ``Pipeline(vectorizer, linear classifier)`` into a
``Decomposition``: the pipeline's own feature matrix, one ``(coef, intercept)`` row per class such
that the class's score is ``coef[k] @ x + intercept[k]``, and where in a text each feature occurs
(spans of the original text), so that score can be split over the text without approximation.
What it does not know how to split (a custom analyzer, isotonic calibration, a tag that was
constant in training) gives ``None``, and the caller explains the model some other way.

The score of class ``k`` ("its logit") is whatever the classifier turns into a probability:

- two classes: the log-odds of the positive class, and its negative for the other class;
- multinomial logistic regression (softmax): the centred logit ``z_k - mean(z)``, which equals
  ``log p_k - mean(log p)``, so it is fixed by the probabilities alone (softmax logits are only
  defined up to a shift);
- one binary model per class or tag (NBSVM, one-vs-rest, calibrated SVMs): that model's own
  log-odds, before a multi-class model normalises the probabilities to sum to 1;
- calibrated SVMs: the Platt-scaled margin ``-(a * f(x) + b)``, linear in ``x`` because the margin
  ``f`` is; with several calibrated members (``ensemble=True``) their mean.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import singledispatch

import numpy as np
import scipy.sparse as sp
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline

from textclass.models.encoders import CalibratedRBFSVC
from textclass.models.linear import CalibratedLinearSVC, NBLogisticRegression

Form = tuple[np.ndarray, np.ndarray]  # (coef (n_classes, n_features), intercept (n_classes,))
Occurrences = tuple[list[int], list[int], list[int], list[int]]  # see FeatureSpans.locate


@dataclass(frozen=True)
class Decomposition:
    """A fitted linear text pipeline, opened up.

    Attributes
    ----------
    features : callable
        texts -> the pipeline's feature matrix (CSR), the classifier's input.
    predict_proba : callable
        feature matrix -> the classifier's probabilities: the pipeline's, without vectorizing twice.
    spans : FeatureSpans
        Where each feature occurs in a text.
    coef, intercept : ndarray
        Per class, shapes (n_classes, n_features) and (n_classes,): score = coef[k] @ x + intercept[k].
    """

    features: Callable[[list[str]], sp.csr_matrix]
    predict_proba: Callable[[sp.csr_matrix], np.ndarray]
    spans: FeatureSpans
    coef: np.ndarray
    intercept: np.ndarray

    def split(self, text: str, x: sp.csr_matrix, k: int, owner: np.ndarray, n_parts: int) -> tuple[np.ndarray, float]:
        """Split class ``k``'s score of ``text`` (feature row ``x``) over ``n_parts`` parts.

        ``owner[i]`` is the part holding character ``i`` of the text (-1: none, e.g. whitespace).
        A feature's ``coef * value`` is shared equally by its occurrences in the text, an
        occurrence's share equally by its pieces (the n tokens of a word n-gram; a character
        n-gram is one piece), and a piece's share equally by the characters it covers that have
        an owner. Returns (weight per part, score); the weights sum to ``score - intercept[k]``.
        """
        idx, val = x.indices, x.data
        contrib = val * self.coef[k, idx]
        score = float(contrib.sum() + self.intercept[k])
        columns, piece_of, starts, ends = (np.asarray(a, dtype=np.int64) for a in self.spans.locate(text))
        # Each occurrence's position among the row's non-zero features (the row's indices are sorted).
        at = np.minimum(np.searchsorted(idx, columns), len(idx) - 1) if len(idx) else np.zeros_like(columns)
        hit = idx[at] == columns if len(idx) else np.zeros(len(columns), dtype=bool)
        found = np.bincount(at[hit], minlength=len(idx))
        if np.any((found == 0) & (val != 0)):
            missing = idx[(found == 0) & (val != 0)][:5].tolist()
            raise RuntimeError(f"features {missing} of text {text[:60]!r} were not found in it; "
                               "the vectorizer and textclass.models.decompose disagree")
        share = np.zeros(len(columns))
        share[hit] = contrib[at[hit]] / found[at[hit]]
        pieces = np.bincount(piece_of, minlength=len(columns))
        piece_share = share[piece_of] / pieces[piece_of]
        # Every character of every piece, then the part that owns it.
        lengths = ends - starts
        piece_of_char = np.repeat(np.arange(len(starts)), lengths)
        chars = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths - starts, lengths)
        parts = owner[chars]
        owned = parts >= 0
        per_piece = np.bincount(piece_of_char[owned], minlength=len(starts))
        if np.any((per_piece == 0) & (piece_share != 0)):
            raise RuntimeError(f"a feature of text {text[:60]!r} covers no character of any word")
        char_share = piece_share[piece_of_char[owned]] / per_piece[piece_of_char[owned]]
        return np.bincount(parts[owned], weights=char_share, minlength=n_parts), score


def decompose(pipeline: object) -> Decomposition | None:
    """The ``Decomposition`` of a fitted two-step ``Pipeline(features, classifier)``, or None."""
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        return None
    spans = feature_spans(pipeline.steps[0][1])
    form = linear_form(pipeline.steps[1][1])
    if spans is None or form is None or form[0].shape[1] != spans.width:
        return None
    vectorizer = pipeline.steps[0][1]

    def features(texts: list[str]) -> sp.csr_matrix:
        x = sp.csr_matrix(vectorizer.transform(texts))
        x.sort_indices()  # split() looks features up by binary search
        return x

    return Decomposition(features, pipeline.steps[1][1].predict_proba, spans, *form)


# ---- where features occur ----------------------------------------------------------------------

_NON_SPACE = re.compile(r"\S+")


class FeatureSpans:
    """Where the features of fitted vectorizers occur in a text, as spans of the original text.

    Reproduces scikit-learn's ``word`` and ``char_wb`` analyzers (``build_analyzer``) with
    positions: lower-casing, ``token_pattern``, stop words, word n-grams joined by a space, and
    character n-grams of each whitespace-separated chunk padded with one space on each side.
    Several vectorizers (a ``FeatureUnion``) are laid side by side at their column offsets.
    """

    def __init__(self, parts: list[tuple[CountVectorizer, int]], width: int) -> None:
        self.parts = parts
        self.width = width

    def locate(self, text: str) -> Occurrences:
        """(column per occurrence, occurrence per piece, piece starts, piece ends)."""
        out: Occurrences = ([], [], [], [])
        for vec, offset in self.parts:
            pre, origin = _lowered(text) if vec.lowercase else (text, None)
            add = _collector(out, offset, origin)
            if vec.analyzer == "word":
                _word_ngrams(vec, pre, add)
            else:
                _char_wb_ngrams(vec, pre, add)
        return out


def _lowered(text: str) -> tuple[str, list[int] | None]:
    """``text.lower()`` and, when lower-casing changed its length ("İ" -> "i̇"), the original
    index of each character of the result (None: the same index)."""
    pre = text.lower()
    if len(pre) == len(text):
        return pre, None
    return pre, [i for i, c in enumerate(text) for _ in c.lower()]


def _collector(out: Occurrences, offset: int, origin: list[int] | None):
    columns, piece_of, starts, ends = out

    def add(column: int, pieces: list[tuple[int, int]]) -> None:
        occurrence = len(columns)
        columns.append(column + offset)
        for s, e in pieces:
            piece_of.append(occurrence)
            starts.append(s if origin is None else origin[s])
            ends.append(e if origin is None else origin[e - 1] + 1)

    return add


def _word_ngrams(vec: CountVectorizer, text: str, add) -> None:
    pattern = re.compile(vec.token_pattern)
    group = 1 if pattern.groups == 1 else 0  # scikit-learn keeps the one group, as findall does
    spans = [m.span(group) for m in pattern.finditer(text)]
    tokens = [text[s:e] for s, e in spans]
    stop = vec.get_stop_words()
    if stop:
        kept = [i for i, t in enumerate(tokens) if t not in stop]
        spans, tokens = [spans[i] for i in kept], [tokens[i] for i in kept]
    vocabulary = vec.vocabulary_
    low, high = vec.ngram_range
    for n in range(low, min(high, len(tokens)) + 1):
        for i in range(len(tokens) - n + 1):
            column = vocabulary.get(tokens[i] if n == 1 else " ".join(tokens[i:i + n]))
            if column is not None:
                add(column, spans[i:i + n])


def _char_wb_ngrams(vec: CountVectorizer, text: str, add) -> None:
    vocabulary = vec.vocabulary_
    low, high = vec.ngram_range
    for chunk in _NON_SPACE.finditer(text):
        w = f" {chunk.group()} "
        size, origin = len(w), chunk.start() - 1  # w[j] is text[origin + j] but for the two pads
        for n in range(low, high + 1):
            last = max(size - n, 0)  # a chunk shorter than n is one n-gram, and ends the loop
            for o in range(last + 1):
                column = vocabulary.get(w[o:o + n])
                if column is not None:
                    s, e = max(o, 1), min(o + n, size - 1)  # the pads belong to no character
                    if s >= e:  # a lone pad (n = 1): it stands beside the chunk's edge character
                        s, e = (1, 2) if o == 0 else (size - 2, size - 1)
                    add(column, [(origin + s, origin + e)])
            if last == 0:
                break


@singledispatch
def feature_spans(transformer: object) -> FeatureSpans | None:
    """``FeatureSpans`` for a fitted vectorizer or union of vectorizers; None if unknown."""
    return None


@feature_spans.register
def _(vec: CountVectorizer) -> FeatureSpans | None:  # also TfidfVectorizer, FastCountVectorizer
    known = (vec.input == "content" and vec.preprocessor is None and vec.tokenizer is None
             and vec.strip_accents is None and vec.analyzer in ("word", "char_wb"))
    return FeatureSpans([(vec, 0)], len(vec.vocabulary_)) if known else None


@feature_spans.register
def _(union: FeatureUnion) -> FeatureSpans | None:
    parts, width = [], 0
    for _, transformer in union.transformer_list:
        if transformer == "drop":
            continue
        inner = feature_spans(transformer)
        if inner is None:
            return None
        parts += [(vec, offset + width) for vec, offset in inner.parts]
        width += inner.width
    return FeatureSpans(parts, width)


# ---- per-class linear scores -------------------------------------------------------------------

def _binary(coef: np.ndarray, intercept: float) -> Form:
    """Two classes: the positive class's log-odds, and its negative for the other class."""
    return np.vstack([-coef, coef]), np.array([-intercept, intercept], dtype=np.float64)


def _centred(coef: np.ndarray, intercept: np.ndarray) -> Form:
    return coef - coef.mean(axis=0), intercept - intercept.mean()


@singledispatch
def linear_form(clf: object) -> Form | None:
    """Per-class ``(coef, intercept)`` of a fitted classifier (see the module docstring); None
    if its scores are not linear in its input."""
    return None


@linear_form.register
def _(clf: LogisticRegression) -> Form:
    coef, intercept = np.asarray(clf.coef_, dtype=np.float64), np.asarray(clf.intercept_, dtype=np.float64)
    if len(clf.classes_) == 2:
        return _binary(coef[0], intercept[0])
    return _centred(coef, intercept)  # softmax over the classes


@linear_form.register
def _(clf: NBLogisticRegression) -> Form:
    # coef_ already holds each model's weights times its log-count ratios, on the binary features.
    coef, intercept = np.asarray(clf.coef_, dtype=np.float64), np.asarray(clf.intercept_, dtype=np.float64)
    return _binary(coef[0], intercept[0]) if len(clf.classes_) == 2 else (coef, intercept)


@linear_form.register
def _(clf: CalibratedLinearSVC) -> Form:
    # Platt scaling of the SVM's margins: p = sigmoid(a (w x + c) + b), so each score is affine.
    a, b = np.asarray(clf.sigmoid_coef_, dtype=np.float64), np.asarray(clf.sigmoid_intercept_, dtype=np.float64)
    coef = a[:, None] * np.asarray(clf.svm_.coef_, dtype=np.float64)
    intercept = a * np.asarray(clf.svm_.intercept_, dtype=np.float64) + b
    return _binary(coef[0], intercept[0]) if len(clf.classes_) == 2 else (coef, intercept)


@linear_form.register
def _(clf: CalibratedRBFSVC) -> None:
    return None  # a kernel SVM: its margins are not linear in the features


@linear_form.register
def _(clf: CalibratedClassifierCV) -> Form | None:
    forms = [_calibrated(member) for member in clf.calibrated_classifiers_]
    if any(f is None for f in forms):
        return None
    return np.mean([f[0] for f in forms], axis=0), np.mean([f[1] for f in forms], axis=0)


def _calibrated(member) -> Form | None:
    """One calibrated classifier: Platt (sigmoid) or temperature scaling of a linear margin."""
    est = member.estimator
    if not hasattr(est, "coef_"):
        return None
    coef, intercept = np.asarray(est.coef_, dtype=np.float64), np.asarray(est.intercept_, dtype=np.float64)
    binary = len(member.classes) == 2
    if member.method == "sigmoid":
        if not binary and len(est.classes_) != len(member.classes):
            return None  # a class the margin never saw has probability 0: no finite score
        a = np.array([c.a_ for c in member.calibrators], dtype=np.float64)
        b = np.array([c.b_ for c in member.calibrators], dtype=np.float64)
        coef, intercept = -a[:, None] * coef, -(a * intercept + b)  # p = sigmoid(-(a f + b))
        return _binary(coef[0], intercept[0]) if binary else (coef, intercept)
    if member.method == "temperature":
        beta = float(member.calibrators[0].beta_)  # p = softmax(beta * (-f, f)) or softmax(beta * f)
        if binary:
            return _binary(2 * beta * coef[0], 2 * beta * intercept[0])
        return _centred(beta * coef, beta * intercept)
    return None


@linear_form.register
def _(clf: OneVsRestClassifier) -> Form | None:
    forms = [linear_form(est) for est in clf.estimators_]
    if any(f is None for f in forms):
        return None  # e.g. a tag present in every training row: a constant, not a linear model
    coef = np.vstack([f[0][1] for f in forms])  # each binary model's positive class
    intercept = np.array([f[1][1] for f in forms], dtype=np.float64)
    return _binary(coef[0], intercept[0]) if len(clf.classes_) == 2 and len(forms) == 1 else (coef, intercept)
