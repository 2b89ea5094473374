"""Run an exported model (``textclass export``) with onnxruntime and NumPy only.

onnxruntime is imported by ``load``, so ``is_export`` (which ``textclass predict`` asks of every
path) works without it.

Importing this module and predicting imports neither Keras, JAX, TensorFlow, PyTorch, scikit-learn,
SciPy nor pandas: the tokenizer (``textclass.tokenize``), the padding (``textclass.preprocess``),
the n-gram features (``textclass.features``) and the label codec (``textclass.labels``) are the
same light modules training uses, so the texts are read exactly as at training time.

Layout of an export directory::

    manifest.json    format, model name, task, labels, threshold, hyperparameters, how inputs
                     are made, the check against the original model, sha256 of every other file
    model.onnx       the graph: inputs -> ``probabilities`` (batch, classes)
    preprocessor/    tokenizer and padding settings (sequence models), as in a run directory
    features.json    vocabularies, idf and analyzer settings (bag-of-words and linear models)

Examples
--------
>>> from textclass import runtime                                   # doctest: +SKIP
>>> clf = runtime.load("exports/cnn")                               # doctest: +SKIP
>>> clf.predict(["The food was great"]), clf.predict_proba(["meh"])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from textclass.errors import DataError, ModelFileError
from textclass.features import TextFeatures
from textclass.files import verify_files
from textclass.labels import LabelCodec
from textclass.preprocess import SequencePreprocessor
from textclass.store import _decode

__all__ = ["FORMAT", "ExportedClassifier", "is_export", "load"]

FORMAT = "textclass-onnx"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
GRAPH_FILE = "model.onnx"
FEATURES_FILE = "features.json"
PREPROCESSOR_DIR = "preprocessor"
CHUNK = 4096  # texts vectorized at a time: bounded memory on any input size


def is_export(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a directory written by ``textclass export`` (checked by its manifest only)."""
    try:
        manifest = json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of an export, after checking the sha256 of every file it lists."""
    file = path / MANIFEST
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"{path}: not a textclass export (no {MANIFEST})") from None
    except (OSError, ValueError) as e:
        raise ModelFileError(f"{file}: unreadable manifest: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelFileError(f"{file}: not a textclass export (format is not {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{file}: unknown format_version {manifest.get('format_version')!r}; "
                             f"this textclass reads version {FORMAT_VERSION}")
    files = manifest.get("files")
    if not isinstance(files, dict) or GRAPH_FILE not in files:
        raise ModelFileError(f"{file}: no file hashes, or no {GRAPH_FILE} among them")
    verify_files(path, files, file, "export directory")
    return manifest


# ---- inputs: texts -> the graph's feeds, one class per kind of model input -----------------------

class SequenceInput:
    """Token ids, padded as at training; batches trimmed to their longest text where exact."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.pre = SequencePreprocessor.load(path / PREPROCESSOR_DIR)
        self.trim = settings.get("trim")
        self.batch_size = int(settings.get("batch_size", 512))
        self.width_step = int(settings.get("width_step", 8))

    def feeds(self, texts: list[str]) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        for idx, x in self.pre.batches(texts, self.trim, self.batch_size, self.width_step):
            yield idx, {"inputs": x}


