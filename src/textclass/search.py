"""Hyperparameter search over any registry model: resumable, parallel, honest.

Each trial samples a configuration from the model's search space (``textclass.space``) and is
scored by stratified k-fold cross-validation on the training data only; the held-out test set is
touched once, by the best configuration refit on all the training data.

- Engine: Optuna. ``grid`` runs the whole grid; ``random`` on a space of lists samples without
  replacement (like scikit-learn's ``RandomizedSearchCV``: a 5-trial search of a 9-point grid
  never runs a configuration twice), otherwise uniformly; ``tpe`` is Optuna's Bayesian sampler.
- Pruning: after each fold the running CV mean is reported; Optuna's median pruner stops a trial
  whose running mean falls below the median of earlier trials at the same fold (all trials share
  the same folds, so the comparison is fair). Pruned trials count towards the trial budget.
- Storage: any SQLAlchemy URL (default in the CLI: ``sqlite:///<out>/study.db``). A search that
  was interrupted (Ctrl-C, kill -9) continues with ``resume=True``: trials that were running are
  marked failed and their configurations queued again, and the search ends with exactly
  ``n_trials`` finished (complete or pruned) trials.
- Parallel: ``jobs=N`` starts N worker *processes* that share the study through its storage; each
  trial is one task. Not Optuna's own ``n_jobs`` threads: two Keras fits in one process share
  global RNG state, so threaded trials are not reproducible (measured in bench/bench_search.py:
  the same configurations scored differently), while processes reproduce ``jobs=1`` exactly. ``dask=ADDRESS`` submits the same
  tasks to a Dask cluster (start its workers with ``--nthreads 1``); the storage must then be
  reachable from every worker (a shared SQLite file on one machine, PostgreSQL/MySQL across
  machines). This needs nothing beyond Optuna and Dask, unlike optuna-integration's DaskStorage
  (not installed; it proxies every storage call through the scheduler), and it is the same code
  path as ``jobs``.
- Nested CV (``outer_cv=K``): the whole search-and-refit is repeated on K outer training folds and
  scored on the outer test folds, an estimate of what the procedure (not one lucky configuration)
  achieves on unseen data.
"""

from __future__ import annotations

import json
import math
import os
import socket
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from textclass.compare import one_thread
from textclass.errors import ParameterError, TextclassError, did_you_mean
from textclass.files import atomic_open, write_text_atomic
from textclass.models.pool import reusing_models
from textclass.space import SearchSpace, model_space

SAMPLERS = ("grid", "random", "tpe")
DEFAULT_STUDY = "textclass-search"

#: Consecutive failed trials (exceptions while training) after which a worker gives up.
MAX_CONSECUTIVE_FAILURES = 3


@dataclass(frozen=True)
class SearchConfig:
    """Everything a worker needs to run trials; identical across workers and resumed runs."""

    space: SearchSpace
    sampler: str = "tpe"
    cv: int = 4
    scoring: str | None = None
    random_state: int = 0
    prune: bool = True
    n_trials: int = 20

    @property
    def model(self) -> str:
        return self.space.model

    def fingerprint(self) -> dict[str, Any]:
        """What must not change when a study is resumed (the trial budget may)."""
        return {
            "space": self.space.to_dict(),
            "sampler": self.sampler,
            "cv": self.cv,
            "scoring": self.scoring,
            "random_state": self.random_state,
            "prune": self.prune,
        }


