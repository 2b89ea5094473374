"""Pretrained sentence encoders on UCI Sentiment: nbsvm vs sentence-embed vs encoder-tuned vs SetFit.

Stratified k-fold CV per source (yelp, amazon, imdb), the same folds for every row, with
textclass.compare's corrected t-intervals and corrected paired t-tests against the best row; fit
time per fold beside each. Then encoder throughput (sentences/s) at 1 and 2 threads: textclass's
path (SentenceEmbedder on its PyTorch and its ONNX Runtime backend, cache off; then the default
with a cold and a warm cache) vs plain sentence-transformers ``encode``, same sentences, same batch
size, with the largest embedding difference.

Each finished fold is appended to ``--log`` (JSON lines) and printed, so a long run shows
progress and an interrupted one resumes where it stopped (same arguments).

    python bench/bench_encoders.py                                  # 10 folds x 3 sources
    python bench/bench_encoders.py --sources yelp --folds 5 --limit setfit=1 --setfit-steps 100
    python bench/bench_encoders.py --throughput-only
    python bench/bench_encoders.py --report-only --no-throughput --log bench/results/encoders_folds.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from textclass.compare import corrected_ttest, make_estimator, t_interval  # noqa: E402
from textclass.data import cv_splits, load_dataset  # noqa: E402
from textclass.evaluate import classification_metrics  # noqa: E402

SOURCES = ("yelp", "amazon", "imdb")
MODELS = ("nbsvm", "sentence-embed", "sentence-embed-logreg", "encoder-tuned", "encoder-tuned-probe", "setfit")
SEED = 0
# Rows that are a registry model with other hyperparameters: row -> (model, params). encoder-tuned
# runs as compare runs it (10% inner validation split, best epoch kept), stopping after 1 epoch
# without a better validation loss (compare waits 3; with 4 epochs the kept epoch rarely differs).
# Scoped names ("model.name"), so a name the model lacks raises instead of being dropped.
VARIANTS = {"sentence-embed-logreg": ("sentence-embed", {"sentence-embed.head": "logreg"}),
            "encoder-tuned": ("encoder-tuned", {"patience": 1}),
            "encoder-tuned-probe": ("encoder-tuned", {"patience": 1, "encoder-tuned.head_init": "probe"})}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {msg}", flush=True)


def fit_setfit(X_train, y_train, X_test, max_steps: int) -> np.ndarray:
    """SetFit's default recipe (TrainingArguments() as shipped) on the same MiniLM body; with
    ``max_steps`` > 0 its contrastive phase stops after that many steps (the default draws
    ~400,000 pairs from 900 sentences: hours per fold on a CPU)."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from textclass.models.encoders import resolve_encoder, set_threads

    set_threads()
    model = SetFitModel.from_pretrained(str(resolve_encoder("all-MiniLM-L6-v2")), device="cpu")
    with tempfile.TemporaryDirectory(prefix="setfit-") as scratch:  # no checkpoints left behind
        args = TrainingArguments(output_dir=scratch, save_strategy="no", seed=SEED, show_progress_bar=False,
                                 report_to="none", max_steps=max_steps)
        trainer = Trainer(model=model, args=args,
                          train_dataset=Dataset.from_dict({"text": list(X_train), "label": list(y_train)}))
        trainer.train()
    return np.asarray(model.predict(list(X_test)))


def run_fold(model: str, X_train, y_train, X_test, y_test, args) -> dict:
    start = time.perf_counter()
    if model == "setfit":
        pred = fit_setfit(X_train, y_train, X_test, args.setfit_steps)
        fit_s, epochs = time.perf_counter() - start, None
    else:
        name, params = VARIANTS.get(model, (model, {}))
        est = make_estimator(name, params, seed=SEED).fit(list(X_train), list(y_train))
        fit_s = time.perf_counter() - start
        pred = est.predict(list(X_test))
        epochs = len(est.history_.get("loss", [])) or None
    m = classification_metrics(list(y_test), [int(p) for p in pred])
    return {"accuracy": m["accuracy"], "f1_macro": m["f1_macro"], "fit_s": fit_s, "epochs": epochs,
            "n_train": len(X_train), "n_test": len(X_test)}


def cross_validate(args) -> pd.DataFrame:
    """Every (source, model, fold) once; fold-major within a model, so a model limited to a few
    folds (``--limit``) still covers every source."""
    df = load_dataset("uci-sentiment")
    done = {}
    if args.log.exists():
        for line in args.log.read_text().splitlines():
            r = json.loads(line)
            done[(r["source"], r["model"], r["fold"])] = r
    data = {}
    for source in args.sources:
        part = df[df["source"] == source].reset_index(drop=True)
        X, y = part["text"].to_numpy(dtype=object), part["label"].to_numpy()
        data[source] = (X, y, list(cv_splits(y.tolist(), n_splits=args.folds, random_state=SEED)))
    with args.log.open("a") as out:
        for model in () if args.report_only else args.models:
            n = min(args.folds, args.limit.get(model, args.folds))
            for fold in range(n):
                for source in args.sources:
                    if (source, model, fold) in done:
                        continue
                    X, y, splits = data[source]
                    tr, te = splits[fold]
                    r = {"source": source, "model": model, "fold": fold,
                         **run_fold(model, X[tr], y[tr], X[te], y[te], args)}
                    done[(source, model, fold)] = r
                    out.write(json.dumps(r) + "\n")
                    out.flush()
                    log(f"{source} {model} fold {fold + 1}/{n}: accuracy {r['accuracy']:.3f} "
                        f"fit {r['fit_s']:.1f}s epochs {r['epochs']}")
    rows = [r for r in done.values() if r["source"] in args.sources and r["model"] in args.models]
    return pd.DataFrame(rows)


