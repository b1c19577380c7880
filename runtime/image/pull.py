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

from runtime.errors import HuskError
from runtime.image import digest as digests
from runtime.image import mediatypes as mt
from runtime.image import platform as platforms
from runtime.image.layerstream import TarStream
from runtime.image.progress import Progress
from runtime.image.source import Source, TransientError
from runtime.image.store import Store, remove_tree
from runtime.image.unpack import unpack

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
                raise HuskError(what, f"{e} (gave up after {RETRIES + 1} attempts)") from None
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

    def run(self, reference: str, names: list[str], expect_digest: str | None = None) -> str:
        """Import the image REFERENCE names in the source; returns its manifest digest."""
        self.store.ensure()
        added: list[str] = []
        try:
            with self.store.using():
                digest = self._import(reference, expect_digest, added)
                for name in names:
                    self.store.set_name(name, digest)
            return digest
        except BaseException:
            self._forget(added)
            raise

    def _import(self, reference: str, expect_digest: str | None, added: list[str]) -> str:
        data, media_type = retrying(self.what, lambda _: self.source.manifest(reference))
        if expect_digest:
            self._verify_json(data, expect_digest, f"manifest {expect_digest}")
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
            raise HuskError(self.what, "Docker schema 1 manifests are not supported (deprecated since 2017); "
                            "re-push the image with a current client")
        manifest = _json(data, self.what, "manifest")
        if media_type not in mt.MANIFESTS and manifest.get("mediaType") not in mt.MANIFESTS:
            raise HuskError(self.what, f"unsupported manifest media type {media_type or manifest.get('mediaType')!r}")
        config_desc, layers = self._check_manifest(manifest)

        config_bytes = self._fetch_small(config_desc, "config", added)
        config = _json(config_bytes, self.what, "config")
        diff_ids = ((config.get("rootfs") or {}).get("diff_ids"))
        if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
            raise HuskError(self.what, f"config: rootfs.diff_ids lists {len(diff_ids or [])} layers, "
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
            raise HuskError(self.what, f"manifest config: media type {config.get('mediaType')!r} is not a "
                            "container image config (an artifact?)")
        layers = manifest.get("layers")
        if not isinstance(layers, list):
            raise HuskError(self.what, "manifest: layers must be a list")
        for i, layer in enumerate(layers):
            _check_descriptor(layer, self.what, f"manifest layers[{i}]")
            media = layer.get("mediaType", "")
            if media in mt.FOREIGN or layer.get("urls"):
                raise HuskError(self.what, f"manifest layers[{i}]: foreign layer {media!r} "
                                "(downloaded from outside the registry) is not supported")
            if mt.layer_compression(media) is None:
                raise HuskError(self.what, f"manifest layers[{i}]: unknown layer media type {media!r}")
        return config, layers

    # Blobs

    def _fetch_small(self, desc: dict, what: str, added: list[str]) -> bytes:
        if not self.store.has_blob(desc["digest"]):
            if desc.get("size", 0) > MAX_JSON:
                raise HuskError(self.what, f"{what} {desc['digest']} is larger than {MAX_JSON} bytes")
            self._download(desc, f"{what} {desc['digest'][:19]}", added)
        return self.store.read_blob(desc["digest"])

    def _download(self, desc: dict, what: str, added: list[str], key: str | None = None) -> None:
        """Fetch a blob into tmp/, hashing as it comes; resume or restart
        on transient errors; rename into blobs/ once verified."""
        label = f"{self.what}: {what}"
        verifier = digests.Verifier(desc["digest"], desc.get("size"), label)
        tmp = self.store.temp_file()
        try:
            def attempt(n: int) -> None:
                nonlocal verifier
                offset = verifier.count if self.source.resumable else 0
                if offset == 0 and verifier.count:
                    verifier = digests.Verifier(desc["digest"], desc.get("size"), label)
                    tmp.seek(0)
                    tmp.truncate()
                try:
                    body = self.source.blob(desc, offset)
                except TransientError as e:
                    if offset and e.retry_after == 0:  # no Range support: start again
                        verifier = digests.Verifier(desc["digest"], desc.get("size"), label)
                        tmp.seek(0)
                        tmp.truncate()
                        body = self.source.blob(desc, 0)
                    else:
                        raise
                with body:
                    while True:
                        chunk = body.read(1 << 20)
                        if not chunk:
                            break
                        verifier.update(chunk)
                        tmp.write(chunk)
                        if key:
                            self.progress.advance(key, len(chunk))
                if desc.get("size") is not None and verifier.count < desc["size"]:
                    raise TransientError(f"{what}: connection closed after {verifier.count} of {desc['size']} bytes")

            retrying(label, attempt)
            verifier.verify()
            tmp.flush()
            os.fsync(tmp.fileno())
            tmp.close()
            self.store.commit_blob(tmp.name, desc["digest"])
            added.append(desc["digest"])
        finally:
            tmp.close()
            if os.path.exists(tmp.name):
                os.unlink(tmp.name)

    def _layer(self, index: int, desc: dict, diff_id: str, added: list[str]) -> None:
        key = desc["digest"]
        if not self.store.has_blob(desc["digest"]):
            self.progress.state(key, "Downloading")
            self._download(desc, f"layer {index} ({desc['digest'][:19]})", added, key)
        self.progress.state(key, "Extracting")
        self.unpack_layer(desc, diff_id, f"{index} ({desc['digest'][:19]}) of {self.what}")
        added.append(diff_id)
        self.progress.state(key, "Done")

    def unpack_layer(self, desc: dict, diff_id: str, what: str) -> None:
        if self.store.has_layer(diff_id):
            return
        tmp = self.store.ensure().tmp
        import tempfile

        dest = tempfile.mkdtemp(dir=tmp, prefix="layer-")
        os.chmod(dest, 0o755)  # a root entry ("./") in the tar overrides this
        try:
            with open(self.store.blob_path(desc["digest"]), "rb") as raw, \
                    TarStream(raw, mt.layer_compression(desc["mediaType"]), f"layer {what}") as stream:
                stats = unpack(stream, dest, what)
                stream.drain()
            if stream.diff_id != diff_id:
                raise HuskError(f"layer {what}", f"diffID mismatch: the layer is {stream.diff_id}, "
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
            from runtime.image import gc
            gc.collect(self.store, wait=False)


def _check_descriptor(desc: Any, what: str, field: str) -> None:
    if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
        raise HuskError(what, f"{field}: not a descriptor (needs mediaType, digest, size)")
    digests.check(desc["digest"], f"{what}: {field}.digest")
    size = desc.get("size")
    if size is not None and (not isinstance(size, int) or size < 0):
        raise HuskError(what, f"{field}.size: {size!r} is not a byte count")


def _json(data: bytes, what: str, field: str) -> dict:
    try:
        value = json.loads(data)
    except ValueError as e:
        raise HuskError(what, f"{field}: not JSON: {e}") from None
    if not isinstance(value, dict):
        raise HuskError(what, f"{field}: not a JSON object")
    return value


def _guess_media_type(data: bytes) -> str:
    from runtime.image.layout import _media_type_of

    return _media_type_of(data)
