"""End to end through the CLI: train writes a run directory, evaluate and predict read it back."""

from __future__ import annotations

import csv
import io
import json

import pytest

from textclass.cli import main

KERAS_TINY = ["-p", "embedding_dim=8", "-p", "num_filters=4", "--epochs", "2", "--batch-size", "8"]


@pytest.fixture
def reviews(fixtures):
    return fixtures / "lead_reviews.csv"


def test_train_writes_a_complete_run_directory(tmp_path, reviews, capsys):
    run = tmp_path / "run"
    rc = main(["train", str(reviews), "-m", "cnn", "-o", str(run), "--text-col", "review", *KERAS_TINY])
    assert rc == 0, capsys.readouterr().err
    for name in ("model/manifest.json", "metrics.json", "history.csv", "history.png", "confusion.png", "report.md"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n"] == 20 and metrics["n_train"] == 60  # 80 rows, test_size 0.25
    assert metrics["labels"] == ["neg", "pos"]
    assert metrics["params"]["num_filters"] == 4
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 2  # header + one row per epoch


def test_evaluate_and_predict_use_the_saved_model(tmp_path, reviews, capsys):
    run = tmp_path / "run"
    assert main(["train", str(reviews), "-o", str(run), "--text-col", "review", "--label-col", "sentiment"]) == 0
    capsys.readouterr()

    assert main(["evaluate", str(run), str(reviews), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n"] == 80 and metrics["accuracy"] > 0.9  # the fixture's words give the label away

    assert main(["predict", str(run), "The food was wonderful", "Awful rude staff"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in rows] == ["pos", "neg"]
    assert all(abs(r["p_neg"] + r["p_pos"] - 1) < 1e-5 for r in rows)


def test_predict_streams_a_file_to_csv_in_chunks(tmp_path, reviews, capsys, monkeypatch):
    run = tmp_path / "run"
    assert main(["train", str(reviews), "-o", str(run), "--text-col", "review"]) == 0
    capsys.readouterr()
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), "-i", str(reviews), "--text-col", "review", "--output", str(out), "--chunk-size", "7"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 80 and list(rows[0]) == ["file", "row", "text", "label", "p_neg", "p_pos"]
    assert [int(r["row"]) for r in rows] == list(range(80)) and {r["file"] for r in rows} == {str(reviews)}

    monkeypatch.setattr("sys.stdin", io.StringIO("so good\n\nso bad\n"))
    assert main(["predict", str(run)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2  # the blank line is skipped


def test_bad_input_is_one_line_and_exit_2(tmp_path, reviews, capsys):
    run = tmp_path / "run"
    assert main(["train", str(reviews), "-o", str(run), "--text-col", "reveiw"]) == 2
    err = capsys.readouterr().err
    assert "reveiw" in err and "review" in err and "Traceback" not in err

    assert main(["train", str(reviews), "-o", str(run), "--text-col", "review", "-p", "num_filterz=3"]) == 2
    assert "num_filterz" in capsys.readouterr().err
    assert not run.exists()  # nothing was written by the failed runs

    assert main(["predict", str(tmp_path / "missing-run"), "hello"]) == 2
    assert "missing-run" in capsys.readouterr().err

    assert main(["train", str(reviews), "-o", str(run), "--text-col", "review"]) == 0
    capsys.readouterr()
    assert main(["predict", str(run), "-i", str(reviews), "--text-col", "txt"]) == 2
    err = capsys.readouterr().err
    assert "lead_reviews.csv" in err and "'txt'" in err and "Traceback" not in err
    assert (run / "model" / "manifest.json").is_file()  # the failed predict left the model alone

    assert main(["predict", str(tmp_path / "missing-run"), "hello"]) == 2
    assert "missing-run" in capsys.readouterr().err
