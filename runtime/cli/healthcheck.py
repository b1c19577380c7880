"""`husk healthcheck run NAME`: one health check now (podman's verb; the
monitor runs it every --health-interval)."""

import click


@click.group()
def command():
    """Health checks of image containers."""


@command.command()
@click.argument("container")
@click.pass_obj
def run(g, container):
    """Run the container's health check once: exit 0 healthy, 1 unhealthy."""
    from runtime.engine.health import run_check

    code, output = run_check(g.root, g.storage_root, container)
    if code:
        click.echo(output.rstrip() or "unhealthy", err=True)
    raise SystemExit(code)
