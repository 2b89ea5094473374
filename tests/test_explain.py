"""Explanations: exact for linear models, occlusion for the rest, on models trained on UCI."""

from __future__ import annotations

import json
from collections import Counter

import jsonschema
import numpy as np
import pytest
from conftest import real_dataset
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from scipy.special import expit, softmax
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

from textclass.cli import main
from textclass.errors import DataError, ParameterError
from textclass.estimator import TextClassifier
from textclass.explain import explain, render, word_spans
from textclass.models.decompose import decompose, feature_spans
from textclass.models.linear import NBSVM_TOKEN_PATTERN

LINEAR = ["bow-logreg", "nbsvm", "tfidf-linear"]
# Small and seeded, yet it learns the sentiment words of UCI.
CNN = dict(embedding_dim=16, num_filters=16, kernel_size=3, dense_units=8, maxlen=40, epochs=3, batch_size=32,
           random_state=0)
SENTENCES = {"great": "The pasta was great.", "love": "I love this phone.",
             "awful": "The service was awful.", "worst": "This is the worst movie."}


@pytest.fixture(scope="module")
def uci():
    return real_dataset("uci-sentiment")


@pytest.fixture(scope="module")
def fitted(uci):
    """Every model of the sentiment tests, trained on all 3000 UCI sentences."""
    texts, y = uci.text.tolist(), uci.label.tolist()
    models = {name: TextClassifier(name, random_state=0).fit(texts, y) for name in LINEAR}
    models["cnn"] = TextClassifier("cnn", **CNN).fit(texts, y)
    return models


def small(uci, task: str):
    """450 UCI sentences (150 per source): labels are the source (multi-class), or tags
    (source, and "positive" for positive sentences) for multi-label."""
    part = uci.groupby("source").head(150)
    if task == "multiclass":
        return part.text.tolist(), part.source.tolist()
    return part.text.tolist(), [(s, "positive") if y else (s,) for s, y in zip(part.source, part.label)]


def check_exact(explanations):
    for e in explanations:
        assert e.method == "exact"
        assert abs(sum(w.weight for w in e.words) + e.base - e.score) < 1e-6
        assert all(e.text[w.start:w.end] == w.word for w in e.words)


def all_scores(clf, texts):
    """Column k: each text's score for class k, from explanations of that class."""
    return np.column_stack([[e.score for e in clf.explain(texts, label=c)] for c in clf.classes_])


# ---- words and feature spans ---------------------------------------------------------------

TEXTS = st.text(st.sampled_from(list("abcAB İΣé'’_-!?.,\t\n12")), max_size=40) | st.text(max_size=30)


@settings(deadline=None)
@given(TEXTS)
def test_words_cover_every_character_but_whitespace_once(text):
    covered = np.zeros(len(text), dtype=int)
    for word, start, end in word_spans(text):
        assert text[start:end] == word and word
        covered[start:end] += 1
    assert all(covered[i] == (0 if c.isspace() else 1) for i, c in enumerate(text))


VECTORIZERS = [
    CountVectorizer(),
    CountVectorizer(ngram_range=(1, 3), binary=True, token_pattern=NBSVM_TOKEN_PATTERN),
    CountVectorizer(ngram_range=(2, 3), stop_words="english", lowercase=False),
    CountVectorizer(token_pattern=r"(\w+)!"),
    TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 5)),
]


@settings(max_examples=60, deadline=None)
@given(TEXTS, st.sampled_from(range(len(VECTORIZERS))))
def test_feature_spans_find_what_scikit_learn_analyzers_count(text, which):
    vec = VECTORIZERS[which]
    try:
        vec.fit([text, "the a b"])
    except ValueError:  # empty vocabulary
        return
    columns, piece_of, starts, ends = feature_spans(vec).locate(text)
    expected = Counter(vec.vocabulary_[g] for g in vec.build_analyzer()(text) if g in vec.vocabulary_)
    assert Counter(columns) == expected
    names = vec.get_feature_names_out()
    for occurrence, column in enumerate(columns):
        pieces = [(s, e) for o, s, e in zip(piece_of, starts, ends) if o == occurrence]
        assert all(0 <= s < e <= len(text) for s, e in pieces)
        if len(text.lower()) == len(text) and vec.analyzer == "word":  # the pieces are the n-gram's tokens
            cut = [text[s:e].lower() if vec.lowercase else text[s:e] for s, e in pieces]
            assert " ".join(cut) == names[column]


