"""Data: built-in data sets (fetched from their official homes, verified), user files, splits.

Every loader returns a DataFrame with columns ``text`` and ``label`` (plus extras such as
``source``, ``split`` or ``group``). Bad input raises :class:`~textclass.errors.DataError` naming
the file, line or column and what was expected; an unknown, unreachable or corrupt built-in
data set raises :class:`~textclass.errors.DatasetError`.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import os
import re
import shutil
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from textclass.errors import DataError, DatasetError, ParameterError, TextclassWarning, did_you_mean
from textclass.files import sha256_file, stale, temp_name
from textclass.labels import infer_task


# --------------------------------------------------------------------------------------------
# Text decoding: UTF-8, with stray bytes read as Windows-1252 / Latin-1 instead of crashing.
# --------------------------------------------------------------------------------------------
def _stray_bytes(err: UnicodeError) -> tuple[str, int]:
    bad = err.object[err.start : err.end]  # type: ignore[attr-defined]
    return "".join(_one_byte(b) for b in bad), err.end  # type: ignore[attr-defined]


def _one_byte(b: int) -> str:
    try:
        return bytes([b]).decode("cp1252")
    except UnicodeDecodeError:  # the five bytes cp1252 leaves undefined
        return bytes([b]).decode("latin-1")


codecs.register_error("textclass-stray-bytes", _stray_bytes)


def decode(raw: bytes) -> str:
    """UTF-8 (a BOM is dropped); a byte that is not UTF-8 is read as cp1252, e.g. b"\\xa3" -> "£".

    A file that is UTF-8 but for one stray byte (``bbc-news/sport/199.txt``) then loses nothing,
    where decoding the whole file as Latin-1 would garble every other accented character.
    """
    return raw.decode("utf-8-sig", errors="textclass-stray-bytes")


# --------------------------------------------------------------------------------------------
# Built-in data sets
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """One download: a plain file saved as ``save_as``, or a zip whose ``members`` are extracted.

    ``members`` maps a zip member (or a folder prefix ending in "/") to its path in the data set's
    folder ("" for the folder itself). ``gzip=True`` compresses extracted files (adding ".gz").
    """

    url: str
    save_as: str | None = None
    members: Mapping[str, str] = field(default_factory=dict)
    gzip: bool = False


@dataclass(frozen=True)
class DatasetInfo:
    """A built-in data set: where it comes from and how to tell that what arrived is right."""

    name: str
    task: str  # "binary", "multiclass", "multilabel" or "vectors"
    rows: int
    download_mb: float  # approximate, for the listing
    summary: str
    home: str
    sources: tuple[Source, ...]
    sha256: Mapping[str, str] = field(default_factory=dict)  # file in the folder -> digest
    check: Callable[[Path], None] | None = None  # extra check of a fetched folder (shape, counts)
    required: tuple[str, ...] = ()  # files that make the data set "cached"; default: sha256's keys
    dirname: str = ""  # its folder in data_home(), when not its name

    @property
    def folder(self) -> str:
        return self.dirname or self.name

    def is_cached(self, home: Path | None = None) -> bool:
        root = (home or data_home()) / self.folder
        return all(_exists_any(root / f) for f in (self.required or tuple(self.sha256)))


def _exists_any(path: Path) -> bool:
    """A GloVe file counts as present plain or gzipped."""
    if path.exists():
        return True
    alt = path.with_suffix("") if path.suffix == ".gz" else path.with_name(path.name + ".gz")
    return alt.exists()


_BBC_TOPICS = ("business", "entertainment", "politics", "sport", "tech")


def _check_bbc(folder: Path) -> None:
    counts = {t: len(list((folder / t).glob("*.txt"))) for t in _BBC_TOPICS}
    if sum(counts.values()) != 2225:
        raise DatasetError(f"bbc-news: expected 2225 articles in 5 topic folders, found {sum(counts.values())} {counts}")


def _check_glove(folder: Path) -> None:
    path = folder / "glove.6B.50d.txt.gz"
    with gzip.open(path, "rb") as f:
        first = f.readline()
        lines = 1 + sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b""))
    fields = len(first.split())
    if lines != 400_000 or fields != 51:
        raise DatasetError(
            f"glove-6b-50d: expected 400000 lines of a word and 50 numbers, got {lines} lines, {fields} fields in line 1"
        )


_GOEMOTIONS_RAW = "https://raw.githubusercontent.com/google-research/google-research/master/goemotions/data/"

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="uci-sentiment",
            task="binary",
            rows=3000,
            download_mb=0.08,
            summary="UCI Sentiment Labelled Sentences: yelp, amazon, imdb, 1000 each (Kotzias et al. 2015)",
            home="https://archive.ics.uci.edu/dataset/331/sentiment+labelled+sentences",
            sources=(
                Source(
                    "https://archive.ics.uci.edu/static/public/331/sentiment+labelled+sentences.zip",
                    members={
                        f"sentiment labelled sentences/{f}": f
                        for f in ("yelp_labelled.txt", "amazon_cells_labelled.txt", "imdb_labelled.txt", "readme.txt")
                    },
                ),
            ),
            sha256={
                "yelp_labelled.txt": "c76468b7b5c6e56a0804d728345c5f84aa2142ddb214420f61cc9cfd4c00d2ea",
                "amazon_cells_labelled.txt": "47003fc0a0d4840b00e96e715b6189bad09e7443a3da41c4cbe12ffc79f86ae3",
                "imdb_labelled.txt": "aef2e49e3da25714d61175e3a6e68eeef74a20a2f914318dc3be9947ea86512d",
                "readme.txt": "736c26aa54e3614459e50314ece0698051f0923d108ed53938dcb1aa0483bfd4",
            },
        ),
        DatasetInfo(
            name="sms-spam",
            task="binary",
            rows=5574,
            download_mb=0.2,
            summary="SMS Spam Collection v.1: ham / spam, 13% spam (Almeida & Gómez Hidalgo 2011)",
            home="https://archive.ics.uci.edu/dataset/228/sms+spam+collection",
            sources=(
                Source(
                    "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip",
                    members={"SMSSpamCollection": "SMSSpamCollection", "readme": "readme"},
                ),
            ),
            sha256={"SMSSpamCollection": "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d"},
        ),
        DatasetInfo(
            name="bbc-news",
            task="multiclass",
            rows=2225,
            download_mb=2.9,
            summary="BBC News full text: 2225 articles in 5 topics, one file each (Greene & Cunningham 2006)",
            home="http://mlg.ucd.ie/datasets/bbc.html",
            sources=(Source("http://mlg.ucd.ie/files/datasets/bbc-fulltext.zip", members={"bbc/": ""}),),
            check=_check_bbc,
            required=_BBC_TOPICS,
        ),
        DatasetInfo(
            name="goemotions",
            task="multilabel",
            rows=54263,
            download_mb=4.4,
            summary="GoEmotions: Reddit comments, 28 emotions, train/dev/test (Demszky et al. 2020)",
            home="https://github.com/google-research/google-research/tree/master/goemotions",
            sources=(
                *(Source(f"{_GOEMOTIONS_RAW}{s}.tsv", save_as=f"{s}.tsv") for s in ("train", "dev", "test")),
                Source(f"{_GOEMOTIONS_RAW}emotions.txt", save_as="labels.txt"),
            ),
            sha256={
                "train.tsv": "1c254a142be5c00e80d819b9ae1bbd36d94b2eeb8f4b1271846508d57e57d9c5",
                "dev.tsv": "575489c079c9de1097062a01738f998590d6b7ead66dd1c9fd1d2ba01fd8bc62",
                "test.tsv": "0587b2dd8b27b97352adbfc3fb083d46005c8946657fdc2b1ca8b1cc7f1f8be4",
                "labels.txt": "45c3ef86782d2a4d7fedcd6d8c111aa0d0e94720689bd164fac94fefb4495a89",
            },
        ),
        DatasetInfo(
            name="glove-6b-50d",
            task="vectors",
            rows=400_000,
            download_mb=822,
            summary="GloVe 6B word vectors, 50 dimensions (Pennington et al. 2014); from the 822 MB archive",
            home="https://nlp.stanford.edu/projects/glove/",
            sources=(
                Source(
                    "https://nlp.stanford.edu/data/glove.6B.zip",
                    members={"glove.6B.50d.txt": "glove.6B.50d.txt"},
                    gzip=True,
                ),
            ),
            # Checked by shape: the official text differs in a few last digits from the copy whose
            # digest is recorded in ../shared/data/README.md.
            check=_check_glove,
            required=("glove.6B.50d.txt.gz",),
            dirname="glove",
        ),
    )
}


def data_home() -> Path:
    """``$TEXTCLASS_DATA`` if set, else ``~/.cache/textclass``."""
    env = os.environ.get("TEXTCLASS_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "textclass"


def get_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of a built-in data set (DatasetError with a suggestion if unknown)."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(
            f"unknown data set {name!r}{did_you_mean(name, DATASETS)}; built-in: {', '.join(DATASETS)}"
        ) from None


def list_datasets() -> pd.DataFrame:
    """One row per built-in data set: name, task, rows, size (download, MB), cached, summary."""
    home = data_home()
    return pd.DataFrame(
        [
            {
                "name": i.name,
                "task": i.task,
                "rows": i.rows,
                "size": i.download_mb,
                "cached": i.is_cached(home),
                "summary": i.summary,
            }
            for i in DATASETS.values()
        ]
    )


#: Further attempts after a failed download (pooch waits 1 s, 2 s, ... between them).
RETRIES = 2


class _PoochProgress:
    """pooch's progress-bar protocol (``total``, ``update``, ``reset``, ``close``) on a rich task."""

    def __init__(self, bar: Any, description: str) -> None:
        self._bar = bar
        self._task = bar.add_task(description, total=None)

    @property
    def total(self) -> float | None:
        return self._bar.tasks[self._task].total

    @total.setter
    def total(self, value: int) -> None:
        self._bar.update(self._task, total=value or None)

    def update(self, n: int) -> None:
        self._bar.advance(self._task, n)

    def reset(self) -> None:
        self._bar.reset(self._task)

    def close(self) -> None:
        pass


