"""tests/unit needs no privilege: run it here with every capability gone
(setpriv empties the bounding set, so even uid 0's execve gets none) and
no_new_privs set; it must pass as it does for a user without root."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.root


def test_the_unit_tests_pass_without_capabilities(tmp_path):
    r = subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all", "--no-new-privs",
                        sys.executable, "-I", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp",
                        str(tmp_path / "t"), os.path.join(REPO, "tests", "unit")],
                       capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and "skipped" not in r.stdout.splitlines()[-1], r.stdout[-500:]
