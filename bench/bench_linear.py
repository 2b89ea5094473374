"""Linear models on UCI Sentiment, 10-fold stratified CV over all 3000 rows, side by side.

Anchors measured on this machine (issue 3): CountVectorizer+LR 0.832, word+char TF-IDF 0.855,
NBSVM 0.861. ``--sweep`` adds the measurements behind the vocabulary floors (``min_df``) and
tfidf-linear's calibration: each model at min_df 1-3, and tfidf-linear with scikit-learn's
5-fold ``CalibratedClassifierCV(ensemble=False)`` (6 SVM fits) instead of its held-out sigmoid
(2 fits).

    python bench/bench_linear.py            # data from $TEXTCLASS_DATA (e.g. ../shared/data)
    python bench/bench_linear.py --sweep
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.svm import LinearSVC

from textclass.data import load_dataset
from textclass.models.linear import build_bow_logreg, build_nbsvm, build_tfidf_linear


def main() -> None:
    ap = argparse.ArgumentParser(description="UCI 10-fold CV of the linear models")
    ap.add_argument("--sweep", action="store_true", help="also min_df 1-3 and 5-fold calibration")
    args = ap.parse_args()
    data = load_dataset("uci-sentiment")  # quoting disabled: 1000 rows per source
    texts, y = data["text"].tolist(), data["label"].to_numpy()
    cv = StratifiedKFold(10, shuffle=True, random_state=0)
    table = Table(title=f"UCI Sentiment, {len(texts)} rows, 10-fold stratified CV (random_state=0)")
    for col in ("model", "accuracy mean", "± std", "anchor", "fit s / fold", "total s"):
        table.add_column(col, justify="left" if col == "model" else "right")
    models = {
        "bow-logreg": (lambda: build_bow_logreg(random_state=0), 0.832),
        "tfidf-linear": (lambda: build_tfidf_linear(random_state=0), 0.855),
        "nbsvm": (lambda: build_nbsvm(random_state=0), 0.861),
    }
    if args.sweep:
        five_fold = CalibratedClassifierCV(LinearSVC(random_state=0), method="sigmoid", cv=5, ensemble=False)
        models["tfidf-linear, 5-fold CalibratedClassifierCV"] = (
            lambda: build_tfidf_linear(random_state=0).set_params(classifier=five_fold), 0.855)
        for min_df in (1, 2, 3):
            models[f"tfidf-linear min_df={min_df}"] = (lambda m=min_df: build_tfidf_linear(random_state=0, min_df=m), 0.855)
            models[f"nbsvm min_df={min_df}"] = (lambda m=min_df: build_nbsvm(random_state=0, min_df=m), 0.861)
    for name, (build, anchor) in models.items():
        start = time.perf_counter()
        res = cross_validate(build(), texts, y, cv=cv, n_jobs=1)
        total = time.perf_counter() - start
        scores = res["test_score"]
        table.add_row(
            name, f"{scores.mean():.4f}", f"{scores.std():.4f}", f"{anchor:.3f}",
            f"{res['fit_time'].mean():.3f}", f"{total:.1f}",
        )
    Console(width=max(Console().width, 110)).print(table)


if __name__ == "__main__":
    main()
