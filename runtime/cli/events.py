import json
import time

import click

from runtime.core import container
from runtime.core.errors import HuskError


@click.command()
@click.option("--stats", "once", is_flag=True, help="Print one stats event and exit.")
@click.option("--interval", default="5s", help="How often to report stats (like 5s or 500ms).")
@click.argument("container_id")
@click.pass_obj
def command(g, once, interval, container_id):
    """Stream runc-style JSON events: stats every interval, oom when it strikes."""
    period = _seconds(interval)
    if once:
        click.echo(json.dumps({"type": "stats", "id": container_id, "data": container.stats(g.root, container_id)}))
        return
    ooms = container.oom_kills(g.root, container_id)
    next_stats = 0.0
    while True:
        try:
            now = time.monotonic()
            count = container.oom_kills(g.root, container_id)
            if count > ooms:
                click.echo(json.dumps({"type": "oom", "id": container_id}), nl=True)
                ooms = count
            if now >= next_stats:
                data = container.stats(g.root, container_id)
                click.echo(json.dumps({"type": "stats", "id": container_id, "data": data}))
                next_stats = now + period
        except HuskError:
            return  # the container stopped or is gone: the stream ends
        time.sleep(min(period, 0.1))


def _seconds(text: str) -> float:
    t = text.strip()
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if t.endswith(suffix) and t[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(t[: -len(suffix)]) * scale
    if t.replace(".", "", 1).isdigit():
        return float(t)
    raise HuskError("events", f"--interval {text!r}: expected a duration like 5s or 500ms")
