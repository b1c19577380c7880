"""Image references, parsed and normalised the way docker and podman do.

    busybox                    -> docker.io/library/busybox:latest
    me/app:1.0                 -> docker.io/me/app:1.0
    localhost:5000/app         -> localhost:5000/app:latest
    app@sha256:<64 hex>        -> docker.io/library/app@sha256:...

The first path component is a registry host when it contains "." or ":"
or is "localhost" (distribution/reference's rule).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.core.errors import ImageError

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAINS = ("index.docker.io", "registry-1.docker.io")
DEFAULT_TAG = "latest"

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")
_DOMAIN = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?)+(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$")


class BadReference(ImageError):
    def __init__(self, ref: str, problem: str) -> None:
        super().__init__("image reference", f"{ref!r}: {problem}")


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str  # repository path without the domain: library/busybox
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        s = self.repository
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s

    @property
    def familiar(self) -> str:
        """What docker prints: busybox:latest, not docker.io/library/busybox:latest."""
        repo = self.repository
        if self.domain == DEFAULT_DOMAIN:
            repo = self.path.removeprefix("library/")
        return repo + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    @property
    def name(self) -> str:
        """The key an image is stored under: repo:tag, or repo@digest when pulled by digest."""
        if self.digest and not self.tag:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag or DEFAULT_TAG}"

    @property
    def reference(self) -> str:
        """What to ask the registry's manifest endpoint for."""
        return self.digest or self.tag or DEFAULT_TAG


def parse(ref: str) -> Reference:
    if not ref or len(ref) > 4096 or ref != ref.strip():
        raise BadReference(ref, "empty, too long or has surrounding spaces")
    rest, digest = ref, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise BadReference(ref, f"bad digest {digest!r}: expected algorithm:hex")
        if digest.startswith("sha256:") and len(digest) != 71:
            raise BadReference(ref, "a sha256 digest has 64 hex digits")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.match(tag):
            raise BadReference(ref, f"bad tag {tag!r}")
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, remainder
        if not _DOMAIN.match(domain):
            raise BadReference(ref, f"bad registry host {domain!r}")
    else:
        domain, path = DEFAULT_DOMAIN, rest
    if domain in LEGACY_DOMAINS:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"library/{path}"
    for component in path.split("/"):
        if not _COMPONENT.match(component):
            raise BadReference(ref, f"bad repository name component {component!r} "
                               "(lowercase letters, digits and . _ - separators)")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)
