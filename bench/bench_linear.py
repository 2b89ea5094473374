"""Linear models on UCI Sentiment, 10-fold stratified CV over all 3000 rows, side by side.

Anchors measured on this machine (issue 3): CountVectorizer+LR 0.832, word+char TF-IDF 0.855,
NBSVM 0.861. Reads the three files directly (tab-separated, quoting disabled: 1000 rows each).

    python bench/bench_linear.py            # data from $TEXTCLASS_DATA or ../shared/data
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.model_selection import StratifiedKFold, cross_validate

from textclass.models.linear import build_bow_logreg, build_nbsvm, build_tfidf_linear

SOURCES = ("yelp", "amazon_cells", "imdb")


def load_uci(root: Path) -> tuple[list[str], np.ndarray]:
    texts, labels = [], []
    for source in SOURCES:
        path = root / "uci-sentiment" / f"{source}_labelled.txt"
        with path.open(encoding="utf-8") as f:
            for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                texts.append(row[0].strip())
                labels.append(int(row[1]))
    return texts, np.asarray(labels)


def main() -> None:
    root = Path(os.environ.get("TEXTCLASS_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    texts, y = load_uci(root)
    cv = StratifiedKFold(10, shuffle=True, random_state=0)
    table = Table(title=f"UCI Sentiment, {len(texts)} rows, 10-fold stratified CV (random_state=0)")
    for col in ("model", "accuracy mean", "± std", "anchor", "fit s / fold", "total s"):
        table.add_column(col, justify="left" if col == "model" else "right")
    models = {
        "bow-logreg": (build_bow_logreg, 0.832),
        "tfidf-linear": (build_tfidf_linear, 0.855),
        "nbsvm": (build_nbsvm, 0.861),
    }
    for name, (build, anchor) in models.items():
        start = time.perf_counter()
        res = cross_validate(build(multilabel=False, random_state=0), texts, y, cv=cv, n_jobs=1)
        total = time.perf_counter() - start
        scores = res["test_score"]
        table.add_row(
            name, f"{scores.mean():.4f}", f"{scores.std():.4f}", f"{anchor:.3f}",
            f"{res['fit_time'].mean():.3f}", f"{total:.1f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
