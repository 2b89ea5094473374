"""Metrics for a classifier on held-out data, as one JSON-safe dict.

Accuracy alone misleads on skewed data (sms-spam is 13% spam), so the dict always carries macro
precision, recall and F1 and the per-class table beside it; ROC-AUC is added where it is defined.
Multi-label data is scored as the literature reports it: micro-F1 (the headline), macro-F1,
samples-F1, Hamming loss and subset accuracy, each under its own name.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics
from sklearn.preprocessing import MultiLabelBinarizer

from textclass.errors import TextclassWarning
from textclass.labels import plain

#: The headline metrics, in the order reports show them (multi-label ones where they apply).
METRIC_KEYS = ("accuracy", "f1_micro", "precision_macro", "recall_macro", "f1_macro", "f1_samples",
               "hamming_loss", "subset_accuracy", "roc_auc")


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    proba: np.ndarray | None = None,
    classes: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Score predictions against the truth.

    Parameters
    ----------
    y_true, y_pred : label values (single-label) or 0/1 indicator matrices (multi-label).
    proba : class probabilities, shape (n, k); column 1 is the positive class of a binary task.
    classes : the label values in column order; inferred from the data when omitted.

    Returns
    -------
    dict with ``n``, ``accuracy``, ``precision_macro``, ``recall_macro``, ``f1_macro``,
    ``per_class`` (label -> precision, recall, f1, support), ``confusion`` (rows: truth) and
    ``labels``; ``roc_auc`` for binary tasks given ``proba``. Multi-label accuracy is subset
    accuracy (every tag right), as in scikit-learn; its confusion is per tag [[tn, fp], [fn, tp]].
    Multi-label results also carry ``f1_micro``, ``precision_micro``, ``recall_micro``,
    ``f1_samples``, ``hamming_loss`` and ``subset_accuracy``. An undefined ratio (a tag never
    predicted, a row with no tags) counts as 0.
    """
    y_true_arr = np.asarray(y_true)
    y_pred_arr = np.asarray(y_pred)
    multilabel = y_true_arr.ndim == 2
    if classes is None:
        classes = (
            list(range(y_true_arr.shape[1]))
            if multilabel
            else np.unique(np.concatenate([y_true_arr, y_pred_arr])).tolist()
        )
    classes = list(classes)
    labels = None if multilabel else classes
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true_arr, y_pred_arr, labels=labels, zero_division=0
    )
    result: dict[str, Any] = {
        "n": int(len(y_true_arr)),
        "accuracy": float(metrics.accuracy_score(y_true_arr, y_pred_arr)),
        "precision_macro": float(np.mean(precision)),
        "recall_macro": float(np.mean(recall)),
        "f1_macro": float(np.mean(f1)),
        "labels": [plain(c) for c in classes],
        "per_class": {
            str(plain(c)): {
                "precision": float(p),
                "recall": float(r),
                "f1": float(f),
                "support": int(s),
            }
            for c, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
        },
    }
    if multilabel:
        result["confusion"] = metrics.multilabel_confusion_matrix(y_true_arr, y_pred_arr).tolist()
        micro = metrics.precision_recall_fscore_support(y_true_arr, y_pred_arr, average="micro", zero_division=0)
        result.update(
            f1_micro=float(micro[2]),
            precision_micro=float(micro[0]),
            recall_micro=float(micro[1]),
            f1_samples=float(metrics.f1_score(y_true_arr, y_pred_arr, average="samples", zero_division=0)),
            hamming_loss=float(metrics.hamming_loss(y_true_arr, y_pred_arr)),
            subset_accuracy=result["accuracy"],
        )
    else:
        result["confusion"] = metrics.confusion_matrix(y_true_arr, y_pred_arr, labels=classes).tolist()
    if proba is not None and not multilabel and len(classes) == 2:
        positive = np.asarray(y_true_arr == classes[1], dtype=int)
        if 0 < positive.sum() < len(positive):
            result["roc_auc"] = float(metrics.roc_auc_score(positive, np.asarray(proba)[:, 1]))
    return result


