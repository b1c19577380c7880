import click

from runtime.cli._image_opts import store


@click.command()
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="The oci-archive to write.")
@click.argument("images", nargs=-1, required=True)
@click.pass_obj
def command(g, output, images):
    """Save images to an oci-archive (an OCI image layout in a tar)."""
    from runtime.engine.image import images as imgs

    imgs.save(store(g), list(images), output)
