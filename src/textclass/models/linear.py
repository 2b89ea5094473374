"""scikit-learn builders: raw texts in, an estimator with ``predict_proba`` out.

Each builder returns a fresh, unfitted ``Pipeline`` (vectorizer + linear model). Multi-label data
(an indicator matrix ``y``) gets a ``OneVsRestClassifier`` head, one binary model per tag, so
``predict_proba`` returns per-tag probabilities.
"""

from __future__ import annotations

import itertools
import numbers
import re
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn import get_config
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import LabelEncoder
from sklearn.svm import LinearSVC
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted

from textclass.errors import DataError, LabelWarning, ParameterError

# CountVectorizer's default token pattern and its faster findall equivalent, shared with the runtime.
from textclass.features import DEFAULT_TOKEN_PATTERN
from textclass.features import DEFAULT_TOKENS as _DEFAULT_TOKENS


def _head(clf: BaseEstimator, multilabel: bool, n_jobs: int | None = None,
          ovr: type[OneVsRestClassifier] = OneVsRestClassifier) -> BaseEstimator:
    return ovr(clf, n_jobs=n_jobs) if multilabel else clf


class FastCountVectorizer(CountVectorizer):
    """``CountVectorizer`` with a vectorised ``transform``: the same matrix, about 1.5x faster.

    scikit-learn's ``transform`` counts tokens in a Python loop, token by token, which bounds
    the bag-of-words models' prediction speed. For the plain word analyzer (no custom
    preprocessor, tokenizer or stop words, unigrams, no accent stripping) this one finds each
    document's tokens with the token pattern, looks them all up in the vocabulary at once, and
    lets SciPy sum the duplicates. Any other configuration, or input that is not a collection of
    ``str``, takes scikit-learn's own path. Fitting is scikit-learn's.
    """

    def _fast_path(self, raw_documents) -> list[str] | None:
        if (isinstance(raw_documents, str) or self.analyzer != "word" or self.input != "content"
                or self.preprocessor is not None or self.tokenizer is not None
                or self.stop_words is not None or tuple(self.ngram_range) != (1, 1)
                or self.strip_accents is not None):
            return None
        docs = list(raw_documents)
        if not docs or not all(type(d) is str for d in docs):
            return None
        return docs

    def transform(self, raw_documents):
        docs = self._fast_path(raw_documents)
        if docs is None:
            return super().transform(raw_documents)
        self._check_vocabulary()
        if self.token_pattern == DEFAULT_TOKEN_PATTERN:
            findall = _DEFAULT_TOKENS.findall
        else:
            pattern = re.compile(self.token_pattern)
            if pattern.groups:  # scikit-learn's tokenizer keeps the group, or refuses two
                return super().transform(raw_documents)
            findall = pattern.findall
        if self.lowercase:
            docs = [d.lower() for d in docs]
        tokens = list(map(findall, docs))
        per_doc = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
        flat = list(itertools.chain.from_iterable(tokens))
        ids = np.fromiter(map(self.vocabulary_.get, flat, itertools.repeat(-1)), dtype=np.int64, count=len(flat))
        known = ids >= 0
        rows = np.repeat(np.arange(len(docs)), per_doc)[known]
        indptr = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(docs)), out=indptr[1:])
        index_dtype = np.int32 if indptr[-1] <= np.iinfo(np.int32).max else np.int64
        X = sp.csr_array((np.ones(len(rows), dtype=np.intc), ids[known].astype(index_dtype),
                          indptr.astype(index_dtype)), shape=(len(docs), len(self.vocabulary_)))
        X.sum_duplicates()  # counts per (document, word), indices sorted: scikit-learn's layout
        X = X.astype(self.dtype)
        if self.binary:
            X.data.fill(1)
        return X if get_config()["sparse_interface"] == "sparray" else sp.csr_matrix(X)


# Token patterns whose tokens never hold a space, so " ".join of n tokens splits back into them.
_SPACELESS_PATTERNS = {DEFAULT_TOKEN_PATTERN: _DEFAULT_TOKENS, r"(?u)\b\w+\b|[!?]": re.compile(r"\w+|[!?]")}


_TOKENIZE_CHUNK = 2048


