"""``predict --input GLOB``: many files of mixed formats streamed through a model in bounded
memory, in this process or on a Dask cluster, with the same predictions as one in-memory call."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from textclass import TextClassifier
from textclass.cli import main
from textclass.predict import load_predictor, predict_files

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny bow-logreg run directory, trained on the lead_reviews fixture."""
    df = pd.read_csv(FIXTURES / "lead_reviews.csv")
    path = tmp_path_factory.mktemp("run") / "run"
    TextClassifier("bow-logreg").fit(df.review, df.sentiment).save(path / "model")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """The 80 fixture reviews spread over five files, one per format, each with its own text
    column name; and the expected (file, row, id, text) of every row, in glob order."""
    df = pd.read_csv(FIXTURES / "lead_reviews.csv")
    df["id"] = [f"r{i}" for i in range(len(df))]
    folder = tmp_path_factory.mktemp("corpus")
    df[:30][["id", "review"]].to_parquet(folder / "a.parquet", row_group_size=8)  # 4 row groups
    df[30:50][["id", "review", "sentiment"]].to_csv(folder / "b.csv", index=False)
    df[50:60][["review", "id"]].to_csv(folder / "c.tsv", sep="\t", index=False)
    lines = [json.dumps({"id": r.id, "text": r.review}) for r in df[60:75].itertuples()]
    (folder / "d.jsonl").write_text("\n".join(lines[:7] + [""] + lines[7:]) + "\n", encoding="utf-8")
    (folder / "e.txt").write_text("\n".join(df.review[75:]) + "\n", encoding="utf-8")
    expected = pd.DataFrame({
        "file": [str(folder / f) for f, n in [("a.parquet", 30), ("b.csv", 20), ("c.tsv", 10), ("d.jsonl", 15),
                                              ("e.txt", 5)] for _ in range(n)],
        "row": [*range(30), *range(20), *range(10), *range(15), *range(5)],
        "text": df.review,
    })
    return folder, expected


def in_memory(run: Path, texts) -> pd.DataFrame:
    clf = load_predictor(run)
    proba = clf.predict_proba(list(texts))
    return pd.DataFrame({"label": clf.labels_from_proba(proba), "p_neg": proba[:, 0].round(6),
                         "p_pos": proba[:, 1].round(6)})


def test_a_glob_over_mixed_formats_equals_one_in_memory_call(run, corpus, tmp_path):
    folder, expected = corpus
    out = tmp_path / "pred.parquet"
    assert predict_files(run, [str(folder / "*")], out, chunk_size=7) == 80
    got = pd.read_parquet(out)
    assert list(got.columns) == ["file", "row", "text", "label", "p_neg", "p_pos"]
    pd.testing.assert_frame_equal(got[["file", "row", "text"]], expected, check_dtype=False)
    pd.testing.assert_frame_equal(got[["label", "p_neg", "p_pos"]], in_memory(run, expected.text))


def test_cli_repeated_inputs_to_jsonl_and_csv_with_an_id_column(run, corpus, tmp_path, capsys):
    folder, expected = corpus
    out = tmp_path / "pred.jsonl"
    code = main(["predict", str(run), "-i", str(folder / "*.parquet"), "-i", str(folder / "[bc].*"),
                 "--id-col", "id", "--output", str(out), "--chunk-size", "4"])
    err = capsys.readouterr().err
    assert code == 0, err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(60)]
    assert [r["p_pos"] for r in rows] == in_memory(run, expected.text[:60]).p_pos.tolist()
    per_file = [line for line in err.splitlines() if line.startswith("predict [") and " rows; " in line]
    assert len(per_file) == 3 and per_file[-1].startswith("predict [3/3 files]") and "60 in all" in per_file[-1]
    assert err.splitlines()[-1] == f"wrote 60 predictions to {out}"

    csv_out = tmp_path / "pred.csv"
    assert main(["predict", str(run), "-i", str(folder / "b.csv"), "--output", str(csv_out)]) == 0
    got = pd.read_csv(csv_out)
    assert got.columns.tolist() == ["file", "row", "text", "label", "p_neg", "p_pos"]
    assert got.row.tolist() == list(range(20)) and got.text.tolist() == expected.text[30:50].tolist()


