"""Which epoch should encoder-tuned keep on UCI Sentiment? An experiment, not a feature.

encoder-tuned (random head, shipped defaults: 4 epochs, linear decay, patience 1) keeps the
epoch with the lowest loss on its 90-sentence inner validation split. This fits every fold of the
same stratified 10-fold CV as bench_encoders.py (seed 0) for all 4 epochs with early stopping off
(the weights follow the same path up to where early stopping would stop) and scores the test
fold after every epoch, then prints test accuracy per source for each rule that picks an epoch:
the shipped one (lowest validation loss, stop after ``patience`` epochs without a new low),
highest validation accuracy (ties to the lower loss, or to the later epoch), and every fixed
epoch. The shipped rule's figures repeat bench_encoders.py's encoder-tuned row fold for fold.

    python bench/bench_stopping.py --sources yelp,imdb --log stop.jsonl
    python bench/bench_stopping.py --report-only --log stop.jsonl
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from fold_log import SEED, add_fold_arguments, read_log, run_folds  # noqa: E402

from textclass.compare import corrected_ttest, make_estimator, t_interval  # noqa: E402

SOURCES = ("yelp", "amazon", "imdb")
PATIENCE = 1  # bench_encoders.py's encoder-tuned row
RATIO = 100 / 900  # test / train sentences per fold, for the corrected intervals and tests


class TestEveryEpoch:
    """Keras-style callback: the test fold's accuracy after each epoch, in eval mode."""

    def __init__(self, X_test, codes) -> None:
        self.X_test, self.codes, self.accuracy = X_test, codes, []

    def set_params(self, params) -> None:
        pass

    def on_train_begin(self, logs=None) -> None:
        pass

    def on_epoch_end(self, epoch, logs=None) -> None:
        clf = CURRENT["model"]
        clf.body_.eval()  # the next epoch sets train mode again; eval draws no random numbers
        self.accuracy.append(float(np.mean(clf.predict_proba(self.X_test).argmax(1) == self.codes)))

    def on_train_end(self, logs=None) -> None:
        pass


CURRENT: dict = {}


def record_model() -> None:
    from textclass.models.encoders import EncoderClassifier

    train = EncoderClassifier._train

    def _train(self, *args, **kwargs):
        CURRENT["model"] = self
        return train(self, *args, **kwargs)

    EncoderClassifier._train = _train


def run_fold(X_train, y_train, X_test, y_test) -> dict:
    est = make_estimator("encoder-tuned", {"patience": PATIENCE, "early_stopping": False}, seed=SEED)
    codes = np.asarray([{v: i for i, v in enumerate(sorted(set(y_train)))}[v] for v in y_test])
    recorder = TestEveryEpoch(list(X_test), codes)
    start = time.perf_counter()
    est.fit(list(X_train), list(y_train), callbacks=[recorder])
    history = est.history_
    return {"fit_s": time.perf_counter() - start, "test_accuracy": recorder.accuracy,
            "val_loss": history["val_loss"], "val_accuracy": history["val_accuracy"]}


def replay(history: dict, key, patience: int = PATIENCE) -> int:
    """The epoch (0-based) kept by early stopping on the history: a new best when ``key(epoch)``
    beats the best so far (larger is better); stop after ``patience`` epochs without one."""
    best, waited = 0, 0
    for epoch in range(1, len(history["val_loss"])):
        if key(epoch) > key(best):
            best, waited = epoch, 0
        else:
            waited += 1
        if waited > patience:
            break
    return best


def shipped_epoch(history: dict, patience: int = PATIENCE) -> int:
    """encoder-tuned's rule: the lowest validation loss (by more than 1e-6)."""
    loss = history["val_loss"]
    return replay(history, lambda e: -round(loss[e] / 1e-6), patience)


def report(records: list[dict]) -> pd.DataFrame:
    def acc_then_loss(r):  # the higher accuracy; on a tie, the lower loss
        return lambda e: (r["val_accuracy"][e], -r["val_loss"][e])

    def acc_then_later(r):  # the higher accuracy; on a tie, the later epoch
        return lambda e: (r["val_accuracy"][e], e)

    rules = {
        "lowest validation loss, patience 1 (shipped)": lambda r: shipped_epoch(r),
        "highest validation accuracy, ties: lower loss, patience 1": lambda r: replay(r, acc_then_loss(r)),
        "highest validation accuracy, ties: later epoch, patience 1": lambda r: replay(r, acc_then_later(r)),
        "highest validation accuracy, ties: later epoch, patience 3 (compare's)": lambda r: replay(
            r, acc_then_later(r), patience=3),
        **{f"fixed epoch {e + 1}": (lambda r, e=e: e) for e in range(4)},
    }
    rows = {}
    for source in SOURCES:
        rs = [r for r in records if r["source"] == source]
        if not rs:
            continue
        for name, rule in rules.items():
            rows.setdefault(name, {})[source] = np.mean([r["test_accuracy"][rule(r)] for r in rs])
        rows.setdefault("mean epoch kept by the shipped rule", {})[source] = np.mean(
            [shipped_epoch(r) + 1 for r in rs])
        rows.setdefault("folds", {})[source] = len(rs)
    table = pd.DataFrame(rows).T
    table["mean"] = table[[s for s in SOURCES if s in table]].mean(axis=1)
    return table


def versus(records: list[dict], reference: list[dict], rule) -> pd.DataFrame:
    """The rule's fold accuracies against bench_encoders.py's rows on the same folds: 95%
    corrected interval, and the corrected paired test's p against each reference row."""
    rows = {}
    for source in SOURCES:
        rs = sorted((r for r in records if r["source"] == source), key=lambda r: r["fold"])
        if not rs:
            continue
        ours = [r["test_accuracy"][rule(r)] for r in rs]
        mean, lo, hi = t_interval(ours, test_train_ratio=RATIO)
        row = {"accuracy": mean, "95% low": lo, "95% high": hi}
        for model in ("encoder-tuned", "setfit", "sentence-embed"):
            ref = {r["fold"]: r["accuracy"] for r in reference if r["source"] == source and r["model"] == model}
            if all(r["fold"] in ref for r in rs):
                theirs = [ref[r["fold"]] for r in rs]
                row[f"{model} (bench_encoders)"] = np.mean(theirs)
                row[f"p vs {model}"] = corrected_ttest(ours, theirs, test_train_ratio=RATIO)[1]
        rows[source] = row
    return pd.DataFrame(rows).T


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_fold_arguments(ap, SOURCES)
    ap.add_argument("--reference", type=Path, default=Path(__file__).parent / "results" / "encoders_folds.jsonl",
                    help="bench_encoders.py's fold log, for the paired tests")
    args = ap.parse_args()
    records = read_log(args.log)
    if not args.report_only:
        record_model()
        run_folds(args, records, run_fold, lambda r: f"fit {r['fit_s']:.0f} s, test accuracy by epoch "
                  + " ".join(f"{a:.2f}" for a in r["test_accuracy"]))
    print(report(records).to_string(float_format=lambda v: f"{v:.4f}"))
    if args.reference.exists():
        reference = read_log([args.reference])
        print("\nhighest validation accuracy, ties: later epoch (encoder-tuned's rule) against "
              f"{args.reference.name}, the same folds")
        print(versus(records, reference, lambda r: replay(r, lambda e: (r["val_accuracy"][e], e)))
              .to_string(float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
