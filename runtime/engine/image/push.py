"""`husk push`: an image from the store to a registry, by the OCI
distribution spec's upload protocol (what docker push and skopeo do).

For the config and each layer, in the manifest's order:

    HEAD /v2/NAME/blobs/DIGEST              already there: nothing is sent
    POST /v2/NAME/blobs/uploads/?mount=DIGEST&from=OTHER
                                            201: the registry linked the blob from
                                            another repository of its own (one the
                                            store knows holds it); 202: it did not,
                                            and that answer opened an upload
    POST /v2/NAME/blobs/uploads/            202 + Location: an upload session
    PUT  LOCATION?digest=DIGEST   (body)    a blob of up to CHUNK bytes in one request
    PATCH LOCATION (Content-Range), ...     a larger one in CHUNK pieces, each answer
    PUT  LOCATION?digest=DIGEST             naming the next Location; the PUT closes it

then the manifest, byte for byte as stored (so its digest is kept), with
its media type: PUT /v2/NAME/manifests/TAG.  A failure the pull side
would retry (a reset, a 5xx, a 429) starts that blob again, with backoff;
every answer is read with a bound; the registry checks each digest, and
husk checks the one the registry says it stored for the manifest.
"""

from __future__ import annotations

import json
import os
import urllib.parse

from runtime.core.errors import ImageError
from runtime.engine.image import images, reference
from runtime.engine.image import mediatypes as mt
from runtime.engine.image.progress import Progress
from runtime.engine.image.pull import retrying
from runtime.engine.image.reference import Reference
from runtime.engine.image.registry import Registry, RegistryError, discard
from runtime.engine.image.store import Store

# Blobs above this go up in PATCH pieces of this size (HUSK_PUSH_CHUNK, bytes).
CHUNK = int(os.environ.get("HUSK_PUSH_CHUNK", str(32 << 20)))
READ_SIZE = 1 << 20


def tag(store: Store, source: str, target: str) -> str:
    """`husk tag SOURCE TARGET`: one more name for an image; returns it."""
    digest, _ = images.find(store, source)
    name = reference.parse(target)
    if name.digest:
        raise ImageError("tag", f"{target!r}: a tag names no digest (repository[:tag])")
    store.set_name(name.name, digest)
    return name.name


def push(store: Store, text: str, *, tls_verify: bool = True, cert_dir: str | None = None,
         authfile: str | None = None, quiet: bool = False) -> str:
    """Send the image TEXT names to the registry its name holds; returns
    docker's last line, `TAG: digest: sha256:... size: N`."""
    digest, name = images.find(store, text)
    ref = reference.parse(name or text)
    if ref.digest and not ref.tag:
        raise ImageError("push", f"{text!r}: push needs a tag to put the manifest under (husk tag IMAGE REPO:TAG)")
    data = store.read_blob(digest)
    manifest = json.loads(data)
    media_type = manifest.get("mediaType") or mt.OCI_MANIFEST
    if "layers" not in manifest:
        raise ImageError("push", f"{text!r}: the stored manifest is {media_type}, not an image manifest")
    progress = Progress(quiet=quiet)
    progress.line(f"The push refers to repository [{ref.repository}]")
    registry = Registry(ref.domain, tls_verify=tls_verify, cert_dir=cert_dir, authfile=authfile)
    uploads = _Uploads(store, registry, ref, progress, _mount_sources(store, ref))
    for desc in [manifest["config"], *manifest["layers"]]:
        retrying(f"push {desc['digest'][7:19]}", lambda attempt, d=desc: uploads.blob(d))
    progress.finish()

    def put_manifest(attempt: int) -> None:
        resp = registry.send("PUT", f"/v2/{ref.path}/manifests/{ref.tag}", uploads.scope,
                             {"Content-Type": media_type, "Content-Length": str(len(data))},
                             what=f"manifest {ref.path}:{ref.tag}", body=data, ok=(200, 201))
        stored = resp.getheader("Docker-Content-Digest")
        discard(resp)
        resp.close()
        if stored and stored != digest:
            raise RegistryError(registry.host, f"the registry stored the manifest as {stored}, not {digest}")

    retrying(f"push {ref}", put_manifest)
    return f"{ref.tag}: digest: {digest} size: {len(data)}"


