"""`husk run IMAGE`: pull if needed, make a container from the image, run
it in the foreground through the runtime core, return its exit code.

Exit codes as docker's: the command's own, 125 when husk fails, 126 when
the command cannot be executed, 127 when it is not found.
"""

from __future__ import annotations

import contextlib
import errno
import os

from runtime.cli.main import report
from runtime.core import container
from runtime.core.errors import HuskError
from runtime.engine.image import bundle, containers, images, reference
from runtime.engine.image.store import Store

HUSK_FAILED, CANNOT_EXECUTE, NOT_FOUND = 125, 126, 127


def read_env_file(path: str) -> list[str]:
    out = []
    try:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                key = line.split("=", 1)[0]
                if not key or " " in key:
                    raise HuskError("--env-file", f"{path}:{n}: expected KEY=VALUE")
                out.append(line if "=" in line else f"{line}={os.environ.get(line, '')}")
    except OSError as e:
        raise HuskError("--env-file", f"{path}: {e.strerror}") from None
    return out


def _image(g, store: Store, target: str, opts: dict) -> tuple[str, str]:
    """(manifest digest, name) of TARGET, pulled according to --pull."""
    ref = reference.parse(target) if opts["pull"] != "never" else None
    if opts["pull"] != "always":
        with contextlib.suppress(HuskError):
            return images.find(store, target)
        if opts["pull"] == "never":
            raise HuskError("image", f"{target!r} is not in the store and --pull=never")
    ref = ref or reference.parse(target)
    digest = images.pull(store, target, platform=opts["platform"], tls_verify=opts["tls_verify"],
                         authfile=opts["authfile"], quiet=opts["quiet"])
    return digest, ref.name


def run_image(g, target: str, command: list[str], opts: dict) -> int:
    store = Store(g.storage_root)
    try:
        digest, name = _image(g, store, target, opts)
        env = list(opts["env"])
        for path in opts["env_file"]:
            env = read_env_file(path) + env
        run_opts = bundle.RunOptions(command=command, entrypoint=opts["entrypoint"], env=env,
                                     workdir=opts["workdir"], user=opts["user"], hostname=opts["hostname"],
                                     tty=opts["tty"], read_only=opts["read_only"])
        bundle.parse_security_opts(list(opts["security_opt"]), run_opts)
        if opts["detach"] and (opts["rm"] or opts["tty"] or opts["interactive"]):
            raise HuskError("--detach", "goes without --rm, -t and -i: nothing would wait for the container")
        from runtime.engine.network.attach import NetworkRequest

        net = NetworkRequest(opts["network"], list(opts["publish"]), opts["publish_all"], opts["ip"],
                             list(opts["dns"]), list(opts["add_host"]))
        record = containers.create(store, digest, name or target, run_opts, name=opts["name"],
                                   driver=opts["storage_driver"], remove_after=opts["rm"], network=net)
    except HuskError as e:
        report(g, str(e))
        return HUSK_FAILED
    cid = record["id"]
    if opts["detach"]:
        return _run_detached(g, store, record)
    code = HUSK_FAILED
    try:
        if not opts["interactive"] and not opts["tty"]:
            _stdin_from_devnull()
        code = container.run(g.root, cid, record["dir"])
    except HuskError as e:
        report(g, str(e))
        if e.step == "exec":
            code = NOT_FOUND if e.errno == errno.ENOENT else CANNOT_EXECUTE
    finally:
        if opts["rm"]:
            containers.destroy(store, cid)
        else:
            containers.release(store, cid)
            containers.set_status(store, cid, "exited", code)
    return code


def _run_detached(g, store: Store, record: dict) -> int:
    """Start it and return; stdout and stderr go to <container dir>/container.log.
    `husk rm -f` stops it and releases its rootfs and network."""
    import click

    cid = record["id"]
    log = os.open(os.path.join(record["dir"], "container.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                  0o600)
    saved = [os.dup(1), os.dup(2)]
    try:
        _stdin_from_devnull()
        os.dup2(log, 1)
        os.dup2(log, 2)
        container.run(g.root, cid, record["dir"], detach=True)
    except HuskError as e:
        os.dup2(saved[1], 2)
        report(g, str(e))
        containers.destroy(store, cid)
        return CANNOT_EXECUTE if e.step == "exec" else HUSK_FAILED
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved + [log]:
            os.close(fd)
    containers.set_status(store, cid, "running")
    click.echo(cid)
    return 0


def _stdin_from_devnull() -> None:
    """Without -i the container's stdin is /dev/null, as with docker."""
    fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    os.dup2(fd, 0)
    os.close(fd)
