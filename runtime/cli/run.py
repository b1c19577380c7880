"""`husk run`: one verb, two faces.

    husk run [--bundle DIR] [runc flags] ID          the OCI runtime's run (runc)
    husk run [docker flags] IMAGE [COMMAND ARGS...]  a container from an image

The command line alone decides, never the working directory or what
is on disk: it is runc's form when one of runc's own flags is given
(--bundle/-b, --pid-file, --console-socket, --no-pivot, --no-new-keyring,
--preserve-fds, --keep), so in a bundle directory runc's `run ID` is
`husk run -b . ID`.  Everything else runs an image.
"""

import click

from runtime.cli._explain import begin as begin_explain, explain_options
from runtime.cli._image_opts import FlagForms

OCI_ONLY = ("bundle", "pid_file", "console_socket", "no_pivot", "no_new_keyring", "preserve_fds", "keep")
IMAGE_ONLY = ("rm", "interactive", "tty", "env", "env_file", "workdir", "user", "entrypoint", "name",
              "hostname", "read_only", "pull", "platform", "quiet", "storage_driver", "authfile", "tls_verify",
              "network", "publish", "publish_all", "ip", "dns", "add_host", "security_opt", "restart",
              "log_opt", "volume", "mount", "tmpfs", "memory", "memory_swap", "memory_reservation", "cpus",
              "cpu_shares", "cpuset_cpus", "pids_limit", "health_cmd", "health_interval", "health_timeout",
              "health_retries", "health_start_period", "no_healthcheck", "cgroup_manager")


@click.command(cls=FlagForms, context_settings={"allow_interspersed_args": False})
# runc's flags
@click.option("--bundle", "-b", default=None, help="[OCI] Path to the bundle (default: .).")
@click.option("--detach", "-d", is_flag=True, help="Return once the process has started (image: output to a log).")
@click.option("--pid-file", help="[OCI] Write the container's host pid here.")
@click.option("--console-socket", help="[OCI] Unix socket that receives the pty master.")
@click.option("--no-pivot", is_flag=True, help="[OCI] Use MS_MOVE + chroot instead of pivot_root.")
@click.option("--no-new-keyring", is_flag=True, help="[OCI] Keep the caller's session keyring.")
@click.option("--preserve-fds", type=click.IntRange(min=0), default=None, help="[OCI] Pass fds 3..3+N-1.")
@click.option("--keep", is_flag=True, help="[OCI] Do not delete the container when it exits.")
# docker's flags
@click.option("--rm", is_flag=True, help="[image] Remove the container (and its changes) when it exits.")
@click.option("--restart", default="no", show_default=True,
              help="[image] With -d: no, on-failure[:N], always or unless-stopped.")
@click.option("--log-opt", multiple=True, help="[image] max-size=SIZE: rotate the log at SIZE (10m).")
@click.option("--interactive", "-i", is_flag=True, help="[image] Keep stdin open.")
@click.option("--tty", "-t", is_flag=True, help="[image] Give the process a terminal.")
@click.option("--env", "-e", multiple=True, help="[image] Set KEY=VALUE (repeatable).")
@click.option("--env-file", multiple=True, type=click.Path(dir_okay=False), help="[image] Read KEY=VALUE lines.")
@click.option("--workdir", "-w", help="[image] Working directory inside the container.")
@click.option("--user", "-u", help="[image] USER[:GROUP], names or ids (from the image's /etc/passwd).")
@click.option("--entrypoint", help="[image] Replace the image's entrypoint.")
@click.option("--name", help="[image] Name the container.")
@click.option("--hostname", "-h", "hostname", help="[image] Container hostname.")
@click.option("--read-only", is_flag=True, help="[image] Mount the root filesystem read-only.")
@click.option("--pull", type=click.Choice(["missing", "always", "never"]), default="missing", show_default=True)
@click.option("--platform", help="[image] os/arch[/variant] to pull.")
@click.option("--quiet", "-q", is_flag=True, help="[image] No pull progress.")
@click.option("--storage-driver", type=click.Choice(["overlay", "vfs"]), default="overlay", show_default=True,
              help="[image] overlay mounts the layers; vfs copies them.")
@click.option("--authfile", envvar="REGISTRY_AUTH_FILE", help="[image] Registry credentials file.")
@click.option("--tls-verify/--no-tls-verify", "tls_verify", default=True, help="[image] Verify registry TLS.")
@click.option("--security-opt", multiple=True,
              help="[image] seccomp=unconfined|PROFILE.json, no-new-privileges (repeatable).")
