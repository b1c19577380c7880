"""Build hook: compile native/ (husk-init and husk-checker) with make.

The helper is a static executable installed inside the package
(runtime/_bin/husk-init), found next to the Python code at run time, so
husk needs no PATH to find it (podman calls kill and delete without one).
"""

import os
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildWithNative(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            out = os.path.join(HERE, "runtime", "_bin")  # editable: beside the sources
        else:
            out = os.path.join(os.path.abspath(self.build_lib), "runtime", "_bin")
        subprocess.check_call(["make", "-C", os.path.join(HERE, "native"), f"OUT={out}"])


# The `husk` command: sh starts the interpreter with -I -S, so no .pth file
# of the environment runs before husk does (site processing can cost more
# than husk's own work on a hot path like `husk run`).  site-packages is
# then added by hand; an editable install falls back to full site
# processing.  podman runs it with no PATH: every path here is absolute.
LAUNCHER = f"""#!/bin/sh
"exec" "{sys.executable}" "-I" "-S" "$0" "$@"
import sys, sysconfig
sys.path.append(sysconfig.get_paths()["purelib"])
try:
    from runtime.cli.main import main
except ImportError:
    import site
    site.main()
    from runtime.cli.main import main
main()
"""


def launcher() -> str:
    path = os.path.join(HERE, "build", "launcher", "husk")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(LAUNCHER)
    os.chmod(path, 0o755)
    return os.path.relpath(path, HERE)


setup(cmdclass={"build_py": BuildWithNative}, scripts=[launcher()])
