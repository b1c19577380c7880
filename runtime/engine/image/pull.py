"""The importer: copy one image from a Source into the Store.

    top manifest -> (index: pick the platform) -> manifest
    -> config (verified) -> each layer: blob (verified), unpacked once per
       diffID (verified) -> manifest blob -> name

Layers are fetched and unpacked concurrently.  Nothing becomes visible in
the store before it is verified, and a failed import removes whatever it
added that no image references.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import time
from typing import Any

from runtime.core.errors import HuskError, ImageError
from runtime.engine.image import digest as digests
from runtime.engine.image import mediatypes as mt
from runtime.engine.image import platform as platforms
from runtime.engine.image.layerstream import TarStream
from runtime.engine.image.progress import Progress
from runtime.engine.image.source import Source, TransientError
from runtime.engine.image.store import Store, remove_tree
from runtime.engine.image.unpack import Limits, unpack

RETRIES = int(os.environ.get("HUSK_PULL_RETRIES", "4"))
BACKOFF = float(os.environ.get("HUSK_PULL_BACKOFF", "0.5"))
WORKERS = 3
MAX_JSON = 4 << 20


def retrying(what: str, fn):
    """Call FN, retrying transient failures with exponential backoff."""
    delay = BACKOFF
    for attempt in range(RETRIES + 1):
        try:
            return fn(attempt)
        except TransientError as e:
            if attempt == RETRIES:
                raise ImageError(what, f"{e} (gave up after {RETRIES + 1} attempts)") from None
            time.sleep(e.retry_after if e.retry_after is not None else delay)
            delay *= 2


class Importer:
    def __init__(self, store: Store, source: Source, *, platform: platforms.Platform | None = None,
                 progress: Progress | None = None) -> None:
        self.store = store
        self.source = source
        self.platform = platform or platforms.host()
        self.progress = progress or Progress(quiet=True)
        self.what = source.description

    # Entry point

    def run(self, reference: str, names: list[str], expect_digest: str | None = None,
            expect_size: int | None = None) -> str:
        """Import the image REFERENCE names in the source; returns its manifest digest."""
        self.store.ensure()
        added: list[str] = []
        try:
            with self.store.using():
                digest = self._import(reference, expect_digest, added, expect_size)
                for name in names:
                    self.store.set_name(name, digest)
            return digest
        except BaseException:
            self._forget(added)
            raise

    def _import(self, reference: str, expect_digest: str | None, added: list[str],
                expect_size: int | None = None) -> str:
        data, media_type = retrying(self.what, lambda _: self.source.manifest(reference))
        if expect_digest:
            self._verify_json(data, expect_digest, f"manifest {expect_digest}", expect_size)
        media_type = media_type if media_type not in ("", "application/json", "text/plain") \
            else _guess_media_type(data)
        if media_type in mt.INDEXES:
            index = _json(data, self.what, "index")
            desc = platforms.select(index, self.platform, self.what)
            _check_descriptor(desc, self.what, "index manifest")
            data, media_type = retrying(self.what, lambda _: self.source.manifest(desc["digest"]))
            self._verify_json(data, desc["digest"], "manifest", desc.get("size"))
            media_type = desc.get("mediaType") or media_type
        if media_type in mt.DOCKER_SCHEMA1:
            raise ImageError(self.what, "Docker schema 1 manifests are not supported (deprecated since 2017); "
                            "re-push the image with a current client")
        manifest = _json(data, self.what, "manifest")
        # Both the type it was served (or described) as and the one it
        # declares must be an image manifest husk knows: anything else
        # (an artifact, a future format) is refused by name, not guessed at.
        declared = manifest.get("mediaType")
        for media in (media_type, declared):
            if media and media not in mt.MANIFESTS:
                raise ImageError(self.what, f"unsupported manifest media type {media!r}")
        if not media_type and not declared:
            raise ImageError(self.what, "manifest: no media type")
        config_desc, layers = self._check_manifest(manifest)

        config_bytes = self._fetch_small(config_desc, "config", added)
        config = _json(config_bytes, self.what, "config")
        diff_ids = ((config.get("rootfs") or {}).get("diff_ids"))
        if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
            raise ImageError(self.what, f"config: rootfs.diff_ids lists {len(diff_ids or [])} layers, "
                            f"the manifest {len(layers)}")
        for i, d in enumerate(diff_ids):
            digests.check(d, f"{self.what}: config rootfs.diff_ids[{i}]")

        todo = [(i, desc, diff_ids[i]) for i, desc in enumerate(layers) if not self.store.has_layer(diff_ids[i])]
        for i, desc, diff_id in todo:
            self.progress.start(desc["digest"], desc["digest"][7:19], desc.get("size", 0),
                                "Waiting")
        if todo:
            with concurrent.futures.ThreadPoolExecutor(min(WORKERS, len(todo))) as pool:
                futures = [pool.submit(self._layer, i, desc, diff_id, added) for i, desc, diff_id in todo]
                try:
                    for f in concurrent.futures.as_completed(futures):
                        f.result()
                finally:
                    for f in futures:
                        f.cancel()
            self.progress.finish()
        digest = digests.of_bytes(data)
        if not self.store.has_blob(digest):
            self.store.put_bytes(data, digest, "manifest")
            added.append(digest)
        self.progress.line(f"Writing manifest {digest}")
        return digest

    # Checks

    def _verify_json(self, data: bytes, digest: str, what: str, size: int | None = None) -> None:
        v = digests.Verifier(digest, size, f"{self.what}: {what}")
        v.update(data)
        v.verify()

    def _check_manifest(self, manifest: dict) -> tuple[dict, list[dict]]:
        config = manifest.get("config")
        _check_descriptor(config, self.what, "manifest config")
        if config.get("mediaType") not in mt.CONFIGS:
            raise ImageError(self.what, f"manifest config: media type {config.get('mediaType')!r} is not a "
                            "container image config (an artifact?)")
        layers = manifest.get("layers")
        if not isinstance(layers, list):
            raise ImageError(self.what, "manifest: layers must be a list")
        for i, layer in enumerate(layers):
            _check_descriptor(layer, self.what, f"manifest layers[{i}]")
            media = layer.get("mediaType", "")
            if media in mt.FOREIGN or layer.get("urls"):
                raise ImageError(self.what, f"manifest layers[{i}]: foreign layer {media!r} "
                                "(downloaded from outside the registry) is not supported")
            if mt.layer_compression(media) is None:
                raise ImageError(self.what, f"manifest layers[{i}]: unknown layer media type {media!r}")
        return config, layers

    # Blobs

    def _fetch_small(self, desc: dict, what: str, added: list[str]) -> bytes:
        if not self.store.has_blob(desc["digest"]):
            if desc.get("size", 0) > MAX_JSON:
                raise ImageError(self.what, f"{what} {desc['digest']} is larger than {MAX_JSON} bytes")
            self._download(desc, f"{what} {desc['digest'][:19]}", added)
        return self.store.read_blob(desc["digest"])

    def _download(self, desc: dict, what: str, added: list[str], key: str | None = None) -> None:
        """Fetch a blob into tmp/, hashing as it comes; resume or restart
        on transient errors; rename into blobs/ once verified."""
        fetch = _Fetch(self, desc, what, key)
        try:
            fetch.complete()
            fetch.commit(added)
        finally:
            fetch.cleanup()

    def _layer(self, index: int, desc: dict, diff_id: str, added: list[str]) -> None:
        key = desc["digest"]
        what = f"{index} ({desc['digest'][:19]}) of {self.what}"
        if not self.store.has_blob(desc["digest"]):
            self.progress.state(key, "Pulling")
            fetch = _Fetch(self, desc, f"layer {what}", key)
            try:
                if self._stream_layer(fetch, desc, diff_id, what, added):
                    self.progress.state(key, "Done")
                    return
                # The stream broke off: resume the download into the file
                # (HTTP Range from the bytes already hashed), then unpack.
                self.progress.state(key, "Downloading")
                fetch.complete()
                fetch.commit(added)
            finally:
                fetch.cleanup()
        self.progress.state(key, "Extracting")
        self.unpack_layer(desc, diff_id, what)
        added.append(diff_id)
        self.progress.state(key, "Done")

    def _stream_layer(self, fetch: _Fetch, desc: dict, diff_id: str, what: str, added: list[str]) -> bool:
        """Download and unpack in one pass: the bytes are hashed and saved
        while they are inflated and extracted into a private temp dir.
        Nothing becomes visible before both the blob digest and the diffID
        match.  False: the download broke off, FETCH holds what came."""
        try:
            body = retrying(fetch.label, lambda _: self.source.blob(desc, 0))
        except HuskError:
            return False
        try:
            with body:
                self.unpack_layer(desc, diff_id, what, raw=_Tee(body, fetch),
                                  before_commit=lambda: (fetch.check_complete(), fetch.commit(added)))
        except TransientError:
            return False
        except digests.DigestError:
            raise
        except HuskError:
            if fetch.committed:
                raise  # the blob is right: the layer itself is broken
            # The stream did not unpack.  Fetch the rest: a download that
            # fails or a blob that is wrong is the error to report; if the
            # blob is right, the file is unpacked instead (and a layer that
            # is really broken fails there again, with its own error).
            fetch.complete()
            fetch.verifier.verify()
            return False
        added.append(diff_id)
        return True

    def unpack_layer(self, desc: dict, diff_id: str, what: str, raw=None, before_commit=None) -> None:
        """Unpack a layer (from RAW, or from its blob in the store) into a
        temp dir, check its diffID, and rename it into place."""
        if self.store.has_layer(diff_id) and raw is None:
            return
        import contextlib
        import tempfile

        dest = tempfile.mkdtemp(dir=self.store.ensure().tmp, prefix="layer-")
        os.chmod(dest, 0o755)  # a root entry ("./") in the tar overrides this
        try:
            source = (contextlib.nullcontext(raw) if raw is not None
                      else open(self.store.blob_path(desc["digest"]), "rb"))
            limits = Limits.from_env()
            with source as f, TarStream(f, mt.layer_compression(desc["mediaType"]), f"layer {what}",
                                        max_bytes=limits.max_bytes + 2048 * limits.max_entries) as stream:
                stats = unpack(stream, dest, what, limits)
                stream.drain()
            if before_commit:
                before_commit()
            if stream.diff_id != diff_id:
                raise ImageError(f"layer {what}", f"diffID mismatch: the layer is {stream.diff_id}, "
                                f"the config says {diff_id}")
            self.store.commit_layer(dest, diff_id, {"size": stats.bytes, "entries": stats.entries,
                                                    "blob": desc["digest"]})
        finally:
            remove_tree(dest)

    # Undo

    def _forget(self, added: list[str]) -> None:
        """Remove content this import added, unless another image uses it
        (another import may have referenced it meanwhile: gc decides)."""
        if added:
            from runtime.engine.image import gc
            gc.collect(self.store, wait=False)


class _Fetch:
    """One blob on its way into the store: a temp file, a running digest,
    and the resume logic (HTTP Range from the bytes already hashed)."""

    def __init__(self, importer: Importer, desc: dict, what: str, key: str | None) -> None:
        self.importer = importer
        self.desc = desc
        self.key = key
        self.label = f"{importer.what}: {what}"
        self.verifier = digests.Verifier(desc["digest"], desc.get("size"), self.label)
        self.tmp = importer.store.temp_file()
        self.committed = False

    def take(self, chunk: bytes) -> None:
        self.verifier.update(chunk)
        self.tmp.write(chunk)
        if self.key:
            self.importer.progress.advance(self.key, len(chunk))

    def _restart(self) -> None:
        self.verifier = digests.Verifier(self.desc["digest"], self.desc.get("size"), self.label)
        self.tmp.seek(0)
        self.tmp.truncate()

    def check_complete(self) -> None:
        size = self.desc.get("size")
        if size is not None and self.verifier.count < size:
            raise TransientError(f"connection closed after {self.verifier.count} of {size} bytes")

    def complete(self) -> None:
        """Fetch whatever is still missing, with retries."""
        source = self.importer.source

        def attempt(_n: int) -> None:
            offset = self.verifier.count if source.resumable else 0
            if offset == 0 and self.verifier.count:
                self._restart()
            size = self.desc.get("size")
            if size is not None and offset == size:
                return
            try:
                body = source.blob(self.desc, offset)
            except TransientError as e:
                if not (offset and e.retry_after == 0):  # 0: no Range support, start again
                    raise
                self._restart()
                body = source.blob(self.desc, 0)
            with body:
                while chunk := body.read(1 << 20):
                    self.take(chunk)
            self.check_complete()

        retrying(self.label, attempt)

    def commit(self, added: list[str]) -> None:
        self.verifier.verify()
        self.tmp.flush()
        os.fsync(self.tmp.fileno())
        self.tmp.close()
        self.importer.store.commit_blob(self.tmp.name, self.desc["digest"])
        self.committed = True
        added.append(self.desc["digest"])

    def cleanup(self) -> None:
        self.tmp.close()
        if os.path.exists(self.tmp.name):
            os.unlink(self.tmp.name)


class _Tee:
    """A blob body read by the unpacker that also feeds a _Fetch."""

    def __init__(self, body, fetch: _Fetch) -> None:
        self.body = body
        self.fetch = fetch

    def read(self, n: int = -1) -> bytes:
        chunk = self.body.read(n)
        if chunk:
            self.fetch.take(chunk)
        return chunk


def _check_descriptor(desc: Any, what: str, field: str) -> None:
    if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
        raise ImageError(what, f"{field}: not a descriptor (needs mediaType, digest, size)")
    digests.check(desc["digest"], f"{what}: {field}.digest")
    size = desc.get("size")
    # The size is checked with the digest: a descriptor without one would
    # let a registry stream without end before the digest could fail.
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ImageError(what, f"{field}.size: {size!r} is not a byte count")


def _json(data: bytes, what: str, field: str) -> dict:
    try:
        value = json.loads(data)
    except ValueError as e:
        raise ImageError(what, f"{field}: not JSON: {e}") from None
    if not isinstance(value, dict):
        raise ImageError(what, f"{field}: not a JSON object")
    return value


def _guess_media_type(data: bytes) -> str:
    from runtime.engine.image.layout import media_type_of

    return media_type_of(data)
