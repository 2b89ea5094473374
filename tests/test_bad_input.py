"""Bad input, as a user meets it through the CLI: one line on stderr, exit 2, nothing saved
damaged; an unforeseen failure is one line too (exit 1) with the traceback in a file."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from textclass.cli import main
from textclass.data import read_table
from textclass.errors import DataError, TextclassWarning

ROWS = [("good movie", "pos"), ("bad movie", "neg"), ("great film", "pos"), ("awful film", "neg"),
        ("nice one", "pos"), ("terrible one", "neg"), ("lovely", "pos"), ("horrid", "neg")]


def csv_file(path, rows=ROWS, header="text,label"):
    path.write_text(header + "\n" + "".join(f"{t},{label}\n" for t, label in rows), encoding="utf-8")
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(capsys, *argv, code=2) -> str:
    got, _, err = run(capsys, *argv)
    assert got == code, err
    assert err.count("\n") == 1 and err.startswith("error:"), err
    return err


@pytest.fixture
def trained(tmp_path, capsys):
    code, _, err = run(capsys, "train", csv_file(tmp_path / "ok.csv"), "-o", tmp_path / "run")
    assert code == 0, err
    return tmp_path / "run"


# ---- the CLI guard -----------------------------------------------------------------------------
def test_unexpected_exception_is_one_line_and_a_traceback_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def boom(*args, **kwargs):
        raise RuntimeError("something\nbroke deep inside")

    monkeypatch.setattr("textclass.data.load_data", boom)
    err = one_error(capsys, "train", csv_file(tmp_path / "ok.csv"), "-o", tmp_path / "run", code=1)
    assert "unexpected RuntimeError: something broke deep inside" in err
    files = list((tmp_path / "cache" / "textclass" / "tracebacks").iterdir())
    assert len(files) == 1 and str(files[0]) in err
    text = files[0].read_text()
    assert text.startswith("Traceback") and "in boom" in text and "RuntimeError: something" in text


def test_usage_errors_stay_2_and_ctrl_c_130(monkeypatch, capsys):
    assert main(["train"]) == 2  # missing argument: Typer's usage error
    capsys.readouterr()
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("textclass.data.load_data", interrupted)
    assert main(["train", "x.csv"]) == 130


def test_library_warnings_never_reach_the_terminal(tmp_path, capsys, monkeypatch):
    """A raw library warning raised during a command is dropped; textclass's own is said once."""
    from textclass import train as train_module

    original = train_module.train_run

    def noisy(*args, **kwargs):
        warnings.warn("raw library noise", UserWarning)
        warnings.warn(TextclassWarning("said in our words"))
        warnings.warn(TextclassWarning("said in our words"))
        return original(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_run", noisy)
    code, _, err = run(capsys, "train", csv_file(tmp_path / "ok.csv"), "-o", tmp_path / "run")
    assert code == 0
    assert "raw library noise" not in err and err.count("warning: said in our words") == 1


def test_worker_processes_print_no_raw_warning():
    import subprocess
    import sys

    from textclass.guard import warnings_policy

    child = [sys.executable, "-c", "import warnings; warnings.warn('raw noise from a worker')"]
    with warnings_policy(print):
        inside = subprocess.run(child, capture_output=True, text=True).stderr
    assert inside == "" and "raw noise" in subprocess.run(child, capture_output=True, text=True).stderr


def test_convergence_warning_is_translated_once():
    from sklearn.exceptions import ConvergenceWarning

    from textclass.guard import warnings_policy

    said = []
    with warnings_policy(said.append):
        for _ in range(3):
            warnings.warn("lbfgs failed to converge (status=1)", ConvergenceWarning)
    assert len(said) == 1 and "stopped before converging" in said[0] and "lbfgs" not in said[0]


# ---- paths ---------------------------------------------------------------------------------------
def test_train_out_is_an_existing_file(tmp_path, capsys):
    target = tmp_path / "afile"
    target.write_text("keep me")
    err = one_error(capsys, "train", csv_file(tmp_path / "ok.csv"), "-o", target)
    assert f"--out {target}: exists and is a file" in err
    assert target.read_text() == "keep me"


def test_predict_output_is_a_directory(trained, tmp_path, capsys):
    folder = tmp_path / "somedir"
    folder.mkdir()
    err = one_error(capsys, "predict", trained, "good", "--output", folder)
    assert "is a folder" in err and list(folder.iterdir()) == []


def test_predict_jsonl_malformed_line_is_named(trained, tmp_path, capsys):
    bad = tmp_path / "in.jsonl"
    bad.write_text('{"text": "good"}\n\n{"text": bad\n', encoding="utf-8")
    err = one_error(capsys, "predict", trained, "-i", bad)
    assert f"{bad}: malformed JSON on line 3" in err


@pytest.mark.parametrize("storage, expected", [
    ("sqlite:////nonexistent-dir/x/study.db", "cannot open the database (unable to open database file)"),
    ("foo://bar", "unknown database scheme 'foo'"),
])
def test_search_storage_errors(tmp_path, capsys, storage, expected):
    err = one_error(capsys, "search", csv_file(tmp_path / "ok.csv"), "--storage", storage, "--trials", "1",
                    "--cv", "2", "-o", tmp_path / "s")
    assert f"--storage {storage}: {expected}" in err
    assert not (tmp_path / "s").exists()


# ---- hyperparameters -----------------------------------------------------------------------------
@pytest.mark.parametrize("model, param, message", [
    ("bow-logreg", "C=-1", "C must be a float in the range (0.0, inf], got -1"),
    ("tfidf-linear", "C=0", "C must be a float in the range (0.0, inf), got 0"),
    ("nbsvm", "alpha=-0.5", "alpha must be a float in the range (0.0, inf), got -0.5"),
    ("tfidf-linear", "word_ngram_max=0", "word_ngram_max must be an int in the range [1, inf), got 0"),
    ("bilstm", "units=-3", "units must be an int in the range [1, inf), got -3"),
    ("gru", "dropout=1.5", "dropout must be a float in the range [0.0, 1.0), got 1.5"),
])
def test_rejected_hyperparameter_before_any_work(tmp_path, capsys, monkeypatch, model, param, message):
    monkeypatch.setattr("textclass.data.load_data", lambda *a, **k: pytest.fail("loaded data before checking -p"))
    err = one_error(capsys, "train", tmp_path / "never-read.csv", "-m", model, "-p", param, "-o", tmp_path / "r")
    assert message in err and not (tmp_path / "r").exists()


def test_compare_checks_values_too(tmp_path, capsys):
    err = one_error(capsys, "compare", csv_file(tmp_path / "ok.csv"), "-m", "bow-logreg,nbsvm", "-p", "C=-2",
                    "--cv", "2")
    assert "C must be a float in the range (0.0, inf], got -2" in err


# ---- columns and labels ----------------------------------------------------------------------------
def test_duplicate_column_names_are_refused(tmp_path, capsys):
    path = tmp_path / "dup.csv"
    path.write_text("text,text,label\na b,c d,pos\ne f,g h,neg\n")
    with pytest.raises(DataError, match=r"header \(line 1\) names column 'text' 2 times"):
        read_table(path)
    tsv = tmp_path / "dup.tsv"
    tsv.write_text("text\tlabel\tlabel\na b\tpos\tx\nc d\tneg\ty\n")
    with pytest.raises(DataError, match="names column 'label' 2 times"):
        read_table(tsv)


def test_same_text_and_label_column(tmp_path, capsys):
    err = one_error(capsys, "train", csv_file(tmp_path / "ok.csv"), "--text-col", "text", "--label-col", "text")
    assert "column 'text' is given as both the text and the label column" in err


def test_repeated_header_rows_are_dropped_with_one_warning(tmp_path):
    path = tmp_path / "cat.csv"
    rows = [(t, i % 2) for i, (t, _) in enumerate(ROWS)]
    path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows[:4]) + "text,label\n"
                    + "".join(f"{t},{y}\n" for t, y in rows[4:]) + " text , label \n")
    with pytest.warns(TextclassWarning, match=r"dropped 2 row\(s\) repeating the header \(line\(s\) 6, 11\)"):
        df = read_table(path)
    assert len(df) == 8 and sorted(set(df["label"])) == [0, 1]  # numbers again, as in a clean file