def test_offsets_map_back_through_lower_casing_that_changes_length():
    # "İ".lower() is "i" + a combining dot, one character longer; the dot is not a word character.
    text = "İİstanbul is big"
    vec = CountVectorizer().fit([text])
    columns, _, starts, ends = feature_spans(vec).locate(text)
    spans = {vec.get_feature_names_out()[c]: text[s:e] for c, s, e in zip(columns, starts, ends)}
    assert spans == {"stanbul": "stanbul", "is": "is", "big": "big"}


# ---- exact: linear models ------------------------------------------------------------------

@pytest.mark.parametrize("name", [*LINEAR, "cnn"])
def test_sentiment_words_push_the_right_way(fitted, name):
    clf = fitted[name]
    explanations = clf.explain(list(SENTENCES.values()), label=1)
    for (word, text), e in zip(SENTENCES.items(), explanations):
        weights = {w.word: w.weight for w in e.words}
        assert e.label == 1 and e.text == text
        assert (weights[word] > 0) == (word in ("great", "love")), (name, text, weights)
        assert abs(weights[word]) == max(map(abs, weights.values())), (name, text, weights)  # the word that decides
        assert all(text[w.start:w.end] == w.word for w in e.words)
    by_default = clf.explain(list(SENTENCES.values()))
    assert [e.label for e in by_default] == [1, 1, 0, 0] == [e.predicted for e in by_default]
    # Explaining the other class of a binary model flips every sign.
    for e1, e0 in zip(explanations, clf.explain(list(SENTENCES.values()), label=0)):
        assert e0.score == pytest.approx(-e1.score, abs=1e-5) and e0.base == pytest.approx(-e1.base, abs=1e-5)
        assert e0.probability == pytest.approx(1 - e1.probability, abs=1e-6)


@pytest.mark.parametrize("name", LINEAR)
def test_exact_sum_is_the_models_logit_on_every_uci_sentence(fitted, uci, name):
    clf = fitted[name]
    texts = uci.text.tolist()
    explanations = clf.explain(texts)
    check_exact(explanations)
    proba = clf.predict_proba(texts)
    k = np.array([list(clf.classes_).index(e.label) for e in explanations])
    p = proba[np.arange(len(texts)), k]
    np.testing.assert_allclose([e.probability for e in explanations], p)
    sure = (p > 1e-7) & (p < 1 - 1e-7)  # where log-odds from probabilities keep 1e-6
    np.testing.assert_allclose(np.array([e.score for e in explanations])[sure], np.log(p / (1 - p))[sure], atol=1e-6)


@pytest.mark.parametrize("name", LINEAR)
@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_exact_sum_and_probabilities_for_several_classes(uci, name, task):
    texts, y = small(uci, task)
    clf = TextClassifier(name, C=0.3, random_state=0).fit(texts, y)  # C: fast to fit, as exact
    sample = texts[::10]
    check_exact(clf.explain(sample))
    scores, proba = all_scores(clf, sample), clf.predict_proba(sample)
    if task == "multilabel" or name != "bow-logreg":  # one binary model per class/tag
        rebuilt = expit(scores)
        if task == "multiclass":
            rebuilt /= rebuilt.sum(axis=1, keepdims=True)
    else:  # softmax: the centred logits
        rebuilt = softmax(scores, axis=1)
        np.testing.assert_allclose(scores.sum(axis=1), 0, atol=1e-9)
    np.testing.assert_allclose(rebuilt, proba, atol=1e-9)
    default = clf.explain(sample)
    if task == "multilabel":
        assert [e.label for e in default] == list(clf.classes_[proba.argmax(axis=1)])  # the most probable tag
        assert all(isinstance(e.predicted, tuple) for e in default)
    else:
        assert [e.label for e in default] == [e.predicted for e in default]


