"""Model files: a fitted ``TextClassifier`` as a directory that is safe to load.

Layout::

    manifest.json        format version, textclass version, model name, parameters, labels,
                         Keras backend, training history, sha256 of every other file
    preprocessor/        tokenizer or vocabulary as JSON (Keras models)
    model.keras          Keras weights + architecture, loaded with ``safe_mode=True``
    model.skops          scikit-learn models, loaded by skops with an explicit allow-list of types
    torch/               PyTorch models (encoder-tuned): the fine-tuned encoder and head as
                         safetensors, its tokenizer and JSON configs

No pickle: a model file from someone else cannot run code when loaded. Saving writes a sibling
temporary directory and renames it into place, so a crash mid-save leaves the previous model intact.
Loading checks every hash first, so a tampered or truncated file is refused before it is parsed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from textclass.errors import ModelFileError
from textclass.files import sha256_file, stale, temp_name, verify_files

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
KERAS_FILE = "model.keras"
SKOPS_FILE = "model.skops"
PREPROCESSOR_DIR = "preprocessor"
TORCH_DIR = "torch"
# Types skops may rebuild beyond its own defaults: only scikit-learn, NumPy, SciPy and our models.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.", "scipy.sparse._", "textclass.models.")


def _check_trusted(types: list[str], where: Path) -> None:
    bad = [t for t in types if not t.startswith(TRUSTED_PREFIXES)]
    if bad:
        raise ModelFileError(f"{where}: refusing to load types outside the allow-list "
                             f"({', '.join(TRUSTED_PREFIXES)}): {', '.join(bad)}")


def _encode(value: Any) -> Any:
    """JSON-safe parameters; tuples are tagged so they come back as tuples."""
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ModelFileError(f"cannot save parameter value {value!r} of type {type(value).__name__}: "
                         "only numbers, strings, booleans, None, lists, tuples and dicts are stored")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "__tuple__" in value:
            return tuple(_decode(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {_decode(k): _decode(v) for k, v in value["__dict__"]}
    return value


def save_model(clf, path: str | os.PathLike[str]) -> Path:
    """Save a fitted ``TextClassifier`` to the directory ``path``, replacing it only on success."""
    from sklearn.utils.validation import check_is_fitted

    import textclass
    from textclass.models import get_model

    check_is_fitted(clf, "model_")
    path = Path(path)
    if path.exists() and (not path.is_dir() or (any(path.iterdir()) and not (path / MANIFEST).exists())):
        raise ModelFileError(f"{path}: exists and is not a textclass model directory; not overwriting it")
    path.parent.mkdir(parents=True, exist_ok=True)
    recover(path)
    tmp = path.parent / temp_name(f".{path.name}.tmp-")
    try:
        tmp.mkdir()
        manifest = {
            "format_version": FORMAT_VERSION,
            "textclass_version": textclass.__version__,
            "model": clf.model,
            "params": _encode(clf.get_params(deep=False)),
            "hyperparameters": _encode(clf.hyperparameters_),
            "labels": {**clf.codec_.to_dict(), "threshold": clf.threshold_},
            "history": clf.history_,
        }
        if get_model(clf.model).kind == "torch":  # PyTorch models write their own folder (safetensors)
            clf.model_.save(tmp / TORCH_DIR)
            manifest["torch_class"] = f"{type(clf.model_).__module__}.{type(clf.model_).__qualname__}"
        elif clf.preprocessor_ is None:
            import skops.io as sio

            sio.dump(clf.model_, tmp / SKOPS_FILE)
            untrusted = sio.get_untrusted_types(file=tmp / SKOPS_FILE)
            _check_trusted(untrusted, tmp / SKOPS_FILE)
            manifest["skops_trusted"] = untrusted
        else:
            import keras

            clf.preprocessor_.save(tmp / PREPROCESSOR_DIR)
            clf.model_.save(tmp / KERAS_FILE)
            manifest["keras_backend"] = keras.backend.backend()
            manifest["keras_version"] = keras.__version__
        manifest["files"] = {f.relative_to(tmp).as_posix(): sha256_file(f)
                             for f in sorted(tmp.rglob("*")) if f.is_file()}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        _replace_dir(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _replace_dir(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``; an existing ``target`` is removed only once ``new`` is in place."""
    if not target.exists():
        os.rename(new, target)
        return
    old = target.parent / temp_name(f".{target.name}.old-")
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def recover(path: Path) -> None:
    """Clean up after a save that was killed: put back a model directory moved aside just before
    the kill (the new one was not yet in place), and remove the unfinished temporary ones."""
    for old in stale(path.parent, f".{path.name}.old-"):
        if not path.exists():
            os.rename(old, path)
        else:
            shutil.rmtree(old, ignore_errors=True)
    for tmp in stale(path.parent, f".{path.name}.tmp-"):
        shutil.rmtree(tmp, ignore_errors=True)


