"""`husk`: the click group, global flags, error reporting.

Verbs live in one module each and are imported only when invoked, so
`husk state` does not pay for what `husk run` needs.
"""

from __future__ import annotations

import importlib
import json
import os
import sys

import click

from runtime.core import paths
from runtime.core.errors import HuskError, send_warnings_to

# verb -> module under runtime.cli (each defines `command`).
VERBS = {
    "create": "create", "start": "start", "state": "state", "kill": "kill", "delete": "delete",
    "run": "run", "list": "list_", "spec": "spec", "features": "features", "exec": "exec_", "ps": "ps",
    "update": "update", "pause": "pause", "resume": "resume", "events": "events",
    # the docker-like face: images and the containers made from them
    "pull": "pull", "images": "images", "image": "image", "rmi": "rmi", "load": "load", "save": "save",
    "login": "login", "logout": "logout", "rm": "rm", "containers": "containers", "network": "network",
    "system": "system", "logs": "logs", "stop": "stop", "restart": "restart", "wait": "wait",
    "inspect": "inspect", "cleanup": "cleanup", "volume": "volume", "stats": "stats", "top": "top",
    "isolation": "isolation", "port": "port", "rename": "rename", "build": "build", "cp": "cp", "attach": "attach",
    "push": "push", "tag": "tag",
    "healthcheck": "healthcheck",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(VERBS)

    def get_command(self, ctx, name):
        module = VERBS.get(name)
        if module is None:
            return None
        return importlib.import_module(f"runtime.cli.{module}").command


class Globals:
    def __init__(self, root: str, log: str | None, log_format: str, debug: bool, storage_root: str,
                 systemd_cgroup: bool = False) -> None:
        self.root = root
        self.systemd_cgroup = systemd_cgroup
        self.storage_root = storage_root
        self.log = log
        self.log_format = log_format
        self.debug = debug


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", default=paths.STATE_ROOT, show_default=True, help="Directory for container state.")
@click.option("--storage-root", envvar="HUSK_STORAGE_ROOT", default=paths.STORE_ROOT, show_default=True,
              help="Image store: blobs, unpacked layers, image names, image containers (env HUSK_STORAGE_ROOT).")
@click.option("--log", type=click.Path(dir_okay=False), help="Append errors and debug lines to this file.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--debug", is_flag=True, help="Log debug lines too.")
@click.option("--systemd-cgroup", is_flag=True,
              help="Make each new container's cgroup a systemd unit (cgroupsPath slice:prefix:name).")
@click.version_option(package_name="husk-runtime", prog_name="husk")
@click.pass_context
def cli(ctx, root, storage_root, log, log_format, debug, systemd_cgroup):
    """husk: run OCI containers with namespaces, cgroups and a C clone-to-exec helper."""
    ctx.obj = Globals(os.path.abspath(root), log, log_format, debug, os.path.abspath(storage_root), systemd_cgroup)


def load_json_arg(path: str, flag: str) -> dict:
    """A JSON object from a file named by a flag (or stdin for -)."""
    from runtime.core.errors import ConfigError

    try:
        raw = sys.stdin.read() if path == "-" else open(path).read()
        value = json.loads(raw)
    except (OSError, ValueError) as e:
        raise ConfigError(flag, f"{path}: {e}") from None
    if not isinstance(value, dict):
        raise ConfigError(flag, f"{path}: must be a JSON object")
    return value


_warned: set[str] = set()


def report(g: Globals | None, message: str, level: str = "error") -> None:
    """An error: one line to stderr, and to --log in the format asked for.

    A warning: once per command, to --log when there is one, else to
    stderr.  podman and containerd always pass --log and show the
    runtime's stderr as the command's own output; runc, too, sends its
    warnings only to the log."""
    if level == "warning":
        if message in _warned:
            return
        _warned.add(message)
    logged = g is not None and bool(g.log)
    if logged:  # first: a client that closed our stderr still finds it there
        _log_line(g, message, level)
    try:
        if level == "error":
            click.echo(f"husk: {message}", err=True)
        elif level == "warning" and not logged:
            click.echo(f"husk: warning: {message}", err=True)
    except OSError:  # no one reads our stderr (a closed pipe): the log has it
        pass


def _log_line(g: Globals, message: str, level: str) -> None:
    import datetime  # only on the error path: keep the CLI's start small

    now = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
    if g.log_format == "json":
        line = json.dumps({"level": level, "msg": message, "time": now})
    else:
        line = f'time="{now}" level={level} msg="{message}"'
    try:
        with open(g.log, "a") as f:
            f.write(line + "\n")
    except OSError:
        pass


def main() -> None:
    ctx = None
    try:
        with cli.make_context("husk", sys.argv[1:]) as ctx:
            send_warnings_to(lambda message: report(ctx.obj, message, "warning"))
            result = cli.invoke(ctx)
        sys.exit(result if isinstance(result, int) else 0)
    except HuskError as e:
        report(ctx.obj if ctx is not None else None, str(e))
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.Abort:
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:  # `husk ps | head`: the reader left; nothing more to say
        sys.stdout = None  # nothing to flush at exit
        sys.exit(141)