def _download(url: str, dest: Path, name: str, progress: Any) -> None:
    """Download ``url`` to ``dest`` with pooch (a temporary file renamed when complete, ``RETRIES``
    further attempts on a network error); every failure becomes one DatasetError line."""
    import pooch
    import requests

    pooch.get_logger().setLevel("WARNING")  # its "Downloading ..." lines would reach the terminal
    bar = _PoochProgress(progress, f"{name}: {url.rsplit('/', 1)[-1]}") if progress else False
    downloader = pooch.HTTPDownloader(progressbar=bar, chunk_size=1 << 16, timeout=60)
    store = pooch.create(path=dest.parent, base_url="", registry={dest.name: None}, urls={dest.name: url},
                         retry_if_failed=RETRIES)
    try:
        store.fetch(dest.name, downloader=downloader)
    except requests.exceptions.HTTPError as e:
        r = e.response
        raise DatasetError(f"could not fetch {name}: HTTP {r.status_code} {r.reason} from {url}") from None
    except requests.exceptions.RequestException as e:
        reason = re.findall(r"\[Errno -?\d+\] ([^'\")]+)", str(e)) or [type(e).__name__]
        raise DatasetError(f"could not fetch {name} from {url}: {reason[-1]} (offline?)") from None
    except OSError as e:  # a full disk, an unwritable folder
        raise DatasetError(f"could not fetch {name} from {url}: {e}") from None


