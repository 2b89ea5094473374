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
from textclass.estimator import TextClassifier
from textclass.evaluate import evaluate_model
from textclass.files import write_text_atomic
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
) -> RunResult:
    """Split ``data`` (columns ``text``, ``label``), fit ``model`` on the training part, score it
    on the held-out part and write the run directory.

    The held-out split is never seen during training: an internal validation split, if asked for
    with ``params={"validation_split": 0.1}``, is carved from the training part only.
    """
    out_dir = Path(out_dir)
    train, test = split_frame(data, test_size=test_size, random_state=seed, stratify=stratify)
    clf = TextClassifier(model, random_state=seed, **dict(params or {}))
    clf.fit(train["text"], train["label"], callbacks=list(callbacks))  # sklearn models ignore them

    metrics = evaluate_model(clf, test["text"], test["label"])
    metrics.update(model=model, params=_json_safe(clf.get_params()), n_train=len(train), seed=seed)

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
    for key in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc"):
        if key in metrics:
            lines.append(f"| {key} | {metrics[key]:.4f} |")
    return "\n".join(lines) + "\n"


def _json_safe(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, str | int | float | bool | type(None)) else repr(v) for k, v in params.items()}
