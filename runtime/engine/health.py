"""Health checks: docker's --health-cmd (or an image's Healthcheck).

The container's monitor (husk-monitor --health-interval) is the clock:
every interval it runs `husk healthcheck run ID`, which execs the test in
the container (as `husk exec` does: its namespaces, cgroup and security
setup), waits up to the timeout, and records the result in the
container's record under its lock, in docker's State.Health shape:

    Status         starting -> healthy | unhealthy
    FailingStreak  failures in a row; Retries of them make it unhealthy
    Log            the last five checks: Start, End, ExitCode, Output

Failures in the start period do not count while it is still "starting".
"""

from __future__ import annotations

import subprocess
from typing import Any

from runtime.core.errors import ConfigError
from runtime.engine import lifecycle
from runtime.engine.image import containers
from runtime.engine.image.store import Store

DEFAULTS = {"Interval": 30.0, "Timeout": 30.0, "Retries": 3, "StartPeriod": 0.0}
KEEP_LOG = 5
MAX_OUTPUT = 4096


def from_flags(cmd: str | None, interval: str | None, timeout: str | None, retries: int | None,
               start_period: str | None, none: bool, image_check: dict[str, Any] | None) -> dict[str, Any] | None:
    """The record's healthcheck: the flags over the image's (its
    durations in ns, docker's unit), or None for no check."""
    if none:
        return None
    image_check = image_check or {}
    test = ["CMD-SHELL", cmd] if cmd else list(image_check.get("Test") or [])
    if not test or test[0] == "NONE":
        return None
    if test[0] not in ("CMD", "CMD-SHELL") or len(test) < 2:
        raise ConfigError("--health-cmd", f"{test!r}: the image's Healthcheck.Test is not CMD or CMD-SHELL")
    check = {"Test": test}
    for key, flag, given in (("Interval", "--health-interval", interval), ("Timeout", "--health-timeout", timeout),
                             ("StartPeriod", "--health-start-period", start_period)):
        if given is not None:
            check[key] = lifecycle.parse_duration(given, flag)
        elif image_check.get(key):
            check[key] = image_check[key] / 1e9
        else:
            check[key] = DEFAULTS[key]
        if key != "StartPeriod" and check[key] <= 0:
            raise ConfigError(flag, "must be more than 0")
    check["Retries"] = retries if retries is not None else image_check.get("Retries") or DEFAULTS["Retries"]
    if check["Retries"] < 1:
        raise ConfigError("--health-retries", "must be 1 or more")
    return check


def run_check(root: str, store_root: str, text: str) -> tuple[int, str]:
    """One check of the container TEXT names: (0 healthy or 1 unhealthy, its output)."""
    from runtime.engine.monitor import husk_command

    store = Store(store_root)
    record = containers.find(store, text)
    check = record.get("healthcheck")
    if not check:
        raise ConfigError("healthcheck", f"container {record['name']} has no health check")
    test = check["Test"]
    argv = ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]
    start = containers.now()
    try:
        p = subprocess.run(husk_command(root, store_root) + ["exec", record["id"], *argv], capture_output=True,
                           timeout=check["Timeout"], stdin=subprocess.DEVNULL)
        code, output = p.returncode, (p.stdout + p.stderr).decode(errors="replace")
    except subprocess.TimeoutExpired:
        code, output = -1, f"Health check exceeded timeout ({check['Timeout']:g}s)"
    entry = {"Start": start, "End": containers.now(), "ExitCode": code, "Output": output[:MAX_OUTPUT]}
    with containers.locked(store, record["id"]) as present:
        if present:
            record = containers.load(store, record["id"]) or record
            containers.update(store, record["id"], health=_next(record, check, entry))
    return (0 if code == 0 else 1), output


def _next(record: dict[str, Any], check: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    health = dict(record.get("health") or {"Status": "starting", "FailingStreak": 0, "Log": []})
    if entry["ExitCode"] == 0:
        health.update(Status="healthy", FailingStreak=0)
    else:
        ran = lifecycle._seconds_between(record.get("started_at"), entry["End"]) or 0
        if not (health["Status"] == "starting" and ran < check["StartPeriod"]):
            health["FailingStreak"] += 1
            if health["FailingStreak"] >= check["Retries"]:
                health["Status"] = "unhealthy"
    health["Log"] = (list(health.get("Log") or []) + [entry])[-KEEP_LOG:]
    return health