def _extract(archive: Path, source: Source, out: Path, name: str) -> None:
    """Unpack ``source.members`` with pooch's Unzip, then move each to its place in ``out``
    (gzipped when ``source.gzip``). zipfile drops ".." and absolute parts of member names."""
    import pooch

    unpacked = archive.parent / f"{archive.name}.unzip"
    try:
        pooch.Unzip(members=list(source.members), extract_dir=str(unpacked))(str(archive), "download", None)
    except (zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise DatasetError(f"{name}: the download from {source.url} is not a valid zip archive ({e})") from None
    for member, target in source.members.items():
        root = unpacked / member
        files = sorted(p for p in root.rglob("*") if p.is_file()) if member.endswith("/") else [root]
        if not files or not files[0].is_file():
            raise DatasetError(f"{name}: the archive from {source.url} lacks {member!r}")
        for f in files:
            rel = target + f.relative_to(root).as_posix() if member.endswith("/") else target
            if ".." in Path(rel).parts or Path(rel).is_absolute():
                raise DatasetError(f"{name}: unsafe path {rel!r} for {member!r} from {source.url}")
            dest = out / (rel + ".gz" if source.gzip else rel)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if source.gzip:
                with open(f, "rb") as src, gzip.open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            else:
                os.replace(f, dest)
    shutil.rmtree(unpacked)


def _verify(info: DatasetInfo, folder: Path) -> None:
    for rel, expected in info.sha256.items():
        path = folder / rel
        if not path.exists():
            raise DatasetError(f"{info.name}: expected file {rel} is missing")
        got = sha256_file(path)
        if got != expected:
            raise DatasetError(f"{info.name}: checksum mismatch for {rel}: expected sha256 {expected}, got {got}")
    if info.check:
        info.check(folder)


def _progress(enabled: bool):
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=True,
    )


