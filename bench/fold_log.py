"""Shared by the UCI fold experiments (bench_wiseft.py, bench_stopping.py): the same stratified
10 folds per source as bench_encoders.py, one JSON line per (source, fold) appended to a log, so
a rerun resumes and several processes can split the folds."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

SEED = 0  # bench_encoders.py's folds


def add_fold_arguments(ap: argparse.ArgumentParser, sources: Sequence[str]) -> None:
    ap.add_argument("--folds", default=",".join(map(str, range(10))), help="comma-separated fold numbers (0-9)")
    ap.add_argument("--sources", default=",".join(sources))
    ap.add_argument("--log", type=Path, action="append", required=True,
                    help="JSON lines, one per fold (appended; a rerun skips what is there); repeatable for reports")
    ap.add_argument("--report-only", action="store_true")


def read_log(paths: Sequence[Path]) -> list[dict]:
    return [json.loads(line) for f in paths if f.exists() for line in f.read_text().splitlines()]


def run_folds(args: argparse.Namespace, records: list[dict], run_fold: Callable, describe: Callable[[dict], str]) -> None:
    """``run_fold(X_train, y_train, X_test, y_test) -> dict`` on every requested fold not yet in
    ``records``; each result is appended to ``records`` and to the first ``--log``."""
    from textclass.data import cv_splits, load_dataset

    done = {(r["source"], r["fold"]) for r in records}
    df = load_dataset("uci-sentiment")
    with args.log[0].open("a") as log:
        for fold in map(int, args.folds.split(",")):
            for source in args.sources.split(","):
                if (source, fold) in done:
                    continue
                part = df[df["source"] == source].reset_index(drop=True)
                X, y = part["text"].to_numpy(dtype=object), part["label"].to_numpy()
                tr, te = list(cv_splits(y.tolist(), n_splits=10, random_state=SEED))[fold]
                r = {"source": source, "fold": fold, **run_fold(X[tr], y[tr], X[te], y[te])}
                records.append(r)
                log.write(json.dumps(r) + "\n")
                log.flush()
                print(f"{source} fold {fold}: {describe(r)}", flush=True)
