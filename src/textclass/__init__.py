"""textclass: practical text classification, from labelled text to a deployable classifier.

The common case is one line each::

    import textclass as tc
    df = tc.load_dataset("uci-sentiment")
    clf = tc.TextClassifier("cnn").fit(df.text, df.label)
    clf.save("models/cnn"); tc.load_model("models/cnn").predict(["so good!"])

Names are imported on first use, so ``import textclass`` (and the CLI's ``--help``) stays fast
and Keras loads only when a model needs it.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

__version__ = "0.1.0"

# Keras reads its backend once, on first import: choose JAX unless the user already chose.
os.environ.setdefault("KERAS_BACKEND", "jax")

_EXPORTS = {
    "load_dataset": "textclass.data",
    "load_data": "textclass.data",
    "read_table": "textclass.data",
    "list_datasets": "textclass.data",
    "fetch_dataset": "textclass.data",
    "TextClassifier": "textclass.estimator",
    "load_model": "textclass.store",
    "available_models": "textclass.models",
    "get_model": "textclass.models",
    "Tokenizer": "textclass.tokenize",
    "pad_sequences": "textclass.tokenize",
    "build_embedding_matrix": "textclass.embeddings",
    "classification_metrics": "textclass.evaluate",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'textclass' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
