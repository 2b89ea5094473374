"""The model registry: one place that maps a name to a builder, its defaults and its search space.

The estimator, the CLI, ``reproduce`` and ``search`` all read ``MODELS``. Defaults are the
tutorial's, so ``TextClassifier("cnn")`` is its experiment 7. Builders are imported on first use,
so listing the registry does not import Keras or scikit-learn.

Examples
--------
>>> from textclass.models import get_model
>>> spec = get_model("cnn")
>>> spec.kind, spec.inputs, spec.defaults["kernel_size"], spec.trim_extra({"kernel_size": 7})
('keras', 'sequences', 5, 7)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from textclass.errors import ParameterError, did_you_mean

__all__ = [
    "MODELS",
    "PREPROCESS_PARAMS",
    "TRAIN_PARAMS",
    "ModelSpec",
    "available_models",
    "get_model",
]

#: Hyperparameters the estimator's preprocessor consumes, by the model's input kind.
PREPROCESS_PARAMS: dict[str, set[str]] = {
    "sequences": {"num_words", "maxlen", "padding", "truncating"},
    "bow": {"max_features"},
    "text": set(),
}
#: Hyperparameters the training loop consumes (Keras and PyTorch models).
TRAIN_PARAMS: set[str] = {"epochs", "batch_size"}


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    Attributes
    ----------
    name, summary : str
        Registry name and a one-line description.
    kind : "keras", "sklearn" or "torch"
        Keras builders take ``input_dim, input_length, n_outputs, activation, embedding_matrix``
        plus the model params; scikit-learn builders take ``multilabel, random_state`` plus the
        model params and return a raw-text estimator with ``predict_proba``. PyTorch builders
        take the same plus the estimator's training options and return a raw-text estimator
        whose ``fit`` takes ``validation_data`` and Keras-style ``callbacks`` and which saves
        itself to a folder (``save``/``load``, safetensors).
    inputs : "text", "sequences" or "bow"
        What the built model consumes: raw strings, post-padded int32 token ids, or float32
        count vectors.
    build : callable
    defaults : mapping
        Every hyperparameter the model accepts with its default: preprocessing
        (``PREPROCESS_PARAMS[inputs]``), training (``TRAIN_PARAMS``, Keras) and model params.
    space : mapping
        Default search space: name -> list of choices, or
        ``{"low": .., "high": .., "log": bool, "int": bool}``.
    trim : int, str, callable or None
        Padded positions to keep after the longest real sequence when a post-padded batch is
        trimmed for speed (``keras.trim_padding``) without changing predictions, or the loss and
        gradients of a training batch (``models.batches``): an int, the name of the
        hyperparameter that gives it (``"kernel_size"`` for the CNN, whose windows span that many
        positions), or a function of the hyperparameters that returns one or None; 0 for the
        models that mask the padding (recurrent; the transformer when post-padded: pre-padding
        would move its real tokens' positions). ``None``: every position matters (Flatten); never
        trim.
    predictor : callable or None
        Keras models with a faster forward pass for prediction: called with the fitted Keras
        model, it returns a function from a batch of inputs to the outputs (equal within 1e-5),
        or None where that model cannot take it.
    packed : callable or None
        Keras max-pool models that train on packed rows (``models.batches.PackedBatches``):
        called with the built model, it returns a twin sharing its layers that reads them
        (``keras.packed_twin``), or None where that model cannot.
    """

    name: str
    summary: str
    kind: Literal["keras", "sklearn", "torch"]
    inputs: Literal["text", "sequences", "bow"]
    build: Callable[..., Any]
    defaults: Mapping[str, Any]
    space: Mapping[str, Any]
    trim: int | str | Callable[[Mapping[str, Any]], int | None] | None = None
    predictor: Callable[[Any], Callable[[Any], Any] | None] | None = None
    packed: Callable[[Any], Any] | None = None

    @property
    def model_params(self) -> set[str]:
        """The names passed to ``build`` (defaults minus preprocessing and training params)."""
        return set(self.defaults) - PREPROCESS_PARAMS[self.inputs] - TRAIN_PARAMS

    def trim_extra(self, params: Mapping[str, Any] | None = None) -> int | None:
        """Resolve ``trim`` for these hyperparameters (missing ones take their defaults)."""
        if self.trim is None or isinstance(self.trim, int):
            return self.trim
        params = {**self.defaults, **(params or {})}
        return self.trim(params) if callable(self.trim) else int(params[self.trim])


