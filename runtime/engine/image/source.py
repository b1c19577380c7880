"""What every image source gives the importer: the top manifest for a
reference, and blobs by descriptor.

Sources: registry.RegistrySource (the distribution API), layout.LayoutSource
(an OCI image layout directory, also inside an oci-archive) and
archive.DockerArchiveSource (`docker save` tarballs).
"""

from __future__ import annotations

from typing import IO, Protocol


class TransientError(Exception):
    """A failure worth retrying (connection reset, 5xx, 429)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Source(Protocol):
    description: str
    resumable: bool  # can blob() start at an offset?

    def manifest(self, reference: str) -> tuple[bytes, str]:
        """(bytes, media type) of the manifest or index that REFERENCE (a tag or digest) names."""

    def blob(self, descriptor: dict, offset: int = 0) -> IO[bytes]:
        """A readable stream of the blob, from OFFSET when resumable."""
