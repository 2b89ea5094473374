"""Export a fitted model as a directory that ``textclass.runtime`` runs with onnxruntime + NumPy only.

One exporter per (model kind, input) in ``EXPORTERS``: Keras models over token ids or word
counts go through ``textclass.export_keras`` (the graph written from the layers' weights),
scikit-learn pipelines through ``textclass.export_linear`` (vectorizer as JSON, linear part as a
graph). Before anything is written in place, the export is loaded back with the runtime and its
probabilities are compared with the original model's on probe texts; an export that differs by
more than ``TOLERANCE`` is refused. The directory is written as a sibling temporary directory
and renamed into place, so a failed export leaves no ``OUT_DIR`` (and an earlier one intact).

Examples
--------
>>> from textclass.export import export                          # doctest: +SKIP
>>> export("runs/cnn", "exports/cnn")                            # doctest: +SKIP
PosixPath('exports/cnn')
"""

from __future__ import annotations

import json
import os
import random
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textclass import runtime
from textclass.errors import MissingExtraError, ModelFileError, ParameterError
from textclass.files import sha256_file

__all__ = ["FORMATS", "TOLERANCE", "export"]

FORMATS = ("onnx",)
TOLERANCE = 1e-5  # max |p_export - p_original| accepted on the probe texts
N_PROBES = 64


def _export_keras_sequences(clf: Any, out: Path) -> dict[str, Any]:
    from textclass.export_keras import export_model

    pre = clf.preprocessor_
    graph, ignores_padding = export_model(clf.model_, task=clf.task_, padding=pre.padding, name=clf.model)
    _save_graph(graph, out)
    pre.save(out / runtime.PREPROCESSOR_DIR)
    trim = clf._trim()
    if trim is None and ignores_padding and graph.graph.input[0].type.tensor_type.shape.dim[1].dim_param:
        trim = 1  # recurrent graphs read sequence_lens from the mask: any padded tail is ignored
    return {"type": "sequences", "trim": trim, "batch_size": 512, "width_step": 8}


def _export_keras_bow(clf: Any, out: Path) -> dict[str, Any]:
    from textclass.export_keras import export_model
    from textclass.export_linear import feature_blocks
    from textclass.features import TextFeatures

    graph, _ = export_model(clf.model_, task=clf.task_, name=clf.model)
    _save_graph(graph, out)
    _save_features(TextFeatures(feature_blocks(clf.preprocessor_.vectorizer)), out)
    return {"type": "bow", "batch_size": 512}


def _export_sklearn(clf: Any, out: Path) -> dict[str, Any]:
    from textclass.export_linear import export_pipeline

    graph, features = export_pipeline(clf.model_, len(clf.classes_), clf.model)
    _save_graph(graph, out)
    _save_features(features, out)
    return {"type": "sparse"}


#: (registry kind, registry inputs) -> exporter writing the graph and its inputs into a folder.
EXPORTERS: dict[tuple[str, str], Callable[[Any, Path], dict[str, Any]]] = {
    ("keras", "sequences"): _export_keras_sequences,
    ("keras", "bow"): _export_keras_bow,
    ("sklearn", "text"): _export_sklearn,
}


def _save_graph(graph: Any, out: Path) -> None:
    import onnx

    onnx.save_model(graph, out / runtime.GRAPH_FILE)


def _save_features(features: Any, out: Path) -> None:
    (out / runtime.FEATURES_FILE).write_text(json.dumps(features.to_dict(), ensure_ascii=False), encoding="utf-8")


def _fitted(source: Any) -> Any:
    """A fitted TextClassifier from itself, a run directory or a model directory."""
    if not isinstance(source, (str, os.PathLike)):
        return source
    from textclass.store import MANIFEST, load_model

    path = Path(source)
    if runtime.is_export(path):
        raise ModelFileError(f"{path}: is already an export; export the run directory it came from")
    if (path / "model" / MANIFEST).is_file():
        path = path / "model"
    if not (path / MANIFEST).is_file():
        raise ModelFileError(f"{path}: not a run or model directory (no model/{MANIFEST} or {MANIFEST})")
    return load_model(path)