def fetch_dataset(name: str, *, progress: bool = True, force: bool = False) -> Path:
    """Download, verify and install a built-in data set; return its folder.

    Everything happens in a temporary folder inside :func:`data_home`, which replaces the data
    set's folder with ``os.replace`` only after every file is verified: an interrupted or failed
    fetch leaves nothing behind, and a previous copy stays until the new one is complete.
    """
    info = get_info(name)
    home = data_home()
    target = home / info.folder
    _recover(home, info.folder)
    if info.is_cached(home) and not force:
        return target
    try:
        home.mkdir(parents=True, exist_ok=True)
        tmp = home / temp_name(f".{info.folder}-")
        tmp.mkdir()
    except OSError as e:
        raise DatasetError(f"cannot write to the data folder {home}: {e.strerror or e}") from None
    try:
        out = tmp / info.folder
        out.mkdir()
        with _progress(progress) as bar:
            for i, source in enumerate(info.sources):
                if source.save_as:
                    _download(source.url, out / source.save_as, name, bar)
                else:
                    archive = tmp / f"download-{i}.zip"
                    _download(source.url, archive, name, bar)
                    _extract(archive, source, out, name)
                    archive.unlink()
        _verify(info, out)
        if target.exists():
            os.replace(target, tmp / "previous")
        os.replace(out, target)
    except OSError as e:
        raise DatasetError(f"could not install {name} into {target}: {e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _recover(home: Path, folder: str) -> None:
    """Clean up after a fetch that was killed: put back a previous copy moved aside just before
    the kill, and remove the unfinished temporary folders."""
    for tmp in stale(home, f".{folder}-"):
        if (tmp / "previous").is_dir() and not (home / folder).exists():
            os.replace(tmp / "previous", home / folder)
        shutil.rmtree(tmp, ignore_errors=True)


def verify_dataset(name: str) -> list[str]:
    """Re-check a cached data set against its recorded sha256 digests (and its shape check);
    returns the files checked by digest. DatasetError naming the file on a mismatch or a missing file."""
    info = get_info(name)
    folder = data_home() / info.folder
    _recover(data_home(), info.folder)
    if not info.is_cached():
        raise DatasetError(f"data set {name!r} is not in {data_home()}; run: textclass datasets fetch {name}")
    try:
        _verify(info, folder)
    except DatasetError as e:
        raise DatasetError(f"{e} (in {folder}); run: textclass datasets fetch {name} --force") from None
    return sorted(info.sha256)


def dataset_path(name: str, *, fetch: bool = True) -> Path:
    """The folder of a built-in data set, fetched first if needed (DatasetError if it can't be)."""
    info = get_info(name)
    if info.is_cached():
        return data_home() / info.folder
    if not fetch:
        raise DatasetError(f"data set {name!r} is not in {data_home()}; run: textclass datasets fetch {name}")
    return fetch_dataset(name)


def vectors_file(name: str = "glove-6b-50d", *, fetch: bool = True) -> Path:
    """Path of a built-in word-vector file, gzipped or plain text, whichever is present."""
    info = get_info(name)
    if info.task != "vectors":
        raise DatasetError(f"{name!r} is a {info.task} data set, not word vectors")
    gz = dataset_path(name, fetch=fetch) / info.required[0]
    return gz if gz.exists() else gz.with_suffix("")


# --------------------------------------------------------------------------------------------
# Loading the built-in data sets
# --------------------------------------------------------------------------------------------
_UCI_SOURCES = {"yelp": "yelp_labelled.txt", "amazon": "amazon_cells_labelled.txt", "imdb": "imdb_labelled.txt"}


def _load_uci(folder: Path, tutorial_parse: bool) -> pd.DataFrame:
    frames = []
    for source, filename in _UCI_SOURCES.items():
        if tutorial_parse:
            # The tutorial's exact call: pandas' default quoting treats the 84 '"' in imdb
            # sentences as field quotes and silently merges lines, giving 748 rows, not 1000.
            df = pd.read_csv(folder / filename, names=["text", "label"], sep="\t")
        else:
            df = pd.read_csv(folder / filename, names=["text", "label"], sep="\t", quoting=csv.QUOTE_NONE)
            df["text"] = df["text"].str.rstrip()
        df["source"] = source
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def _load_sms(folder: Path) -> pd.DataFrame:
    df = pd.read_csv(
        folder / "SMSSpamCollection", sep="\t", header=None, names=["label", "text"], quoting=csv.QUOTE_NONE
    )
    return df[["text", "label"]]


def _load_bbc(folder: Path) -> pd.DataFrame:
    df = _read_folder(folder)
    if df.empty:
        raise DatasetError(f"bbc-news: no articles under {folder}")
    return df  # text = headline line + body; label = topic; file = "sport/199.txt"


def _load_goemotions(folder: Path, split: str | None) -> pd.DataFrame:
    names = np.array((folder / "labels.txt").read_text(encoding="utf-8").split())
    splits = ("train", "dev", "test")
    if split is not None and split not in splits:
        raise ParameterError(f"goemotions has no split {split!r}{did_you_mean(split, splits)}; expected one of {splits}")
    frames = []
    for s in [split] if split else splits:
        df = pd.read_csv(
            folder / f"{s}.tsv",
            sep="\t",
            header=None,
            names=["text", "ids", "id"],
            quoting=csv.QUOTE_NONE,
            dtype=str,
            keep_default_na=False,
        )
        df["split"] = s
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    lookup = {str(i): n for i, n in enumerate(names.tolist())}
    labels = [tuple(lookup[i] for i in ids.split(",")) for ids in df["ids"].tolist()]
    label = pd.Series(np.empty(len(labels), dtype=object), index=df.index)
    label[:] = labels
    return pd.DataFrame({"text": df["text"], "label": label, "split": df["split"], "id": df["id"]})


def load_dataset(name: str, *, split: str | None = None, tutorial_parse: bool = False) -> pd.DataFrame:
    """A built-in data set as a DataFrame with ``text``, ``label`` and per-set extra columns.

    - ``uci-sentiment``: label 0/1, ``source`` in yelp/amazon/imdb, 3000 rows in that order, read
      with quoting disabled. ``tutorial_parse=True`` reproduces the tutorial's faulty read
      (pandas' default quoting: imdb has 748 rows), only to reproduce its imdb figures.
    - ``sms-spam``: label ham/spam. ``bbc-news``: label = topic folder.
    - ``goemotions``: label = tuple of emotion names; ``split`` in train/dev/test; ``split=`` filters.

    Fetches the data set when it is not cached.
    """
    info = get_info(name)
    if info.task == "vectors":
        raise DatasetError(f"{name!r} holds word vectors, not labelled text; use textclass.embeddings")
    if split is not None and name != "goemotions":
        raise ParameterError(f"{name} has no predefined splits; use split_frame() instead of split={split!r}")
    if tutorial_parse and name != "uci-sentiment":
        raise ParameterError("tutorial_parse applies to uci-sentiment only")
    folder = dataset_path(name)
    if name == "uci-sentiment":
        return plain_columns(_load_uci(folder, tutorial_parse))
    if name == "sms-spam":
        return plain_columns(_load_sms(folder))
    if name == "bbc-news":
        return plain_columns(_load_bbc(folder))
    return plain_columns(_load_goemotions(folder, split))


def plain_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns as NumPy object arrays, whatever pandas' default string type.

    pandas 3 stores strings in Arrow-backed arrays whose ``.values`` scikit-learn's
    ``train_test_split`` cannot index; the tutorial's own code (``df['sentence'].values``, then
    ``train_test_split``) must work on what textclass returns, on pandas 2 and 3 alike.
    """
    for column in df.columns:
        if isinstance(df[column].dtype, pd.StringDtype) or df[column].dtype == object:
            df[column] = df[column].astype(object)
    return df


# --------------------------------------------------------------------------------------------
# User files
# --------------------------------------------------------------------------------------------
TEXT_NAMES = ("text", "texts", "sentence", "sentences", "review", "message", "content", "document", "body", "comment")
LABEL_NAMES = ("label", "labels", "class", "category", "target", "sentiment", "tag", "tags", "y")
_READERS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
            ".parquet": "parquet", ".pq": "parquet"}  # fmt: skip


def _read_folder(folder: Path) -> pd.DataFrame:
    """One subfolder per label, one document per file (sorted, hidden files skipped)."""
    texts, labels, files = [], [], []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(p for p in sub.iterdir() if p.is_file() and not p.name.startswith(".")):
            texts.append(decode(f.read_bytes()))
            labels.append(sub.name)
            files.append(f"{sub.name}/{f.name}")
    return pd.DataFrame({"text": texts, "label": labels, "file": files})


def _read_delimited(path: Path, text: str, sep: str) -> tuple[pd.DataFrame, bool]:
    """Read CSV (RFC 4180 quoting) or TSV (no quoting: a '"' inside a sentence is just a character,
    the trap that cost the tutorial 252 imdb rows). Headerless files are recognised when a column
    name is a number (e.g. the 0/1 labels of a UCI file)."""
    quoting = csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL

    def read(header: int | None) -> pd.DataFrame:
        try:
            return pd.read_csv(io.StringIO(text), sep=sep, quoting=quoting, header=header, skip_blank_lines=True)
        except pd.errors.ParserError as e:
            m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(e))
            if m:
                raise DataError(
                    f"{path}: malformed line {m[2]}: expected {m[1]} fields, saw {m[3]}"
                    + (" (a stray quote or comma? quote the text field)" if sep == "," else " (a tab inside the text?)")
                ) from None
            raise DataError(f"{path}: malformed {'CSV' if sep == ',' else 'TSV'}: {e}") from None
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: file is empty; expected a header line and rows of text and label") from None

    df = read(0)
    headerless = any(re.fullmatch(r"-?\d+(\.\d+)?", str(c).strip()) for c in df.columns)
    if headerless:
        df = read(None)
        df.columns = [f"column{i + 1}" for i in range(df.shape[1])]
    else:
        _check_header(path, text, sep, quoting)
    return df, headerless


def _check_header(path: Path, text: str, sep: str, quoting: int) -> None:
    """Refuse a header naming one column twice: pandas would silently rename the second 'x.1'."""
    try:
        header = next(csv.reader(io.StringIO(text), delimiter=sep, quoting=quoting), [])
    except csv.Error:
        return  # pandas read it; its own names stand
    names = [h for h in header if h]
    twice = sorted({h for h in names if names.count(h) > 1})
    if twice:
        raise DataError(
            f"{path}: the header (line 1) names column {twice[0]!r} {names.count(twice[0])} times; "
            "give every column its own name"
        )


def _drop_repeated_headers(path: Path, df: pd.DataFrame, numbers: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Drop rows that repeat the header (files concatenated with their headers), with a warning;
    columns that were numbers but for those rows become numbers again."""
    names = [str(c).strip() for c in df.columns]
    repeated = np.ones(len(df), dtype=bool)
    for c, name in zip(df.columns, names):
        repeated &= (df[c].astype(str).str.strip() == name).to_numpy()
    if not repeated.any():
        return df, numbers
    shown = ", ".join(str(n) for n in numbers[repeated][:5]) + (", ..." if repeated.sum() > 5 else "")
    warnings.warn(TextclassWarning(
        f"{path}: dropped {int(repeated.sum())} row(s) repeating the header (line(s) {shown})"), stacklevel=3)
    df = df[~repeated].reset_index(drop=True)
    for c in df.columns:
        values = df[c].dropna().astype(str).str.strip()
        if len(values) and values.str.fullmatch(r"-?\d+").all():
            df[c] = pd.to_numeric(df[c])
    return df, numbers[~repeated]


