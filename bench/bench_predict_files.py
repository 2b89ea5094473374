"""`textclass predict` over a corpus of many Parquet files: in memory vs streamed vs Dask.

The corpus: sentences of UCI Sentiment and GoEmotions (46,410 real texts), each generated
sentence one of them followed by the first 0-6 words of another (so few repeat exactly), written
as Parquet files of ``--file-rows`` rows into a temporary folder. The model: bow-logreg trained on
the 3,000 UCI sentences. At each corpus size (``--sizes``, the smaller one the first files of
the larger), three sides run one after the other, each in a fresh child process:

- in memory: ``pd.read_parquet`` of every file, one ``predict_proba`` call on all texts, one
  Parquet file written (what a user writes without ``--input`` streaming);
- streamed: ``textclass predict RUN -i 'DIR/*.parquet' --output out.parquet`` (chunks of 2,048);
- dask: the same with ``--dask local -j JOBS --output out/`` (a LocalCluster of one-thread
  worker processes, Parquet part files).

"wall s" is the child's whole life: start-up, loading the model (10-30 s for a skops model: its
loader imports all of scikit-learn, and through it torch), reading, predicting, writing.
"sent/s" is rows / wall s; "work sent/s" leaves out start-up and the model load (in memory and
streamed: the tool's own clock from the first row read; dask: from the first part submitted, so
it still holds the workers' model loads). "peak RSS MB" is the largest sum of the resident
sets of the child and all its descendants (the Dask scheduler, nannies and workers), sampled
every 50 ms with psutil. All outputs are checked equal to the in-memory one.

    python bench/bench_predict_files.py                       # 0.5 M and 2 M sentences
    python bench/bench_predict_files.py --sizes 100000,400000 --jobs 2
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

IN_MEMORY = r"""
import sys, time, glob
import pandas as pd
from textclass.predict import load_predictor, predict_frame, write_predictions
run, pattern, out = sys.argv[1:]
clf = load_predictor(run)
start = time.perf_counter()
frame = pd.concat([pd.read_parquet(f, columns=["text"]) for f in sorted(glob.glob(pattern))], ignore_index=True)
write_predictions([predict_frame(clf, frame)], out)
print(f"WORK {len(frame) / (time.perf_counter() - start):.0f}")
"""


def corpus(n: int, seed: int = 0) -> list[str]:
    """``n`` sentences: a real one, then the first 0-6 words of another."""
    from textclass.data import load_dataset

    base = pd.concat([load_dataset("uci-sentiment").text, load_dataset("goemotions", split="train").text])
    base = base.astype(str).tolist()
    words = [t.split() for t in base]
    rng = np.random.default_rng(seed)
    first, second, k = rng.integers(len(base), size=n), rng.integers(len(base), size=n), rng.integers(0, 7, size=n)
    return [f"{base[a]} {' '.join(words[b][:c])}".rstrip() for a, b, c in zip(first, second, k, strict=True)]


def follow(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run a child; return its wall time, the peak summed RSS (MB) of it and its descendants, and
    its stdout + stderr."""
    import psutil

    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    proc, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        total = 0
        try:
            for p in [proc, *proc.children(recursive=True)]:
                total += p.memory_info().rss
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(0.05)
    wall = time.perf_counter() - start
    output = child.stdout.read()
    if child.returncode != 0:
        sys.exit(f"child failed ({child.returncode}): {' '.join(argv)}\n{output}")
    return wall, peak / 2**20, output


def work_rate(side: str, output: str) -> float:
    """The tool's own sentences/s after start-up (see the module docstring)."""
    if side == "in memory":
        return float(re.search(r"WORK (\d+)", output).group(1))
    rates = re.findall(r"in all, ([\d,]+)/s", output)
    return float(rates[-1].replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="500000,2000000", help="corpus sizes, comma-separated")
    parser.add_argument("--file-rows", type=int, default=100_000, help="rows per Parquet file")
    parser.add_argument("--jobs", type=int, default=2, help="Dask LocalCluster worker processes")
    parser.add_argument("--sides", default="in memory,streamed,dask")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    sides = args.sides.split(",")

    import textclass as tc
    from textclass.data import load_dataset

    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "jax")}
    textclass = [sys.executable, "-c", "import sys; from textclass.cli import main; sys.exit(main())"]
    with tempfile.TemporaryDirectory(prefix="bench-predict-files-") as tmp:
        tmp = Path(tmp)
        uci = load_dataset("uci-sentiment")
        tc.TextClassifier("bow-logreg").fit(uci.text, uci.label).save(tmp / "run" / "model")
        texts = corpus(sizes[-1])
        (tmp / "all").mkdir()
        for i, start in enumerate(range(0, len(texts), args.file_rows)):
            pd.DataFrame({"text": texts[start:start + args.file_rows]}).to_parquet(tmp / "all" / f"part-{i:04d}.parquet")
        del texts
        load_before = os.getloadavg()
        rows = []
        for n in sizes:
            folder = tmp / f"n{n}"
            folder.mkdir()
            for f in sorted((tmp / "all").iterdir())[: -(-n // args.file_rows)]:
                (folder / f.name).symlink_to(f)
            pattern = str(folder / "*.parquet")
            n_rows = sum(len(pd.read_parquet(f, columns=[])) for f in folder.iterdir())
            outputs = {}
            for side in sides:
                out = tmp / f"out-{n}-{side.replace(' ', '-')}"
                if side == "in memory":
                    argv = [sys.executable, "-c", IN_MEMORY, str(tmp / "run"), pattern, f"{out}.parquet"]
                elif side == "streamed":
                    argv = [*textclass, "predict", str(tmp / "run"), "-i", pattern, "--output", f"{out}.parquet"]
                else:
                    argv = [*textclass, "predict", str(tmp / "run"), "-i", pattern, "--dask", "local",
                            "-j", str(args.jobs), "--output", str(out)]
                wall, peak, output = follow(argv, env)
                outputs[side] = out if side == "dask" else Path(f"{out}.parquet")
                rows.append((n_rows, side, wall, n_rows / wall, work_rate(side, output), peak))
                print(f"  {n_rows:,} {side}: {wall:.1f} s, peak {peak:.0f} MB", file=sys.stderr, flush=True)
            reference = pd.read_parquet(outputs[sides[0]])
            for side in sides[1:]:
                got = pd.read_parquet(outputs[side])
                assert np.array_equal(got[["label", "p_0", "p_1"]].to_numpy(), reference[["label", "p_0", "p_1"]].to_numpy())
            for f in outputs.values():
                subprocess.run(["rm", "-rf", str(f)], check=True)
        load_after = os.getloadavg()

    print(f"\nbow-logreg, Parquet files of {args.file_rows:,} rows, dask: {args.jobs} workers; "
          f"load average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after, on {os.cpu_count()} cores\n")
    print("| sentences | side | wall s | sent/s | work sent/s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for n_rows, side, wall, rate, work, peak in rows:
        print(f"| {n_rows:,} | {side} | {wall:.1f} | {rate:,.0f} | {work:,.0f} | {peak:,.0f} |")


if __name__ == "__main__":
    main()
