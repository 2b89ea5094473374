"""textclass.data: built-in data sets on the real files, user files, bad input, splits."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from conftest import real_dataset

from textclass.cli import main
from textclass.data import cv_splits, decode, list_datasets, load_data, load_dataset, read_table, split_frame
from textclass.errors import DataError, DatasetError, ParameterError


# ---------------------------------------------------------------- built-in data sets, real files
def test_uci_sentiment_quoting_disabled():
    df = real_dataset("uci-sentiment")
    assert list(df.columns) == ["text", "label", "source"] and len(df) == 3000
    assert df["source"].unique().tolist() == ["yelp", "amazon", "imdb"]  # the tutorial's order
    counts = df.groupby("source")["label"].agg(["size", "sum"])
    assert counts["size"].tolist() == [1000] * 3 and counts["sum"].tolist() == [500] * 3
    assert not df["text"].str.endswith(" ").any()  # imdb's trailing spaces stripped
    assert df["label"].dtype.kind == "i"


def test_uci_sentiment_tutorial_parse_reproduces_748_imdb_rows():
    df = real_dataset("uci-sentiment", tutorial_parse=True)
    assert df["source"].value_counts().to_dict() == {"yelp": 1000, "amazon": 1000, "imdb": 748}


def test_tutorial_yelp_split():
    df = real_dataset("uci-sentiment")
    train, test = split_frame(df[df["source"] == "yelp"], test_size=0.25, random_state=1000)
    assert (len(train), len(test)) == (750, 250)
    assert train["text"].iloc[2] == "Of all the dishes, the salmon was the best, but all were great."


def test_sms_spam():
    df = real_dataset("sms-spam")
    assert list(df.columns) == ["text", "label"]
    assert df["label"].value_counts().to_dict() == {"ham": 4827, "spam": 747}


def test_bbc_news_with_its_latin1_byte():
    df = real_dataset("bbc-news")
    assert len(df) == 2225 and sorted(df["label"].unique()) == ["business", "entertainment", "politics", "sport", "tech"]
    article = df.loc[df["file"] == "sport/199.txt", "text"].item()
    assert article.startswith("Chelsea sack Mutu\n") and "a £15.8m signing" in article


def test_goemotions_multilabel_with_splits():
    df = real_dataset("goemotions")
    assert df["split"].value_counts().to_dict() == {"train": 43410, "test": 5427, "dev": 5426}
    assert len({tag for tags in df["label"] for tag in tags}) == 28
    assert df["label"].iloc[0] == ("neutral",)  # id 27
    assert all(isinstance(v, tuple) and v for v in df["label"])
    dev = real_dataset("goemotions", split="dev")
    assert len(dev) == 5426 and set(dev["split"]) == {"dev"}


def test_load_dataset_refuses_bad_options():
    real_dataset("uci-sentiment")
    with pytest.raises(ParameterError, match="no predefined splits"):
        real_dataset("uci-sentiment", split="train")
    with pytest.raises(ParameterError, match=r"no split 'trian' \(did you mean 'train'\?\)"):
        real_dataset("goemotions", split="trian")


def test_list_datasets_and_cli_listing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TEXTCLASS_DATA", str(tmp_path))
    table = list_datasets()
    assert table["name"].tolist() == ["uci-sentiment", "sms-spam", "bbc-news", "goemotions", "glove-6b-50d"]
    assert not table["cached"].any()
    (tmp_path / "sms-spam").mkdir()
    (tmp_path / "sms-spam" / "SMSSpamCollection").write_text("ham\thi\n")
    assert list_datasets().set_index("name")["cached"].to_dict()["sms-spam"]
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "goemotions" in out and "multilabel" in out and "5,574" in out


# ---------------------------------------------------------------- user files
def test_csv_autodetects_columns_and_keeps_quotes(fixtures):
    df = read_table(fixtures / "data_reviews.csv")
    assert df.columns.tolist() == ["text", "label"]
    assert df["text"].tolist()[0] == 'Great, "really" great food.'
    assert df["text"].tolist()[2] == "Two lines\nin one review"
    assert df["label"].tolist() == ["pos", "neg", "pos", "neg"]


def test_int_labels_and_group(fixtures):
    df = read_table(fixtures / "data_reviews.csv", label_col="stars", group_col="sentiment")
    assert df["label"].tolist() == [5, 2, 4, 1] and df["group"].tolist() == ["pos", "neg", "pos", "neg"]


def test_tsv_quotes_are_characters(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text('sentence\tlabel\nA "quoted start\t1\nnext line\t0\nthird "\t1\n')
    df = read_table(path)
    assert len(df) == 3 and df["text"].iloc[0] == 'A "quoted start'


def test_headerless_tsv_like_uci(tmp_path):
    path = tmp_path / "yelp.txt"
    path.write_text("Wow... Loved this place.\t1\nCrust is not good.\t0\n")
    df = read_table(path)
    assert df["text"].tolist() == ["Wow... Loved this place.", "Crust is not good."]
    assert df["label"].tolist() == [1, 0]


def test_longest_string_column_is_the_text(tmp_path):
    path = tmp_path / "x.csv"
    pd.DataFrame({"kind": ["a", "b"], "blurb": ["a long piece of text", "another long one"]}).to_csv(path, index=False)
    df = read_table(path)
    assert df["text"].tolist() == ["a long piece of text", "another long one"] and df["label"].tolist() == ["a", "b"]


def test_jsonl_multilabel_lists(tmp_path):
    path = tmp_path / "x.jsonl"
    rows = [{"text": "so happy", "labels": ["joy", "love"]}, {"text": "grr", "labels": ["anger"]}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    df = read_table(path)
    assert df["label"].tolist() == [("joy", "love"), ("anger",)]


def test_csv_multilabel_delimited_and_json_strings(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('text,tags,json\nso happy,joy| love,"[""joy"", ""love""]"\ngrr,anger,"[""anger""]"\n')
    assert read_table(path, label_col="tags", label_sep="|")["label"].tolist() == [("joy", "love"), ("anger",)]
    assert read_table(path, label_col="json")["label"].tolist() == [("joy", "love"), ("anger",)]


def test_parquet(tmp_path):
    path = tmp_path / "x.parquet"
    pd.DataFrame({"message": ["hi there", "win cash"], "target": ["ham", "spam"], "src": ["a", "b"]}).to_parquet(path)
    df = read_table(path, group_col="src")
    assert df.to_dict("list") == {"text": ["hi there", "win cash"], "label": ["ham", "spam"], "group": ["a", "b"]}


def test_folder_of_label_subfolders_with_stray_latin1_byte(fixtures):
    df = read_table(fixtures / "data_folder")
    assert sorted(df["label"]) == ["neg", "neg", "pos", "pos"]
    assert "Cost £15 and worth nothing.\n" in df["text"].tolist()


def test_decode_keeps_utf8_and_rescues_stray_bytes():
    assert decode("café ".encode() + b"\xa3 \x92") == "café £ \u2019"
    assert decode(b"\xef\xbb\xbfBOM") == "BOM"


def test_load_data_by_name_or_path(fixtures):
    assert len(load_data(str(fixtures / "data_reviews.csv"))) == 4
    assert len(real_dataset("sms-spam")) == len(load_data("sms-spam"))


def test_unlabelled_text_for_prediction(fixtures):
    assert read_table(fixtures / "data_reviews.csv", labels=False).columns.tolist() == ["text"]


# ---------------------------------------------------------------- bad input: message and exit code
def cli_error(args: list[str], capsys) -> str:
    """Run the CLI; assert exit 2 and a single line on stderr; return it."""
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def train_args(path, tmp_path, *extra: str) -> list[str]:
    return ["train", str(path), "-o", str(tmp_path / "run"), *extra]


BAD_FILES = {
    "empty": ("x.csv", "", r"x\.csv: file is empty; expected a header line"),
    "header only": ("x.csv", "text,label\n", r"x\.csv: no rows"),
    "one class": ("x.csv", "text,label\na,pos\nb,pos\n", r"column 'label' holds one class only \('pos'\)"),
    "empty texts": (
        "x.csv",
        'text,label\nfine,a\n,b\n"   ",a\nok,b\n',
        r"x\.csv: 2 empty or missing text\(s\) in column 'text' at lines 3, 4; expected a non-empty text",
    ),
    "nan labels": ("x.csv", "text,label\nfine,a\ngood,\nok,b\n", r"1 missing label\(s\) in column 'label' at line 3"),
    "malformed csv": ("x.csv", "text,label\nfine,a\nyes, and no,b\n", r"x\.csv: malformed line 3: expected 2 fields, saw 3"),
    "malformed tsv": ("x.tsv", "text\tlabel\nfine\ta\nsplit\there\tb\n", r"malformed line 3: expected 2 fields, saw 3"),
    "malformed jsonl": ("x.jsonl", '{"text": "a", "label": 1}\n{"text": "b", label: 0}\n', r"malformed JSON on line 2"),
    "jsonl not objects": ("x.jsonl", '["a", 1]\n', r"line 1 is a JSON list; expected an object"),
    "unsupported extension": ("x.xlsx", "binary", r"unsupported file type '\.xlsx'; expected \.csv"),
    "no label column": ("x.csv", "text,a,b\nhi,1,2\n", r"no label column found; name it with --label-col"),
    "bad parquet": ("x.parquet", "not parquet", r"x\.parquet: not a readable Parquet file"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files(case, tmp_path, capsys):
    name, content, message = BAD_FILES[case]
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_table(path)
    assert re.search(message, cli_error(train_args(path, tmp_path), capsys))


def test_misspelled_column_suggests_the_closest(fixtures, tmp_path, capsys):
    path = fixtures / "data_reviews.csv"
    message = r"no text column 'reviw' \(did you mean 'review'\?\); columns are: id, review, stars, sentiment"
    with pytest.raises(DataError, match=message):
        read_table(path, text_col="reviw")
    assert "(did you mean 'review'?)" in cli_error(train_args(path, tmp_path, "--text-col", "reviw"), capsys)
    with pytest.raises(DataError, match=r"no label column 'sentimant' \(did you mean 'sentiment'\?\)"):
        read_table(path, label_col="sentimant")


def test_empty_text_in_a_folder_names_the_file(tmp_path):
    for label, text in (("a", "x"), ("b", "")):
        (tmp_path / label).mkdir()
        (tmp_path / label / "1.txt").write_text(text)
    with pytest.raises(DataError, match=r"empty or missing text\(s\) in column 'text' at file b/1\.txt"):
        read_table(tmp_path)


def test_missing_path_and_unknown_name(tmp_path, capsys):
    with pytest.raises(DataError, match="no such file or folder"):
        load_data(str(tmp_path / "nope.csv"))
    with pytest.raises(DatasetError, match=r"'sms-spma' is neither a file nor a built-in data set \(did you mean 'sms-spam'\?\)"):
        load_data("sms-spma")
    assert "did you mean 'sms-spam'" in cli_error(train_args("sms-spma", tmp_path), capsys)
    with pytest.raises(DatasetError, match=r"unknown data set 'bbc-new' \(did you mean 'bbc-news'\?\)"):
        load_dataset("bbc-new")


# ---------------------------------------------------------------- splits
def test_split_frame_stratify_keeps_proportions():
    df = pd.DataFrame({"text": [f"t{i}" for i in range(100)], "label": ["a"] * 80 + ["b"] * 20})
    train, test = split_frame(df, test_size=0.25, random_state=0, stratify=True)
    assert test["label"].value_counts().to_dict() == {"a": 20, "b": 5}
    assert sorted(train.index.tolist() + test.index.tolist()) == list(range(100))


def test_split_frame_refuses_stratified_multilabel():
    df = pd.DataFrame({"text": ["a", "b"], "label": [("x",), ("y",)]})
    with pytest.raises(ParameterError, match="single-label"):
        split_frame(df, stratify=True)


def test_cv_splits_stratified_and_multilabel():
    y = ["a"] * 40 + ["b"] * 10
    folds = list(cv_splits(y, n_splits=5, n_repeats=2, random_state=0))
    assert len(folds) == 10
    for train_idx, test_idx in folds:
        assert np.sum(np.asarray(y)[test_idx] == "b") == 2 and len(train_idx) + len(test_idx) == 50
    multi = [("x",), ("x", "y")] * 10
    folds = list(cv_splits(multi, n_splits=4))
    assert len(folds) == 4 and sorted(np.concatenate([t for _, t in folds]).tolist()) == list(range(20))
    with pytest.raises(DataError, match="rarest class has 1 item"):
        list(cv_splits(["a", "a", "b"], n_splits=2))
