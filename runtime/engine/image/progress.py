"""Pull progress: one line per layer and a total on a terminal (redrawn in
place, as docker and podman do), plain lines otherwise, nothing with -q."""

from __future__ import annotations

import sys
import threading
import time


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


class Progress:
    def __init__(self, quiet: bool = False, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = not quiet and self.stream.isatty()
        self.rows: dict[str, list] = {}  # key -> [label, done, total, state]
        self.lock = threading.Lock()
        self.drawn = 0
        self.last = 0.0

    def line(self, text: str) -> None:
        if self.quiet:
            return
        with self.lock:
            self._clear()
            print(text, file=self.stream, flush=True)
            self.drawn = 0

    def start(self, key: str, label: str, total: int, state: str = "Downloading") -> None:
        with self.lock:
            self.rows[key] = [label, 0, total, state]
        if not self.tty and state != "Waiting":
            self.line(f"{state} {label} ({_mb(total)})")
        self._draw()

    def advance(self, key: str, n: int) -> None:
        with self.lock:
            self.rows[key][1] += n
        self._draw()

    def state(self, key: str, state: str) -> None:
        with self.lock:
            self.rows[key][3] = state
        if not self.tty:
            self.line(f"{state} {self.rows[key][0]}")
        self._draw(force=True)

    def _clear(self) -> None:
        if self.tty and self.drawn:
            self.stream.write(f"\x1b[{self.drawn}A\x1b[J")

    def _draw(self, force: bool = False) -> None:
        if not self.tty:
            return
        with self.lock:
            now = time.monotonic()
            if not force and now - self.last < 0.1:
                return
            self.last = now
            self._clear()
            done = total = 0
            for label, d, t, state in self.rows.values():
                self.stream.write(f"{label[:19]:19}  {state:11}  {_mb(d):>9} / {_mb(t)}\n")
                done += d
                total += t
            self.stream.write(f"{'total':19}  {'':11}  {_mb(done):>9} / {_mb(total)}\n")
            self.stream.flush()
            self.drawn = len(self.rows) + 1

    def finish(self) -> None:
        self._draw(force=True)
        with self.lock:
            self.drawn = 0