def best_threshold(truth: np.ndarray, proba: np.ndarray, task: str) -> float:
    """The threshold t of 0.01, 0.02 ... 0.99 whose decisions ``proba > t`` score best against the 0/1
    ``truth`` (same shape): micro-F1 for ``task="multilabel"``, accuracy otherwise; of equal scores,
    the t nearest 0.5.

    Calibrated probabilities over 0.5 are the right decisions for accuracy, not for F1: rare tags
    are missed unless the threshold is lower (on GoEmotions the best one is about 0.25).
    """
    grid = np.round(np.linspace(0.01, 0.99, 99), 2)
    truth, proba = np.asarray(truth).ravel(), np.asarray(proba).ravel()
    pos, neg = np.sort(proba[truth == 1]), np.sort(proba[truth == 0])
    tp = len(pos) - np.searchsorted(pos, grid, side="right")  # positives with p > t
    fp = len(neg) - np.searchsorted(neg, grid, side="right")
    if task == "multilabel":
        score = 2 * tp / np.maximum(tp + fp + len(pos), 1)  # 2TP / (2TP + FP + FN)
    else:
        score = (tp + len(neg) - fp) / max(len(truth), 1)
    best = np.flatnonzero(score == score.max())
    return float(grid[best[np.argmin(np.abs(grid[best] - 0.5))]])


def tag_binarizer(known: Sequence[Any], y: Sequence[Any]) -> tuple[MultiLabelBinarizer, list]:
    """A binarizer over a model's tags ``known`` and the tags of ``y`` (tag tuples) it never saw,
    which score as missed rather than being dropped; and those unseen tags."""
    seen = set(known)
    unseen = sorted({t for tags in y for t in tags if t not in seen}, key=str)
    return MultiLabelBinarizer(classes=[*known, *unseen]).fit([]), unseen


def evaluate_model(clf: Any, texts: Any, y: Any, groups: Any = None) -> dict[str, Any]:
    """Predict ``texts`` with a fitted classifier and score against ``y`` (the user's labels).

    Multi-label tags the model never saw in training are counted as missed (listed under
    ``unseen_tags``), not dropped. ``groups`` (one value per text, e.g. the source) adds
    ``per_group``: n, accuracy with its 95% Wilson interval and macro-F1 per group.
    """
    proba = clf.predict_proba(texts)
    y_pred = clf.labels_from_proba(proba)
    y = list(y)
    if clf.task_ == "multilabel":
        binarizer, unseen = tag_binarizer(clf.classes_.tolist(), y)
        if unseen:
            shown = ", ".join(map(str, unseen[:10])) + (" ..." if len(unseen) > 10 else "")
            warnings.warn(TextclassWarning(
                f"{len(unseen)} tag(s) in the evaluation data were never seen in training ({shown}): "
                "counted as missed"), stacklevel=2)
        classes = binarizer.classes

        def score(idx: np.ndarray, whole: bool = True) -> dict[str, Any]:
            return classification_metrics(binarizer.transform([y[i] for i in idx]),
                                          binarizer.transform([y_pred[i] for i in idx]), classes=classes)
    else:
        def score(idx: np.ndarray, whole: bool = True) -> dict[str, Any]:
            # a group's macro averages run over the classes that occur in it, as in compare
            return classification_metrics([y[i] for i in idx], np.asarray(y_pred)[idx],
                                          proba[idx] if whole else None, classes=clf.classes_ if whole else None)

    result = score(np.arange(len(y)))
    if clf.task_ == "multilabel":
        result["unseen_tags"] = [plain(t) for t in unseen]
    if groups is not None:
        result["per_group"] = _per_group(score, np.asarray(groups, dtype=object).astype(str))
    return result


def _per_group(score: Any, groups: np.ndarray) -> dict[str, dict[str, Any]]:
    """n, accuracy (95% Wilson interval, as ``compare`` reports it) and F1 per group, in the
    order the groups first appear."""
    from textclass.compare import wilson_interval

    out = {}
    for g in dict.fromkeys(groups.tolist()):
        m = score(np.flatnonzero(groups == g), whole=False)
        lo, hi = wilson_interval(round(m["accuracy"] * m["n"]), m["n"])
        out[g] = {"n": m["n"], "accuracy": m["accuracy"], "accuracy_lo": lo, "accuracy_hi": hi,
                  "f1_macro": m["f1_macro"], **({"f1_micro": m["f1_micro"]} if "f1_micro" in m else {})}
    return out
