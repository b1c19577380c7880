"""Platforms (os/arch/variant) and choosing one manifest from an index."""

from __future__ import annotations

import os
from dataclasses import dataclass

from runtime.core.errors import ImageError

# uname -m -> (GOARCH, variant), the names images use.
_MACHINES = {
    "x86_64": ("amd64", ""), "aarch64": ("arm64", "v8"), "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"),
    "i686": ("386", ""), "i386": ("386", ""), "ppc64le": ("ppc64le", ""), "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""), "mips64": ("mips64", ""), "loongarch64": ("loong64", ""),
}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def matches(self, p: dict) -> bool:
        if p.get("os") != self.os or p.get("architecture") != self.architecture:
            return False
        variant = p.get("variant", "")
        # arm64 images often omit "v8"; only a variant both sides name must agree.
        return not (self.variant and variant and variant != self.variant)


def host() -> Platform:
    arch, variant = _MACHINES.get(os.uname().machine, (os.uname().machine, ""))
    return Platform("linux", arch, variant)


def parse(text: str | None) -> Platform:
    if not text:
        return host()
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ImageError("--platform", f"{text!r}: expected os/arch[/variant], e.g. linux/arm64")
    return Platform(*parts) if len(parts) == 3 else Platform(parts[0], parts[1])


def select(index: dict, wanted: Platform, what: str) -> dict:
    """The manifest descriptor of an index that matches WANTED."""
    manifests = index.get("manifests")
    if not isinstance(manifests, list) or not manifests:
        raise ImageError(what, "the index lists no manifests")
    candidates = [m for m in manifests if isinstance(m, dict) and isinstance(m.get("platform"), dict)
                  and wanted.matches(m["platform"])]
    # An exact variant match beats an entry that does not say.
    candidates.sort(key=lambda m: m["platform"].get("variant", "") != wanted.variant)
    if candidates:
        return candidates[0]
    available = sorted({str(Platform(m["platform"].get("os", "?"), m["platform"].get("architecture", "?"),
                                     m["platform"].get("variant", "")))
                        for m in manifests if isinstance(m, dict) and isinstance(m.get("platform"), dict)})
    raise ImageError(what, f"no image for platform {wanted}; available: {', '.join(available) or 'none'}")
