"""`husk top`: the container's processes as the host's ps(1) shows them.

As docker top does: ps runs on the host with the options given (-ef by
default), and only the rows whose PID is in the container's cgroup are
kept, so the pids are the host's and the users are the host's names.
"""

from __future__ import annotations

import subprocess

from runtime.core import container
from runtime.core.errors import HuskError, NotFound
from runtime.engine.record import ContainerRecord


def top(root: str, record: ContainerRecord, ps_args: list[str]) -> list[list[str]]:
    """The header and rows, each split into its columns (the last, CMD,
    keeps its spaces)."""
    try:
        pids = set(container.pids(root, record.id))
    except (NotFound, HuskError):
        raise HuskError("top", f"container {record.name} is not running") from None
    try:
        out = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise HuskError("top", "ps(1) is not installed (Debian: procps)") from None
    if out.returncode != 0:
        raise HuskError("top", f"ps {' '.join(ps_args)}: {out.stderr.strip() or 'failed'}")
    lines = out.stdout.splitlines()
    header = lines[0].split()
    if "PID" not in header:
        raise HuskError("top", f"ps {' '.join(ps_args)} shows no PID column")
    at, width = header.index("PID"), len(header)
    rows = [header]
    for line in lines[1:]:
        fields = line.split(None, width - 1)
        if len(fields) > at and fields[at].isdigit() and int(fields[at]) in pids:
            rows.append(fields)
    return rows
