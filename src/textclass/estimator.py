"""``TextClassifier``: every model in the registry as one scikit-learn estimator over raw texts.

One training loop for all Keras models (preprocess -> build -> compile -> fit) and a thin path for
scikit-learn models, which take raw texts themselves. The output head comes from the labels:
binary (1 sigmoid), multi-class (k softmax) or multi-label (k sigmoids + a threshold).
"""

from __future__ import annotations

import inspect
import numbers
import warnings
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from textclass.errors import DataError, LabelWarning, ParameterError, did_you_mean

PREDICT_BATCH = 512  # rows per forward pass: bounded memory, few distinct shapes to compile
PREDICT_CHUNK = 16384  # texts tokenized at a time, so huge inputs stream in bounded memory

#: Keras model -> its ``ModelSpec.predictor`` function (or None); weak, so it goes with the model.
_PREDICTORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_TWINS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its compiled packed twin
WIDTH_STEP = 8  # trimmed widths are rounded up to a multiple of this, to limit recompiles
#: Train steps per call of Keras' train function: the per-step callback and iterator work, a
#: third of a small model's step on 2 cores, happens once per this many batches. Callbacks here
#: act per epoch, and the arithmetic is unchanged.
STEPS_PER_EXECUTION = 64
#: threshold="auto" scores probabilities of texts held out of training: out of fold from this many
#: fits, or from THRESHOLD_HOLDOUT_FROM rows on (a hold-out of 1,000 rows or more), from one fit
#: without a THRESHOLD_HOLDOUT share, which costs 0.8 of a fit instead of 2 (tfidf-linear's rule;
#: tfidf-linear itself reuses its calibration's held-out probabilities and needs no extra fit).
THRESHOLD_FOLDS = 3
THRESHOLD_HOLDOUT = 0.2
THRESHOLD_HOLDOUT_FROM = 5000

_HEADS = {  # task -> (activation, loss)
    "binary": ("sigmoid", "binary_crossentropy"),
    "multiclass": ("softmax", "sparse_categorical_crossentropy"),
    "multilabel": ("sigmoid", "binary_crossentropy"),
}


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


# name -> (test, what is expected); checked once, at fit.
_CONSTRAINTS = {
    "model": (lambda v: isinstance(v, str), "a model name (see textclass.models.available_models())"),
    "epochs": (lambda v: v is None or (_is_int(v) and v >= 1), "None or an integer >= 1"),
    "batch_size": (lambda v: v is None or (_is_int(v) and v >= 1), "None or an integer >= 1"),
    "optimizer": (lambda v: isinstance(v, str), "a Keras optimizer name such as 'adam'"),
    "learning_rate": (lambda v: v is None or (_is_real(v) and v > 0), "None or a number > 0"),
    "validation_split": (lambda v: _is_real(v) and 0 <= v < 1, "a number in [0, 1)"),
    "early_stopping": (lambda v: isinstance(v, (bool, np.bool_)), "True or False"),
    "patience": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "class_weight": (lambda v: v is None or v == "balanced" or isinstance(v, dict),
                     "None, 'balanced' or a dict label -> weight"),
    "threshold": (lambda v: v == "auto" or (_is_real(v) and 0 <= v <= 1), "a number in [0, 1] or 'auto'"),
    "random_state": (lambda v: v is None or (_is_int(v) and v >= 0), "None or an integer >= 0"),
    "verbose": (lambda v: _is_int(v) or isinstance(v, bool), "0, 1 or 2"),
}