def test_labels_are_stripped(tmp_path):
    path = tmp_path / "ws.csv"
    path.write_text('text,label\na," pos"\nb,"neg "\nc,pos\nd, neg\n')
    assert sorted(set(read_table(path)["label"])) == ["neg", "pos"]
    jl = tmp_path / "ws.jsonl"
    jl.write_text('{"text": "a", "label": [" x", "y "]}\n{"text": "b", "label": ["y"]}\n')
    assert read_table(jl)["label"].tolist() == [("x", "y"), ("y",)]


def test_mixed_separators_name_both_and_label_sep_decides(tmp_path, capsys):
    path = tmp_path / "mix.csv"
    path.write_text('text,tags\na,"x,y"\nb,x;z\nc,y\nd,"x,z"\n')
    with pytest.raises(DataError, match=r"mix the separators ',' \(lines 2, 5, e.g. 'x,y'\) and ';' \(line 3"):
        read_table(path)
    err = one_error(capsys, "train", path)
    assert "--label-sep" in err
    assert read_table(path, label_sep=";")["label"].tolist() == [("x,y",), ("x", "z"), ("y",), ("x,z",)]
    assert read_table(path, label_sep="")["label"].tolist() == ["x,y", "x;z", "y", "x,z"]


def test_one_separator_is_read_as_tags_with_a_warning(tmp_path):
    path = tmp_path / "tags.csv"
    path.write_text('text,tags\na,"x, y"\nb,x\nc,"y,z"\n')
    with pytest.warns(TextclassWarning, match=r"2 label\(s\) hold ',': read as multi-label tags"):
        labels = read_table(path)["label"].tolist()
    assert labels == [("x", "y"), ("x",), ("y", "z")]


