"""bilstm, gru and transformer: training on length-trimmed batches against the padded fit.

The masked models ignore a post-padded tail (``ModelSpec.trim``), so textclass trains them on
batches cut to the longest text of the batch (a few widths, ``models.batches``) instead of
``maxlen=100`` wide. This fits each model both ways on the same data with the same seed: as
shipped, and with trimming off (every batch 100 wide: the padded fit). The sides alternate per
seed so a passing load hits both alike; wall time is the whole ``fit`` (tokenizing and JIT
compilation included, textclass's compile cache off), accuracy is on the held-out sentences.
Data: the yelp split of the tutorial (750 / 250) and all of UCI Sentiment (2,250 / 750), both
by ``split_frame(test_size=0.25, random_state=1000)``, scored by accuracy; the first 10,000
GoEmotions training comments (28 tags) against its 5,427 test comments, by micro-F1 at the
model's threshold / mean log loss over comments and tags.

    python bench/bench_sequence.py                    # seeds 1000 1 2, all three models
    python bench/bench_sequence.py --models transformer --seeds 1000 --data uci
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from contextlib import contextmanager, nullcontext

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ["TEXTCLASS_COMPILE_CACHE"] = "0"  # both sides compile their train step in every fit

MODELS = ("bilstm", "gru", "transformer")
DATA = ("yelp", "uci", "goemotions-10k")


def split(name: str) -> tuple[list, list, list, list]:
    """Training texts and labels, test texts and labels."""
    from textclass.data import load_dataset, split_frame

    if name == "goemotions-10k":
        train, test = load_dataset("goemotions", split="train").iloc[:10_000], load_dataset("goemotions", split="test")
    else:
        uci = load_dataset("uci-sentiment")
        train, test = split_frame(uci[uci["source"] == "yelp"] if name == "yelp" else uci, test_size=0.25,
                                  random_state=1000)
    return train["text"].tolist(), train["label"].tolist(), test["text"].tolist(), test["label"].tolist()


@contextmanager
def padded():
    """Trimming off: every model trains and predicts on full-width batches."""
    from textclass.models import ModelSpec

    original = ModelSpec.trim_extra
    ModelSpec.trim_extra = lambda self, params=None: None
    try:
        yield
    finally:
        ModelSpec.trim_extra = original


def fit(model: str, seed: int, data: tuple) -> tuple[float, ...]:
    """Fit wall s and the test scores: accuracy, or micro-F1 and mean per-tag log loss (multi-label)."""
    from sklearn.metrics import f1_score, log_loss
    from sklearn.preprocessing import MultiLabelBinarizer

    from textclass.estimator import TextClassifier

    X, y, X_test, y_test = data
    start = time.perf_counter()
    clf = TextClassifier(model, random_state=seed).fit(X, y)
    wall = time.perf_counter() - start
    if clf.task_ != "multilabel":
        return wall, clf.score(X_test, y_test)
    Y = MultiLabelBinarizer(classes=clf.classes_).fit_transform(y_test)
    p = clf.predict_proba(X_test)
    return wall, f1_score(Y, p > clf.threshold, average="micro"), log_loss(Y.ravel(), p.ravel(), labels=[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--data", nargs="+", choices=DATA, default=list(DATA))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1000, 1, 2])
    args = parser.parse_args()
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    data = {name: split(name) for name in args.data}
    rows = []
    for model in args.models:
        for name, (X, y, X_test, y_test) in data.items():
            fit(model, 0, (X[:100], y[:100], X_test[:10], y_test[:10]))  # imports, warm-up
            times, scores = {"trimmed": [], "padded": []}, {"trimmed": [], "padded": []}
            for i, seed in enumerate(args.seeds):
                for side in (("trimmed", "padded") if i % 2 == 0 else ("padded", "trimmed")):
                    with padded() if side == "padded" else nullcontext():
                        wall, *score = fit(model, seed, (X, y, X_test, y_test))
                    times[side].append(wall)
                    scores[side].append("/".join(f"{v:.3f}" for v in score))
                    print(f"  {model} {name} seed {seed} {side}: {wall:.2f} s, score {scores[side][-1]}", flush=True)
            t, p = statistics.median(times["trimmed"]), statistics.median(times["padded"])
            rows.append(f"| {model} | {name} | {t:.2f} | {p:.2f} | {p / t:.2f}x | "
                        f"{' '.join(scores['trimmed'])} | {' '.join(scores['padded'])} |")
    print(f"\nmedian fit wall s over seeds {' '.join(map(str, args.seeds))} (defaults: 5 epochs, batch 32)")
    print("| model | data | trimmed fit s | padded fit s | padded / trimmed | score trimmed | score padded |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