def _ngram_keys(codes: np.ndarray, lengths: np.ndarray, n: int, base: int) -> tuple[np.ndarray, np.ndarray]:
    """(document, key) of every n-gram: ``key`` is the n token codes as digits in ``base``."""
    doc = np.repeat(np.arange(len(lengths)), lengths)
    pos = np.arange(len(codes)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    start = np.flatnonzero(pos <= lengths[doc] - n)
    key = codes[start].astype(np.int64)
    for k in range(1, n):
        key = key * base + codes[start + k]
    return doc[start], key


def _count_matrix(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int) -> sp.csr_matrix:
    """Counts from (row, column) pairs whose rows never decrease: CSR directly, no COO copy."""
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    index = np.int32 if max(n_cols, indptr[-1]) < np.iinfo(np.int32).max else np.int64
    X = sp.csr_matrix((np.ones(len(cols), dtype=np.int32), cols.astype(index), indptr.astype(index)),
                      shape=(n_rows, n_cols))
    X.sum_duplicates()
    return X


class NgramCountVectorizer(CountVectorizer):
    """``CountVectorizer`` for word n-grams, fitted and applied with NumPy: the same vocabulary
    and matrices as scikit-learn's, several times faster and without a dict of every n-gram.

    scikit-learn joins each n-gram into a string and counts it in a Python dict, for every
    n-gram of every document (NBSVM's 1-3-grams of 25,000 reviews: tens of millions of strings).
    Here tokens become integer codes once (pandas' hash factorisation), an n-gram is its codes as
    one int64, vocabulary pruning (``min_df``, ``max_df``) works on those, and only the kept
    n-grams are spelt out as strings for ``vocabulary_`` (sorted, as scikit-learn's). Other
    configurations (custom analyzers, tokenizers, stop words, ``max_features``, a fixed
    ``vocabulary``, token patterns that may match a space, codes too many for an int64) take
    scikit-learn's own path.
    """

    def _fast_docs(self, raw_documents, fitting: bool) -> list[str] | None:
        if (isinstance(raw_documents, str) or self.analyzer != "word" or self.input != "content"
                or self.preprocessor is not None or self.tokenizer is not None
                or self.stop_words is not None or self.strip_accents is not None
                or self.token_pattern not in _SPACELESS_PATTERNS
                or (fitting and (self.max_features is not None or self.vocabulary is not None))):
            return None
        docs = list(raw_documents)
        if not docs or not all(type(d) is str for d in docs):
            return None
        return [d.lower() for d in docs] if self.lowercase else docs

    def _codes(self, docs: list[str], tokens_index=None):
        """Token codes, tokens per document, and the token index (grown when not given).

        Documents are tokenized a chunk at a time, so only one chunk's token strings are alive.
        """
        import pandas as pd

        findall = _SPACELESS_PATTERNS[self.token_pattern].findall
        grow = tokens_index is None
        index = pd.Index([], dtype=object) if grow else tokens_index
        lengths = np.empty(len(docs), dtype=np.int64)
        parts = []
        for start in range(0, len(docs), _TOKENIZE_CHUNK):
            tokens = list(map(findall, docs[start:start + _TOKENIZE_CHUNK]))
            lengths[start:start + len(tokens)] = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
            flat = np.fromiter(itertools.chain.from_iterable(tokens), dtype=object,
                               count=int(lengths[start:start + len(tokens)].sum()))
            codes = index.get_indexer(flat)
            if grow and (codes < 0).any():
                index = index.append(pd.Index(pd.unique(flat[codes < 0]), dtype=object))
                codes = index.get_indexer(flat)
            parts.append(codes.astype(np.int64))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64), lengths, index

    def _fits_int64(self, n_tokens: int) -> bool:
        return float(max(n_tokens, 2)) ** self.ngram_range[1] < 2.0**62

    def fit_transform(self, raw_documents, y=None):
        docs = self._fast_docs(raw_documents, fitting=True)
        if docs is None:
            return super().fit_transform(raw_documents, y)
        self._validate_params()
        self._validate_ngram_range()
        codes, lengths, index = self._codes(docs)
        base = len(index)
        if not self._fits_int64(base):
            return super().fit_transform(raw_documents, y)
        blocks, orders, keys = [], [], []
        for n in range(self.ngram_range[0], self.ngram_range[1] + 1):
            doc, key = _ngram_keys(codes, lengths, n, base)
            unique, inverse = np.unique(key, return_inverse=True)
            blocks.append(_count_matrix(doc, inverse, len(docs), len(unique)))
            orders.append(np.full(len(unique), n))
            keys.append(unique)
        offset = sum(len(k) for k in keys)
        if not offset:
            raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
        X = sp.hstack(blocks, format="csr")
        del blocks
        df = np.bincount(X.indices, minlength=offset)
        n_doc = len(docs)
        high = self.max_df if isinstance(self.max_df, numbers.Integral) else self.max_df * n_doc
        low = self.min_df if isinstance(self.min_df, numbers.Integral) else self.min_df * n_doc
        if high < low:
            raise ValueError("max_df corresponds to < documents than min_df")
        kept = np.flatnonzero((df >= low) & (df <= high))
        if not len(kept):
            raise ValueError("After pruning, no terms remain. Try a lower min_df or a higher max_df.")
        orders, keys = np.concatenate(orders)[kept], np.concatenate(keys)[kept]
        words = index.to_numpy(dtype=object)
        names = np.empty(len(kept), dtype=object)
        for n in np.unique(orders):
            at = np.flatnonzero(orders == n)
            digits, rest = [], keys[at]
            for _ in range(n):
                digits.append(words[rest % base])
                rest = rest // base
            names[at] = digits[0] if n == 1 else [" ".join(t) for t in zip(*reversed(digits))]
        order = np.argsort(names, kind="stable")
        self.vocabulary_ = dict(zip(names[order].tolist(), range(len(order))))
        self.fixed_vocabulary_ = False
        column = np.empty(len(order), dtype=np.int64)
        column[order] = np.arange(len(order))
        by_order = {int(n): (keys[orders == n], column[orders == n]) for n in np.unique(orders)}  # keys sorted
        self._keys_cache = (self.vocabulary_, (index, base, by_order))
        return self._finish(X[:, kept[order]])

    def _finish(self, X):
        X.has_sorted_indices = False  # column indexing may leave the flag set on unsorted rows
        X.sort_indices()
        if self.binary:
            X.data.fill(1)
        return X.astype(self.dtype)

    def _lookup(self):
        """Per n-gram order, the sorted keys of the vocabulary and their columns (cached)."""
        cached = self.__dict__.get("_keys_cache")
        if cached is not None and cached[0] is self.vocabulary_:
            return cached[1]
        import pandas as pd

        grams = [g.split(" ") for g in self.vocabulary_]
        lengths = np.fromiter(map(len, grams), dtype=np.int64, count=len(grams))
        codes, words = pd.factorize(np.fromiter(itertools.chain.from_iterable(grams), dtype=object,
                                                count=int(lengths.sum())))
        codes, base = codes.astype(np.int64), len(words)
        column = np.fromiter(self.vocabulary_.values(), dtype=np.int64, count=len(grams))
        key = np.zeros(len(grams), dtype=np.int64)
        ends = np.cumsum(lengths)
        for k in range(int(lengths.max())):
            has = lengths > k
            key[has] = key[has] * base + codes[(ends - lengths)[has] + k]
        by_order = {}
        for n in np.unique(lengths):
            at = np.flatnonzero(lengths == n)
            sort = np.argsort(key[at])
            by_order[int(n)] = (key[at][sort], column[at][sort])
        lookup = (pd.Index(words), base, by_order)
        self._keys_cache = (self.vocabulary_, lookup)
        return lookup

    def transform(self, raw_documents):
        docs = self._fast_docs(raw_documents, fitting=False)
        if docs is None:
            return super().transform(raw_documents)
        self._check_vocabulary()
        index, base, by_order = self._lookup()
        if not self._fits_int64(base):
            return super().transform(raw_documents)
        codes, lengths, _ = self._codes(docs, index)
        X = sp.csr_matrix((len(docs), len(self.vocabulary_)), dtype=np.int32)
        for n, (known, column) in by_order.items():  # disjoint columns per order: a sum of matrices
            doc, key = _ngram_keys(np.where(codes < 0, 0, codes), lengths, n, base)
            unseen = _ngram_keys((codes < 0).astype(np.int64), lengths, n, 2)[1] > 0
            at = np.minimum(np.searchsorted(known, key), len(known) - 1)
            hit = (known[at] == key) & ~unseen
            X = X + _count_matrix(doc[hit], column[at[hit]], len(docs), len(self.vocabulary_))
        return self._finish(X)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_keys_cache", None)  # rebuilt from vocabulary_ on first use; not saved
        return state


