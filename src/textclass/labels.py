"""Label handling: detect the task, encode labels for training, decode predictions.

``LabelCodec`` is to textclass what ``LabelEncoder`` / ``MultiLabelBinarizer`` are to
scikit-learn, in one object that also remembers the task and serialises to JSON, so a saved model
answers in the user's own label values (``"spam"``, ``1``, ``("joy", "love")``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import numpy as np

from textclass.errors import DataError

Task = Literal["binary", "multiclass", "multilabel"]
_MULTI = (list, tuple, set, frozenset, np.ndarray)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, pd.NA raise or compare unequal to themselves
    except (TypeError, ValueError):
        return True


def _as_list(y: Any) -> list:
    if isinstance(y, str):
        raise DataError("labels must be a sequence of labels, not a single string")
    return list(y)


def infer_task(y: Iterable[Any]) -> Task:
    """``"multilabel"`` if every item is a list/tuple/set, else ``"binary"`` (<= 2 values) or ``"multiclass"``."""
    items = _as_list(y)
    if items and all(isinstance(v, _MULTI) for v in items):
        return "multilabel"
    if any(isinstance(v, _MULTI) for v in items):
        raise DataError("labels mix single values and lists; expected one label per item, or a list per item")
    n = len({plain(v) for v in items if not _is_missing(v)})
    return "binary" if n <= 2 else "multiclass"


def plain(value: Any) -> Any:
    """A NumPy scalar as its Python value, so JSON keeps int as int and str as str."""
    return value.item() if isinstance(value, np.generic) else value


def _check_missing(items: list) -> None:
    missing = [i for i, v in enumerate(items) if not isinstance(v, _MULTI) and _is_missing(v)]
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
        raise DataError(f"{len(missing)} missing (NaN/None) label(s) at position(s) {shown}; every item needs a label")


def _sorted(values: set) -> list:
    try:
        return sorted(values)
    except TypeError:
        kinds = sorted({type(v).__name__ for v in values})
        raise DataError(f"labels mix types ({', '.join(kinds)}); expected all str or all int") from None


def _array(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values  # keeps Python str/tuple items as they are
    return out


def _classes(values: list) -> np.ndarray:
    """Numbers as a numeric array (what scikit-learn's metrics expect); anything else as objects."""
    if all(isinstance(v, (int, float)) for v in values):  # bool is an int too
        return np.array(values)
    return _array(values)


class LabelCodec:
    """Encode labels to integers (or an indicator matrix) and back.

    Attributes
    ----------
    task_ : "binary", "multiclass" or "multilabel"
    classes_ : np.ndarray of the sorted label values (tags, for multi-label)

    Examples
    --------
    >>> codec = LabelCodec().fit(["ham", "spam", "ham"])
    >>> codec.task_, codec.transform(["spam"]).tolist(), codec.inverse_transform([0]).tolist()
    ('binary', [1], ['ham'])
    """

    def fit(self, y: Iterable[Any]) -> LabelCodec:
        items = _as_list(y)
        if not items:
            raise DataError("no labels: expected at least two items with two different labels")
        task = infer_task(items)
        _check_missing(items)
        if task == "multilabel":
            tags = {plain(t) for v in items for t in v}
            if any(_is_missing(t) for t in tags):
                raise DataError("a multi-label item holds a missing (NaN/None) tag")
        else:
            tags = {plain(v) for v in items}
        classes = _sorted(tags)
        if len(classes) < 2:
            shown = repr(classes[0]) if classes else "none"
            raise DataError(f"labels hold one class only ({shown}); a classifier needs at least two")
        self.task_: Task = task
        self.classes_ = _classes(classes)
        self._index = {c: i for i, c in enumerate(classes)}
        return self

    def _code(self, value: Any) -> int:
        try:
            return self._index[plain(value)]
        except (KeyError, TypeError):
            raise DataError(
                f"unknown label {value!r}; expected one of {', '.join(map(repr, self.classes_[:20]))}"
            ) from None

    def transform(self, y: Iterable[Any]) -> np.ndarray:
        """Integer codes (n,), or for multi-label an int8 indicator matrix (n, n_classes)."""
        items = _as_list(y)
        _check_missing(items)
        if self.task_ != "multilabel":
            return np.fromiter((self._code(v) for v in items), dtype=np.int64, count=len(items))
        out = np.zeros((len(items), len(self.classes_)), dtype=np.int8)
        for row, tags in enumerate(items):
            if not isinstance(tags, _MULTI):
                raise DataError(f"label at position {row} is {tags!r}; expected a list of tags (multi-label)")
            for t in tags:
                out[row, self._code(t)] = 1
        return out

    def inverse_transform(self, codes: Any) -> np.ndarray:
        """The user's label values for codes (or an indicator matrix): tuples of tags for multi-label."""
        codes = np.asarray(codes)
        if self.task_ != "multilabel":
            return self.classes_[codes.astype(np.int64).ravel()]
        if codes.ndim != 2 or codes.shape[1] != len(self.classes_):
            raise DataError(f"expected an indicator matrix with {len(self.classes_)} columns, got shape {codes.shape}")
        return _array([tuple(self.classes_[np.flatnonzero(row)].tolist()) for row in codes])

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state; int labels stay int and str labels stay str through JSON."""
        return {"task": self.task_, "classes": [plain(c) for c in self.classes_]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabelCodec:
        codec = cls()
        codec.task_ = d["task"]
        codec.classes_ = _classes(list(d["classes"]))
        codec._index = {plain(c): i for i, c in enumerate(codec.classes_)}
        return codec
