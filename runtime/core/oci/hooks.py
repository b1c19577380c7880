"""Hooks that run in the runtime's namespace: prestart, createRuntime,
poststart and poststop.  (createContainer and startContainer run inside
the container; husk-init runs those, in native/src/process.c.)

One contract for both runners: argv is args (or the path alone), the
environment is env (else empty), the state JSON is on stdin, stdout goes
to stderr, the timeout is enforced, and a failure reads
"<kind> hook: <path>: <why>": the errno of an exec that failed, "exit
status N" or "killed by signal N", "timed out after N s".
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from runtime.core.errors import HuskError, warn


def run_hooks(kind: str, hooks: list[dict[str, Any]], state: dict[str, Any], *, fatal: bool) -> None:
    """Run each hook with the state JSON on stdin.  A failing hook stops
    the operation when fatal; otherwise it is reported and the rest run."""
    payload = json.dumps(state).encode()
    for h in hooks:
        problem = None
        try:
            proc = subprocess.run(h["args"] or [h["path"]], executable=h["path"], env=dict(_env(h["env"])),
                                  input=payload, timeout=h["timeout"] or None,
                                  stdout=sys.stderr.fileno(), close_fds=True)
            if proc.returncode != 0:
                problem = f"exit status {proc.returncode}" if proc.returncode > 0 else \
                    f"killed by signal {-proc.returncode}"
        except subprocess.TimeoutExpired:
            problem = f"timed out after {h['timeout']} s"
        except OSError as e:  # the exec itself failed
            problem = e.strerror
        if problem:
            if fatal:
                raise HuskError(f"{kind} hook", f"{h['path']}: {problem}")
            warn(f"{kind} hook {h['path']}: {problem}")


def _env(entries: list[str]):
    for e in entries:
        key, _, value = e.partition("=")
        yield key, value
