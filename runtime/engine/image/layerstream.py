"""A layer blob as a stream of tar bytes: decompressed in-process (zlib,
zstandard) and hashed on the way, so the diffID is checked in the same
pass that unpacks the layer.

Decompression and hashing run in a helper thread, a few chunks ahead of
the extractor: zlib, zstandard and hashlib release the GIL, so on two
cores inflating the next megabyte overlaps with writing the files of the
last one (containerd gets the same effect from unpigz in a pipe).
"""

from __future__ import annotations

import hashlib
import queue
import threading
import zlib

from runtime.core.errors import HuskError, ImageError
from runtime.engine.image.source import TransientError

CHUNK = 1 << 20
_EOF = object()


class TarStream:
    """read(n) returns decompressed bytes; diff_id is their sha256."""

    def __init__(self, raw, compression: str, what: str, max_bytes: int | None = None) -> None:
        if compression not in ("", "gzip", "zstd"):
            raise ImageError(what, f"unknown compression {compression!r}")
        self.raw = raw
        self.what = what
        self.compression = compression
        self.sha = hashlib.sha256()
        # The tar stream may not run on for ever: what the unpacker allows,
        # plus headers and padding (a bomb after the end-of-archive too).
        self.max_bytes = max_bytes
        self.total = 0
        self.buffer = bytearray()
        self.pos = 0
        self.eof = False
        self.chunks: queue.Queue = queue.Queue(maxsize=8)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._produce, name="husk-inflate", daemon=True)
        self.thread.start()

    # The producer thread

    def _chunks(self):
        if self.compression == "":
            while data := self.raw.read(CHUNK):
                yield data
        elif self.compression == "gzip":
            z = zlib.decompressobj(16 + zlib.MAX_WBITS)
            ended = False
            while data := self.raw.read(CHUNK):
                while data:
                    if ended:  # bytes after a finished member: concatenated gzip is valid
                        z = zlib.decompressobj(16 + zlib.MAX_WBITS)
                        ended = False
                    # max_length: a megabyte of gzip can inflate to a gigabyte;
                    # take it a chunk at a time (the rest waits in unconsumed_tail).
                    out = z.decompress(data, CHUNK)
                    if out:
                        yield out
                    ended = z.eof
                    data = z.unused_data if ended else z.unconsumed_tail
            if not ended:
                raise ImageError(self.what, "gzip stream ends early")
        else:
            import zstandard  # only for zstd layers: zstd is not in Python 3.11's stdlib

            reader = zstandard.ZstdDecompressor().stream_reader(self.raw, read_across_frames=True)
            while data := reader.read(CHUNK):
                yield data

    def _put(self, item) -> bool:
        while not self.stopping.is_set():
            try:
                self.chunks.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for data in self._chunks():
                self.total += len(data)
                if self.max_bytes is not None and self.total > self.max_bytes:
                    raise ImageError(self.what, f"more than {self.max_bytes} bytes of tar once decompressed "
                                    "(HUSK_MAX_LAYER_BYTES)")
                self.sha.update(data)
                if not self._put(data):
                    return
            self._put(_EOF)
        except (HuskError, TransientError) as e:
            self._put(e)  # a broken download stays a TransientError: the importer resumes it
        except zlib.error as e:
            self._put(ImageError(self.what, f"gzip: {e}"))
        except Exception as e:  # zstandard.ZstdError, OSError from the blob file
            self._put(ImageError(self.what, f"{self.compression or 'read'}: {e}"))

    # The consumer side (tarfile)

    def _fill(self) -> bool:
        item = self.chunks.get()
        if item is _EOF:
            self.eof = True
            return False
        if isinstance(item, BaseException):
            self.eof = True
            raise item
        if self.pos:
            del self.buffer[:self.pos]
            self.pos = 0
        self.buffer += item
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            while not self.eof and self._fill():
                pass
            n = len(self.buffer) - self.pos
        while len(self.buffer) - self.pos < n and not self.eof:
            self._fill()
        out = bytes(self.buffer[self.pos:self.pos + n])
        self.pos += len(out)
        return out

    def drain(self) -> None:
        """Read what tarfile left (end-of-archive padding): the diffID covers it."""
        while not self.eof:
            self._fill()
            self.pos = len(self.buffer)
        self.thread.join()

    def close(self) -> None:
        self.stopping.set()
        self.thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def diff_id(self) -> str:
        return "sha256:" + self.sha.hexdigest()
