"""Build layer tarballs entry by entry, hostile ones included, and OCI
image layouts from them.  What `docker build` or a malicious registry
would produce, without either."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile


def entry(name: str, kind: str = "file", data: bytes = b"", mode: int | None = None, uid: int = 0,
          gid: int = 0, link: str = "", dev: tuple[int, int] = (0, 0), xattrs: dict | None = None,
          mtime: int = 1_700_000_000) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                 "hardlink": tarfile.LNKTYPE, "char": tarfile.CHRTYPE, "block": tarfile.BLKTYPE,
                 "fifo": tarfile.FIFOTYPE}[kind]
    info.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)
    info.uid, info.gid = uid, gid
    info.linkname = link
    info.devmajor, info.devminor = dev
    info.mtime = mtime
    info.size = len(data) if kind == "file" else 0
    if xattrs:
        info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
    return info, data


def layer(entries: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def compress(tar: bytes, how: str) -> tuple[bytes, str]:
    if how == "gzip":
        return gzip.compress(tar, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
    if how == "zstd":
        import zstandard
        return zstandard.ZstdCompressor().compress(tar), "application/vnd.oci.image.layer.v1.tar+zstd"
    return tar, "application/vnd.oci.image.layer.v1.tar"


class Layout:
    """An OCI image layout being written: put blobs, add images, save."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        self.manifests: list[dict] = []

    def put(self, data: bytes) -> dict:
        digest = sha(data)
        with open(os.path.join(self.path, "blobs", "sha256", digest[7:]), "wb") as f:
            f.write(data)
        return {"digest": digest, "size": len(data)}

    def image(self, layers: list[bytes], *, compression: str = "gzip", config: dict | None = None,
              arch: str = "amd64", layer_media_type: str | None = None, diff_ids: list[str] | None = None,
              compressed: list[bytes] | None = None) -> tuple[dict, dict]:
        """Add an image; returns (manifest descriptor, config).  COMPRESSED:
        the layers already compressed with COMPRESSION, to store as they are."""
        descs = []
        for i, tar in enumerate(layers):
            blob, media = compress(tar, compression)
            if compressed:
                blob = compressed[i]
            descs.append(dict(self.put(blob), mediaType=layer_media_type or media))
        cfg = {"architecture": arch, "os": "linux", "created": "2026-11-26T00:00:00Z",
               "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                          "Cmd": ["sh"]},
               "rootfs": {"type": "layers", "diff_ids": diff_ids or [sha(t) for t in layers]},
               # One entry per layer, as every builder writes (buildah refuses
               # to build on an image whose history counts fewer layers).
               "history": [{"created": "2026-11-26T00:00:00Z", "created_by": f"tarbuild layer {i}"}
                           for i in range(len(layers))]}
        if config:
            cfg["config"].update(config)
        cdesc = dict(self.put(json.dumps(cfg).encode()), mediaType="application/vnd.oci.image.config.v1+json")
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": cdesc, "layers": descs}
        mdesc = dict(self.put(json.dumps(manifest).encode()), mediaType="application/vnd.oci.image.manifest.v1+json",
                     platform={"os": "linux", "architecture": arch})
        return mdesc, cfg

    def tag(self, mdesc: dict, tag: str) -> None:
        self.manifests.append(dict(mdesc, annotations={"org.opencontainers.image.ref.name": tag}))

    def index(self, mdescs: list[dict], tag: str) -> dict:
        """A multi-platform index over MDESCS, tagged TAG."""
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": mdescs}
        idesc = dict(self.put(json.dumps(index).encode()), mediaType="application/vnd.oci.image.index.v1+json")
        self.tag(idesc, tag)
        return idesc

    def save(self) -> str:
        with open(os.path.join(self.path, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        with open(os.path.join(self.path, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "manifests": self.manifests}, f)
        return self.path
