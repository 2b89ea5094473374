"""Metrics for a classifier on held-out data, as one JSON-safe dict.

Accuracy alone misleads on skewed data (sms-spam is 13% spam), so the dict always carries macro
precision, recall and F1 and the per-class table beside it; ROC-AUC is added where it is defined.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics
from sklearn.preprocessing import MultiLabelBinarizer

from textclass.labels import plain


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
    else:
        result["confusion"] = metrics.confusion_matrix(y_true_arr, y_pred_arr, labels=classes).tolist()
    if proba is not None and not multilabel and len(classes) == 2:
        positive = np.asarray(y_true_arr == classes[1], dtype=int)
        if 0 < positive.sum() < len(positive):
            result["roc_auc"] = float(metrics.roc_auc_score(positive, np.asarray(proba)[:, 1]))
    return result


def evaluate_model(clf: Any, texts: Any, y: Any) -> dict[str, Any]:
    """Predict ``texts`` with a fitted classifier and score against ``y`` (the user's labels)."""
    proba = clf.predict_proba(texts)
    y_pred = clf.labels_from_proba(proba)
    if clf.task_ == "multilabel":
        binarizer = MultiLabelBinarizer(classes=list(clf.classes_))
        return classification_metrics(
            binarizer.fit_transform(y), binarizer.transform(y_pred), classes=clf.classes_
        )
    return classification_metrics(y, y_pred, proba, classes=clf.classes_)