def test_temperature_scaled_svm_is_linear_too(uci):
    texts, y = small(uci, "multiclass")
    for labels in (y, [s == "yelp" for s in y]):
        svm = CalibratedClassifierCV(LinearSVC(), method="temperature", cv=3, ensemble=False)
        pipe = make_pipeline(CountVectorizer(), svm)
        d = decompose(pipe.fit(texts, labels))
        x = d.features(texts[:50])
        scores = x @ d.coef.T + d.intercept
        np.testing.assert_allclose(softmax(scores, axis=1) if len(set(labels)) > 2 else
                                   np.column_stack([1 - expit(scores[:, 1]), expit(scores[:, 1])]),
                                   pipe.predict_proba(texts[:50]), atol=1e-9)


def test_isotonic_calibration_is_not_linear(uci):
    texts, y = small(uci, "multiclass")
    pipe = make_pipeline(CountVectorizer(), CalibratedClassifierCV(LinearSVC(), method="isotonic", cv=3))
    assert decompose(pipe.fit(texts, y)) is None


# ---- occlusion -----------------------------------------------------------------------------

class Predictor:
    """Only the predictor protocol, as an exported model has it."""

    def __init__(self, clf):
        self.clf, self.model, self.classes_, self.task_ = clf, clf.model, clf.classes_, clf.task_
        self.threshold_, self.hyperparameters_ = clf.threshold_, clf.hyperparameters_
        self.calls = 0

    def predict_proba(self, texts):
        self.calls += 1
        return self.clf.predict_proba(texts)

    def labels_from_proba(self, proba):
        return self.clf.labels_from_proba(proba)

    def predict(self, texts):
        return self.clf.predict(texts)


def test_occlusion_of_a_unigram_model_equals_its_exact_weights(fitted):
    clf = fitted["bow-logreg"]
    texts = ["The food was great and I love it!", "Awful, the worst service.", "meh"]
    predictor = Predictor(clf)
    occluded, exact = explain(predictor, texts), clf.explain(texts)
    assert predictor.calls == 1  # every variant of every text in one batched call
    for o, e in zip(occluded, exact):
        assert o.method == "occlusion" and (o.label, o.predicted, o.probability) == (e.label, e.predicted, e.probability)
        assert o.score == pytest.approx(e.score, abs=1e-9) and o.base == pytest.approx(e.base, abs=1e-9)
        np.testing.assert_allclose([w.weight for w in o.words], [w.weight for w in e.words], atol=1e-9)


def test_keras_occlusion_scores_the_variants_in_one_call(fitted, monkeypatch):
    clf = fitted["cnn"]
    calls = []
    real = TextClassifier.predict_proba
    monkeypatch.setattr(TextClassifier, "predict_proba", lambda self, X: calls.append(len(X)) or real(self, X))
    text = "The food was great but the service was slow"
    (e,) = clf.explain([text])
    assert calls == [1 + 1 + 9]  # the empty text, the text, one variant per word
    monkeypatch.undo()
    assert e.method == "occlusion"
    without = [text.replace("great ", ""), text.replace(" slow", ""), ""]
    p = clf.predict_proba(without)[:, 1].astype(np.float64)
    logit = np.log(p / (1 - p)) * (1 if e.label == 1 else -1)
    weights = {w.word: w.weight for w in e.words}
    np.testing.assert_allclose([e.score - weights["great"], e.score - weights["slow"], e.base], logit, atol=1e-3)
    assert e.probability == pytest.approx(clf.predict_proba([text])[0, list(clf.classes_).index(e.label)], abs=1e-5)


def test_keras_multiclass_scores_are_centred_logits(uci):
    texts, y = small(uci, "multiclass")
    clf = TextClassifier("cnn", embedding_dim=8, num_filters=4, kernel_size=3, maxlen=20, epochs=1, batch_size=32,
                         random_state=0).fit(texts[::3], y[::3])
    sample = texts[:20]
    scores = all_scores(clf, sample)
    np.testing.assert_allclose(softmax(scores, axis=1), clf.predict_proba(sample), atol=1e-5)
    assert [e.label for e in clf.explain(sample)] == list(clf.predict(sample))


