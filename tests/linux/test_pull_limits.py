"""A registry that misbehaves, served on 127.0.0.1 by the test: husk
bounds what it reads (as containers/image's iolimits do), caps
Retry-After, refuses https -> http redirects and sends credentials only
to the registry they are for.  Each failure is one line and leaves an
empty store."""

from __future__ import annotations

import pytest
from registry import HostileRegistry, make_ca_and_cert

pytestmark = pytest.mark.root


@pytest.fixture
def hostile():
    made = []

    def make(behaviour: str, tls=None) -> HostileRegistry:
        reg = HostileRegistry(behaviour, tls)
        made.append(reg)
        return reg
    yield make
    for reg in made:
        reg.stop()


def refused(h, r, *words) -> None:
    assert r.code != 0, r.out
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err, r.err
    for w in words:
        assert w in r.err, r.err
    assert h.store_files("blobs") == [] and h.store_files("tmp") == [] and h.names() == {}


def test_a_manifest_over_4_mib_is_refused(husk_env, hostile):
    reg = hostile("big-manifest")
    refused(husk_env, husk_env("pull", "-q", f"{reg.host}/x/y"), "manifest", "limit")


def test_a_token_over_1_mib_is_refused(husk_env, hostile):
    reg = hostile("big-token")
    refused(husk_env, husk_env("pull", "-q", f"{reg.host}/x/y"), "token", "limit")


def test_a_huge_error_body_is_not_read_whole(husk_env, hostile):
    reg = hostile("big-error")
    refused(husk_env, husk_env("pull", "-q", f"{reg.host}/x/y", timeout=60), "404")


def test_retry_after_is_capped(husk_env, hostile):
    # 86400 s asked, every time: with the cap the pull gives up at once.
    reg = hostile("retry-forever")
    r = husk_env("pull", "-q", f"{reg.host}/x/y", env={"HUSK_MAX_RETRY_AFTER": "0.1"}, timeout=120)
    refused(husk_env, r, "429", "gave up")
    assert len([p for p, _ in reg.seen if "/manifests/" in p]) == 5  # every retry was made


def test_no_redirect_from_https_to_http(husk_env, hostile, tmp_path):
    ca, cert, key = make_ca_and_cert(str(tmp_path))
    plain = hostile("big-manifest")
    reg = hostile(f"redirect:http://{plain.host}", tls=(cert, key))
    certs = tmp_path / "certs" / reg.host
    certs.mkdir(parents=True)
    (certs / "ca.crt").write_bytes(open(ca, "rb").read())
    r = husk_env("pull", "-q", "--cert-dir", str(certs), f"{reg.host}/x/y")
    refused(husk_env, r, "refusing a redirect", "http://")
    assert plain.seen == []


def test_credentials_do_not_follow_a_redirect_to_another_host(husk_env, hostile):
    other = hostile("plain-404")
    reg = hostile("basic")
    reg.redirect_to = f"http://{other.host}"
    husk_env("login", "-u", "alice", "-p", "secret", reg.host, check=True)
    r = husk_env("pull", "-q", f"{reg.host}/x/y")
    assert r.code != 0
    assert any("Authorization" in headers for path, headers in reg.seen if path.startswith("/v2/x"))
    assert other.seen and not any("Authorization" in headers for _, headers in other.seen)
