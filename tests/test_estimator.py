"""TextClassifier: the scikit-learn contract, the three tasks, training options, fast prediction."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import RandomizedSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import estimator_checks as ec

from textclass.errors import DataError, ParameterError
from textclass.estimator import TextClassifier

# Tiny Keras settings: tests check behaviour, not accuracy.
CNN = dict(embedding_dim=8, num_filters=4, kernel_size=3, maxlen=20, epochs=2, batch_size=8, random_state=0)

POS = ["good", "great", "lovely", "tasty", "friendly", "excellent"]
NEG = ["bad", "awful", "bland", "rude", "slow", "terrible"]
FILLER = ["the food", "our waiter", "this place", "the service was", "really", "so", "and the room"]


def corpus(n: int = 60, seed: int = 0) -> tuple[list[str], list[int]]:
    """Short synthetic reviews of varied length; label 1 iff built from positive words."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        words = POS if label else NEG
        parts = [rng.choice(FILLER) + " " + rng.choice(words) for _ in range(rng.integers(1, 5))]
        texts.append(" ".join(parts))
        labels.append(label)
    return texts, labels


def topics(labels: list[int]) -> list[str]:
    return [["sport", "music", "food"][i % 3] for i in range(len(labels))]


def tags(labels: list[int]) -> list[tuple[str, ...]]:
    return [("pos", "short") if y and i % 3 == 0 else ("pos",) if y else ("neg",) for i, y in enumerate(labels)]


@pytest.mark.parametrize("model,params", [("bow-logreg", {}), ("cnn", CNN)])
@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_three_tasks_predict_users_labels(model, params, task):
    X, y = corpus()
    y = {"binary": y, "multiclass": topics(y), "multilabel": tags(y)}[task]
    clf = TextClassifier(model, **params).fit(X, y)
    assert clf.task_ == task
    proba = clf.predict_proba(X[:7])
    pred = clf.predict(X[:7])
    if task == "multilabel":
        assert list(clf.classes_) == ["neg", "pos", "short"]
        assert proba.shape == (7, 3)
        assert all(isinstance(p, tuple) and set(p) <= {"neg", "pos", "short"} for p in pred)
        assert 0.0 <= clf.score(X, y) <= 1.0
    else:
        assert proba.shape == (7, len(set(y)))
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
        assert set(pred) <= set(y)
        np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    if model == "bow-logreg" and task == "binary":
        assert clf.score(X, y) == 1.0  # separable by a word
    assert isinstance(clf.summary(), str) and clf.model in clf.summary()


def test_binary_proba_columns_are_one_minus_p_and_p():
    X, y = corpus()
    clf = TextClassifier("cnn", **CNN).fit(X, ["no" if v == 0 else "yes" for v in y])
    proba = clf.predict_proba(X)
    raw = clf.model_.predict(clf.preprocessor_.transform(X), verbose=0)[:, 0]
    np.testing.assert_allclose(proba[:, 1], raw, atol=1e-6)
    np.testing.assert_allclose(proba[:, 0], 1 - raw, atol=1e-6)
    assert list(clf.classes_) == ["no", "yes"]
    assert clf.summary().count("Conv1D") == 1


def test_accepts_series_and_arrays_and_rejects_non_text():
    import pandas as pd

    X, y = corpus()
    clf = TextClassifier().fit(pd.Series(X), pd.Series(y))
    np.testing.assert_array_equal(clf.predict(np.array(X)), clf.predict(X))
    assert clf.predict_proba([]).shape == (0, 2)
    with pytest.raises(DataError, match="single string"):
        clf.predict("so good")
    with pytest.raises(DataError, match="row 1"):
        TextClassifier().fit(["good", None, "bad"], [1, 0, 0])
    with pytest.raises(DataError, match="3 texts but 2 labels"):
        TextClassifier().fit(["good", "fine", "bad"], [1, 0])


def test_hyperparameters_are_params_clone_and_set_params():
    clf = TextClassifier("cnn", epochs=3, num_filters=16, kernel_size=7)
    params = clf.get_params()
    assert params["num_filters"] == 16 and params["kernel_size"] == 7 and params["epochs"] == 3
    twin = clone(clf)
    assert twin.get_params() == params and twin is not clf
    twin.set_params(num_filters=32, embedding_dim=50, learning_rate=0.01)
    assert twin.num_filters == 32 and twin.embedding_dim == 50 and twin.learning_rate == 0.01
    assert clf.num_filters == 16  # the original is untouched
    assert "num_filters=16" in repr(clf)