def jsonl_row(path: Path, n: int, line: str, example: str = '{"text": ..., "label": ...}') -> dict:
    """Line ``n`` of a JSON Lines file as an object; anything else is a DataError naming the line."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: malformed JSON on line {n}: {e.msg} (column {e.colno})") from None
    if not isinstance(row, dict):
        raise DataError(f"{path}: line {n} is a JSON {type(row).__name__}; expected an object like {example}")
    return row


def _read_jsonl(path: Path, text: str) -> pd.DataFrame:
    rows, lines = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            rows.append(jsonl_row(path, n, line))
            lines.append(n)
    return pd.DataFrame(rows, index=lines)


def _pick_column(df: pd.DataFrame, path: Path, wanted: str | None, known: tuple[str, ...], role: str,
                 exclude: set[str]) -> str | None:  # fmt: skip
    columns = [str(c) for c in df.columns]
    if wanted is not None:
        if wanted not in columns:
            raise DataError(
                f"{path}: no {role} column {wanted!r}{did_you_mean(wanted, columns)}; columns are: {', '.join(columns)}"
            )
        return wanted
    lower = {c.lower(): c for c in columns if c not in exclude}
    for name in known:
        if name in lower:
            return lower[name]
    return None


def find_text_column(df: pd.DataFrame, path: str | os.PathLike, text_col: str | None = None) -> str:
    """The column of texts: the one named, else a conventional name, else the longest string column."""
    column = _pick_column(df, Path(path), text_col, TEXT_NAMES, "text", set()) or _guess_text_column(df)
    if column is None:
        raise DataError(f"{path}: no text column found; name it with --text-col (columns: {', '.join(map(str, df.columns))})")
    return column


def _guess_text_column(df: pd.DataFrame) -> str | None:
    """The string column with the longest mean length."""
    best, best_len = None, 0.0
    for c in df.columns:
        values = df[c].dropna()
        if values.empty or not all(isinstance(v, str) for v in values.iloc[:1000]):
            continue
        mean = values.astype(str).str.len().mean()
        if mean > best_len:
            best, best_len = c, mean
    return best


#: Separators of multi-label strings recognised when no ``label_sep`` is given.
LABEL_SEPARATORS = (",", ";", "|")


def _parse_labels(values: pd.Series, label_sep: str | None, path: Path | None = None,
                  where: Callable[[np.ndarray], str] | None = None) -> pd.Series:
    """Lists stay lists; JSON-list strings and ``label_sep``-delimited strings become tuples of str.

    Surrounding whitespace is stripped (" positive" is "positive"). Without ``label_sep``, strings
    holding one of ``LABEL_SEPARATORS`` are split on it (said in a warning); strings mixing two
    separators are refused, naming both. ``label_sep=""`` never splits.
    """
    non_null = values.dropna()
    if non_null.empty:
        return values
    values = values.map(lambda v: v.strip() if isinstance(v, str) else v)
    if label_sep is None:
        label_sep = _detect_separator(values, path, where)

    def tuples(items: list) -> pd.Series:
        out = pd.Series(np.empty(len(items), dtype=object), index=values.index)
        out[:] = items
        return out

    first = non_null.iloc[0]
    if isinstance(first, (list, tuple, np.ndarray)):
        return tuples([tuple(str(t).strip() for t in v) if isinstance(v, (list, tuple, np.ndarray)) else v
                       for v in values])
    if label_sep:
        return tuples(
            [tuple(t.strip() for t in str(v).split(label_sep) if t.strip()) if not _na(v) else v for v in values]
        )
    if all(isinstance(v, str) and v.lstrip().startswith("[") for v in non_null):
        parsed = []
        for v in values:
            if _na(v):
                parsed.append(v)
                continue
            try:
                parsed.append(tuple(str(t).strip() for t in json.loads(v)))
            except (json.JSONDecodeError, TypeError):
                return values  # not JSON lists after all: plain string labels
        return tuples(parsed)
    return values


def _detect_separator(values: pd.Series, path: Path | None, where: Callable[[np.ndarray], str] | None) -> str | None:
    """The one separator of multi-label strings in ``values``, None if none; DataError if several."""
    strings = np.array([isinstance(v, str) and not v.startswith("[") for v in values], dtype=bool)
    found = {}
    for sep in LABEL_SEPARATORS:
        mask = strings & np.array([isinstance(v, str) and sep in v for v in values], dtype=bool)
        if mask.any():
            found[sep] = mask
    if not found:
        return None
    place = f"{path}: " if path else ""
    if len(found) > 1:
        named = " and ".join(f"{sep!r} ({where(mask) + ', e.g. ' if where else 'e.g. '}{values[mask].iloc[0]!r})"
                             for sep, mask in found.items())
        raise DataError(f"{place}multi-label strings mix the separators {named}; say which one splits the "
                        f"tags with --label-sep (or --label-sep '' to read every string as one label)")
    sep, mask = next(iter(found.items()))
    warnings.warn(TextclassWarning(
        f"{place}{int(mask.sum())} label(s) hold {sep!r}: read as multi-label tags separated by {sep!r} "
        "(--label-sep '' reads every string as one label)"), stacklevel=4)
    return sep


def _bad_values(values: Any, what: str) -> np.ndarray:
    """Rows whose value is a mapping (a JSON object), or a list holding one: not a text or label."""
    def bad(v: Any) -> bool:
        if isinstance(v, dict):
            return True
        return isinstance(v, (list, tuple, np.ndarray)) and (what == "text" or any(isinstance(t, (dict, list)) for t in v))

    return np.array([bad(v) for v in values], dtype=bool)


def _na(v: Any) -> bool:
    return not isinstance(v, (list, tuple, np.ndarray)) and bool(pd.isna(v))


def read_table(
    path: str | os.PathLike,
    *,
    text_col: str | None = None,
    label_col: str | None = None,
    group_col: str | None = None,
    label_sep: str | None = None,
    labels: bool = True,
) -> pd.DataFrame:
    """Read labelled text from a CSV, TSV, JSONL or Parquet file, or a folder of label subfolders.

    Returns columns ``text``, ``label`` (unless ``labels=False``, for unlabelled text to predict)
    and ``group`` if ``group_col``. Columns are found by name (text/sentence/review/message/...,
    label/class/category/target/sentiment/...) or, for the text, as the string column with the
    longest mean length. Multi-label targets: a JSON list, or a string split on ``label_sep``.
    Files are UTF-8 with a fallback for stray bytes (see :func:`decode`). Errors name the line
    (CSV/TSV/JSONL, counting one line per record), row (Parquet) or file (folder).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    df, where = _read_any(path)
    df = df.rename(columns=str)
    text_col = find_text_column(df, path, text_col)
    if group_col is not None:
        group_col = _pick_column(df, path, group_col, (), "group", set())
    if labels:
        label_col = _pick_column(df, path, label_col, LABEL_NAMES, "label", {text_col})
        if label_col is None:
            others = [c for c in df.columns if c not in {text_col, group_col, "file"}]
            if len(others) != 1:
                raise DataError(
                    f"{path}: no label column found; name it with --label-col (columns: {', '.join(df.columns)})"
                )
            label_col = others[0]
        if label_col == text_col:
            raise DataError(f"{path}: column {text_col!r} is given as both the text and the label column; "
                            "the labels must be another column (--label-col)")

    text = df[text_col]
    objects = _bad_values(text, "text")
    if objects.any():
        raise DataError(f"{path}: {int(objects.sum())} text(s) in column {text_col!r} at {where(objects)} are "
                        "JSON objects or lists; expected a string in every row")
    empty = text.isna().to_numpy() | (text.astype(str).str.strip() == "").to_numpy()
    if empty.any():
        raise DataError(
            f"{path}: {int(empty.sum())} empty or missing text(s) in column {text_col!r} at {where(empty)}; "
            "expected a non-empty text in every row"
        )
    out = pd.DataFrame({"text": text.astype(str).to_numpy()})
    if labels:
        objects = _bad_values(df[label_col], "label")
        if objects.any():
            first = df[label_col][objects].iloc[0]
            raise DataError(
                f"{path}: {int(objects.sum())} label(s) in column {label_col!r} at {where(objects)} are JSON "
                f"objects (e.g. {json.dumps(first, default=str)[:60]}); expected a string, a number or a list of tags"
            )
        label = _parse_labels(df[label_col], label_sep, path, where)
        missing = np.array([_na(v) or (isinstance(v, str) and not v) for v in label], dtype=bool)
        if missing.any():
            raise DataError(
                f"{path}: {int(missing.sum())} missing label(s) in column {label_col!r} at {where(missing)}; "
                "expected a label in every row"
            )
        if infer_task(label.tolist()) != "multilabel":
            distinct = pd.unique(label.to_numpy())
            if len(distinct) < 2:
                raise DataError(
                    f"{path}: column {label_col!r} holds one class only ({distinct[0]!r}); "
                    "a classifier needs at least two"
                )
        out["label"] = label.to_numpy()
    if group_col is not None:
        out["group"] = df[group_col].to_numpy()
    return plain_columns(out)