class CharWbTfidfVectorizer(TfidfVectorizer):
    """``TfidfVectorizer(analyzer="char_wb")`` counting each distinct word's n-grams once: the
    same vocabulary and matrices as scikit-learn's, several times faster.

    ``char_wb`` n-grams never cross a word boundary, so a document's counts are the sum of its
    words' counts: (documents x words) @ (words x n-grams). Words repeat across documents, so
    spelling out the n-grams of the distinct words only saves most of scikit-learn's per-n-gram
    dict work. Only the counting (``_count_vocab``) is replaced; pruning, sorting and weighting
    are scikit-learn's. Other configurations (custom preprocessor, accent stripping, input that
    is not a collection of ``str``) take scikit-learn's own path.
    """

    def _fast_docs(self, raw_documents) -> list[str] | None:
        if (isinstance(raw_documents, str) or self.analyzer != "char_wb" or self.input != "content"
                or self.preprocessor is not None or self.strip_accents is not None):
            return None
        docs = list(raw_documents)
        if not all(type(d) is str for d in docs):
            return None
        return [d.lower() for d in docs] if self.lowercase else docs

    def _count_vocab(self, raw_documents, fixed_vocab):
        docs = self._fast_docs(raw_documents)
        if docs is None:
            return super()._count_vocab(raw_documents, fixed_vocab)
        import pandas as pd

        # scikit-learn squeezes runs of whitespace, then splits on whitespace: split() alone.
        words = [d.split() for d in docs]
        per_doc = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        codes, distinct = pd.factorize(np.fromiter(itertools.chain.from_iterable(words), dtype=object,
                                                   count=int(per_doc.sum())))
        del words
        low, high = self.ngram_range
        grams, owner = [], []
        for i, word in enumerate(distinct):
            w = f" {word} "
            for n in range(low, high + 1):
                last = max(len(w) - n, 0)  # a word shorter than n is one n-gram and ends the loop
                grams.extend(w[o:o + n] for o in range(last + 1))
                owner.extend(itertools.repeat(i, last + 1))
                if last == 0:
                    break
        owner = np.asarray(owner, dtype=np.int64)
        if fixed_vocab:
            vocabulary = self.vocabulary_
            column = np.fromiter(map(vocabulary.get, grams, itertools.repeat(-1)), dtype=np.int64, count=len(grams))
            known = column >= 0
            owner, column = owner[known], column[known]
        else:  # first-seen order; fit sorts the vocabulary afterwards, as scikit-learn's
            column, names = pd.factorize(np.asarray(grams, dtype=object))
            if not len(names):
                raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
            vocabulary = dict(zip(names.tolist(), range(len(names))))
        del grams
        word_grams = _count_matrix(owner, column, len(distinct), len(vocabulary))
        doc_words = _count_matrix(np.repeat(np.arange(len(docs)), per_doc), codes, len(docs), len(distinct))
        X = (doc_words @ word_grams).tocsr()
        X.sort_indices()
        X = X.astype(self.dtype)
        return vocabulary, X if get_config()["sparse_interface"] == "sparray" else sp.csr_matrix(X)


