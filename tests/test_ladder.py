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
        on = proba > clf.threshold
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


# ---- tfidf-linear on tiny data: calibration folds follow the data ----


@pytest.mark.parametrize("n_per_class", [2, 3, 4])
def test_tfidf_linear_calibrates_on_few_examples_per_class(uci, n_per_class):
    pos = [t for t, y in zip(uci["X"], uci["y"]) if y == 1][:n_per_class]
    neg = [t for t, y in zip(uci["X"], uci["y"]) if y == 0][:n_per_class + 3]
    clf = TextClassifier("tfidf-linear", random_state=SEED).fit(pos + neg, [1] * len(pos) + [0] * len(neg))
    assert clf.model_.named_steps["classifier"].n_folds_ == n_per_class
    proba = clf.predict_proba(uci["new"])
    assert proba.shape == (len(uci["new"]), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_tfidf_linear_with_enough_data_is_sklearns_five_fold_calibration(uci):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import LinearSVC

    from textclass.models.linear import build_tfidf_linear

    ours = build_tfidf_linear(random_state=SEED).fit(uci["X"], uci["y"])
    assert ours.named_steps["classifier"].n_folds_ == 5
    plain = build_tfidf_linear(random_state=SEED).set_params(
        classifier=CalibratedClassifierCV(LinearSVC(random_state=SEED), method="sigmoid", cv=5, ensemble=False)
    ).fit(uci["X"], uci["y"])
    np.testing.assert_array_equal(ours.predict_proba(uci["new"]), plain.predict_proba(uci["new"]))


def test_tfidf_linear_single_example_class_is_a_data_error_naming_it(bbc):
    from textclass.models.linear import build_tfidf_linear

    X = bbc["X"][:30] + ["a lone article about the weather"]
    y = bbc["y"][:30] + ["weather"]
    with pytest.raises(DataError, match=r"class 'weather' has only 1 example.*at least 2"):
        build_tfidf_linear().fit(X, y)
    with pytest.raises(DataError, match="only 1 example"):
        TextClassifier("tfidf-linear").fit(X, y)


def test_tfidf_linear_multilabel_tag_in_one_row_is_a_data_error(goemotions):
    X = goemotions["X"][:40]
    y = [tags + ("rare",) if i == 0 else tags for i, tags in enumerate(goemotions["y"][:40])]
    with pytest.raises(DataError, match="only 1 example.*every tag present in at least 2 rows"):
        TextClassifier("tfidf-linear").fit(X, y)


def test_tfidf_linear_cv_is_checked_at_fit():
    from textclass.models.linear import CalibratedLinearSVC

    est = CalibratedLinearSVC(cv=1)  # __init__ stores, fit validates (scikit-learn's rule)
    assert est.get_params()["cv"] == 1
    with pytest.raises(ParameterError, match="cv must be an integer >= 2"):
        est.fit(np.eye(4), [0, 0, 1, 1])


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
