"""The ``textclass`` command line: a thin layer over the Python API.

Every command is a few lines that call a function a user could call too. Errors from the
``textclass.errors`` family are printed on one line and give exit status 2.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import rich.markup
import typer
from rich.console import Console

from textclass import __version__
from textclass.errors import TextclassError

app = typer.Typer(
    name="textclass",
    help="Practical text classification: train, evaluate, compare and serve text classifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"textclass {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Practical text classification: train, evaluate, compare and serve text classifiers."""


def parse_params(pairs: list[str] | None) -> dict[str, object]:
    """Turn ``-p key=value`` options into hyperparameters: numbers, booleans and None are parsed,
    anything else stays a string."""
    import ast

    from textclass.errors import ParameterError

    params: dict[str, object] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"-p {pair!r}: expected key=value, e.g. -p num_filters=64")
        lowered = raw.strip().lower()
        if lowered in ("true", "false", "none"):
            value: object = {"true": True, "false": False, "none": None}[lowered]
        else:
            try:
                value = ast.literal_eval(raw.strip())
            except (ValueError, SyntaxError):
                value = raw
        params[key.strip()] = value
    return params


TEXT_COL = typer.Option(None, "--text-col", help="Column holding the texts (auto-detected when obvious).")
LABEL_COL = typer.Option(None, "--label-col", help="Column holding the labels (auto-detected when obvious).")
LABEL_SEP = typer.Option(
    None, "--label-sep",
    help="Separator of multi-label tags in a label string, e.g. ',' (default: detected; '' never splits).",
)
PARAMS = typer.Option(None, "-p", "--param", help="Model hyperparameter as key=value; repeatable.")
EPOCHS = typer.Option(None, "--epochs", help="Training epochs of Keras models (default: the model's own).")
BATCH_SIZE = typer.Option(None, "--batch-size", help="Batch size of Keras models (default: the model's own).")
TEST_SIZE = typer.Option(0.25, "--test-size", help="Share of rows held out for the final test score.")
STRATIFY = typer.Option(False, "--stratify", help="Keep class shares equal in train and test.")


def _hyperparameters(params: list[str] | None, epochs: int | None, batch_size: int | None) -> dict[str, object]:
    """``-p`` options plus --epochs / --batch-size, when given, as one dict of hyperparameters."""
    hyper = parse_params(params)
    hyper.update({k: v for k, v in (("epochs", epochs), ("batch_size", batch_size)) if v is not None})
    return hyper


@app.command()
def train(
    data: str = typer.Argument(..., help="A built-in data set name (see `textclass datasets`) or a data file."),
    model: str = typer.Option("bow-logreg", "-m", "--model", help="Registry model name (see `textclass models`)."),
    out: Path = typer.Option(None, "-o", "--out", help="Run directory to write (default: runs/MODEL)."),
    text_col: str = TEXT_COL,
    label_col: str = LABEL_COL,
    label_sep: str = LABEL_SEP,
    group_col: str = typer.Option(None, "--group-col", help="Column holding a group (e.g. source): "
                                  "metrics per group in the report."),
    test_size: float = TEST_SIZE,
    seed: int = typer.Option(1000, "--seed", help="Random seed for the split and the model."),
    stratify: bool = STRATIFY,
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
    params: list[str] = PARAMS,
) -> None:
    """Train a model, score it on a held-out split and write a run directory.

    Example: textclass train uci-sentiment -m cnn -o runs/cnn -p num_filters=64
    """
    from textclass.constraints import check_model_params
    from textclass.data import load_data
    from textclass.files import check_out_dir
    from textclass.train import train_run

    hyper = _hyperparameters(params, epochs, batch_size)
    check_model_params(model, hyper)
    out = check_out_dir(out or Path("runs") / model)
    frame = load_data(data, text_col=text_col, label_col=label_col, label_sep=label_sep, group_col=group_col)
    with _epoch_progress(model) as callbacks:
        result = train_run(
            frame, model, out, test_size=test_size, seed=seed, stratify=stratify, params=hyper, callbacks=callbacks,
            group_col=group_col,
        )
    _print_metrics(result.metrics, title=f"{model} on {data}: held-out metrics")
    typer.echo(f"wrote {result.out_dir}/")


