"""`husk build`: a Dockerfile built into an image in husk's store (engine.build)."""

import os
import sys

import click


@click.command()
@click.option("--tag", "-t", "tags", multiple=True, help="Name the image (repeatable).")
@click.option("--file", "-f", "dockerfile", type=click.Path(dir_okay=False), help="The Dockerfile (CONTEXT/Dockerfile).")
@click.option("--build-arg", multiple=True, help="KEY=VALUE for an ARG (repeatable).")
@click.option("--no-cache", is_flag=True, help="Run every step, even where the cache has it.")
@click.option("--pull", type=click.Choice(["missing", "always", "never"]), default="missing", show_default=True,
              help="When to pull the FROM image.")
@click.option("--target", help="Build up to this stage (FROM ... AS NAME); its image is the result.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the image id.")
@click.option("--progress", type=click.Choice(["auto", "plain", "quiet"]), default="auto", show_default=True,
              help="plain: every step and its output; quiet: as -q.")
@click.argument("context", type=click.Path(file_okay=False))
@click.pass_obj
def command(g, tags, dockerfile, build_arg, no_cache, pull, target, quiet, progress, context):
    """Build an image from a Dockerfile: each RUN's overlay upper directory becomes a layer."""
    from runtime.core.errors import ConfigError
    from runtime.engine.build.builder import BuildRequest, build
    from runtime.engine.image.images import image_id
    from runtime.engine.image.store import Store
    from runtime.engine.run import stdin_from_devnull

    args = {}
    for item in build_arg:
        key, sep, value = item.partition("=")
        if not key:
            raise ConfigError("--build-arg", f"{item!r}: expected KEY=VALUE")
        args[key] = value if sep else os.environ.get(key, "")
    quiet = quiet or progress == "quiet"
    req = BuildRequest(context=context, dockerfile=dockerfile, tags=list(tags), build_args=args, no_cache=no_cache,
                       pull=pull, quiet=quiet, target=target)
    stdin_from_devnull()  # a build reads no input, as docker's does not

    def say(line):
        if not quiet:
            click.echo(line, err=False)
            sys.stdout.flush()

    digest = build(g.root, g.storage_root, req, say)
    if not quiet:
        for tag in tags:
            click.echo(f"Successfully tagged {tag}")
    click.echo(image_id(Store(g.storage_root), digest) if quiet else f"--> {image_id(Store(g.storage_root), digest)}")
