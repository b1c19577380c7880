"""Build hook: compile native/ (husk-init and husk-checker) with make.

The helper is a static executable installed inside the package
(runtime/_bin/husk-init), found next to the Python code at run time, so
husk needs no PATH to find it (podman calls kill and delete without one).
"""

import os
import subprocess
import sys
import sysconfig

from setuptools import setup
from setuptools.command.build_py import build_py
from distutils.command.build_scripts import build_scripts  # setuptools provides distutils

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildWithNative(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            out = os.path.join(HERE, "runtime", "_bin")  # editable: beside the sources
        else:
            out = os.path.join(os.path.abspath(self.build_lib), "runtime", "_bin")
        subprocess.check_call(["make", "-C", os.path.join(HERE, "native"), f"OUT={out}"])
        if not getattr(self, "editable_mode", False):
            # The C sources --explain cites (native/src/trace.h), so its
            # HTML page can show each step's code in an installed husk.
            for sub in ("src", "front", "include"):
                src = os.path.join(HERE, "native", sub)
                dst = os.path.join(os.path.abspath(self.build_lib), "runtime", "_source", "native", sub)
                os.makedirs(dst, exist_ok=True)
                for name in os.listdir(src):
                    if name.endswith((".c", ".h", ".def")):
                        self.copy_file(os.path.join(src, name), os.path.join(dst, name))


# The `husk` command is the C front end (native/front): it serves the OCI
# hot verbs itself and execs this interpreter with -I -S for the rest (no
# .pth file of the environment runs first; site-packages is added by
# hand).  podman runs it with no PATH: every path it holds is absolute.
def c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def launcher() -> str:
    out = os.path.join(HERE, "build", "launcher")
    os.makedirs(out, exist_ok=True)
    purelib = sysconfig.get_paths()["purelib"]
    config = os.path.join(out, "front_config.h")
    text = (f"#define HUSK_PYTHON {c_string(sys.executable)}\n"
            f"#define HUSK_PURELIB {c_string(purelib)}\n"
            f"#define HUSK_PURELIB_PY {c_string(repr(purelib))}\n")
    if not os.path.exists(config) or open(config).read() != text:
        with open(config, "w") as f:
            f.write(text)
    subprocess.check_call(["make", "-s", "-C", os.path.join(HERE, "native"), f"OUT={out}",
                           f"FRONT_CONFIG={config}", f"{out}/husk"])
    return os.path.relpath(os.path.join(out, "husk"), HERE)


class CopyBinaryScripts(build_scripts):
    """`husk` is an ELF binary: copied as it is (build_scripts would read
    it as Python source, looking for a shebang to rewrite)."""

    def run(self):
        self.mkpath(self.build_dir)
        for script in self.scripts:
            dest = os.path.join(self.build_dir, os.path.basename(script))
            self.copy_file(script, dest)
            os.chmod(dest, 0o755)


# runtime.core._native: the plan table and syscalls, through cffi in API
# mode (native/ffi/build.py says what it holds).
setup(cmdclass={"build_py": BuildWithNative, "build_scripts": CopyBinaryScripts}, scripts=[launcher()],
      cffi_modules=["native/ffi/build.py:ffibuilder"])