@pytest.mark.parametrize("params,match", [
    ({"num_filter": 8}, r"no hyperparameter 'num_filter' \(did you mean 'num_filters'\?\); allowed: .*kernel_size"),
    ({"epochs": -1}, "epochs must be None or an integer >= 1"),
    ({"validation_split": 1.0}, r"validation_split must be a number in \[0, 1\)"),
    ({"validation_split": -0.1}, "validation_split"),
    ({"patience": -2}, "patience"),
    ({"optimizer": "adamm"}, "optimizer"),
    ({"class_weight": "balance"}, "class_weight"),
])
def test_bad_parameters_raise_at_fit(params, match):
    X, y = corpus(20)
    clf = TextClassifier("cnn", **params)  # __init__ only stores
    with pytest.raises(ParameterError, match=match):
        clf.fit(X, y)


def test_unknown_model_and_reserved_names():
    with pytest.raises(ParameterError, match="did you mean 'cnn'"):
        TextClassifier("cnnn").fit(*corpus(20))
    with pytest.raises(ParameterError, match="cannot be a hyperparameter"):
        TextClassifier(fit=1)


def test_cross_val_score_and_pipeline():
    X, y = corpus()
    scores = cross_val_score(TextClassifier("bow-logreg"), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.8
    keras_scores = cross_val_score(TextClassifier("cnn", **CNN), X, y, cv=2)
    assert keras_scores.shape == (2,)
    pipe = make_pipeline(FunctionTransformer(lambda t: [s.upper() for s in t]), TextClassifier())
    assert pipe.fit(X, y).score(X, y) == 1.0  # CountVectorizer lower-cases again


def test_randomized_search_cv_tutorial_experiment_8_shape():
    X, y = corpus()
    search = RandomizedSearchCV(
        TextClassifier("cnn", **{**CNN, "epochs": 1}),
        param_distributions={"num_filters": [2, 4], "kernel_size": [3, 5], "embedding_dim": [8]},
        n_iter=2, cv=2, random_state=0)  # the tutorial: n_iter=5, cv=4
    search.fit(X, y)
    assert set(search.best_params_) == {"num_filters", "kernel_size", "embedding_dim"}
    assert search.best_estimator_.model_.count_params() > 0
    assert search.best_estimator_.num_filters == search.best_params_["num_filters"]


@pytest.mark.parametrize("start", [0, 3])
def test_reproduce_search_from_any_start_picks_as_randomized_search_cv(start):
    """reproduce cross-validates experiment 8's candidates from a per-source start (two workers then
    compile different programs); its pick, CV and test score are RandomizedSearchCV's own (ties:
    the next test)."""
    from textclass.reproduce import tutorial_search

    X, y = corpus(40)
    params = {k: v for k, v in CNN.items() if k not in ("num_filters", "kernel_size", "random_state")}
    params["epochs"] = 1
    space = {"num_filters": [2, 4, 8], "kernel_size": [2, 3, 5]}
    ref = RandomizedSearchCV(TextClassifier("cnn", random_state=0, **params), space, n_iter=4, cv=2,
                             random_state=0).fit(np.asarray(X, dtype=object), np.asarray(y))
    got = tutorial_search(params, space, 4, 2, 0, start, X, y, X[:10], y[:10])
    assert got["best_params"] == ref.best_params_ and list(got["best_params"]) == list(ref.best_params_)
    assert got["cv"] == ref.best_score_
    assert got["test"] == ref.score(X[:10], y[:10])


def test_reproduce_search_pick_breaks_ties_by_draw_order():
    from textclass.reproduce import first_best

    # rows cross-validated from the third drawn candidate on: drawn order 2, 3, 0, 1
    assert first_best([0.7, 0.8, 0.8, 0.6], [2, 3, 0, 1]) == 2  # tie 0.8: drawn 0 beats drawn 3
    assert first_best([0.9, float("nan"), 0.8, 0.9], [2, 3, 0, 1]) == 3  # drawn 1 beats drawn 2; NaN last
    assert first_best([float("nan"), 0.1], [0, 1]) == 1


def test_validation_split_is_shuffled_and_stratified():
    X, _ = corpus(80)
    y = [0] * 60 + [1] * 20  # sorted by label: Keras' "last rows" would be all 1s
    clf = TextClassifier("cnn", validation_split=0.25, **CNN)
    train_idx, val_idx = clf._validation_split(np.array(y))
    assert len(val_idx) == 20 and len(set(train_idx) | set(val_idx)) == 80
    assert sum(y[i] for i in val_idx) == 5  # the 25% minority share, not 20 of 20
    assert set(val_idx) != set(range(60, 80))
    clf.fit(X, y)
    assert set(clf.history_) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == CNN["epochs"] for v in clf.history_.values())


