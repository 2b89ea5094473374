"""ONNX export: every registry model reproduced by onnxruntime + NumPy, safely written and loaded.

Models are tiny (one epoch, small dimensions) and trained on the tutorial's yelp split; each is
fitted once per test worker, on first use.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import real_dataset
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from textclass import export as export_module
from textclass import runtime
from textclass.cli import main
from textclass.errors import ModelFileError, ParameterError
from textclass.estimator import TextClassifier
from textclass.export import export, probe_texts
from textclass.features import TermBlock, TextFeatures
from textclass.models import MODELS
from textclass.models.linear import NBSVM_TOKEN_PATTERN

TOLERANCE = 1e-5
TINY = {"epochs": 1, "batch_size": 50, "random_state": 0}
# Per model: tiny hyperparameters, and the head it is tested with (binary unless said otherwise).
CASES = {
    "bow-logreg": ({}, "binary"),
    "tfidf-linear": ({}, "binary"),
    "nbsvm": ({}, "binary"),
    "bow-dense": ({**TINY, "dense_units": 4}, "multilabel"),
    "embed-flatten": ({**TINY, "embedding_dim": 4, "dense_units": 4, "maxlen": 40}, "binary"),
    "embed-maxpool": ({**TINY, "embedding_dim": 4, "dense_units": 4}, "binary"),
    "glove-frozen": ({**TINY, "dense_units": 4}, "binary"),
    "glove-tuned": ({**TINY, "dense_units": 4}, "binary"),
    "cnn": ({**TINY, "embedding_dim": 8, "num_filters": 8, "kernel_size": 3, "dense_units": 4}, "multiclass"),
    "bilstm": ({**TINY, "embedding_dim": 8, "units": 4, "padding": "pre", "truncating": "pre", "maxlen": 30},
               "multiclass"),
    "gru": ({**TINY, "embedding_dim": 8, "units": 4}, "binary"),
    "transformer": ({**TINY, "embedding_dim": 8, "num_heads": 2, "ff_dim": 8, "maxlen": 40}, "binary"),
}
# The pretrained encoders (sentence-embed, encoder-tuned) have no ONNX exporter yet: refused by name below.
ENCODERS = ("sentence-embed", "encoder-tuned")
EXPORTABLE = [name for name, spec in MODELS.items() if spec.kind in ("keras", "sklearn") and name not in ENCODERS]
HEAVY = ("keras", "jax", "jaxlib", "tensorflow", "torch", "sklearn", "scipy", "pandas")


def _labels(texts: list[str], labels: list[int], head: str) -> list:
    """Binary yelp sentiment, or a 3-class / multi-label task derived from it (short = <= 6 words)."""
    short = [len(t.split()) <= 6 for t in texts]
    if head == "binary":
        return labels
    if head == "multiclass":
        return ["short" if s else ("pos" if y else "neg") for s, y in zip(short, labels)]
    return [(("pos" if y else "neg"),) + (("short",) if s else ()) for s, y in zip(short, labels)]


@pytest.fixture(scope="module")
def yelp():
    from textclass.data import split_frame

    df = real_dataset("uci-sentiment")
    train, test = split_frame(df[df["source"] == "yelp"], test_size=0.25, random_state=1000)
    return train["text"].tolist(), train["label"].tolist(), test["text"].tolist(), test["label"].tolist()


@pytest.fixture(scope="module")
def glove_subset(tmp_path_factory, yelp):
    """The GloVe 6B 50d lines of the yelp words, read once from the shared data."""
    import gzip

    from textclass.data import data_home, get_info
    from textclass.tokenize import Tokenizer

    if not get_info("glove-6b-50d").is_cached():
        pytest.skip("GloVe 6B 50d vectors not in $TEXTCLASS_DATA/glove (textclass datasets fetch glove-6b-50d)")
    vocab = set(Tokenizer().fit(yelp[0] + yelp[2]).word_index)
    target = tmp_path_factory.mktemp("glove") / "glove-subset.txt"
    with gzip.open(data_home() / "glove" / "glove.6B.50d.txt.gz", "rt", encoding="utf-8") as fin, \
            open(target, "w", encoding="utf-8") as fout:
        fout.writelines(line for line in fin if line[:line.find(" ")] in vocab)
    return target


_FITTED: dict[tuple[str, str], TextClassifier] = {}


def fitted(name: str, yelp, request, head: str | None = None) -> TextClassifier:
    params, default_head = CASES[name]
    head = head or default_head
    if (name, head) not in _FITTED:
        if name.startswith("glove"):
            params = {**params, "vectors": str(request.getfixturevalue("glove_subset"))}
        X, y, _, _ = yelp
        _FITTED[name, head] = TextClassifier(name, **params).fit(X, _labels(X, y, head))
    return _FITTED[name, head]


def test_every_exportable_registry_model_has_a_case():
    assert set(EXPORTABLE) == set(CASES)


@pytest.mark.parametrize("name", EXPORTABLE)
def test_export_reproduces_the_model_on_held_out_sentences(name, yelp, request, tmp_path):
    clf = fitted(name, yelp, request)
    held_out = yelp[2]
    out = export(clf, tmp_path / "e", check_texts=held_out[:64])
    exported = runtime.load(out)
    proba = exported.predict_proba(held_out)
    expected = clf.predict_proba(held_out)
    assert proba.shape == expected.shape == (250, len(clf.classes_))
    assert np.abs(proba - expected).max() <= TOLERANCE
    assert list(exported.predict(held_out)) == list(clf.predict(held_out))
    assert (exported.model, exported.task_, exported.threshold_) == (clf.model, clf.task_, clf.threshold_)
    assert exported.classes_.tolist() == clf.classes_.tolist()
    assert exported.hyperparameters_ == clf.hyperparameters_
    # Texts the training data never had: empty, unknown words only, longer than maxlen.
    odd = ["", "zzqx qqxz", " ".join(held_out)]
    assert np.abs(exported.predict_proba(odd) - clf.predict_proba(odd)).max() <= TOLERANCE
    assert exported.predict_proba([]).shape == (0, len(clf.classes_))


@pytest.mark.parametrize("name", ["bow-logreg", "tfidf-linear", "nbsvm"])
@pytest.mark.parametrize("head", ["multiclass", "multilabel"])
def test_linear_multiclass_and_multilabel_heads(name, head, yelp, request, tmp_path):
    clf = fitted(name, yelp, request, head)
    out = runtime.load(export(clf, tmp_path / "e"))
    held_out = yelp[2]
    assert np.abs(out.predict_proba(held_out) - clf.predict_proba(held_out)).max() <= TOLERANCE
    assert list(out.predict(held_out)) == list(clf.predict(held_out))


SENTENCES = [
    "Wow... Loved this place.", "Crust is not good.", "The selection on the menu was great and so were the prices.",
    "I'd say it's ＦＵＬＬ of café-style crème brûlée!!!", "Don't   go\there;\nit's   awful?  ", "a b c I x",
    "naïve Ünïcödé ÅNGSTRÖM ǅungla ﬁne straße", "", "   ", "100% worth it... 5/5 :-)",
]


@pytest.mark.parametrize("vectorizer", [
    CountVectorizer(),
    CountVectorizer(ngram_range=(1, 3), binary=True, token_pattern=NBSVM_TOKEN_PATTERN),
    TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
    TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
    TfidfVectorizer(analyzer="char", ngram_range=(1, 3), norm="l1", lowercase=False),
], ids=["count", "nbsvm", "tfidf-word", "tfidf-char_wb", "tfidf-char"])
def test_features_equal_scikit_learn(vectorizer, yelp):
    """The runtime's analyzers and weighting are scikit-learn's, on real and on awkward text."""
    from textclass.export_linear import feature_blocks

    texts = yelp[0][:400] + SENTENCES
    vectorizer.fit(texts)
    (block,) = feature_blocks(vectorizer)
    analyzer = vectorizer.build_analyzer()
    assert [block.analyze(t) for t in texts] == [analyzer(t) for t in texts]
    features = TextFeatures.from_dict(json.loads(json.dumps(TextFeatures([block]).to_dict())))
    unseen = yelp[2] + SENTENCES
    np.testing.assert_allclose(features.dense(unseen), vectorizer.transform(unseen).toarray(), rtol=1e-12, atol=0)


def test_runtime_imports_no_training_stack(yelp, request, tmp_path):
    """A fresh process loads and predicts with an export without Keras, JAX, scikit-learn, ..."""
    paths = [str(export(fitted(n, yelp, request), tmp_path / n)) for n in ("nbsvm", "gru", "bow-dense")]
    code = (
        "import json, sys\n"
        "from textclass import runtime\n"
        f"probas = [runtime.load(p).predict_proba(['so good', 'never again']).tolist() for p in {paths!r}]\n"
        f"print(json.dumps([sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}), probas]))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    heavy, probas = json.loads(result.stdout)
    assert heavy == []
    for name, proba in zip(("nbsvm", "gru", "bow-dense"), probas):
        expected = fitted(name, yelp, request).predict_proba(["so good", "never again"])
        assert np.abs(np.array(proba) - expected).max() <= TOLERANCE


def test_tampered_export_is_refused(yelp, request, tmp_path, capsys):
    out = export(fitted("bow-logreg", yelp, request), tmp_path / "e")
    features = out / runtime.FEATURES_FILE
    original = features.read_text()
    features.write_text(original.replace('"vocabulary": ["', '"vocabulary": ["zz', 1))
    with pytest.raises(ModelFileError, match=r"features\.json: sha256 does not match"):
        runtime.load(out)
    assert main(["predict", str(out), "so good"]) == 2
    err = capsys.readouterr().err.strip()
    assert "sha256 does not match" in err and len(err.splitlines()) == 1
    features.write_text(original)
    runtime.load(out)
    (out / runtime.GRAPH_FILE).unlink()
    with pytest.raises(ModelFileError, match=r"model\.onnx: missing"):
        runtime.load(out)


def test_a_failed_export_leaves_no_out_dir_and_keeps_an_earlier_one(yelp, request, tmp_path, monkeypatch):
    clf = fitted("nbsvm", yelp, request)
    out = tmp_path / "e"

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(export_module, "_save_features", broken)  # after the graph is written
    with pytest.raises(OSError, match="disk full"):
        export(clf, out)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    export(clf, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(export_module, "_save_features", broken)
    with pytest.raises(OSError):
        export(clf, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["e"]


def test_an_export_that_differs_from_the_model_is_refused(yelp, request, tmp_path, monkeypatch):
    from textclass import export_linear

    clf = fitted("bow-logreg", yelp, request)
    monkeypatch.setitem(export_linear.LINKS, "binary", export_linear.LINKS["sigmoid"])  # drops 1 - p
    with pytest.raises(ModelFileError, match="differs from the original model"):
        export(clf, tmp_path / "e")
    assert list(tmp_path.iterdir()) == []


def test_probe_texts_cover_the_vocabulary_and_edge_cases(yelp, request):
    clf = fitted("cnn", yelp, request)
    texts = probe_texts(clf)
    assert "" in texts and len(texts) == 64
    words = set(clf.preprocessor_.tokenizer.word_index)
    assert sum(w in words for t in texts for w in t.split()) > 500
    assert max(len(t.split()) for t in texts) > clf.preprocessor_.maxlen


def test_cli_export_then_predict_gives_the_run_directory_predictions(yelp, request, tmp_path, capsys):
    clf = fitted("embed-maxpool", yelp, request)
    clf.save(tmp_path / "run" / "model")
    assert main(["export", str(tmp_path / "run"), "--format", "onnx", "-o", str(tmp_path / "out")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert runtime.is_export(tmp_path / "out") and not runtime.is_export(tmp_path / "run")
    rows = []
    for path in (tmp_path / "run", tmp_path / "out"):
        assert main(["predict", str(path), "the food was great", "never again"]) == 0
        rows.append([json.loads(line) for line in capsys.readouterr().out.splitlines()])
    assert [r["label"] for r in rows[0]] == [r["label"] for r in rows[1]]
    for a, b in zip(*rows):
        assert abs(a["p_1"] - b["p_1"]) <= 2e-6  # printed rounded to 6 digits


@pytest.mark.parametrize("args, message", [
    (["--format", "tflite"], "unknown export format 'tflite'; choose one of: onnx"),
    (["--format", "onnx"], "not a run or model directory"),
])
def test_cli_bad_input_is_one_line_and_exit_2(args, message, tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_an_unsupported_model_kind_is_named(yelp, request, tmp_path, monkeypatch):
    import dataclasses

    clf = fitted("bow-logreg", yelp, request)
    monkeypatch.setitem(MODELS, "bow-logreg", dataclasses.replace(MODELS["bow-logreg"], kind="torch"))
    with pytest.raises(ParameterError, match=r"model 'bow-logreg' \(kind 'torch', inputs 'text'\) cannot be exported"):
        export(clf, tmp_path / "e")
    assert not (tmp_path / "e").exists()


def test_an_encoder_model_is_refused_with_one_line_naming_what_cannot_be_exported(yelp, tmp_path, capsys):
    texts, labels = yelp[0][:40], yelp[1][:40]
    TextClassifier("sentence-embed", cache=False).fit(texts, labels).save(tmp_path / "run" / "model")
    assert main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "SentenceEmbedder" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_without_the_onnx_extra_export_says_what_to_install(yelp, request, tmp_path, capsys, monkeypatch):
    fitted("bow-logreg", yelp, request).save(tmp_path / "run" / "model")
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if the onnx extra were not installed
    assert main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'textclass[onnx]'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_export_refuses_to_overwrite_another_directory(yelp, request, tmp_path):
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "notes.txt").write_text("mine")
    with pytest.raises(ModelFileError, match="not a textclass export; not overwriting"):
        export(fitted("bow-logreg", yelp, request), tmp_path / "e")
    assert (tmp_path / "e" / "notes.txt").read_text() == "mine"


def test_term_block_refuses_an_unknown_analyzer():
    with pytest.raises(ModelFileError, match="unknown analyzer 'words'"):
        TermBlock({"a": 0}, analyzer="words")
