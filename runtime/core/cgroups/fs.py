"""The cgroup filesystem, behind a seam.

Controllers write linux.resources into interface files through the
current CgroupFS: the kernel's (Kernel, the default), or one that only
records (Recording): the recipe compiler records the writes a create
would make (runtime/core/recipe.py), and unit tests check the writes a
config makes without root or a cgroup mount (tests/unit), as youki's
tests do through its Syscall trait.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from runtime.core.errors import ConfigError, KernelError

# Interface files of which the kernel offers one or another (CFQ's
# blkio.weight or BFQ's blkio.bfq.weight, memsw with swap accounting):
# the first that exists is written; when none does, the last, whose
# write then says the kernel lacks it, or nothing if the last is None.
Names = tuple[str | None, ...]


def choose(names: Names, exists) -> str | None:
    return next((n for n in names[:-1] if n is not None and exists(n)), names[-1])


class Kernel:
    """cgroupfs itself: each write is one write(2) of the whole value, which
    is how the kernel wants interface files written."""

    def write(self, d: str, name: str, text: str, field: str) -> None:
        path = os.path.join(d, name)
        try:
            with open(path, "w") as f:
                f.write(text)
        except FileNotFoundError:
            raise ConfigError(field, f"not supported here: the kernel has no {name}") from None
        except PermissionError as e:
            # kernfs refuses to create a file (EACCES): the interface file
            # is not there, e.g. blkio.leaf_weight without CFQ.
            if not os.path.exists(path):
                raise ConfigError(field, f"not supported here: the kernel has no {name}") from None
            raise KernelError("cgroup", f"{field}: write {text!r} to {path}", e.errno) from None
        except OSError as e:
            raise KernelError("cgroup", f"{field}: write {text!r} to {path}", e.errno) from None

    def exists(self, d: str, name: str) -> bool:
        return os.path.exists(os.path.join(d, name))

    def write_first(self, d: str, names: Names, text: str, field: str) -> None:
        name = choose(names, lambda n: self.exists(d, n))
        if name is not None:
            self.write(d, name, text, field)

    def read(self, d: str, name: str) -> str:
        with open(os.path.join(d, name)) as f:
            return f.read()


class Recording:
    """Writes nothing: keeps (dir, file, text, field) of every write, and
    answers reads and existence checks from FILES (path -> contents)."""

    def __init__(self, files: dict[str, str] | None = None) -> None:
        self.files = dict(files or {})
        self.writes: list[tuple[str, str, str, str]] = []

    def write(self, d: str, name: str, text: str, field: str) -> None:
        self.writes.append((d, name, text, field))

    def exists(self, d: str, name: str) -> bool:
        return os.path.join(d, name) in self.files

    def write_first(self, d: str, names: Names, text: str, field: str) -> None:
        name = choose(names, lambda n: self.exists(d, n))
        if name is not None:
            self.write(d, name, text, field)

    def read(self, d: str, name: str) -> str:
        try:
            return self.files[os.path.join(d, name)]
        except KeyError:
            raise FileNotFoundError(os.path.join(d, name)) from None

    def written(self) -> dict[str, str]:
        """file name -> the last text written to it."""
        return {name: text for _, name, text, _ in self.writes}


_current: Kernel | Recording = Kernel()


def current() -> Kernel | Recording:
    return _current


@contextlib.contextmanager
def using(fs: Kernel | Recording) -> Iterator[Kernel | Recording]:
    global _current
    saved, _current = _current, fs
    try:
        yield fs
    finally:
        _current = saved
