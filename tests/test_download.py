"""The downloader against a real HTTP server on 127.0.0.1 (never the internet).

Each test serves a small archive built here, points a data set's URL at it, and checks that a
good download lands verified and a bad one (corrupt, not a zip, 404, refused) leaves nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import socket
import threading
import zipfile
from pathlib import Path

import pytest

from textclass import data
from textclass.cli import main
from textclass.data import DatasetInfo, Source, fetch_dataset, load_dataset
from textclass.errors import DatasetError

GOOD = b"good text\t1\nbad text\t0\n"
REAL_UCI = data.data_home() / "uci-sentiment"  # read before any test points TEXTCLASS_DATA elsewhere


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/www on 127.0.0.1 at a free port; yields (www folder, base URL, request log)."""
    www = tmp_path / "www"
    www.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(www), **kwargs)

        def log_message(self, *args):  # keep the test output clean
            requests.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def no_retries(monkeypatch):
    """Failures fail at once here (pooch waits 1 s, 2 s between attempts); test_retry opts back in."""
    monkeypatch.setattr(data, "RETRIES", 0)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("TEXTCLASS_DATA", str(path))
    return path


def make_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, content in files.items():
            z.writestr(name, content)
    return buf.getvalue()


def tiny(monkeypatch, url: str, *, digest: str = hashlib.sha256(GOOD).hexdigest(), **changes) -> DatasetInfo:
    """Register a built-in-like data set 'tiny' whose zip holds tiny/a.txt."""
    info = DatasetInfo(
        name="tiny",
        task="binary",
        rows=2,
        download_mb=0.0,
        summary="a test set",
        home=url,
        sources=(Source(url, members={"tiny/": ""}),),
        sha256={"a.txt": digest},
    )
    info = dataclasses.replace(info, **changes)
    monkeypatch.setitem(data.DATASETS, "tiny", info)
    return info


def leftovers(home: Path) -> list[str]:
    return sorted(p.name for p in home.iterdir()) if home.exists() else []


def test_good_download_is_verified_and_in_place(server, home, monkeypatch):
    www, base, requests = server
    (www / "tiny.zip").write_bytes(make_zip({"tiny/a.txt": GOOD, "tiny/sub/b.txt": b"x"}))
    tiny(monkeypatch, f"{base}/tiny.zip")
    folder = fetch_dataset("tiny", progress=False)
    assert folder == home / "tiny"
    assert (folder / "a.txt").read_bytes() == GOOD and (folder / "sub" / "b.txt").read_bytes() == b"x"
    assert leftovers(home) == ["tiny"]  # no temporary folder, no archive
    assert fetch_dataset("tiny", progress=False) == folder
    assert len(requests) == 1  # cached: the second call did not download


def test_force_refetch_replaces_the_folder(server, home, monkeypatch):
    www, base, requests = server
    (www / "tiny.zip").write_bytes(make_zip({"tiny/a.txt": GOOD}))
    tiny(monkeypatch, f"{base}/tiny.zip")
    folder = fetch_dataset("tiny", progress=True)
    (folder / "stale.txt").write_text("old")
    fetch_dataset("tiny", progress=False, force=True)
    assert len(requests) == 2 and not (folder / "stale.txt").exists()
    assert leftovers(home) == ["tiny"]


def test_checksum_mismatch_leaves_nothing(server, home, monkeypatch, capsys):
    www, base, _ = server
    (www / "tiny.zip").write_bytes(make_zip({"tiny/a.txt": GOOD.replace(b"good", b"evil")}))
    tiny(monkeypatch, f"{base}/tiny.zip")
    with pytest.raises(DatasetError, match=r"tiny: checksum mismatch for a.txt: expected sha256 [0-9a-f]{64}, got"):
        fetch_dataset("tiny", progress=False)
    assert leftovers(home) == []
    assert main(["datasets", "fetch", "tiny"]) == 2
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and err.count("\n") == 1
    assert leftovers(home) == []


def test_failed_refetch_keeps_the_previous_copy(server, home, monkeypatch):
    www, base, _ = server
    (www / "tiny.zip").write_bytes(make_zip({"tiny/a.txt": GOOD}))
    tiny(monkeypatch, f"{base}/tiny.zip")
    fetch_dataset("tiny", progress=False)
    (www / "tiny.zip").write_bytes(make_zip({"tiny/a.txt": b"corrupt"}))
    with pytest.raises(DatasetError, match="checksum mismatch"):
        fetch_dataset("tiny", progress=False, force=True)
    assert (home / "tiny" / "a.txt").read_bytes() == GOOD
    assert leftovers(home) == ["tiny"]


def test_not_a_zip(server, home, monkeypatch):
    www, base, _ = server
    (www / "tiny.zip").write_bytes(b"<html>a captive portal</html>")
    tiny(monkeypatch, f"{base}/tiny.zip")
    with pytest.raises(DatasetError, match="is not a valid zip archive"):
        fetch_dataset("tiny", progress=False)
    assert leftovers(home) == []


def test_http_404(server, home, monkeypatch, capsys):
    _, base, _ = server
    tiny(monkeypatch, f"{base}/missing.zip")
    with pytest.raises(DatasetError, match=r"could not fetch tiny: HTTP 404 .* from http://127\.0\.0\.1:\d+/missing\.zip"):
        fetch_dataset("tiny", progress=False)
    assert main(["datasets", "fetch", "tiny"]) == 2
    assert "HTTP 404" in capsys.readouterr().err
    assert leftovers(home) == []


