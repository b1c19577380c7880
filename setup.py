"""Build hook: compile native/ (husk-init and husk-checker) with make.

The helper is a static executable installed inside the package
(runtime/_bin/husk-init), found next to the Python code at run time, so
husk needs no PATH to find it (podman calls kill and delete without one).
"""

import os
import subprocess

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


setup(cmdclass={"build_py": BuildWithNative})
