"""`husk build`: a Dockerfile run step by step on husk's own store.

Each step starts from an image (the one FROM names, then the previous
step's) and ends as one:

    RUN      the image's layers are mounted as an overlay (engine.image.rootfs)
             and the command runs there in a husk container, with no network
             (a fresh, empty network namespace); the overlay's upper directory,
             where every change it made lands, becomes the next layer
             (engine.build.layer)
    COPY/ADD the same overlay, with the files copied in from the context by fd
             (the destination resolved inside the rootfs with openat2
             RESOLVE_IN_ROOT, so an image's symlink cannot lead out)
    ENV, WORKDIR, USER, CMD, ...  a new image config, no layer

A step's image is imported into the store through the same verified path
as `husk load` (an OCI layout in the store's tmp/, digests checked, the
layer unpacked once), and remembered in build-cache/ under a key made of
the parent image, the instruction and, for COPY and ADD, a digest of the
files copied; the next build with the same key reuses it.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import fnmatch
import glob
import hashlib
import json
import os
import posixpath
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from runtime.core import executor
from runtime.core.errors import HuskError, ImageError
from runtime.engine.build import dockerfile
from runtime.engine.build.dockerfile import Instruction
from runtime.engine.build.ignore import Ignore
from runtime.engine.build.layer import from_upper, is_empty
from runtime.engine.image import bundle, images, platform, reference, rootfs
from runtime.engine.image import mediatypes as mt
from runtime.engine.image.store import Store, remove_tree, write_json

DEFAULT_SHELL = ["/bin/sh", "-c"]


@dataclass
class BuildRequest:
    context: str
    dockerfile: str | None = None  # default: CONTEXT/Dockerfile
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    pull: str = "missing"
    quiet: bool = False
    target: str | None = None  # the stage to stop after (its image is the result)


@dataclass
class _State:
    """The image a step starts from."""

    manifest: str | None  # None: scratch
    config: dict[str, Any]
    layers: list[dict[str, Any]]  # the manifest's layer descriptors

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config["rootfs"]["diff_ids"])

    @property
    def run_config(self) -> dict[str, Any]:
        return self.config.setdefault("config", {})


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def _scratch_config() -> dict[str, Any]:
    p = platform.host()
    config = {"architecture": p.architecture, "os": "linux", "config": {},
              "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
    if p.variant:
        config["variant"] = p.variant
    return config


class Builder:
    def __init__(self, root: str, store: Store, req: BuildRequest, say: Callable[[str], None]) -> None:
        self.root, self.store, self.req, self.say = root, store, req, say
        self.context = os.path.abspath(req.context)
        self.ignore = Ignore.load(self.context)
        self.global_args: dict[str, str] = {}  # ARGs before the first FROM
        self.stage_images: dict[str, str] = {}  # a finished stage's index and name -> its image
        self.args: dict[str, str] = {}  # ARG values in scope
        self.shell = list(DEFAULT_SHELL)
        self.state: _State | None = None
        self.cmd_from_base = False

    # The whole build

    def run(self) -> str:
        """Build; returns the manifest digest of the image (named by the tags)."""
        path = self.req.dockerfile or os.path.join(self.context, "Dockerfile")
        for tag in self.req.tags:
            reference.parse(tag)  # a bad tag fails before anything is built
        if not os.path.isdir(self.context):
            raise ImageError("build", f"{self.req.context}: the context is not a directory")
        try:
            with open(path) as f:
                steps = dockerfile.parse(f.read())
        except OSError as e:
            raise ImageError("build", f"{path}: {e.strerror}") from None
        global_args, stages = dockerfile.stages(steps)
        if self.req.target is not None:
            names = [s.name for s in stages]
            if self.req.target.lower() not in names:
                raise ImageError("--target", f"{self.req.target!r}: no stage of that name in the Dockerfile"
                                 + (f" (its stages: {', '.join(n for n in names if n)})" if any(names) else ""))
            stages = stages[:names.index(self.req.target.lower()) + 1]
        total = len(global_args) + sum(len(s.steps) for s in stages)
        self.store.ensure()
        with self.store.using():  # image prune waits: our steps' images have no names yet
            for n, ins in enumerate(global_args, 1):
                self.say(f"STEP {n}/{total}: {ins.text()}")
                self._global_arg(ins)
            n = len(global_args)
            for stage in stages:  # each starts afresh: its own ARGs, SHELL and image
                self.args, self.shell, self.state, self.cmd_from_base = {}, list(DEFAULT_SHELL), None, False
                for ins in stage.steps:
                    n += 1
                    self.say(f"STEP {n}/{total}: {ins.text()}")
                    self._step(ins)
                assert self.state is not None
                digest = self.state.manifest or self._commit(stage.steps[-1], None, empty=True)
                self.stage_images[str(stage.index)] = digest
                if stage.name:
                    self.stage_images[stage.name] = digest
            for tag in self.req.tags:
                self.store.set_name(reference.parse(tag).name, digest)
        return digest

    def _step(self, ins: Instruction) -> None:
        k = ins.keyword
        if k == "ARG":
            self._arg(ins)
            return
        if k == "FROM":
            self._from(ins)
            return
        assert self.state is not None
        extra = self._copy_key(ins) if k in ("COPY", "ADD") else ""
        env = self._expansion_env()
        if k == "RUN":
            extra = json.dumps(sorted(self.args.items()))
        key = hashlib.sha256(json.dumps([self.state.manifest or "scratch", ins.text(),
                                         dockerfile.expand(ins.args, env, ins.where) if k in dockerfile.EXPANDED
                                         else "", extra, self.shell]).encode()).hexdigest()
        if not self.req.no_cache and self._from_cache(key):
            self.say(f"--> CACHED {self.state.manifest[7:19]}")
            return
        if k in ("RUN", "COPY", "ADD"):
            self._filesystem_step(ins)
        else:
            self._config_step(ins, env)
            self.state.manifest = self._commit(ins, None, empty=True)
        self._remember(key)
        self.say(f"--> {self.state.manifest[7:19]}")

    # Steps without a layer

    def _global_arg(self, ins: Instruction) -> None:
        """An ARG before the first FROM: seen by FROM lines, and by a
        stage that declares it again without a value."""
        for word in dockerfile.words(ins, self.global_args):
            name, sep, default = word.partition("=")
            self.global_args[name] = self.req.build_args.get(name, default if sep else "")

    def _arg(self, ins: Instruction) -> None:
        for word in dockerfile.words(ins, self._expansion_env()):
            name, sep, default = word.partition("=")
            self.args[name] = self.req.build_args.get(name, default if sep else self.global_args.get(name, ""))

    def _from(self, ins: Instruction) -> None:
        name = dockerfile.expand(ins.args.split()[0], self.global_args, ins.where)
        if name == "scratch":
            self.state = _State(None, _scratch_config(), [])
            return
        digest = self.stage_images.get(name.lower()) or self._image(name, f"FROM {name}", ins.where)
        config = copy.deepcopy(self.store.config(digest))
        self.state = _State(digest, config, list(self.store.manifest(digest)["layers"]))
        self.cmd_from_base = bool(self.state.run_config.get("Cmd"))

    def _image(self, name: str, what: str, where: str) -> str:
        """The manifest digest of image NAME: from the store, or pulled, as --pull says."""
        if self.req.pull != "always":
            with contextlib.suppress(HuskError):
                return images.find(self.store, name)[0]
        if self.req.pull == "never":
            raise ImageError(where, f"{what}: not in the store and --pull=never")
        return images.pull(self.store, name, quiet=self.req.quiet)

    def _expansion_env(self) -> dict[str, str]:
        env = dict(self.args)
        if self.state:  # ENV wins over ARG of the same name, as in docker
            env.update(kv.partition("=")[::2] for kv in self.state.run_config.get("Env") or [])
        return env

    def _config_step(self, ins: Instruction, env: dict[str, str]) -> None:
        assert self.state is not None
        c = self.state.run_config
        k = ins.keyword
        if k == "ENV":
            c["Env"] = bundle.merge_env(list(c.get("Env") or []), [f"{a}={b}" for a, b in dockerfile.pairs(ins, env)])
        elif k == "LABEL":
            c["Labels"] = {**(c.get("Labels") or {}), **dict(dockerfile.pairs(ins, env))}
        elif k == "WORKDIR":
            path = dockerfile.expand(ins.args, env, ins.where)
            c["WorkingDir"] = os.path.normpath(os.path.join(c.get("WorkingDir") or "/", path))
        elif k == "USER":
            c["User"] = dockerfile.expand(ins.args, env, ins.where)
        elif k == "STOPSIGNAL":
            c["StopSignal"] = dockerfile.expand(ins.args, env, ins.where)
        elif k == "EXPOSE":
            ports = dict(c.get("ExposedPorts") or {})
            for word in dockerfile.words(ins, env):
                port, _, proto = word.partition("/")
                if not port.isdigit() or proto not in ("", "tcp", "udp", "sctp"):
                    raise ImageError(ins.where, f"EXPOSE {word!r}: expected PORT[/tcp|udp]")
                ports[f"{port}/{proto or 'tcp'}"] = {}
            c["ExposedPorts"] = ports
        elif k == "VOLUME":
            c["Volumes"] = {**(c.get("Volumes") or {}), **{v: {} for v in dockerfile.words(ins, env)}}
        elif k == "SHELL":
            self.shell = list(ins.json or [])
        elif k in ("CMD", "ENTRYPOINT"):
            value = ins.json if ins.json is not None else (self.shell + [ins.args] if ins.args else [])
            if k == "ENTRYPOINT" and self.cmd_from_base:
                c.pop("Cmd", None)  # docker: a new ENTRYPOINT drops the base image's CMD
            if k == "CMD":
                self.cmd_from_base = False
            c["Cmd" if k == "CMD" else "Entrypoint"] = value

    # Steps with a layer

    @contextlib.contextmanager
    def _mounted(self) -> Iterator[str]:
        """A scratch directory in the store's tmp/ with the current image
        mounted at rootfs/ as an overlay (changes in upper/)."""
        assert self.state is not None
        work = tempfile.mkdtemp(dir=self.store.tmp, prefix="build-")
        try:
            driver = rootfs.make(self.store, self.state.diff_ids, work, "overlay")
            if driver != "overlay":
                raise ImageError("build", "husk build needs overlayfs: its upper directory is the new layer")
            yield work
        finally:
            rootfs.remove(work)
            remove_tree(work)

    def _filesystem_step(self, ins: Instruction) -> None:
        with self._mounted() as work:
            if ins.keyword == "RUN":
                self._run(ins, work)
            else:
                self._copy(ins, os.path.join(work, "rootfs"))
            rootfs.remove_mount(work)  # the upper directory is whole once the overlay is gone
            upper = os.path.join(work, "upper")
            if is_empty(upper):
                self.state.manifest = self._commit(ins, None, empty=True)
                return
            layer = from_upper(upper, os.path.join(work, "layer.tar.gz"))
            self.state.manifest = self._commit(ins, layer)

    def _run(self, ins: Instruction, work: str) -> None:
        assert self.state is not None
        argv = ins.json if ins.json is not None else self.shell + [ins.args]
        c = self.state.run_config
        opts = bundle.RunOptions(command=argv, entrypoint="", user=c.get("User") or "",
                                 env=[f"{k}={v}" for k, v in self.args.items()
                                      if not any(e.startswith(k + "=") for e in c.get("Env") or [])])
        opts.workdir = c.get("WorkingDir") or "/"
        bid = "husk-build-" + os.urandom(6).hex()
        from runtime.engine.image.containers import CGROUP_PARENT, remove_cgroup_parent

        # network=None: the default spec's new network namespace, with only lo.
        spec = bundle.make_config(self.state.config, os.path.join(work, "rootfs"), opts, bid,
                                  f"/{CGROUP_PARENT}/{bid}", None)
        with open(os.path.join(work, "config.json"), "w") as f:
            json.dump(spec, f)
        saved = None
        if self.req.quiet:  # the command's output goes nowhere: only the image id is printed
            saved = os.dup(1)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.close(null)
        try:
            code = executor.run(self.root, bid, work)
        finally:
            if saved is not None:
                os.dup2(saved, 1)
                os.close(saved)
            remove_cgroup_parent()
        if code != 0:
            raise ImageError(ins.where, f"RUN {ins.args}: exited with {code}")

    # COPY and ADD

    def _sources(self, ins: Instruction, root: str | None = None) -> tuple[list[str], str]:
        """(the sources, as paths relative to ROOT (the context, or with
        --from a stage's or image's root); the destination)."""
        words = dockerfile.words(ins, self._expansion_env())
        if len(words) < 2:
            raise ImageError(ins.where, f"{ins.keyword} needs a source and a destination")
        out = []
        for src in words[:-1]:
            if "://" in src:
                raise ImageError(ins.where, f"{ins.keyword} {src}: husk build fetches no URLs (builds have no "
                                 "network); put the file in the context")
            rel = os.path.normpath("/" + src).lstrip("/") or "."
            if any(ch in rel for ch in "*?["):
                if root is not None:  # glob(3) would follow the image's links out of its root
                    raise ImageError(ins.where, f"{ins.keyword} --from {src}: name the paths (no wildcards)")
                found = sorted(glob.glob(rel, root_dir=self.context, recursive=False))
                found = [f for f in found if fnmatch.fnmatch(f, rel) and not self.ignore.ignored(f)]
                if not found:
                    raise ImageError(ins.where, f"{ins.keyword} {src}: no file in the context matches "
                                     "(or .dockerignore hides it)")
                out += found
            else:
                if root is None and rel != "." and self.ignore.ignored(rel):
                    raise ImageError(ins.where, f"{ins.keyword} {src}: excluded by .dockerignore")
                out.append(rel)
        return out, words[-1]

    def _copy_key(self, ins: Instruction) -> str:
        """What a COPY or ADD copies, for its cache key: with --from, the
        image it copies from; else a digest of the files' names, modes,
        data and link targets."""
        if "from" in ins.flags:
            return json.dumps([self._from_image(ins), dockerfile.words(ins, self._expansion_env())])
        h = hashlib.sha256()
        sources, _ = self._sources(ins)
        for rel in sources:
            with self._open_source(ins, rel) as path:
                for dirpath, dirnames, filenames in os.walk(path) if os.path.isdir(path) else [("", [], [path])]:
                    dirnames.sort()
                    for name in sorted(filenames + dirnames):
                        p = os.path.join(dirpath, name)
                        inside = os.path.relpath(p, path)
                        if self.ignore.ignored(os.path.join(rel, inside)):
                            continue
                        st = os.stat(p) if p == path else os.lstat(p)
                        h.update(f"{inside}\0{st.st_mode}\0".encode())
                        if stat.S_ISLNK(st.st_mode):
                            h.update(os.readlink(p).encode())
                        elif stat.S_ISREG(st.st_mode):
                            with open(p, "rb") as f:
                                for chunk in iter(lambda: f.read(1 << 20), b""):
                                    h.update(chunk)
        return h.hexdigest()

    def _from_image(self, ins: Instruction) -> str:
        """COPY --from=X: the image of stage X (its name or index, an
        earlier one), or else of the image X names."""
        source = dockerfile.expand(ins.flags["from"], self._expansion_env(), ins.where)
        if source.lower() in self.stage_images:
            return self.stage_images[source.lower()]
        if source.isdigit():
            raise ImageError(ins.where, f"{ins.keyword} --from={source}: no earlier stage {source}")
        return self._image(source, f"{ins.keyword} --from={source}", ins.where)

    @contextlib.contextmanager
    def _source_root(self, ins: Instruction) -> Iterator[str | None]:
        """Where the sources of COPY are: the context (None), or with --from
        the filesystem of a stage or image, its layers mounted as an overlay."""
        if "from" not in ins.flags:
            yield None
            return
        digest = self._from_image(ins)
        work = tempfile.mkdtemp(dir=self.store.tmp, prefix="build-from-")
        try:
            rootfs.make(self.store, self.store.diff_ids(digest), work, "overlay")
            yield os.path.join(work, "rootfs")
        finally:
            rootfs.remove(work)
            remove_tree(work)

    @contextlib.contextmanager
    def _open_source(self, ins: Instruction, rel: str, root: str | None = None) -> Iterator[str]:
        """A path to REL in ROOT (the context by default) that cannot lead
        out of it: ROOT's fd with openat2 RESOLVE_IN_ROOT, seen through
        /proc/self/fd."""
        from runtime.core.linux import syscalls

        base = os.open(root or self.context, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            try:
                fd = syscalls.open_in_root(base, rel, os.O_PATH | os.O_CLOEXEC)
            except OSError as e:
                raise ImageError(ins.where, f"{ins.keyword} {rel}: {e.strerror} in "
                                 + ("the context" if root is None else f"--from={ins.flags['from']}")) from None
            try:
                yield f"/proc/self/fd/{fd}"
            finally:
                os.close(fd)
        finally:
            os.close(base)

    def _copy(self, ins: Instruction, target_root: str) -> None:
        from runtime.engine.build import copy_in

        assert self.state is not None
        with self._source_root(ins) as root:
            sources, given = self._sources(ins, root)
            dest, names_a_dir = copy_in.destination(given, self.state.run_config.get("WorkingDir") or "/")
            owner = copy_in.owner(target_root, ins.flags.get("chown"), ins.where)
            mode = copy_in.parse_chmod(ins.flags.get("chmod"), ins.where)
            into_dir = names_a_dir or len(sources) > 1
            with copy_in.Target(target_root) as target:
                for rel in sources:
                    skip = None if root is not None else (lambda below, rel=rel: self.ignore.ignored(
                        posixpath.join(rel, below)))
                    with self._open_source(ins, rel, root) as path:
                        try:
                            if ins.keyword == "ADD" and copy_in.is_archive(path):
                                copy_in.add_archive(self.store, path, target, dest, owner, ins.where)
                            elif os.path.isdir(path):
                                target.copy_tree(path, dest, owner, mode, skip=skip)
                            else:
                                name = os.path.basename(rel)
                                target.copy_file(path, dest, name if into_dir or target.is_dir(dest) else None,
                                                 owner, mode)
                        except OSError as e:  # a file in the way of a directory, a full disk, ...
                            raise ImageError(ins.where, f"{ins.keyword} {rel} {given}: {e.strerror or e}") from None

    # Images of steps, and the cache

    def _commit(self, ins: Instruction, layer, empty: bool = False) -> str:
        """The current state, plus LAYER, as an image in the store; returns its manifest digest."""
        from runtime.engine.image.layout import LayoutSource
        from runtime.engine.image.pull import Importer

        assert self.state is not None
        config = copy.deepcopy(self.state.config)
        config["created"] = _now()
        config.setdefault("history", []).append(
            {"created": config["created"], "created_by": f"husk build: {ins.text()}", **({"empty_layer": True}
                                                                                         if layer is None else {})})
        layers = list(self.state.layers)
        if layer is not None:
            config["rootfs"]["diff_ids"].append(layer.diff_id)
            layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer.digest,
                           "size": layer.size})
        config_bytes = json.dumps(config, sort_keys=True).encode()
        config_desc = {"mediaType": mt.OCI_CONFIG, "digest": _digest(config_bytes), "size": len(config_bytes)}
        manifest = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": config_desc, "layers": layers}
        manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
        digest = _digest(manifest_bytes)
        stage = tempfile.mkdtemp(dir=self.store.tmp, prefix="build-image-")
        try:
            blobs = os.path.join(stage, "blobs", "sha256")
            os.makedirs(blobs)
            for data in (config_bytes, manifest_bytes):
                with open(os.path.join(blobs, _digest(data)[7:]), "wb") as f:
                    f.write(data)
            if layer is not None:
                os.rename(layer.path, os.path.join(blobs, layer.digest[7:]))
            with open(os.path.join(stage, "oci-layout"), "w") as f:
                json.dump({"imageLayoutVersion": "1.0.0"}, f)
            with open(os.path.join(stage, "index.json"), "w") as f:
                json.dump({"schemaVersion": 2, "manifests": [{"mediaType": mt.OCI_MANIFEST, "digest": digest,
                                                              "size": len(manifest_bytes)}]}, f)
            Importer(self.store, LayoutSource(stage, "husk build")).run(digest, [], expect_digest=digest,
                                                                        expect_size=len(manifest_bytes))
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        self.state = _State(digest, config, layers)
        return digest

    def _cache_path(self, key: str) -> str:
        return os.path.join(self.store.root, "build-cache", key)

    def _from_cache(self, key: str) -> bool:
        try:
            with open(self._cache_path(key)) as f:
                digest = json.load(f)
            config = copy.deepcopy(self.store.config(digest))
            layers = list(self.store.manifest(digest)["layers"])
        except (OSError, ValueError, HuskError):
            return False
        if not all(self.store.has_layer(d) for d in config["rootfs"]["diff_ids"]):
            return False
        self.state = _State(digest, config, layers)
        return True

    def _remember(self, key: str) -> None:
        assert self.state is not None and self.state.manifest
        os.makedirs(os.path.dirname(self._cache_path(key)), mode=0o700, exist_ok=True)
        write_json(self._cache_path(key), self.state.manifest)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build(root: str, store_root: str, req: BuildRequest, say: Callable[[str], None]) -> str:
    return Builder(root, Store(store_root), req, say).run()
