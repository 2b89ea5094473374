"""Pooled Keras models: a reused model trains exactly as a fresh one, and only dead estimators' models are reused."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
from test_estimator import CNN, corpus

from textclass.estimator import TextClassifier
from textclass.models.pool import reusing_models, vocabulary_rows

CNN = {**CNN, "maxlen": 24}
GRU = dict(embedding_dim=8, units=4, dropout=0.3, maxlen=24, epochs=2, batch_size=8, random_state=0)


def test_vocabulary_rows_round_up_to_few_shared_sizes():
    rows = {n: vocabulary_rows(n) for n in range(1, 20_000)}
    assert all(n <= r and (r == 64 or r < 2 * n) for n, r in rows.items())
    assert {vocabulary_rows(n) for n in range(1400, 1801)} == {2048}  # UCI's folds and sources: one shape
    assert len(set(rows.values())) == 10  # 64, 128, ..., 32,768


def _fit(params, X, y, **extra):
    return TextClassifier("cnn" if "num_filters" in params else "gru", **params, **extra).fit(X, y)


@pytest.mark.parametrize("widths", [None, [8, 24]], ids=["one-width", "length-buckets"])
@pytest.mark.parametrize("params", [CNN, GRU], ids=["cnn", "gru-dropout"])
def test_reused_model_trains_as_a_fresh_one(params, widths, monkeypatch):
    if widths:  # long corpora train on several widths, in batches that shuffle themselves
        monkeypatch.setattr("textclass.models.batches.choose_widths", lambda *a, **k: np.asarray(widths))
    X1, y1 = corpus(60, seed=1)
    X2, y2 = corpus(50, seed=2)  # another fold: another vocabulary, the same rounded shape
    options = dict(validation_split=0.2, early_stopping=True, patience=1)
    fresh = _fit(params, X2, y2, **options)
    with reusing_models():
        first = _fit(params, X1, y1, **options)
        model = weakref.ref(first.model_)
        del first
        gc.collect()
        second = _fit(params, X2, y2, **options)
        assert second.model_ is model()  # the dead estimator's compiled model, taken again
    assert second.history_ == fresh.history_
    for a, b in zip(second.model_.get_weights(), fresh.model_.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(second.predict_proba(X1), fresh.predict_proba(X1))


def test_a_living_estimators_model_is_never_shared():
    X, y = corpus(60, seed=1)
    with reusing_models():
        kept = _fit(CNN, X, y)
        before = kept.predict_proba(X)
        other = _fit(CNN, *corpus(50, seed=2))
        assert other.model_ is not kept.model_
        np.testing.assert_array_equal(kept.predict_proba(X), before)
        refit = kept.model_
        kept.fit(*corpus(50, seed=3))  # a refit hands its own old model back, and takes it again
        assert kept.model_ is refit


def test_no_pooling_outside_the_scope():
    X, y = corpus(60, seed=1)
    outside = _fit(CNN, X, y)
    model = weakref.ref(outside.model_)
    del outside
    gc.collect()
    assert model() is None  # nothing kept it

    with reusing_models():
        inside = _fit(CNN, X, y)
    model = weakref.ref(inside.model_)
    del inside  # dies after the scope closed: its model is not pooled
    gc.collect()
    with reusing_models():
        assert _fit(CNN, X, y).model_ is not model()


def test_summary_names_the_rounded_rows():
    X, y = corpus(60, seed=1)
    clf = _fit(CNN, X, y)
    ids = clf.preprocessor_.input_dim
    assert f"embedding rows: {vocabulary_rows(ids)} for {ids} token ids" in clf.summary()
    assert clf.model_.get_layer("embedding").input_dim == vocabulary_rows(ids)