def _read_any(path: Path) -> tuple[pd.DataFrame, Callable[[np.ndarray], str]]:
    """The raw frame, and a function naming where flagged rows are (lines, rows or files)."""

    def numbered(unit: str, numbers: np.ndarray) -> Callable[[np.ndarray], str]:
        def where(mask: np.ndarray) -> str:
            picked = [str(n) for n in numbers[mask]]
            plural = "s" if len(picked) > 1 else ""
            return f"{unit}{plural} {', '.join(picked[:5])}{', ...' if len(picked) > 5 else ''}"

        return where

    if path.is_dir():
        df = _read_folder(path)
        if df.empty:
            raise DataError(
                f"{path}: folder holds no documents; expected one subfolder per label with one file per document"
            )
        return df, numbered("file", df["file"].to_numpy())
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r}; expected "
            f"{', '.join(sorted(_READERS))} or a folder with one subfolder per label"
        )
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty; expected a header line and rows of text and label")
    if kind == "parquet":
        try:
            df = pd.read_parquet(path)
        except Exception as e:  # pyarrow raises several unrelated types for a bad file
            raise DataError(f"{path}: not a readable Parquet file ({e})") from None
        numbers, unit = np.arange(1, len(df) + 1), "row"
    elif kind == "jsonl":
        df = _read_jsonl(path, decode(path.read_bytes()))
        numbers, unit = df.index.to_numpy(), "line"
        df = df.reset_index(drop=True)
    else:
        df, headerless = _read_delimited(path, decode(path.read_bytes()), "," if kind == "csv" else "\t")
        numbers, unit = np.arange(len(df)) + (1 if headerless else 2), "line"
        if not headerless:
            df, numbers = _drop_repeated_headers(path, df, numbers)
    if df.empty:
        raise DataError(f"{path}: no rows; expected a header line and rows of text and label")
    return df, numbered(unit, numbers)


