"""Local image sources: OCI image layout directories, oci-archive and
docker-archive tarballs.

Archives are first unpacked into the store's tmp/ with the same safe
unpacker as layers (a hostile archive can no more escape than a hostile
layer), then read as directories.  Every blob is still verified against
its digest when it enters the store.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from dataclasses import dataclass

from runtime.core.errors import ImageError
from runtime.core.linux import safeopen
from runtime.core.linux.syscalls import open_in_root
from runtime.engine.image import digest as digests
from runtime.engine.image import mediatypes as mt

REF_NAME = "org.opencontainers.image.ref.name"
# containers/image's iolimits: what a manifest, index or config may weigh.
MAX_JSON = 4 << 20
CONTAINERD_NAME = "io.containerd.image.name"


@dataclass
class LocalImage:
    names: list[str]  # references as written in the archive (full, familiar or just a tag)
    digest: str  # of the manifest (or index)
    media_type: str
    size: int | None = None  # as the layout's index.json declares it


class _Tree:
    """Files of a layout or an unpacked archive, opened as husk (host root)
    must open files it did not write: resolved inside the tree
    (openat2 RESOLVE_IN_ROOT: a symlinked `blobs` cannot lead out), never
    through a final symlink, without blocking on a FIFO, regular files
    only, and JSON read with a limit (not /dev/zero's endless stream)."""

    path: str
    description: str

    def _open(self, name: str) -> int:
        root = os.open(self.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fd = open_in_root(root, name, safeopen.SAFE_FLAGS)
        except FileNotFoundError:
            raise
        except OSError as e:
            what = "is a symlink" if e.errno == errno.ELOOP else e.strerror
            raise ImageError(self.description, f"{name}: {what}") from None
        finally:
            os.close(root)
        try:
            safeopen.check_regular(fd, name, self.description)
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _read(self, name: str, limit: int = MAX_JSON) -> bytes:
        fd = self._open(name)
        try:
            return safeopen.read_fd(fd, limit, name, self.description)
        finally:
            os.close(fd)

    def _json(self, name: str):
        return json.loads(self._read(name))


class LayoutSource(_Tree):
    """An OCI image layout (image-spec image-layout.md)."""

    resumable = True

    def __init__(self, path: str, description: str | None = None) -> None:
        self.path = path
        self.description = description or path
        try:
            version = self._json("oci-layout").get("imageLayoutVersion")
            self.index = self._json("index.json")
            if not isinstance(self.index, dict):
                raise ValueError("index.json is not an object")
        except (OSError, ValueError, AttributeError) as e:
            raise ImageError(self.description, f"not an OCI image layout: {e}") from None
        if version != "1.0.0":
            raise ImageError(self.description, f"oci-layout: unsupported imageLayoutVersion {version!r}")
        self.media_types: dict[str, str] = {}

    def images(self) -> list[LocalImage]:
        out = []
        for i, d in enumerate(self.index.get("manifests") or []):
            if not isinstance(d, dict) or not isinstance(d.get("digest"), str):
                raise ImageError(self.description, f"index.json: manifests[{i}] has no digest")
            digests.check(d["digest"], f"{self.description}: index.json manifests[{i}].digest")
            size = d.get("size")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise ImageError(self.description, f"index.json: manifests[{i}].size: {size!r} is not a byte count")
            ann = d.get("annotations") or {}
            names = [n for n in (ann.get(CONTAINERD_NAME), ann.get(REF_NAME)) if n]
            self.media_types[d["digest"]] = d.get("mediaType", "")
            out.append(LocalImage(names[:1], d["digest"], d.get("mediaType", ""), size))
        if not out:
            raise ImageError(self.description, "index.json lists no images")
        return out

    def _blob_name(self, digest: str) -> str:
        algo, hexd = digests.check(digest).split(":", 1)
        return f"blobs/{algo}/{hexd}"

    def manifest(self, reference: str) -> tuple[bytes, str]:
        try:
            data = self._read(self._blob_name(reference))
        except FileNotFoundError:
            raise ImageError(self.description, f"blob {reference} is missing") from None
        media_type = self.media_types.get(reference) or media_type_of(data)
        return data, media_type

    def blob(self, descriptor: dict, offset: int = 0):
        try:
            f = os.fdopen(self._open(self._blob_name(descriptor["digest"])), "rb")
        except FileNotFoundError:
            raise ImageError(self.description, f"blob {descriptor['digest']} is missing") from None
        f.seek(offset)
        return f


class DockerArchiveSource(LayoutSource):
    """`docker save` output: manifest.json naming a config file and layer
    tarballs per image.  Each image gets an OCI manifest made here, whose
    digests are computed from the files (and checked against the names
    docker gives them, which are digests)."""

    def __init__(self, path: str, description: str) -> None:
        self.path = path
        self.description = description
        self.media_types = {}
        self.made: dict[str, bytes] = {}  # manifest digest -> manifest we built
        self.files: dict[str, str] = {}  # blob digest -> file in the archive
        try:
            self.entries = self._json("manifest.json")
        except (OSError, ValueError) as e:
            raise ImageError(description, f"not a docker archive: manifest.json: {e}") from None
        if not isinstance(self.entries, list) or not self.entries:
            raise ImageError(description, "manifest.json lists no images")

    def _file(self, name: str, field: str) -> tuple[str, int, str]:
        if not isinstance(name, str) or name.startswith("/") or ".." in name.split("/"):
            raise ImageError(self.description, f"manifest.json: {field}: bad path {name!r}")
        h = hashlib.sha256()
        try:
            with os.fdopen(self._open(name), "rb") as f:
                magic = f.read(4)
                h.update(magic)
                while chunk := f.read(1 << 20):
                    h.update(chunk)
                size = f.tell()
        except OSError as e:
            raise ImageError(self.description, f"manifest.json: {field}: {name}: {e.strerror}") from None
        digest = "sha256:" + h.hexdigest()
        self.files[digest] = name
        return digest, size, magic

    def images(self) -> list[LocalImage]:
        out = []
        for i, entry in enumerate(self.entries):
            if not isinstance(entry, dict):
                raise ImageError(self.description, f"manifest.json[{i}] is not an object")
            cdigest, csize, _ = self._file(entry.get("Config"), f"[{i}].Config")
            layers = []
            for j, name in enumerate(entry.get("Layers") or []):
                ldigest, lsize, magic = self._file(name, f"[{i}].Layers[{j}]")
                if magic[:2] == b"\x1f\x8b":
                    media = "application/vnd.oci.image.layer.v1.tar+gzip"
                elif magic == b"\x28\xb5\x2f\xfd":
                    media = "application/vnd.oci.image.layer.v1.tar+zstd"
                else:
                    media = "application/vnd.oci.image.layer.v1.tar"
                layers.append({"mediaType": media, "digest": ldigest, "size": lsize})
            manifest = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                                   "config": {"mediaType": mt.OCI_CONFIG, "digest": cdigest, "size": csize},
                                   "layers": layers}, separators=(",", ":")).encode()
            mdigest = digests.of_bytes(manifest)
            self.made[mdigest] = manifest
            tags = entry.get("RepoTags") or []
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise ImageError(self.description, f"manifest.json[{i}].RepoTags must be a list of names")
            out.append(LocalImage(tags, mdigest, mt.OCI_MANIFEST, len(manifest)))
        return out

    def manifest(self, reference: str) -> tuple[bytes, str]:
        if reference in self.made:
            return self.made[reference], mt.OCI_MANIFEST
        raise ImageError(self.description, f"no manifest {reference}")

    def blob(self, descriptor: dict, offset: int = 0):
        name = self.files.get(descriptor["digest"])
        if name is None:
            raise ImageError(self.description, f"blob {descriptor['digest']} is not in the archive")
        f = os.fdopen(self._open(name), "rb")
        f.seek(offset)
        return f


def media_type_of(data: bytes) -> str:
    try:
        value = json.loads(data)
    except ValueError:
        return ""
    if not isinstance(value, dict):
        return ""
    if value.get("mediaType"):
        return value["mediaType"]
    return mt.OCI_INDEX if "manifests" in value else mt.OCI_MANIFEST if "layers" in value else ""