def build_bow_logreg(
    *, multilabel: bool = False, random_state: int | None = None, C: float = 1.0, n_jobs: int | None = None
) -> Pipeline:
    """The tutorial's baseline (experiment 1): ``CountVectorizer()`` + ``LogisticRegression()``.

    The vectorizer is ``FastCountVectorizer``: CountVectorizer's defaults and matrices, faster
    to predict with. ``n_jobs``: tags fitted at once (multi-label).
    """
    return Pipeline(
        [
            ("vectorizer", FastCountVectorizer()),
            ("classifier", _head(LogisticRegression(C=C, random_state=random_state), multilabel, n_jobs)),
        ]
    )


# Vocabulary floors, chosen on UCI 10-fold CV (bench/bench_linear.py --min-df) and bench_scale.py.
TFIDF_MIN_DF = 1
NBSVM_MIN_DF = 1


# Below this many held-out rows, tfidf-linear calibrates on k-fold out-of-fold margins instead.
MIN_HOLDOUT_ROWS = 1000

# Stopping tolerance of the hold-out SVM, whose margins only fit the sigmoids (LinearSVC's default:
# 1e-4). Measured on all of GoEmotions (28 tags, bench/README.md, issue 13): the calibrated test log
# loss is the same to 5 decimals (0.09710) at 1e-4, 1e-2 and 1e-1, and these fits take 0.81x, 0.57x
# and 0.46x of the final SVMs' time.
CALIBRATION_TOL = 1e-1

