"""docker's units on the command line and in records: sizes (10m),
durations (1m30s) and timestamps (RFC 3339 in UTC, as docker writes
them).  Small and pure: every engine module may import it."""

from __future__ import annotations

import datetime
import re

from runtime.core.errors import ConfigError

_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30,
               "gb": 1 << 30}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_SCALE = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def parse_size(text: str, flag: str) -> int:
    """docker's sizes: 10k, 5m, 1g (powers of 1024), or bytes."""
    number = text.rstrip("bBkKmMgG")
    unit = text[len(number):].lower()
    if not number.isdigit() or unit not in _SIZE_UNITS:
        raise ConfigError(flag, f"{text!r}: a size is bytes or a number with k, m or g")
    return int(number) * _SIZE_UNITS[unit]


def parse_duration(text: str, flag: str) -> float:
    """docker's durations: 500ms, 30s, 1m, 1h, 1m30s; in seconds."""
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ConfigError(flag, f"{text!r}: a duration such as 500ms, 30s or 1m")
    return sum(float(n) * _DURATION_SCALE[u] for n, u in parts)


def now() -> str:
    """This moment as docker stamps records: 2026-12-07T02:37:13.123456Z."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def seconds_between(start: str | None, end: str | None) -> float | None:
    """END - START for two of now()'s stamps; None if either is missing."""
    try:
        a = datetime.datetime.fromisoformat(start.replace("Z", "+00:00"))
        b = datetime.datetime.fromisoformat(end.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None
    return (b - a).total_seconds()


def human_duration(seconds: float | None) -> str:
    """docker ps's wording: Less than a second, 5 seconds, About a minute, 3 hours."""
    if seconds is None or seconds < 1:
        return "Less than a second"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n > 1 else ''}" if n > 1 else f"About a{'n' if unit == 'hour' else ''} {unit}"
    n = int(seconds)
    return f"{n} second{'s' if n > 1 else ''}"
