"""textclass.search and textclass.space: samplers, nested CV, resume after kill -9, parallel and
Dask workers, and bad search spaces refused before any training."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import real_dataset

from textclass import search as search_mod
from textclass.cli import main
from textclass.errors import ParameterError
from textclass.search import search
from textclass.space import Choice, Range, load_space_file, model_space, parse_assignments


@pytest.fixture(scope="module")
def yelp():
    df = real_dataset("uci-sentiment")
    return df[df["source"] == "yelp"].reset_index(drop=True)


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if anything is fitted: bad input must be refused before training."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was built although the search space was invalid")

    monkeypatch.setattr(search_mod, "_estimator", refuse)


def _finished(study_url: str, name: str = "textclass-search") -> list:
    import optuna

    study = optuna.load_study(study_name=name, storage=study_url)
    return [t for t in study.get_trials() if t.state.name in ("COMPLETE", "PRUNED")]


# --------------------------------------------------------------------------- spaces


def test_cli_space_syntax_parses_lists_ranges_and_fixed_values():
    entries = parse_assignments(
        ["num_filters=32,64,128", "lr=1e-4..1e-2:log", "kernel_size=3..7:int", "embedding_dim=50", "padding=pre,post"]
    )
    assert entries["num_filters"] == [32, 64, 128]
    assert entries["lr"] == {"low": 1e-4, "high": 1e-2, "log": True, "int": False}
    assert entries["kernel_size"]["int"] is True
    space = model_space("cnn", overrides=entries, fixed={"epochs": 2})
    assert space.params["num_filters"] == Choice((32, 64, 128))
    assert space.params["learning_rate"] == Range(1e-4, 1e-2, log=True)  # alias lr -> learning_rate
    assert space.params["kernel_size"] == Range(3, 7, int=True)
    assert space.fixed["embedding_dim"] == 50 and space.fixed["epochs"] == 2


def test_space_files_yaml_and_toml_give_the_same_space(tmp_path):
    (tmp_path / "s.yaml").write_text("num_filters: [16, 32]\nlearning_rate: {low: 1e-4, high: 1e-2, log: true}\n")
    (tmp_path / "s.toml").write_text("num_filters = [16, 32]\nlearning_rate = { low = 1e-4, high = 1e-2, log = true }\n")
    yaml_space = model_space("cnn", overrides=load_space_file(tmp_path / "s.yaml"))
    toml_space = model_space("cnn", overrides=load_space_file(tmp_path / "s.toml"))
    assert yaml_space == toml_space
    assert yaml_space.params["learning_rate"] == Range(1e-4, 1e-2, log=True)


def test_every_registry_model_has_a_valid_default_space():
    from textclass.models import available_models

    for spec in available_models():
        space = model_space(spec.name)
        assert space.params, f"{spec.name} has nothing to search"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("num_filter=32,64", "unknown hyperparameter 'num_filter' for model 'cnn' (did you mean 'num_filters'?); allowed: "),
        ("num_filters=a,b", "'num_filters': value 'a' is not an integer"),
        ("num_filters=0.5,1", "'num_filters': value 0.5 is not an integer"),
        ("kernel_size=7..3", "empty range"),
        ("learning_rate=0..1e-2:log", "log range needs low > 0"),
        ("num_filters=-8,8", "must be > 0"),
        ("padding=1..3", "numeric range"),
        ("lr=fast", "'learning_rate': value 'fast' is not a number"),
    ],
)
def test_bad_space_is_refused_before_training(yelp, no_training, entry, message):
    with pytest.raises(ParameterError) as err:
        search(yelp["text"], yelp["label"], "cnn", space=parse_assignments([entry]), n_trials=2)
    assert message in str(err.value)
    if "unknown" in message:
        assert "num_filters" in str(err.value) and "learning_rate" in str(err.value)  # the allowed names


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-s", "kernel_sizes=3,5"], "unknown hyperparameter 'kernel_sizes'"),
        (["-s", "kernel_size=3.5..7"], "'kernel_size': expected whole numbers"),
        (["-s", "learning_rate=1e-2..1e-4:log"], "empty range"),
        (["-p", "kernel_size=3", "-s", "kernel_size=3,5"], "both fixed"),
        (["--sampler", "bayes"], "unknown sampler 'bayes'"),
        (["--sampler", "grid", "-s", "learning_rate=1e-4..1e-2"], "grid sampler needs a list"),
    ],
)
def test_cli_refuses_bad_space_with_one_line_and_exit_2(tmp_path, capsys, no_training, args, message):
    rc = main(["search", "uci-sentiment", "-m", "cnn", "-o", str(tmp_path / "run"), *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert message in err and "\n" not in err and "Traceback" not in err


# --------------------------------------------------------------------------- samplers


@pytest.mark.parametrize("sampler", ["grid", "random", "tpe"])
def test_each_sampler_runs_exactly_n_trials_on_a_tiny_model(yelp, sampler):
    space = {"C": [0.1, 1.0, 10.0]} if sampler == "grid" else {"C": {"low": 0.01, "high": 100.0, "log": True}}
    res = search(yelp["text"], yelp["label"], "bow-logreg", space=space, sampler=sampler, n_trials=3, cv=3,
                 random_state=1, refit=False)
    assert len(res.trials) == 3 and set(res.trials["state"]) <= {"COMPLETE", "PRUNED"}
    complete = res.trials[res.trials["state"] == "COMPLETE"]
    assert res.best_score == pytest.approx(complete["cv_mean"].max())
    assert 0.6 < res.best_score < 1.0
    if sampler == "grid":
        assert sorted(res.trials["C"]) == [0.1, 1.0, 10.0]  # the whole grid, each point once
    again = search(yelp["text"], yelp["label"], "bow-logreg", space=space, sampler=sampler, n_trials=3, cv=3,
                   random_state=1, refit=False)
    assert list(again.trials["C"]) == list(res.trials["C"])  # same seed, same configurations


def test_random_search_on_lists_never_repeats_a_configuration(yelp):
    res = search(yelp["text"], yelp["label"], "bow-logreg", space={"C": [0.1, 0.3, 1.0, 3.0, 10.0]},
                 sampler="random", n_trials=5, cv=2, prune=False, refit=False)
    assert sorted(res.trials["C"]) == [0.1, 0.3, 1.0, 3.0, 10.0]


def test_pruning_stops_hopeless_trials_after_part_of_the_folds(yelp):
    res = search(yelp["text"], yelp["label"], "bow-logreg", space={"C": [1.0, 3.0, 10.0, 1e-4, 2e-4, 3e-4]},
                 sampler="grid", n_trials=6, cv=4, refit=False)
    pruned = res.trials[res.trials["state"] == "PRUNED"]
    assert not pruned.empty and (pruned["folds"] < 4).all()
    assert res.best_params["C"] >= 1.0  # tiny C (a near-constant model) never wins


def test_multilabel_search_with_a_scikit_learn_scorer():
    df = real_dataset("goemotions", split="dev").iloc[:400]
    res = search(df["text"], df["label"], "bow-logreg", sampler="random", n_trials=2, cv=2, scoring="f1_micro")
    assert (res.trials["state"] == "COMPLETE").all() and 0.0 < res.best_score < 1.0
    assert isinstance(res.best_estimator.predict(["I love this"])[0], tuple)


def test_search_weighs_a_learned_threshold_against_fixed_ones():
    from test_threshold import weak_tags  # rare tags whose probabilities seldom pass 0.5

    space = model_space("bow-logreg", overrides=parse_assignments(["threshold=0.5,auto", "C=1.0"]))
    assert space.params["threshold"] == Choice((0.5, "auto"))
    X, y = weak_tags(300, seed=0)
    res = search(X, y, "bow-logreg", space={"threshold": [0.5, "auto"], "C": [1.0]}, sampler="grid", cv=3,
                 scoring="f1_micro")
    scores = dict(zip(res.trials["threshold"], res.trials["cv_mean"]))
    assert scores["auto"] > scores[0.5] and res.best_params == {"threshold": "auto"}
    assert res.best_estimator.threshold == "auto" and res.best_estimator.threshold_ < 0.5
    with pytest.raises(ParameterError, match="'threshold': value 'high' is not a number or 'auto'"):
        model_space("bow-logreg", overrides={"threshold": [0.5, "high"]})


def test_cli_search_reports_the_searched_score_on_the_test_texts(tmp_path, capsys):
    from test_threshold import weak_tags

    texts, tags = weak_tags(300, seed=4)
    (tmp_path / "tags.jsonl").write_text("".join(json.dumps({"text": t, "label": list(g)}) + "\n"
                                                 for t, g in zip(texts, tags)))
    out = tmp_path / "run"
    rc = main(["search", str(tmp_path / "tags.jsonl"), "-m", "bow-logreg", "-s", "threshold=0.5,auto", "-s", "C=1.0",
               "--sampler", "grid", "--cv", "3", "--scoring", "f1_micro", "-o", str(out)])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    summary = json.loads((out / "search.json").read_text())
    assert summary["best_params"] == {"threshold": "auto"}
    assert metrics["test_score"] == summary["test_score"] == {"scoring": "f1_micro", "value": metrics["f1_micro"]}
    assert f"f1_micro {metrics['f1_micro']:.4f} (n=75)" in capsys.readouterr().out


def test_tiny_cnn_search_refits_the_best_model(yelp):
    small = yelp.iloc[:200]
    res = search(small["text"], small["label"], "cnn", space={"kernel_size": [3, 5]}, sampler="grid", cv=2,
                 params={"embedding_dim": 8, "num_filters": 4, "epochs": 1, "batch_size": 32}, prune=False)
    assert len(res.trials) == 2 and res.best_params["kernel_size"] in (3, 5)
    assert res.best_estimator.get_params()["kernel_size"] == res.best_params["kernel_size"]
    assert res.best_estimator.get_params()["num_filters"] == 4
    assert len(res.best_estimator.predict(["great food", "awful"])) == 2


def test_nested_cv_scores_the_whole_procedure_per_outer_fold(yelp, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    res = search(yelp["text"], yelp["label"], "bow-logreg", sampler="tpe", n_trials=2, cv=2, outer_cv=3,
                 storage=url, refit=False)
    assert len(res.nested_scores) == 3 and all(0.5 < s < 1.0 for s in res.nested_scores)
    assert res.nested_mean == pytest.approx(np.mean(res.nested_scores))
    # each outer fold ran its own search, on its own study, with the requested budget
    for i in range(3):
        assert len(_finished(url, f"textclass-search/outer-{i}")) == 2


# --------------------------------------------------------------------------- storage, resume


def test_existing_study_is_not_mixed_into_without_resume(yelp, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    kwargs = dict(model="bow-logreg", sampler="random", cv=2, storage=url, refit=False)
    search(yelp["text"], yelp["label"], n_trials=2, **kwargs)
    with pytest.raises(Exception, match="already exists.*--resume"):
        search(yelp["text"], yelp["label"], n_trials=3, **kwargs)
    with pytest.raises(ParameterError, match="different settings"):
        search(yelp["text"], yelp["label"], n_trials=3, resume=True, **{**kwargs, "cv": 3})
    res = search(yelp["text"], yelp["label"], n_trials=3, resume=True, **kwargs)
    assert len(res.trials) == 3


def _killed_in_fresh_process(args: list[str], kill_at: int) -> int:
    """``kill9.run_killed`` forked from a new interpreter: this one may hold JAX's threads, and a
    fork of a multithreaded process can deadlock."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from kill9 import run_killed; "
            "print(run_killed(sys.argv[3:], int(sys.argv[2]))[0])")
    out = subprocess.run([sys.executable, "-c", code, os.path.dirname(__file__), str(kill_at), *args],
                         capture_output=True, text=True, check=True, timeout=180).stdout
    return int(out.split()[-1])


