"""Does WiSE-FT (Wortsman et al. 2022) lift encoder-tuned on UCI Sentiment? An experiment, not a feature.

encoder-tuned with ``head_init="probe"`` starts from a model (the frozen encoder + a logistic
probe), so its final weights can be interpolated with the starting ones: (1 - a) * start + a *
fine-tuned. For every fold of the same stratified 10-fold CV as bench_encoders.py (seed 0), this
fits once and scores every ``a`` of the grid on the test fold and on the inner validation split,
then prints test accuracy per source for each fixed ``a``, for ``a`` picked by the lowest
validation loss, and for the output ensemble of the start and the fine-tuned model (mean
probabilities). ``a = 1`` is plain encoder-tuned-probe (bench_encoders.py's row, fold for fold).

    python bench/bench_wiseft.py --folds 0,1,2,3,4 --log a.jsonl &   # one torch thread per
    python bench/bench_wiseft.py --folds 5,6,7,8,9 --log b.jsonl &   # process: OMP_NUM_THREADS=1
    python bench/bench_wiseft.py --report-only --log a.jsonl --log b.jsonl
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from fold_log import SEED, add_fold_arguments, read_log, run_folds  # noqa: E402

from textclass.compare import make_estimator  # noqa: E402

ALPHAS = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
SOURCES = ("yelp", "amazon", "imdb")


def _states(clf) -> dict:
    from textclass.models.encoders import _prefixed

    return {k: v.detach().clone() for k, v in [*_prefixed("body.", clf.body_), *_prefixed("head.", clf.head_)]}


def _load(clf, state: dict) -> None:
    clf.body_.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("body.")})
    clf.head_.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})


def record_start() -> None:
    """Keep each fit's starting weights and validation split on the classifier (experiment only)."""
    from textclass.models.encoders import EncoderClassifier

    train = EncoderClassifier._train

    def _train(self, texts, y, validation_data, callbacks):
        self.start_state_, self.validation_ = _states(self), validation_data
        return train(self, texts, y, validation_data, callbacks)

    EncoderClassifier._train = _train


def run_fold(X_train, y_train, X_test, y_test) -> dict:
    start = time.perf_counter()
    est = make_estimator("encoder-tuned", {"patience": 1, "encoder-tuned.head_init": "probe"}, seed=SEED)
    est.fit(list(X_train), list(y_train))
    fit_s = time.perf_counter() - start
    clf = est.model_
    tuned = _states(clf)
    val_texts, val_codes = clf.validation_
    codes = est.codec_.transform(list(y_test))
    out = {"fit_s": fit_s, "best_epoch": clf.best_epoch_, "alphas": {}}
    proba = {}
    for a in ALPHAS:
        _load(clf, {k: (1 - a) * v + a * tuned[k] if v.is_floating_point() else tuned[k]
                    for k, v in clf.start_state_.items()})
        p, pv = clf.predict_proba(list(X_test)), clf.predict_proba(list(val_texts))
        val_codes, proba[a] = np.asarray(val_codes), p
        out["alphas"][str(a)] = {"accuracy": float(np.mean(p.argmax(1) == codes)),
                                 "val_loss": float(-np.log(np.clip(pv[np.arange(len(val_codes)), val_codes],
                                                                   1e-12, 1)).mean())}
    out["ensemble_accuracy"] = float(np.mean((proba[0.0] + proba[1.0]).argmax(1) == codes))
    return out


def report(records: list[dict]) -> pd.DataFrame:
    rows = {}
    for source in SOURCES:
        rs = [r for r in records if r["source"] == source]
        if not rs:
            continue
        for a in ALPHAS:
            rows.setdefault(f"a = {a}", {})[source] = np.mean([r["alphas"][str(a)]["accuracy"] for r in rs])
        picked = [r["alphas"][min(r["alphas"], key=lambda a: (r["alphas"][a]["val_loss"], -float(a)))]["accuracy"]
                  for r in rs]
        rows.setdefault("a by validation loss", {})[source] = np.mean(picked)
        rows.setdefault("mean probabilities of start and a = 1", {})[source] = np.mean(
            [r["ensemble_accuracy"] for r in rs])
        rows.setdefault("folds", {})[source] = len(rs)
    table = pd.DataFrame(rows).T
    table["mean"] = table[[s for s in SOURCES if s in table]].mean(axis=1)
    table.loc["folds", "mean"] = np.nan
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_fold_arguments(ap, SOURCES)
    args = ap.parse_args()
    records = read_log(args.log)
    if not args.report_only:
        record_start()
        run_folds(args, records, run_fold, lambda r: f"fit {r['fit_s']:.0f} s, accuracy by a: "
                  + " ".join(f"{a}:{v['accuracy']:.2f}" for a, v in r["alphas"].items()))
    print(report(records).to_string(float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
