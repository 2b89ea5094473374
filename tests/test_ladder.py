"""The whole ladder on real data: every registry model trains, predicts and round-trips on
binary (uci-sentiment), multi-class (bbc-news) and multi-label (goemotions) slices.

Slices are small and hyperparameters tiny (tests check behaviour, not accuracy); each data set
is loaded once per module. GloVe models read a vectors file cut from the real GloVe 6B 50d to the
slices' words, so the 400,000-line file is scanned once, not six times.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import real_dataset

from textclass.errors import DataError, ParameterError
from textclass.estimator import TextClassifier
from textclass.models import MODELS
from textclass.store import load_model

# Only the names a model accepts (its spec.defaults) are passed. batch_size divides every
# training slice (120, 100, 300 rows): no ragged last batch, so one train step compile per model.
TINY = {"embedding_dim": 8, "num_filters": 4, "kernel_size": 3, "dense_units": 4, "units": 4,
        "ff_dim": 8, "num_heads": 2, "maxlen": 48, "epochs": 2, "batch_size": 20}
SEED = 0
N_NEW = 15  # unseen texts to predict (+ 2 edge cases): one prediction batch
EMOTIONS = ("admiration", "amusement", "approval", "gratitude", "neutral")


def tiny_params(name: str) -> dict:
    params = {k: v for k, v in TINY.items() if k in MODELS[name].defaults}
    if MODELS[name].kind == "torch":  # a pretrained encoder fine-tuned: one short epoch is enough here
        params.update(epochs=1, maxlen=32)
    return params


def _split(df: pd.DataFrame, n_train: int) -> dict:
    """Training rows, then N_NEW unseen texts plus an empty one and one of unknown words."""
    new = df["text"].iloc[n_train:n_train + N_NEW].tolist() + ["", "qwxz zzyzx"]
    return {"X": df["text"].iloc[:n_train].tolist(), "y": df["label"].iloc[:n_train].tolist(), "new": new}


def _balanced(df: pd.DataFrame, n_train: int, n_new: int) -> pd.DataFrame:
    """n_train + n_new rows per label, shuffled within each part; training rows first."""
    picked = df.groupby("label", group_keys=False).sample(n_train + n_new, random_state=SEED)
    train = picked.groupby("label", group_keys=False).head(n_train).sample(frac=1, random_state=SEED)
    return pd.concat([train, picked.drop(train.index)])


@pytest.fixture(scope="module")
def uci() -> dict:
    """120 rows from all three sources, 60 per label (0/1 ints); 8 + 8 unseen."""
    return _split(_balanced(real_dataset("uci-sentiment"), 60, 8), 120)


@pytest.fixture(scope="module")
def bbc() -> dict:
    """100 articles, 20 per topic, each cut to its first 300 characters; 15 unseen."""
    df = real_dataset("bbc-news")
    df = _balanced(df.assign(text=df["text"].str.slice(0, 300)), 20, 3)
    return _split(df, 100)


@pytest.fixture(scope="module")
def goemotions() -> dict:
    """300 + 16 train rows, tags restricted to five frequent emotions; each tag both on and off."""
    df = real_dataset("goemotions", split="train")
    tags = [tuple(t for t in row if t in EMOTIONS) for row in df["label"]]
    df = df.assign(label=pd.Series(tags, index=df.index, dtype=object))
    df = df[[bool(t) for t in tags]].iloc[:316]
    first = df["label"].iloc[:300]
    for tag in EMOTIONS:
        on = sum(tag in t for t in first)
        assert 0 < on < 300, tag
    assert any(len(t) > 1 for t in first)  # real multi-label rows, not only single tags
    return _split(df, 300)


@pytest.fixture(scope="module")
def data(uci, bbc, goemotions) -> dict:
    return {"binary": uci, "multiclass": bbc, "multilabel": goemotions}


@pytest.fixture(scope="module")
def glove_file(tmp_path_factory, uci, bbc, goemotions):
    """GloVe 6B 50d lines for the slices' words only (real vectors, a small file)."""
    from textclass.embeddings import build_embedding_matrix
    from textclass.tokenize import Tokenizer

    texts = uci["X"] + bbc["X"] + goemotions["X"]
    tok = Tokenizer().fit(texts)
    try:
        matrix = build_embedding_matrix("glove-6b-50d", tok.word_index)
    except DataError as e:
        pytest.skip(f"GloVe 6B 50d not available: {e}")
    path = tmp_path_factory.mktemp("ladder") / "glove_slice.txt"
    with path.open("w", encoding="utf-8") as f:
        for word, i in tok.word_index.items():
            if matrix[i].any():
                f.write(word + " " + " ".join(f"{v:.6g}" for v in matrix[i]) + "\n")
    return str(path)


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("name", list(MODELS))
def test_model_trains_predicts_and_round_trips(name, task, data, request, tmp_path):
    d = data[task]
    params = tiny_params(name)
    if "vectors" in MODELS[name].defaults:
        params["vectors"] = request.getfixturevalue("glove_file")
    clf = TextClassifier(name, random_state=SEED, **params).fit(d["X"], d["y"])

    assert clf.task_ == task
    if task == "multilabel":
        expected = sorted({t for tags in d["y"] for t in tags})
    else:
        expected = sorted(set(d["y"]))
    assert clf.classes_.tolist() == expected
    if task == "binary":  # labels keep the user's type: ints stay ints
        assert all(isinstance(c, int) for c in clf.classes_.tolist())

    proba = clf.predict_proba(d["new"])
    pred = clf.predict(d["new"])
    n, k = len(d["new"]), len(expected)
    assert proba.shape == (n, k)
    real = proba[:N_NEW]  # the texts with known words; the last two rows are checked at the end
    assert ((real >= 0) & (real <= 1)).all()
    if task == "multilabel":
        assert len(pred) == n
        on = proba > clf.threshold_
        for row, tags in zip(on, pred):
            assert isinstance(tags, tuple)
            assert set(tags) == {c for c, flag in zip(expected, row) if flag}
    else:
        np.testing.assert_allclose(real.sum(axis=1), 1.0, rtol=1e-5)
        assert set(pred.tolist()) <= set(expected)
        np.testing.assert_array_equal(pred[:N_NEW], clf.classes_[real.argmax(axis=1)])
    if MODELS[name].kind == "keras":
        assert len(clf.history_["loss"]) == params["epochs"]

    loaded = load_model(clf.save(tmp_path / "model"))
    np.testing.assert_allclose(loaded.predict_proba(d["new"]), proba, atol=1e-5)
    assert loaded.classes_.tolist() == expected
    if task == "multilabel":
        assert list(loaded.predict(d["new"])) == list(pred)
    else:
        np.testing.assert_array_equal(loaded.predict(d["new"]), pred)

    # An empty text and one of unknown words have no token ids at all: still probabilities.
    edge = proba[N_NEW:]
    assert ((edge >= 0) & (edge <= 1)).all()
    if task != "multilabel":
        np.testing.assert_allclose(edge.sum(axis=1), 1.0, rtol=1e-5)


