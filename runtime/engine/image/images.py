"""What the image commands do: pull, load, save, list, inspect, remove, prune."""

from __future__ import annotations

import json
import os
from typing import Any

from runtime.core.errors import HuskError, ImageError
from runtime.engine.image import gc, reference
from runtime.engine import record as records
from runtime.engine.image.store import Store, remove_tree


def pull(store: Store, ref_text: str, *, platform: str | None = None, tls_verify: bool = True,
         cert_dir: str | None = None, authfile: str | None = None, quiet: bool = False) -> str:
    from runtime.engine.image import platform as platforms
    from runtime.engine.image.progress import Progress
    from runtime.engine.image.pull import Importer
    from runtime.engine.image.registry import Registry, RegistrySource

    ref = reference.parse(ref_text)
    progress = Progress(quiet=quiet)
    progress.line(f"Pulling {ref}")
    registry = Registry(ref.domain, tls_verify=tls_verify, cert_dir=cert_dir, authfile=authfile)
    importer = Importer(store, RegistrySource(ref, registry), platform=platforms.parse(platform),
                        progress=progress)
    digest = importer.run(ref.reference, [ref.name], expect_digest=ref.digest)
    return digest


def find(store: Store, text: str) -> tuple[str, str | None]:
    """(manifest digest, name) for an image name or an ID prefix."""
    names = store.names()
    try:
        ref = reference.parse(text)
        if ref.name in names:
            return names[ref.name], ref.name
    except HuskError:
        ref = None
    hexpart = text.removeprefix("sha256:")
    if len(hexpart) >= 4 and all(c in "0123456789abcdef" for c in hexpart):
        matches = {m for m in names.values() if image_id(store, m).removeprefix("sha256:").startswith(hexpart)
                   or m.removeprefix("sha256:").startswith(hexpart)}
        if len(matches) == 1:
            return matches.pop(), None
        if len(matches) > 1:
            raise ImageError("image", f"{text!r} matches {len(matches)} images: give more of the ID")
    raise ImageError("image", f"{text!r} is not in the store" + (f" (looked for {ref.name})" if ref else ""))


def image_id(store: Store, manifest_digest: str) -> str:
    """An image's ID is its config's digest, as in docker."""
    return store.manifest(manifest_digest)["config"]["digest"]


def load(store: Store, path: str, name: str | None = None, quiet: bool = False) -> list[str]:
    """Import an OCI layout directory, an oci-archive or a docker-archive."""
    import tempfile

    from runtime.engine.image.layout import DockerArchiveSource, LayoutSource
    from runtime.engine.image.progress import Progress
    from runtime.engine.image.pull import Importer
    from runtime.engine.image.unpack import unpack

    progress = Progress(quiet=quiet)
    store.ensure()
    tmp = None
    try:
        if os.path.isdir(path):
            source = LayoutSource(path)
        else:
            tmp = tempfile.mkdtemp(dir=store.tmp, prefix="archive-")
            try:
                with open(path, "rb") as f:
                    from runtime.engine.image.layerstream import TarStream

                    magic = f.read(2)
                    f.seek(0)
                    with TarStream(f, "gzip" if magic == b"\x1f\x8b" else "", path) as stream:
                        unpack(stream, tmp, os.path.basename(path))
            except OSError as e:
                raise ImageError("load", f"{path}: {e.strerror}") from None
            except HuskError as e:
                raise ImageError("load", f"{path}: not an OCI layout, oci-archive or docker-archive: "
                                f"{e.detail}") from None
            if os.path.exists(os.path.join(tmp, "oci-layout")):
                source = LayoutSource(tmp, path)
            else:
                source = DockerArchiveSource(tmp, path)
        loaded = []
        for image in source.images():
            names = [_name_for(n, name, path) for n in image.names] or [_name_for(None, name, path)]
            Importer(store, source, progress=progress).run(image.digest, names, expect_digest=image.digest,
                                                              expect_size=image.size)
            loaded += names
            for n in names:
                progress.line(f"Loaded image: {n}")
        return loaded
    finally:
        if tmp:
            remove_tree(tmp)