@app.command()
def evaluate(
    run: Path = typer.Argument(..., help="A run directory written by `textclass train`, a saved model directory or an export."),
    data: str = typer.Argument(..., help="A built-in data set name or a data file with texts and labels."),
    text_col: str = TEXT_COL,
    label_col: str = LABEL_COL,
    label_sep: str = LABEL_SEP,
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Score a trained model on labelled data: accuracy, precision/recall/F1, ROC-AUC, confusion.

    Example: textclass evaluate runs/cnn reviews.csv --text-col review --label-col stars
    """
    import json

    from textclass.data import load_data
    from textclass.evaluate import evaluate_model
    from textclass.predict import load_predictor

    clf = load_predictor(run)
    frame = load_data(data, text_col=text_col, label_col=label_col, label_sep=label_sep)
    metrics = evaluate_model(clf, frame["text"], frame["label"])
    if as_json:
        typer.echo(json.dumps(metrics, indent=2))
    else:
        _print_metrics(metrics, title=f"{run} on {data}")


@app.command()
def predict(
    run: Path = typer.Argument(..., help="A run directory written by `textclass train`, a saved model directory or an export."),
    texts: list[str] = typer.Argument(None, help="Texts to classify; omit to read --input or stdin."),
    inputs: list[str] = typer.Option(None, "-i", "--input", help="File of texts or a glob ('corpus/*.parquet'); "
                                     "repeatable, formats may mix: .txt (one per line), .csv, .tsv, .jsonl, .parquet."),
    output: Path = typer.Option(None, "--output", help="Write predictions here (.jsonl, .csv or .parquet; with --dask "
                                "a folder of Parquet part files) instead of stdout."),
    text_col: str = TEXT_COL,
    id_col: str = typer.Option(None, "--id-col", help="Column of the input to copy into each prediction (as text), "
                               "beside file and row."),
    chunk_size: int = typer.Option(2048, "--chunk-size", help="Texts per chunk: memory stays bounded on any input size."),
    stream: bool = typer.Option(False, "--stream", help="Answer stdin line by line, flushing each answer (a live feed)."),
    dask: str = typer.Option(None, "--dask", help="Predict --input on a Dask cluster: 'local' (one worker process per "
                             "core, or --jobs) or a scheduler address such as tcp://10.0.0.5:8786."),
    jobs: int = typer.Option(None, "-j", "--jobs", help="Worker processes of --dask local (default: one per core)."),
) -> None:
    """Predict labels and class probabilities, as JSON Lines (or CSV/Parquet with --output x.csv/x.parquet).

    Rows predicted from files carry the file and the row (from 0) they come from.

    Examples: textclass predict runs/cnn "so good!" "never again" ;
    textclass predict runs/cnn -i reviews.csv --text-col review --output predictions.csv ;
    textclass predict runs/cnn -i 'corpus/*.parquet' -i 'extra/*.jsonl' --output predictions.parquet ;
    textclass predict runs/cnn -i 'corpus/*.parquet' --dask local --output predictions/ ;
    tail -f tweets.txt | textclass predict runs/cnn --stream
    """
    from textclass.errors import ParameterError
    from textclass.files import check_out_file
    from textclass.predict import (
        iter_text_chunks,
        load_predictor,
        predict_chunks,
        predict_files,
        stream_predictions,
        write_predictions,
    )

    if stream and (texts or inputs or output is not None):
        raise ParameterError("--stream reads stdin and writes stdout; it takes no texts, --input or --output")
    if texts and inputs:
        raise ParameterError("give texts or --input, not both")
    if dask is not None and not inputs:
        raise ParameterError("--dask predicts --input files; give --input and --output")
    if jobs is not None and dask != "local":
        raise ParameterError("--jobs sets the worker processes of --dask local")
    if output is not None and dask is None:
        check_out_file(output)
    if inputs:
        count = predict_files(run, inputs, output, text_col=text_col, id_col=id_col, chunk_size=chunk_size,
                              dask=dask, jobs=jobs, progress=_progress_line)
    else:
        if id_col is not None:
            raise ParameterError("--id-col names a column of --input files")
        clf = load_predictor(run)
        if stream:
            stream_predictions(clf, sys.stdin.fileno(), sys.stdout, chunk_size=chunk_size)
            return
        chunks = iter([list(texts)]) if texts else iter_text_chunks(sys.stdin, chunk_size=chunk_size)
        count = write_predictions(predict_chunks(clf, chunks), output)
    if output is not None:
        err.print(f"wrote {count:,} predictions to {output}", markup=False, highlight=False, soft_wrap=True)


def _progress_line(line: str) -> None:
    """One plain line on stderr, in a terminal or a log file alike."""
    err.print(line, markup=False, highlight=False, soft_wrap=True)


def _print_metrics(metrics: dict, *, title: str) -> None:
    from rich.table import Table

    console = Console()
    console.print(title, style="bold", markup=False, highlight=False)
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    from textclass.evaluate import METRIC_KEYS

    for key in ("n", *METRIC_KEYS):
        if key in metrics and not (key == "accuracy" and "subset_accuracy" in metrics):
            value = metrics[key]
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)
    per_class = Table()
    for column in ("class", "precision", "recall", "f1", "support"):
        per_class.add_column(column, justify="left" if column == "class" else "right")
    for name, row in metrics["per_class"].items():
        per_class.add_row(name, *(f"{row[k]:.4f}" for k in ("precision", "recall", "f1")), str(row["support"]))
    console.print(per_class)
    if metrics.get("per_group"):
        per_group = Table()
        for column in ("group", "n", "accuracy (95% Wilson)", "macro-F1"):
            per_group.add_column(column, justify="left" if column == "group" else "right")
        for name, row in metrics["per_group"].items():
            per_group.add_row(name, str(row["n"]), f"{row['accuracy']:.4f} [{row['accuracy_lo']:.3f}, "
                              f"{row['accuracy_hi']:.3f}]", f"{row['f1_macro']:.4f}")
        console.print(per_group)


@contextlib.contextmanager
def _epoch_progress(description: str) -> Iterator[list]:
    """A progress bar over epochs for Keras training, as a list of callbacks to pass to fit."""
    from textclass.train import EpochProgress

    with EpochProgress(description, console=err) as callback:
        yield [callback]


# --- datasets (owner: data) ----------------------------------------------------------------
datasets_app = typer.Typer(
    help="Built-in data sets: list them, or fetch one into the cache ($TEXTCLASS_DATA).",
    invoke_without_command=True,
)
app.add_typer(datasets_app, name="datasets")


@datasets_app.callback()
def datasets(ctx: typer.Context) -> None:
    """List the built-in data sets (name, task, rows, download size, cached or not).

    Example: textclass datasets fetch uci-sentiment
    """
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from textclass.data import data_home, list_datasets

    table = Table(title="textclass data sets", caption=f"cache: {data_home()}")
    for column in ("name", "task", "rows", "size", "cached", "summary"):
        table.add_column(column, justify="right" if column in ("rows", "size") else "left")
    for row in list_datasets().itertuples():
        size = f"{row.size:,.0f} MB" if row.size >= 10 else f"{row.size:.2g} MB"
        table.add_row(row.name, row.task, f"{row.rows:,}", size, "yes" if row.cached else "no", row.summary)
    Console().print(table)


@datasets_app.command("fetch")
def datasets_fetch(
    name: str = typer.Argument(..., help="Data set name, e.g. uci-sentiment (see: textclass datasets)."),
    force: bool = typer.Option(False, "--force", help="Download again even if cached."),
) -> None:
    """Download a data set from its official home, verify it, and install it atomically.

    Example: textclass datasets fetch sms-spam
    """
    from textclass.data import fetch_dataset

    typer.echo(fetch_dataset(name, progress=True, force=force))


@datasets_app.command("verify")
def datasets_verify(
    name: str = typer.Argument(None, help="Data set name (default: every cached one)."),
) -> None:
    """Re-check the sha256 of cached data against the recorded digests (exit 2 naming a bad file).

    Example: textclass datasets verify uci-sentiment
    """
    from textclass.data import DATASETS, get_info, verify_dataset

    names = [name] if name else [n for n, i in DATASETS.items() if i.is_cached()]
    for n in names:
        checked = verify_dataset(n)
        how = [f"sha256 of {', '.join(checked)}"] if checked else []
        typer.echo(f"{n}: ok ({'; '.join(how + (['shape and counts'] if get_info(n).check else []))})")
    if not names:
        typer.echo("no data set is cached; fetch one with: textclass datasets fetch NAME")


SEARCH_SETS = typer.Option(
    None, "-s", "--set",
    help="Search-space entry; repeatable: list 'num_filters=32,64,128', range 'learning_rate=1e-4..1e-2:log' "
    "(':int' for integers), or one value to fix it 'embedding_dim=50'. Replaces the model's default entry.",
)


@app.command()
def search(
    data: str = typer.Argument(..., help="A built-in data set name or a data file."),
    model: str = typer.Option("bow-logreg", "-m", "--model", help="Registry model name (see `textclass models`)."),
    out: Path = typer.Option(None, "-o", "--out", help="Run directory to write (default: runs/search-MODEL)."),
    sampler: str = typer.Option("tpe", "--sampler", help="grid, random (without replacement on lists) or tpe."),
    trials: int = typer.Option(20, "--trials", help="Finished trials wanted (complete + pruned); grid: at most the grid."),
    cv: int = typer.Option(4, "--cv", help="Stratified k-fold CV scoring each trial (training data only)."),
    outer_cv: int = typer.Option(None, "--outer-cv", help="Nested CV: estimate the whole search on K outer folds."),
    sets: list[str] = SEARCH_SETS,
    space_file: Path = typer.Option(None, "--space", help="Search space as a YAML or TOML file: name: a list of values, or a mapping low/high/log/int."),
    params: list[str] = PARAMS,
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
    scoring: str = typer.Option(None, "--scoring", help="scikit-learn scorer, e.g. f1_macro (default: accuracy)."),
    where: str = typer.Option(None, "--where", help="Keep rows where COLUMN=VALUE, e.g. --where source=yelp."),
    text_col: str = TEXT_COL,
    label_col: str = LABEL_COL,
    label_sep: str = LABEL_SEP,
    test_size: float = TEST_SIZE,
    seed: int = typer.Option(1000, "--seed", help="Random seed for the split, the folds, the sampler and the models."),
    stratify: bool = STRATIFY,
    storage: str = typer.Option(None, "--storage", help="SQLAlchemy URL of the study (default: sqlite:///OUT/study.db)."),
    study_name: str = typer.Option("textclass-search", "--study-name", help="Name of the study in the storage."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted study up to --trials finished trials."),
    jobs: int = typer.Option(1, "-j", "--jobs", help="Worker processes on this machine."),
    dask: str = typer.Option(None, "--dask", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786; needs a shared --storage."),
    prune: bool = typer.Option(True, "--prune/--no-prune", help="Stop trials whose running CV mean is below the median."),
) -> None:
    """Search a model's hyperparameters by cross-validation, refit the best, score it on held-out data.

    Example (the tutorial's experiment 8 on yelp): textclass search uci-sentiment --where source=yelp
    -m cnn --sampler random --trials 5 --cv 4 --epochs 20 --batch-size 10 -s embedding_dim=50

    Interrupted? Run the same command again with --resume. Use both cores: --jobs 2.
    """
    from textclass import search as s
    from textclass.constraints import check_model_params
    from textclass.files import check_out_dir
    from textclass.space import load_space_file, model_space, parse_assignments

    overrides = load_space_file(space_file) if space_file else {}
    overrides.update(parse_assignments(sets))
    fixed = _hyperparameters(params, epochs, batch_size)
    space = model_space(model, overrides=overrides, fixed=fixed)  # refuse bad names before loading data
    check_model_params(model, fixed)
    out = check_out_dir(out or Path("runs") / f"search-{model}")
    frame = s.load_where(data, text_col=text_col, label_col=label_col, where=where, label_sep=label_sep)
    result, metrics = s.search_run(
        frame, model, out, test_size=test_size, seed=seed, stratify=stratify, storage=storage, space=space,
        sampler=sampler, n_trials=trials, cv=cv, outer_cv=outer_cv, scoring=scoring, prune=prune,
        study_name=study_name, resume=resume, jobs=jobs, dask=dask, progress=True,
    )
    console = Console()
    console.print(s.results_table(result, title=f"{model} on {data}: {len(result.trials)} trials"))
    console.print(f"best (trial {result.best_trial}): {result.best_params}  CV {result.best_score:.4f} ± {result.best_std:.4f}")
    if result.nested_scores:
        console.print(f"nested CV ({len(result.nested_scores)} outer folds): {result.nested_mean:.4f} ± {result.nested_std:.4f}")
    searched = metrics.get("test_score")
    also = f", {searched['scoring']} {searched['value']:.4f}" if searched else ""
    console.print(f"held-out test accuracy of the refit best: {metrics['accuracy']:.4f}{also} (n={metrics['n']})")
    typer.echo(f"wrote {out}/")


@app.command()
def models() -> None:
    """List the model registry: name, kind, one-line summary and default hyperparameters.

    Example: textclass models
    """
    from rich.table import Table

    from textclass.models import available_models

    table = Table(title="textclass models")
    for column in ("name", "kind", "summary", "defaults"):
        table.add_column(column, overflow="fold")
    for spec in available_models():
        defaults = ", ".join(f"{k}={v}" for k, v in spec.defaults.items())
        table.add_row(spec.name, spec.kind, spec.summary, defaults)
    Console(width=max(Console().width, 160)).print(table)


@app.command()
def compare(
    data: str = typer.Argument(..., help="A built-in data set name (see `textclass datasets`) or a data file."),
    models_: str = typer.Option(..., "-m", "--models", help="Comma-separated registry model names."),
    cv: int = typer.Option(10, "--cv", help="Folds of the stratified k-fold cross-validation."),
    repeats: int = typer.Option(1, "--repeats", help="Repeats of the k-fold CV (different shuffles)."),
    by: str = typer.Option(None, "--by", help="Column to compare within, e.g. source (default: --group-col)."),
    cross_domain: bool = typer.Option(False, "--cross-domain", help="Add train-on-other-groups, test-on-this table."),
    metric: str = typer.Option("accuracy", "--metric", help="Picks the best model and the tested metric: accuracy, f1_macro or f1_micro (multi-label: accuracy is subset accuracy)."),
    text_col: str = TEXT_COL,
    label_col: str = LABEL_COL,
    label_sep: str = LABEL_SEP,
    group_col: str = typer.Option(None, "--group-col", help="Column holding a group (e.g. source) in a data file."),
    params: list[str] = PARAMS,
    seed: int = typer.Option(0, "--seed", help="Seed of the folds and of the models."),
    jobs: int = typer.Option(None, "-j", "--jobs", help="Worker processes (default: one per core)."),
    out: Path = typer.Option(None, "-o", "--out", help="Also write compare.md, CSVs and accuracy.png here."),
) -> None:
    """Cross-validate models side by side: intervals, paired tests, optional cross-domain table.

    Example: textclass compare uci-sentiment -m bow-logreg,nbsvm,cnn --cv 10 --by source --cross-domain
    """
    from textclass.compare import compare as run_compare
    from textclass.files import check_out_dir

    if out is not None:
        check_out_dir(out)
    result = run_compare(data, models_.split(","), cv=cv, repeats=repeats, by=by, cross_domain=cross_domain,
                         params=parse_params(params), metric=metric, seed=seed, n_jobs=jobs, progress=True,
                         text_col=text_col, label_col=label_col, group_col=group_col, label_sep=label_sep)
    result.render(Console(width=max(Console().width, 120)))
    if out is not None:
        typer.echo(f"wrote {result.write(out)}/")


@app.command()
def reproduce(
    out: Path = typer.Option(Path("reproduce"), "-o", "--out", help="Folder for report.md, results.csv/json, plots."),
    only: str = typer.Option(None, "--only", help="Experiments to run, e.g. 1,7 or 2-4 (default: all eight)."),
    quick: bool = typer.Option(False, "--quick", help="A first look in about a minute: fewer epochs, folds, sources."),
    folds: int = typer.Option(None, "--cv", help="Folds of the honest protocol's CV (default: 10; 2 with --quick)."),
    repeats: int = typer.Option(None, "--repeats", help="Repeats of the honest protocol's CV (default: 1)."),
    sources: str = typer.Option(None, "--sources", help="Sources for the honest CV of Keras experiments 2-7, "
                                "e.g. yelp,amazon,imdb (default: yelp, the tutorial's)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the models and the CV folds (the tutorial split stays 1000)."),
    jobs: int = typer.Option(None, "-j", "--jobs", help="Worker processes (default: one per core; one with --quick)."),
    beyond: bool = typer.Option(False, "--beyond", help="Add honest-protocol rows past the tutorial: nbsvm, "
                                "sentence-embed, encoder-tuned (needs textclass[encoders])."),
) -> None:
    """Run the tutorial's eight experiments: published figures beside ours, tutorial and honest protocols.

    Example: textclass reproduce --only 1,7 -o reproduce ; textclass reproduce --beyond
    """
    from textclass.files import check_out_dir
    from textclass.reproduce import Settings, parse_sources, render
    from textclass.reproduce import reproduce as run_reproduce

    check_out_dir(out)
    overrides = {k: v for k, v in (("folds", folds), ("repeats", repeats), ("n_jobs", jobs)) if v is not None}
    if beyond:
        overrides["beyond"] = True
    if sources:
        overrides["honest_sources"] = parse_sources(sources)
    settings = (Settings.quick if quick else Settings)(seed=seed, **overrides)
    run = run_reproduce(out, only=only, settings=settings, progress=True)
    render(run, Console(width=max(Console().width, 140)))
    typer.echo(f"wrote {out}/report.md")


@app.command()
def explain(
    run: Path = typer.Argument(..., help="A run directory written by `textclass train`, a saved model directory or an export."),
    texts: list[str] = typer.Argument(..., help="Texts to explain."),
    label: str = typer.Option(None, "--label", help="Class or tag to explain (default: the predicted one; "
                              "multi-label: the most probable tag)."),
    as_json: bool = typer.Option(False, "--json", help="Write one JSON object per text (JSON Lines)."),
) -> None:
    """Show which words pushed each text towards its label: green for it, red against it.

    Linear models are explained exactly, all others by occlusion (see the README's Explain section).

    Example: textclass explain runs/cnn "The food was great" "Never again" --label 1 --json
    """
    import json

    from textclass.explain import explain as explain_texts
    from textclass.explain import render
    from textclass.predict import load_predictor

    clf = load_predictor(run)
    explanations = explain_texts(clf, texts, label=label)
    if as_json:
        for e in explanations:
            typer.echo(json.dumps(e.to_dict(), ensure_ascii=False))
        return
    console = Console()
    for i, e in enumerate(explanations):
        if i:
            console.print()
        console.print(render(e), highlight=False)


@app.command("export")
def export_cmd(
    run: Path = typer.Argument(..., help="A run directory written by `textclass train` (or a saved model directory)."),
    out: Path = typer.Option(None, "-o", "--out", help="Export directory to write (default: RUN/onnx)."),
    format: str = typer.Option("onnx", "--format", help="Export format: onnx."),
) -> None:
    """Export a trained model to run with onnxruntime + NumPy only (no Keras, JAX or scikit-learn).

    The export is checked against the original model before it is written.
    Example: textclass export runs/cnn --format onnx -o exports/cnn ; textclass predict exports/cnn "so good!"
    """
    from textclass.export import export

    path = export(run, out or run / "onnx", format=format)
    typer.echo(f"wrote {path}/")


@app.command()
def serve(
    run: Path = typer.Argument(..., help="A run directory written by `textclass train`, a saved model directory or an export."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", help="TCP port, 1-65535."),
    api_key_env: str = typer.Option(None, "--api-key-env", help="Require the key held by this environment variable "
                                    "(Authorization: Bearer KEY or X-API-Key: KEY)."),
    max_texts: int = typer.Option(256, "--max-texts", help="Texts per request."),
    max_chars: int = typer.Option(10_000, "--max-chars", help="Characters per text."),
    max_body_bytes: int = typer.Option(1 << 20, "--max-body-bytes", help="Request body size in bytes."),
    batching: bool = typer.Option(True, "--batching/--no-batching", help="Join concurrent requests into one model call."),
    max_batch: int = typer.Option(64, "--max-batch", help="Texts per joined model call."),
    batch_wait_ms: float = typer.Option(2.0, "--batch-wait-ms", help="Longest wait for more requests to join a call."),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request."),
) -> None:
    """Serve a model over HTTP: POST /predict, GET /model, /health, /docs and a web page at /.

    Example: textclass serve runs/cnn --port 8000 ;
    curl -s localhost:8000/predict -H 'Content-Type: application/json' -d '{"texts": ["so good!"]}'
    """
    from textclass.serve import serve as run_service

    run_service(run, host=host, port=port, api_key_env=api_key_env, access_log=access_log, max_texts=max_texts,
                max_chars=max_chars, max_body_bytes=max_body_bytes, batching=batching, max_batch=max_batch,
                batch_wait_ms=batch_wait_ms)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status (0 ok, 1 failure, 2 bad input or usage, 130 interrupted).

    No traceback reaches the terminal: an unexpected exception is one line naming the file that
    holds the full traceback (exit 1). Warnings are said once, in textclass's words.
    """
    from textclass.guard import one_line, warnings_policy, write_traceback

    try:
        with warnings_policy(_warn):
            app(args=argv, prog_name="textclass")
    except SystemExit as e:  # Typer's own exits: --help, usage errors (2), typer.Exit(n)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except TextclassError as e:
        _error(" ".join(str(e).split()))
        return 2
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except OSError as e:  # a path the user gave: missing, unwritable, a full disk
        if e.filename is None:
            return _unexpected(e, one_line, write_traceback)
        _error(f"{e.filename}: {e.strerror or e}")
        return 2
    except Exception as e:  # noqa: BLE001 - the last guard: a bug or an unforeseen library failure
        return _unexpected(e, one_line, write_traceback)
    return 0


def _error(message: str) -> None:
    err.print(f"[bold red]error:[/] {rich.markup.escape(message)}", highlight=False, soft_wrap=True)


def _warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {rich.markup.escape(message)}", highlight=False, soft_wrap=True)


def _unexpected(exc: Exception, one_line, write_traceback) -> int:
    path = write_traceback(exc)
    _error(f"unexpected {one_line(exc)} (full traceback in {path}; please report it)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