# ---- tfidf-linear: held-out Platt scaling, two SVM fits, rare classes and tags fall back ----


@pytest.mark.parametrize("n_per_class", [2, 3, 4])
def test_tfidf_linear_calibrates_on_few_examples_per_class(uci, n_per_class):
    pos = [t for t, y in zip(uci["X"], uci["y"]) if y == 1][:n_per_class]
    neg = [t for t, y in zip(uci["X"], uci["y"]) if y == 0][:n_per_class + 3]
    clf = TextClassifier("tfidf-linear", random_state=SEED).fit(pos + neg, [1] * len(pos) + [0] * len(neg))
    head = clf.model_.named_steps["classifier"]
    assert head.uncalibrated_ == []  # each class held out at least once
    assert head.n_holdout_ == len(pos) + len(neg)  # small data: every row out-of-fold
    proba = clf.predict_proba(uci["new"])
    assert proba.shape == (len(uci["new"]), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_tfidf_linear_fits_the_svm_twice_and_its_sigmoid_is_scikit_learns_platt(uci, bbc, monkeypatch):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from sklearn.svm import LinearSVC

    from textclass.models import linear
    from textclass.models.linear import _platt, build_tfidf_linear

    fits = []
    original = LinearSVC.fit
    monkeypatch.setattr(LinearSVC, "fit",
                        lambda self, X, y, **kw: fits.append((len(y), self.tol)) or original(self, X, y, **kw))
    build_tfidf_linear(random_state=SEED).fit(bbc["X"], bbc["y"])
    final, early = linear.FINAL_TOL, linear.CALIBRATION_TOL  # only the hold-out SVM of large data stops early
    assert [tol for _, tol in fits] == [final] * (1 + 5)  # small data: 5 folds out-of-fold, all rows
    fits.clear()
    monkeypatch.setattr(linear, "MIN_HOLDOUT_ROWS", 10)  # as if the data were large
    pipe = build_tfidf_linear(random_state=SEED).fit(bbc["X"], bbc["y"])
    head = pipe.named_steps["classifier"]
    assert fits == [(len(bbc["y"]), final), (len(bbc["y"]) - head.n_holdout_, early)]  # not 5 folds + 1 refit
    assert head.n_holdout_ == len(bbc["y"]) // 5 and head.uncalibrated_ == []
    monkeypatch.setattr(LinearSVC, "fit", original)

    # Platt's sigmoid on a held-out half, against scikit-learn's own sigmoid calibration of it.
    X = pipe.named_steps["vectorizer"].transform(uci["X"])
    y = np.asarray(uci["y"])
    svm = LinearSVC(random_state=SEED).fit(X[::2], y[::2])
    a, b = _platt(svm.decision_function(X[1::2]), y[1::2] == 1)
    theirs = CalibratedClassifierCV(FrozenEstimator(svm), method="sigmoid").fit(X[1::2], y[1::2])
    new = pipe.named_steps["vectorizer"].transform(uci["new"])
    ours = 1 / (1 + np.exp(-(a * svm.decision_function(new) + b)))
    np.testing.assert_allclose(ours, theirs.predict_proba(new)[:, 1], atol=1e-4)


def test_tfidf_linear_single_example_class_falls_back_and_says_so(bbc):
    from textclass.models.linear import CalibrationWarning

    X = bbc["X"] + ["a lone article about the weather, rain and wind"]
    y = bbc["y"] + ["weather"]
    with pytest.warns(CalibrationWarning, match=r"^'weather': fewer than 2 examples") as caught:
        clf = TextClassifier("tfidf-linear", random_state=SEED).fit(X, y)
    assert len(caught) == 1
    head = clf.model_.named_steps["classifier"]
    assert head.uncalibrated_ == [clf.classes_.tolist().index("weather")]  # codes inside the pipeline
    proba = clf.predict_proba(bbc["new"] + [X[-1]])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert clf.predict([X[-1]])[0] == "weather"  # its own text: the class it was fitted on
    assert (clf.predict(bbc["new"]) != "weather").all()


def test_tfidf_linear_rare_real_tags_are_kept_and_named_in_one_line():
    """The first 400 GoEmotions training comments with all 28 tags: real rare tags."""
    from textclass.models.linear import CalibrationWarning

    df = real_dataset("goemotions", split="train").iloc[:400]
    counts = pd.Series([t for tags in df["label"] for t in tags]).value_counts()
    rare = sorted(t for t, c in counts.items() if c < 2)
    assert rare  # real tag sets have them
    with pytest.warns(CalibrationWarning) as caught:
        clf = TextClassifier("tfidf-linear", random_state=SEED, n_jobs=2).fit(df["text"], df["label"])
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert f"{len(rare)} of {len(counts)} tags" in str(caught[0].message)
    assert all(repr(t) in str(caught[0].message) for t in rare)
    ovr = clf.model_.named_steps["classifier"]
    flagged = [clf.classes_[i] for i, est in zip(ovr.classes_, ovr.estimators_) if est.uncalibrated_]
    assert sorted(flagged) == rare
    proba = clf.predict_proba(df["text"].iloc[:50])
    assert proba.shape == (50, len(counts)) and ((proba > 0) & (proba < 1)).all()
    frequent = clf.classes_.tolist().index(counts.index[0])
    assert proba[:, frequent].std() > 0.05  # a calibrated tag's probabilities follow the text


def test_tfidf_linear_holdout_is_checked_at_fit():
    from textclass.models.linear import CalibratedLinearSVC

    est = CalibratedLinearSVC(holdout=1.5)  # __init__ stores, fit validates (scikit-learn's rule)
    assert est.get_params()["holdout"] == 1.5
    with pytest.raises(ParameterError, match=r"holdout must be a number in \(0, 1\)"):
        est.fit(np.eye(4), [0, 0, 1, 1])
    with pytest.raises(DataError, match="at least 2 classes"):
        CalibratedLinearSVC().fit(np.eye(4), [1, 1, 1, 1])


# ---- nbsvm: NB-scaled logistic regressions folded into one linear map ----


def test_tfidf_linear_probabilities_follow_the_margins_and_n_jobs_changes_nothing(uci, goemotions, monkeypatch):
    from textclass.models import linear

    monkeypatch.setattr(linear, "MIN_HOLDOUT_ROWS", 10)  # the held-out path, as on large data
    pipe = linear.build_tfidf_linear(random_state=SEED).fit(uci["X"], uci["y"])
    head, X = pipe.named_steps["classifier"], pipe.named_steps["vectorizer"].transform(uci["new"] + uci["X"])
    p, margin = head.predict_proba(X)[:, 1], head.svm_.decision_function(X)
    assert ((p > 0) & (p < 1)).all() and head.sigmoid_coef_[0] > 0
    np.testing.assert_array_equal(np.argsort(p, kind="stable"), np.argsort(margin, kind="stable"))

    monkeypatch.undo()  # joblib's workers import the module afresh: same settings on both sides
    one = linear.build_tfidf_linear(multilabel=True, random_state=SEED)
    two = linear.build_tfidf_linear(multilabel=True, random_state=SEED, n_jobs=2)
    Y = pd.Series(goemotions["y"]).str.join("|").str.get_dummies().to_numpy()
    one.fit(goemotions["X"], Y)
    two.fit(goemotions["X"], Y)
    for a, b in zip(one.named_steps["classifier"].estimators_, two.named_steps["classifier"].estimators_):
        np.testing.assert_array_equal(a.svm_.coef_, b.svm_.coef_)
        assert (a.sigmoid_coef_, a.sigmoid_intercept_) == (b.sigmoid_coef_, b.sigmoid_intercept_)


def test_platt_sigmoid_stays_finite_on_separable_scores():
    from textclass.models.linear import _platt

    scores = np.array([-3.0, -2.0, -1.5, 1.0, 2.0, 4.0])
    a, b = _platt(scores, scores > 0)
    p = 1 / (1 + np.exp(-(a * scores + b)))
    assert np.isfinite([a, b]).all() and a > 0
    target = np.where(scores > 0, 4 / 5, 1 / 5)  # Platt's (N+ + 1) / (N+ + 2) and 1 / (N- + 2)
    np.testing.assert_allclose([(p - target).sum(), ((p - target) * scores).sum()], 0, atol=1e-8)  # the optimum


CHAR_TEXTS = ["", "x", "  a\t\tb\u00a0\u00a0c \u2028 d  ", "aaaaaa aa", "Ünïcödé ÇA İstanbul ΣΑΣ", "emoji 😀😀 ok",
              "nul\x00byte", "ǅungla ﬁne ß straße", "supercalifragilistic " * 3, "qqzx unseen"]


@pytest.mark.parametrize("kwargs", [{}, {"ngram_range": (2, 5), "sublinear_tf": True}, {"min_df": 2, "max_df": 0.5},
                                    {"ngram_range": (1, 3), "lowercase": False, "dtype": np.float32},
                                    {"strip_accents": "unicode"}, {"max_features": 100}],
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "defaults")
def test_char_wb_tfidf_vectorizer_gives_scikit_learns_vocabulary_and_matrix(kwargs, uci, bbc, goemotions):
    from sklearn.feature_extraction.text import TfidfVectorizer

    from textclass.models.linear import CharWbTfidfVectorizer

    for d in (uci, bbc, goemotions):
        theirs = TfidfVectorizer(analyzer="char_wb", **kwargs)
        ours = CharWbTfidfVectorizer(analyzer="char_wb", **kwargs)
        fitted = theirs.fit_transform(d["X"] + CHAR_TEXTS[:-1]), ours.fit_transform(d["X"] + CHAR_TEXTS[:-1])
        assert ours.vocabulary_ == theirs.vocabulary_
        texts = d["new"] + CHAR_TEXTS + d["X"][:20]
        for a, b in [fitted, (theirs.transform(texts), ours.transform(texts))]:
            assert type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a.indptr, b.indptr)
            np.testing.assert_array_equal(a.indices, b.indices)
            np.testing.assert_allclose(a.data, b.data, rtol=1e-6)