class TextClassifier(ClassifierMixin, BaseEstimator):
    """A text classifier over any model of the registry, usable wherever scikit-learn expects one.

    Parameters
    ----------
    model : str
        Registry name (``textclass models`` lists them), e.g. "bow-logreg" or "cnn".
    epochs, batch_size : int or None
        Keras training length; None takes the model's default (the tutorial's).
    optimizer : str
        Keras optimizer name.
    learning_rate : float or None
        None keeps the optimizer's default.
    validation_split : float
        Share of the *training* data held out, shuffled and stratified, to report ``val_*`` in
        ``history_`` and drive early stopping. Unlike Keras' own, it does not take the last rows.
    early_stopping : bool
        Stop when the validation loss (the training loss without validation) has not improved for
        ``patience`` epochs, and restore the best weights.
    patience : int
    class_weight : None, "balanced" or dict
        "balanced" weighs classes inversely to their frequency (skewed data such as sms-spam).
    threshold : float or "auto"
        Decision threshold on the positive-class (binary) or per-tag (multi-label) probability.
        "auto" learns it at fit: the one with the best accuracy (binary) or micro-F1 (multi-label)
        on probabilities of training texts held out of a fit (3-fold out of fold; from 5,000 texts
        on, a 20% hold-out), so fitting costs about 3x, or 2x; tfidf-linear's calibration already
        holds texts out, and its probabilities of them are used at no cost. Multi-class
        predictions take the argmax.
    random_state : int or None
        Seeds Keras, NumPy and the validation split; None is not reproducible.
    verbose : int
        Keras' verbosity; quiet by default.
    **params
        Model hyperparameters (``num_filters=64``, ``maxlen=100``...), checked against the
        model's defaults at fit.

    Training options (epochs ... patience) apply to Keras and PyTorch (``encoder-tuned``) models;
    scikit-learn models ignore them. PyTorch models train with AdamW whatever ``optimizer`` says.

    Attributes
    ----------
    classes_ : ndarray
        Labels (binary/multi-class) or tags (multi-label), sorted.
    task_ : {"binary", "multiclass", "multilabel"}
    hyperparameters_ : dict
        Every hyperparameter the model was built with: its defaults updated with ``**params``.
    history_ : dict
        Per-epoch lists (loss, accuracy, val_loss, val_accuracy); empty for scikit-learn models.
    model_ : keras.Model or scikit-learn estimator
    preprocessor_ : SequencePreprocessor, BowPreprocessor or None (scikit-learn models)
    codec_ : LabelCodec
    threshold_ : float
        The decision threshold ``predict`` applies: ``threshold``, or the one learned for "auto".

    Examples
    --------
    >>> from textclass.estimator import TextClassifier
    >>> clf = TextClassifier("bow-logreg").fit(["good", "great", "bad", "awful"], [1, 1, 0, 0])
    >>> clf.predict(["so good"]).tolist()
    [1]
    """

    def __init__(self, model: str = "bow-logreg", *, epochs: int | None = None,
                 batch_size: int | None = None, optimizer: str = "adam",
                 learning_rate: float | None = None, validation_split: float = 0.0,
                 early_stopping: bool = False, patience: int = 5,
                 class_weight: str | dict | None = None, threshold: float | str = 0.5,
                 random_state: int | None = None, verbose: int = 0, **params: Any) -> None:
        self.model = model
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.validation_split = validation_split
        self.early_stopping = early_stopping
        self.patience = patience
        self.class_weight = class_weight
        self.threshold = threshold
        self.random_state = random_state
        self.verbose = verbose
        self._set_hyperparameters(params)

    # ---- scikit-learn parameter protocol, extended with the model's **params ----

    def _hyperparameter_names(self) -> list[str]:
        fixed = set(self._get_param_names())
        return [k for k in vars(self) if k not in fixed and not k.startswith("_") and not k.endswith("_")]

    def _set_hyperparameters(self, params: dict[str, Any]) -> None:
        for name, value in params.items():
            if name.startswith("_") or name.endswith("_") or hasattr(type(self), name):
                raise ParameterError(f"{name!r} cannot be a hyperparameter name")
            setattr(self, name, value)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=deep)
        params.update({k: getattr(self, k) for k in self._hyperparameter_names()})
        return params

    def set_params(self, **params: Any) -> TextClassifier:
        fixed = set(self._get_param_names())
        super().set_params(**{k: v for k, v in params.items() if k in fixed})
        self._set_hyperparameters({k: v for k, v in params.items() if k not in fixed})
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.non_deterministic = self.random_state is None
        return tags

    # ---- fitting ----

    def _check_params(self):
        """Validate every parameter against the registry; return (spec, hyperparameters)."""
        from textclass.models import get_model

        params = self.get_params(deep=False)
        for name, (ok, expected) in _CONSTRAINTS.items():
            if not ok(params[name]):
                raise ParameterError(f"{name} must be {expected}, got {params[name]!r}")
        spec = get_model(self.model)
        hyper = {k: params[k] for k in self._hyperparameter_names()}
        for name in hyper:
            if name not in spec.defaults:
                raise ParameterError(
                    f"model {spec.name!r} has no hyperparameter {name!r}{did_you_mean(name, spec.defaults)}; "
                    f"allowed: {', '.join(sorted(spec.defaults))}")
        resolved = {**spec.defaults, **hyper}
        for name in ("epochs", "batch_size"):
            if params[name] is not None:
                resolved[name] = params[name]
        from textclass.constraints import check_hyperparameters

        check_hyperparameters(spec, resolved)
        return spec, resolved

    def fit(self, X: Iterable[str], y: Iterable[Any], *, callbacks: Sequence[Any] | None = None) -> TextClassifier:
        """Fit on raw texts ``X`` and labels ``y`` (tuples/lists of tags for multi-label).

        ``callbacks`` are extra Keras callbacks (e.g. a progress bar); ignored by scikit-learn models.
        """
        from textclass.labels import LabelCodec

        spec, hyper = self._check_params()
        texts = _as_texts(X)
        y = _as_labels(y, len(texts))
        codec = LabelCodec().fit(y)
        codes = codec.transform(y)
        if self.class_weight is not None and spec.kind != "sklearn" and codec.task_ == "multilabel":
            raise ParameterError(f"class_weight is not supported for multi-label {spec.kind} models")
        self.codec_ = codec
        self.classes_ = codec.classes_
        self.task_ = codec.task_
        self.hyperparameters_ = hyper
        fit = {"sklearn": self._fit_sklearn, "keras": self._fit_keras, "torch": self._fit_torch}[spec.kind]
        fit(spec, hyper, texts, codes, list(callbacks or []))
        self.threshold_ = self._learned_threshold(texts, y, codes) if self.threshold == "auto" else float(self.threshold)
        return self

    def _learned_threshold(self, texts: list[str], y: list[Any], codes: np.ndarray) -> float:
        """threshold="auto": the best threshold for probabilities from fits that did not see the
        texts scored (see ``THRESHOLD_FOLDS``); 0.5 for multi-class, which takes the argmax."""
        from sklearn.base import clone

        from textclass.evaluate import best_threshold

        if self.task_ == "multiclass":
            return 0.5
        truth = codes if self.task_ == "multilabel" else codes[:, None]
        scored = self._held_out_scores(truth)
        if scored is not None:
            return best_threshold(*scored, self.task_)
        column = {c: j for j, c in enumerate(self.classes_.tolist())}
        proba = np.zeros(truth.shape)
        held_rows = []
        for train, held in self._threshold_splits(codes):
            inner = clone(self).set_params(threshold=0.5)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the fit on all texts has said it already
                inner.fit([texts[i] for i in train], [y[i] for i in train])
            p = inner.predict_proba([texts[i] for i in held])
            if self.task_ == "binary":
                proba[held, 0] = p[:, 1]
            else:  # a tag absent from this fit's texts gets probability 0
                proba[np.ix_(held, [column[c] for c in inner.classes_.tolist()])] = p
            held_rows.append(held)
        rows = np.concatenate(held_rows)
        return best_threshold(truth[rows], proba[rows], self.task_)

    def _held_out_scores(self, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Of ``truth`` (0/1, one column per tag or the positive class), the pairs (text, column)
        that the model's own fit already scored held out (``held_out_proba_``: tfidf-linear's
        calibration), with their probabilities; or None. Then threshold="auto" costs no fit; tags
        too rare to hold out (under 2 texts) add no pairs."""
        steps = getattr(self.model_, "steps", None)  # scikit-learn pipelines; the head is the last step
        head = steps[-1][1] if steps else self.model_
        heads = getattr(head, "estimators_", None) if self.task_ == "multilabel" else [head]
        if not heads or not all(hasattr(h, "held_out_proba_") for h in heads):
            return None
        pairs = [(truth[h.held_out_, j], h.held_out_proba_[:, 1]) for j, h in enumerate(heads)]
        if not sum(len(t) for t, _ in pairs):
            return None
        return np.concatenate([t for t, _ in pairs]), np.concatenate([p for _, p in pairs])

    def _threshold_splits(self, codes: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        from sklearn.model_selection import KFold, ShuffleSplit, StratifiedKFold, StratifiedShuffleSplit

        stratify = codes.ndim == 1
        if stratify and np.bincount(codes).min() < THRESHOLD_FOLDS:
            raise ParameterError(f"threshold='auto' needs at least {THRESHOLD_FOLDS} texts of each label "
                                 f"(it scores held-out texts); give a number instead")
        if len(codes) >= THRESHOLD_HOLDOUT_FROM:
            splitter = (StratifiedShuffleSplit if stratify else ShuffleSplit)(
                n_splits=1, test_size=THRESHOLD_HOLDOUT, random_state=self.random_state)
        else:
            splitter = (StratifiedKFold if stratify else KFold)(
                THRESHOLD_FOLDS, shuffle=True, random_state=self.random_state)
        return list(splitter.split(np.zeros(len(codes)), codes if stratify else None))

    def _class_weight(self, codes: np.ndarray) -> dict[int, float] | None:
        if self.class_weight is None:
            return None
        if self.class_weight == "balanced":
            from sklearn.utils.class_weight import compute_class_weight

            present = np.unique(codes)
            weights = compute_class_weight("balanced", classes=present, y=codes)
            return {int(c): float(w) for c, w in zip(present, weights)}
        known = {label: i for i, label in enumerate(self.classes_.tolist())}
        unknown = [k for k in self.class_weight if k not in known]
        if unknown:
            raise ParameterError(f"class_weight has labels {unknown!r} not in the data's classes {list(known)!r}")
        return {known[k]: float(w) for k, w in self.class_weight.items()}

    def _fit_sklearn(self, spec, hyper, texts, codes, callbacks) -> None:
        est = spec.build(multilabel=self.task_ == "multilabel", random_state=self.random_state, **hyper)
        if self.class_weight is not None:
            names = [k for k in est.get_params() if k == "class_weight" or k.endswith("__class_weight")]
            if not names:
                raise ParameterError(f"model {spec.name!r} does not support class_weight")
            weights = "balanced" if self.class_weight == "balanced" else self._class_weight(codes)
            est.set_params(**{k: weights for k in names})
        with warnings.catch_warnings(record=True) as caught:
            self.model_ = est.fit(texts, codes)
        for w in caught:  # the model saw label codes: a LabelWarning is re-raised with the user's labels
            if isinstance(w.message, LabelWarning):
                warnings.warn(w.message.relabel(self.classes_.tolist()), stacklevel=3)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
        self.preprocessor_ = None
        self.history_ = {}

    def _fit_torch(self, spec, hyper, texts, codes, callbacks) -> None:
        """A PyTorch model trains itself; it gets the estimator's training options and the same
        stratified inner validation split as the Keras models."""
        training = {"early_stopping": self.early_stopping, "patience": self.patience,
                    "class_weight": self._class_weight(codes), "verbose": self.verbose}
        if self.learning_rate is not None:
            training["learning_rate"] = self.learning_rate
        est = spec.build(multilabel=self.task_ == "multilabel", random_state=self.random_state, **hyper, **training)
        train_idx, val_idx = self._validation_split(codes)
        validation = ([texts[i] for i in val_idx], codes[val_idx]) if len(val_idx) else None
        self.model_ = est.fit([texts[i] for i in train_idx], codes[train_idx], validation_data=validation,
                              callbacks=callbacks)
        self.preprocessor_ = None
        self.history_ = dict(est.history_)

    def _fit_keras(self, spec, hyper, texts, codes, callbacks) -> None:
        import keras

        from textclass.compile_cache import use_compile_cache
        from textclass.models import PREPROCESS_PARAMS, TRAIN_PARAMS, pool
        from textclass.preprocess import BowPreprocessor, SequencePreprocessor

        use_compile_cache()
        if self.random_state is not None:
            keras.utils.set_random_seed(self.random_state)
        train_idx, val_idx = self._validation_split(codes)
        prep_names = PREPROCESS_PARAMS[spec.inputs]
        prep_cls = SequencePreprocessor if spec.inputs == "sequences" else BowPreprocessor
        pre = prep_cls(**{k: v for k, v in hyper.items() if k in prep_names})
        train_texts = [texts[i] for i in train_idx]
        pre.fit(train_texts)

        build_args = {k: v for k, v in hyper.items() if k not in prep_names and k not in TRAIN_PARAMS}
        embedding_matrix = None
        if build_args.get("vectors") is not None:
            from textclass.embeddings import build_embedding_matrix

            embedding_matrix = build_embedding_matrix(build_args["vectors"], pre.tokenizer.word_index)
        if "vectors" in build_args and not _accepts(spec.build, "vectors"):
            del build_args["vectors"]
        activation, loss = _HEADS[self.task_]
        input_dim = pre.input_dim
        if spec.inputs == "sequences":  # a few shared shapes: folds and trials reuse compiled programs
            input_dim = pool.vocabulary_rows(input_dim)
            if embedding_matrix is not None:
                embedding_matrix = np.pad(embedding_matrix, ((0, input_dim - len(embedding_matrix)), (0, 0)))
        build = dict(input_dim=input_dim, input_length=pre.maxlen if spec.inputs == "sequences" else None,
                     n_outputs=1 if self.task_ == "binary" else len(self.classes_), activation=activation,
                     **build_args)
        optimizer = self._optimizer()

        def built():
            model = spec.build(embedding_matrix=embedding_matrix, **build)
            model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"], steps_per_execution=STEPS_PER_EXECUTION)
            return model

        key = None  # a model's starting state is its key: seeded, and no per-fit embedding matrix
        if self.random_state is not None and embedding_matrix is None:
            key = (spec.name, repr(sorted(build.items())), loss, repr(sorted((k, v) for k, v in optimizer.get_config().items() if k != "name")),
                   self.random_state, keras.config.dtype_policy().name)
        if hasattr(self, "model_"):
            pool.give_back(self.model_)
        model, reused = pool.take(self, key, built)
        _PREDICTORS.pop(model, None)  # a reused model's weights change: its predictor is stale

        x_train = pre.transform(train_texts)
        validation_data = None
        if len(val_idx):
            validation_data = (pre.transform([texts[i] for i in val_idx]), codes[val_idx])
        stopping = [keras.callbacks.EarlyStopping(
            monitor="val_loss" if validation_data is not None else "loss",
            patience=self.patience, restore_best_weights=True)] if self.early_stopping else []
        x_fit, y_fit, batch_size, shuffle = x_train, codes[train_idx], hyper["batch_size"], True
        extra = spec.trim_extra(hyper) if spec.inputs == "sequences" else None
        fit_model = _packed_twin(spec, model, loss) if extra else None
        if fit_model is not None:  # a max-pool model: train on packed rows, Keras' own batches
            from textclass.models.batches import VALIDATION_BATCH, PackedBatches
            from textclass.models.keras import ShownModel

            callbacks = [ShownModel(callbacks, model)] if callbacks else []
            x_fit = PackedBatches(x_train, y_fit, hyper["batch_size"], extra, epochs=hyper["epochs"])
            if validation_data is not None:
                validation_data = PackedBatches(*validation_data, VALIDATION_BATCH, extra, shuffle=False)
            y_fit, batch_size, shuffle = None, None, False
        elif extra is not None:  # the padded tail does not change this model: train on trimmed batches
            from textclass.models.batches import training_batches

            batches, val_batches = training_batches(
                x_train, y_fit, batch_size=hyper["batch_size"], epochs=hyper["epochs"], extra=extra,
                step=WIDTH_STEP, seed=self.random_state, validation=validation_data)
            if len(batches.widths) > 1:  # length buckets: the batches shuffle themselves
                x_fit, validation_data = batches, val_batches
                y_fit, batch_size, shuffle = None, None, False
            else:  # one width: Keras' own shuffled batches of the trimmed rows, as the padded fit draws them
                x_fit = x_train[:, :batches.widths[0]]
                if validation_data is not None:
                    validation_data = (validation_data[0][:, :val_batches.widths[0]], validation_data[1])
        if reused:  # Keras' first fit of a new model draws one epoch's batches to build its metrics, then
            # discards them: draw them here too, so the seeded epochs are a fresh model's
            if shuffle:
                np.random.permutation(len(x_fit))
            elif hasattr(x_fit, "on_epoch_end"):
                x_fit[0]
                x_fit.on_epoch_end()
        history = (fit_model or model).fit(x_fit, y_fit, epochs=hyper["epochs"], batch_size=batch_size,
                                           validation_data=validation_data,
                                           class_weight=self._class_weight(codes[train_idx]),
                                           callbacks=stopping + callbacks, verbose=self.verbose, shuffle=shuffle)
        self.model_ = model
        self.preprocessor_ = pre
        self.history_ = {k: [float(v) for v in vs] for k, vs in history.history.items()}

    def _validation_split(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shuffled, stratified (single-label) hold-out of the training rows."""
        n = len(codes)
        if not self.validation_split:
            return np.arange(n), np.arange(0)
        from sklearn.model_selection import train_test_split

        stratify = None
        if codes.ndim == 1:
            n_val = int(np.ceil(self.validation_split * n))
            counts = np.bincount(codes)
            if counts[counts > 0].min() >= 2 and n_val >= len(counts[counts > 0]):
                stratify = codes
        try:
            return train_test_split(np.arange(n), test_size=self.validation_split,
                                    random_state=self.random_state, stratify=stratify)
        except ValueError as e:
            raise ParameterError(f"validation_split={self.validation_split}: {e}") from None

    def _optimizer(self):
        import keras

        ident = self.optimizer if self.learning_rate is None else {
            "class_name": self.optimizer, "config": {"learning_rate": float(self.learning_rate)}}
        try:
            return keras.optimizers.get(ident)
        except ValueError:
            raise ParameterError(f"optimizer must be a Keras optimizer name such as 'adam', "
                                 f"got {self.optimizer!r}") from None

    # ---- prediction ----

    def predict_proba(self, X: Iterable[str]) -> np.ndarray:
        """Probabilities, shape (n, len(classes_)): per class, or per tag for multi-label."""
        check_is_fitted(self, "model_")
        texts = _as_texts(X, allow_empty=True)
        if self.preprocessor_ is None:
            return self._proba_sklearn(texts)
        out = self._forward_keras(texts)
        if self.task_ == "binary":
            out = np.hstack([1.0 - out, out])
        return out

    def _proba_sklearn(self, texts: list[str]) -> np.ndarray:
        k = len(self.classes_)
        out = np.empty((len(texts), k), dtype=np.float64)
        for start in range(0, len(texts), PREDICT_CHUNK):
            proba = self.model_.predict_proba(texts[start:start + PREDICT_CHUNK])
            if isinstance(proba, list):  # MultiOutputClassifier: one (n, 2) array per tag
                proba = np.column_stack([p[:, 1] for p in proba])
            out[start:start + len(proba)] = proba
        return out

    def _forward_keras(self, texts: list[str]) -> np.ndarray:
        pre = self.preprocessor_
        n_out = 1 if self.task_ == "binary" else len(self.classes_)
        out = np.empty((len(texts), n_out), dtype=np.float32)
        trim = self._trim()
        pending: list = []  # the previous chunk's outputs, computed while this chunk is tokenized
        for start in range(0, len(texts), PREDICT_CHUNK):
            chunk = texts[start:start + PREDICT_CHUNK]
            if pre.kind == "sequences":
                batches = pre.batches(chunk, trim, PREDICT_BATCH, WIDTH_STEP)
            else:
                batches = ((np.arange(b, min(b + PREDICT_BATCH, len(chunk))), pre.transform(chunk[b:b + PREDICT_BATCH]))
                           for b in range(0, len(chunk), PREDICT_BATCH))
            dispatched = [(start + idx, self._run(x)) for idx, x in batches]
            for rows, y in pending:
                out[rows] = np.asarray(y)[:len(rows)]
            pending = dispatched
        for rows, y in pending:
            out[rows] = np.asarray(y)[:len(rows)]
        return out

    def _trim(self) -> int | None:
        """Padding columns the model needs past the longest text for an unchanged output, or None."""
        from textclass.models import get_model
        from textclass.models.keras import ignores_padded_tail

        return get_model(self.model).trim_extra(self.hyperparameters_) if ignores_padded_tail(self.model_) else None

    def _run(self, x: np.ndarray) -> Any:
        """One jitted forward pass (the model's predictor where it has one: asynchronous); rows are
        padded to a power of two so few shapes get compiled, and the caller drops the padded rows
        (after conversion to NumPy: slicing a JAX array would compile a program per size)."""
        n = len(x)
        rows = 1 << max(0, (n - 1).bit_length())
        if rows != n:
            x = np.concatenate([x, np.zeros((rows - n,) + x.shape[1:], dtype=x.dtype)])
        fast = self._predictor()
        y = fast(x) if fast is not None else None
        return y if y is not None else self.model_.predict_on_batch(x)

    def _predictor(self) -> Callable[[np.ndarray], Any] | None:
        """The registry's faster forward pass for this fitted model, built once per model."""
        if self.model_ not in _PREDICTORS:
            from textclass.models import get_model

            make = get_model(self.model).predictor
            _PREDICTORS[self.model_] = make(self.model_) if make is not None else None
        return _PREDICTORS[self.model_]

    def predict(self, X: Iterable[str]) -> np.ndarray | list[tuple]:
        """The user's own labels; for multi-label, a list of tag tuples (probability > ``threshold_``)."""
        return self.labels_from_proba(self.predict_proba(X))

    def labels_from_proba(self, proba: np.ndarray) -> np.ndarray | list[tuple]:
        """Labels from ``predict_proba``'s output, as ``predict`` gives them: callers that need
        both probabilities and labels run the model once."""
        check_is_fitted(self, "model_")
        if self.task_ == "multilabel":
            return self.codec_.inverse_transform((proba > self.threshold_).astype(np.int8))
        if self.task_ == "binary":
            codes = (proba[:, 1] > self.threshold_).astype(int)
        else:
            codes = proba.argmax(axis=1)
        return self.codec_.inverse_transform(codes)

    def score(self, X: Iterable[str], y: Iterable[Any], sample_weight=None) -> float:
        """Accuracy; subset accuracy (every tag right) for multi-label, as in scikit-learn."""
        pred = self.predict(X)
        y = _as_labels(y, len(pred))
        if self.task_ == "multilabel":
            correct = [frozenset(a) == frozenset(b) for a, b in zip(y, pred)]
        else:
            correct = [a == b for a, b in zip(y, pred.tolist())]
        return float(np.average(correct, weights=sample_weight))

    # ---- inspection and persistence ----

    def explain(self, X: Iterable[str], *, label: Any = None) -> list:
        """Each word's signed contribution towards ``label`` (default: the predicted one), one
        ``textclass.explain.Explanation`` per text: exact for linear models, occlusion otherwise."""
        from textclass.explain import explain

        check_is_fitted(self, "model_")
        return explain(self, X, label=label)

    def summary(self) -> str:
        """Keras' layer table, or the scikit-learn pipeline; with the hyperparameters used."""
        check_is_fitted(self, "model_")
        if self.preprocessor_ is None:
            body = repr(self.model_)
        else:
            lines: list[str] = []
            self.model_.summary(print_fn=lambda line, **_: lines.append(line))
            if self.preprocessor_.kind == "sequences":
                from textclass.models.pool import vocabulary_rows

                ids = self.preprocessor_.input_dim
                lines.append(f"embedding rows: {vocabulary_rows(ids)} for {ids} token ids "
                             "(rounded up to a shared size; the extra rows are never looked up)")
            body = "\n".join(lines)
        params = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters_.items())
        return f"{self.model} ({self.task_}, {len(self.classes_)} classes)\n{body}\nhyperparameters: {params}"

    def save(self, path: str | Path) -> Path:
        """Write a model directory (see ``textclass.store``); returns its path."""
        from textclass.store import save_model

        return save_model(self, path)