def _name_for(archive_name: str | None, given: str | None, path: str) -> str:
    """The store name for an image whose archive calls it ARCHIVE_NAME
    (a full reference, a familiar one, a bare tag or nothing)."""
    if archive_name and ("/" in archive_name or ":" in archive_name) and not given:
        return reference.parse(archive_name).name
    tag = archive_name if archive_name and ":" not in archive_name and "/" not in archive_name else "latest"
    if given:
        ref = reference.parse(given)
        return ref.name if ":" in given.rsplit("/", 1)[-1] else f"{ref.repository}:{tag}"
    base = os.path.basename(os.path.normpath(path)).split(".")[0].lower() or "image"
    return reference.parse(f"localhost/{base}:{tag}").name


def save(store: Store, texts: list[str], output: str) -> None:
    """Write images to an oci-archive (an OCI layout in a tar)."""
    import tarfile

    manifests = []
    blobs: list[str] = []
    for text in texts:
        digest, name = find(store, text)
        manifest = store.manifest(digest)
        for d in [digest, manifest["config"]["digest"]] + [layer["digest"] for layer in manifest["layers"]]:
            if d not in blobs:
                blobs.append(d)
        entry = {"mediaType": manifest.get("mediaType") or "application/vnd.oci.image.manifest.v1+json",
                 "digest": digest, "size": os.path.getsize(store.blob_path(digest))}
        if name:
            ref = reference.parse(name)
            entry["annotations"] = {"io.containerd.image.name": str(ref),
                                    "org.opencontainers.image.ref.name": ref.tag or ref.digest}
        manifests.append(entry)
    tmp = f"{output}.tmp{os.getpid()}"
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
            _add_bytes(tar, "index.json", json.dumps({"schemaVersion": 2, "manifests": manifests}).encode())
            for d in blobs:
                algo, hexd = d.split(":", 1)
                info = tar.gettarinfo(store.blob_path(d), f"blobs/{algo}/{hexd}")
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mode = 0o644
                with open(store.blob_path(d), "rb") as f:
                    tar.addfile(info, f)
        os.rename(tmp, output)
    except OSError as e:
        raise ImageError("save", f"{output}: {e.strerror}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _add_bytes(tar, name: str, data: bytes) -> None:
    import io
    import tarfile

    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def listing(store: Store) -> list[dict[str, Any]]:
    rows = []
    for name, digest in sorted(store.names().items()):
        ref = reference.parse(name)
        try:
            config = store.config(digest)
            diff_ids = config["rootfs"]["diff_ids"]
        except (OSError, ValueError, KeyError):
            continue
        size = sum(store.layer_info(d).get("size", 0) for d in diff_ids)
        rows.append({"name": ref.familiar.split("@")[0].rsplit(":", 1)[0] if ref.tag else ref.familiar.split("@")[0],
                     "repository": ref.repository, "tag": ref.tag or "<none>", "digest": digest,
                     "id": image_id(store, digest), "created": config.get("created", ""), "size": size})
    return rows


def inspect(store: Store, text: str) -> dict[str, Any]:
    digest, _ = find(store, text)
    manifest = store.manifest(digest)
    config = store.config(digest)
    names = sorted(n for n, d in store.names().items() if d == digest)
    return {
        "Id": manifest["config"]["digest"],
        "Digest": digest,
        "RepoTags": names,
        "Created": config.get("created", ""),
        "Architecture": config.get("architecture", ""),
        "Os": config.get("os", ""),
        "Variant": config.get("variant", ""),
        "Config": config.get("config") or {},
        "RootFS": config.get("rootfs") or {},
        "Size": sum(store.layer_info(d).get("size", 0) for d in config["rootfs"]["diff_ids"]),
        "Layers": [{"digest": layer["digest"], "mediaType": layer["mediaType"], "size": layer.get("size"),
                    "diffID": diff_id, "path": store.layer_dir(diff_id)}
                   for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"])],
        "Manifest": manifest,
    }


def remove(store: Store, texts: list[str]) -> list[str]:
    """`husk rmi`: untag; content goes when no image or container uses it."""
    names = store.names()
    in_use = {c.image: c for c in records.every(store.root)}
    to_remove = []
    for text in texts:
        digest, name = find(store, text)
        if digest in in_use and (name is None or sum(1 for d in names.values() if d == digest) == 1):
            c = in_use[digest]
            raise ImageError("rmi", f"image {text!r} is used by container {c.name} ({c.id[:12]}): "
                            "remove it first (husk rm)")
        to_remove += [name] if name else [n for n, d in names.items() if d == digest]
    store.remove_names(to_remove)
    gc.collect(store)
    return to_remove


def prune(store: Store) -> dict[str, int]:
    return gc.collect(store)