def test_early_stopping_restores_best_weights():
    X, y = corpus(80)
    y = [v if i % 4 else 1 - v for i, v in enumerate(y)]  # label noise: validation loss turns up
    params = {**CNN, "epochs": 40, "embedding_dim": 16, "num_filters": 16}
    clf = TextClassifier("cnn", validation_split=0.25, early_stopping=True, patience=2,
                         learning_rate=0.05, **params).fit(X, y)
    val_loss = clf.history_["val_loss"]
    assert len(val_loss) < 40
    _, val_idx = clf._validation_split(np.array(y))
    x_val = clf.preprocessor_.transform([X[i] for i in val_idx])
    loss = clf.model_.evaluate(x_val, np.array(y)[val_idx], verbose=0)[0]
    assert loss == pytest.approx(min(val_loss), rel=1e-4)
    assert min(val_loss) < val_loss[-1]


def test_class_weight_balanced_changes_the_model():
    X, y = corpus(80)
    y = [1 if i % 8 == 1 else 0 for i in range(80)]  # 10 positives, 70 negatives, mostly noise
    for model, params in (("bow-logreg", {}), ("cnn", {**CNN, "epochs": 8})):
        plain = TextClassifier(model, **params).fit(X, y).predict_proba(X)[:, 1]
        balanced = TextClassifier(model, class_weight="balanced", **params).fit(X, y).predict_proba(X)[:, 1]
        assert balanced.mean() > plain.mean() + 0.02, model  # the minority class gains weight


def test_same_seed_same_probabilities():
    X, y = corpus()
    a = TextClassifier("cnn", validation_split=0.2, **CNN).fit(X, y).predict_proba(X)
    b = TextClassifier("cnn", validation_split=0.2, **CNN).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    c = TextClassifier("cnn", validation_split=0.2, **{**CNN, "random_state": 1}).fit(X, y).predict_proba(X)
    assert not np.array_equal(a, c)


def test_callbacks_fit_param_sees_every_epoch():
    import keras

    epochs = []
    X, y = corpus()
    cb = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: epochs.append(epoch))
    TextClassifier("cnn", **CNN).fit(X, y, callbacks=[cb])
    assert epochs == [0, 1]


def test_trimmed_prediction_equals_full_width():
    from textclass.models import get_model

    assert get_model("cnn").trim is not None
    X, y = corpus(60)
    long = " ".join(["the food was good"] * 10)  # 40 tokens > maxlen 20: truncated
    texts = X + [long, "good", "", "unknownword", long + " bad"]
    clf = TextClassifier("cnn", **CNN).fit(X, y)
    full = clf.model_.predict(clf.preprocessor_.transform(texts), verbose=0)[:, 0]
    np.testing.assert_allclose(clf.predict_proba(texts)[:, 1], full, atol=1e-6)
    # pre-padding keeps the text at the end: trimming must keep that side
    pre = TextClassifier("cnn", padding="pre", truncating="pre", **CNN).fit(X, y)
    full = pre.model_.predict(pre.preprocessor_.transform(texts), verbose=0)[:, 0]
    np.testing.assert_allclose(pre.predict_proba(texts)[:, 1], full, atol=1e-6)