def test_connection_refused(home, monkeypatch, capsys):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tiny(monkeypatch, f"http://127.0.0.1:{port}/tiny.zip")
    with pytest.raises(DatasetError, match=r"could not fetch tiny from http://127\.0\.0\.1:\d+/tiny\.zip: .*refused"):
        fetch_dataset("tiny", progress=False)
    assert main(["datasets", "fetch", "tiny"]) == 2
    err = capsys.readouterr().err
    assert "could not fetch tiny" in err and err.count("\n") == 1
    assert leftovers(home) == []


def test_plain_file_sources(server, home, monkeypatch):
    """GoEmotions-style sources: raw files saved under another name (emotions.txt -> labels.txt)."""
    www, base, _ = server
    (www / "emotions.txt").write_bytes(GOOD)
    tiny(monkeypatch, base, sources=(Source(f"{base}/emotions.txt", save_as="a.txt"),))
    assert (fetch_dataset("tiny", progress=False) / "a.txt").read_bytes() == GOOD


def test_glove_shape_check_refuses_a_truncated_file(server, home, monkeypatch):
    www, base, _ = server
    (www / "glove.6B.zip").write_bytes(make_zip({"glove.6B.50d.txt": b"the " + b"0.1 " * 49 + b"0.1\n"}))
    info = data.DATASETS["glove-6b-50d"]
    source = dataclasses.replace(info.sources[0], url=f"{base}/glove.6B.zip")
    monkeypatch.setitem(data.DATASETS, "glove-6b-50d", dataclasses.replace(info, sources=(source,)))
    with pytest.raises(DatasetError, match="expected 400000 lines of a word and 50 numbers, got 1 lines, 51 fields"):
        fetch_dataset("glove-6b-50d", progress=False)
    assert leftovers(home) == []


def test_unknown_name_via_cli(home, capsys):
    assert main(["datasets", "fetch", "uci-sentimnet"]) == 2
    err = capsys.readouterr().err
    assert "unknown data set 'uci-sentimnet' (did you mean 'uci-sentiment'?)" in err
    assert err.count("\n") == 1


def test_uci_archive_layout_with_real_bytes(server, home, monkeypatch):
    """The real UCI files, zipped as the official archive lays them out, fetch and verify."""
    real = REAL_UCI
    if not (real / "yelp_labelled.txt").exists():
        pytest.skip(f"no copy of uci-sentiment in {real.parent}")
    www, base, _ = server
    files = {f"sentiment labelled sentences/{p.name}": p.read_bytes() for p in real.iterdir()}
    files["__MACOSX/sentiment labelled sentences/._readme.txt"] = b"junk"
    (www / "uci.zip").write_bytes(make_zip(files))
    info = data.DATASETS["uci-sentiment"]
    source = dataclasses.replace(info.sources[0], url=f"{base}/uci.zip")
    monkeypatch.setitem(data.DATASETS, "uci-sentiment", dataclasses.replace(info, sources=(source,)))
    df = load_dataset("uci-sentiment")  # not cached in the empty home: fetches, verifies, loads
    assert len(df) == 3000
    assert sorted(p.name for p in (home / "uci-sentiment").iterdir()) == sorted(
        ["yelp_labelled.txt", "amazon_cells_labelled.txt", "imdb_labelled.txt", "readme.txt"]
    )
    assert leftovers(home) == ["uci-sentiment"]


def test_retry_after_a_server_error(tmp_path, home, monkeypatch):
    """A transient failure (HTTP 503 on the first request) is retried by pooch and then succeeds."""
    www = tmp_path / "flaky"
    www.mkdir()
    (www / "tiny.zip").write_bytes(make_zip({"tiny/a.txt": GOOD}))
    hits = []

    class Flaky(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(www), **kwargs)

        def do_GET(self):
            hits.append(self.path)
            if len(hits) == 1:
                self.send_error(503, "busy")
            else:
                super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        monkeypatch.setattr(data, "RETRIES", 1)
        tiny(monkeypatch, f"http://127.0.0.1:{httpd.server_address[1]}/tiny.zip")
        assert (fetch_dataset("tiny", progress=False) / "a.txt").read_bytes() == GOOD
        assert len(hits) == 2
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_verify_names_a_damaged_file(server, home, monkeypatch, capsys):
    www, base, _ = server
    (www / "tiny.zip").write_bytes(make_zip({"tiny/a.txt": GOOD}))
    tiny(monkeypatch, f"{base}/tiny.zip")
    fetch_dataset("tiny", progress=False)
    assert main(["datasets", "verify", "tiny"]) == 0
    assert capsys.readouterr().out == "tiny: ok (sha256 of a.txt)\n"
    (home / "tiny" / "a.txt").write_bytes(GOOD.replace(b"good", b"evil"))
    assert main(["datasets", "verify", "tiny"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tiny: checksum mismatch for a.txt" in err and "--force" in err
    (home / "tiny" / "a.txt").unlink()
    assert main(["datasets", "verify"]) == 0  # not cached any more: nothing to verify
    assert "no data set is cached" in capsys.readouterr().out
    assert main(["datasets", "verify", "tiny"]) == 2
    assert "not in" in capsys.readouterr().err


def test_progress_bar_follows_the_download(server, home, monkeypatch):
    """pooch's progress protocol drives the rich bar: it ends at the file's size."""
    www, base, _ = server
    payload = make_zip({"tiny/a.txt": GOOD, "tiny/pad.bin": bytes(300_000)})
    (www / "tiny.zip").write_bytes(payload)
    tiny(monkeypatch, f"{base}/tiny.zip")
    bars = []
    real = data._progress

    def keep(enabled):
        bar = real(enabled)
        bars.append(bar)
        return bar

    monkeypatch.setattr(data, "_progress", keep)
    fetch_dataset("tiny", progress=True)
    (task,) = bars[0].tasks
    assert task.total == len(payload) and task.completed == len(payload)