def summary(folds: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for source, part in folds.groupby("source", sort=False):
        by = {m: p.sort_values("fold") for m, p in part.groupby("model", sort=False)}
        # The reference of the paired tests: the best row among those with at least two folds.
        tested = [m for m in by if len(by[m]) >= 2] or list(by)
        best = max(tested, key=lambda m: by[m]["accuracy"].mean())
        for model, p in by.items():
            ratio = float((p["n_test"] / p["n_train"]).mean())
            mean, lo, hi = t_interval(p["accuracy"], test_train_ratio=ratio)
            pv = np.nan
            if model != best:
                shared = sorted(set(p["fold"]) & set(by[best]["fold"]))
                if len(shared) >= 2:
                    a = by[best].set_index("fold").loc[shared, "accuracy"].to_numpy()
                    b = p.set_index("fold").loc[shared, "accuracy"].to_numpy()
                    pv = corrected_ttest(a, b, test_train_ratio=ratio)[1]
            rows.append({"source": source, "model": model + (" (ref)" if model == best else ""),
                         "folds": len(p), "accuracy": mean, "ci95": f"[{lo:.3f}, {hi:.3f}]",
                         "p vs ref": pv, "macro-F1": p["f1_macro"].mean(), "fit s/fold": p["fit_s"].mean(),
                         "epochs": p["epochs"].dropna().mean() if p["epochs"].notna().any() else np.nan})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ throughput
def throughput(n_texts: int, batch_size: int) -> pd.DataFrame:
    import tempfile

    import torch
    from sentence_transformers import SentenceTransformer

    from textclass.models.encoders import SentenceEmbedder, resolve_encoder

    everything = load_dataset("uci-sentiment")["text"].tolist()
    texts, warm = everything[:n_texts], everything[-batch_size:]  # warm-up texts are not timed ones
    st = SentenceTransformer(str(resolve_encoder("all-MiniLM-L6-v2")), device="cpu")
    st.max_seq_length = 128
    rows, ref = [], None
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TEXTCLASS_CACHE"] = cache
        for threads in (1, 2):
            os.environ["OMP_NUM_THREADS"] = str(threads)  # textclass's path reads it, as in joblib workers
            torch.set_num_threads(threads)
            shutil.rmtree(Path(cache) / "embeddings", ignore_errors=True)
            make = {b: SentenceEmbedder(maxlen=128, batch_size=batch_size, cache=False, backend=b).fit(texts[:2])
                    for b in ("torch", "onnx")}
            make["onnx"].transform(texts[:2])  # the one-off export and check, outside the timing
            emb = SentenceEmbedder(maxlen=128, batch_size=batch_size, cache=True).fit(texts[:2])
            runs = {
                "sentence-transformers encode": lambda: st.encode(texts, batch_size=batch_size, show_progress_bar=False),
                "textclass, PyTorch backend, no cache": lambda: make["torch"].transform(texts),
                "textclass, ONNX Runtime backend, no cache": lambda: make["onnx"].transform(texts),
                "textclass default (auto), cold cache: embed + write": lambda: emb.transform(texts),
                "textclass default (auto), warm cache": lambda: emb.transform(texts),
            }
            st.encode(warm, batch_size=batch_size, show_progress_bar=False)  # first calls set up
            for embedder in (*make.values(), emb):                               # threads and kernels
                embedder.transform(warm)
            for name, fn in runs.items():
                start = time.perf_counter()
                out = np.asarray(fn())
                secs = time.perf_counter() - start
                ref = out if ref is None else ref
                rows.append({"threads": threads, "path": name, "sentences/s": len(texts) / secs,
                             "max |diff| vs ST": float(np.abs(out - ref).max())})
                log(f"throughput {threads} thread(s) {name}: {len(texts) / secs:.0f} sentences/s")
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources", default=",".join(SOURCES))
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--limit", action="append", default=[], metavar="MODEL=N",
                    help="run MODEL on the first N folds of each source only; repeatable")
    ap.add_argument("--setfit-steps", type=int, default=-1, help="cap SetFit's contrastive steps (-1: its default)")
    ap.add_argument("--log", type=Path, default=Path("bench/encoders_folds.jsonl"))
    ap.add_argument("--report-only", action="store_true", help="summarise the folds already in --log; train nothing")
    ap.add_argument("--throughput-only", action="store_true")
    ap.add_argument("--no-throughput", action="store_true")
    ap.add_argument("--throughput-texts", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    args.sources = tuple(s for s in args.sources.split(",") if s)
    args.models = tuple(m for m in args.models.split(",") if m)
    args.limit = {k: int(v) for k, _, v in (x.partition("=") for x in args.limit)}
    if args.report_only and not args.log.exists():
        ap.error(f"--report-only: no fold log at {args.log} (the committed one: --log bench/results/encoders_folds.jsonl)")
    log(f"bench_encoders: sources {args.sources}, {args.folds} folds, models {args.models}, limits {args.limit}, "
        f"setfit steps {args.setfit_steps}; cores {len(os.sched_getaffinity(0))}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    pd.set_option("display.width", 200)
    if not args.throughput_only:
        folds = cross_validate(args)
        print(f"\nstratified {args.folds}-fold CV per source, same folds for every row (seed {SEED}); 95% corrected "
              "t-interval; p: corrected paired t-test vs the ref row (best with >= 2 folds) over the folds both ran")
        print(summary(folds).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if not args.no_throughput:
        table = throughput(args.throughput_texts, args.batch_size)
        print(f"\nencoder throughput, {args.throughput_texts} UCI sentences, batch {args.batch_size}, max length 128")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"load average at the end: {os.getloadavg()}", file=sys.stderr)


if __name__ == "__main__":
    main()
