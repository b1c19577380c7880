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
from runtime.engine import record as records
from runtime.engine import units
from runtime.engine.record import ContainerRecord, Health, Healthcheck, HealthResult

DEFAULT_INTERVAL = DEFAULT_TIMEOUT = 30.0
DEFAULT_START_PERIOD = 0.0
DEFAULT_RETRIES = 3
KEEP_LOG = 5
MAX_OUTPUT = 4096


def from_flags(cmd: str | None, interval: str | None, timeout: str | None, retries: int | None,
               start_period: str | None, none: bool, image_check: dict[str, Any] | None) -> Healthcheck | None:
    """The record's healthcheck: the flags over the image's (IMAGE_CHECK,
    the image config's Healthcheck, its durations in ns), or None for no check."""
    if none:
        return None
    image_check = image_check or {}
    test = ["CMD-SHELL", cmd] if cmd else list(image_check.get("Test") or [])
    if not test or test[0] == "NONE":
        return None
    if test[0] not in ("CMD", "CMD-SHELL") or len(test) < 2:
        raise ConfigError("--health-cmd", f"{test!r}: the image's Healthcheck.Test is not CMD or CMD-SHELL")

    def seconds(key: str, flag: str, given: str | None, default: float) -> float:
        if given is not None:
            value = units.parse_duration(given, flag)
        else:
            value = image_check[key] / 1e9 if image_check.get(key) else default
        if key != "StartPeriod" and value <= 0:
            raise ConfigError(flag, "must be more than 0")
        return value

    check = Healthcheck(test=test,
                        interval=seconds("Interval", "--health-interval", interval, DEFAULT_INTERVAL),
                        timeout=seconds("Timeout", "--health-timeout", timeout, DEFAULT_TIMEOUT),
                        start_period=seconds("StartPeriod", "--health-start-period", start_period,
                                             DEFAULT_START_PERIOD),
                        retries=retries if retries is not None else image_check.get("Retries") or DEFAULT_RETRIES)
    if check.retries < 1:
        raise ConfigError("--health-retries", "must be 1 or more")
    return check


def run_check(root: str, store_root: str, text: str) -> tuple[int, str]:
    """One check of the container TEXT names: (0 healthy or 1 unhealthy, its output)."""
    from runtime.engine.monitor import husk_command

    record = records.find(store_root, text)
    check = record.healthcheck
    if not check:
        raise ConfigError("healthcheck", f"container {record.name} has no health check")
    test = check.test
    argv = ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]
    start = units.now()
    try:
        p = subprocess.run(husk_command(root, store_root) + ["exec", record.id, *argv], capture_output=True,
                           timeout=check.timeout, stdin=subprocess.DEVNULL)
        code, output = p.returncode, (p.stdout + p.stderr).decode(errors="replace")
    except subprocess.TimeoutExpired:
        code, output = -1, f"Health check exceeded timeout ({check.timeout:g}s)"
    result = HealthResult(start=start, end=units.now(), exit_code=code, output=output[:MAX_OUTPUT])
    with records.locked(store_root, record.id) as present:
        if present:
            record = records.load(store_root, record.id) or record
            records.update(store_root, record.id, health=_next(record, check, result))
    return (0 if code == 0 else 1), output


def _next(record: ContainerRecord, check: Healthcheck, result: HealthResult) -> Health:
    health = record.health or Health()
    if result.exit_code == 0:
        health.status, health.failing_streak = "healthy", 0
    else:
        ran = units.seconds_between(record.started_at, result.end) or 0
        if not (health.status == "starting" and ran < check.start_period):
            health.failing_streak += 1
            if health.failing_streak >= check.retries:
                health.status = "unhealthy"
    health.log = (health.log + [result])[-KEEP_LOG:]
    return health
