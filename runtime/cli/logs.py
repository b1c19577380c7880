import sys

import click


@click.command()
@click.option("--follow", "-f", is_flag=True, help="Keep printing what the container writes until it stops.")
@click.option("--tail", "-n", default="all", show_default=True, help="Only the last N lines.")
@click.option("--since", help="Only lines after a time (RFC 3339, Unix time, or a duration like 10m).")
@click.option("--timestamps", "-t", is_flag=True, help="Prefix each line with its RFC 3339 time.")
@click.argument("name")
@click.pass_obj
def command(g, follow, tail, since, timestamps, name):
    """A detached container's output, from the log its monitor writes."""
    from runtime.core.errors import ConfigError
    from runtime.engine import logs, monitor
    from runtime.engine import record as records

    if tail != "all" and not tail.isdigit():
        raise ConfigError("--tail", f"{tail!r}: a number of lines, or all")
    cid = records.find(g.storage_root, name).id
    offset = logs.log_size(g.storage_root, cid)  # what -f follows: written after the lines printed now
    after = logs.parse_since(since) if since else None
    for line in logs.lines(g.storage_root, cid, None if tail == "all" else int(tail), after):
        print_line(line, timestamps)
    if follow:
        for line in logs.follow(g.storage_root, cid, offset, lambda: monitor.alive(g.storage_root, cid) is True):
            if after is None or line.time >= after:
                print_line(line, timestamps)


def print_line(line, timestamps):
    out = sys.stderr if line.stream == "stderr" else sys.stdout
    out.write(f"{line.time} {line.text}\n" if timestamps else line.text + "\n")
    out.flush()
