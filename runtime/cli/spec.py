import json
import os

import click

from runtime.core.errors import HuskError
from runtime.core.oci.example import example_spec


@click.command()
@click.option("--bundle", "-b", default=".", help="Write config.json into this directory.")
@click.pass_obj
def command(g, bundle):
    """Write a default config.json (like `runc spec`)."""
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise HuskError("spec", f"{path} already exists")
    with open(path, "w") as f:
        json.dump(example_spec(), f, indent=2)
        f.write("\n")
