"""Compare registry models on any labelled text, honestly: cross-validated scores with intervals,
paired significance tests over the same folds, and a cross-domain (train on others) table.

A single held-out split of a few hundred sentences has a standard error of two to three points, so
most differences between models are noise. Everything here is repeated stratified k-fold CV
(shuffled k-fold for multi-label data, whose tag sets do not stratify):

- the interval is a Student t-interval over the J = k x repeats fold scores whose variance uses the
  Nadeau-Bengio correction ``(1/J + n_test/n_train) * s^2`` (folds share training data, so the
  plain ``s^2/J`` is too small);
- the paired test is the corrected resampled t-test (Nadeau & Bengio 2003; Bouckaert & Frank 2004)
  on the per-fold differences between the best model and each other one, over the same folds.

Folds run in parallel worker processes (joblib's loky backend); each fold's Keras model stops early
on a stratified validation split of its own training part, never on the test fold.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from textclass.errors import DataError, ParameterError, did_you_mean
from textclass.files import write_text_atomic
from textclass.models.pool import reusing_models

INTERVAL_NOTE = (
    "95% interval: Student t over the fold scores with the Nadeau-Bengio corrected variance "
    "(1/J + n_test/n_train)·s²"
)
TEST_NOTE = (
    "p: corrected resampled paired t-test (Nadeau & Bengio 2003) of the best model against each "
    "other over the same folds"
)
METRICS = ("accuracy", "f1_macro", "f1_micro")  # multi-label: accuracy is subset accuracy
HONEST_TRAINING = {"validation_split": 0.1, "early_stopping": True, "patience": 3}


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------
def t_interval(
    scores: Sequence[float], *, test_train_ratio: float = 0.0, confidence: float = 0.95
) -> tuple[float, float, float]:
    """(mean, low, high): a t-interval over fold scores.

    ``test_train_ratio`` = n_test / n_train applies the Nadeau-Bengio correction; 0 gives the
    plain (too narrow for CV) interval. With one score the interval is the point itself.
    """
    from scipy import stats

    x = np.asarray(scores, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, mean, mean
    var = (1.0 / len(x) + test_train_ratio) * x.var(ddof=1)
    half = float(stats.t.ppf(0.5 + confidence / 2, df=len(x) - 1) * math.sqrt(var))
    return mean, mean - half, mean + half


def corrected_ttest(
    a: Sequence[float], b: Sequence[float], *, test_train_ratio: float
) -> tuple[float, float]:
    """(t, two-sided p) of the corrected resampled paired t-test on per-fold scores ``a`` vs ``b``.

    ``a[j]`` and ``b[j]`` must come from the same fold j. With ``test_train_ratio=0`` it is the
    ordinary paired t-test (``scipy.stats.ttest_rel``).
    """
    from scipy import stats

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(d) < 2:
        raise ParameterError("a paired test needs at least two folds")
    var = (1.0 / len(d) + test_train_ratio) * d.var(ddof=1)
    mean = float(d.mean())
    if var == 0:
        return (0.0, 1.0) if mean == 0 else (math.copysign(math.inf, mean), 0.0)
    t = mean / math.sqrt(var)
    return float(t), float(2 * stats.t.sf(abs(t), df=len(d) - 1))


def wilson_interval(correct: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (accuracy on one held-out set of n items)."""
    from scipy import stats

    if n == 0:
        return math.nan, math.nan
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


