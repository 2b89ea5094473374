"""Linear models on UCI Sentiment, 10-fold stratified CV over all 3000 rows, side by side.

Anchors measured on this machine (issue 3): CountVectorizer+LR 0.832, word+char TF-IDF 0.855,
NBSVM 0.861.

    python bench/bench_linear.py            # data from $TEXTCLASS_DATA (e.g. ../shared/data)
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.table import Table
from sklearn.model_selection import StratifiedKFold, cross_validate

from textclass.data import load_dataset
from textclass.models.linear import build_bow_logreg, build_nbsvm, build_tfidf_linear

def main() -> None:
    data = load_dataset("uci-sentiment")  # quoting disabled: 1000 rows per source
    texts, y = data["text"].tolist(), data["label"].to_numpy()
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
