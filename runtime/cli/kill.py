"""`husk kill`: runc's form or docker's, told apart by the command line.

    husk kill [--all] ID SIGNAL     runc's (the runtime-spec's `kill <id> <signal>`),
                                    as podman, containerd and Docker send it
    husk kill [-s SIGNAL] NAME...   docker's: image containers by id, id
                                    prefix or name; KILL by default

The two forms mean different things (runc's signals an OCI container,
TERM by default; docker's sends KILL and keeps the container's restart
policy from bringing it back), so the argv alone decides, and never what
is on disk: runc's form gives the signal as the second operand (or
--all); docker's gives it with -s, if at all.
"""

import click

from runtime.core import container
from runtime.core.errors import HuskError, NotFound
from runtime.core.linux.signals import parse_signal


@click.command()
@click.option("--all", "-a", "all_processes", is_flag=True, help="runc: signal every process in the cgroup.")
@click.option("--signal", "-s", "docker_signal", help="docker: the signal (default KILL).")
@click.argument("container_id")
@click.argument("rest", nargs=-1)
@click.pass_obj
def command(g, all_processes, docker_signal, container_id, rest):
    """Send a signal: `kill ID SIGNAL` (runc) or `kill [-s SIGNAL] NAME...` (docker)."""
    if is_runc_form(all_processes, docker_signal, rest):
        if len(rest) > 1:
            raise click.UsageError("runc's form is kill [--all] ID [SIGNAL]")
        try:
            number = parse_signal(rest[0] if rest else "TERM")
        except ValueError as e:
            raise HuskError("kill", str(e)) from None
        return container.kill(g.root, container_id, number, all_processes)
    from runtime.engine import lifecycle

    for name in (container_id, *rest):
        try:
            click.echo(lifecycle.kill(g.root, g.storage_root, name, docker_signal or "KILL"))
        except ValueError as e:
            raise HuskError("kill", str(e)) from None
        except NotFound:
            if len(rest) > 1:
                raise
            # Where a runc user may have meant the other form, say how it goes.
            hint = (f"an OCI container's signal follows its id: husk kill {name} TERM" if not rest else
                    f"{rest[0]!r} is no signal, so this was docker's kill of two containers")
            raise NotFound(name, hint=hint) from None


def is_runc_form(all_processes: bool, docker_signal: str | None, rest: tuple[str, ...]) -> bool:
    """runc's form: --all, or exactly one more operand and it is a signal."""
    if all_processes and docker_signal is not None:
        raise click.UsageError("--all is runc's form (kill --all ID SIGNAL), -s docker's (kill -s SIGNAL NAME)")
    if all_processes:
        return True
    if docker_signal is not None or len(rest) != 1:
        return False
    try:
        parse_signal(rest[0])
        return True
    except ValueError:
        return False