def _packed_twin(spec, model, loss: str) -> Any:
    """``model``'s packed twin (``models.keras.packed_twin``), compiled once with ``model``'s own
    optimizer, so a pooled model and its twin are restored together; None for other models."""
    if spec.packed is None:
        return None
    if model not in _TWINS:
        twin = spec.packed(model)
        if twin is not None:
            twin.compile(optimizer=model.optimizer, loss=loss, metrics=["accuracy"],
                         steps_per_execution=STEPS_PER_EXECUTION)
        _TWINS[model] = twin
    return _TWINS[model]


def _accepts(fn, name: str) -> bool:
    params = inspect.signature(fn).parameters.values()
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)


def _as_texts(X: Any, allow_empty: bool = False) -> list[str]:
    """A list of str from a list, Series, 1-D array or single-column 2-D input."""
    if isinstance(X, (str, bytes)):
        raise DataError("expected a collection of texts, got a single string; wrap it in a list")
    if hasattr(X, "iloc") and getattr(X, "ndim", 1) == 2:  # DataFrame
        if X.shape[1] != 1:
            raise DataError(f"expected one text column, got {X.shape[1]} columns")
        X = X.iloc[:, 0]
    elif isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == 1:
        X = X[:, 0]
    elif isinstance(X, np.ndarray) and X.ndim != 1:
        raise DataError(f"expected a 1-D collection of texts, got an array of shape {X.shape}")
    texts = list(X)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise DataError(f"text at row {i} is {type(t).__name__} {t!r}; expected a string")
    if not texts and not allow_empty:
        raise DataError("no texts to fit on")
    return texts


def _as_labels(y: Any, n: int) -> list:
    labels = list(y)
    if len(labels) != n:
        raise DataError(f"got {n} texts but {len(labels)} labels")
    return labels
