"""tfidf-linear's held-out calibration on GoEmotions: hold-out share and the hold-out SVM's tolerance.

On large data ``CalibratedLinearSVC`` fits, per tag, one SVM on all rows but a stratified hold-out
(its margins on the hold-out fit Platt's sigmoid) and the final SVM on all rows. This measures,
on the model's own TF-IDF features of all 43,410 training comments and 28 tags, what the
hold-out fits cost (CPU time, as a multiple of the 28 final SVMs') and how good the resulting
probabilities are on the 5,427 test comments: the per-tag sigmoids applied to the final SVMs'
(``FINAL_TOL``) test margins, scored by mean log loss over the tags and micro- / macro-F1 at
p > 0.5. The row marked "default" is what textclass ships (``holdout=0.2``, ``CALIBRATION_TOL``).

A second table varies the final SVMs' tolerance instead (the default hold-out's sigmoids applied to
each): their CPU time as a multiple of LinearSVC's default ``tol=1e-4`` (the plain recipe's), the
calibrated scores as above and the micro-F1 of the plain rule (margin > 0), against the default's.

    python bench/bench_calibration.py              # all training comments
    python bench/bench_calibration.py --n 10000    # the first 10,000 only
    python bench/bench_calibration.py --tables final   # the final SVMs' tolerance only
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

CONFIGS = ((0.2, 1e-4), (0.2, 1e-2), (0.2, 1e-1), (0.2, 0.3), (0.2, 1.0), (0.3, 1e-1), (0.5, 1e-1))
FINAL_TOLS = (1e-4, 1e-3, 1e-2, 3e-2, 1e-1)


def scores(Y_test: np.ndarray, p: np.ndarray) -> str:
    """Mean per-tag log loss, micro- and macro-F1 at p > 0.5, as table cells."""
    from sklearn.metrics import f1_score, log_loss

    loss = np.mean([log_loss(Y_test[:, j], p[:, j], labels=[0, 1]) for j in range(p.shape[1])])
    return (f"{loss:.5f} | {f1_score(Y_test, p > 0.5, average='micro'):.4f} | "
            f"{f1_score(Y_test, p > 0.5, average='macro', zero_division=0):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="training comments (default: all)")
    parser.add_argument("--tables", choices=("both", "holdout", "final"), default="both",
                        help="the hold-out sweep, the final SVMs' tolerance sweep, or both (default)")
    args = parser.parse_args()
    from bench_scale import load
    from scipy.special import expit
    from sklearn.metrics import f1_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import MultiLabelBinarizer
    from sklearn.svm import LinearSVC

    from textclass.models.linear import CALIBRATION_TOL, FINAL_TOL, _platt, build_tfidf_linear

    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    (train, y_train), (test, y_test) = load("goemotions", args.n)
    vectorizer = build_tfidf_linear(random_state=0).named_steps["vectorizer"]
    X, X_test = vectorizer.fit_transform(train), vectorizer.transform(test)
    codec = MultiLabelBinarizer().fit(y_train)
    Y, Y_test = codec.transform(y_train), codec.transform(y_test)
    configs = CONFIGS if args.tables != "final" else ((0.2, CALIBRATION_TOL),)
    tols = FINAL_TOLS if args.tables != "holdout" else (FINAL_TOL,)  # 1e-4 only as the final table's base
    proba = {c: np.empty(Y_test.shape) for c in configs}
    cpu = dict.fromkeys(configs, 0.0)
    final_cpu, final_proba = dict.fromkeys(tols, 0.0), {t: np.empty(Y_test.shape) for t in tols}
    final_margins = {t: np.empty(Y_test.shape) for t in tols}
    for j in range(Y.shape[1]):
        y = Y[:, j]
        for tol in tols:
            start = time.process_time()
            final_margins[tol][:, j] = LinearSVC(tol=tol, random_state=0).fit(X, y).decision_function(X_test)
            final_cpu[tol] += time.process_time() - start
        test_margins = final_margins[FINAL_TOL][:, j]
        for holdout, tol in configs:
            start = time.process_time()
            rest, held = train_test_split(np.arange(len(y)), test_size=holdout, stratify=y, random_state=0)
            svm = LinearSVC(tol=tol, random_state=0).fit(X[rest], y[rest])
            a, b = _platt(svm.decision_function(X[held]), y[held].astype(bool))
            cpu[holdout, tol] += time.process_time() - start
            proba[holdout, tol][:, j] = expit(a * test_margins + b)
            if (holdout, tol) == (0.2, CALIBRATION_TOL):
                for final in tols:
                    final_proba[final][:, j] = expit(a * final_margins[final][:, j] + b)
        print(f"  tag {j + 1}/{Y.shape[1]} {codec.classes_[j]}", flush=True)
    base = final_cpu[FINAL_TOL]
    print(f"\nGoEmotions, {X.shape[0]:,} training comments, {Y.shape[1]} tags; "
          f"final SVMs (tol {FINAL_TOL:g}) {base:.1f} s CPU")
    if args.tables != "final":
        print("| hold-out | tol | hold-out fits CPU s | x final SVMs | mean log loss | micro-F1 | macro-F1 |")
        print("|---|---|---|---|---|---|---|")
        for (holdout, tol), p in proba.items():
            mark = " (default)" if (holdout, tol) == (0.2, CALIBRATION_TOL) else ""
            print(f"| {holdout:.0%} | {tol:g}{mark} | {cpu[holdout, tol]:.1f} | {cpu[holdout, tol] / base:.2f}x | "
                  f"{scores(Y_test, p)} |")
    if args.tables != "holdout":
        print("\n| final SVM tol | final fits CPU s | x tol 1e-4 | mean log loss | micro-F1 | macro-F1 | "
              "margin > 0 micro-F1 |")
        print("|---|---|---|---|---|---|---|")
        for tol in tols:
            mark = " (default)" if tol == FINAL_TOL else ""
            print(f"| {tol:g}{mark} | {final_cpu[tol]:.1f} | {final_cpu[tol] / final_cpu[1e-4]:.2f}x | "
                  f"{scores(Y_test, final_proba[tol])} | "
                  f"{f1_score(Y_test, final_margins[tol] > 0, average='micro'):.4f} |")
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