# Stopping tolerance of the final SVMs (and of small data's out-of-fold ones). LinearSVC's default
# 1e-4 over-solves (liblinear's own default for this dual solver is 1e-1). Measured with
# bench/bench_calibration.py --tables final on all of GoEmotions: 1e-3, 1e-2, 3e-2 and 1e-1 take
# 0.87x, 0.74x, 0.64x and 0.57x of 1e-4's time; test log loss 0.09710 at all five, micro-F1 and
# margin > 0 micro-F1 equal to 4 decimals up to 1e-2 (1e-1: -0.0004); UCI 10-fold accuracy 0.8557
# at 1e-4 to 3e-2 (1e-1: 0.8553).
FINAL_TOL = 1e-2


class CalibrationWarning(LabelWarning):
    """Some classes or tags had too few examples for held-out calibration (see ``CalibratedLinearSVC``)."""


def _platt(scores: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """Platt's sigmoid ``p = 1 / (1 + exp(-(a * score + b)))`` with his smoothed targets.

    The targets (N+ + 1) / (N+ + 2) and 1 / (N- + 2) keep the fit finite on separable scores.
    Newton's method with backtracking on the two parameters (Lin, Lin & Weng 2007, "A note on
    Platt's probabilistic outputs"): a handful of passes over the scores, where a general solver
    (L-BFGS) took most of a tag's calibration time.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    n_pos = int(positive.sum())
    t = np.where(positive, (n_pos + 1) / (n_pos + 2), 1 / (len(s) - n_pos + 2))

    def loss(a: float, b: float) -> float:
        z = a * s + b
        return float(np.sum(np.logaddexp(0.0, z) - t * z))

    a, b = 0.0, float(np.log((n_pos + 1) / (len(s) - n_pos + 1)))
    f = loss(a, b)
    for _ in range(100):
        r = expit(a * s + b) - t
        g = np.array([r @ s, r.sum()])
        if np.abs(g).max() < 1e-10 * max(len(s), 1):
            break
        w = (r + t) * (1 - r - t)
        hessian = np.array([[w @ (s * s) + 1e-12, w @ s], [w @ s, w.sum() + 1e-12]])
        step = np.linalg.solve(hessian, -g)
        size = 1.0
        while size > 1e-10:  # backtracking: the first step that decreases the loss enough
            f_new = loss(a + size * step[0], b + size * step[1])
            if f_new <= f + 1e-4 * size * (g @ step):
                break
            size /= 2
        else:
            break
        a, b, f = a + size * step[0], b + size * step[1], f_new
    return float(a), float(b)


class CalibratedLinearSVC(ClassifierMixin, BaseEstimator):
    """A LinearSVC whose margins become probabilities by Platt scaling on held-out rows.

    Two SVM fits, not the k + 1 of cross-validated calibration: one on all rows but a stratified
    ``holdout`` share, stopped early (``CALIBRATION_TOL``: its margins only fit the sigmoids), whose
    margins on the held-out rows fit one sigmoid per class (Platt's, as
    ``CalibratedClassifierCV(method="sigmoid")``), and the final one on all rows, to which those
    sigmoids apply (as ``CalibratedClassifierCV(ensemble=False)`` applies out-of-fold ones). When
    the hold-out would have fewer than ``MIN_HOLDOUT_ROWS`` rows, its sigmoid would be noisy and
    folds are cheap: the margins come out-of-fold from ``round(1 / holdout)`` stratified folds
    (fewer if a class has fewer examples), as in ``CalibratedClassifierCV(cv=5, ensemble=False)``.
    A class (or tag) seen in fewer than 2 rows (or absent from fewer than 2) cannot be held out:
    it is not refused, its sigmoid is fitted on the final SVM's training margins instead
    (optimistic: no held-out rows), it is listed in ``uncalibrated_``, and a one-line
    ``CalibrationWarning`` names it.

    Parameters
    ----------
    C : float
        Inverse regularisation strength of the SVM.
    holdout : float
        Share of the rows held out to fit the sigmoids, in (0, 1).
    class_weight : None, "balanced" or dict
        Passed to the LinearSVC.
    random_state : int or None
        Passed to the LinearSVC and the hold-out split.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    svm_ : LinearSVC
        Fitted on all rows; ``coef_`` (n_models, n_features) and ``intercept_`` (n_models,) give
        the margins, one model for two classes, one per class otherwise.
    sigmoid_coef_, sigmoid_intercept_ : ndarray of shape (n_models,)
        ``P(class) = 1 / (1 + exp(-(sigmoid_coef_ * margin + sigmoid_intercept_)))``; more than two
        classes: normalised to sum to 1 (scikit-learn's rule).
    n_holdout_ : int
        Held-out (or out-of-fold) rows the sigmoids were fitted on.
    held_out_ : ndarray of shape (n_holdout_,)
        Their row indices; ``held_out_proba_`` (n_holdout_, n_classes) are their probabilities
        from the SVM(s) that did not see them, as ``predict_proba`` gives (like a forest's
        ``oob_decision_function_``): ``threshold="auto"`` chooses on them without a fit of its own.
    uncalibrated_ : list
        Classes whose sigmoid was fitted on training margins.
    """

    def __init__(self, C: float = 1.0, holdout: float = 0.2, class_weight=None, random_state: int | None = None):
        self.C = C
        self.holdout = holdout
        self.class_weight = class_weight
        self.random_state = random_state

    def _svm(self, calibrating: bool = False) -> LinearSVC:
        """The final SVM, or (``calibrating``) the hold-out one, whose margins only fit the sigmoids
        (small data's out-of-fold SVMs are cheap and keep the final tolerance)."""
        return LinearSVC(C=self.C, tol=CALIBRATION_TOL if calibrating else FINAL_TOL, class_weight=self.class_weight,
                         random_state=self.random_state)

    def fit(self, X, y) -> CalibratedLinearSVC:
        if not isinstance(self.holdout, numbers.Real) or isinstance(self.holdout, bool) or not 0 < self.holdout < 1:
            raise ParameterError(f"holdout must be a number in (0, 1), got {self.holdout!r}")
        y = np.asarray(y)
        classes, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
        if len(classes) < 2:
            raise DataError(f"calibrating probabilities needs at least 2 classes, got only {classes.tolist()!r}")
        # Singletons stay in training; the rest is split, stratified, at least one row per class held out.
        splittable = np.flatnonzero(counts[codes] >= 2)
        splits = []  # (training rows, held-out rows); singletons always train
        if len(np.unique(codes[splittable])) >= 2:
            fewest = counts[counts >= 2].min()
            if self.holdout * len(splittable) >= MIN_HOLDOUT_ROWS:
                _, held = train_test_split(splittable, test_size=max(self.holdout, 1 / fewest),
                                           stratify=codes[splittable], random_state=self.random_state)
                splits = [held]
            else:  # a small hold-out gives a noisy sigmoid, and folds of small data are cheap
                folds = StratifiedKFold(int(min(round(1 / self.holdout), fewest)))  # CalibratedClassifierCV's
                splits = [splittable[f] for _, f in folds.split(splittable, codes[splittable])]
        self.svm_ = self._svm().fit(X, y)
        targets = np.eye(len(classes), dtype=bool)[codes]
        targets = targets[:, 1:] if len(classes) == 2 else targets
        held = np.concatenate(splits) if splits else np.arange(0)
        if splits:
            held_margins = np.vstack([
                self._margins(self._svm(calibrating=len(splits) == 1).fit(X[rest], y[rest]), X[part])
                for part in splits for rest in [np.setdiff1d(np.arange(len(y)), part)]])
        a, b, uncalibrated, margins = np.empty(targets.shape[1]), np.empty(targets.shape[1]), [], None
        for j in range(targets.shape[1]):
            t = targets[held, j]
            if t.any() and not t.all():
                a[j], b[j] = _platt(held_margins[:, j], t)
            else:
                margins = self._margins(self.svm_, X) if margins is None else margins
                a[j], b[j] = _platt(margins[:, j], targets[:, j])
                uncalibrated.append(classes[j + (len(classes) == 2)].item())
        self.classes_ = classes
        self.sigmoid_coef_, self.sigmoid_intercept_ = a, b
        self.n_holdout_ = len(held)
        self.held_out_ = held
        self.held_out_proba_ = self._proba(held_margins) if splits else np.empty((0, len(classes)))
        self.uncalibrated_ = uncalibrated
        self.n_features_in_ = self.svm_.n_features_in_
        if uncalibrated:
            warnings.warn(CalibrationWarning(
                "{labels}: fewer than 2 examples to hold out; probabilities from a sigmoid on training "
                "margins, not held-out ones", uncalibrated), stacklevel=2)
        return self

    @staticmethod
    def _margins(svm, X) -> np.ndarray:
        m = svm.decision_function(X)
        return m.reshape(-1, 1) if m.ndim == 1 else m

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self._proba(self._margins(self.svm_, X))

    def _proba(self, margins: np.ndarray) -> np.ndarray:
        p = expit(margins * self.sigmoid_coef_ + self.sigmoid_intercept_)
        if len(self.classes_) == 2:
            return np.column_stack([1.0 - p[:, 0], p[:, 0]])
        total = p.sum(axis=1, keepdims=True)
        return np.divide(p, total, out=np.full_like(p, 1 / len(self.classes_)), where=total > 0)

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class CalibratedOneVsRest(OneVsRestClassifier):
    """``OneVsRestClassifier`` for calibrated tags: the tags that could not be calibrated on
    held-out rows are named in one warning for all, not one per tag."""

    def fit(self, X, y, **fit_params) -> CalibratedOneVsRest:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CalibrationWarning)
            super().fit(X, y, **fit_params)
        rare = [c.item() for c, est in zip(self.classes_, self.estimators_) if getattr(est, "uncalibrated_", None)]
        if rare:
            warnings.warn(CalibrationWarning(
                f"{len(rare)} of {len(self.classes_)} tags ({{labels}}) are in (or missing from) fewer than "
                "2 rows: their probabilities come from a sigmoid on training margins, not held-out ones", rare),
                stacklevel=2)
        return self


def build_tfidf_linear(
    *,
    multilabel: bool = False,
    random_state: int | None = None,
    C: float = 1.0,
    word_ngram_max: int = 2,
    char_ngram_max: int = 5,
    min_df: int = TFIDF_MIN_DF,
    n_jobs: int | None = None,
) -> Pipeline:
    """Word 1..n and char_wb 2..m TF-IDF (sublinear tf), concatenated, + a calibrated LinearSVC.

    Character n-grams inside word boundaries catch misspellings and morphology that a word
    vocabulary of a few thousand sentences misses. The SVM's margins become probabilities through
    Platt scaling (``CalibratedLinearSVC``). ``min_df``: n-grams kept must occur in that many
    texts (both vocabularies). ``n_jobs``: tags fitted at once (multi-label).
    """
    features = FeatureUnion(
        [
            ("word", TfidfVectorizer(ngram_range=(1, word_ngram_max), sublinear_tf=True, min_df=min_df)),
            (
                "char",
                CharWbTfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, char_ngram_max), sublinear_tf=True, min_df=min_df
                ),
            ),
        ]
    )
    clf = CalibratedLinearSVC(C=C, random_state=random_state)
    return Pipeline([("vectorizer", features), ("classifier", _head(clf, multilabel, n_jobs, CalibratedOneVsRest))])