# ---- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["bow-logreg", "cnn"])
def test_empty_texts_and_unknown_words_get_the_base(fitted, name):
    clf = fitted[name]
    empty, unknown = clf.explain(["", "zqxj vbnm"], label=1)
    assert empty.words == () and empty.score == pytest.approx(empty.base, abs=1e-6)
    assert [w.word for w in unknown.words] == ["zqxj", "vbnm"] and all(w.weight == 0 for w in unknown.words)
    assert unknown.score == pytest.approx(unknown.base, abs=1e-6) and unknown.base == empty.base
    assert clf.explain([]) == []


def test_bad_label_and_bad_texts(fitted):
    clf = fitted["bow-logreg"]
    with pytest.raises(ParameterError, match=r"label 'maybe' is not one of the model's labels: 0, 1"):
        clf.explain(["good"], label="maybe")
    assert clf.explain(["good"], label="1")[0].label == 1  # labels given as text, as the CLI sends them
    with pytest.raises(DataError, match="single string"):
        clf.explain("good")
    with pytest.raises(DataError, match="row 1"):
        clf.explain(["good", 3])


# ---- CLI -----------------------------------------------------------------------------------

NUMBER = {"type": "number"}
LABEL = {"type": ["string", "integer"]}
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["text", "label", "predicted", "probability", "method", "base", "score", "words"],
    "properties": {
        "text": {"type": "string"}, "label": LABEL,
        "predicted": {"anyOf": [LABEL, {"type": "array", "items": LABEL}]},
        "probability": {"type": "number", "minimum": 0, "maximum": 1},
        "method": {"enum": ["exact", "occlusion"]}, "base": NUMBER, "score": NUMBER,
        "words": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["word", "start", "end", "weight"],
            "properties": {"word": {"type": "string", "minLength": 1}, "start": {"type": "integer", "minimum": 0},
                           "end": {"type": "integer", "minimum": 1}, "weight": NUMBER}}},
    },
}


def test_cli_explains_a_run_directory(fitted, tmp_path, capsys):
    run = tmp_path / "run"
    fitted["bow-logreg"].save(run / "model")  # where `textclass train` puts it
    texts = ["The food was great, I love it!", "Awful. The worst.", ""]
    assert main(["explain", str(run), *texts, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == texts
    for row in rows:
        jsonschema.validate(row, SCHEMA)
        assert all(row["text"][w["start"]:w["end"]] == w["word"] for w in row["words"])
        assert abs(sum(w["weight"] for w in row["words"]) + row["base"] - row["score"]) < 1e-6
    assert [r["label"] for r in rows[:2]] == [1, 0]

    assert main(["explain", str(run), texts[0], "--label", "0", "--json"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["label"] == 0 and row["predicted"] == 1
    assert {w["word"]: w["weight"] for w in row["words"]}["great"] < 0

    assert main(["explain", str(run), texts[0]]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1  p=0.") and "The food was great, I love it!" in out and "great" in out.splitlines()[2]

    assert main(["explain", str(run), "good", "--label", "maybe"]) == 2
    err = capsys.readouterr().err
    assert "'maybe'" in err and "0, 1" in err and "Traceback" not in err
    assert main(["explain", str(tmp_path / "missing"), "good"]) == 2


def test_render_colours_words_by_sign_and_size(fitted):
    (e,) = fitted["bow-logreg"].explain(["great food but awful service"], label=1)
    console = Console(record=True, force_terminal=True, color_system="truecolor", width=120)
    console.print(render(e))
    body = render(e).renderables[1]
    colour = {body.plain[s.start:s.end]: s.style.color.triplet for s in body.spans}
    assert colour["great"].green > colour["great"].red and colour["awful"].red > colour["awful"].green
    weakest = min(e.words, key=lambda w: abs(w.weight)).word
    assert abs(colour[weakest].red - colour[weakest].green) < abs(colour["great"].green - colour["great"].red)
    assert "\x1b[" in console.export_text(styles=True)
