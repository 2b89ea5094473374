"""The n-gram models at scale, each beside the plain scikit-learn recipe of the same model.

Two data sets:
- goemotions: the 43,410 training comments, 28 tags (multi-label); scored on the 5,427 test
  comments by micro-F1 (threshold 0.5).
- long documents: 25,000 training and 5,000 test documents of 120-360 words (about 240 on
  average) built from bbc-news. The 2,225 articles are split 80/20 first; each document is a run
  of randomly drawn paragraphs (headlines dropped) of one topic's articles from its side of the
  split, so no test paragraph is seen in training. Label: the topic (5 classes); scored by
  accuracy.

Plain recipes (what a user writes with scikit-learn alone, ``OneVsRestClassifier`` for tags):
- bow-logreg: ``CountVectorizer() + LogisticRegression()``.
- tfidf-linear: the same word 1-2 + char_wb 2-5 TF-IDF union + an uncalibrated ``LinearSVC``
  (labels from ``predict``; textclass adds calibrated probabilities).
- nbsvm: the textbook NBSVM in scikit-learn (``PlainNBSVM``: ``CountVectorizer`` binary 1-3-grams,
  per class the log-count ratio ``r`` and a ``LogisticRegression`` on ``X.multiply(r)``), which is
  what textclass ran before; and, as side "tfidf-lr", ``TfidfVectorizer() + LogisticRegression()``,
  the issue's reference point (a different, unigram model).
- tfidf-linear, side "plain-calibrated": ``CalibratedClassifierCV(LinearSVC(), cv=5)``, scikit-learn's
  own way to the probabilities textclass gives (``--no-calibrated`` skips it: 5 SVMs per tag). The
  row "textclass, margin > 0" scores textclass's SVM with the plain rule: a gap in the score is the
  decision rule (calibrated p > 0.5), not the model.
- goemotions, side "textclass-auto": textclass with ``threshold="auto"`` (the micro-F1-best
  threshold on a 20% hold-out of the training comments, learned at fit: a second fit on the other
  80%, or for tfidf-linear its calibration's own hold-out, no extra fit; ``--no-auto`` skips it).

Each fit runs in a fresh child process, so "peak MB" is that process's maximum resident set
(``resource.getrusage``), including the interpreter, the libraries and the data (the same on
both sides). "predict/s": test documents, texts to probabilities, per second. Ratios are
textclass / plain. A child whose address space would pass ``--cap-gb`` fails instead of
swapping the machine. ``--n`` scales the training sets down for a quick run.

    python bench/bench_scale.py                       # both data sets, all three models
    python bench/bench_scale.py --n 5000 --models nbsvm --data long
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import resource
import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

MODELS = ("bow-logreg", "tfidf-linear", "nbsvm")


def long_documents(n_train: int = 25_000, n_test: int = 5_000, words: int = 240, seed: int = 0):
    """(train texts, labels), (test texts, labels) built from bbc-news paragraphs (see above)."""
    from textclass.data import load_dataset

    bbc = load_dataset("bbc-news")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(bbc))
    cut = int(0.8 * len(bbc))
    out = []
    for rows, n in ((order[:cut], n_train), (order[cut:], n_test)):
        pools: dict[str, list[str]] = {}
        for i in rows:
            paragraphs = [p.strip() for p in re.split(r"\n\s*\n", bbc["text"].iloc[i]) if p.strip()]
            pools.setdefault(bbc["label"].iloc[i], []).extend(paragraphs[1:])
        topics = sorted(pools)
        texts, labels = [], []
        for _ in range(n):
            topic = topics[rng.integers(len(topics))]
            pool, doc, count = pools[topic], [], 0
            target = rng.integers(words // 2, 3 * words // 2)
            while count < target:
                doc.append(pool[rng.integers(len(pool))])
                count += len(doc[-1].split())
            texts.append("\n\n".join(doc))
            labels.append(topic)
        out.append((texts, labels))
    return out


def load(data: str, n: int | None):
    if data == "goemotions":
        from textclass.data import load_dataset

        train, test = load_dataset("goemotions", split="train"), load_dataset("goemotions", split="test")
        train = train.iloc[:n] if n else train
        return (train["text"].tolist(), train["label"].tolist()), (test["text"].tolist(), test["label"].tolist())
    return long_documents(n_train=n or 25_000, n_test=min(5_000, n or 5_000))


class PlainNBSVM(ClassifierMixin, BaseEstimator):
    """NBSVM as one writes it with scikit-learn alone: one LR per class on NB-scaled features."""

    def fit(self, X, y):
        import scipy.sparse as sp
        from sklearn.linear_model import LogisticRegression

        X, y = sp.csr_matrix(X, dtype=np.float64), np.asarray(y)
        self.classes_ = np.unique(y)
        self.models_ = []
        for label in self.classes_[1:] if len(self.classes_) == 2 else self.classes_:
            p, q = X[y == label].sum(axis=0).A1 + 0.5, X[y != label].sum(axis=0).A1 + 0.5
            r = np.log((p / p.sum()) / (q / q.sum()))
            lr = LogisticRegression(C=10.0, max_iter=1000, random_state=0).fit(X.multiply(r).tocsr(), y == label)
            self.models_.append((r, lr))
        return self

    def predict_proba(self, X):
        import scipy.sparse as sp

        X = sp.csr_matrix(X, dtype=np.float64)
        pos = np.column_stack([lr.predict_proba(X.multiply(r).tocsr())[:, 1] for r, lr in self.models_])
        if len(self.classes_) == 2:
            return np.column_stack([1 - pos[:, 0], pos[:, 0]])
        return pos / pos.sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def plain_recipe(model: str, multilabel: bool, side: str = "plain"):
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import FeatureUnion, make_pipeline
    from sklearn.svm import LinearSVC

    head = OneVsRestClassifier if multilabel else (lambda c: c)
    if model == "bow-logreg":
        return make_pipeline(CountVectorizer(), head(LogisticRegression()))
    if model == "tfidf-linear":
        union = FeatureUnion([("word", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
                              ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True))])
        svm = LinearSVC(random_state=0)
        if side == "plain-calibrated":  # probabilities as textclass gives them: 5 folds, 5 SVMs averaged
            from sklearn.calibration import CalibratedClassifierCV

            svm = CalibratedClassifierCV(svm, method="sigmoid", cv=5)
        return make_pipeline(union, head(svm))
    if side == "tfidf-lr":
        return make_pipeline(TfidfVectorizer(), head(LogisticRegression()))
    from textclass.models.linear import NBSVM_TOKEN_PATTERN

    vec = CountVectorizer(ngram_range=(1, 3), binary=True, token_pattern=NBSVM_TOKEN_PATTERN)
    return make_pipeline(vec, head(PlainNBSVM()))


def run_one(model: str, side: str, data: str, n: int | None, cap_gb: float, params: dict, queue) -> None:
    """In a child process: fit, predict, score; put the figures on ``queue``."""
    cap = int(cap_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.preprocessing import MultiLabelBinarizer

    from textclass.estimator import TextClassifier

    (X, y), (Xt, yt) = load(data, n)
    multilabel = data == "goemotions"
    start_cpu, start = time.process_time(), time.perf_counter()
    if side.startswith("textclass"):
        auto = {"threshold": "auto"} if side == "textclass-auto" else {}
        clf = TextClassifier(model, random_state=0, **params, **auto).fit(X, y)
    else:
        if multilabel:
            mlb = MultiLabelBinarizer().fit(y)
            y = mlb.transform(y)
        clf = plain_recipe(model, multilabel, side).fit(X, y)
    fit_s, fit_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    start = time.perf_counter()
    if side.startswith("textclass"):
        proba = clf.predict_proba(Xt)
        pred = clf.labels_from_proba(proba)
    else:
        pred = clf.predict(Xt)
    predict_s = time.perf_counter() - start
    if multilabel:
        truth = mlb.transform(yt) if not side.startswith("textclass") else None
        if side.startswith("textclass"):
            mlb = MultiLabelBinarizer(classes=clf.classes_).fit(y)
            truth, pred = mlb.transform(yt), mlb.transform(pred)
        score = f1_score(truth, pred, average="micro")
    else:
        score = accuracy_score(yt, list(pred))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"fit_s": fit_s, "fit_cpu": fit_cpu, "peak_mb": peak_mb, "per_s": len(Xt) / predict_s,
               "score": score, "n": len(X), "threshold": getattr(clf, "threshold_", None),
               "margin_score": margin_score(clf, Xt, truth if multilabel else yt)})


def margin_score(clf, texts, truth) -> float | None:
    """textclass tfidf-linear's score with the plain recipe's rule, margin > 0 (not p > 0.5): the
    same SVM, so any gap in the table is the decision rule, not the model."""
    from sklearn.metrics import accuracy_score, f1_score

    from textclass.models.linear import CalibratedLinearSVC

    pipe = getattr(clf, "model_", None)
    head = pipe.named_steps["classifier"] if pipe is not None else None
    heads = getattr(head, "estimators_", [head])
    if not all(isinstance(h, CalibratedLinearSVC) for h in heads):
        return None
    X = pipe.named_steps["vectorizer"].transform(texts)
    if len(heads) > 1:  # one binary SVM per tag
        pred = np.column_stack([h.svm_.decision_function(X) > 0 for h in heads]).astype(int)
        return f1_score(truth, pred, average="micro")
    return accuracy_score(truth, clf.classes_[head.svm_.predict(X)])


def measure(model: str, side: str, data: str, n: int | None, cap_gb: float, params: dict) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=run_one, args=(model, side, data, n, cap_gb, params, queue))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        return {"error": f"child exit {proc.exitcode} (over {cap_gb} GB?)"}
    return queue.get()


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", choices=["goemotions", "long", "both"], default="both")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated, from " + ", ".join(MODELS))
    ap.add_argument("--n", type=int, default=None, help="training documents (default: all / 25,000)")
    ap.add_argument("--cap-gb", type=float, default=6.0, help="address-space cap per child (GB)")
    ap.add_argument("--n-jobs", type=int, default=None, help="textclass models' n_jobs (default: None, one core)")
    ap.add_argument("--sides", default="textclass,plain")
    ap.add_argument("--no-reference", dest="reference", action="store_false",
                    help="skip nbsvm's tfidf-lr reference side")
    ap.add_argument("--no-calibrated", dest="calibrated", action="store_false",
                    help="skip tfidf-linear's CalibratedClassifierCV side")
    ap.add_argument("--no-auto", dest="auto", action="store_false",
                    help="skip the goemotions side textclass-auto (threshold='auto')")
    args = ap.parse_args()
    params = {} if args.n_jobs is None else {"n_jobs": args.n_jobs}
    console = Console(width=max(Console().width, 130))
    console.print(f"load average at start: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for data in ["goemotions", "long"] if args.data == "both" else [args.data]:
        metric = "micro-F1" if data == "goemotions" else "accuracy"
        table = Table(title=f"{data}: textclass vs the plain scikit-learn recipe (ratio = textclass / plain)")
        for col in ("model", "side", "train n", "fit s", "fit cpu s", "peak MB", "predict/s", metric):
            table.add_column(col, justify="left" if col in ("model", "side") else "right")
        for model in args.models.split(","):
            sides = args.sides.split(",") + (["tfidf-lr"] if model == "nbsvm" and args.reference else [])
            sides += ["plain-calibrated"] if model == "tfidf-linear" and args.calibrated else []
            sides += ["textclass-auto"] if data == "goemotions" and args.auto else []
            rows = {side: measure(model, side, data, args.n, args.cap_gb, params) for side in sides}
            for side, r in rows.items():
                if "error" in r:
                    table.add_row(model, side, "", r["error"], "", "", "", "")
                    continue
                shown = f"{side} (t = {r['threshold']:g})" if side == "textclass-auto" else side
                table.add_row(model, shown, f"{r['n']}", f"{r['fit_s']:.1f}", f"{r['fit_cpu']:.1f}",
                              f"{r['peak_mb']:.0f}", f"{r['per_s']:.0f}", f"{r['score']:.4f}")
            if rows.get("textclass", {}).get("margin_score") is not None:
                table.add_row(model, "textclass, margin > 0", "", "", "", "", "", f"{rows['textclass']['margin_score']:.4f}")
            for ours, other in (("textclass", "plain"), ("textclass", "plain-calibrated"), ("textclass-auto", "plain")):
                a, b = rows.get(ours, {}), rows.get(other, {})
                if "fit_s" in a and "fit_s" in b:
                    label = f"ratio vs {other}" if ours == "textclass" else f"{ours} vs {other}"
                    table.add_row(model, label, "", f"{a['fit_s'] / b['fit_s']:.2f}x",
                                  f"{a['fit_cpu'] / b['fit_cpu']:.2f}x", f"{a['peak_mb'] / b['peak_mb']:.2f}x",
                                  f"{a['per_s'] / b['per_s']:.2f}x", f"{a['score'] - b['score']:+.4f}")
            table.rows[-1].end_section = True
        console.print(table)
    console.print(f"load average at end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