def _mount_sources(store: Store, ref: Reference) -> dict[str, list[str]]:
    """Blob digest -> the other repositories of the same registry that the
    store's names say hold it (pulled from there, or pushed there)."""
    out: dict[str, list[str]] = {}
    for name, digest in sorted(store.names().items()):
        try:
            other = reference.parse(name)
            manifest = store.manifest(digest)
        except (ImageError, OSError, ValueError):
            continue
        if other.domain != ref.domain or other.path == ref.path:
            continue
        for desc in [manifest.get("config") or {}, *(manifest.get("layers") or [])]:
            if desc.get("digest") and other.path not in out.setdefault(desc["digest"], []):
                out[desc["digest"]].append(other.path)
    return out


class _Uploads:
    def __init__(self, store: Store, registry: Registry, ref: Reference, progress: Progress,
                 mount_from: dict[str, list[str]]) -> None:
        self.store = store
        self.registry = registry
        self.ref = ref
        self.progress = progress
        self.mount_from = mount_from
        self.scope = f"repository:{ref.path}:pull,push"
        self.base = f"/v2/{ref.path}/blobs"

    def blob(self, desc: dict) -> None:
        digest, size = desc["digest"], int(desc["size"])
        key = digest[7:19]
        self.progress.start(key, key, size, "Preparing")
        resp = self.registry.send("HEAD", f"{self.base}/{digest}", self.scope, what=f"blob {key}", ok=(200, 404))
        discard(resp)
        resp.close()
        if resp.status == 200:
            self.progress.state(key, "Layer already exists")
            return
        location = None
        for other in self.mount_from.get(digest, []):
            query = urllib.parse.urlencode({"mount": digest, "from": other})
            resp = self._post(f"{self.base}/uploads/?{query}", f"{self.scope} repository:{other}:pull", key)
            if resp.status == 201:
                self.progress.state(key, f"Mounted from {other}")
                return
            location = self._location(resp)  # 202: an upload opened instead
            break
        if location is None:
            location = self._location(self._post(f"{self.base}/uploads/", self.scope, key))
        self.progress.state(key, "Pushing")
        path = self.store.blob_path(digest)
        offset = 0
        while size - offset > CHUNK:
            resp = self.registry.send(
                "PATCH", location, self.scope,
                {"Content-Type": "application/octet-stream", "Content-Length": str(CHUNK),
                 "Content-Range": f"{offset}-{offset + CHUNK - 1}"},
                what=f"blob {key}", body=lambda o=offset: _Piece(path, o, CHUNK, self.progress, key), ok=(202,))
            location = self._location(resp)
            offset += CHUNK
        close = location + ("&" if "?" in location else "?") + urllib.parse.urlencode({"digest": digest})
        resp = self.registry.send(
            "PUT", close, self.scope,
            {"Content-Type": "application/octet-stream", "Content-Length": str(size - offset)},
            what=f"blob {key}", body=lambda: _Piece(path, offset, size - offset, self.progress, key), ok=(201,))
        discard(resp)
        resp.close()
        self.progress.state(key, "Pushed")

    def _post(self, path: str, scope: str, key: str):
        return self.registry.send("POST", path, scope, {"Content-Length": "0"}, what=f"blob {key}", body=b"",
                                  ok=(201, 202))

    def _location(self, resp) -> str:
        """The upload's Location, as a path on this registry."""
        location = resp.getheader("Location") or ""
        discard(resp)
        resp.close()
        url = urllib.parse.urlsplit(location)
        if not url.path or (url.netloc and url.netloc != self.registry.host):
            raise RegistryError(self.registry.host, f"upload location {location!r} is not on this registry")
        return url.path + (f"?{url.query}" if url.query else "")


class _Piece:
    """LENGTH bytes of the file at PATH from OFFSET, as a body http.client
    reads, counted into the progress display."""

    def __init__(self, path: str, offset: int, length: int, progress: Progress, key: str) -> None:
        self.file = open(path, "rb")
        self.file.seek(offset)
        self.left = length
        self.progress = progress
        self.key = key

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left, READ_SIZE)
        data = self.file.read(n)
        self.left -= len(data)
        self.progress.advance(self.key, len(data))
        return data

    def close(self) -> None:
        self.file.close()