class DenseFeaturesInput:
    """Word counts as a dense float32 matrix (the ``bow-dense`` model's input)."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.features = _read_features(path)
        self.batch_size = int(settings.get("batch_size", 512))

    def feeds(self, texts: list[str]) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        for b in range(0, len(texts), self.batch_size):
            idx = np.arange(b, min(b + self.batch_size, len(texts)))
            yield idx, {"inputs": self.features.dense(texts[b:b + self.batch_size], np.float32)}


class SparseFeaturesInput:
    """N-gram features as CSR-ordered (rows, cols, values) triplets (the linear models' input)."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.features = _read_features(path)

    def feeds(self, texts: list[str]) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        for b in range(0, len(texts), CHUNK):
            chunk = texts[b:b + CHUNK]
            rows, cols, values = self.features.sparse(chunk)
            yield np.arange(b, b + len(chunk)), {"rows": rows, "cols": cols, "values": values,
                                                 "n_rows": np.array([len(chunk)], dtype=np.int64)}


INPUTS = {"sequences": SequenceInput, "bow": DenseFeaturesInput, "sparse": SparseFeaturesInput}


def _read_features(path: Path) -> TextFeatures:
    try:
        return TextFeatures.from_dict(json.loads((path / FEATURES_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError) as e:
        raise ModelFileError(f"{path / FEATURES_FILE}: cannot read: {e}") from None


# ---- the predictor --------------------------------------------------------------------------------

class ExportedClassifier:
    """An exported model with the predictor protocol of ``TextClassifier``.

    Attributes
    ----------
    model : str
        Registry name of the model that was exported.
    classes_ : ndarray
    task_ : {"binary", "multiclass", "multilabel"}
    threshold_ : float
        The decision threshold of the exported model (multi-label tags, binary positive class).
    hyperparameters_ : dict
    path : Path
    """

    def __init__(self, path: Path, manifest: dict[str, Any], session: Any, inputs: Any) -> None:
        self.path = path
        self.model = manifest["model"]
        labels = manifest["labels"]
        self.codec_ = LabelCodec.from_dict({"task": labels["task"], "classes": labels["classes"]})
        self.classes_ = self.codec_.classes_
        self.task_ = self.codec_.task_
        self.threshold_ = float(labels["threshold"])
        self.hyperparameters_ = _decode(manifest.get("hyperparameters", {}))
        self.session_ = session
        self.inputs_ = inputs
        self._dtype = np.float64 if manifest["input"]["type"] == "sparse" else np.float32

    def predict_proba(self, X: Iterable[str]) -> np.ndarray:
        """Probabilities, shape (n, len(classes_)), in the order of ``classes_``."""
        texts = _as_texts(X)
        out = np.empty((len(texts), len(self.classes_)), dtype=self._dtype)
        for idx, feeds in self.inputs_.feeds(texts):
            out[idx] = self.session_.run(None, feeds)[0]
        return out

    def labels_from_proba(self, proba: np.ndarray) -> np.ndarray | list[tuple]:
        """Labels as ``predict`` gives them (multi-label: tag tuples above the threshold)."""
        if self.task_ == "multilabel":
            return self.codec_.inverse_transform((proba > self.threshold_).astype(np.int8))
        if self.task_ == "binary":
            return self.codec_.inverse_transform((proba[:, 1] > self.threshold_).astype(int))
        return self.codec_.inverse_transform(proba.argmax(axis=1))

    def predict(self, X: Iterable[str]) -> np.ndarray | list[tuple]:
        """The user's own labels; for multi-label, tag tuples."""
        return self.labels_from_proba(self.predict_proba(X))

    def __repr__(self) -> str:
        return f"ExportedClassifier({self.model!r}, task={self.task_!r}, path={str(self.path)!r})"


def load(path: str | os.PathLike[str], *, threads: int | None = None) -> ExportedClassifier:
    """Load an export directory; every file's sha256 is checked before anything is parsed.

    ``threads``: onnxruntime's intra-op threads (default: one per core); 1 suits a server that
    runs one process per core. Idle threads sleep rather than spin, so a busy machine (or
    several workers) is not slowed down by them: measured 2x faster for the CNN under load.
    """
    path = Path(path)
    manifest = read_manifest(path)
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelFileError(f"{path}: running an export needs onnxruntime: pip install onnxruntime "
                             "(or textclass[onnx])") from None
    try:
        settings = manifest["input"]
        inputs = INPUTS[settings["type"]](path, settings)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        session = ort.InferenceSession(str(path / GRAPH_FILE), options, providers=["CPUExecutionProvider"])
        return ExportedClassifier(path, manifest, session, inputs)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{path / MANIFEST}: invalid content: {e!r}") from None
    except Exception as e:  # onnxruntime raises its own types on a malformed graph
        raise ModelFileError(f"{path / GRAPH_FILE}: cannot load: {e}") from None


def _as_texts(X: Iterable[str]) -> list[str]:
    if isinstance(X, (str, bytes)):
        raise DataError("expected a collection of texts, got a single string; wrap it in a list")
    texts = list(X)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise DataError(f"text at row {i} is {type(t).__name__} {t!r}; expected a string")
    return texts