def test_nbsvm_is_logistic_regression_on_nb_scaled_features_in_parallel(bbc):
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    from textclass.models.linear import NBSVM_TOKEN_PATTERN, build_nbsvm

    one = build_nbsvm(random_state=SEED).fit(bbc["X"], bbc["y"])
    two = build_nbsvm(random_state=SEED, n_jobs=2).fit(bbc["X"], bbc["y"])
    np.testing.assert_array_equal(one.predict_proba(bbc["new"]), two.predict_proba(bbc["new"]))
    head = one.named_steps["classifier"]
    assert head.coef_.shape == head.ratios_.shape == (5, len(one.named_steps["vectorizer"].vocabulary_))

    # The textbook recipe: binary 1-3-gram counts, r per class, LR on X * r, one-vs-rest, normalised.
    vec = CountVectorizer(ngram_range=(1, 3), binary=True, token_pattern=NBSVM_TOKEN_PATTERN, dtype=np.float32)
    X, new = vec.fit_transform(bbc["X"]), vec.transform(bbc["new"])
    y = np.asarray(bbc["y"])
    pos = []
    for label in head.classes_:
        p, q = X[y == label].sum(axis=0).A1 + 0.5, X[y != label].sum(axis=0).A1 + 0.5
        r = np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)
        lr = LogisticRegression(C=10.0, max_iter=1000, random_state=SEED).fit(X.multiply(r).tocsr(), y == label)
        pos.append(lr.predict_proba(new.multiply(r).tocsr())[:, 1])
    pos = np.column_stack(pos)
    np.testing.assert_allclose(one.predict_proba(bbc["new"]), pos / pos.sum(axis=1, keepdims=True), atol=5e-4)


