import click

from runtime.cli._image_opts import store


@click.command()
@click.option("--input", "-i", "path", required=True, type=click.Path(exists=True),
              help="An OCI layout directory, an oci-archive or a docker-archive (docker save) tarball.")
@click.option("--name", help="Repository (or name:tag) for images the archive names by tag only.")
@click.option("--quiet", "-q", is_flag=True)
@click.pass_obj
def command(g, path, name, quiet):
    """Load images from a directory or archive into the store."""
    from runtime.engine.image import images

    images.load(store(g), path, name=name, quiet=quiet)