@dataclass
class SearchResult:
    """The outcome of ``search``.

    Attributes
    ----------
    best_params : the best configuration's searched values (fixed values are in ``fixed_params``).
    best_score, best_std : its cross-validated mean and standard deviation over folds.
    trials : one row per trial: trial, state, cv_mean, cv_std, folds, time_s, then the params.
    best_estimator : the best configuration refit on all the data given (``refit=True``).
    nested_scores : with ``outer_cv``, the outer-fold scores of the whole search-and-refit.
    """

    model: str
    best_params: dict[str, Any]
    fixed_params: dict[str, Any]
    best_score: float
    best_std: float
    best_trial: int
    trials: Any  # pandas.DataFrame
    study_name: str
    storage: str | None
    elapsed: float
    best_estimator: Any = None
    nested_scores: list[float] | None = None
    study: Any = field(default=None, repr=False)

    @property
    def nested_mean(self) -> float | None:
        return float(np.mean(self.nested_scores)) if self.nested_scores else None

    @property
    def nested_std(self) -> float | None:
        return float(np.std(self.nested_scores)) if self.nested_scores else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (no estimator, no trials table)."""
        return {
            "model": self.model,
            "best_trial": self.best_trial,
            "best_params": self.best_params,
            "fixed_params": self.fixed_params,
            "cv_mean": self.best_score,
            "cv_std": self.best_std,
            "n_trials": int(len(self.trials)),
            "states": {str(k): int(v) for k, v in self.trials["state"].value_counts().items()},
            "nested_scores": self.nested_scores,
            "nested_mean": self.nested_mean,
            "nested_std": self.nested_std,
            "study_name": self.study_name,
            "storage": self.storage,
            "elapsed_s": round(self.elapsed, 2),
        }


def search(
    X: Sequence[str],
    y: Sequence[Any],
    model: str = "cnn",
    *,
    space: SearchSpace | Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    sampler: str = "tpe",
    n_trials: int | None = 20,
    cv: int = 4,
    outer_cv: int | None = None,
    scoring: str | None = None,
    random_state: int = 0,
    prune: bool = True,
    storage: str | None = None,
    study_name: str = DEFAULT_STUDY,
    resume: bool = False,
    jobs: int = 1,
    dask: Any = None,
    refit: bool = True,
    progress: bool = False,
) -> SearchResult:
    """Search ``model``'s hyperparameters by cross-validation on ``X, y``.

    Parameters
    ----------
    X, y : training texts and labels (keep a test set aside: score ``best_estimator`` on it).
    model : registry name (see ``textclass models``).
    space : a ``SearchSpace``, or entries overriding the model's default space, e.g.
        ``{"num_filters": [32, 64, 128], "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}}``;
        a single value fixes a parameter.
    params : fixed hyperparameters and training arguments, e.g. ``{"epochs": 20, "batch_size": 10}``.
    sampler : ``"grid"``, ``"random"`` or ``"tpe"``.
    n_trials : finished trials wanted (complete + pruned); for ``grid``, at most (and by default,
        with ``None``) the grid size.
    cv : folds of the stratified k-fold CV scoring each trial.
    outer_cv : if set, also run the whole search on each of this many outer folds (nested CV).
    scoring : a scikit-learn scorer name (``"f1_macro"``...); default: the estimator's accuracy.
    storage : SQLAlchemy URL of the study (``"sqlite:///runs/s/study.db"``); ``None``: in memory
        (for ``jobs > 1``: a temporary SQLite file).
    resume : continue the study ``study_name`` found in ``storage``; without it an existing study
        is refused rather than silently mixed with.
    jobs : worker processes on this machine (ignored with ``dask``: the cluster's workers run the trials).
    dask : a Dask scheduler address or ``distributed.Client``.

    Examples
    --------
    >>> res = search(texts, labels, "cnn", sampler="random", n_trials=5, cv=4,
    ...              params={"epochs": 20, "batch_size": 10})  # doctest: +SKIP
    >>> res.best_params, res.best_score  # doctest: +SKIP
    """
    if sampler not in SAMPLERS:
        raise ParameterError(f"unknown sampler {sampler!r}{did_you_mean(sampler, SAMPLERS)}; choose from {', '.join(SAMPLERS)}")
    if not isinstance(space, SearchSpace):
        space = model_space(model, overrides=space, fixed=params)
    elif params:
        raise ParameterError("pass fixed params inside the SearchSpace (its .fixed), not beside it")
    if not space.params:
        raise ParameterError(f"nothing to search for model {space.model!r}: the space fixes every parameter; add -s name=a,b,c")
    if sampler == "grid":
        n_trials = space.grid_size() if n_trials is None else min(n_trials, space.grid_size())
    elif sampler == "random" and _finite(space):
        n_trials = min(n_trials or 20, space.grid_size())
    for name, value, low in (("n_trials", n_trials, 1), ("cv", cv, 2), ("jobs", jobs, 1)):
        if not isinstance(value, int) or value < low:
            raise ParameterError(f"{name} must be an integer >= {low}, got {value!r}")
    if outer_cv is not None and (not isinstance(outer_cv, int) or outer_cv < 2):
        raise ParameterError(f"outer_cv must be an integer >= 2, got {outer_cv!r}")
    if scoring is not None:
        from sklearn.metrics import get_scorer_names

        if scoring not in get_scorer_names():
            raise ParameterError(f"unknown scoring {scoring!r}{did_you_mean(scoring, get_scorer_names())}")
    if dask is not None and storage is None:
        raise ParameterError(
            "a Dask search needs a storage every worker can reach: --storage sqlite:////shared/path/study.db "
            "(one machine) or an RDB URL such as postgresql://user@host/db"
        )

    X_arr, y_arr = _as_arrays(X, y)
    config = SearchConfig(space, sampler, cv, scoring, random_state, prune, n_trials)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="textclass-search-") as tmp:
        # Worker processes share the study through storage: without one, a temporary SQLite file.
        url = f"sqlite:///{Path(tmp) / 'study.db'}" if storage is None and jobs > 1 else storage
        nested = None
        if outer_cv:
            nested = _nested(config, X_arr, y_arr, outer_cv, url, study_name, resume, jobs, dask, progress)
        study = _run_study(config, X_arr, y_arr, url, study_name, resume, jobs, dask, progress, "search")
        if url is not None and storage is None:  # the temporary file goes with this block
            import optuna

            memory = optuna.storages.InMemoryStorage()
            optuna.copy_study(from_study_name=study_name, from_storage=study._storage, to_storage=memory)
            study = optuna.load_study(study_name=study_name, storage=memory)
        result = _result(config, study, study_name, storage, time.perf_counter() - started)
    result.nested_scores = nested
    if refit:
        result.best_estimator = _estimator(space, result.best_params, random_state).fit(X_arr, y_arr)
    return result


def search_run(
    data: Any,
    model: str,
    out_dir: str | Path,
    *,
    test_size: float = 0.25,
    seed: int = 1000,
    stratify: bool = False,
    storage: str | None = None,
    **search_kwargs: Any,
) -> tuple[SearchResult, dict[str, Any]]:
    """Split ``data`` (columns ``text``, ``label``), search on the training part, refit the best
    configuration, score it on the held-out part and write a run directory::

        out_dir/
          study.db          the Optuna study (unless --storage points elsewhere); --resume reads it
          results.csv       one row per trial: params, CV mean and std, time, state
          search.json       best params, CV mean ± std, nested CV estimate, test score, timing
          model/            the refit best model (a normal textclass model directory)
          metrics.json      held-out metrics of that model, as `textclass train` writes them
          history.png       optimisation history: each trial's CV mean and the running best
          importance.png    parameter importance (fANOVA), when there are enough trials

    Returns the search result and the held-out metrics.
    """
    from textclass.data import split_frame
    from textclass.evaluate import evaluate_model

    out_dir = Path(out_dir)
    if storage is not None:
        _storage(storage)  # a bad URL or an unwritable database is refused before anything is created
    out_dir.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{(out_dir / 'study.db').resolve()}"
    search_kwargs.setdefault("random_state", seed)
    train, test = split_frame(data, test_size=test_size, random_state=seed, stratify=stratify)
    result = search(train["text"], train["label"], model, storage=storage, refit=True, **search_kwargs)

    metrics = evaluate_model(result.best_estimator, test["text"], test["label"])
    metrics.update(model=result.model, params=_json_safe({**result.fixed_params, **result.best_params}),
                   n_train=len(train), seed=seed)
    scoring = search_kwargs.get("scoring")
    if scoring is not None:  # the score the search maximised, on the held-out texts too
        value = _score(result.best_estimator, *_as_arrays(test["text"], test["label"]), scoring)
        metrics["test_score"] = {"scoring": scoring, "value": value}
    result.best_estimator.save(out_dir / "model")
    write_text_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2))
    write_text_atomic(out_dir / "results.csv", result.trials.to_csv(index=False))
    summary = {**result.to_dict(), "test_accuracy": metrics["accuracy"], "n_train": len(train), "n_test": len(test)}
    if "test_score" in metrics:
        summary["test_score"] = metrics["test_score"]
    plot_history(result.trials, out_dir / "history.png", title=f"{result.model}: optimisation history")
    summary["importance"] = plot_importance(result.study, out_dir / "importance.png")
    write_text_atomic(out_dir / "search.json", json.dumps(_json_safe(summary), indent=2))
    return result, metrics


# --------------------------------------------------------------------------- studies and workers


def _run_study(config: SearchConfig, X, y, url, name, resume, jobs, dask, progress, label):
    """Create or resume the study ``name`` and run trials until ``config.n_trials`` are finished."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _storage(url)
    exists = url is not None and name in optuna.study.get_all_study_names(storage)
    if exists and not resume:
        raise TextclassError(
            f"study {name!r} already exists in {url}; pass --resume to continue it, or use another "
            "--out / --study-name"
        )
    if exists:
        study = optuna.load_study(study_name=name, storage=storage)
        stored = study.user_attrs.get("textclass")
        if stored is not None and stored != _json_safe(config.fingerprint()):
            diff = sorted(k for k in stored if stored.get(k) != _json_safe(config.fingerprint()).get(k))
            raise ParameterError(
                f"study {name!r} was started with different settings ({', '.join(diff)}); resume it with "
                "the same model, space, sampler, --cv and --seed, or start a new one"
            )
        _requeue_interrupted(study)
    else:
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
        study.set_user_attr("textclass", _json_safe(config.fingerprint()))

    remaining = config.n_trials - _n_finished(study)
    if remaining <= 0:
        return study
    n_before = len(study.trials)
    with _Progress(progress, label, config.n_trials, study) as bar:
        if dask is None and jobs == 1:
            _optimize(study, config, X, y, remaining, _seed(config, n_before, 0), bar.update)
        else:
            _parallel(config, X, y, url, name, remaining, jobs, dask, n_before, bar)
    return optuna.load_study(study_name=name, storage=storage) if url else study


def _parallel(config, X, y, url, name, remaining, jobs, dask, n_before, bar) -> None:
    """Run ``remaining`` trials as one task each on worker processes (local or Dask) that share the
    study's storage. One task per trial balances the load (trials differ in cost) and keeps the
    count exact; a local worker process lives on from task to task, so it imports Keras once."""
    if dask is None:
        import multiprocessing
        from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

        # spawn, not fork: JAX and SQLite connections do not survive a fork.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(jobs, remaining), mp_context=context, initializer=one_thread) as pool:
            futures = [
                pool.submit(_worker, config, X, y, url, name, 1, _seed(config, n_before, i)) for i in range(remaining)
            ]
            while True:
                done, pending = wait(futures, timeout=1.0, return_when=FIRST_EXCEPTION)
                bar.refresh()
                if not pending or any(f.exception() for f in done):
                    break
            for f in pending:
                f.cancel()
            for f in futures:
                if not f.cancelled():
                    f.result()
        return
    from distributed import Client

    client = dask if isinstance(dask, Client) else Client(dask)
    try:
        X_f, y_f = client.scatter([X, y], broadcast=True)
        futures = [
            client.submit(_worker, config, X_f, y_f, url, name, 1, _seed(config, n_before, i), pure=False)
            for i in range(remaining)
        ]
        while not all(f.done() for f in futures) and not any(f.status == "error" for f in futures):
            time.sleep(1.0)
            bar.refresh()
        bar.refresh()
        client.gather(futures)
    finally:
        if client is not dask:
            client.close()


def _worker(config: SearchConfig, X, y, url: str, name: str, n_trials: int, seed: int) -> int:
    """A worker process: load the shared study and run ``n_trials`` finished trials."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=_storage(url))
    _optimize(study, config, X, y, n_trials, seed)
    return n_trials


def _optimize(study, config: SearchConfig, X, y, n_trials: int, seed: int, on_trial: Callable | None = None) -> None:
    """Run trials until ``n_trials`` of them finish (complete or pruned). A trial that raises is
    recorded as failed with its error and replaced; several failures in a row stop the search."""
    import optuna

    study.sampler = _sampler(config, seed)
    study.pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=max(1, config.cv // 2)) if config.prune else optuna.pruners.NopPruner()
    )
    folds = _folds(y, config)
    objective = _objective(config, X, y, folds)
    finished, failures, last = 0, 0, []
    while finished < n_trials:
        with reusing_models():  # the trials' estimators are dropped after scoring: their models are reused
            study.optimize(objective, n_trials=1, catch=(Exception,), callbacks=[lambda s, t: last.append(t)])
        trial = last[-1]
        if on_trial is not None:
            on_trial()
        if trial.state == optuna.trial.TrialState.FAIL:
            failures += 1
            if failures >= MAX_CONSECUTIVE_FAILURES:
                raise TextclassError(
                    f"{failures} trials in a row failed; last (trial {trial.number}, "
                    f"{trial.params}): {trial.user_attrs.get('error', 'unknown error')}"
                )
        else:
            finished, failures = finished + 1, 0


def _objective(config: SearchConfig, X, y, folds) -> Callable:
    import optuna

    def objective(trial: optuna.Trial) -> float:
        params = config.space.suggest(trial)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        scores: list[float] = []
        started = time.perf_counter()
        try:
            for k, (train_idx, test_idx) in enumerate(folds):
                clf = _estimator(config.space, params, config.random_state).fit(X[train_idx], y[train_idx])
                scores.append(_score(clf, X[test_idx], y[test_idx], config.scoring))
                trial.set_user_attr("fold_scores", scores)
                trial.report(float(np.mean(scores)), k)
                if k < len(folds) - 1 and trial.should_prune():
                    raise optuna.TrialPruned(f"running CV mean {np.mean(scores):.4f} after {k + 1} folds")
        except optuna.TrialPruned:
            raise
        except Exception as e:
            trial.set_user_attr("error", f"{type(e).__name__}: {e}")
            raise
        finally:
            trial.set_user_attr("fit_time_s", round(time.perf_counter() - started, 3))
        trial.set_user_attr("cv_std", float(np.std(scores)))
        return float(np.mean(scores))

    return objective


def _requeue_interrupted(study) -> None:
    """Trials left RUNNING by a killed process will never finish: mark them failed and queue
    their configurations again, so the resumed search evaluates what the killed one was doing."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(trial._trial_id, "error", "interrupted (resumed later)")
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        if trial.params:
            study.enqueue_trial(trial.params)


def _nested(config, X, y, outer_cv, url, name, resume, jobs, dask, progress) -> list[float]:
    """Score the whole search-and-refit procedure on ``outer_cv`` outer folds."""
    from textclass.data import cv_splits

    scores = []
    for i, (train_idx, test_idx) in enumerate(cv_splits(y, n_splits=outer_cv, random_state=config.random_state + 1)):
        # Each outer fold has its own study; in-memory runs keep none, stored ones can resume.
        study = _run_study(
            config, X[train_idx], y[train_idx], url, f"{name}/outer-{i}", resume, jobs, dask, progress,
            f"outer fold {i + 1}/{outer_cv}",
        )
        if "outer_score" not in study.user_attrs:
            best = config.space.decode(study.best_trial.params)
            clf = _estimator(config.space, best, config.random_state).fit(X[train_idx], y[train_idx])
            study.set_user_attr("outer_score", _score(clf, X[test_idx], y[test_idx], config.scoring))
        scores.append(study.user_attrs["outer_score"])
    return scores


# --------------------------------------------------------------------------- helpers


def _estimator(space: SearchSpace, params: Mapping[str, Any], random_state: int):
    from textclass.estimator import TextClassifier

    return TextClassifier(space.model, random_state=random_state, **{**space.fixed, **params})


def _score(clf: Any, X: np.ndarray, y: np.ndarray, scoring: str | None) -> float:
    """The estimator's accuracy, or a scikit-learn scorer; multi-label predictions (tuples of
    tags) are compared as indicator matrices, the form scikit-learn's metrics expect."""
    if scoring is None:
        return float(clf.score(X, y))
    from sklearn.metrics import get_scorer

    scorer = get_scorer(scoring)
    if getattr(clf, "task_", None) != "multilabel":
        return float(scorer(clf, X, y))
    from textclass.evaluate import tag_binarizer

    binarizer, _ = tag_binarizer(list(clf.classes_), y)  # tags the training folds never showed count as missed
    return float(scorer(_indicator_predictions(clf, binarizer), X, binarizer.transform(y)))


def _indicator_predictions(clf: Any, binarizer: Any) -> Any:
    """Wrap a multi-label classifier so it predicts an indicator matrix, for scikit-learn scorers."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    class IndicatorPredictions(ClassifierMixin, BaseEstimator):
        def __init__(self, clf: Any = None, binarizer: Any = None) -> None:
            self.clf, self.binarizer = clf, binarizer
            self.classes_ = np.arange(len(binarizer.classes_))

        def predict(self, X):
            return self.binarizer.transform(self.clf.predict(X))

        def predict_proba(self, X):
            return self.clf.predict_proba(X)

    return IndicatorPredictions(clf, binarizer)


def _sampler(config: SearchConfig, seed: int):
    import optuna

    if config.sampler == "grid" or (config.sampler == "random" and _finite(config.space)):
        # Every worker must shuffle the grid the same way: trial number n runs grid point n.
        return optuna.samplers.GridSampler(config.space.grid(), seed=config.random_state)
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    startup = min(10, max(3, config.n_trials // 4))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


def _seed(config: SearchConfig, n_before: int, worker: int) -> int:
    """A fresh seed per worker and per resumption, so no two runs replay the same samples."""
    return config.random_state + 10_007 * n_before + 101 * worker


def _finite(space: SearchSpace) -> bool:
    from textclass.space import Choice

    return all(isinstance(d, Choice) for d in space.params.values())


def _folds(y, config: SearchConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    from textclass.data import cv_splits

    return list(cv_splits(y, n_splits=config.cv, random_state=config.random_state))


def _storage(url: str | None):
    import optuna

    if url is None:
        return optuna.storages.InMemoryStorage()
    import sqlalchemy.exc

    engine_kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except sqlalchemy.exc.NoSuchModuleError:
        scheme = url.partition(":")[0]
        raise ParameterError(f"--storage {url}: unknown database scheme {scheme!r}; expected a SQLAlchemy URL such "
                             "as sqlite:///runs/study.db or postgresql://user@host/db") from None
    except sqlalchemy.exc.ArgumentError as e:
        raise ParameterError(f"--storage {url}: not a database URL ({e}); expected e.g. sqlite:///runs/study.db") from None
    except sqlalchemy.exc.SQLAlchemyError as e:
        reason = " ".join(str(getattr(e, "orig", None) or e).split())
        hint = "; check that its folder exists and is writable" if url.startswith("sqlite") else ""
        raise ParameterError(f"--storage {url}: cannot open the database ({reason}){hint}") from None


def _n_finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _as_arrays(X, y) -> tuple[np.ndarray, np.ndarray]:
    X_arr = np.empty(len(X), dtype=object)
    X_arr[:] = [str(x) for x in X]
    y_list = list(y)
    if len(y_list) != len(X_arr):
        raise ParameterError(f"X has {len(X_arr)} texts but y has {len(y_list)} labels")
    if y_list and isinstance(y_list[0], (list, tuple, set, frozenset)):
        y_arr = np.empty(len(y_list), dtype=object)
        y_arr[:] = [tuple(v) for v in y_list]
    else:
        y_arr = np.asarray(y_list)
    return X_arr, y_arr


def _result(config: SearchConfig, study, name: str, url: str | None, elapsed: float) -> SearchResult:
    trials = trials_frame(study, config.space)
    complete = trials[trials["state"] == "COMPLETE"]
    if complete.empty:
        raise TextclassError(f"study {name!r} has no completed trial to pick a best configuration from")
    best = study.best_trial
    return SearchResult(
        model=config.model,
        best_params=config.space.decode(best.params),
        fixed_params=dict(config.space.fixed),
        best_score=float(best.value),
        best_std=float(best.user_attrs.get("cv_std", float("nan"))),
        best_trial=best.number,
        trials=trials,
        study_name=name,
        storage=url,
        elapsed=elapsed,
        study=study,
    )


def trials_frame(study, space: SearchSpace):
    """One row per trial: trial, state, cv_mean, cv_std, folds, time_s, worker, then each parameter.

    cv_mean is over the folds run: all of them for complete trials, the first few for pruned ones.
    """
    import pandas as pd

    rows = []
    for t in study.get_trials(deepcopy=False):
        folds = t.user_attrs.get("fold_scores", []) if t.state.name in ("COMPLETE", "PRUNED") else []
        rows.append({
            "trial": t.number,
            "state": t.state.name,
            "cv_mean": float(np.mean(folds)) if folds else float("nan"),
            "cv_std": float(np.std(folds)) if folds else float("nan"),
            "folds": len(folds),
            "time_s": t.user_attrs.get("fit_time_s", float("nan")),
            "worker": t.user_attrs.get("worker", ""),
            **space.decode(t.params),
        })
    columns = ["trial", "state", "cv_mean", "cv_std", "folds", "time_s", "worker", *space.params]
    return pd.DataFrame(rows, columns=columns)


class _Progress:
    """A rich progress bar over finished trials with the current best, read from the study."""

    def __init__(self, enabled: bool, label: str, total: int, study) -> None:
        self.enabled, self.label, self.total, self.study = enabled, label, total, study
        self._progress = self._task = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.fields[best]}"), console=Console(stderr=True), transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(self.label, total=self.total, best="")
            self.refresh()
        return self

    def update(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        if self._progress is None:
            return
        from optuna.trial import TrialState

        trials = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
        best = max(complete, key=lambda t: t.value, default=None)
        text = f"best {best.value:.4f} (trial {best.number})" if best else ""
        self._progress.update(self._task, completed=len(trials), best=text)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self.refresh()
            self._progress.__exit__(*exc)


# --------------------------------------------------------------------------- output


def results_table(result: SearchResult, *, title: str | None = None):
    """A rich table of the trials: params, CV mean ± std, time, state; the best one starred."""
    from rich.table import Table

    table = Table(title=title or f"{result.model}: {len(result.trials)} trials")
    for column in ("trial", "params", "CV mean ± std", "time", "state"):
        table.add_column(column, justify="left" if column in ("params", "state") else "right")
    names = list(result.trials.columns[7:])
    for row in result.trials.to_dict("records"):
        params = " ".join(f"{n}={_fmt(row[n])}" for n in names)
        score = "" if math.isnan(row["cv_mean"]) else f"{row['cv_mean']:.4f} ± {row['cv_std']:.4f}"
        if row["state"] == "PRUNED":
            score += f" ({row['folds']} folds)"
        star = "★ " if row["trial"] == result.best_trial else ""
        table.add_row(f"{star}{row['trial']}", params, score, f"{row['time_s']:.1f}s", row["state"].lower())
    return table


def plot_history(trials, path: str | Path, *, title: str = "optimisation history") -> None:
    """Each finished trial's CV mean (pruned ones hollow) and the running best."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = trials[trials["state"].isin(["COMPLETE", "PRUNED"])].sort_values("trial")
    complete = done[done["state"] == "COMPLETE"]
    pruned = done[done["state"] == "PRUNED"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.errorbar(complete["trial"], complete["cv_mean"], yerr=complete["cv_std"], fmt="o", capsize=3, label="trial (CV mean ± std)")
    if not pruned.empty:
        ax.plot(pruned["trial"], pruned["cv_mean"], "o", mfc="none", color="grey", label="pruned (partial CV mean)")
    best = complete.set_index("trial")["cv_mean"].cummax()
    if not best.empty:  # carry the best to the last trial
        xs, ys = [*best.index, done["trial"].max()], [*best.values, best.values[-1]]
        ax.step(xs, ys, where="post", color="C3", label="best so far")
    ax.set(xlabel="trial", ylabel="CV score", title=title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    with atomic_open(path, binary=True) as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)


def plot_importance(study, path: str | Path) -> str:
    """Parameter importance (Optuna's fANOVA) as a bar chart; returns what was done or why not."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    varied = {n for n in study.best_trial.params if len({repr(t.params.get(n)) for t in complete}) > 1}
    if len(varied) < 2 or len(complete) < 3:
        return f"skipped: needs >= 2 varied parameters and >= 3 complete trials (have {len(varied)} and {len(complete)})"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            importance = optuna.importance.get_param_importances(study)
        except (ValueError, RuntimeError) as e:
            return f"skipped: {e}"
    names = list(importance)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(names) + 1.5))
    ax.barh(names, [importance[n] for n in names], color="C0")
    ax.set(xlabel="importance (fANOVA, share of CV-score variance)", title="parameter importance")
    fig.tight_layout()
    with atomic_open(path, binary=True) as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return "written"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def load_where(
    data: str | Path, *, text_col: str | None = None, label_col: str | None = None, where: str | None = None,
    label_sep: str | None = None,
):
    """Load ``data`` (built-in name or file) and keep the rows where ``COL=VALUE``, e.g.
    ``source=yelp`` (the tutorial searched each source on its own). For a file, COL is read as the
    group column."""
    from textclass.data import DATASETS, load_data

    if where is None:
        return load_data(data, text_col=text_col, label_col=label_col, label_sep=label_sep)
    column, sep, value = where.partition("=")
    column, value = column.strip(), value.strip()
    if not sep or not column:
        raise ParameterError(f"--where {where!r}: expected COLUMN=VALUE, e.g. --where source=yelp")
    if isinstance(data, str) and data in DATASETS:
        frame = load_data(data)
    else:
        frame = load_data(data, text_col=text_col, label_col=label_col, group_col=column, label_sep=label_sep)
        frame = frame.rename(columns={"group": column})
    if column not in frame.columns:
        raise ParameterError(
            f"--where: no column {column!r} in {data}{did_you_mean(column, frame.columns)}; "
            f"columns: {', '.join(map(str, frame.columns))}"
        )
    keep = frame[column].astype(str) == value
    if not keep.any():
        values = sorted(frame[column].astype(str).unique())
        shown = ", ".join(values[:20]) + (" ..." if len(values) > 20 else "")
        raise ParameterError(f"--where {where!r}: no rows with {column} = {value!r}{did_you_mean(value, values)}; values: {shown}")
    return frame[keep]
