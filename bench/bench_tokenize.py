"""Tokenizer, padding and GloVe-reading throughput, beside a naive per-word Keras 2 style loop.

Run: ``python bench/bench_tokenize.py`` (reads $TEXTCLASS_DATA, default /work/shared/data).
100,000 sentences are built by repeating the 3,000 UCI sentences; each step is timed best of 3.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import numpy as np

from textclass.embeddings import build_embedding_matrix, embedding_coverage
from textclass.tokenize import KERAS_FILTERS, Tokenizer, pad_sequences

N = 100_000
MAXLEN = 100
DATA = Path(os.environ.get("TEXTCLASS_DATA", "/work/shared/data"))


def sentences() -> list[str]:
    out = []
    for name in ("yelp_labelled.txt", "amazon_cells_labelled.txt", "imdb_labelled.txt"):
        with open(DATA / "uci-sentiment" / name, encoding="utf-8", newline="") as f:
            out += [row[0] for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    return (out * (N // len(out) + 1))[:N]


# -- the naive reference: Keras 2's code path, one word at a time ------------------------------
def naive_words(text: str) -> list[str]:
    text = text.lower()
    text = text.translate(str.maketrans({c: " " for c in KERAS_FILTERS}))
    return [w for w in text.split(" ") if w]


def naive_texts_to_sequences(word_index: dict[str, int], num_words: int, texts: list[str]) -> list[list[int]]:
    out = []
    for text in texts:
        vect = []
        for w in naive_words(text):
            i = word_index.get(w)
            if i is not None and not (num_words and i >= num_words):
                vect.append(i)
        out.append(vect)
    return out


def naive_pad(seqs: list[list[int]], maxlen: int) -> np.ndarray:
    x = np.zeros((len(seqs), maxlen), dtype=np.int32)
    for i, s in enumerate(seqs):
        if s:
            t = np.asarray(s[:maxlen], dtype=np.int32)
            x[i, : len(t)] = t
    return x


def best_of(fn, repeat: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> None:
    texts = sentences()
    t_fit, tok = best_of(lambda: Tokenizer(num_words=5000).fit(texts))
    t_seq, seqs = best_of(lambda: tok.texts_to_sequences(texts))
    t_seq0, seqs0 = best_of(lambda: naive_texts_to_sequences(tok.word_index, 5000, texts))
    assert seqs == seqs0
    t_pad, x = best_of(lambda: pad_sequences(seqs, maxlen=MAXLEN, padding="post", truncating="post"))
    t_pad0, x0 = best_of(lambda: naive_pad(seqs, MAXLEN))
    assert np.array_equal(x, x0)

    print(f"{N:,} sentences (UCI x {N / 3000:.1f}), vocabulary {tok.vocab_size:,}, maxlen {MAXLEN}\n")
    print(f"{'step':<22}{'textclass s':>12}{'per 10k s':>11}{'sent/s':>12}{'naive s':>10}{'speed-up':>10}")
    for step, t, t0 in (
        ("fit", t_fit, None),
        ("texts_to_sequences", t_seq, t_seq0),
        ("pad_sequences", t_pad, t_pad0),
    ):
        naive = f"{t0:10.3f}{t0 / t:9.1f}x" if t0 else f"{'-':>10}{'-':>10}"
        print(f"{step:<22}{t:12.3f}{t * 1e4 / N:11.4f}{N / t:12,.0f}{naive}")

    glove = DATA / "glove" / "glove.6B.50d.txt.gz"
    if glove.is_file():
        yelp = texts[:1000]  # the yelp file comes first
        from sklearn.model_selection import train_test_split

        train = train_test_split(yelp, test_size=0.25, random_state=1000)[0]
        index = Tokenizer(num_words=5000).fit(train).word_index
        t_glove, m = best_of(lambda: build_embedding_matrix(glove, index), repeat=2)
        print(f"\nGloVe 6B 50d (400k lines, gz): read for {len(index):,} words in {t_glove:.2f} s, "
              f"coverage {embedding_coverage(m):.4f}")
    else:
        print(f"\n{glove} not found: GloVe read time skipped")


if __name__ == "__main__":
    main()
