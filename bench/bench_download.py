"""Download throughput: textclass's pooch path beside the hand-written urllib loop it replaced.

Run: ``python bench/bench_download.py [--mb 64]``. A file of random bytes is served from a local
HTTP server on 127.0.0.1 (never the internet) and fetched three ways in the same run, best of 3:
the former ``urllib.request`` loop (64 KiB reads), ``textclass.data._download`` (pooch with
64 KiB chunks) and pooch with its default 1 KiB chunks (why textclass sets the chunk size).
"""

from __future__ import annotations

import argparse
import http.server
import os
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pooch

from textclass.data import _download


def urllib_loop(url: str, dest: Path) -> None:
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
        for chunk in iter(lambda: response.read(1 << 16), b""):
            out.write(chunk)


def pooch_default(url: str, dest: Path) -> None:
    pooch.retrieve(url, known_hash=None, fname=dest.name, path=dest.parent)


def textclass_pooch(url: str, dest: Path) -> None:
    _download(url, dest, "bench", None)


def best_of(fn, url: str, folder: Path, repeats: int = 3) -> float:
    times = []
    for i in range(repeats):
        dest = folder / f"{fn.__name__}-{i}.bin"
        start = time.perf_counter()
        fn(url, dest)
        times.append(time.perf_counter() - start)
        dest.unlink()
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=64, help="size of the served file in MB")
    args = parser.parse_args()
    pooch.get_logger().setLevel("WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        www, out = Path(tmp) / "www", Path(tmp) / "out"
        www.mkdir()
        out.mkdir()
        (www / "file.bin").write_bytes(os.urandom(args.mb << 20))

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **k):
                super().__init__(*a, directory=str(www), **k)

            def log_message(self, *a):
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/file.bin"
        rows = [(fn.__name__, best_of(fn, url, out)) for fn in (urllib_loop, textclass_pooch, pooch_default)]
        httpd.shutdown()
    base = rows[0][1]
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; file: {args.mb} MB, best of 3")
    print(f"{'path':<18}{'seconds':>10}{'MB/s':>10}{'vs urllib':>11}")
    for name, t in rows:
        print(f"{name:<18}{t:>10.3f}{args.mb / t:>10.1f}{t / base:>10.2f}x")


if __name__ == "__main__":
    main()