# --------------------------------------------------------------------------------------------
# Hyperparameters from the command line
# --------------------------------------------------------------------------------------------
def params_for(model: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The hyperparameters of ``params`` that apply to ``model``: unscoped ones the model accepts
    and ``model.key`` ones; unknown names raise ParameterError."""
    from textclass.models import get_model

    spec = get_model(model)
    out = {}
    for key, value in params.items():
        scope, dot, name = key.rpartition(".")
        if dot and scope != model:
            continue
        if not dot and name not in spec.defaults and name not in _TRAINING_OPTIONS:
            continue
        if name not in spec.defaults and name not in _TRAINING_OPTIONS:
            raise ParameterError(
                f"model {model!r} has no hyperparameter {name!r}{did_you_mean(name, spec.defaults)}; "
                f"allowed: {', '.join(sorted(spec.defaults))}"
            )
        out[name] = value
    return out


_TRAINING_OPTIONS = {"validation_split", "early_stopping", "patience", "class_weight", "learning_rate",
                     "optimizer", "threshold"}


def check_params(models: Sequence[str], params: Mapping[str, Any]) -> None:
    """Refuse, before any training, a parameter that no chosen model accepts or whose value a
    model refuses."""
    from textclass.constraints import check_model_params
    from textclass.models import get_model

    specs = [get_model(m) for m in models]
    accepted = set(_TRAINING_OPTIONS).union(*(s.defaults for s in specs))
    for key in params:
        scope, dot, name = key.rpartition(".")
        if dot:
            if scope not in models:
                raise ParameterError(f"-p {key}: {scope!r} is not one of the compared models {list(models)}")
            params_for(scope, {key: params[key]})
        elif name not in accepted:
            raise ParameterError(
                f"-p {key}: none of {', '.join(models)} has a hyperparameter {name!r}"
                f"{did_you_mean(name, accepted)}"
            )
    for model in models:
        check_model_params(model, params_for(model, params))


def make_estimator(model: str, params: Mapping[str, Any] | None = None, *, seed: int = 0,
                   early_stopping: bool = True) -> Any:
    """A ``TextClassifier`` for ``model``; Keras and PyTorch models stop early on an inner stratified
    validation split (10% of the training part, patience 3) unless the caller says otherwise."""
    from textclass.estimator import TextClassifier
    from textclass.models import get_model

    spec = get_model(model)
    kwargs = dict(HONEST_TRAINING) if (spec.kind != "sklearn" and early_stopping) else {}
    kwargs.update(params_for(model, params or {}))
    return TextClassifier(model, random_state=seed, **kwargs)


# --------------------------------------------------------------------------------------------
# Running fits in parallel
# --------------------------------------------------------------------------------------------
@dataclass
class Task:
    """One unit of work for a worker: ``fn(*args)`` returns a JSON-safe dict."""

    key: Any
    fn: Callable[..., dict[str, Any]]
    args: tuple
    weight: float = 1.0  # relative cost, for the progress bar


def fit_and_score(estimator: Any, X_train: Sequence[str], y_train: Sequence[Any],
                  X_test: Sequence[str], y_test: Sequence[Any]) -> dict[str, Any]:
    """Fit a clone of ``estimator`` on one fold and score it on the fold's test part."""
    from sklearn.base import clone

    from textclass.evaluate import classification_metrics, tag_binarizer

    est = clone(estimator)
    start = time.perf_counter()
    est.fit(list(X_train), list(y_train))
    fit_s = time.perf_counter() - start
    pred, truth = list(est.predict(list(X_test))), list(y_test)
    if est.task_ == "multilabel":  # tag tuples -> 0/1 rows; a tag this fold never trained on counts as missed
        binarizer, _ = tag_binarizer(est.classes_.tolist(), truth)
        truth, pred = binarizer.transform(truth), binarizer.transform(pred)
    m = classification_metrics(truth, pred)
    history = getattr(est, "history_", {}) or {}
    return {
        "accuracy": m["accuracy"],
        "f1_macro": m["f1_macro"],
        "f1_micro": m.get("f1_micro", m["accuracy"]),  # of single labels, micro-F1 is the accuracy
        "n_train": len(X_train),
        "n_test": len(X_test),
        "fit_s": fit_s,
        "epochs": len(history.get("loss", [])) or None,
    }


def default_jobs() -> int:
    """Worker processes: one per core (2 on the reference machine)."""
    import os

    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def run_tasks(tasks: Sequence[Task], *, n_jobs: int | None = None,
              on_done: Callable[[Task, dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run tasks, in worker processes when ``n_jobs > 1``; ``on_done`` sees each as it finishes.

    Returns the results in task order. KeyboardInterrupt propagates after the workers stop; the
    results already passed to ``on_done`` are the caller's to keep.
    """
    n_jobs = default_jobs() if n_jobs is None else n_jobs
    results: list[dict[str, Any] | None] = [None] * len(tasks)
    if n_jobs <= 1 or len(tasks) <= 1:
        with reusing_models():
            for i, task in enumerate(tasks):
                results[i] = task.fn(*task.args)
                if on_done:
                    on_done(task, results[i])
        return results  # type: ignore[return-value]
    from joblib import Parallel, delayed

    def indexed(i: int, fn: Callable[..., dict[str, Any]], args: tuple) -> tuple[int, dict[str, Any]]:
        one_thread()
        _keep_worker()
        try:
            with reusing_models():
                return i, fn(*args)
        finally:
            _release_keras()

    # batch_size=1: joblib's automatic batching groups quick tasks with the slow ones after them,
    # which holds back finished results and leaves a core idle at the end
    parallel = Parallel(n_jobs=min(n_jobs, len(tasks)), backend="loky", return_as="generator_unordered",
                        pre_dispatch="n_jobs", batch_size=1)
    for i, result in parallel(delayed(indexed)(i, t.fn, t.args) for i, t in enumerate(tasks)):
        results[i] = result
        if on_done:
            on_done(tasks[i], result)
    return results  # type: ignore[return-value]


def one_thread() -> None:
    """Make a worker process compute on one thread: n workers each running XLA's and BLAS's
    per-core thread pools would oversubscribe the n cores. Takes effect for XLA when called
    before the worker's first JAX import (its first task), which is where ``run_tasks`` calls it."""
    import os

    from threadpoolctl import threadpool_limits

    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    threadpool_limits(1)


WORKER_GROWTH = 4 << 30  # bytes a worker may grow by before loky replaces it (its default: 300 MB)


def _keep_worker() -> None:
    """Let a worker keep its compiled programs and pooled models (``models.pool``): JAX's caches
    grow a worker by 0.6-0.9 GB over experiment 8, and past loky's 300 MB "leak" threshold loky
    replaces it, which costs a JAX import and every compile again. joblib has no option for it;
    the limit is loky's module constant, read by the worker loop at each check."""
    from joblib.externals.loky import process_executor

    process_executor._MAX_MEMORY_LEAK_SIZE = max(process_executor._MAX_MEMORY_LEAK_SIZE, WORKER_GROWTH)


def _release_keras() -> None:
    """Drop a worker's Keras graphs between tasks: every fit builds a new model, and the memory
    would otherwise grow until loky recycles the worker (which then re-imports JAX). JAX's own
    compile caches are kept: clearing them makes every later fit recompile each eager op (5x slower)."""
    import sys

    if "keras" in sys.modules:
        import gc

        import keras

        keras.backend.clear_session()
        gc.collect()


@contextmanager
def progress_bar(enabled: bool, description: str, total: float) -> Iterator[Callable[[float, str | None], None]]:
    """A rich progress bar on stderr (or nothing); yields ``advance(amount, description=None)``.
    Where stderr is no terminal (a log, a pipe, CI), each finished piece of work prints a line."""
    if not enabled:
        yield lambda amount, description=None: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task(description, total=total)

        def advance(amount: float, desc: str | None = None) -> None:
            progress.update(task, advance=amount, **({"description": desc} if desc else {}))
            if amount and not console.is_terminal:  # no live bar in a log or a pipe: a line per piece
                t = progress.tasks[0]
                console.print(f"{t.description}: {t.percentage:.0f}% done, {t.elapsed:.0f} s",
                              markup=False, highlight=False, soft_wrap=True)

        yield advance


# --------------------------------------------------------------------------------------------
# Cross-validation, summary and cross-domain
# --------------------------------------------------------------------------------------------
def _groups(df: pd.DataFrame, by: str | None) -> list[tuple[str, pd.DataFrame]]:
    if by is None:
        return [("all", df)]
    if by not in df.columns:
        cols = [c for c in df.columns if c not in ("text", "label")]
        raise DataError(
            f"--by {by!r}: no such column{did_you_mean(by, cols)}; columns: {', '.join(map(str, df.columns))}"
        )
    return [(str(g), part) for g, part in df.groupby(by, sort=False, observed=True)]


def fold_tasks(df: pd.DataFrame, models: Sequence[str], *, by: str | None = None, cv: int = 10,
               repeats: int = 1, params: Mapping[str, Any] | None = None, seed: int = 0,
               estimators: Mapping[str, Any] | None = None) -> list[Task]:
    """One task per (group, model, fold); every model sees the same folds of its group.

    ``estimators`` overrides the estimator of a model name (e.g. a plain scikit-learn pipeline).
    """
    from textclass.data import cv_splits

    tasks = []
    for group, part in _groups(df, by):
        texts = part["text"].to_numpy(dtype=object)
        labels = part["label"].to_numpy(dtype=object)
        splits = list(cv_splits(labels.tolist(), n_splits=cv, n_repeats=repeats, random_state=seed))
        for model in models:
            est = (estimators or {}).get(model) or make_estimator(model, params, seed=seed)
            for fold, (tr, te) in enumerate(splits):
                tasks.append(Task((group, model, fold), fit_and_score,
                                  (est, texts[tr], labels[tr], texts[te], labels[te])))
    return tasks


def cross_validate(df: pd.DataFrame, models: Sequence[str], *, by: str | None = None, cv: int = 10,
                   repeats: int = 1, params: Mapping[str, Any] | None = None, seed: int = 0,
                   n_jobs: int | None = None, progress: bool = False,
                   estimators: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Per-fold scores: columns group, model, fold, accuracy, f1_macro, f1_micro, n_train, n_test, fit_s, epochs."""
    tasks = fold_tasks(df, models, by=by, cv=cv, repeats=repeats, params=params, seed=seed,
                       estimators=estimators)
    with progress_bar(progress, f"cross-validating {len(models)} model(s)", len(tasks)) as advance:
        results = run_tasks(tasks, n_jobs=n_jobs, on_done=lambda t, r: advance(1, None))
    rows = [{"group": t.key[0], "model": t.key[1], "fold": t.key[2], **r} for t, r in zip(tasks, results)]
    return pd.DataFrame(rows)


def summarize(folds: pd.DataFrame, *, metric: str = "accuracy", confidence: float = 0.95) -> pd.DataFrame:
    """Per (group, model): mean and interval of each of ``METRICS``, and the corrected paired
    test of the group's best model (by ``metric``) against each other model."""
    if metric not in METRICS:
        raise ParameterError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    rows = []
    for group, part in folds.groupby("group", sort=False):
        ratio = float((part["n_test"] / part["n_train"]).mean())
        by_model = {m: p.sort_values("fold") for m, p in part.groupby("model", sort=False)}
        best = max(by_model, key=lambda m: by_model[m][metric].mean())
        for model, p in by_model.items():
            row: dict[str, Any] = {"group": group, "model": model, "folds": len(p)}
            for name in METRICS:
                mean, lo, hi = t_interval(p[name], test_train_ratio=ratio, confidence=confidence)
                row.update({name: mean, f"{name}_lo": max(lo, 0.0), f"{name}_hi": min(hi, 1.0)})  # scores are in [0, 1]
            if model == best:
                row.update(best=True, t=math.nan, p=math.nan)
            else:
                t, pv = corrected_ttest(by_model[best][metric].to_numpy(), p[metric].to_numpy(),
                                        test_train_ratio=ratio)
                row.update(best=False, t=t, p=pv)
            row["fit_s"] = float(p["fit_s"].mean())
            epochs = p["epochs"].dropna()
            row["epochs"] = float(epochs.mean()) if len(epochs) else math.nan
            rows.append(row)
    return pd.DataFrame(rows)


def holdout_task(estimator: Any, X_train, y_train, X_test, y_test) -> dict[str, Any]:
    """Fit on one frame, score on another, with a Wilson interval on the accuracy."""
    result = fit_and_score(estimator, X_train, y_train, X_test, y_test)
    lo, hi = wilson_interval(round(result["accuracy"] * result["n_test"]), result["n_test"])
    return {**result, "accuracy_lo": lo, "accuracy_hi": hi}


def cross_domain_table(df: pd.DataFrame, models: Sequence[str], *, by: str, params: Mapping[str, Any] | None = None,
                 seed: int = 0, n_jobs: int | None = None, progress: bool = False,
                 estimators: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Train on every other group, test on this one (e.g. yelp+amazon -> imdb): one row per
    (group, model) with accuracy (Wilson 95% interval) and macro-F1."""
    groups = _groups(df, by)
    if len(groups) < 2:
        raise DataError(f"--cross-domain needs at least two groups in column {by!r}, found {len(groups)}")
    tasks = []
    for group, part in groups:
        rest = df.loc[df.index.difference(part.index)]
        for model in models:
            est = (estimators or {}).get(model) or make_estimator(model, params, seed=seed)
            tasks.append(Task((group, model), holdout_task, (
                est, rest["text"].to_numpy(dtype=object), rest["label"].to_numpy(dtype=object),
                part["text"].to_numpy(dtype=object), part["label"].to_numpy(dtype=object))))
    with progress_bar(progress, "cross-domain", len(tasks)) as advance:
        results = run_tasks(tasks, n_jobs=n_jobs, on_done=lambda t, r: advance(1, None))
    rows = []
    for t, r in zip(tasks, results):
        trained_on = "+".join(g for g, _ in groups if g != t.key[0])
        rows.append({"group": t.key[0], "trained_on": trained_on, "model": t.key[1], **r})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# The public entry point
# --------------------------------------------------------------------------------------------
@dataclass
class Comparison:
    """What ``compare`` found: per-fold scores, the summary table and (optionally) cross-domain."""

    folds: pd.DataFrame
    summary: pd.DataFrame
    cross_domain: pd.DataFrame | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def notes(self) -> list[str]:
        s = self.settings
        return [
            f"{s.get('cv')}-fold {'shuffled' if s.get('task') == 'multilabel' else 'stratified'} CV x "
            f"{s.get('repeats')} repeat(s), seed {s.get('seed')}; "
            "Keras models stop early on 10% of each training fold (never the test fold)",
            INTERVAL_NOTE,
            TEST_NOTE + f" (on {s.get('metric')}); * marks p < 0.05",
        ]

    def _scores(self) -> list[tuple[str, str]]:
        """(column title, metric) of the CV table: multi-label data adds micro-F1, its headline."""
        if self.settings.get("task") == "multilabel":
            return [("subset accuracy", "accuracy"), ("macro-F1", "f1_macro"), ("micro-F1", "f1_micro")]
        return [("accuracy", "accuracy"), ("macro-F1", "f1_macro")]

    def _cells(self, r: Any) -> list[str]:
        return [_ci(getattr(r, m), getattr(r, f"{m}_lo"), getattr(r, f"{m}_hi")) for _, m in self._scores()]

    def to_markdown(self) -> str:
        lines = ["# textclass compare", "", f"data: {self.settings.get('data')}", ""]
        titles = [f"{title} (95% CI)" for title, _ in self._scores()]
        lines += ["| " + " | ".join(["group", "model", *titles, "p vs best", "fit s/fold"]) + " |",
                  "|" + "---|" * (len(titles) + 4)]
        for r in self.summary.itertuples():
            lines.append(" | ".join([f"| {r.group}", f"{r.model}{' (best)' if r.best else ''}", *self._cells(r),
                                     _p(r.p), f"{r.fit_s:.2f} |"]))
        lines += [""] + [f"- {n}" for n in self.notes()]
        if self.cross_domain is not None:
            lines += ["", "## Cross-domain: train on the other groups, test on this one", "",
                      "| test group | trained on | model | accuracy (95% Wilson) | macro-F1 | in-domain CV |",
                      "|---|---|---|---|---|---|"]
            for r in self.cross_domain.itertuples():
                lines.append(f"| {r.group} | {r.trained_on} | {r.model} | "
                             f"{_ci(r.accuracy, r.accuracy_lo, r.accuracy_hi)} | {r.f1_macro:.3f} | {r.in_domain_cv:.3f} |")
        return "\n".join(lines) + "\n"

    def render(self, console: Any) -> None:
        """Print the tables with rich."""
        from rich.table import Table

        table = Table(title="cross-validated comparison")
        for col in ("group", "model", *(f"{title} (95% CI)" for title, _ in self._scores()), "p vs best", "fit s/fold"):
            table.add_column(col, justify="left" if col in ("group", "model") else "right")
        for r in self.summary.itertuples():
            table.add_row(str(r.group), f"[bold]{r.model}[/] (best)" if r.best else r.model,
                          *self._cells(r), _p(r.p), f"{r.fit_s:.2f}")
        console.print(table)
        for n in self.notes():
            console.print(f"  {n}", highlight=False)
        if self.cross_domain is not None:
            cd = Table(title="cross-domain: train on the other groups, test on this one")
            for col in ("test group", "trained on", "model", "accuracy (95% Wilson)", "macro-F1", "in-domain CV"):
                cd.add_column(col)
            for r in self.cross_domain.itertuples():
                cd.add_row(str(r.group), r.trained_on, r.model, _ci(r.accuracy, r.accuracy_lo, r.accuracy_hi),
                           f"{r.f1_macro:.3f}", f"{r.in_domain_cv:.3f}")
            console.print(cd)

    def write(self, out_dir: str | Path) -> Path:
        """compare.md, folds.csv, summary.csv (+ cross_domain.csv) and accuracy.png into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "compare.md", self.to_markdown())
        write_text_atomic(out / "folds.csv", self.folds.to_csv(index=False))
        write_text_atomic(out / "summary.csv", self.summary.to_csv(index=False))
        if self.cross_domain is not None:
            write_text_atomic(out / "cross_domain.csv", self.cross_domain.to_csv(index=False))
        from textclass.plots import plot_intervals

        plot_intervals(self.summary.rename(columns={"accuracy": "mean", "accuracy_lo": "lo",
                                                    "accuracy_hi": "hi"}), out / "accuracy.png",
                       title="accuracy, 95% corrected t-interval over CV folds")
        return out


def _ci(mean: float, lo: float, hi: float) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    return f"{mean:.3f} [{lo:.3f}, {hi:.3f}]"


def _p(p: float) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "—"
    return f"{p:.3f}{' *' if p < 0.05 else ''}"


def compare(data: str | pd.DataFrame, models: Sequence[str], *, cv: int = 10, repeats: int = 1,
            by: str | None = None, cross_domain: bool = False, params: Mapping[str, Any] | None = None,
            metric: str = "accuracy", seed: int = 0, n_jobs: int | None = None, progress: bool = False,
            **read_kwargs: Any) -> Comparison:
    """Cross-validate ``models`` on ``data`` (a built-in name, a path or a frame with text/label).

    ``by`` names a column to compare within (e.g. "source"); ``cross_domain=True`` adds the
    train-on-the-other-groups table. Bad model names, parameters or columns raise before training.
    """
    from textclass.models import get_model

    models = list(dict.fromkeys(m.strip() for m in models if m.strip()))
    if not models:
        raise ParameterError("no models given; e.g. -m bow-logreg,cnn (see `textclass models`)")
    for m in models:
        get_model(m)
    params = dict(params or {})
    check_params(models, params)
    if metric not in METRICS:
        raise ParameterError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if cv < 2:
        raise ParameterError(f"--cv must be at least 2, got {cv}")
    if repeats < 1:
        raise ParameterError(f"--repeats must be at least 1, got {repeats}")
    if isinstance(data, pd.DataFrame):
        df, name = data, "data frame"
    else:
        from textclass.data import load_data

        df, name = load_data(data, **read_kwargs), str(data)
    if by is None and read_kwargs.get("group_col") and "group" in df.columns:
        by = "group"
    if cross_domain and by is None:
        raise ParameterError("--cross-domain needs groups: give --by COLUMN (or --group-col)")
    _groups(df, by)  # a missing column fails here, before any training
    folds = cross_validate(df, models, by=by, cv=cv, repeats=repeats, params=params, seed=seed,
                           n_jobs=n_jobs, progress=progress)
    summary = summarize(folds, metric=metric)
    cd = None
    if cross_domain:
        cd = cross_domain_table(df, models, by=by, params=params, seed=seed, n_jobs=n_jobs,
                                progress=progress)
        inside = summary.set_index(["group", "model"])["accuracy"]
        cd["in_domain_cv"] = [inside.get((g, m)) for g, m in zip(cd["group"], cd["model"])]
    from textclass.labels import infer_task

    settings = {"data": name, "models": models, "cv": cv, "repeats": repeats, "by": by, "seed": seed,
                "metric": metric, "params": params, "task": infer_task(df["label"])}
    return Comparison(folds, summary, cd, settings)
