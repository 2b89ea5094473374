"""Model files: exact round trips, no pickle, refused tampering, atomic replacement."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from textclass.errors import ModelFileError
from textclass.estimator import TextClassifier
from textclass.store import load_model, save_model

CNN = dict(embedding_dim=8, num_filters=4, kernel_size=3, maxlen=20, epochs=2, batch_size=8, random_state=0)
WORDS = {1: ["good", "great", "tasty"], 0: ["bad", "awful", "bland"]}


def corpus(n: int = 40) -> tuple[list[str], list[int]]:
    texts = [f"the food was {WORDS[i % 2][i % 3]} " + "really " * (i % 5) for i in range(n)]
    return texts, [i % 2 for i in range(n)]


@pytest.fixture(scope="module")
def fitted() -> dict[str, TextClassifier]:
    X, y = corpus()
    return {
        "bow-logreg": TextClassifier("bow-logreg").fit(X, y),
        "nbsvm": TextClassifier("nbsvm").fit(X, ["neg" if v == 0 else "pos" for v in y]),
        "cnn": TextClassifier("cnn", **CNN).fit(X, ["neg" if v == 0 else "pos" for v in y]),
        "bow-dense-multilabel": TextClassifier("bow-dense", epochs=2, random_state=0).fit(
            X, [("a",) if v else ("a", "b") for v in y]),
        "cnn-multiclass": TextClassifier("cnn", **CNN).fit(X, [i % 3 for i in range(len(X))]),
    }


@pytest.mark.parametrize("name", ["bow-logreg", "nbsvm", "cnn", "bow-dense-multilabel", "cnn-multiclass"])
def test_round_trip_predicts_identically(fitted, name, tmp_path):
    clf = fitted[name]
    X, _ = corpus()
    path = clf.save(tmp_path / "m")
    loaded = load_model(path)
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-5)
    assert list(loaded.predict(X)) == list(clf.predict(X))
    assert loaded.get_params() == clf.get_params()
    assert [type(c) for c in loaded.classes_.tolist()] == [type(c) for c in clf.classes_.tolist()]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["model"] == clf.model
    assert set(manifest["files"]) == {p.relative_to(path).as_posix() for p in path.rglob("*")
                                      if p.is_file() and p.name != "manifest.json"}
    assert not any(p.suffix in {".pkl", ".pickle", ".joblib"} for p in path.rglob("*"))


def test_nbsvm_custom_type_is_in_the_explicit_trust_list(fitted, tmp_path):
    path = fitted["nbsvm"].save(tmp_path / "m")
    trusted = json.loads((path / "manifest.json").read_text())["skops_trusted"]
    assert trusted and all(t.startswith("textclass.models.") for t in trusted)


def test_jax_model_predicts_identically_after_a_restart(fitted, tmp_path):
    clf = fitted["cnn"]
    X, _ = corpus()
    path = clf.save(tmp_path / "m")
    code = ("import json, sys, textclass.store as s; "
            "m = s.load_model(sys.argv[1]); "
            "print(json.dumps(m.predict_proba(json.loads(sys.argv[2])).tolist()))")
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    out = subprocess.run([sys.executable, "-c", code, str(path), json.dumps(X)], env=env,
                         capture_output=True, text=True, check=True).stdout
    np.testing.assert_allclose(np.array(json.loads(out.splitlines()[-1])), clf.predict_proba(X), atol=1e-5)
    assert json.loads((path / "manifest.json").read_text())["keras_backend"] == "jax"


@pytest.mark.parametrize("damage", ["tamper", "truncate", "delete"])
def test_damaged_file_is_refused_naming_it(fitted, tmp_path, damage):
    path = fitted["cnn"].save(tmp_path / "m")
    target = path / "preprocessor" / "tokenizer.json"
    if damage == "tamper":
        target.write_text(target.read_text().replace('"good"', '"evil"'))
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:20])
    else:
        target.unlink()
    with pytest.raises(ModelFileError, match="tokenizer.json"):
        load_model(path)


def test_tampered_weights_and_unknown_format_refused(fitted, tmp_path):
    path = fitted["cnn"].save(tmp_path / "m")
    with open(path / "model.keras", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    with pytest.raises(ModelFileError, match=r"model\.keras.*sha256"):
        load_model(path)
    path = fitted["bow-logreg"].save(tmp_path / "m2")
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(ModelFileError, match="unknown format_version 99"):
        load_model(path)
    with pytest.raises(ModelFileError, match="no manifest.json"):
        load_model(tmp_path)


def test_untrusted_skops_types_are_refused_even_with_matching_hashes(fitted, tmp_path):
    import skops.io as sio
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    path = fitted["bow-logreg"].save(tmp_path / "m")
    # An attacker can recompute the hashes; the type allow-list still stops the payload.
    sio.dump(make_pipeline(FunctionTransformer(os.system)), path / "model.skops")
    manifest = json.loads((path / "manifest.json").read_text())
    from textclass.files import sha256_file

    manifest["files"]["model.skops"] = sha256_file(path / "model.skops")
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="allow-list.*system"):
        load_model(path)


def test_crash_mid_save_keeps_the_previous_model(fitted, tmp_path, monkeypatch):
    import keras

    X, _ = corpus()
    path = save_model(fitted["cnn"], tmp_path / "m")
    before = load_model(path).predict_proba(X)

    def crash(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(keras.Model, "save", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        save_model(fitted["cnn-multiclass"], path)
    np.testing.assert_allclose(load_model(path).predict_proba(X), before, atol=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary leftovers

    monkeypatch.undo()
    save_model(fitted["cnn-multiclass"], path)  # a successful save does replace it
    assert load_model(path).predict_proba(X).shape == (len(X), 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_refuses_to_overwrite_a_directory_that_is_not_a_model(fitted, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ModelFileError, match="not a textclass model directory"):
        save_model(fitted["bow-logreg"], tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_unfitted_model_cannot_be_saved(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        TextClassifier().save(tmp_path / "m")
