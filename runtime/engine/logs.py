"""`husk logs`: read a detached container's log as its monitor wrote it.

The format is k8s-file, the one podman and the kubelet's CRI log use:

    2026-12-04T17:02:11.123456789Z stdout F a whole line
    2026-12-04T17:02:11.123456790Z stderr P the first part of a longer li
    2026-12-04T17:02:11.123456791Z stderr F ne, and its end

F ends a line, P is a piece of one (the monitor splits lines longer than
its buffer).  A full container.log is renamed container.log.1 by the
monitor; the two are read in that order.
"""

from __future__ import annotations

import datetime
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from runtime.core.errors import ConfigError, HuskError
from runtime.core.paths import StoreLayout


@dataclass
class Line:
    time: str  # RFC 3339, nanoseconds, UTC
    stream: str  # stdout | stderr
    text: str  # without its newline


def parse_records(data: str) -> Iterator[Line]:
    """Whole lines from k8s-file records (P pieces joined)."""
    pending: dict[str, list[str]] = {}
    for record in data.splitlines():
        try:
            stamp, stream, tag, text = record.split(" ", 3)
        except ValueError:
            parts = record.split(" ")
            if len(parts) != 3:
                continue  # not a record: a torn last line
            stamp, stream, tag, text = *parts, ""
        if tag == "P":
            pending.setdefault(stream, []).append(text)
            continue
        yield Line(stamp, stream, "".join(pending.pop(stream, [])) + text)


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_since(text: str, now: datetime.datetime | None = None) -> str:
    """docker's --since: an RFC 3339 time, a Unix time, or a duration
    back from now (10m, 1h30m, 45s).  Returns an RFC 3339 UTC time that
    compares as text with the log's stamps."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    when = None
    match = _DURATION.match(text)
    if text and match and any(match.groups()):
        h, m, s = (float(g) if g else 0.0 for g in match.groups())
        when = now - datetime.timedelta(hours=h, minutes=m, seconds=s)
    elif re.fullmatch(r"\d+(\.\d+)?", text):
        when = datetime.datetime.fromtimestamp(float(text), datetime.timezone.utc)
    else:
        try:
            when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError("--since", f"{text!r}: give a time (2026-12-04T17:00:00Z), "
                                         "a Unix time or a duration (10m)") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def lines(store_root: str, cid: str, tail: int | None = None, since: str | None = None) -> list[Line]:
    path = StoreLayout(store_root).container_log(cid)
    if not os.path.exists(path):
        raise HuskError("logs", "the container has no log: only a detached one (husk run -d) is logged")
    out = [line for line in parse_records(_read(path + ".1") + _read(path)) if since is None or line.time >= since]
    if tail is not None:
        out = out[-tail:] if tail > 0 else []
    return out


def follow(store_root: str, cid: str, offset: int, running: Callable[[], bool]) -> Iterator[Line]:
    """What is written after OFFSET bytes of container.log, until the
    container has stopped and the file is read to its end.  When the
    monitor rotates the file, the rest of the old one is read by its fd,
    then the new one from its start."""
    path = StoreLayout(store_root).container_log(cid)
    f = open(path, errors="replace")
    f.seek(offset)
    buffer = ""
    try:
        while True:
            chunk = f.read()
            if chunk:
                buffer += chunk
                whole, _, buffer = buffer.rpartition("\n")
                if whole:
                    yield from parse_records(whole)
                continue
            try:
                rotated = os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
            except FileNotFoundError:
                return  # the container was removed
            if rotated:
                f.close()
                f = open(path, errors="replace")
                continue
            if not running():
                return
            time.sleep(0.1)
    finally:
        f.close()


def log_size(store_root: str, cid: str) -> int:
    try:
        return os.stat(StoreLayout(store_root).container_log(cid)).st_size
    except FileNotFoundError:
        return 0
