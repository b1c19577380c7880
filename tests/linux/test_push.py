"""`husk tag` and `husk push` against real registries (Debian's
docker-registry on 127.0.0.1): an image made by `husk build`, pushed,
then pulled back by skopeo and by husk into a fresh store and run.  What
the registry holds is read from the registry's own API."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import registry as registries

pytestmark = pytest.mark.root


@pytest.fixture
def h(husk_env, layouts):
    husk_env("load", "-q", "--name", "bb", "-i", layouts["busybox"], check=True)
    return husk_env


def built(h, tmp_path, tag: str) -> str:
    """An image of two layers, the busybox base and one made by RUN."""
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text('FROM bb\nRUN echo made by husk build > /made\nCMD ["cat", "/made"]\n')
    h("build", "-q", "-t", tag, str(ctx), check=True)
    return tag


def manifest_of(reg, repo: str, tag: str) -> dict:
    return json.loads(registries.api_get(reg, f"/v2/{repo}/manifests/{tag}"))


def test_push_then_pull_back_with_skopeo_and_husk_and_run(h, http_registry, tmp_path, husk_env):
    target = f"{http_registry.host}/pushed/hello:1"
    h("tag", built(h, tmp_path, "hello"), target, check=True)
    assert h.names()["docker.io/library/hello:latest"] == h.names()[target]
    r = h("push", target, check=True)
    digest = h.names()[target]
    size = len(open(os.path.join(h.store, "blobs", "sha256", digest[7:]), "rb").read())
    assert r.out == f"1: digest: {digest} size: {size}\n"
    assert r.err.count("Pushed") == 3  # the config and both layers
    manifest = manifest_of(http_registry, "pushed/hello", "1")
    assert len(manifest["layers"]) == 2
    # skopeo reads it back byte for byte (the digest is the manifest's own).
    out = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{target}"],
                         check=True, capture_output=True).stdout
    assert "sha256:" + __import__("hashlib").sha256(out).hexdigest() == digest
    # A fresh store pulls it and runs it.
    r = h("pull", "-q", target, store=str(tmp_path / "store2"), check=True)
    assert r.out.strip() == digest
    r = h("run", "--rm", "--pull=never", target, store=str(tmp_path / "store2"))
    assert (r.code, r.out) == (0, "made by husk build\n"), r.err
    h("system", "prune", store=str(tmp_path / "store2"))


def test_a_second_push_sends_nothing_and_another_repository_mounts(h, http_registry, tmp_path):
    first = f"{http_registry.host}/mount-src/hello:1"
    h("tag", built(h, tmp_path, "hello"), first, check=True)
    h("push", first, check=True)
    r = h("push", first, check=True)
    assert r.err.count("Layer already exists") == 3 and "Pushed" not in r.err
    second = f"{http_registry.host}/mount-dst/hello:2"
    h("tag", first, second, check=True)
    r = h("push", second, check=True)
    assert r.err.count("Mounted from mount-src/hello") == 3 and "Pushed" not in r.err, r.err
    assert manifest_of(http_registry, "mount-dst/hello", "2") == manifest_of(http_registry, "mount-src/hello", "1")


def test_a_large_blob_goes_up_in_chunks(h, http_registry, tmp_path):
    target = f"{http_registry.host}/chunked/bb:1"
    h("tag", "bb", target, check=True)
    r = h("push", target, env={"HUSK_PUSH_CHUNK": str(64 << 10)}, check=True)  # busybox's layer is ~1 MB
    digest = h.names()[target]
    assert r.out.startswith(f"1: digest: {digest}")
    r = h("pull", "-q", target, store=str(tmp_path / "store2"), check=True)
    assert h("run", "--rm", "--pull=never", target, "echo", "whole", store=str(tmp_path / "store2")).out == "whole\n"
    h("system", "prune", store=str(tmp_path / "store2"))


def test_push_over_https_with_basic_auth(h, tls_registry, tmp_path):
    target = f"{tls_registry.host}/private/pushed:1"
    h("tag", "bb", target, check=True)
    certs = ["--cert-dir", tls_registry.cert_dir]
    r = h("push", *certs, target)
    assert r.code != 0 and "husk login" in r.err and len(r.err.strip().splitlines()) <= 3, r.err
    h("login", "-u", registries.USER, "--password-stdin", *certs, tls_registry.host,
      input=registries.PASSWORD + "\n", check=True)
    r = h("push", *certs, target, check=True)
    assert re.fullmatch(r"1: digest: sha256:[0-9a-f]{64} size: \d+\n", r.out)
    out = subprocess.run(["skopeo", "inspect", "--cert-dir", tls_registry.cert_dir, "--creds",
                          f"{registries.USER}:{registries.PASSWORD}", f"docker://{target}"],
                         check=True, capture_output=True, text=True).stdout
    assert json.loads(out)["Digest"] == h.names()[target]


def test_bad_tags_and_pushes_are_one_line(h, http_registry):
    for args, words in ((["tag", "nosuch", f"{http_registry.host}/x/y:1"], "not in the store"),
                        (["tag", "bb", "Bad Name"], "Bad Name"),
                        (["tag", "bb", f"{http_registry.host}/x/y@sha256:{'0' * 64}"], "digest"),
                        (["push", "nosuch"], "not in the store")):
        r = h(*args)
        assert r.code != 0 and words in r.err and len(r.err.strip().splitlines()) == 1, (args, r.err)
        assert "Traceback" not in r.err
    assert set(h.names()) == {"docker.io/library/bb:latest"}
