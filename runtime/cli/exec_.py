
import click

from runtime.cli._explain import begin as begin_explain, explain_options
from runtime.cli._image_opts import FlagForms
from runtime.cli.main import load_json_arg
from runtime.core import container
from runtime.core.errors import HuskError


@click.command(name="exec", cls=FlagForms,
               context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--process", "-p", "process_file", help="A runtime-spec process JSON: the whole description.")
@click.option("--tty", "-t", is_flag=True, help="Give the process a pty.")
@click.option("--console-socket", help="Unix socket that receives the pty master.")
@click.option("--detach", "-d", is_flag=True, help="Return once the program has exec'd.")
@click.option("--pid-file", help="Write the new process's host pid here.")
@click.option("--cwd", "--workdir", "-w", "cwd", help="Working directory inside the container.")
@click.option("--interactive", "-i", is_flag=True, help="Keep stdin open (docker's -i; without it, an image "
              "container's exec reads /dev/null).")
@click.option("--env", "-e", multiple=True, help="KEY=VALUE, repeatable.")
@click.option("--user", "-u", help="UID[:GID] (an image container: names from its /etc/passwd too).")
@click.option("--additional-gids", "-g", multiple=True, type=int, help="Additional group, repeatable.")
@click.option("--cap", "-c", "caps", multiple=True, help="Add a capability, repeatable.")
@click.option("--no-new-privs", is_flag=True, help="Set no_new_privs.")
@click.option("--preserve-fds", type=click.IntRange(min=0), default=0)
@click.option("--apparmor", help="AppArmor profile for the process (default: the container's).")
@explain_options
@click.argument("container_id")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def command(g, process_file, tty, console_socket, detach, pid_file, cwd, interactive, env, user, additional_gids,
            caps, no_new_privs, preserve_fds, apparmor, explain, explain_file, container_id, command):
    """Run a process in a running container (an OCI id, or an image container's name or id prefix)."""
    begin_explain(explain, explain_file, preserve_fds=preserve_fds)
    image_container = _image_container(g, container_id)
    if image_container is not None:
        container_id = image_container.id
        if user:
            user = _image_user(g, image_container, user)
        if not interactive:
            from runtime.engine.run import stdin_from_devnull

            stdin_from_devnull()
    if process_file:
        process = load_json_arg(process_file, "--process")
    else:
        if not command:
            raise HuskError("exec", "give a command, or --process FILE")
        process = _from_flags(g.root, container_id, list(command), tty, cwd, env, user, additional_gids, caps,
                              no_new_privs)
        if apparmor:
            process["apparmorProfile"] = apparmor
    front_args = (*(["--log", g.log] if g.log else []), "--log-format", g.log_format)
    container.exec_process(g.root, container_id, process, detach=detach, pid_file=pid_file,
                           console_socket=console_socket, preserve_fds=preserve_fds, front_args=front_args)


def _from_flags(root, container_id, args, tty, cwd, env, user, additional_gids, caps, no_new_privs):
    """The container's own process, with what the flags change (as runc exec does)."""
    process = container.process_of(root, container_id)
    process["args"] = args
    process["terminal"] = tty
    if cwd:
        process["cwd"] = cwd
    if env:
        process["env"] = list(process.get("env") or []) + list(env)
    if user:
        uid, _, gid = user.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise HuskError("exec", f"--user {user!r}: expected UID[:GID] as numbers")
        process["user"] = {"uid": int(uid), "gid": int(gid or 0)}
    if additional_gids:
        process.setdefault("user", {})["additionalGids"] = list(additional_gids)
    if caps:
        sets = process.setdefault("capabilities", {})
        for name in ("bounding", "effective", "permitted"):
            sets[name] = list(sets.get(name) or []) + [c if c.upper().startswith("CAP_") else "CAP_" + c for c in caps]
    if no_new_privs:
        process["noNewPrivileges"] = True
    return process


def _image_container(g, text):
    """The record of the image container TEXT names (by id, id prefix or
    name), or None: then TEXT is an OCI container's id (runc's exec, as
    podman and containerd call it).  Both faces mean "run a process in
    this container"; an image container's adds docker's user names and
    stdin."""
    from runtime.core.errors import NotFound
    from runtime.engine import record as records

    try:
        return records.find(g.storage_root, text)
    except NotFound:
        return None


def _image_user(g, record, user):
    """docker exec -u NAME[:GROUP]: looked up in the container's own
    /etc/passwd and /etc/group, by fd inside its rootfs."""
    import os

    from runtime.engine.image import users
    from runtime.engine.image.store import Store

    rootfs = os.path.join(Store(g.storage_root).container_dir(record.id), "rootfs")
    u = users.resolve(rootfs, user)
    return f"{u.uid}:{u.gid}"

