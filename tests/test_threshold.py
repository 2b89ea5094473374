"""threshold="auto": a decision threshold learned from held-out training texts."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import real_dataset
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.preprocessing import MultiLabelBinarizer

from textclass.errors import ParameterError
from textclass.estimator import TextClassifier
from textclass.evaluate import best_threshold
from textclass.store import load_model

GRID = np.round(np.linspace(0.01, 0.99, 99), 2)


@pytest.mark.parametrize("task", ["multilabel", "binary"])
def test_best_threshold_is_the_best_of_the_grid(task):
    rng = np.random.default_rng(0)
    truth = (rng.random((300, 4) if task == "multilabel" else 300) < 0.2).astype(int)
    proba = np.clip(0.35 * truth + rng.random(truth.shape) * 0.6, 0, 1)
    metric = (lambda t: f1_score(truth, proba > t, average="micro")) if task == "multilabel" \
        else (lambda t: accuracy_score(truth, proba > t))
    scores = np.array([metric(t) for t in GRID])
    chosen = best_threshold(truth, proba, task)
    assert metric(chosen) == pytest.approx(scores.max())
    assert chosen in GRID[scores == scores.max()]


def test_best_threshold_breaks_ties_towards_one_half():
    truth, proba = np.array([1, 0, 1, 0]), np.array([0.3, 0.2, 0.35, 0.1])
    assert best_threshold(truth, proba, "binary") == 0.29  # every t in [0.2, 0.3) is perfect
    assert best_threshold(truth[:, None], proba[:, None], "multilabel") == 0.29
    assert best_threshold(np.array([1, 0]), np.array([0.9, 0.1]), "binary") == 0.5


def weak_tags(n: int, seed: int) -> tuple[list[str], list[tuple[str, ...]]]:
    """Tag k is on 10% of texts; its marker word is on 60% of those and 8% of the others, so
    P(tag | marker) is about 0.45: a calibrated probability seldom passes 0.5, yet the marker
    finds most tagged texts."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        on = rng.random(3) < 0.1
        words = [f"w{i}" for i in rng.integers(0, 150, 8)]
        words += [f"marker{k}" for k in range(3) if rng.random() < (0.6 if on[k] else 0.08)]
        texts.append(" ".join(rng.permutation(words)))
        labels.append(tuple(f"tag{k}" for k in range(3) if on[k]))
    return texts, labels


def micro_f1(clf, texts, labels) -> float:
    mlb = MultiLabelBinarizer(classes=clf.classes_).fit([])
    return f1_score(mlb.transform(labels), mlb.transform(clf.predict(texts)), average="micro")


def test_auto_learns_a_lower_threshold_that_finds_rare_tags(tmp_path):
    X, y = weak_tags(900, seed=0)
    Xt, yt = weak_tags(900, seed=1)
    fixed = TextClassifier("bow-logreg", random_state=0).fit(X, y)
    auto = TextClassifier("bow-logreg", threshold="auto", random_state=0).fit(X, y)
    assert auto.get_params()["threshold"] == "auto" and fixed.threshold_ == 0.5
    assert 0.1 < auto.threshold_ < 0.5
    assert micro_f1(auto, Xt, yt) > micro_f1(fixed, Xt, yt) + 0.05  # 0.339 against 0.229
    proba = auto.predict_proba(Xt)  # the same model; only the decision moves
    np.testing.assert_array_equal(proba, fixed.predict_proba(Xt))
    on = [tuple(auto.classes_[row > auto.threshold_]) for row in proba]
    assert list(map(tuple, auto.predict(Xt))) == on
    loaded = load_model(auto.save(tmp_path / "m"))
    assert loaded.threshold_ == auto.threshold_ and loaded.threshold == "auto"
    assert list(map(tuple, loaded.predict(Xt))) == on