class Recorder:
    """A predictor that records how many texts each call received."""

    def __init__(self, clf):
        self.clf, self.calls = clf, []
        self.classes_, self.task_ = clf.classes_, clf.task_

    def predict_proba(self, texts):
        self.calls.append(len(texts))
        return self.clf.predict_proba(texts)

    def labels_from_proba(self, proba):
        return self.clf.labels_from_proba(proba)


def test_memory_is_bounded_by_the_chunk_size(run, corpus, tmp_path):
    folder, _ = corpus
    recorder = Recorder(load_predictor(run))
    assert predict_files(recorder, str(folder / "*"), tmp_path / "p.csv", chunk_size=3) == 80
    assert max(recorder.calls) <= 3 and sum(recorder.calls) == 80
    assert len(recorder.calls) >= sum(-(-n // 3) for n in (30, 20, 10, 15, 5))  # no file read whole


def one_error(capsys, *argv) -> str:
    """Run the CLI, expect exit 2 and an error as the last line of stderr (progress lines for
    files done before it may precede it); return that line."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and err.endswith("\n") and err.splitlines()[-1].startswith("error:"), err
    return err.splitlines()[-1]


@pytest.mark.parametrize("name, content, expected", [
    ("bad.csv", b"title,stars\nhello,5\n", "bad.csv: no text column 'review'"),
    ("bad.parquet", b"PAR1 not really parquet", "bad.parquet: not a readable Parquet file"),
    ("bad.jsonl", b'{"review": "fine"}\n' * 300 + b'{"review": "caf\xe9"}\n', "bad.jsonl: line 301 is not UTF-8"),
    ("bad.jsonl", b'{"review": "fine"}\n' * 300 + b'{"review": oops}\n', "bad.jsonl: malformed JSON on line 301"),
])
def test_a_bad_file_is_one_line_exit_2_and_leaves_no_output(run, tmp_path, capsys, name, content, expected):
    folder = tmp_path / "in"
    folder.mkdir()
    pd.DataFrame({"review": ["good food"] * 50}).to_parquet(folder / "a.parquet")  # a good file first
    (folder / name).write_bytes(content)
    out = tmp_path / "out" / "pred.parquet"
    out.parent.mkdir()
    out.write_bytes(b"an earlier output")
    err = one_error(capsys, "predict", run, "-i", folder / "*", "--text-col", "review", "--output", out)
    assert expected in err, err
    assert out.read_bytes() == b"an earlier output"  # left whole, and no temporary file beside it
    assert [p.name for p in out.parent.iterdir()] == ["pred.parquet"]


def test_inputs_that_match_nothing_and_options_that_do_not_fit(run, tmp_path, capsys):
    assert "nothing*.csv: no file matches" in one_error(capsys, "predict", run, "-i", tmp_path / "nothing*.csv")
    (tmp_path / "a.csv").write_text("review\ngood\n")
    assert "--id-col 'label'" in one_error(capsys, "predict", run, "-i", tmp_path / "a.csv", "--id-col", "label")
    assert "no id column 'idx'" in one_error(capsys, "predict", run, "-i", tmp_path / "a.csv", "--id-col", "idx")
    assert "give --input" in one_error(capsys, "predict", run, "good", "--dask", "local")
    assert "--jobs sets the worker processes of --dask local" in one_error(capsys, "predict", run, "-i",
                                                                           tmp_path / "a.csv", "-j", "2")
    err = one_error(capsys, "predict", run, "-i", tmp_path / "a.csv", "--dask", "local", "--output", tmp_path / "p.csv")
    assert "--dask writes a folder of Parquet part files" in err


def test_the_output_is_not_read_as_input_on_a_rerun(run, tmp_path, capsys):
    (tmp_path / "a.jsonl").write_text('{"text": "good"}\n{"text": "bad"}\n')
    for _ in range(2):
        assert main(["predict", str(run), "-i", str(tmp_path / "*.jsonl"), "--output", str(tmp_path / "p.jsonl")]) == 0
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 2


def test_dask_without_the_extra_names_the_pip_command(run, tmp_path, capsys, monkeypatch):
    (tmp_path / "a.csv").write_text("review\ngood\n")
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    err = one_error(capsys, "predict", run, "-i", tmp_path / "a.csv", "--dask", "local", "--output", tmp_path / "p")
    assert "needs the 'dask' extra" in err and "pip install 'textclass[dask]'" in err
    assert not (tmp_path / "p").exists()


def test_parts_split_parquet_by_row_groups(corpus, monkeypatch):
    from textclass import dask_predict
    from textclass.predict import inspect_input

    folder, _ = corpus
    monkeypatch.setattr(dask_predict, "PART_ROWS", 10)
    parts = dask_predict.plan_parts([inspect_input(folder / "a.parquet"), inspect_input(folder / "b.csv")])
    assert [(p.file.path.name, p.row_groups, p.first_row) for p in parts] == [
        ("a.parquet", (0, 1), 0), ("a.parquet", (2, 3), 16), ("b.csv", None, 0)]


def test_dask_local_equals_the_in_process_output(run, corpus, tmp_path, capsys, monkeypatch):
    """One LocalCluster of one worker process. The model is the run's ONNX export, which a fresh
    process loads in under a second (the skops model's first load imports all of scikit-learn,
    and through it torch: 10-30 s); the worker loads either the same way, by load_predictor."""
    from textclass import dask_predict
    from textclass.export import export

    folder, _ = corpus
    model = export(run, tmp_path / "onnx")
    monkeypatch.setattr(dask_predict, "PART_ROWS", 10)  # a.parquet in two parts: row numbers continue
    local = tmp_path / "local.parquet"
    assert predict_files(model, str(folder / "*"), local, chunk_size=7) == 80
    out = tmp_path / "dask"
    out.mkdir()
    (out / "part-00009.parquet").write_bytes(b"from an earlier run: replaced")
    code = main(["predict", str(model), "-i", str(folder / "*"), "--dask", "local", "-j", "1", "--output", str(out),
                 "--chunk-size", "7"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [f"part-{i:05d}.parquet" for i in range(6)]
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(local))
    assert sum(line.startswith("predict [") for line in err.splitlines()) == 6


def test_a_bad_line_found_on_a_worker_is_raised_and_leaves_no_output(run, tmp_path):
    """A threads-only cluster in this process: the remote-error path without a process start."""
    from distributed import Client, LocalCluster

    from textclass.errors import DataError

    (tmp_path / "a.jsonl").write_bytes(b'{"text": "fine"}\n' * 300 + b"[1, 2]\n")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        with pytest.raises(DataError, match=r"a.jsonl: line 301 is a JSON list"):
            predict_files(run, str(tmp_path / "*.jsonl"), tmp_path / "out", dask=client)
        assert client.status == "running"  # the caller's client is left open
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl"]


def test_row_numbers_join_back_to_the_input(run, corpus, tmp_path):
    folder, _ = corpus
    out = tmp_path / "p.parquet"
    predict_files(run, [str(folder / "b.csv"), str(folder / "a.parquet")], out, id_col="id")
    got = pd.read_parquet(out)
    for name, source in (("b.csv", pd.read_csv(folder / "b.csv")), ("a.parquet", pd.read_parquet(folder / "a.parquet"))):
        part = got[got.file.str.endswith(name)]
        assert np.array_equal(source.review.iloc[part.row].to_numpy(), part.text.to_numpy())
        assert np.array_equal(source.id.iloc[part.row].to_numpy(), part.id.to_numpy())