class NBLogisticRegression(ClassifierMixin, BaseEstimator):
    """NBSVM (Wang & Manning 2012) with a logistic loss: a linear model on NB-scaled features.

    For each class, the log-count ratio ``r = log((p / |p|_1) / (q / |q|_1))`` (``p``, ``q``:
    feature counts plus ``alpha`` in that class and in the rest) rescales the binarized features,
    ``X * r``, and a binary logistic regression is fitted on them. More than two classes: one
    such model per class (one-vs-rest, ``n_jobs`` at once), probabilities normalised to sum to 1.
    Since ``(X * r) @ w = X @ (r * w)``, prediction is one sparse product with ``coef_``.

    Parameters
    ----------
    C : float
        Inverse regularisation strength of each logistic regression.
    alpha : float
        Smoothing added to the feature counts.
    random_state : int or None
        Passed to each LogisticRegression.
    n_jobs : int or None
        Binary models fitted at once (joblib's convention; None: one, or the ``parallel_config``).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    ratios_ : ndarray of shape (n_models, n_features)
        The log-count ratio per binary model (one model for two classes).
    coef_ : ndarray of shape (n_models, n_features)
        Weights on the binarized features: the regression's weights times ``ratios_``.
    intercept_ : ndarray of shape (n_models,)
    """

    def __init__(self, C: float = 1.0, alpha: float = 1.0, random_state: int | None = None,
                 n_jobs: int | None = None):
        self.C = C
        self.alpha = alpha
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _fit_one(self, X: sp.csr_matrix, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        p = np.asarray(X[positive].sum(axis=0)).ravel() + self.alpha
        q = np.asarray(X[~positive].sum(axis=0)).ravel() + self.alpha
        r = np.log((p / p.sum()) / (q / q.sum())).astype(X.dtype)
        scaled = X.copy()
        scaled.data *= r[scaled.indices]
        clf = LogisticRegression(C=self.C, max_iter=1000, random_state=self.random_state)
        clf.fit(scaled, positive.astype(int))
        # float64 weights: the binary features are exact in float32, so scores keep full precision.
        return r, clf.coef_[0].astype(np.float64) * r, float(clf.intercept_[0])

    def fit(self, X, y) -> NBLogisticRegression:
        X = sp.csr_matrix(X, dtype=np.float32)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        codes = encoder.transform(y)
        targets = [codes == 1] if len(self.classes_) == 2 else [codes == k for k in range(len(self.classes_))]
        fits = Parallel(n_jobs=self.n_jobs)(delayed(self._fit_one)(X, positive) for positive in targets)
        self.ratios_ = np.vstack([r for r, _, _ in fits])
        self.coef_ = np.vstack([w for _, w, _ in fits])
        self.intercept_ = np.array([b for _, _, b in fits])
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        pos = expit(sp.csr_matrix(X, dtype=np.float32) @ self.coef_.T + self.intercept_)
        if len(self.classes_) == 2:
            return np.column_stack([1.0 - pos[:, 0], pos[:, 0]])
        return pos / pos.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


# Words of any length plus "!" and "?": single letters ("a", "I") and exclamations carry sentiment.
NBSVM_TOKEN_PATTERN = r"(?u)\b\w+\b|[!?]"


def build_nbsvm(
    *,
    multilabel: bool = False,
    random_state: int | None = None,
    C: float = 10.0,
    alpha: float = 0.5,
    ngram_max: int = 3,
    min_df: int = NBSVM_MIN_DF,
    n_jobs: int | None = None,
) -> Pipeline:
    """NBSVM: binarized word 1..n-gram counts, log-count-ratio scaling, logistic regression.

    ``min_df``: n-grams kept must occur in that many texts. ``n_jobs``: classes (one-vs-rest) or
    tags fitted at once.
    """
    clf = NBLogisticRegression(C=C, alpha=alpha, random_state=random_state, n_jobs=None if multilabel else n_jobs)
    vectorizer = NgramCountVectorizer(
        ngram_range=(1, ngram_max), binary=True, token_pattern=NBSVM_TOKEN_PATTERN, min_df=min_df,
        dtype=np.float32,
    )
    return Pipeline([("vectorizer", vectorizer), ("classifier", _head(clf, multilabel, n_jobs))])
