"""textclass.compare: interval and test statistics on known numbers, the CV engine on small slices
of real data (binary, multi-class, cross-domain, a Keras model), and the CLI's bad-input exits."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import real_dataset
from scipy import stats

from textclass.cli import main
from textclass.compare import compare, corrected_ttest, cross_domain_table, t_interval, wilson_interval

A = [0.80, 0.82, 0.78, 0.81, 0.79, 0.83, 0.80, 0.81, 0.79, 0.82]
D = [0.01, 0.02, 0.00, 0.03, 0.01, 0.02, -0.01, 0.02, 0.01, 0.01]
B = [a - d for a, d in zip(A, D)]


def test_t_interval_on_known_numbers():
    # mean 0.80, s^2 = 0.00025; corrected var (1/5 + 0.25) * s^2; t(0.975, 4) = 2.776445
    mean, lo, hi = t_interval([0.80, 0.82, 0.78, 0.81, 0.79], test_train_ratio=0.25)
    half = 2.7764451051977987 * math.sqrt(0.45 * 0.00025)
    assert mean == pytest.approx(0.80)
    assert (lo, hi) == pytest.approx((0.80 - half, 0.80 + half))
    # without the correction it is scipy's ordinary t-interval
    plain = stats.t.interval(0.95, 9, loc=np.mean(A), scale=stats.sem(A))
    assert t_interval(A)[1:] == pytest.approx(plain)
    # the correction widens it: 10-fold CV (n_test/n_train = 1/9)
    _, clo, chi = t_interval(A, test_train_ratio=1 / 9)
    assert chi - clo == pytest.approx((plain[1] - plain[0]) * math.sqrt((0.1 + 1 / 9) / 0.1))


def test_corrected_ttest_against_scipy_on_a_hand_example():
    t0, p0 = corrected_ttest(A, B, test_train_ratio=0.0)
    ref = stats.ttest_rel(A, B)
    assert (t0, p0) == pytest.approx((ref.statistic, ref.pvalue))
    t, p = corrected_ttest(A, B, test_train_ratio=1 / 9)
    d = np.array(D)
    t_hand = d.mean() / math.sqrt((1 / 10 + 1 / 9) * d.var(ddof=1))
    assert t == pytest.approx(t_hand)
    assert p == pytest.approx(2 * stats.t.sf(abs(t_hand), 9))
    assert p > p0  # the correction is conservative
    assert corrected_ttest(A, A, test_train_ratio=0.1) == (0.0, 1.0)


def test_wilson_interval():
    assert wilson_interval(80, 100) == pytest.approx((0.711171, 0.866633), abs=1e-6)


@pytest.fixture(scope="module")
def uci_slice():
    df = real_dataset("uci-sentiment")
    return df.groupby("source", sort=False).head(120).reset_index(drop=True)


def test_binary_compare_by_group_with_paired_tests(uci_slice):
    result = compare(uci_slice, ["bow-logreg", "nbsvm"], cv=4, by="source", n_jobs=1)
    s = result.summary
    assert list(s["group"]) == ["yelp", "yelp", "amazon", "amazon", "imdb", "imdb"]
    assert s.groupby("group")["best"].sum().tolist() == [1, 1, 1]
    assert (s["folds"] == 4).all()
    for r in s.itertuples():
        assert r.accuracy_lo <= r.accuracy <= r.accuracy_hi and r.f1_macro_lo <= r.f1_macro <= r.f1_macro_hi
        assert math.isnan(r.p) if r.best else 0 <= r.p <= 1
    # the table's interval is the corrected t-interval of the per-fold scores
    folds = result.folds.query("group == 'yelp' and model == 'nbsvm'").sort_values("fold")
    mean, lo, hi = t_interval(folds["accuracy"], test_train_ratio=30 / 90)
    row = s.query("group == 'yelp' and model == 'nbsvm'").iloc[0]
    assert (row.accuracy, row.accuracy_lo, row.accuracy_hi) == pytest.approx((mean, lo, hi))
    # same folds for every model: the test sets have identical sizes fold by fold
    sizes = result.folds.pivot_table(index=["group", "fold"], columns="model", values="n_test")
    assert (sizes["bow-logreg"] == sizes["nbsvm"]).all()
    md = result.to_markdown()
    assert "Nadeau-Bengio" in md and "corrected resampled paired t-test" in md


def test_multiclass_compare_reports_macro_f1():
    df = real_dataset("bbc-news").groupby("label").head(12).reset_index(drop=True)
    result = compare(df, ["bow-logreg", "tfidf-linear"], cv=3, metric="f1_macro", n_jobs=2)
    s = result.summary
    assert set(s["model"]) == {"bow-logreg", "tfidf-linear"} and set(s["group"]) == {"all"}
    assert s["f1_macro"].between(0, 1).all() and s["accuracy"].between(0.2, 1).all()
    best = s.loc[s["best"]].iloc[0]
    assert best["f1_macro"] == s["f1_macro"].max()


def test_multilabel_compare_scores_tag_sets_and_takes_threshold_auto():
    from test_threshold import weak_tags

    texts, tags = weak_tags(300, seed=3)
    df = pd.DataFrame({"text": texts, "label": tags})
    fixed = compare(df, ["bow-logreg"], cv=3, n_jobs=1).folds
    auto = compare(df, ["bow-logreg"], cv=3, n_jobs=1, params={"threshold": "auto"}).folds
    # accuracy is subset accuracy: every tag of a text right; the empty tag set counts as a set
    assert fixed["accuracy"].between(0.5, 1).all() and len(fixed) == 3
    assert auto["f1_macro"].mean() > fixed["f1_macro"].mean()  # the rare tags are found
    assert not np.allclose(fixed["f1_micro"], fixed["accuracy"])  # micro-F1 over tags, not subset accuracy
    result = compare(df, ["bow-logreg", "nbsvm"], cv=3, n_jobs=1, metric="f1_micro")
    assert "| group | model | subset accuracy (95% CI) | macro-F1 (95% CI) | micro-F1 (95% CI) |" in result.to_markdown()
    s = result.summary
    assert s.loc[s["best"], "f1_micro"].iloc[0] == s["f1_micro"].max()
    assert (s.filter(like="_lo") >= 0).all().all() and (s.filter(like="_hi") <= 1).all().all()
    assert result.notes()[0].startswith("3-fold shuffled CV")  # tag sets are not stratified


def test_single_label_micro_f1_is_the_accuracy(uci_slice):
    result = compare(uci_slice, ["bow-logreg"], cv=3, n_jobs=1)
    np.testing.assert_allclose(result.folds["f1_micro"], result.folds["accuracy"])
    assert result.notes()[0].startswith("3-fold stratified CV")


def test_cross_domain_table_shape(uci_slice):
    cd = cross_domain_table(uci_slice, ["bow-logreg", "nbsvm"], by="source", n_jobs=1)
    assert len(cd) == 6
    assert {"group", "trained_on", "model", "accuracy", "accuracy_lo", "accuracy_hi", "f1_macro"} <= set(cd.columns)
    imdb = cd[cd["group"] == "imdb"].iloc[0]
    assert imdb["trained_on"] == "yelp+amazon" and imdb["n_train"] == 240 and imdb["n_test"] == 120
    assert (cd["accuracy_lo"] < cd["accuracy"]).all() and (cd["accuracy"] < cd["accuracy_hi"]).all()


def test_cli_compare_with_a_keras_model(tmp_path, uci_slice, capsys):
    data = tmp_path / "slice.csv"
    uci_slice.head(80).to_csv(data, index=False)
    rc = main(["compare", str(data), "-m", "bow-logreg,bow-dense", "--cv", "2", "-p", "epochs=2", "-j", "1",
               "-o", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "corrected resampled paired t-test" in captured.out and "Nadeau-Bengio" in captured.out
    summary = pd.read_csv(tmp_path / "out" / "summary.csv").set_index("model")
    assert math.isnan(summary.loc["bow-logreg", "epochs"])  # only the Keras model has epochs
    assert 1 <= summary.loc["bow-dense", "epochs"] <= 2
    assert (tmp_path / "out" / "accuracy.png").stat().st_size > 0


def test_cli_compare_cross_domain_from_a_file_with_a_group_column(tmp_path, uci_slice, capsys):
    data = tmp_path / "slice.csv"
    uci_slice.rename(columns={"source": "site"}).to_csv(data, index=False)
    rc = main(["compare", str(data), "-m", "bow-logreg,nbsvm", "--cv", "3", "--group-col", "site",
               "--cross-domain", "-j", "1", "-o", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "cross-domain" in captured.out
    assert len(pd.read_csv(tmp_path / "out" / "summary.csv")) == 6
    cd = pd.read_csv(tmp_path / "out" / "cross_domain.csv")
    assert len(cd) == 6 and set(cd["trained_on"]) == {"amazon+imdb", "yelp+imdb", "yelp+amazon"}
    assert cd["in_domain_cv"].between(0, 1).all()


@pytest.mark.parametrize("args, message", [
    (["-m", "bow-logreg,cnnn"], "unknown model 'cnnn'"),
    (["-m", "bow-logreg", "--by", "sourse"], "did you mean 'source'"),
    (["-m", "bow-logreg", "-p", "num_filter=3"], "num_filter"),
    (["-m", "bow-logreg", "--cross-domain"], "--cross-domain needs groups"),
    (["-m", "bow-logreg", "--cv", "1"], "--cv must be at least 2"),
])
def test_cli_bad_inputs_exit_2_with_one_line(args, message, capsys):
    real_dataset("uci-sentiment")
    rc = main(["compare", "uci-sentiment", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert message in err and "\n" not in err