def probe_texts(clf: Any, n: int = N_PROBES, seed: int = 0) -> list[str]:
    """Texts made of the model's own vocabulary (and a few unknown words), of many lengths, plus ''."""
    pre = getattr(clf, "preprocessor_", None)
    if pre is not None and hasattr(pre, "tokenizer"):
        words = list(pre.tokenizer.word_index)
    else:
        vectorizer = pre.vectorizer if pre is not None else clf.model_.steps[0][1]
        vocabularies = [t.vocabulary_ for _, t in getattr(vectorizer, "transformer_list", [("", vectorizer)])]
        words = [w for v in vocabularies for w in v if " " not in w.strip()]
    words = [w.strip() for w in words if w.strip()][:2000] or ["text"]
    rng = random.Random(seed)
    lengths = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144]
    texts = [" ".join(rng.choice(words) for _ in range(lengths[i % len(lengths)])) + rng.choice(["", "!", " ?", "."])
             for i in range(n - 2)]
    return ["", "zzqx unknownword"] + texts


def _require_onnx() -> None:
    """Writing and checking an export needs onnx and onnxruntime (the ``onnx`` extra)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise MissingExtraError(f"textclass export needs the 'onnx' extra ({e.name} is missing): "
                                "pip install 'textclass[onnx]'") from None


def export(source: Any, out_dir: str | os.PathLike[str], *, format: str = "onnx",
           check_texts: Sequence[str] | None = None) -> Path:
    """Export a fitted ``TextClassifier`` (or a run/model directory) to ``out_dir``.

    ``check_texts`` (default: ``probe_texts(clf)``) are predicted by both the export and the
    original; a difference above ``TOLERANCE`` raises ``ModelFileError`` and nothing is written.
    Returns the export directory.
    """
    import textclass
    from textclass.models import get_model
    from textclass.store import _encode, _replace_dir

    if format not in FORMATS:
        raise ParameterError(f"unknown export format {format!r}; choose one of: {', '.join(FORMATS)}")
    _require_onnx()
    clf = _fitted(source)
    if not hasattr(clf, "model_"):
        raise ParameterError("this TextClassifier is not fitted yet: call fit first")
    spec = get_model(clf.model)
    exporter = EXPORTERS.get((spec.kind, spec.inputs))
    if exporter is None:
        raise ParameterError(f"model {clf.model!r} (kind {spec.kind!r}, inputs {spec.inputs!r}) cannot be "
                             f"exported to {format}: supported kinds are "
                             f"{', '.join(sorted({k for k, _ in EXPORTERS}))}")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not runtime.is_export(out))):
        raise ModelFileError(f"{out}: exists and is not a textclass export; not overwriting it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        settings = exporter(clf, tmp)
        manifest = {
            "format": runtime.FORMAT,
            "format_version": runtime.FORMAT_VERSION,
            "textclass_version": textclass.__version__,
            "model": clf.model,
            "kind": spec.kind,
            "labels": {**clf.codec_.to_dict(), "threshold": clf.threshold_},
            "hyperparameters": _encode(clf.hyperparameters_),
            "input": settings,
            "files": {f.relative_to(tmp).as_posix(): sha256_file(f)
                      for f in sorted(tmp.rglob("*")) if f.is_file()},
        }
        _write_manifest(tmp, manifest)
        manifest["check"] = _check(clf, tmp, list(check_texts) if check_texts is not None else probe_texts(clf))
        _write_manifest(tmp, manifest)
        _replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / runtime.MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")


def _check(clf: Any, folder: Path, texts: list[str]) -> dict[str, Any]:
    """Compare the export's probabilities with the original's; refuse a mismatch."""
    exported = runtime.load(folder).predict_proba(texts)
    original = np.asarray(clf.predict_proba(texts))
    diff = float(np.max(np.abs(exported - original), initial=0.0))
    if not diff <= TOLERANCE:  # also refuses NaN
        raise ModelFileError(f"the {clf.model!r} export differs from the original model by {diff:.3g} "
                             f"(> {TOLERANCE:g}) on {len(texts)} probe texts; not written")
    return {"texts": len(texts), "max_abs_diff": diff, "tolerance": TOLERANCE}
