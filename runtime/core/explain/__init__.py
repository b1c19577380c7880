"""`husk run|create|exec --explain`: every step that isolates a process,
recorded where it happens, shown after the run.

The steps come from three places, into one file (HUSK_TRACE_FD, opened
for appending):

    Python's planning and the engine   runtime/core/trace.py
    the C front end                    native/front/trace.c
    husk-init (through the front end)  native/src/trace.h, MSG_TRACE records

This module runs the command with that file (run_explained), reads the
steps back in time order (load), and why.py says what each protects
against; render.py prints them as text or JSON, page.py as one HTML page.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sys
import tempfile
from dataclasses import asdict, dataclass
from typing import IO

from runtime.core.errors import HuskError


FORMATS = ("text", "json", "html")


@dataclass
class Step:
    t_us: int  # since the first step
    who: str  # planning, engine, front end, husk-init, container init
    mechanism: str
    step: str  # the stable name why.py explains
    call: str  # the syscall (or action) and its key arguments
    source: str  # path:line from the top of husk's tree
    why: str

    def as_json(self) -> dict:
        return asdict(self)


@dataclass
class Timeline:
    command: list[str]
    exit_code: int
    started_us: int  # wall clock, µs since the epoch
    steps: list[Step]

    @property
    def duration_us(self) -> int:
        return self.steps[-1].t_us if self.steps else 0


def load(lines: list[str], command: list[str], exit_code: int) -> Timeline:
    """The timeline of the JSON lines the processes wrote (a line cut short
    by a process that died mid-write is left out)."""
    from runtime.core.explain.why import why

    raw = []
    for line in lines:
        try:
            raw.append(json.loads(line))
        except ValueError:
            continue
    # One clock (CLOCK_REALTIME) for all; a stable sort keeps each
    # process's own order for steps in the same microsecond.
    raw.sort(key=lambda r: r["t_us"])
    start = raw[0]["t_us"] if raw else 0
    steps = [Step(r["t_us"] - start, r["who"], r["mechanism"], r["step"], r["call"], r["source"],
                  why(r["step"], r["call"])) for r in raw]
    return Timeline(command, exit_code, start, steps)


def run_explained(fmt: str, out_path: str | None, *, above: int = 3) -> None:
    """Go on with the command in a child that records its steps; in this
    process, wait for it, show its timeline in FMT (on stderr, or in
    OUT_PATH) and exit with its status.  Returns only in the child.

    The trace file's fd is put past ABOVE (the fds the process is given,
    3..ABOVE-1), which the front end would otherwise pass on."""
    try:  # before anything runs: a file that cannot be written is said at once
        out = open(out_path, "w") if out_path is not None else None
    except OSError as e:
        raise HuskError("explain", f"--explain-file {out_path}: {e.strerror}") from None
    record = tempfile.TemporaryFile(prefix="husk-explain-")
    fd = fcntl.fcntl(record.fileno(), fcntl.F_DUPFD, above + 16)  # inheritable, for the front end
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)  # the mode "a" set none
    command = sys.argv[1:]
    child = os.fork()
    if child == 0:
        record.close()
        if out is not None:
            out.close()
        os.environ["HUSK_TRACE_FD"] = str(fd)
        sys.argv = [sys.argv[0], *without_explain(sys.argv[1:])]  # executor.again() execs the front end with them
        return
    os.close(fd)
    # The terminal's ^C and ^\ reach the child (and the container) as they
    # would without --explain; this process only waits, then reports.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: os.kill(child, signum))
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    code = 128 - code if code < 0 else code
    record.seek(0)
    timeline = load(record.read().decode(errors="replace").splitlines(), command, code)
    write(timeline, fmt, out)
    sys.stdout.flush()
    os._exit(code)


def without_explain(args: list[str]) -> list[str]:
    """ARGS without --explain[=F] and --explain-file[=]FILE."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "--explain-file":
            skip = True
        elif not (a == "--explain" or a.startswith("--explain=") or a.startswith("--explain-file=")):
            out.append(a)
    return out


def write(timeline: Timeline, fmt: str, out: IO[str] | None) -> None:
    """TIMELINE in FMT to OUT (opened by run_explained), or to stderr."""
    from runtime.core.explain import page, render

    text = {"text": render.text, "json": render.json_text, "html": page.html}[fmt](timeline)
    if out is None:
        sys.stderr.write(text)
        sys.stderr.flush()
        return
    with out:
        out.write(text)
    print(f"husk: --explain: {len(timeline.steps)} steps written to {out.name}", file=sys.stderr)