def test_resume_after_kill_9_ends_with_exactly_n_trials_and_keeps_earlier_scores(tmp_path):
    pytest.importorskip("optuna")
    real_dataset("uci-sentiment")
    out = tmp_path / "run"
    url = f"sqlite:///{out / 'study.db'}"
    args = ["search", "uci-sentiment", "--where", "source=yelp", "-m", "bow-logreg", "--sampler", "random",
            "--trials", "10", "--cv", "3", "-o", str(out), "--no-prune"]
    # SIGKILL at the 18th event (run folder and study set-up, then 3 fold fits a trial): after trial 3,
    # whatever the machine's speed (a timed kill let a fast machine finish all 10)
    status = _killed_in_fresh_process(args, kill_at=18)
    before = {t.number: (t.value, t.params) for t in _finished(url)}
    assert status == -9 and 3 <= len(before) < 10, "the search must have been killed part-way"

    assert main([*args, "--resume"]) == 0
    after = {t.number: (t.value, t.params) for t in _finished(url)}
    assert len(after) == 10
    assert all(after[n] == before[n] for n in before)  # finished trials kept, scores unchanged
    table = json.loads((out / "search.json").read_text())
    assert table["n_trials"] >= 10 and (out / "model" / "manifest.json").exists()


# --------------------------------------------------------------------------- parallel


