"""Digests: checked before any content is used.

Every blob is hashed while it is written; the temp file becomes visible
(rename) only if the digest and size match what the manifest promised.
"""

from __future__ import annotations

import hashlib
import re

from runtime.core.errors import ImageError

_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")
_SHA512 = re.compile(r"^sha512:[0-9a-f]{128}$")


class DigestError(ImageError):
    pass


def check(digest: str, what: str = "digest") -> str:
    """Refuse anything but sha256/sha512 in canonical form: a digest names a path in the store."""
    if not isinstance(digest, str) or not (_SHA256.match(digest) or _SHA512.match(digest)):
        raise DigestError(what, f"{digest!r} is not a sha256:<64 hex> or sha512:<128 hex> digest")
    return digest


def hasher(digest: str):
    return hashlib.new(check(digest).split(":", 1)[0])


def of_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Verifier:
    """Hashes what passes through; `verify()` raises on a digest or size mismatch."""

    def __init__(self, digest: str, size: int | None, what: str) -> None:
        self.expected = digest
        self.size = size
        self.what = what
        self.hash = hasher(digest)
        self.count = 0

    def update(self, data: bytes) -> None:
        self.count += len(data)
        if self.size is not None and self.count > self.size:
            raise DigestError(self.what, f"more than the {self.size} bytes the manifest declares")
        self.hash.update(data)

    def verify(self) -> None:
        if self.size is not None and self.count != self.size:
            raise DigestError(self.what, f"size {self.count} does not match the declared {self.size}")
        got = f"{self.expected.split(':', 1)[0]}:{self.hash.hexdigest()}"
        if got != self.expected:
            raise DigestError(self.what, f"digest mismatch: got {got}, expected {self.expected}")