# volumes and limits
@click.option("--volume", "-v", multiple=True, help="[image] [NAME|/HOST/PATH:]/DEST[:ro] (repeatable).")
@click.option("--mount", multiple=True, help="[image] type=bind|volume|tmpfs,source=S,target=T[,readonly].")
@click.option("--tmpfs", multiple=True, help="[image] /DEST[:size=64m,...]: a tmpfs (noexec,nosuid,nodev).")
@click.option("--memory", "-m", help="[image] Memory limit (6m or more).")
@click.option("--memory-swap", help="[image] Memory plus swap limit; -1: unlimited swap.")
@click.option("--memory-reservation", help="[image] Soft memory limit.")
@click.option("--cpus", help="[image] CPUs' time, like 1.5.")
@click.option("--cpu-shares", "-c", type=int, help="[image] Relative CPU weight (1024 is the default).")
@click.option("--cpuset-cpus", help="[image] CPUs it may run on, like 0-1.")
@click.option("--pids-limit", type=int, help="[image] Most processes at once (0 or -1: unlimited).")
@click.option("--cgroup-manager", type=click.Choice(["cgroupfs", "systemd"]),
              help="[image] Its cgroup: a systemd scope in machine.slice (the default where systemd is the init) "
                   "or /husk/ID.")
# health
@click.option("--health-cmd", help="[image] With -d: a shell command whose exit status is the health.")
@click.option("--health-interval", help="[image] Time between checks (30s).")
@click.option("--health-timeout", help="[image] Longest a check may run (30s).")
@click.option("--health-retries", type=int, help="[image] Failures in a row that make it unhealthy (3).")
@click.option("--health-start-period", help="[image] Failures in this first time do not count (0s).")
@click.option("--no-healthcheck", is_flag=True, help="[image] Run no health check, not even the image's.")
# networking
@click.option("--network", "--net", "network", default="bridge", show_default=True,
              help="[image] bridge, none, host, container:NAME or a network's name.")
@click.option("--publish", "-p", multiple=True, help="[image] [HOSTIP:]HOSTPORT:PORT[/tcp|udp] (repeatable).")
@click.option("--publish-all", "-P", is_flag=True, help="[image] Publish the image's exposed ports on free host ports.")
@click.option("--ip", help="[image] Ask for this address on the network.")
@click.option("--dns", multiple=True, help="[image] Nameserver for /etc/resolv.conf (repeatable).")
@click.option("--add-host", multiple=True, help="[image] NAME:IP line for /etc/hosts (repeatable).")
@explain_options
@click.argument("target")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def command(ctx, target, command, explain, explain_file, **opts):
    """Run a container: from a bundle (OCI, like runc) or from an image (like docker)."""
    g = ctx.obj
    oci_form = any(_given(ctx, k) for k in OCI_ONLY)
    refuse = "an image container run with -d is started by its monitor; run it without -d"
    explaining = begin_explain(explain, explain_file, preserve_fds=opts["preserve_fds"] or 0,
                               refuse=refuse if opts["detach"] and not oci_form else None)
    if oci_form:  # runc's form
        if command:
            raise click.UsageError("the OCI form takes one container id")
        # The front end runs every container; it handed this one here to
        # have what is wrong with it named (or for --explain's sake: then
        # it names it itself, planning it afresh).
        from runtime.core import executor, recipe

        if not explaining:
            recipe.check_create(g.root, opts["bundle"] or ".", target, console_socket=opts["console_socket"],
                                no_pivot=opts["no_pivot"], preserve_fds=opts["preserve_fds"] or 0,
                                no_new_keyring=opts["no_new_keyring"], run=True, detach=opts["detach"],
                                systemd=g.systemd_cgroup)
        executor.again()
    from runtime.cli.main import report
    from runtime.engine.limits import Limits
    from runtime.engine.run import RunRequest, run_image

    req = RunRequest(
        target=target, command=list(command), pull=opts["pull"], platform=opts["platform"],
        tls_verify=opts["tls_verify"], authfile=opts["authfile"], quiet=opts["quiet"], env=list(opts["env"]),
        env_files=list(opts["env_file"]), entrypoint=opts["entrypoint"], workdir=opts["workdir"], user=opts["user"],
        hostname=opts["hostname"], name=opts["name"], tty=opts["tty"], interactive=opts["interactive"],
        detach=opts["detach"], remove=opts["rm"], read_only=opts["read_only"], storage_driver=opts["storage_driver"],
        security_opt=list(opts["security_opt"]), network=opts["network"], publish=list(opts["publish"]),
        publish_all=opts["publish_all"], ip=opts["ip"], dns=list(opts["dns"]), add_host=list(opts["add_host"]),
        restart=opts["restart"], log_opts=list(opts["log_opt"]), volumes=list(opts["volume"]),
        mounts=list(opts["mount"]), tmpfs=list(opts["tmpfs"]),
        limits=Limits(memory=opts["memory"], memory_swap=opts["memory_swap"],
                      memory_reservation=opts["memory_reservation"], cpus=opts["cpus"],
                      cpu_shares=opts["cpu_shares"], cpuset_cpus=opts["cpuset_cpus"], pids_limit=opts["pids_limit"]),
        health_cmd=opts["health_cmd"], health_interval=opts["health_interval"], health_timeout=opts["health_timeout"],
        health_retries=opts["health_retries"], health_start_period=opts["health_start_period"],
        no_healthcheck=opts["no_healthcheck"],
        cgroup_manager=opts["cgroup_manager"] or ("systemd" if g.systemd_cgroup else None))
    return run_image(g.root, g.storage_root, req, report=lambda message: report(g, message), started=click.echo)


def _given(ctx, name: str) -> bool:
    return ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)
