"""The Vagrantfile parses, and provisions with the script CI uses."""

import os
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_vagrantfile_uses_the_ci_install_script():
    with open(os.path.join(REPO, "Vagrantfile")) as f:
        text = f.read()
    assert "scripts/install-deps.sh" in text
    with open(os.path.join(REPO, "Makefile")) as f:
        assert "scripts/install-deps.sh" in f.read()


@pytest.mark.skipif(shutil.which("vagrant") is None, reason="Debian's vagrant is not installed")
def test_vagrant_validate(tmp_path):
    env = dict(os.environ, VAGRANT_HOME=str(tmp_path), VAGRANT_CHECKPOINT_DISABLE="1")
    r = subprocess.run(["vagrant", "validate", "--ignore-provider"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
