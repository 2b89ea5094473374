"""Explain latency per sentence, beside the plain predict latency of the same model.

bow-logreg, nbsvm, tfidf-linear (exact) and cnn (occlusion) with their registry defaults, trained
on 2000 UCI sentences; 1,000 other UCI sentences are explained and predicted two ways:
- one by one (``clf.explain([text])``, ``clf.predict_proba([text])``): what a person or a service
  asking about one sentence waits for; mean and 95th percentile;
- in one call over all 1,000 (``clf.explain(texts)``): the throughput of a batch job, timed on
  the second of two runs.
Before the clock runs, each model explains and predicts 100 training sentences one by one, so the
one-off JAX compilations (a few padded shapes) are not counted. Goal: < 20 ms per sentence for
the cnn, on 2 cores.

Seen here (issue 11, 2026-12-02, the machine shared with other work): cnn 6.5 ms one by one and
0.9 ms in a batch at load average 6; 10.2 ms and 2.8 ms at load average 20.

    python bench/bench_explain.py            # data from $TEXTCLASS_DATA
    python bench/bench_explain.py --quick    # 200 sentences, cnn for 2 epochs: a smoke check
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from rich.console import Console
from rich.table import Table

os.environ.setdefault("KERAS_BACKEND", "jax")

MODELS = ["bow-logreg", "nbsvm", "tfidf-linear", "cnn"]
GOAL_MS = {"cnn": 20.0}


def one_by_one(fn, texts: list[str]) -> np.ndarray:
    """Milliseconds per call of ``fn([text])`` for each text."""
    out = np.empty(len(texts))
    for i, text in enumerate(texts):
        start = time.perf_counter()
        fn([text])
        out[i] = (time.perf_counter() - start) * 1e3
    return out


def batch_ms(fn, texts: list[str]) -> float:
    """Milliseconds per text of ``fn(texts)``, the second of two runs (the first compiles)."""
    fn(texts)
    start = time.perf_counter()
    fn(texts)
    return (time.perf_counter() - start) * 1e3 / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 sentences, cnn for 2 epochs")
    args = parser.parse_args()

    from textclass.data import load_dataset
    from textclass.estimator import TextClassifier
    from textclass.explain import word_spans

    data = load_dataset("uci-sentiment").sample(frac=1.0, random_state=0)
    train, test = data.iloc[:2000], data.iloc[2000:]
    texts = test.text.tolist()[:200 if args.quick else 1000]
    warm = train.text.tolist()[:100]
    words = np.mean([len(word_spans(t)) for t in texts])
    console = Console(width=max(Console().width, 130))
    load_before = os.getloadavg()[0]
    table = Table(title=f"explain vs predict, {len(texts)} held-out UCI sentences ({words:.1f} words on average), "
                        "ms per sentence")
    for col in ("model", "method", "explain 1-by-1", "p95", "predict 1-by-1", "ratio",
                "explain batch", "predict batch", "goal"):
        table.add_column(col, justify="left" if col in ("model", "method") else "right")
    for name in MODELS:
        params = {"epochs": 2} if args.quick and name == "cnn" else {}
        start = time.perf_counter()
        clf = TextClassifier(name, random_state=0, **params).fit(train.text.tolist(), train.label.tolist())
        console.print(f"{name}: trained in {time.perf_counter() - start:.1f} s", highlight=False)
        one_by_one(clf.explain, warm)
        one_by_one(clf.predict_proba, warm)
        explain_ms = one_by_one(clf.explain, texts)
        predict_ms = one_by_one(clf.predict_proba, texts)
        method = clf.explain(texts[:1])[0].method
        goal = GOAL_MS.get(name)
        table.add_row(
            name, method, f"{explain_ms.mean():.2f}", f"{np.percentile(explain_ms, 95):.2f}",
            f"{predict_ms.mean():.2f}", f"{explain_ms.mean() / predict_ms.mean():.1f}x",
            f"{batch_ms(clf.explain, texts):.2f}", f"{batch_ms(clf.predict_proba, texts):.3f}",
            "" if goal is None else f"< {goal:.0f}: {'met' if explain_ms.mean() < goal else 'NOT met'}",
        )
    console.print(table)
    console.print(f"load average (1 min): {load_before:.2f} before the timed runs, {os.getloadavg()[0]:.2f} "
                  f"after, on {os.cpu_count()} cores", highlight=False)


if __name__ == "__main__":
    main()
