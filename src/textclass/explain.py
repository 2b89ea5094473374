"""Explanations: which words of a text pushed the model towards a label, and how far.

``explain(model, texts)`` works on anything with the predictor protocol (``classes_``, ``task_``,
``predict_proba``, ``labels_from_proba``): fitted ``TextClassifier``s of every registry model and
exported models alike. The method depends on what the fitted model is:

- ``"exact"``: linear models over n-gram counts (bow-logreg, nbsvm, tfidf-linear; see
  ``textclass.models.decompose``). A word's weight is the sum of its features' coef x value,
  word n-grams spread equally over their n words and character n-grams over the characters they
  cover; the weights plus ``base`` (the intercept) are the score, to rounding.
- ``"occlusion"``: every other model. A word's weight is score(text) - score(text without that
  word); ``base`` is the score of the empty text. All the variants of a text go through the model
  in one batched call, shared by several texts up to ``OCCLUSION_BATCH`` variants. Keras models
  are scored on their logits (the output layer without its activation), so confident predictions
  do not saturate in float32; other models on the log-odds of their probabilities, clipped one
  float epsilon inside (0, 1).

The score of a label is its logit: for binary and multi-label models the log-odds of the label or
tag, ``log p / (1 - p)`` (so the negative class of a binary model has the opposite sign); for
softmax models the centred logit ``log p_k - mean_j log p_j``; for multi-class models made of one
binary model per class (nbsvm, tfidf-linear) that model's own log-odds.

Words are runs of word characters (with inner apostrophes, "don't") and runs of other non-space
characters ("!!"), so every character but whitespace is in exactly one word and
``text[w.start:w.end] == w.word``. An empty text has no words; a text the model knows no word of
gets weights of 0 and ``score == base``: the model answers it as it answers no text at all.
"""

from __future__ import annotations

import copy
import re
import sys
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from textclass.errors import ParameterError
from textclass.labels import plain

WORDS = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]+")
# Variants per model call (one text's variants are never split): large enough that the
# estimator's length-sorted batches of 512 waste little on padding, small enough to stay light.
OCCLUSION_BATCH = 4096


@dataclass(frozen=True)
class WordContribution:
    """One word of a text: its span ``text[start:end]`` and its signed weight towards the label."""

    word: str
    start: int
    end: int
    weight: float


@dataclass(frozen=True)
class Explanation:
    """Why a model gave ``text`` its score for ``label``: the words' weights and the ``base``.

    ``method`` is "exact" (the weights plus ``base`` are ``score``) or "occlusion" (each weight is
    ``score`` minus the score without that word; ``base`` is the score of the empty text).
    """

    text: str
    label: Any  # the class/tag explained (predicted one unless asked)
    predicted: Any  # the predicted label (multi-label: tuple of tags)
    probability: float  # the model's probability of `label` for this text
    method: str  # "exact" (linear) or "occlusion"
    base: float  # the logit with no words (exact: the intercept)
    score: float  # the model's logit of `label` for this text
    words: tuple[WordContribution, ...]  # start/end: character offsets into text

    def to_dict(self) -> dict:
        """JSON-ready: labels as plain str/int, tuples as lists."""
        return {
            "text": self.text, "label": _json_label(self.label), "predicted": _json_label(self.predicted),
            "probability": self.probability, "method": self.method, "base": self.base,
            "score": self.score, "words": [asdict(w) for w in self.words],
        }


def _json_label(value: Any) -> Any:
    return [plain(v) for v in value] if isinstance(value, (tuple, list)) else plain(value)


def word_spans(text: str) -> list[tuple[str, int, int]]:
    """The words of ``text`` as (word, start, end), in order (see the module docstring)."""
    return [(m.group(), m.start(), m.end()) for m in WORDS.finditer(text)]


def explain(model: Any, texts: Iterable[str], *, label: Any = None) -> list[Explanation]:
    """Explain each text's score for ``label``, or for its own predicted label by default.

    Multi-label models explain one tag at a time: ``label``, else each text's most probable tag.
    ``label`` may also be given as a string ("1" for the class 1, as the CLI and JSON send it); a
    label the model does not have is a ``ParameterError`` naming the model's labels.
    """
    from textclass.estimator import _as_texts

    texts = _as_texts(texts, allow_empty=True)
    wanted = None if label is None else _label_index(model, label)
    return _method(model)(model, texts, wanted)


def _label_index(model: Any, label: Any) -> int:
    classes = [plain(c) for c in model.classes_]
    label = plain(label)
    for match in (lambda c: c == label, lambda c: str(c) == str(label)):
        found = [i for i, c in enumerate(classes) if match(c)]
        if found:
            return found[0]
    kind = "tags" if model.task_ == "multilabel" else "labels"
    raise ParameterError(f"label {label!r} is not one of the model's {kind}: {', '.join(map(repr, classes))}")