# scikit-learn's common checks feed numeric 2-D arrays, which a text classifier rejects by design
# (and its tags say so: input_tags.string=True, two_d_array=False, so check_estimator yields no
# checks at all). We run every API check that needs no numeric fit, then the text-based
# equivalents of the fit-time ones below. Skipped: check_fit_score_takes_y,
# check_estimators_overwrite_params, check_dont_overwrite_parameters,
# check_estimators_fit_returns_self, check_estimators_unfitted, check_readonly_memmap_input,
# check_n_features_in_after_fitting, check_positive_only_tag_during_fit and all of
# _yield_checks (dtypes, NaN/inf, sample weights, pickling - we never pickle) - numeric input.
API_CHECKS = [
    ec.check_estimator_cloneable,
    ec.check_estimator_tags_renamed,
    ec.check_valid_tag_types,
    ec.check_estimator_repr,
    ec.check_no_attributes_set_in_init,
    ec.check_do_not_raise_errors_in_init_or_set_params,
    ec.check_mixin_order,
    ec.check_get_params_invariance,
    ec.check_set_params,
    ec.check_parameters_default_constructible,
]


@pytest.mark.parametrize("estimator", [TextClassifier(), TextClassifier("cnn", **CNN)],
                         ids=["bow-logreg", "cnn"])
@pytest.mark.parametrize("check", API_CHECKS, ids=lambda c: c.__name__)
def test_sklearn_api_checks(estimator, check):
    if check is ec.check_no_attributes_set_in_init and estimator.get_params() != TextClassifier().get_params():
        pytest.skip("the check knows only __init__'s signature; **params are attributes by design")
    check(type(estimator).__name__, estimator)


@pytest.mark.parametrize("model,params", [("bow-logreg", {}), ("cnn", CNN)])
def test_text_equivalents_of_fit_checks(model, params):
    from sklearn.exceptions import NotFittedError

    X, y = corpus()
    clf = TextClassifier(model, **params)
    with pytest.raises(NotFittedError):
        clf.predict(X)
    before = clf.get_params()
    public_before = {k for k in vars(clf) if not k.startswith("_")}
    assert clf.fit(X, y) is clf  # fit returns self
    assert clf.get_params() == before  # fit does not overwrite parameters
    added = {k for k in vars(clf) if not k.startswith("_")} - public_before
    assert added and all(k.endswith("_") for k in added)  # only fitted attributes appear
    refit = clone(clf).fit(X, y)
    np.testing.assert_array_equal(refit.predict(X), clf.predict(X))


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_cnn_predictor_gives_keras_outputs(task):
    from textclass import estimator

    X, y = corpus()
    clf = TextClassifier("cnn", **CNN).fit(X, y if task == "binary" else topics(y))
    fast = clf.predict_proba(X)
    assert estimator._PREDICTORS[clf.model_] is not None  # the folded convolution ran
    estimator._PREDICTORS[clf.model_] = None  # Keras' own forward pass
    np.testing.assert_allclose(fast, clf.predict_proba(X), atol=1e-5)
    assert fast.std(axis=0).max() > 1e-3  # outputs that vary with the text


def test_fitted_cnns_share_one_compiled_predictor():
    """The folded forward pass takes the weights as arguments: a second fitted model of the same
    shapes (a CV fold, a search trial) runs the program the first one compiled."""
    from textclass.models.keras import _folded_forward

    X, y = corpus()
    first = TextClassifier("cnn", **CNN).fit(X, y)
    first.predict_proba(X)
    compiled = _folded_forward()._cache_size()
    second = TextClassifier("cnn", **{**CNN, "random_state": 1}).fit(X, [1 - v for v in y])
    out = second.predict_proba(X)
    assert _folded_forward()._cache_size() == compiled
    assert not np.allclose(out, first.predict_proba(X), atol=1e-3)  # its own weights, not the first's


def test_refit_drops_the_stale_predictor():
    from textclass.models.pool import reusing_models

    X, y = corpus()
    with reusing_models():
        clf = TextClassifier("cnn", **CNN).fit(X, y)
        clf.predict_proba(X)  # builds the predictor from these weights
        model = clf.model_
        clf.fit(X, [1 - v for v in y])  # the same (pooled) Keras model, new weights
        assert clf.model_ is model
        keras_out = np.asarray(model.predict_on_batch(clf.preprocessor_.transform(X)))[:, 0]
        np.testing.assert_allclose(clf.predict_proba(X)[:, 1], keras_out, atol=1e-5)
