"""Whether the rlimits a config asks for can be set on this host."""

from __future__ import annotations

import resource

from runtime.core.errors import ConfigError
from runtime.core.linux.constants import RLIM_INFINITY, RLIMITS

CAP_SYS_RESOURCE = 24
_NAMES = {number: name for name, number in RLIMITS.items()}


def _have_cap(cap: int) -> bool:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) & (1 << cap))
    return False


def check_raisable(rlimits: list[tuple[int, int, int]]) -> None:
    """A hard limit above husk's own needs CAP_SYS_RESOURCE; say so before
    the container is half made, naming the entry."""
    if _have_cap(CAP_SYS_RESOURCE):
        return
    for i, (rtype, _soft, hard) in enumerate(rlimits):
        current = resource.getrlimit(rtype)[1]
        current = RLIM_INFINITY if current == resource.RLIM_INFINITY else current
        if hard > current:
            raise ConfigError(f"process.rlimits[{i}]",
                              f"{_NAMES.get(rtype, rtype)} hard limit {hard} is above this host's {current}, "
                              "and husk lacks CAP_SYS_RESOURCE to raise it")