# ---- bow-logreg's FastCountVectorizer: scikit-learn's matrices, faster ----

ODD_TEXTS = ["", "a b c", "Ünïcödé ÇA İstanbul ΣΑΣ ὈΔΥΣΣΕΎΣ", "tab\tsep__under_score x2 2x ٣٤ 日本語テキスト",
             "emoji 😀😀 ok", "a_b a-b don't", "nul\x00byte zz\x00zz", "ǅungla ﬁne ß straße"]


@pytest.mark.parametrize("kwargs", [{}, {"binary": True}, {"lowercase": False}, {"dtype": np.float32},
                                    {"token_pattern": r"(?u)\b\w+\b|[!?]"}, {"ngram_range": (1, 2)},
                                    {"stop_words": "english"}, {"max_features": 300}],
                         ids=lambda kw: ",".join(kw) or "defaults")
def test_fast_count_vectorizer_gives_scikit_learns_matrix(kwargs, uci, bbc, goemotions):
    from sklearn.feature_extraction.text import CountVectorizer

    from textclass.models.linear import FastCountVectorizer

    for d in (uci, bbc, goemotions):
        theirs = CountVectorizer(**kwargs).fit(d["X"])
        ours = FastCountVectorizer(**kwargs).fit(d["X"])
        assert ours.vocabulary_ == theirs.vocabulary_
        texts = d["new"] + ODD_TEXTS + d["X"][:50]
        a, b = theirs.transform(texts), ours.transform(texts)
        assert type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a.indptr, b.indptr)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.data, b.data)