@pytest.mark.parametrize("n", [600, 6000])  # out-of-fold margins; one 20% hold-out (1,200 rows)
def test_calibration_keeps_probabilities_of_rows_its_svm_did_not_see(n):
    from textclass.models.linear import CalibratedLinearSVC

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(n, 2 * n)), rng.integers(0, 2, n)  # random labels: memorised, not learned
    svm = CalibratedLinearSVC(random_state=0).fit(X, y)
    rows = svm.held_out_
    assert len(rows) == svm.n_holdout_ == (n if n < 5000 else n // 5) and len(set(rows.tolist())) == len(rows)
    assert roc_auc_score(y[rows], svm.svm_.decision_function(X[rows])) > 0.99  # the final SVM saw them
    assert abs(roc_auc_score(y[rows], svm.held_out_proba_[:, 1]) - 0.5) < 0.1


@pytest.mark.parametrize("data", ["tags", "binary"])
def test_auto_on_tfidf_linear_reuses_its_calibration_and_fits_once(monkeypatch, data):
    X, y = weak_tags(900, seed=0)
    if data == "binary":
        y = ["tag0" in tags for tags in y]
    fits, real_fit = [], TextClassifier._fit_sklearn
    monkeypatch.setattr(TextClassifier, "_fit_sklearn", lambda self, *a: fits.append(1) or real_fit(self, *a))
    auto = TextClassifier("tfidf-linear", threshold="auto", random_state=0).fit(X, y)
    assert len(fits) == 1
    head = auto.model_[-1]
    heads = head.estimators_ if data == "tags" else [head]
    codes = auto.codec_.transform(y)
    truth = np.concatenate([(codes[:, j] if codes.ndim == 2 else codes)[h.held_out_] for j, h in enumerate(heads)])
    proba = np.concatenate([h.held_out_proba_[:, 1] for h in heads])
    assert auto.threshold_ == best_threshold(truth, proba, auto.task_)
    if data == "tags":
        assert auto.threshold_ < 0.5
        Xt, yt = weak_tags(900, seed=1)
        assert micro_f1(auto, Xt, yt) > micro_f1(TextClassifier("tfidf-linear", random_state=0).fit(X, y), Xt, yt) + 0.05


@pytest.mark.parametrize("model", ["bow-logreg", "tfidf-linear"])  # its own splits; the calibration's
def test_auto_is_seeded(model):
    X, y = weak_tags(300, seed=2)
    runs = [TextClassifier(model, threshold="auto", random_state=s).fit(X, y).threshold_ for s in (1, 1)]
    assert runs[0] == runs[1]


def test_auto_on_multiclass_keeps_the_argmax_and_fits_once(monkeypatch):
    texts = [f"{w} {i}" for i in range(10) for w in ("red", "green", "blue")]
    labels = [w for _ in range(10) for w in ("red", "green", "blue")]
    fits, real_fit = [], TextClassifier._fit_sklearn
    monkeypatch.setattr(TextClassifier, "_fit_sklearn", lambda self, *a: fits.append(1) or real_fit(self, *a))
    clf = TextClassifier("bow-logreg", threshold="auto").fit(texts, labels)
    assert clf.threshold_ == 0.5 and len(fits) == 1
    assert clf.predict(["red 99"]).tolist() == ["red"]


def test_auto_needs_held_out_texts_of_every_label():
    with pytest.raises(ParameterError, match="threshold='auto' needs at least 3 texts of each label"):
        TextClassifier("bow-logreg", threshold="auto").fit(["good", "fine", "nice", "bad", "awful"], [1, 1, 1, 0, 0])


def test_threshold_must_be_a_probability_or_auto():
    with pytest.raises(ParameterError, match=r"threshold must be a number in \[0, 1\] or 'auto', got 'high'"):
        TextClassifier("bow-logreg", threshold="high").fit(["good", "bad"], [1, 0])


def test_auto_on_goemotions_beats_one_half_on_the_dev_comments():
    train = real_dataset("goemotions", split="train").iloc[:6000]
    dev = real_dataset("goemotions", split="dev").iloc[:2000]
    X, y, Xd, yd = train.text.tolist(), list(train.label), dev.text.tolist(), list(dev.label)
    fixed = TextClassifier("bow-logreg", random_state=0).fit(X, y)
    auto = TextClassifier("bow-logreg", threshold="auto", random_state=0).fit(X, y)  # a 20% hold-out
    assert auto.threshold_ < 0.5
    assert micro_f1(auto, Xd, yd) > micro_f1(fixed, Xd, yd) + 0.03