def load_data(source: str | os.PathLike, **read_table_kwargs: Any) -> pd.DataFrame:
    """A built-in data set by name, or a user's file or folder via :func:`read_table`."""
    if isinstance(source, str) and source in DATASETS:
        df = load_dataset(source)
        group_col = read_table_kwargs.get("group_col")
        if group_col is not None and group_col not in df.columns:
            raise DataError(f"{source}: no group column {group_col!r}{did_you_mean(group_col, df.columns)}; "
                            f"columns: {', '.join(map(str, df.columns))}")
        return df
    if isinstance(source, str) and not os.path.exists(source) and not Path(source).suffix:
        raise DatasetError(
            f"{source!r} is neither a file nor a built-in data set{did_you_mean(source, DATASETS)}; "
            f"built-in: {', '.join(n for n, i in DATASETS.items() if i.task != 'vectors')}"
        )
    return read_table(source, **read_table_kwargs)


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------
def split_frame(
    df: pd.DataFrame, *, test_size: float = 0.25, random_state: int | None = 1000, stratify: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train/test split with the tutorial's semantics: ``train_test_split(test_size, random_state)``.

    With ``random_state=1000`` on a 1000-row source this gives the tutorial's 750/250 split, in the
    same order. The original index is kept (as scikit-learn does), so rows can be traced back.
    ``stratify=True`` keeps the label proportions (single-label data only).
    """
    from sklearn.model_selection import train_test_split

    strat = None
    if stratify:
        if infer_task(df["label"].tolist()) == "multilabel":
            raise ParameterError("stratify=True needs single-label data; multi-label rows cannot be stratified")
        strat = df["label"].to_numpy()
    try:
        train, test = train_test_split(df, test_size=test_size, random_state=random_state, stratify=strat)
    except ValueError as e:
        raise DataError(f"cannot split {len(df)} rows with test_size={test_size}: {e}") from None
    return train, test


def cv_splits(
    y: Any, *, n_splits: int = 10, n_repeats: int = 1, random_state: int | None = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(train_idx, test_idx) pairs: repeated stratified k-fold for single-label targets, repeated
    shuffled k-fold for multi-label ones (stratifying label sets is ill-defined)."""
    from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold

    items = list(y)
    if infer_task(items) == "multilabel":
        cv = RepeatedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=random_state)
        return cv.split(np.zeros(len(items)))
    labels = np.asarray(items, dtype=object).astype(str)
    smallest = pd.Series(labels).value_counts().min()
    if smallest < n_splits:
        raise DataError(
            f"the rarest class has {smallest} item(s), fewer than n_splits={n_splits}; lower n_splits or add data"
        )
    cv = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=random_state)
    return cv.split(np.zeros(len(items)), labels)
