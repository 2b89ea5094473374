"""Hyperparameter values checked before any work, with scikit-learn's own constraint tables.

scikit-learn declares what each parameter accepts (``_parameter_constraints``) and checks it only
when ``fit`` starts, with its own wording ("The 'C' parameter of LogisticRegression must be ...").
Here the same constraints are checked when the textclass estimator's parameters are, and said in
textclass's words: ``C must be a float in the range (0.0, inf], got -1``. Keras model sizes use
the same constraint objects, so every message reads alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from numbers import Integral, Real
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC
from sklearn.utils._param_validation import Interval, make_constraint

from textclass.errors import ParameterError, TextclassError

_POSITIVE_INT = [Interval(Integral, 1, None, closed="left")]

#: Hyperparameters that no scikit-learn estimator sees under their own name (Keras sizes, the
#: n-gram maxima that become ``ngram_range``, the preprocessors' vocabulary sizes).
OWN: dict[str, list] = {
    **{name: _POSITIVE_INT for name in ("units", "dense_units", "embedding_dim", "num_filters", "kernel_size",
                                        "num_heads", "ff_dim", "num_words", "maxlen", "ngram_max",
                                        "word_ngram_max", "char_ngram_max")},
    "max_features": [None, *_POSITIVE_INT],
    "dropout": [Interval(Real, 0, 1, closed="left")],
}

#: textclass's wrappers pass these on to a scikit-learn estimator at fit: check them with its table.
BORROWED: dict[str, dict[str, list]] = {
    "CalibratedLinearSVC": {"C": LinearSVC._parameter_constraints["C"]},
    "NBLogisticRegression": {"C": LogisticRegression._parameter_constraints["C"],
                             "alpha": [Interval(Real, 0, None, closed="neither")]},
}


def check_model_params(model: str, params: Mapping[str, Any]) -> None:
    """Check ``TextClassifier(model, **params)``'s parameters now, as ``fit`` would: for a command
    to refuse a bad ``-p`` before it loads data or trains anything."""
    from textclass.estimator import TextClassifier

    TextClassifier(model, **params)._check_params()


def check(name: str, value: Any, constraints: list) -> None:
    """ParameterError ``"name must be <what scikit-learn says>, got value"`` unless one holds."""
    made = [make_constraint(c) for c in constraints]
    if any(c.is_satisfied_by(value) for c in made):
        return
    shown = [str(c) for c in made if not c.hidden]
    expected = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"
    raise ParameterError(f"{name} must be {expected}, got {value!r}")


def check_hyperparameters(spec: Any, params: Mapping[str, Any]) -> None:
    """Check a model's resolved hyperparameters: textclass's table, then, for scikit-learn models,
    every estimator the model builds against its own ``_parameter_constraints``."""
    for name, value in params.items():
        if name in OWN:
            check(name, value, OWN[name])
    if spec.kind != "sklearn":
        return
    try:
        built = spec.build(multilabel=False, random_state=None,
                           **{k: v for k, v in params.items() if k in spec.model_params})
    except TextclassError:  # already says what is wrong, e.g. a missing extra
        raise
    except (TypeError, ValueError) as e:
        raise ParameterError(f"model {spec.name!r}: invalid hyperparameters {dict(params)!r}: {e}") from None
    for est in _estimators(built):
        table = {**getattr(est, "_parameter_constraints", {}), **BORROWED.get(type(est).__name__, {})}
        for name, value in est.get_params(deep=False).items():
            if name in table and table[name] != "no_validation" and not isinstance(value, BaseEstimator):
                check(name, value, table[name])


def _estimators(est: BaseEstimator) -> Iterator[BaseEstimator]:
    yield est
    for value in est.get_params(deep=True).values():
        if isinstance(value, BaseEstimator):
            yield value