def _lazy(module: str, name: str) -> Callable[..., Any]:
    """A function of ``textclass.models.<module>`` (Keras, scikit-learn), imported on first call."""

    def build(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(f"{__name__}.{module}"), name)(*args, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"Build with textclass.models.{module}.{name}."
    return build


def _post_padded(params: Mapping[str, Any]) -> int | None:
    """The transformer's trim: its masked attention ignores a padded tail, but not padding in front."""
    return 0 if params["padding"] == "post" else None


_SEQ = {"num_words": 5000, "maxlen": 100, "padding": "post", "truncating": "post"}
_LOG_C = {"C": {"low": 1e-2, "high": 1e2, "log": True, "int": False}}
_ENCODER = {"encoder": "all-MiniLM-L6-v2", "maxlen": 128}  # sentence-transformers name or folder


def _spec(name: str, summary: str, kind: str, inputs: str, builder: tuple[str, str],
          defaults: dict[str, Any], space: dict[str, Any], trim: int | str | Callable | None = None,
          predictor: tuple[str, str] | None = None, packed: bool = False) -> ModelSpec:
    return ModelSpec(name, summary, kind, inputs, _lazy(*builder), MappingProxyType(defaults),
                     MappingProxyType(space), trim, _lazy(*predictor) if predictor else None,
                     _lazy("keras", "packed_twin") if packed else None)


MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        _spec("bow-logreg", "CountVectorizer + LogisticRegression (tutorial experiment 1)",
              "sklearn", "text", ("linear", "build_bow_logreg"), {"C": 1.0, "n_jobs": None}, _LOG_C),
        _spec("bow-dense", "bag-of-words counts -> Dense(10, relu) -> output (experiment 2)",
              "keras", "bow", ("keras", "build_bow_dense"),
              {"max_features": None, "dense_units": 10, "epochs": 100, "batch_size": 10},
              {"dense_units": [10, 32, 64], "epochs": [20, 50, 100]}),
        _spec("embed-flatten", "Embedding -> Flatten -> Dense(10, relu) -> output (experiment 3)",
              "keras", "sequences", ("keras", "build_embed_flatten"),
              {**_SEQ, "embedding_dim": 50, "dense_units": 10, "epochs": 20, "batch_size": 10},
              {"embedding_dim": [25, 50, 100], "dense_units": [10, 32]}),
        _spec("embed-maxpool", "Embedding -> GlobalMaxPool1D -> Dense(10, relu) -> output (experiment 4)",
              "keras", "sequences", ("keras", "build_embed_maxpool"),
              {**_SEQ, "embedding_dim": 50, "dense_units": 10, "epochs": 50, "batch_size": 10},
              {"embedding_dim": [50, 100], "dense_units": [10, 32], "epochs": [20, 50]}, trim=1, packed=True),
        _spec("glove-frozen", "embed-maxpool with frozen GloVe 6B 50d vectors (experiment 5)",
              "keras", "sequences", ("keras", "build_glove"),
              {**_SEQ, "vectors": "glove-6b-50d", "trainable": False, "dense_units": 10,
               "epochs": 50, "batch_size": 10},
              {"dense_units": [10, 32], "epochs": [20, 50]}, trim=1, packed=True),
        _spec("glove-tuned", "embed-maxpool with GloVe 6B 50d vectors, fine-tuned (experiment 6)",
              "keras", "sequences", ("keras", "build_glove"),
              {**_SEQ, "vectors": "glove-6b-50d", "trainable": True, "dense_units": 10,
               "epochs": 50, "batch_size": 10},
              {"dense_units": [10, 32], "epochs": [20, 50]}, trim=1, packed=True),
        _spec("cnn", "Embedding -> Conv1D(128, 5) -> GlobalMaxPool1D -> Dense(10) -> output (experiment 7)",
              "keras", "sequences", ("keras", "build_cnn"),
              {**_SEQ, "embedding_dim": 100, "num_filters": 128, "kernel_size": 5,
               "dense_units": 10, "epochs": 10, "batch_size": 10},
              {"num_filters": [32, 64, 128], "kernel_size": [3, 5, 7], "embedding_dim": [50, 100]},
              trim="kernel_size", predictor=("keras", "cnn_predictor"), packed=True),
        _spec("tfidf-linear", "word 1-2 + char_wb 2-5 TF-IDF -> calibrated LinearSVC",
              "sklearn", "text", ("linear", "build_tfidf_linear"),
              {"C": 1.0, "word_ngram_max": 2, "char_ngram_max": 5, "min_df": 1, "n_jobs": None},
              {**_LOG_C, "word_ngram_max": [1, 2, 3], "char_ngram_max": [4, 5, 6]}),
        _spec("nbsvm", "NBSVM (Wang & Manning 2012): NB log-count ratios on binary 1-3-grams + LR",
              "sklearn", "text", ("linear", "build_nbsvm"),
              {"C": 10.0, "alpha": 0.5, "ngram_max": 3, "min_df": 1, "n_jobs": None},
              {**_LOG_C, "alpha": [0.25, 0.5, 1.0], "ngram_max": [2, 3]}),
        _spec("bilstm", "Embedding -> Bidirectional(LSTM) -> output (padding masked)",
              "keras", "sequences", ("keras", "build_bilstm"),
              {**_SEQ, "embedding_dim": 64, "units": 32, "dropout": 0.2, "epochs": 5, "batch_size": 32},
              {"embedding_dim": [32, 64, 128], "units": [16, 32, 64],
               "dropout": {"low": 0.0, "high": 0.5, "log": False, "int": False}}, trim=0),
        _spec("gru", "Embedding -> Bidirectional(GRU) -> output (padding masked)",
              "keras", "sequences", ("keras", "build_gru"),
              {**_SEQ, "embedding_dim": 64, "units": 32, "dropout": 0.2, "epochs": 5, "batch_size": 32},
              {"embedding_dim": [32, 64, 128], "units": [16, 32, 64],
               "dropout": {"low": 0.0, "high": 0.5, "log": False, "int": False}}, trim=0),
        _spec("transformer", "token + position embedding -> 1 Transformer encoder block -> mean pool -> output",
              "keras", "sequences", ("keras", "build_transformer"),
              {**_SEQ, "embedding_dim": 32, "num_heads": 2, "ff_dim": 64, "dropout": 0.1,
               "epochs": 5, "batch_size": 32},
              {"embedding_dim": [32, 64], "num_heads": [2, 4], "ff_dim": [32, 64, 128]}, trim=_post_padded),
        _spec("sentence-embed", "frozen pretrained sentence encoder (MiniLM) embeddings -> RBF SVM (or logistic regression)",
              "sklearn", "text", ("encoders", "build_sentence_embed"),
              {**_ENCODER, "batch_size": 64, "cache": True, "backend": "auto", "head": "svm", "C": 2.0},
              {"C": {"low": 1e-2, "high": 1e3, "log": True, "int": False}, "head": ["svm", "logreg"]}),
        _spec("encoder-tuned", "pretrained sentence encoder (MiniLM) fine-tuned end to end, mean pool -> linear",
              "torch", "text", ("encoders", "build_encoder_tuned"),
              {**_ENCODER, "epochs": 4, "batch_size": 16, "dropout": 0.1, "head_init": "random"},
              {"learning_rate": {"low": 1e-5, "high": 1e-4, "log": True, "int": False},
               "epochs": [2, 3, 4, 5], "batch_size": [16, 32]}),
    ]
}


def get_model(name: str) -> ModelSpec:
    """Return the registry entry called ``name``; ParameterError naming the choices otherwise."""
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise ParameterError(
            f"unknown model {name!r}{did_you_mean(name, MODELS)}; choose one of: {', '.join(MODELS)}"
        ) from None


def available_models() -> list[ModelSpec]:
    """Every registry entry, in ladder order (tutorial models first)."""
    return list(MODELS.values())
