"""Train one model on one data set and write a run directory.

A run directory holds everything needed to trust and reuse the result::

    runs/cnn/
      model/         the saved classifier (textclass.store format)
      metrics.json   held-out metrics (textclass.evaluate.classification_metrics)
      history.csv    per-epoch training history (Keras models)
      history.png    training vs validation accuracy and loss
      confusion.png  confusion matrix on the held-out split
      report.md      a short human-readable summary
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from textclass.data import split_frame
from textclass.errors import DataError
from textclass.estimator import TextClassifier
from textclass.evaluate import METRIC_KEYS, evaluate_model
from textclass.files import check_out_dir, write_text_atomic
from textclass.plots import plot_confusion, plot_history


@dataclass(frozen=True)
class RunResult:
    """What ``train_run`` produced: where, the fitted classifier, and its held-out metrics."""

    out_dir: Path
    classifier: TextClassifier
    metrics: dict[str, Any]


def train_run(
    data: pd.DataFrame,
    model: str,
    out_dir: str | Path,
    *,
    test_size: float = 0.25,
    seed: int = 1000,
    stratify: bool = False,
    params: Mapping[str, Any] | None = None,
    callbacks: Sequence[Any] = (),
    group_col: str | None = None,
) -> RunResult:
    """Split ``data`` (columns ``text``, ``label``), fit ``model`` on the training part, score it
    on the held-out part and write the run directory.

    The held-out split is never seen during training: an internal validation split, if asked for
    with ``params={"validation_split": 0.1}``, is carved from the training part only.
    ``group_col`` names a column of ``data`` (``"group"`` once read by ``read_table``) whose
    groups get their own held-out metrics (``per_group``), e.g. the source of each review.
    """
    out_dir = check_out_dir(out_dir)
    group = _group_column(data, group_col)
    train, test = split_frame(data, test_size=test_size, random_state=seed, stratify=stratify)
    clf = TextClassifier(model, random_state=seed, **dict(params or {}))
    clf.fit(train["text"], train["label"], callbacks=list(callbacks))  # sklearn models ignore them

    metrics = evaluate_model(clf, test["text"], test["label"], groups=None if group is None else test[group])
    metrics.update(model=model, params=_json_safe(clf.get_params()), n_train=len(train), seed=seed)
    if clf.task_ != "multiclass":  # the decision rule behind the labels scored
        metrics["threshold"] = clf.threshold_

    out_dir.mkdir(parents=True, exist_ok=True)
    clf.save(out_dir / "model")
    write_text_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2))
    history = getattr(clf, "history_", None)
    if history:
        write_text_atomic(out_dir / "history.csv", pd.DataFrame(history).rename_axis("epoch").to_csv())
        plot_history(history, out_dir / "history.png")
    if clf.task_ != "multilabel":
        plot_confusion(metrics["confusion"], metrics["labels"], out_dir / "confusion.png")
    write_text_atomic(out_dir / "report.md", _report(model, metrics))
    return RunResult(out_dir, clf, metrics)


class EpochProgress(keras.callbacks.Callback):
    """A rich progress bar over epochs, with the latest metrics; use as a context manager."""

    def __init__(self, description: str, console: Console | None = None) -> None:
        super().__init__()
        self.description = description
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[logs]}"),
            console=console,
        )
        self._task = None

    def __enter__(self) -> EpochProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._task = self._progress.add_task(self.description, total=self.params.get("epochs"), logs="")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        shown = " ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items() if "acc" in k or "loss" in k)
        self._progress.update(self._task, advance=1, logs=shown)
        console = self._progress.console
        if not console.is_terminal:  # no live bar in a log file or a pipe: a line per epoch instead
            console.print(f"{self.description} epoch {epoch + 1}/{self.params.get('epochs')}: {shown}",
                          highlight=False, markup=False)


def _report(model: str, metrics: Mapping[str, Any]) -> str:
    lines = [
        f"# {model}",
        "",
        f"Trained on {metrics['n_train']} texts, scored on {metrics['n']} held-out texts.",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for key in METRIC_KEYS:
        if key in metrics and not (key == "accuracy" and "subset_accuracy" in metrics):
            lines.append(f"| {key} | {metrics[key]:.4f} |")
    if "threshold" in metrics:
        learned = " (learned from held-out training texts: threshold='auto')" if metrics["params"].get("threshold") == "auto" else ""
        lines += ["", f"Labels are probabilities over {metrics['threshold']:g}{learned}."]
    if metrics.get("unseen_tags"):
        lines += ["", f"Tags never seen in training, counted as missed: {', '.join(map(str, metrics['unseen_tags']))}."]
    if metrics.get("per_group"):
        lines += ["", "## Per group (held-out split)", "", "| group | n | accuracy (95% Wilson) | macro-F1 |", "|---|---|---|---|"]
        for g, m in metrics["per_group"].items():
            lines.append(f"| {g} | {m['n']} | {m['accuracy']:.4f} [{m['accuracy_lo']:.3f}, {m['accuracy_hi']:.3f}] "
                         f"| {m['f1_macro']:.4f} |")
    return "\n".join(lines) + "\n"


def _group_column(data: pd.DataFrame, group_col: str | None) -> str | None:
    """The column of ``data`` holding ``group_col``'s groups ("group" for a file read with it)."""
    if group_col is None:
        return None
    for column in (group_col, "group"):
        if column in data.columns and column not in ("text", "label"):
            return column
    raise DataError(f"no group column {group_col!r} in the data; columns: {', '.join(map(str, data.columns))}")


def _json_safe(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, str | int | float | bool | type(None)) else repr(v) for k, v in params.items()}
