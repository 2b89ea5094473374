"""kill -9 at seeded random points of `train` (while saving), `datasets fetch`, `search` and
`compare`: what was saved before stays whole, nothing half-written sits where a later run reads,
and the next run cleans up (hidden temporary entries of the killed process) or resumes."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest
from kill9 import hidden, run_killed
from test_download import GOOD, leftovers, make_zip, server, tiny  # noqa: F401 - server is a fixture

from textclass.cli import main
from textclass.data import fetch_dataset, verify_dataset
from textclass.store import load_model

pytestmark = pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning", "ignore::DeprecationWarning")

TEXTS = ["good movie", "bad movie", "great film", "awful film", "nice plot", "terrible plot", "lovely cast",
         "horrid cast", "fine acting", "poor acting", "superb story", "dull story"]


def data_file(tmp_path):
    path = tmp_path / "d.csv"
    rows = [(f"{t} {i}", "pos" if j % 2 == 0 else "neg") for i in range(3) for j, t in enumerate(TEXTS)]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    return path


def kill_points(argv, n: int, seed: int) -> list[int]:
    """Run once without killing (it must succeed) and pick ``n`` seeded points among its events."""
    code, events = run_killed(argv, 0)
    assert code == 0 and events > n
    return sorted(random.Random(seed).sample(range(1, events + 1), n))


def test_kill_train_while_saving(tmp_path):
    data, out = data_file(tmp_path), tmp_path / "run"
    assert main(["train", str(data), "-o", str(out), "--seed", "1"]) == 0
    argv = ["train", data, "-o", out, "--seed", "2"]
    for k in kill_points(argv, 4, seed=12):
        assert run_killed(argv, k)[0] == -9, k
        clf = load_model(out / "model")  # the earlier model or the new one, whole (hashes checked)
        assert set(clf.predict(["good movie", "bad movie"])) <= {"pos", "neg"}
        json.loads((out / "metrics.json").read_text())  # the earlier file or the new one, never half
        assert (out / "report.md").read_text().startswith("# bow-logreg")
    assert run_killed(argv, 0)[0] == 0
    assert hidden(out) == [] and [p.name for p in tmp_path.glob(".*")] == []
    assert json.loads((out / "metrics.json").read_text())["seed"] == 2


def test_kill_fetch(server, tmp_path, monkeypatch):  # noqa: F811
    home = tmp_path / "home"
    monkeypatch.setenv("TEXTCLASS_DATA", str(home))
    www, base, _ = server
    (www / "tiny.zip").write_bytes(make_zip({"tiny/a.txt": GOOD, "tiny/b.txt": b"more"}))
    tiny(monkeypatch, f"{base}/tiny.zip")
    fetch_dataset("tiny", progress=False)
    argv = ["datasets", "fetch", "tiny", "--force"]
    for k in kill_points(argv, 4, seed=7):
        (home / "tiny" / "old.txt").write_text("from the earlier fetch")
        assert run_killed(argv, k)[0] == -9, k
        assert verify_dataset("tiny") == ["a.txt"]  # restores a copy moved aside just before the kill
        assert (home / "tiny" / "a.txt").read_bytes() == GOOD
    assert run_killed(argv, 0)[0] == 0
    assert leftovers(home) == ["tiny"] and not (home / "tiny" / "old.txt").exists()


def test_kill_search_then_resume(tmp_path):
    import optuna

    data, out = data_file(tmp_path), tmp_path / "search"
    argv = ["search", data, "-o", out, "--trials", "3", "--cv", "2", "--sampler", "random", "--resume"]
    points = kill_points([*argv[:3], tmp_path / "count", *argv[4:]], 3, seed=3)
    for k in points:
        assert run_killed(argv, k)[0] == -9, k
        if (out / "study.db").exists():  # what earlier runs stored is readable
            optuna.load_study(study_name="textclass-search", storage=f"sqlite:///{out / 'study.db'}")
    assert run_killed(argv, 0)[0] == 0
    summary = json.loads((out / "search.json").read_text())
    study = optuna.load_study(study_name="textclass-search", storage=f"sqlite:///{out / 'study.db'}")
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 3 and summary["states"].get("COMPLETE", 0) + summary["states"].get("PRUNED", 0) == 3
    assert load_model(out / "model").predict(["good movie"])[0] in ("pos", "neg") and hidden(out) == []


def dead_pid() -> int:
    import os

    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_a_model_moved_aside_by_a_killed_save_is_put_back(tmp_path):
    """The one moment between the two renames of a model directory, made by hand."""
    data, out = data_file(tmp_path), tmp_path / "run"
    assert main(["train", str(data), "-o", str(out)]) == 0
    pid = dead_pid()
    (out / "model").rename(out / f".model.old-{pid}-0000")
    (out / f".model.tmp-{pid}-0001").mkdir()
    assert load_model(out / "model").predict(["good movie"])[0] in ("pos", "neg")
    assert hidden(out) == []


def test_a_dataset_moved_aside_by_a_killed_fetch_is_put_back(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("TEXTCLASS_DATA", str(home))
    tiny(monkeypatch, "http://127.0.0.1:9/unused.zip")
    stale = home / f".tiny-{dead_pid()}-0000"
    (stale / "previous").mkdir(parents=True)
    (stale / "previous" / "a.txt").write_bytes(GOOD)
    assert verify_dataset("tiny") == ["a.txt"] and leftovers(home) == ["tiny"]


def test_kill_compare(tmp_path):
    data, out = data_file(tmp_path), tmp_path / "cmp"
    argv = ["compare", data, "-m", "bow-logreg,nbsvm", "--cv", "2", "-j", "1", "-o", out]
    assert main([str(a) for a in argv]) == 0
    before = {p.name for p in out.iterdir()}
    for k in kill_points(argv, 4, seed=5):
        assert run_killed(argv, k)[0] == -9, k
        assert {p.name for p in out.iterdir() if not p.name.startswith(".")} == before
        assert len(pd.read_csv(out / "folds.csv")) == 4 and (out / "compare.md").read_text().startswith("#")
        assert (out / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
    assert run_killed(argv, 0)[0] == 0 and hidden(out) == []
