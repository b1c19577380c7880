"""A layer blob as a stream of tar bytes: decompressed in-process (zlib,
zstandard) and hashed on the way, so the diffID is checked in the same
pass that unpacks the layer."""

from __future__ import annotations

import hashlib
import zlib

from runtime.errors import HuskError


class DiffIdError(HuskError):
    pass


class TarStream:
    """read(n) returns decompressed bytes and feeds them to a sha256."""

    def __init__(self, raw, compression: str, what: str) -> None:
        self.raw = raw
        self.what = what
        self.sha = hashlib.sha256()
        self.compression = compression
        self.buffer = b""
        self.eof = False
        if compression == "gzip":
            self.z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif compression == "zstd":
            import zstandard  # only for zstd layers: zstd is not in Python 3.11's stdlib

            self.reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        elif compression != "":
            raise HuskError(what, f"unknown compression {compression!r}")

    def _more(self, want: int) -> bytes:
        if self.compression == "":
            return self.raw.read(want)
        if self.compression == "zstd":
            try:
                return self.reader.read(want)
            except Exception as e:  # zstandard.ZstdError
                raise HuskError(self.what, f"zstd: {e}") from None
        out = b""
        while not out:
            data = self.raw.read(1 << 20)
            try:
                if not data:
                    if not self.z.eof:
                        raise HuskError(self.what, "gzip stream ends early")
                    return b""
                if self.z.eof:  # a second gzip member (concatenated gzip is valid)
                    rest = self.z.unused_data + data
                    self.z = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    data = rest
                out = self.z.decompress(data)
            except zlib.error as e:
                raise HuskError(self.what, f"gzip: {e}") from None
        return out

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            chunks = [self.read(1 << 20)]
            while chunks[-1]:
                chunks.append(self.read(1 << 20))
            return b"".join(chunks)
        while len(self.buffer) < n and not self.eof:
            data = self._more(max(n, 1 << 20))
            if not data:
                self.eof = True
                break
            self.buffer += data
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        self.sha.update(out)
        return out

    def drain(self) -> None:
        """Read what tarfile left (end-of-archive padding): the diffID covers it."""
        while self.read(1 << 20):
            pass

    @property
    def diff_id(self) -> str:
        return "sha256:" + self.sha.hexdigest()