def test_jsonl_label_object(tmp_path, capsys):
    path = tmp_path / "obj.jsonl"
    path.write_text('{"text": "a b", "label": "x"}\n{"text": "c d", "label": {"a": 1}}\n'
                    '{"text": "e f", "label": "y"}\n')
    err = one_error(capsys, "train", path)
    assert 'column \'label\' at line 2 are JSON objects (e.g. {"a": 1}); expected a string, a number or a list' in err
    path.write_text('{"text": {"t": 1}, "label": "x"}\n{"text": "c d", "label": "y"}\n')
    with pytest.raises(DataError, match="text.* at line 1 are JSON objects or lists"):
        read_table(path)


def test_group_col(tmp_path, capsys):
    rows = [(f"good thing {i}", "pos", "a" if i % 2 else "b") for i in range(12)] + \
           [(f"bad thing {i}", "neg", "a" if i % 3 else "b") for i in range(12)]
    path = tmp_path / "g.csv"
    path.write_text("text,label,site\n" + "".join(f"{t},{y},{g}\n" for t, y, g in rows))
    code, out, err = run(capsys, "train", path, "--group-col", "site", "-o", tmp_path / "r", "--seed", "3")
    assert code == 0, err
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    groups = metrics["per_group"]
    assert set(groups) == {"a", "b"} and sum(g["n"] for g in groups.values()) == metrics["n"]
    assert all(g["accuracy_lo"] <= g["accuracy"] <= g["accuracy_hi"] for g in groups.values())
    report = (tmp_path / "r" / "report.md").read_text()
    assert "## Per group" in report and "| a |" in report and "accuracy (95% Wilson)" in out
    err = one_error(capsys, "train", path, "--group-col", "sight", "-o", tmp_path / "r2")
    assert "no group column 'sight' (did you mean 'site'?)" in err


