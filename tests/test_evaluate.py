"""Held-out metrics on hand-checked numbers, and the plots written from them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from textclass.evaluate import classification_metrics
from textclass.plots import plot_confusion, plot_history


def test_binary_metrics_match_hand_counts():
    y_true = ["neg", "neg", "neg", "pos", "pos", "pos", "pos", "pos"]
    y_pred = ["neg", "pos", "neg", "pos", "pos", "neg", "pos", "pos"]
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.8, 0.2], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4], [0.1, 0.9], [0.35, 0.65]])
    m = classification_metrics(y_true, y_pred, proba, classes=["neg", "pos"])
    assert m["n"] == 8
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["confusion"] == [[2, 1], [1, 4]]
    # pos: precision 4/5, recall 4/5; neg: precision 2/3, recall 2/3
    assert m["per_class"]["pos"]["precision"] == pytest.approx(0.8)
    assert m["per_class"]["neg"]["recall"] == pytest.approx(2 / 3)
    assert m["f1_macro"] == pytest.approx((0.8 + 2 / 3) / 2)
    # ROC-AUC: of the 15 (pos, neg) pairs, the positive outscores the negative in 14
    assert m["roc_auc"] == pytest.approx(14 / 15)
    json.dumps(m)  # the dict is written as metrics.json


def test_multiclass_keeps_label_order_and_types():
    m = classification_metrics([0, 1, 2, 2], [0, 2, 2, 2], classes=[0, 1, 2])
    assert m["labels"] == [0, 1, 2]
    assert m["confusion"] == [[1, 0, 0], [0, 0, 1], [0, 0, 2]]
    assert "roc_auc" not in m
    assert m["per_class"]["1"]["support"] == 1


def test_multilabel_uses_subset_accuracy():
    y_true = np.array([[1, 0, 1], [0, 1, 0]])
    y_pred = np.array([[1, 0, 1], [0, 1, 1]])
    m = classification_metrics(y_true, y_pred, classes=["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["confusion"][2] == [[0, 1], [0, 1]]  # tag c: one false positive, one true positive


def test_plots_write_png_files(tmp_path):
    history = {"loss": [0.7, 0.5], "accuracy": [0.5, 0.8], "val_loss": [0.7, 0.6], "val_accuracy": [0.5, 0.7]}
    for path in (plot_history(history, tmp_path / "h.png"), plot_confusion([[3, 1], [0, 4]], ["a", "b"], tmp_path / "c.png")):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
