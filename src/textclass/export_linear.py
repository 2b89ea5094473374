"""scikit-learn pipelines as ONNX: the vectorizer as JSON, the linear part (and its calibration) as a graph.

Why not skl2onnx for the whole pipeline (tried with skl2onnx 1.20 / onnxruntime 1.32): it refuses
``analyzer="char_wb"`` (NotImplementedError: "only tokenizer='word' is fully supported"), so
tfidf-linear cannot be converted at all; its word graphs lower-case with ONNX's
``StringNormalizer``, which onnxruntime could not even load here without the en_US.UTF-8 locale
installed (a system dependency on every serving machine); and our ``NBLogisticRegression`` and
``CalibratedLinearSVC`` would need custom converters anyway. So the fitted vectorizers become ``textclass.features`` blocks (vocabulary, idf, settings; run
in NumPy by the runtime) and every supported head reduces exactly to ``z = X @ W + b`` followed
by one of four links; the graph takes the feature matrix as sparse triplets, so a 50,000-term
char n-gram vocabulary never becomes a dense batch.

Each estimator type has one extractor in ``FEATURES`` or ``HEADS`` (looked up along the MRO).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier, _ConstantPredictor
from sklearn.pipeline import FeatureUnion, Pipeline

from textclass.errors import ParameterError
from textclass.features import TermBlock, TextFeatures
from textclass.models.linear import CalibratedLinearSVC, NBLogisticRegression

OPSET = 17
# A tag that is constant in the training data (OneVsRest's _ConstantPredictor): a logit whose
# sigmoid is exactly 0.0 or 1.0 in float64.
_CONSTANT_LOGIT = 1e4


@dataclass
class LinearHead:
    """``link(X @ W + b)``: W (n_features, m), b (m,), link one of ``LINKS``."""

    W: np.ndarray
    b: np.ndarray
    link: str


def _lookup(table: dict[type, Callable], obj: Any, what: str) -> Callable:
    for cls in type(obj).__mro__:
        if cls in table:
            return table[cls]
    raise ParameterError(f"cannot export {what} of type {type(obj).__name__}: no ONNX exporter for it "
                         f"(supported: {', '.join(t.__name__ for t in table)})")


# ---- vectorizers -> feature blocks --------------------------------------------------------------

def _count_block(v: CountVectorizer, **weighting: Any) -> list[TermBlock]:
    unsupported = {"input": v.input != "content", "preprocessor": v.preprocessor is not None,
                   "tokenizer": v.tokenizer is not None, "stop_words": v.stop_words is not None,
                   "strip_accents": v.strip_accents is not None, "analyzer": not isinstance(v.analyzer, str)}
    bad = [k for k, is_bad in unsupported.items() if is_bad]
    if bad:
        raise ParameterError(f"cannot export {type(v).__name__} with custom {', '.join(bad)}: "
                             "the runtime reproduces only the built-in analyzers")
    return [TermBlock(v.vocabulary_, analyzer=v.analyzer, ngram_range=v.ngram_range,
                      token_pattern=v.token_pattern, lowercase=v.lowercase, binary=v.binary, **weighting)]


def _tfidf_block(v: TfidfVectorizer) -> list[TermBlock]:
    return _count_block(v, sublinear_tf=v.sublinear_tf, idf=v.idf_ if v.use_idf else None, norm=v.norm)


def _union_blocks(u: FeatureUnion) -> list[TermBlock]:
    if u.transformer_weights:
        raise ParameterError("cannot export a FeatureUnion with transformer_weights")
    return [b for _, t in u.transformer_list if t != "drop" for b in feature_blocks(t)]


FEATURES: dict[type, Callable[[Any], list[TermBlock]]] = {
    TfidfVectorizer: _tfidf_block,
    CountVectorizer: _count_block,
    FeatureUnion: _union_blocks,
}


def feature_blocks(vectorizer: Any) -> list[TermBlock]:
    """The ``TermBlock``s reproducing a fitted vectorizer (or union of them)."""
    return _lookup(FEATURES, vectorizer, "vectorizer")(vectorizer)


# ---- classifiers -> W, b, link ------------------------------------------------------------------

def _binary_or(head: LinearHead, multi: str) -> LinearHead:
    return LinearHead(head.W, head.b, "binary" if head.W.shape[1] == 1 else multi)


def _logreg(est: LogisticRegression) -> LinearHead:
    # Binary: expit of one logit; more classes: softmax of the multinomial logits (scikit-learn >= 1.5).
    return _binary_or(LinearHead(est.coef_.T.astype(np.float64), est.intercept_.astype(np.float64), ""), "softmax")


def _nblogreg(est: NBLogisticRegression) -> LinearHead:
    # coef_ already folds the NB scaling into the weights: (X * r) @ w == X @ (r * w).
    W = np.asarray(est.coef_, dtype=np.float64).T
    return _binary_or(LinearHead(W, np.asarray(est.intercept_, dtype=np.float64), ""), "sigmoid_normalized")


def _calibrated_svc(est: CalibratedLinearSVC) -> LinearHead:
    # Platt: p = expit(a * f + b) with f = x @ w + c, folded into one affine map.
    a, bc = np.asarray(est.sigmoid_coef_, dtype=np.float64), np.asarray(est.sigmoid_intercept_, dtype=np.float64)
    W = np.asarray(est.svm_.coef_, dtype=np.float64).T * a
    b = a * np.asarray(est.svm_.intercept_, dtype=np.float64) + bc
    return _binary_or(LinearHead(W, b, ""), "sigmoid_normalized")


def _constant(est: _ConstantPredictor) -> LinearHead:
    y = float(np.ravel(est.y_)[0])  # no weights: _one_vs_rest gives it as many rows as the others
    return LinearHead(np.zeros((0, 1)), np.array([_CONSTANT_LOGIT if y else -_CONSTANT_LOGIT]), "binary")


def _one_vs_rest(est: OneVsRestClassifier) -> LinearHead:
    if est.label_binarizer_.y_type_ != "multilabel-indicator":
        raise ParameterError("cannot export a OneVsRestClassifier that is not multi-label")
    heads = [linear_head(e) for e in est.estimators_]
    if any(h.link != "binary" for h in heads):
        raise ParameterError("cannot export a multi-label model whose per-tag models are not binary")
    n_features = max(h.W.shape[0] for h in heads)
    W = np.column_stack([h.W if len(h.W) else np.zeros((n_features, 1)) for h in heads])
    return LinearHead(W, np.concatenate([h.b for h in heads]), "sigmoid")


HEADS: dict[type, Callable[[Any], LinearHead]] = {
    LogisticRegression: _logreg,
    NBLogisticRegression: _nblogreg,
    CalibratedLinearSVC: _calibrated_svc,
    OneVsRestClassifier: _one_vs_rest,
    _ConstantPredictor: _constant,
}


def linear_head(classifier: Any) -> LinearHead:
    """The fitted classifier as ``link(X @ W + b)``."""
    return _lookup(HEADS, classifier, "classifier")(classifier)


# ---- the graph -----------------------------------------------------------------------------------

def _link_binary(z: str, k: int) -> tuple[list, str]:
    return [helper.make_node("Sigmoid", [z], ["p1"]),
            helper.make_node("Sub", ["one", "p1"], ["p0"]),
            helper.make_node("Concat", ["p0", "p1"], ["probabilities"], axis=1)], "probabilities"


def _link_softmax(z: str, k: int) -> tuple[list, str]:
    return [helper.make_node("Softmax", [z], ["probabilities"], axis=1)], "probabilities"


def _link_sigmoid(z: str, k: int) -> tuple[list, str]:
    return [helper.make_node("Sigmoid", [z], ["probabilities"])], "probabilities"


def _link_sigmoid_normalized(z: str, k: int) -> tuple[list, str]:
    # One-vs-rest probabilities normalised to sum to 1; a row of all zeros becomes uniform.
    return [helper.make_node("Sigmoid", [z], ["s"]),
            helper.make_node("ReduceSum", ["s", "axis1"], ["total"], keepdims=1),
            helper.make_node("Equal", ["total", "zero"], ["all_zero"]),
            helper.make_node("Div", ["s", "total"], ["normalized"]),
            helper.make_node("Where", ["all_zero", "uniform", "normalized"], ["probabilities"])], "probabilities"


LINKS = {"binary": _link_binary, "softmax": _link_softmax, "sigmoid": _link_sigmoid,
         "sigmoid_normalized": _link_sigmoid_normalized}


def linear_graph(head: LinearHead, n_outputs: int, name: str) -> onnx.ModelProto:
    """``probabilities = link(X @ W + b)`` with X given as CSR-ordered triplets.

    Inputs: ``rows``, ``cols`` (int64, nnz), ``values`` (float64, nnz), ``n_rows`` (int64, [1]).
    Output: ``probabilities`` (float64, n_rows x n_outputs). float64 as scikit-learn computes.
    """
    m = head.W.shape[1]
    consts = {"W": head.W, "b": head.b, "one": np.array(1.0), "zero": np.array(0.0),
              "uniform": np.array(1.0 / max(m, 1)), "axis1": np.array([1], dtype=np.int64),
              "width": np.array([m], dtype=np.int64)}
    link_nodes, out = LINKS[head.link]("z", m)
    nodes = [
        helper.make_node("Gather", ["W", "cols"], ["w_rows"], axis=0),          # (nnz, m)
        helper.make_node("Unsqueeze", ["values", "axis1"], ["v_col"]),
        helper.make_node("Mul", ["w_rows", "v_col"], ["terms"]),
        helper.make_node("Concat", ["n_rows", "width"], ["z_shape"], axis=0),
        helper.make_node("ConstantOfShape", ["z_shape"], ["z_zero"],
                         value=numpy_helper.from_array(np.array([0.0]))),
        helper.make_node("Unsqueeze", ["rows", "axis1"], ["row_idx"]),
        helper.make_node("ScatterND", ["z_zero", "row_idx", "terms"], ["xw"], reduction="add"),
        helper.make_node("Add", ["xw", "b"], ["z"]),
        *link_nodes,
    ]
    inputs = [helper.make_tensor_value_info("rows", TensorProto.INT64, ["nnz"]),
              helper.make_tensor_value_info("cols", TensorProto.INT64, ["nnz"]),
              helper.make_tensor_value_info("values", TensorProto.DOUBLE, ["nnz"]),
              helper.make_tensor_value_info("n_rows", TensorProto.INT64, [1])]
    outputs = [helper.make_tensor_value_info(out, TensorProto.DOUBLE, ["batch", n_outputs])]
    graph = helper.make_graph(nodes, name, inputs, outputs,
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="textclass")


def export_pipeline(pipeline: Pipeline, n_outputs: int, name: str) -> tuple[onnx.ModelProto, TextFeatures]:
    """A fitted ``vectorizer -> classifier`` pipeline as (graph, features)."""
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        raise ParameterError(f"cannot export {type(pipeline).__name__}: expected a vectorizer -> classifier Pipeline")
    features = TextFeatures(feature_blocks(pipeline.steps[0][1]))
    head = linear_head(pipeline.steps[1][1])
    if head.W.shape[0] != features.n_features:
        raise ParameterError(f"the classifier expects {head.W.shape[0]} features, the vectorizer gives "
                             f"{features.n_features}")
    return linear_graph(head, n_outputs, name), features
