"""Wall time of `textclass reproduce`, per experiment and in total, and whether worker processes help.

    python bench/bench_reproduce.py                 # the full run (both protocols, all eight)
    python bench/bench_reproduce.py --quick         # the --quick first look
    python bench/bench_reproduce.py --jobs-check    # experiment 7's honest folds with 1 vs 2 workers

Prints a table (experiment, rows, summed fit seconds, when its last row finished) and the total wall; writes the run's
report into a temporary folder unless -o is given. Run it on an otherwise idle machine: other
processes on the two cores inflate every figure.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "jax")


def run(quick: bool, jobs: int | None, only: str | None, out: str | None) -> None:
    from textclass.reproduce import Settings, reproduce

    settings = (Settings.quick if quick else Settings)(n_jobs=jobs)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = reproduce(out or tmp, only=only, settings=settings, progress=True)
        total = time.perf_counter() - start
    df = result.frame()
    print(f"\n{'quick' if quick else 'full'} reproduce, jobs={jobs or 'one per core'}")
    print(f"{'exp':>4} {'model':<14} {'rows':>4} {'sum fit s':>10} {'done at s':>10}")
    for exp, done in sorted(result.done_s.items()):
        part = df[df["experiment"] == exp]
        print(f"{exp:>4} {part['model'].iloc[0]:<14} {len(part):>4} {part['time_s'].sum():>10.1f} {done:>10.1f}")
    print(f"total wall {total:.1f} s (experiments share the workers: one starts while the last tasks of "
          f"the previous run)")


def jobs_check() -> None:
    """Experiment 7 (CNN) honest folds on yelp, in-process vs two worker processes."""
    from textclass.reproduce import Settings, reproduce

    for jobs in (1, 2):
        settings = Settings(n_jobs=jobs, search_sources=("yelp",))
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            reproduce(tmp, only="7", settings=settings)
            print(f"experiment 7, 10 folds + the tutorial fit, jobs={jobs}: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--only", default=None)
    parser.add_argument("-o", "--out", default=None)
    parser.add_argument("--jobs-check", action="store_true")
    args = parser.parse_args()
    if args.jobs_check:
        jobs_check()
    else:
        run(args.quick, args.jobs, args.only, args.out)
