"""Which cgroup hierarchies this host has, read from /proc/self/mountinfo.

- v2: /sys/fs/cgroup is cgroup2 (every current distribution);
- v1: one cgroup (v1) mount per controller (or named hierarchy);
- hybrid: v1 controllers plus a cgroup2 mount (here /sys/fs/cgroup/unified)
  that may hold a controller or none.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Layout:
    mode: str  # "v1", "v2" or "hybrid"
    v1: dict[str, str] = field(default_factory=dict)  # hierarchy name -> mount point
    unified: str | None = None  # the cgroup2 mount point, if any

    @property
    def v1_controllers(self) -> set[str]:
        return {c for name in self.v1 for c in name.split(",") if not c.startswith("name=")}


def _unescape(path: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \\ooo.
    return path.encode().decode("unicode_escape") if "\\" in path else path


@functools.cache
def detect() -> Layout:
    v1: dict[str, str] = {}
    unified = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            point, fstype, superopts = _unescape(fields[4]), fields[sep + 1], fields[sep + 3]
            if fstype == "cgroup2":
                unified = unified or point
            elif fstype == "cgroup":
                names = [o for o in superopts.split(",")
                         if o not in ("rw", "ro") and not o.startswith(("release_agent=", "clone_children",
                                                                          "xattr", "noprefix", "cpuset_v2_mode"))]
                v1.setdefault(",".join(names), point)
    if not v1:
        return Layout("v2", unified=unified)
    return Layout("hybrid" if unified else "v1", v1=v1, unified=unified)
