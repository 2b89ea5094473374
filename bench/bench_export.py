"""ONNX export vs the original model: fidelity, throughput, latency, start-up and memory, one run.

1. Every exportable registry model, trained with the registry defaults (the tutorial's epochs)
   on the tutorial's yelp split (test_size 0.25, random_state 1000), saved and exported: the
   max |p_export - p_original| on the 250 test sentences (goal: <= 1e-5).
2. bow-logreg, nbsvm, cnn on the same 10,000 sentences (the 3000 UCI sentences repeated):
   predict_proba throughput (best of 3, interleaved, after a warm-up call) and single-text
   latency (median of 200 calls), export vs original.
3. A fresh Python process per path: wall time from spawn to its first prediction, and its
   resident memory (VmRSS after it, VmHWM the peak). Goals for the export: < 1 s and < 200 MB.

    python bench/bench_export.py            # about 10 minutes on an idle 2-core machine
    python bench/bench_export.py --quick    # 1 epoch per Keras model: a smoke run (~3 min)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

SEED = 1000
N_PREDICT = 10_000
SPEED_MODELS = ("bow-logreg", "nbsvm", "cnn")
LATENCY_CALLS = 200
STARTUP_RUNS = 3

CHILD = """
import sys, time
start = time.perf_counter()
path = sys.argv[2]
if sys.argv[1] == "export":
    from textclass.runtime import load
    clf = load(path)
else:
    from textclass.store import load_model
    clf = load_model(path)
clf.predict_proba(["The food was great"])
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(time.perf_counter() - start, int(status["VmRSS"].split()[0]), int(status["VmHWM"].split()[0]), flush=True)
"""


def best_interleaved(a, b, repeat: int = 3) -> tuple[float, float]:
    """Best wall time of ``a`` and of ``b`` over alternating runs, after one untimed call each."""
    a(), b()
    ta, tb = [], []
    for _ in range(repeat):
        for fn, times in ((a, ta), (b, tb)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return min(ta), min(tb)


def median_latency(fn, texts: list[str]) -> float:
    fn([texts[0]])
    times = []
    for text in texts[:LATENCY_CALLS]:
        start = time.perf_counter()
        fn([text])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def startup(kind: str, path: Path) -> tuple[float, float, float]:
    """Best-of-N (spawn -> first prediction wall s, VmRSS MB, VmHWM MB) of a fresh interpreter."""
    runs = []
    for _ in range(STARTUP_RUNS):
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", CHILD, kind, str(path)], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        line = child.stdout.readline()  # printed right after the first prediction
        wall = time.perf_counter() - start
        if child.wait() != 0 or not line:
            raise RuntimeError(f"the {kind} start-up probe failed on {path}")
        _, rss, hwm = line.split()
        runs.append((wall, int(rss) / 1024, int(hwm) / 1024))
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 epoch per Keras model (a smoke run)")
    parser.add_argument("--out", type=Path, default=None, help="keep the run and export directories here")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    from textclass import runtime
    from textclass.data import get_info, load_dataset, split_frame
    from textclass.estimator import TextClassifier
    from textclass.export import export
    from textclass.models import MODELS

    console = Console(width=130)
    root = args.out or Path(tempfile.mkdtemp(prefix="bench-export-"))
    df = load_dataset("uci-sentiment")
    train, test = split_frame(df[df["source"] == "yelp"], test_size=0.25, random_state=SEED)
    held_out = test["text"].tolist()
    glove = get_info("glove-6b-50d").is_cached()

    fidelity = Table(title=f"1. export vs original on the {len(held_out)} yelp test sentences "
                           f"(registry defaults{', --quick: 1 epoch' if args.quick else ''})")
    for col in ("model", "kind", "task", "train s", "export s", "export MB", "max |Δp|", "≤ 1e-5"):
        fidelity.add_column(col, justify="left" if col in ("model", "kind", "task") else "right")
    fitted = {}
    for name, spec in MODELS.items():
        if spec.kind not in ("keras", "sklearn"):
            continue
        if spec.name.startswith("glove") and not glove:
            fidelity.add_row(name, spec.kind, "-", "-", "-", "-", "no GloVe vectors", "-")
            continue
        params = {"epochs": 1} if args.quick and spec.kind == "keras" else {}
        start = time.perf_counter()
        clf = TextClassifier(name, random_state=SEED, **params).fit(train["text"], train["label"])
        trained = time.perf_counter() - start
        clf.save(root / name / "model")
        start = time.perf_counter()
        out = export(root / name, root / f"{name}-onnx")
        exported = time.perf_counter() - start
        diff = float(np.abs(runtime.load(out).predict_proba(held_out) - clf.predict_proba(held_out)).max())
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6
        fidelity.add_row(name, spec.kind, clf.task_, f"{trained:.1f}", f"{exported:.1f}", f"{size:.1f}",
                         f"{diff:.2e}", "yes" if diff <= 1e-5 else "NO")
        fitted[name] = clf
        console.print(f"  {name}: trained {trained:.1f}s, exported {exported:.1f}s, max |Δp| {diff:.2e}")
    console.print(fidelity)

    sentences = df["text"].tolist()
    texts = (sentences * (N_PREDICT // len(sentences) + 1))[:N_PREDICT]
    speed = Table(title=f"2. predict_proba on the same {N_PREDICT:,} sentences: throughput (best of 3) and "
                        f"single-text latency (median of {LATENCY_CALLS})")
    for col in ("model", "original sent/s", "export sent/s", "speed-up", "original ms/text", "export ms/text",
                "latency ratio", "max |Δp| on 10k"):
        speed.add_column(col, justify="left" if col == "model" else "right")
    for name in SPEED_MODELS:
        original, exported = fitted[name], runtime.load(root / f"{name}-onnx")
        t_orig, t_exp = best_interleaved(lambda: original.predict_proba(texts), lambda: exported.predict_proba(texts))
        l_orig = median_latency(original.predict_proba, sentences)
        l_exp = median_latency(exported.predict_proba, sentences)
        diff = float(np.abs(exported.predict_proba(texts) - original.predict_proba(texts)).max())
        speed.add_row(name, f"{N_PREDICT / t_orig:,.0f}", f"{N_PREDICT / t_exp:,.0f}", f"{t_orig / t_exp:.2f}x",
                      f"{l_orig * 1e3:.2f}", f"{l_exp * 1e3:.2f}", f"{l_orig / l_exp:.2f}x", f"{diff:.1e}")
    console.print(speed)

    start_table = Table(title=f"3. fresh process: spawn -> first prediction (best of {STARTUP_RUNS}) and memory")
    for col in ("model", "path", "start-up s", "RSS MB", "peak RSS MB", "goal"):
        start_table.add_column(col, justify="left" if col in ("model", "path", "goal") else "right")
    for name in SPEED_MODELS:
        for kind, path in (("original", root / name / "model"), ("export", root / f"{name}-onnx")):
            wall, rss, hwm = startup(kind, path)
            goal = ""
            if kind == "export":
                goal = "met" if wall < 1.0 and hwm < 200 else "missed (< 1 s, < 200 MB)"
            start_table.add_row(name, kind, f"{wall:.2f}", f"{rss:.0f}", f"{hwm:.0f}", goal)
    console.print(start_table)
    console.print(f"load average (1 min) before the run: {load_before:.2f}, after: {os.getloadavg()[0]:.2f} "
                  f"on {os.cpu_count()} cores; other work on the machine slows every figure")
    console.print(f"run and export directories: {root}")
    if args.out is None:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
