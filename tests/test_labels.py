"""LabelCodec and infer_task: encode, decode, JSON round trip, bad labels."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from textclass.errors import DataError
from textclass.labels import LabelCodec, infer_task


def roundtrip(codec: LabelCodec) -> LabelCodec:
    return LabelCodec.from_dict(json.loads(json.dumps(codec.to_dict())))


def test_infer_task():
    assert infer_task([0, 1, 1]) == "binary"
    assert infer_task(["a", "b", "c"]) == "multiclass"
    assert infer_task([("a",), ["b", "c"], ()]) == "multilabel"
    with pytest.raises(DataError, match="mix single values and lists"):
        infer_task(["a", ("b",)])


def test_binary_strings_encode_decode():
    codec = LabelCodec().fit(["spam", "ham", "ham"])
    assert codec.task_ == "binary"
    assert codec.classes_.tolist() == ["ham", "spam"]
    assert codec.transform(["ham", "spam"]).tolist() == [0, 1]
    assert codec.inverse_transform(np.array([1, 0])).tolist() == ["spam", "ham"]


def test_int_labels_stay_int_through_json():
    codec = roundtrip(LabelCodec().fit([1, 0, 1]))
    assert codec.classes_.dtype.kind == "i"
    decoded = codec.inverse_transform([1, 0])
    assert decoded.tolist() == [1, 0] and all(type(v) is int for v in decoded.tolist())
    assert codec.transform(np.array([0, 1], dtype=np.int64)).tolist() == [0, 1]


def test_str_digit_labels_stay_str_through_json():
    codec = roundtrip(LabelCodec().fit(["1", "0"]))
    assert codec.inverse_transform([1]).tolist() == ["1"]
    with pytest.raises(DataError, match="unknown label 1"):
        codec.transform([1])


def test_multiclass():
    codec = LabelCodec().fit(["tech", "sport", "politics", "sport"])
    assert codec.task_ == "multiclass"
    assert codec.transform(["sport", "tech"]).tolist() == [1, 2]
    assert roundtrip(codec).inverse_transform([0, 2]).tolist() == ["politics", "tech"]


def test_multilabel_indicator_and_tuples():
    y = [("joy", "love"), ("anger",), ()]
    codec = roundtrip(LabelCodec().fit(y))
    assert codec.task_ == "multilabel"
    assert codec.classes_.tolist() == ["anger", "joy", "love"]
    ind = codec.transform(y)
    assert ind.dtype == np.int8 and ind.tolist() == [[0, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert codec.inverse_transform(ind).tolist() == [("joy", "love"), ("anger",), ()]


def test_nan_label_named_by_position():
    with pytest.raises(DataError, match=r"missing \(NaN/None\) label\(s\) at position\(s\) 1, 3"):
        LabelCodec().fit(["a", math.nan, "b", None])


def test_single_class_refused():
    with pytest.raises(DataError, match=r"one class only \('pos'\)"):
        LabelCodec().fit(["pos", "pos"])


def test_mixed_types_refused():
    with pytest.raises(DataError, match="mix types"):
        LabelCodec().fit([1, "a", 2])


def test_unknown_label_refused():
    codec = LabelCodec().fit(["a", "b"])
    with pytest.raises(DataError, match="unknown label 'c'; expected one of 'a', 'b'"):
        codec.transform(["a", "c"])