def _read_manifest(path: Path) -> dict:
    file = path / MANIFEST
    if not file.is_file():
        raise ModelFileError(f"{path}: not a textclass model directory (no {MANIFEST})")
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelFileError(f"{file}: unreadable manifest: {e}") from None
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{file}: unknown format_version {version!r}; this textclass reads "
                             f"version {FORMAT_VERSION}")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ModelFileError(f"{file}: no file hashes")
    verify_files(path, files, file, "model directory")
    return manifest


def load_model(path: str | os.PathLike[str]):
    """Load a model directory written by ``save_model``; every file is verified first."""
    from textclass.estimator import TextClassifier
    from textclass.labels import LabelCodec
    from textclass.models import get_model

    path = Path(path)
    recover(path)
    manifest = _read_manifest(path)
    try:
        clf = TextClassifier(**_decode(manifest["params"]))
        clf.hyperparameters_ = _decode(manifest["hyperparameters"])
        clf.codec_ = LabelCodec.from_dict({k: v for k, v in manifest["labels"].items() if k != "threshold"})
        clf.threshold_ = float(manifest["labels"]["threshold"])
        clf.history_ = manifest.get("history", {})
        get_model(clf.model)  # a known model; importing the registry registers its custom layers
    except (KeyError, TypeError, ValueError) as e:  # ParameterError is a ValueError
        raise ModelFileError(f"{path / MANIFEST}: invalid content: {e}") from None
    clf.classes_ = clf.codec_.classes_
    clf.task_ = clf.codec_.task_
    files = manifest["files"]
    if any(name.startswith(f"{TORCH_DIR}/") for name in files):
        from textclass.models.encoders import EncoderClassifier

        if manifest.get("torch_class") != f"{EncoderClassifier.__module__}.{EncoderClassifier.__qualname__}":
            raise ModelFileError(f"{path / MANIFEST}: unknown torch_class {manifest.get('torch_class')!r}")
        clf.model_ = EncoderClassifier.load(path / TORCH_DIR)
        clf.preprocessor_ = None
    elif SKOPS_FILE in files:
        import skops.io as sio

        untrusted = sio.get_untrusted_types(file=path / SKOPS_FILE)
        _check_trusted(untrusted, path / SKOPS_FILE)
        try:
            clf.model_ = sio.load(path / SKOPS_FILE, trusted=untrusted)
        except Exception as e:  # skops raises many types on a malformed file
            raise ModelFileError(f"{path / SKOPS_FILE}: cannot load: {e}") from None
        clf.preprocessor_ = None
    elif KERAS_FILE in files:
        import keras

        from textclass.preprocess import load_preprocessor

        clf.preprocessor_ = load_preprocessor(path / PREPROCESSOR_DIR)
        try:
            clf.model_ = keras.saving.load_model(path / KERAS_FILE, safe_mode=True, compile=False)
        except Exception as e:  # keras raises many types on a malformed file
            raise ModelFileError(f"{path / KERAS_FILE}: cannot load: {e}") from None
    else:
        raise ModelFileError(f"{path / MANIFEST}: lists none of {KERAS_FILE}, {SKOPS_FILE}, {TORCH_DIR}/")
    return clf