def test_group_col_of_a_built_in_set(tmp_path, capsys):
    err = one_error(capsys, "train", "uci-sentiment", "--group-col", "sorce", "-o", tmp_path / "r")
    assert "uci-sentiment: no group column 'sorce' (did you mean 'source'?)" in err


# ---- multi-label metrics -----------------------------------------------------------------------------
def test_multilabel_metrics_count_unseen_tags(tmp_path, capsys):
    from sklearn.metrics import f1_score, hamming_loss

    train = tmp_path / "train.jsonl"
    rows = [{"text": f"{a}word {b}word n{i}", "label": [a, b]} for i, (a, b) in
            enumerate([("joy", "love"), ("anger", "fear"), ("joy", "fear"), ("anger", "love")] * 6)]
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, err = run(capsys, "train", train, "-o", tmp_path / "r", "--test-size", "0.25")
    assert code == 0, err
    for name in ("f1_micro", "f1_macro", "f1_samples", "hamming_loss", "subset_accuracy"):
        assert name in out
    assert "│ accuracy " not in out  # multi-label accuracy is named subset_accuracy
    test = tmp_path / "test.jsonl"
    test.write_text(json.dumps({"text": "joyword loveword", "label": ["joy", "love", "brandnew"]}) + "\n"
                    + json.dumps({"text": "angerword fearword", "label": ["anger", "fear"]}) + "\n")
    code, out, err = run(capsys, "evaluate", tmp_path / "r", test, "--json")
    assert code == 0
    assert err.count("\n") == 1 and "1 tag(s) in the evaluation data were never seen in training (brandnew)" in err
    m = json.loads(out)
    assert m["unseen_tags"] == ["brandnew"] and m["per_class"]["brandnew"]["support"] == 1
    tags = ["anger", "fear", "joy", "love", "brandnew"]
    truth = np.array([[0, 0, 1, 1, 1], [1, 1, 0, 0, 0]])
    pred = np.zeros_like(truth)
    from textclass.store import load_model

    clf = load_model(tmp_path / "r" / "model")
    for i, tags_i in enumerate(clf.predict(["joyword loveword", "angerword fearword"])):
        for t in tags_i:
            pred[i, tags.index(t)] = 1
    assert m["f1_micro"] == pytest.approx(f1_score(truth, pred, average="micro", zero_division=0))
    assert m["hamming_loss"] == pytest.approx(hamming_loss(truth, pred))
    assert m["subset_accuracy"] < 1.0  # the first row can never be right: brandnew is counted


# ---- pandas 3: the tutorial's own code on textclass's data ------------------------------------------------
def test_tutorial_snippet_runs_on_load_dataset(tmp_path):
    from conftest import real_dataset
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    df = real_dataset("uci-sentiment")
    df_yelp = df[df["source"] == "yelp"]
    sentences = df_yelp["text"].values
    y = df_yelp["label"].values
    assert isinstance(sentences, np.ndarray) and sentences.dtype == object
    sentences_train, sentences_test, y_train, y_test = train_test_split(
        sentences, y, test_size=0.25, random_state=1000)
    vectorizer = CountVectorizer()
    vectorizer.fit(sentences_train)
    X_train = vectorizer.transform(sentences_train)
    X_test = vectorizer.transform(sentences_test)
    classifier = LogisticRegression()
    classifier.fit(X_train, y_train)
    assert classifier.score(X_test, y_test) == pytest.approx(0.7960, abs=1e-4)  # the tutorial's figure
    table = read_table(csv_file(tmp_path / "ok.csv"))
    a, b = train_test_split(table["text"].values, test_size=0.25, random_state=0)
    assert len(a) + len(b) == len(ROWS)