# ---- which method: by what the fitted model is -----------------------------------------------

Method = Callable[[Any, list[str], "int | None"], list[Explanation]]
_METHODS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # fitted model -> its method


def _method(model: Any) -> Method:
    """The explainer for ``model``, built once per fitted model (a Keras logit model compiles)."""
    fitted = getattr(model, "model_", None)
    try:
        return _METHODS[fitted]
    except (KeyError, TypeError):  # TypeError: None or an object without weak references
        pass
    method = next((m for m in (recognise(fitted) for recognise in _RECOGNISERS) if m is not None), None)
    method = method or _Occlusion(_proba_scores)
    try:
        _METHODS[fitted] = method
    except TypeError:
        pass
    return method


def _linear(fitted: Any) -> Method | None:
    """A scikit-learn pipeline that ``textclass.models.decompose`` can open up: exact."""
    if "sklearn" not in sys.modules:  # then ``fitted`` cannot be a scikit-learn estimator
        return None
    from textclass.models.decompose import decompose

    decomposition = decompose(fitted)
    return None if decomposition is None else _Exact(decomposition)


def _keras(fitted: Any) -> Method | None:
    """A Keras model with a sigmoid or softmax output layer: occlusion on its logits."""
    keras = sys.modules.get("keras")
    if keras is None or not isinstance(fitted, keras.Model):
        return None
    head = fitted.layers[-1]
    if not isinstance(head, keras.layers.Dense) or head.activation.__name__ not in ("sigmoid", "softmax"):
        return None
    config = {**head.get_config(), "activation": "linear", "name": f"{head.name}_logits"}
    linear = keras.layers.Dense.from_config(config)
    logits = linear(head.input)
    linear.set_weights(head.get_weights())
    return _Occlusion(_LogitScores(keras.Model(fitted.inputs, logits)))


_RECOGNISERS = (_linear, _keras)  # first match wins; anything else: occlusion on probabilities


# ---- exact: linear models --------------------------------------------------------------------

class _Exact:
    method = "exact"

    def __init__(self, decomposition) -> None:
        self.decomposition = decomposition

    def __call__(self, model: Any, texts: list[str], wanted: int | None) -> list[Explanation]:
        d = self.decomposition
        if not texts:
            return []
        x = d.features(texts)
        proba = np.asarray(d.predict_proba(x))  # model.predict_proba(texts), vectorizing once
        predicted = model.labels_from_proba(proba)
        out = []
        for i, text in enumerate(texts):
            k = _target(model, proba[i], predicted[i], wanted)
            spans = word_spans(text)
            owner = np.full(len(text), -1, dtype=np.int64)
            for j, (_, start, end) in enumerate(spans):
                owner[start:end] = j
            weights, score = d.split(text, x[i], k, owner, len(spans))
            out.append(_explanation(model, text, k, predicted[i], proba[i, k], self.method,
                                    float(d.intercept[k]), score, spans, weights))
        return out


# ---- occlusion: any model --------------------------------------------------------------------

class _Occlusion:
    method = "occlusion"

    def __init__(self, scores: Callable[[Any, list[str]], tuple[np.ndarray, np.ndarray]]) -> None:
        self.scores = scores  # (model, texts) -> (probabilities, per-class scores)

    def __call__(self, model: Any, texts: list[str], wanted: int | None) -> list[Explanation]:
        out = []
        for group in _groups(texts):
            # One call: the empty text (the base), then each text and its variants without a word.
            variants = [""]
            for text, spans in group:
                variants.append(text)
                variants += [_without(text, start, end) for _, start, end in spans]
            proba, scores = self.scores(model, variants)
            rows = np.cumsum([1] + [1 + len(spans) for _, spans in group[:-1]])
            predicted = model.labels_from_proba(proba[rows])
            for (text, spans), row, pred in zip(group, rows, predicted):
                k = _target(model, proba[row], pred, wanted)
                score = scores[row, k]
                weights = score - scores[row + 1:row + 1 + len(spans), k]
                out.append(_explanation(model, text, k, pred, proba[row, k], self.method,
                                        float(scores[0, k]), float(score), spans, weights))
        return out


def _groups(texts: list[str]) -> Iterator[list[tuple[str, list[tuple[str, int, int]]]]]:
    """Texts with their words, in groups of at most ``OCCLUSION_BATCH`` variants (but >= 1 text)."""
    group: list = []
    size = 1
    for text in texts:
        spans = word_spans(text)
        if group and size + 1 + len(spans) > OCCLUSION_BATCH:
            yield group
            group, size = [], 1
        group.append((text, spans))
        size += 1 + len(spans)
    if group:
        yield group


