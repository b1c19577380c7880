import click

from runtime.cli._image_opts import store


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{n}B"
        n /= 1000
    return str(n)


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="Only image IDs.")
@click.pass_obj
def command(g, fmt, quiet):
    """List the images in the store."""
    import json

    from runtime.engine.image import images

    rows = images.listing(store(g))
    if quiet:
        for r in rows:
            click.echo(r["id"][7:19])
    elif fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(f"{'REPOSITORY':40} {'TAG':16} {'IMAGE ID':14} {'CREATED':22} SIZE")
        for r in rows:
            click.echo(f"{r['name']:40} {r['tag']:16} {r['id'][7:19]:14} {r['created'][:19]:22} {_size(r['size'])}")
