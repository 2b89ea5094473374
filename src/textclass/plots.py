"""Figures written next to a run: training history and confusion matrix.

Matplotlib runs headless (the Agg backend) so plots work on servers and in CI.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from textclass.files import atomic_open  # noqa: E402


def plot_history(history: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Accuracy and loss per epoch, training beside validation, as the tutorial's plot_history."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
        for key, style, name in ((metric, "b-", "Training"), (f"val_{metric}", "r-", "Validation")):
            values = history.get(key)
            if values:
                ax.plot(range(1, len(values) + 1), values, style, label=f"{name} {metric}")
        ax.set_title(f"{'Training and validation ' if history.get('val_' + metric) else 'Training '}{metric}")
        ax.set_xlabel("epoch")
        ax.legend()
    return _save(fig, path)


def plot_confusion(matrix: Any, labels: Sequence[Any], path: str | Path) -> Path:
    """The confusion matrix with counts in the cells; rows are the truth, columns the prediction."""
    cm = np.asarray(matrix)
    size = max(4.0, 0.6 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    ticks = range(len(labels))
    ax.set_xticks(ticks, [str(label) for label in labels], rotation=45, ha="right")
    ax.set_yticks(ticks, [str(label) for label in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = cm.max() / 2 if cm.size else 0
    for (i, j), count in np.ndenumerate(cm):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > threshold else "black")
    return _save(fig, path)


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    with atomic_open(path, binary=True) as f:  # a killed run leaves no truncated picture
        fig.savefig(f, format=path.suffix.lstrip(".") or "png", dpi=100)
    plt.close(fig)
    return path


def plot_intervals(rows: Any, path: str | Path, *, title: str = "accuracy with 95% interval") -> Path:
    """Grouped bars of a score with its interval: one cluster per ``group``, one bar per ``model``
    present in that group (same colour for a model everywhere). ``rows``: a DataFrame (or records)
    with columns group, model, mean, lo, hi."""
    import pandas as pd

    df = pd.DataFrame(rows).dropna(subset=["mean"])
    groups = list(dict.fromkeys(df["group"]))
    models = list(dict.fromkeys(df["model"]))
    colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(models)}
    widest = max((int((df["group"] == g).sum()) for g in groups), default=1)
    width = 0.8 / widest
    fig, ax = plt.subplots(figsize=(min(16.0, 3.0 + 0.45 * len(df)), 5))
    labelled: set[str] = set()
    for gi, group in enumerate(groups):
        part = df[df["group"] == group]
        for k, r in enumerate(part.itertuples()):
            x = gi + (k - (len(part) - 1) / 2) * width
            ax.bar(x, r.mean, width, yerr=[[r.mean - r.lo], [r.hi - r.mean]], capsize=3, color=colours[r.model],
                   label=None if r.model in labelled else str(r.model))
            labelled.add(r.model)
    ax.set_xticks(np.arange(len(groups)), [str(g) for g in groups])
    low = float(np.nanmin(df["lo"])) if len(df) else 0.0
    ax.set_ylim(max(0.0, low - 0.05), 1.0)
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)