def test_bow_logreg_uses_it_with_identical_probabilities(uci):
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from textclass.models.linear import FastCountVectorizer

    clf = TextClassifier("bow-logreg", random_state=SEED).fit(uci["X"], uci["y"])
    assert type(clf.model_.named_steps["vectorizer"]) is FastCountVectorizer
    plain = make_pipeline(CountVectorizer(), LogisticRegression(random_state=SEED)).fit(uci["X"], uci["y"])
    texts = uci["new"] + ODD_TEXTS
    np.testing.assert_array_equal(clf.predict_proba(texts), plain.predict_proba(texts))
    with pytest.raises(ValueError, match="string object received"):  # scikit-learn's own check
        clf.model_.named_steps["vectorizer"].transform("one string")


# ---- nbsvm's NgramCountVectorizer: scikit-learn's vocabulary and matrices, from NumPy ----


@pytest.mark.parametrize("kwargs", [{"ngram_range": (1, 3), "binary": True, "token_pattern": r"(?u)\b\w+\b|[!?]",
                                     "dtype": np.float32},
                                    {"ngram_range": (1, 2)}, {"ngram_range": (2, 3), "min_df": 2},
                                    {"ngram_range": (1, 3), "min_df": 0.01, "max_df": 0.5, "lowercase": False},
                                    {"ngram_range": (1, 2), "max_features": 50}],
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items() if k != "token_pattern"))
def test_ngram_count_vectorizer_gives_scikit_learns_vocabulary_and_matrix(kwargs, uci, bbc, goemotions):
    import skops.io as sio
    from sklearn.feature_extraction.text import CountVectorizer

    from textclass.models.linear import NgramCountVectorizer

    for d in (uci, bbc, goemotions):
        theirs, ours = CountVectorizer(**kwargs), NgramCountVectorizer(**kwargs)
        fitted = theirs.fit_transform(d["X"]), ours.fit_transform(d["X"])
        assert ours.vocabulary_ == theirs.vocabulary_
        texts = d["new"] + ODD_TEXTS + d["X"][:50]
        saved = sio.dumps(ours)
        loaded = sio.loads(saved, trusted=sio.get_untrusted_types(data=saved))  # lookup rebuilt, not saved
        for a, b in [fitted, (theirs.transform(texts), ours.transform(texts)),
                     (theirs.transform(texts), loaded.transform(texts))]:
            assert type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape
            assert (a != b).nnz == 0
