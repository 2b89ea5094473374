"""textclass reproduce: the exact experiment-1 figures, the table's structure end to end (--quick),
the GloVe-missing rows, and Ctrl-C keeping the finished rows."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import real_dataset

from textclass import reproduce as rp
from textclass.cli import main
from textclass.errors import ParameterError

COLUMNS = ["#", "model", "source", "published", "ours (tutorial)", "ours (honest, 95% CI)", "time"]


@pytest.fixture(autouse=True)
def _data():
    real_dataset("uci-sentiment")


def _rows(out) -> list[dict]:
    return json.loads((out / "results.json").read_text())["rows"]


def test_experiment_1_reproduces_the_published_figures_exactly(tmp_path, capsys):
    out = tmp_path / "rep"
    rc = main(["reproduce", "--only", "1", "--cv", "5", "-j", "1", "-o", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    rows = {r["source"]: r for r in _rows(out)}
    assert list(rows) == ["yelp", "amazon", "imdb", "imdb-748"]
    # the tutorial's parse (pandas' default quoting: imdb 748 rows) gives the published figures
    assert round(rows["yelp"]["tutorial"], 4) == 0.7960
    assert round(rows["amazon"]["tutorial"], 4) == 0.7960
    assert round(rows["imdb-748"]["tutorial"], 4) == 0.7487 and rows["imdb-748"]["n_train"] == 561
    # the correct 1000-row parse is the figure we report
    assert round(rows["imdb"]["tutorial"], 4) == 0.7640 and rows["imdb"]["n_train"] == 750
    for r in rows.values():
        assert r["honest_lo"] <= r["honest"] <= r["honest_hi"] and len(r["honest_folds"]) == 5
    assert "0.7960" in captured.out and "748-row parse" in captured.out
    report = (out / "report.md").read_text()
    assert "The imdb 748-row parse" in report and "0.7640" in report


@pytest.mark.slow
def test_quick_run_end_to_end_has_every_row_and_file(tmp_path, capsys):
    out = tmp_path / "rep"
    rc = main(["reproduce", "--quick", "-o", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    for name in ("report.md", "results.csv", "results.json", "honest_accuracy.png"):
        assert (out / name).stat().st_size > 0, name
    df = pd.read_csv(out / "results.csv")
    assert list(df["experiment"].unique()) == list(range(1, 9))
    glove = rp.glove_available()
    assert len(df) == 4 + 6 + 1  # exp 1: 3 sources + the 748-row parse; 2-7: yelp; 8: yelp (--quick)
    assert set(df.columns) >= set(rp.CSV_COLUMNS)
    done = df[df["status"] == "ok"]
    assert done["tutorial"].notna().all() and done["honest"].notna().all()
    assert (df["status"] == "ok").sum() == (11 if glove else 9)
    one = df[df["experiment"] == 1].set_index("source")["tutorial"].round(4).to_dict()
    assert one == {"yelp": 0.796, "amazon": 0.796, "imdb": 0.764, "imdb-748": 0.7487}
    assert df.loc[df["experiment"] == 8, "tutorial_cv"].notna().all()
    # a training-history plot for each Keras experiment run under the tutorial protocol
    for n in (2, 3, 4, 7, 8) + ((5, 6) if glove else ()):
        assert (out / f"history_exp{n}_yelp.png").is_file(), n
    for col in COLUMNS:
        assert col in captured.out
    report = (out / "report.md").read_text()
    assert "## What this shows" in report and "Experiment 3's low published figure" in report
    assert "| " + " | ".join(COLUMNS) + " |" in report


def test_glove_rows_say_how_to_fetch_when_vectors_are_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(rp, "glove_available", lambda: False)
    out = tmp_path / "rep"
    rc = main(["reproduce", "--quick", "--only", "5,6", "-o", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    rows = _rows(out)
    assert [r["experiment"] for r in rows] == [5, 6]
    assert all("textclass datasets fetch glove-6b-50d" in r["status"] for r in rows)
    assert "textclass datasets fetch" in " ".join(captured.out.split())


def test_ctrl_c_keeps_finished_rows_and_exits_130(tmp_path, monkeypatch, capsys):
    real = rp.run_tasks
    out = tmp_path / "rep"

    def interrupt_after_experiment_1(tasks, *, on_done, **kwargs):
        def done(task, result):
            on_done(task, result)
            if (out / "results.json").exists():  # experiment 1's rows are written: Ctrl-C now
                raise KeyboardInterrupt
        return real(tasks, on_done=done, **kwargs)

    monkeypatch.setattr(rp, "run_tasks", interrupt_after_experiment_1)
    rc = main(["reproduce", "--quick", "--only", "1,2", "-j", "1", "-o", str(out)])
    assert rc == 130
    payload = json.loads((out / "results.json").read_text())
    assert payload["interrupted"] is True
    assert {r["experiment"] for r in payload["rows"]} == {1}
    assert "interrupted" in (out / "report.md").read_text()


def test_parse_only():
    assert rp.parse_only("1,7") == [1, 7]
    assert rp.parse_only("2-4,8") == [2, 3, 4, 8]
    assert rp.parse_only(None) == list(range(1, 9))
    assert rp.parse_only("9-11") == [9, 10, 11]  # the --beyond rows
    with pytest.raises(ParameterError, match="no experiment 12"):
        rp.parse_only("12")
    with pytest.raises(ParameterError, match="expected experiment numbers"):
        rp.parse_only("one")


def test_parse_sources():
    assert rp.parse_sources("imdb, yelp") == ("imdb", "yelp")
    with pytest.raises(ParameterError, match="expected some of yelp, amazon, imdb"):
        rp.parse_sources("yelp,twitter")


def test_bad_only_exits_2(capsys):
    assert main(["reproduce", "--only", "0,3"]) == 2
    assert "no experiment 0" in capsys.readouterr().err


def test_beyond_adds_honest_rows_past_the_tutorials_table(tmp_path, capsys, monkeypatch):
    """--beyond: nbsvm, sentence-embed and encoder-tuned under the honest protocol only (2 folds,
    yelp, one epoch with --quick), beside experiment 1; in the table, results and report."""
    out = tmp_path / "rep"
    rc = main(["reproduce", "--quick", "--only", "1", "--beyond", "-o", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    df = pd.read_csv(out / "results.csv")
    new = df[df["experiment"] >= 9].set_index("model")
    assert list(new.index) == ["nbsvm", "sentence-embed", "encoder-tuned"]
    assert (new["source"] == "yelp").all() and new["tutorial"].isna().all() and new["published"].isna().all()
    assert new["honest"].between(0.5, 1).all() and (new["honest_lo"] <= new["honest"]).all()
    assert new.loc["encoder-tuned", "honest_epochs"] == 1  # --quick caps the epochs
    rows = {r["model"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert len(rows["sentence-embed"]["honest_folds"]) == 2
    report = (out / "report.md").read_text()
    assert "Past the tutorial's table on yelp" in report and "(--beyond) are not the tutorial's" in report
    assert "sentence-embed" in captured.out


def test_experiments_share_one_task_stream_and_rows_keep_their_order(tmp_path, monkeypatch, capsys):
    """All experiments' tasks go to the workers as one stream; whichever finishes first, the rows
    come out in experiment order, and a log (no terminal) gets a line per finished task."""
    real = rp.run_tasks
    calls = []

    def backwards(tasks, **kwargs):  # the last experiment's tasks finish first
        calls.append(len(tasks))
        return real(list(reversed(tasks)), **kwargs)

    monkeypatch.setattr(rp, "run_tasks", backwards)
    out = tmp_path / "rep"
    assert main(["reproduce", "--quick", "--only", "1,2", "-j", "1", "-o", str(out)]) == 0
    payload = json.loads((out / "results.json").read_text())
    assert len(calls) == 1
    assert [r["experiment"] for r in payload["rows"]] == sorted(r["experiment"] for r in payload["rows"])
    assert set(payload["done_s"]) == {"1", "2"} and payload["done_s"]["1"] >= payload["done_s"]["2"]
    err = capsys.readouterr().err
    assert "experiment 2: bow-dense, 0 tasks left" in err and "100% done" in err