def _without(text: str, start: int, end: int) -> str:
    """``text`` without ``text[start:end]``; a space keeps its neighbours apart ("good.Bad")."""
    glue = " " if 0 < start and end < len(text) and not text[start - 1].isspace() and not text[end].isspace() else ""
    return text[:start] + glue + text[end:]


def _proba_scores(model: Any, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Any predictor: its probabilities and their log-odds (see the module docstring)."""
    proba = np.asarray(model.predict_proba(texts))
    eps = np.finfo(proba.dtype if np.issubdtype(proba.dtype, np.floating) else np.float64).eps
    logp = np.log(np.clip(proba.astype(np.float64), eps, 1 - eps))
    if model.task_ == "binary":
        s = logp[:, 1] - logp[:, 0]
        return proba, np.column_stack([-s, s])
    if model.task_ == "multilabel":
        return proba, logp - np.log(1 - np.clip(proba.astype(np.float64), eps, 1 - eps))
    return proba, logp - logp.mean(axis=1, keepdims=True)


class _LogitScores:
    """A ``TextClassifier`` whose Keras model ends in a sigmoid or softmax layer: the same
    classifier over ``logits`` (that model without the activation) gives exact scores, and the
    activation applied to them gives the probabilities, in one forward pass."""

    def __init__(self, logits: Any) -> None:
        self.logits = logits

    def __call__(self, model: Any, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        from scipy.special import expit, softmax

        twin = copy.copy(model)
        twin.model_ = self.logits
        # predict_proba's columns are the model's outputs ([1 - out, out] for binary): the logits.
        out = np.asarray(twin.predict_proba(texts), dtype=np.float64)
        if model.task_ == "binary":
            z = out[:, 1]
            p = expit(z)
            return np.column_stack([1 - p, p]), np.column_stack([-z, z])
        if model.task_ == "multilabel":
            return expit(out), out
        return softmax(out, axis=1), out - out.mean(axis=1, keepdims=True)


# ---- shared ----------------------------------------------------------------------------------

def _target(model: Any, proba: np.ndarray, predicted: Any, wanted: int | None) -> int:
    """The class explained: the one asked for, else the predicted one (multi-label: the most
    probable tag, predicted or not)."""
    if wanted is not None:
        return wanted
    if model.task_ == "multilabel":
        return int(np.argmax(proba))
    return [plain(c) for c in model.classes_].index(plain(predicted))


def _explanation(model: Any, text: str, k: int, predicted: Any, probability: float, method: str,
                 base: float, score: float, spans: Sequence[tuple[str, int, int]],
                 weights: np.ndarray) -> Explanation:
    if model.task_ == "multilabel":
        predicted = tuple(plain(t) for t in predicted)
    words = tuple(WordContribution(w, start, end, float(x)) for (w, start, end), x in zip(spans, weights))
    return Explanation(text=text, label=plain(model.classes_[k]), predicted=plain(predicted),
                       probability=float(probability), method=method, base=base, score=score, words=words)


# ---- terminal output -------------------------------------------------------------------------

_NEUTRAL, _FOR, _AGAINST = (150, 150, 150), (0, 175, 0), (215, 0, 0)


def render(explanation: Explanation, top: int = 6) -> Any:
    """A rich renderable: a line with the label and probability, the text with each word coloured
    by its weight (green for the label, red against it, stronger for larger weights), and the
    ``top`` words by weight (so the answer survives output without colour)."""
    from rich.color import Color
    from rich.console import Group
    from rich.style import Style
    from rich.text import Text

    e = explanation
    scale = max((abs(w.weight) for w in e.words), default=0.0)

    def style(weight: float) -> Style:
        t = abs(weight) / scale if scale else 0.0
        end = _FOR if weight > 0 else _AGAINST
        rgb = [round(a + (b - a) * t) for a, b in zip(_NEUTRAL, end)]
        return Style(color=Color.from_rgb(*rgb), bold=t >= 0.5)

    predicted = ", ".join(map(str, e.predicted)) if isinstance(e.predicted, tuple) else str(e.predicted)
    head = Text.assemble((str(e.label), "bold"), f"  p={e.probability:.3f}  (predicted: {predicted or 'no tag'})",
                         (f"  {e.method}: score {e.score:+.3f}, base {e.base:+.3f}", "dim"))
    body = Text()
    at = 0
    for w in e.words:
        body.append(e.text[at:w.start])
        body.append(w.word, style(w.weight))
        at = w.end
    body.append(e.text[at:])
    lines = [head, body]
    strongest = sorted((w for w in e.words if w.weight), key=lambda w: -abs(w.weight))[:top]
    if strongest:
        lines.append(Text("  ").join(Text(f"{w.weight:+.3g} {w.word}", style(w.weight)) for w in strongest))
    else:
        lines.append(Text("no word moved the score: the model knows none of them, and answers as for an empty text"
                          if e.words else "an empty text: the score is the model's base", "dim"))
    return Group(*lines)
