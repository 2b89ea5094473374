"""Kill a real process with SIGKILL at a chosen point of a textclass command (a test helper).

``run_killed(argv, k)`` forks: the child (a real process, sharing the test's imports so it
starts at once) runs ``textclass.cli.main(argv)`` and sends itself SIGKILL just before its k-th
*event*: a filesystem change (open for writing, mkdir, rename, replace, unlink, rmtree) or the
start of a model fit. ``k=0`` never kills and reports how many events the command had, so a test
can pick seeded random points among them.
"""

from __future__ import annotations

import builtins
import io
import os
import shutil
import signal
import sys
import time

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT


def _install(kill_at: int) -> list[int]:
    seen = [0]

    def hook(fn, counts=lambda *a, **k: True):
        def wrapped(*args, **kwargs):
            if counts(*args, **kwargs):
                seen[0] += 1
                if seen[0] == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
            return fn(*args, **kwargs)

        return wrapped

    def writes(file, mode="r", *args, **kwargs):
        return any(c in mode for c in "wax+")

    for name in ("replace", "rename", "mkdir", "unlink", "rmdir"):
        setattr(os, name, hook(getattr(os, name)))
    os.open = hook(os.open, lambda path, flags, *a, **k: bool(flags & WRITE_FLAGS))
    shutil.rmtree = hook(shutil.rmtree)
    builtins.open = io.open = hook(builtins.open, writes)
    from textclass.estimator import TextClassifier

    TextClassifier.fit = hook(TextClassifier.fit)
    return seen


def run_killed(argv: list[str], kill_at: int, *, timeout: float = 120) -> tuple[int, int]:
    """Run the command in a forked child; return (exit status, or -9 if killed; events seen)."""
    from textclass.cli import main

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_end)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            seen = _install(kill_at)
            code = main([str(a) for a in argv])
            os.write(write_end, str(seen[0]).encode())
        finally:
            sys.stdout.flush()
            os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise TimeoutError(f"{argv} did not finish in {timeout} s")
        time.sleep(0.02)
    with os.fdopen(read_end, "rb") as f:
        events = int(f.read() or 0)
    return (-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)), events


def hidden(folder) -> list[str]:
    """Hidden entries anywhere under ``folder``: what an interrupted write leaves."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*"))
