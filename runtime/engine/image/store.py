"""The content-addressed image store (default /var/lib/husk).

    blobs/sha256/<hex>          manifests, configs and layer blobs, verified
    layers/sha256/<hex>/        one unpacked layer, keyed by its diffID; an
                                overlayfs lower directory shared by every
                                image and container that uses the layer
    layers/sha256/<hex>.json    its size and entry count
    images.json                 image names -> manifest digest
    containers/<id>/            a container made from an image: its record,
                                bundle config and overlay upper/work/merged
    tmp/                        downloads and unpacks in flight

Writes are atomic: content goes to tmp/ and is renamed into place only
once verified, so a reader never sees a partial blob or layer.  Two locks
(flock(2)): `store.lock` serialises small metadata updates; `gc.lock` is
held shared by every pull and container creation and exclusively by
garbage collection, so GC never removes what another command is about
to reference.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from runtime.core.errors import ImageError
from runtime.core.paths import StoreLayout
from runtime.core.paths import default_store_root as default_root
from runtime.engine.image import digest as digests


class Store:
    def __init__(self, root: str | None = None) -> None:
        self.root = os.path.abspath(root or default_root())
        layout = StoreLayout(self.root)
        self.blobs = layout.blobs
        self.layers = layout.layers
        self.containers = layout.containers
        self.tmp = layout.tmp
        self.names_file = layout.names_file

    def ensure(self) -> Store:
        for d in (self.blobs, self.layers, self.containers, self.tmp,
                  os.path.join(self.blobs, "sha256"), os.path.join(self.layers, "sha256")):
            os.makedirs(d, mode=0o700, exist_ok=True)
        return self

    # Locks

    @contextlib.contextmanager
    def _flock(self, name: str, mode: int) -> Iterator[None]:
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(self.root, name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)

    def metadata_lock(self):
        return self._flock("store.lock", fcntl.LOCK_EX)

    def using(self):
        """Held while content is being added or referenced."""
        return self._flock("gc.lock", fcntl.LOCK_SH)

    def collecting(self):
        return self._flock("gc.lock", fcntl.LOCK_EX)

    # Blobs

    def blob_path(self, digest: str) -> str:
        algo, hexd = digests.check(digest).split(":", 1)
        return os.path.join(self.blobs, algo, hexd)

    def has_blob(self, digest: str) -> bool:
        return os.path.exists(self.blob_path(digest))

    def read_blob(self, digest: str) -> bytes:
        with open(self.blob_path(digest), "rb") as f:
            return f.read()

    def temp_file(self, prefix: str = "blob-"):
        return tempfile.NamedTemporaryFile(dir=self.tmp, prefix=prefix, delete=False)

    def commit_blob(self, temp_path: str, digest: str) -> str:
        """Move a verified temp file into place (rename: atomic, and two
        pulls writing the same content is harmless)."""
        path = self.blob_path(digest)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        os.rename(temp_path, path)
        return path

    def put_bytes(self, data: bytes, digest: str | None = None, what: str = "blob") -> str:
        digest = digest or digests.of_bytes(data)
        v = digests.Verifier(digest, len(data), what)
        v.update(data)
        v.verify()
        if not self.has_blob(digest):
            with self.temp_file() as f:
                f.write(data)
            self.commit_blob(f.name, digest)
        return digest

    # Layers

    def layer_dir(self, diff_id: str) -> str:
        algo, hexd = digests.check(diff_id, "diffID").split(":", 1)
        return os.path.join(self.layers, algo, hexd)

    def has_layer(self, diff_id: str) -> bool:
        return os.path.isdir(self.layer_dir(diff_id))

    def layer_info(self, diff_id: str) -> dict[str, Any]:
        try:
            with open(self.layer_dir(diff_id) + ".json") as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def commit_layer(self, temp_dir: str, diff_id: str, info: dict[str, Any]) -> None:
        dest = self.layer_dir(diff_id)
        write_json(dest + ".json", info)
        try:
            os.rename(temp_dir, dest)
        except OSError:
            if not self.has_layer(diff_id):
                raise
            remove_tree(temp_dir)  # another pull unpacked it first

    # Names

    def names(self) -> dict[str, str]:
        try:
            with open(self.names_file) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}
        except ValueError as e:
            raise ImageError("image store", f"{self.names_file}: {e}") from None

    def set_name(self, name: str, manifest_digest: str) -> None:
        with self.metadata_lock():
            names = self.names()
            names[name] = manifest_digest
            write_json(self.names_file, names)

    def remove_names(self, names: list[str]) -> None:
        with self.metadata_lock():
            current = self.names()
            for n in names:
                current.pop(n, None)
            write_json(self.names_file, current)

    # Images

    def manifest(self, manifest_digest: str) -> dict[str, Any]:
        return json.loads(self.read_blob(manifest_digest))

    def config(self, manifest_digest: str) -> dict[str, Any]:
        return json.loads(self.read_blob(self.manifest(manifest_digest)["config"]["digest"]))

    def diff_ids(self, manifest_digest: str) -> list[str]:
        return list(self.config(manifest_digest)["rootfs"]["diff_ids"])

    # Containers made from images

    def container_dir(self, cid: str) -> str:
        return os.path.join(self.containers, cid)


def write_json(path: str, value: Any) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def remove_tree(path: str) -> None:
    """rm -rf that never follows symlinks (shutil.rmtree uses fds on Linux)
    and also clears what unpacking made read-only."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, onerror=_chmod_and_retry)
    else:
        os.unlink(path)


def _chmod_and_retry(func, path, _exc):
    try:
        os.chmod(os.path.dirname(path), 0o700)
        func(path)
    except OSError:
        if os.path.lexists(path):
            raise
