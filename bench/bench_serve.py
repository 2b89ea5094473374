"""``textclass serve`` under load: wrk, 64 connections, single-text POST /predict requests.

Each row starts the real service (``textclass serve RUN --port P``) in its own process, waits until
it answers, lets wrk (a C client, so the client does not eat the server's CPU) send a warm-up and
then about --requests measured requests (wrk runs for a time; the table shows the count), and reads the server's resident memory after the load. Rows:
bow-logreg with and without micro-batching, cnn (the tutorial's, 2 epochs) with and without.

    python bench/bench_serve.py                  # 10,000 requests per row
    python bench/bench_serve.py --requests 2000  # a quicker look

Needs wrk (Debian: ``apt-get install wrk``) and the serve extra. Goals (issue 8): bow-logreg
>= 1,000 requests/s with p99 < 20 ms; cnn >= 500 requests/s with micro-batching.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

LUA = r"""
-- Single-text bodies from a file, one per line, sent in turn by every connection.
local bodies = {}
for line in io.lines(BODIES) do bodies[#bodies + 1] = line end
local headers = {["Content-Type"] = "application/json"}
local sent = 0

function request()
  sent = sent + 1
  return wrk.format("POST", "/predict", headers, bodies[(sent % #bodies) + 1])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, "errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""

ROWS = [  # name, model, serve flags
    ("bow-logreg, micro-batching", "bow-logreg", []),
    ("bow-logreg, one call per request", "bow-logreg", ["--no-batching"]),
    ("cnn, micro-batching", "cnn", []),
    ("cnn, one call per request", "cnn", ["--no-batching"]),
]
GOALS = {"bow-logreg": (1000, 20.0), "cnn": (500, None)}


def train(runs: Path) -> None:
    from textclass.data import load_dataset
    from textclass.train import train_run

    df = load_dataset("uci-sentiment")
    for model, params in (("bow-logreg", {}), ("cnn", {"epochs": 2})):
        if not (runs / model / "model").is_dir():
            started = time.perf_counter()
            train_run(df, model, runs / model, seed=0, params=params)
            print(f"trained {model} in {time.perf_counter() - started:.0f} s", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wrk(url: str, script: Path, seconds: float, connections: int, threads: int) -> dict:
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:.0f}s",
                          "--timeout", "10s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def run_row(run: Path, flags: list[str], script: Path, args) -> dict:
    port = free_port()
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "textclass.cli", "serve", str(run), "--port", str(port), *flags],
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=120) as r:
                    if r.status == 200:
                        break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit(f"textclass serve {run} exited with {server.returncode}")
                time.sleep(0.2)
        ready = time.perf_counter() - started
        # wrk runs for a time, not a count: a 3 s warm-up (not counted) gives the rate, and the
        # measured run lasts long enough for at least about --requests requests (the table shows how many).
        warm = wrk(url, script, 3, args.connections, args.threads)
        seconds = min(args.max_seconds, max(3.0, 1.3 * args.requests * warm["seconds"] / max(1, warm["requests"])))
        result = wrk(url, script, seconds, args.connections, args.threads)
        result.update(ready_s=ready, rss_mb=rss_mb(server.pid), rps=result["requests"] / result["seconds"])
        return result
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000, help="measured requests per row")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--max-seconds", type=float, default=120, help="longest measured run per row")
    parser.add_argument("--runs", type=Path, default=None, help="keep the trained runs here (default: a temp dir)")
    parser.add_argument("--only", default=None, help="rows whose name contains this, e.g. cnn")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench_serve needs wrk: apt-get install wrk")

    from textclass.data import load_dataset

    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs or Path(tmp) / "runs"
        train(runs)
        bodies = Path(tmp) / "bodies.jsonl"
        texts = load_dataset("uci-sentiment")["text"].sample(1000, random_state=0).tolist()
        bodies.write_text("".join(json.dumps({"texts": [t]}) + "\n" for t in texts), encoding="utf-8")
        script = Path(tmp) / "predict.lua"
        script.write_text(f"BODIES = {json.dumps(str(bodies))}\n" + LUA)

        print(f"cores: {os.cpu_count()}; about {args.requests:,} single-text requests per row, {args.connections} "
              f"connections, wrk -t {args.threads}", flush=True)
        results = []
        for name, model, flags in ROWS:
            if args.only and args.only not in name:
                continue
            load = os.getloadavg()[0]
            r = run_row(runs / model, flags, script, args)
            r.update(name=name, model=model, load=load)
            results.append(r)
            print(f"  {name}: {r['rps']:,.0f} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                  f"{r['errors']} errors (load average before: {load:.1f})", flush=True)

    print()
    print("| row | requests | req/s | p50 ms | p99 ms | errors | RSS after (MB) | ready (s) | load avg | goal |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        rps_goal, p99_goal = GOALS[r["model"]]
        goal = "" if "one call" in r["name"] and r["model"] == "cnn" else (
            "met" if r["rps"] >= rps_goal and (p99_goal is None or r["p99_ms"] < p99_goal) and not r["errors"]
            else "MISSED")
        print(f"| {r['name']} | {r['requests']:,} | {r['rps']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
              f"{r['errors']} | {r['rss_mb']:.0f} | {r['ready_s']:.0f} | {r['load']:.1f} | {goal} |")
    by = {r["name"]: r for r in results}
    for model in ("bow-logreg", "cnn"):
        a, b = by.get(f"{model}, micro-batching"), by.get(f"{model}, one call per request")
        if a and b:
            print(f"{model}: micro-batching / one call per request = {a['rps'] / b['rps']:.2f}x requests/s")
    print(f"load average now: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (2 cores shared; other work slows every row)")


if __name__ == "__main__":
    main()