def test_jobs_2_runs_trials_in_two_worker_processes(yelp, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    res = search(yelp["text"], yelp["label"], "bow-logreg", sampler="tpe", n_trials=4, cv=2, jobs=2,
                 storage=url, refit=False)
    assert len(res.trials) == 4 and len(_finished(url)) == 4
    workers = set(res.trials["worker"])
    assert len(workers) == 2 and f":{os.getpid()}" not in " ".join(workers)


def test_dask_local_cluster_runs_the_trials(yelp, tmp_path):
    distributed = pytest.importorskip("distributed")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        res = search(yelp["text"], yelp["label"], "bow-logreg", sampler="random", n_trials=4, cv=2,
                     storage=url, dask=cluster.scheduler_address, refit=False)
        with distributed.Client(cluster) as client:
            worker_pids = set(client.run(os.getpid).values())
    assert len(_finished(url)) == 4
    pids = {int(w.rsplit(":", 1)[1]) for w in res.trials["worker"]}
    assert pids <= worker_pids and len(pids) == 2


def test_dask_without_shared_storage_is_refused(yelp, no_training):
    with pytest.raises(ParameterError, match="storage every worker can reach"):
        search(yelp["text"], yelp["label"], "bow-logreg", dask="tcp://127.0.0.1:1", n_trials=2)


# --------------------------------------------------------------------------- CLI run directory


def test_cli_search_writes_a_run_directory(tmp_path, capsys):
    from textclass.store import load_model

    out = tmp_path / "run"
    rc = main(["search", "uci-sentiment", "--where", "source=yelp", "-m", "bow-logreg", "--sampler", "tpe",
               "--trials", "4", "--cv", "3", "-s", "C=0.1..100:log",
               "-o", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    for name in ("study.db", "results.csv", "search.json", "metrics.json", "history.png", "model"):
        assert (out / name).exists(), name
    summary = json.loads((out / "search.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert summary["n_train"] == 750 and metrics["n"] == 250
    assert summary["test_accuracy"] == metrics["accuracy"] and 0.6 < metrics["accuracy"] <= 1.0
    clf = load_model(out / "model")
    assert clf.get_params()["C"] == pytest.approx(summary["best_params"]["C"])
    assert "CV mean ± std" in printed and "held-out test accuracy" in printed
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 5 and rows[0].startswith("trial,state,cv_mean,cv_std")
