"""cnn training (the tutorial's experiment 7) against plain Keras, and cnn predict throughput.

Part 1: on the yelp split (``split_frame(yelp, test_size=0.25, random_state=1000)``, 750 / 250),
the cnn of experiment 7 (Embedding 100, Conv1D(128, 5), GlobalMaxPool1D, Dense 10; adam; 10
epochs, batch 10) trained by ``TextClassifier("cnn").fit`` (packed rows), by the same with packing
off (``ModelSpec.packed=None``: length-trimmed batches, each at one width) and by plain Keras 3 on JAX (the same tokenizer, ids padded ``post`` to 100, the same layers, ``model.fit``
with ``shuffle=True``). One fit per seed and side, the sides alternating, so a passing load hits
both alike; wall time is the whole fit (tokenizing and JIT compilation included) and test accuracy
is on the 250 test sentences. First with textclass's JAX compile cache off (both sides compile
their train step in every fit; one untimed 1-epoch fit of each side first), then textclass as
shipped, its compile cache in a fresh folder: the first seed fills it, later fits read it.

Part 2: ``predict_proba`` of the fitted cnn on N sentences (the 3000 UCI sentences repeated),
best of 3, against the same path with Keras' forward pass instead of the folded convolution
(``models.keras.cnn_predictor``) and ``model.predict`` on the full 100-wide padded input, with
where the time goes: tokenizing (``texts_to_sequences``), padding and batching, and the model calls.

    python bench/bench_train.py                  # seeds 1000 1 2; predict 10k and 100k sentences
    python bench/bench_train.py --seeds 1000 --sizes 10000
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")

EPOCHS, BATCH = 10, 10
CACHE = tempfile.TemporaryDirectory(prefix="bench-train-jax-")


def yelp_split():
    from textclass.data import load_dataset, split_frame

    uci = load_dataset("uci-sentiment")
    train, test = split_frame(uci[uci["source"] == "yelp"], test_size=0.25, random_state=1000)
    return train["text"].tolist(), train["label"].tolist(), test["text"].tolist(), test["label"].tolist()


def fit_textclass(seed, X, y, X_test, y_test):
    from textclass.estimator import TextClassifier

    start = time.perf_counter()
    clf = TextClassifier("cnn", random_state=seed, epochs=EPOCHS, batch_size=BATCH).fit(X, y)
    wall = time.perf_counter() - start
    return wall, clf.score(X_test, y_test), clf


def fit_trimmed(seed, X, y, X_test, y_test):
    """textclass with packing off: the trimmed rows (each batch at one width, 40 on this split)."""
    from textclass import models

    spec = models.MODELS["cnn"]
    models.MODELS["cnn"] = dataclasses.replace(spec, packed=None)
    try:
        wall, acc, _ = fit_textclass(seed, X, y, X_test, y_test)
    finally:
        models.MODELS["cnn"] = spec
    return wall, acc, None


def fit_keras(seed, X, y, X_test, y_test):
    """The tutorial's code on Keras 3: pad every sentence to 100, ``model.fit`` on the arrays."""
    import keras
    from keras import layers

    from textclass.tokenize import Tokenizer, pad_sequences

    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    tokenizer = Tokenizer(num_words=5000).fit(X)
    x = pad_sequences(tokenizer.texts_to_sequences(X), maxlen=100, padding="post", truncating="post")
    model = keras.Sequential([
        keras.Input((100,), dtype="int32"), layers.Embedding(tokenizer.vocab_size, 100),
        layers.Conv1D(128, 5, activation="relu"), layers.GlobalMaxPooling1D(),
        layers.Dense(10, activation="relu"), layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, np.asarray(y), epochs=EPOCHS, batch_size=BATCH, verbose=0, shuffle=True)
    wall = time.perf_counter() - start
    x_test = pad_sequences(tokenizer.texts_to_sequences(X_test), maxlen=100, padding="post", truncating="post")
    p = model.predict(x_test, verbose=0)[:, 0]
    return wall, float(np.mean((p > 0.5) == (np.asarray(y_test) == 1))), None


def training(seeds):
    X, y, X_test, y_test = yelp_split()
    os.environ["TEXTCLASS_COMPILE_CACHE"] = "off"  # first the batching alone: both sides compile every fit
    global EPOCHS
    EPOCHS, epochs = 1, EPOCHS
    for fn in (fit_textclass, fit_trimmed, fit_keras):  # untimed: JAX's one-off compilations of eager ops
        fn(0, X, y, X_test, y_test)
    EPOCHS = epochs
    rows = {"textclass": [], "textclass, packing off": [], "plain Keras": []}
    clf = None
    for seed in seeds:
        for side, fn in (("textclass", fit_textclass), ("textclass, packing off", fit_trimmed),
                         ("plain Keras", fit_keras)):
            wall, acc, fitted = fn(seed, X, y, X_test, y_test)
            clf = fitted or clf
            rows[side].append((wall, acc))
            print(f"  seed {seed:>5} {side:<22} fit {wall:6.2f} s  test accuracy {acc:.4f}", flush=True)
    print(f"\nexperiment 7 (cnn, {EPOCHS} epochs, batch {BATCH}, yelp 750 / 250), seeds {' '.join(map(str, seeds))}")
    print("| side | median fit s | fit s per seed | mean test accuracy | accuracy per seed |\n|---|---|---|---|---|")
    for side, r in rows.items():
        walls, accs = [w for w, _ in r], [a for _, a in r]
        print(f"| {side} | {statistics.median(walls):.2f} | {' '.join(f'{w:.2f}' for w in walls)} | "
              f"{np.mean(accs):.4f} | {' '.join(f'{a:.4f}' for a in accs)} |")
    ratio = statistics.median(w for w, _ in rows["plain Keras"]) / statistics.median(w for w, _ in rows["textclass"])
    per_seed = [k[0] / t[0] for t, k in zip(rows["textclass"], rows["plain Keras"])]
    print(f"speed-up (median plain Keras / median textclass): {ratio:.2f}x; per seed "
          f"{' '.join(f'{r:.2f}x' for r in per_seed)} (goal >= 2x)")
    packing = [o[0] / t[0] for t, o in zip(rows["textclass"], rows["textclass, packing off"])]
    print(f"packed rows vs trimmed rows (packing off / textclass): per seed {' '.join(f'{r:.2f}x' for r in packing)}")
    # Then textclass as shipped: its compile cache, in a fresh folder kept until the process ends
    # (JAX keeps writing to it).
    os.environ["TEXTCLASS_COMPILE_CACHE"], os.environ["TEXTCLASS_CACHE"] = "on", CACHE.name
    cached = [fit_textclass(seed, X, y, X_test, y_test)[0] for seed in seeds]
    print(f"textclass with its compile cache (empty at the first seed): fit s per seed "
          f"{' '.join(f'{w:.2f}' for w in cached)}; plain Keras median / cached textclass from the 2nd seed: "
          f"{statistics.median(w for w, _ in rows['plain Keras']) / statistics.median(cached[1:] or cached):.2f}x")
    return clf


def best(fn, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def throughput(clf, sizes):
    from textclass.data import load_dataset
    from textclass.estimator import PREDICT_BATCH, WIDTH_STEP

    sentences = load_dataset("uci-sentiment")["text"].tolist()
    pre, trim = clf.preprocessor_, clf._trim()
    print("\ncnn predict_proba, sentences/s (best of 3, after one untimed run)")
    print("| sentences | textclass | textclass, Keras forward | naive model.predict (100 wide) | speed-up | "
          "max abs diff | tokenize s | pad + batch s | model calls s | goal |\n|---|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        texts = (sentences * (n // len(sentences) + 1))[:n]
        print(throughput_row(clf, pre, trim, texts, PREDICT_BATCH, WIDTH_STEP), flush=True)


def throughput_row(clf, pre, trim, texts, batch, step) -> str:
    def naive():
        p = clf.model_.predict(pre.transform(texts), verbose=0, batch_size=batch)[:, 0]
        return np.column_stack([1.0 - p, p])

    from textclass import estimator

    def ours():
        return clf.predict_proba(texts)

    def keras_forward():  # the same path with Keras' forward pass instead of the folded convolution
        saved = estimator._PREDICTORS.get(clf.model_)
        estimator._PREDICTORS[clf.model_] = None
        try:
            return clf.predict_proba(texts)
        finally:
            estimator._PREDICTORS[clf.model_] = saved

    n = len(texts)
    ours(), naive(), keras_forward()
    t_ours, p_ours = best(ours)
    t_keras, _ = best(keras_forward)
    t_naive, p_naive = best(naive, repeat=1 if n > 20_000 else 3)
    t_tok, _ = best(lambda: pre.sequences(texts))
    t_batch, batches = best(lambda: list(pre.batches(texts, trim, batch, step)))
    t_model, _ = best(lambda: [np.asarray(clf._run(x)) for _, x in batches])
    rate = n / t_ours
    return (f"| {n:,} | {rate:,.0f} | {n / t_keras:,.0f} | {n / t_naive:,.0f} | {t_naive / t_ours:.2f}x | "
            f"{float(np.max(np.abs(p_ours - p_naive))):.1e} | {t_tok:.3f} | {t_batch - t_tok:.3f} | "
            f"{t_model:.3f} | >= 100,000 {'ok' if rate >= 100_000 else 'MISSED'} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1000, 1, 2])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    load = os.getloadavg()
    import keras

    keras.ops.convert_to_numpy(keras.ops.ones((2, 2)) @ keras.ops.ones((2, 2)))  # start JAX off the clock
    clf = training(args.seeds)
    throughput(clf, args.sizes)
    print(f"\nload average (1, 5 min) before: {load[0]:.2f} {load[1]:.2f}; after: "
          f"{os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (2 cores, shared)")


if __name__ == "__main__":
    main()
