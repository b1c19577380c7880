"""`husk attach NAME`: a detached container's output here, and this
terminal's input to it if it was run with -d -i (engine.attach)."""

import sys

import click


@click.command()
@click.option("--no-stdin", is_flag=True, help="Do not send this command's input to the container.")
@click.argument("name")
@click.pass_obj
def command(g, no_stdin, name):
    """Attach to a running image container: print its output until it exits, and exit with its code."""
    from runtime.engine import attach, lifecycle
    from runtime.engine import record as records

    record = records.find(g.storage_root, name)
    sock = attach.connect(g.storage_root, record.id, record.name)
    streams = {attach.STDOUT: sys.stdout.buffer, attach.STDERR: sys.stderr.buffer}

    def write(stream, data):
        streams[stream].write(data)
        streams[stream].flush()

    with sock:
        attach.relay(sock, None if no_stdin or not record.interactive else sys.stdin.fileno(), write)
    return lifecycle.wait(g.root, g.storage_root, record.id)
