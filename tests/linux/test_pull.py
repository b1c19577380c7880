"""Pulling from real registries (Debian's docker-registry on 127.0.0.1,
images pushed by skopeo): plain HTTP, HTTPS with a CA, basic auth with
login/logout, the bearer-token flow, platforms, compressions - and the
failure paths, which must leave nothing in the store."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading

import pytest
import registry as registries

pytestmark = pytest.mark.root


def test_pull_over_http_and_run(husk_env, http_registry):
    h = husk_env
    ref = f"{http_registry.host}/test/busybox:latest"
    r = h("pull", ref, check=True)
    digest = r.out.strip()
    assert digest.startswith("sha256:") and "Writing manifest" in r.err
    assert h.names() == {ref: digest}
    r = h("run", "--rm", "--pull=never", ref, "echo", "pulled")
    assert (r.code, r.out) == (0, "pulled\n"), r.err


def test_pull_is_idempotent_and_shares_layers(husk_env, http_registry):
    h = husk_env
    h("pull", "-q", f"{http_registry.host}/test/busybox", check=True)
    h("pull", "-q", f"{http_registry.host}/test/busybox", check=True)
    h("pull", "-q", f"{http_registry.host}/test/layers", check=True)
    layers = [n for n in os.listdir(os.path.join(h.store, "layers", "sha256")) if not n.endswith(".json")]
    assert len(layers) == 2


def test_pull_by_digest(husk_env, http_registry):
    h = husk_env
    digest = h("pull", "-q", f"{http_registry.host}/test/busybox", check=True).out.strip()
    ref = f"{http_registry.host}/test/busybox@{digest}"
    h2 = h("pull", "-q", ref, check=True)
    assert h2.out.strip() == digest and ref in h.names()
    bad = f"{http_registry.host}/test/busybox@sha256:{'1' * 64}"
    r = h("pull", "-q", bad)
    assert r.code != 0 and "not found" in r.err, r.err


@pytest.mark.parametrize("image", ["layers", "zstd", "plain", "docker-v2s2"])
def test_whiteouts_opaque_dirs_and_file_kinds_after_pull(husk_env, http_registry, image):
    h = husk_env
    ref = f"{http_registry.host}/test/{image}"
    h("pull", "-q", ref, check=True)
    script = ("test ! -e /etc/os-release && echo deleted; ls -A /home; cat /home/fresh/file; "
              "stat -c '%a %u %g' /opt/app/suid /home/fresh/file; "
              "test /opt/app/hard -ef /opt/app/run.sh && echo hardlinked; readlink /opt/app/abs; "
              "test -p /opt/app/fifo && echo fifo; /opt/app/run.sh hi")
    r = h("run", "--rm", "--pull=never", ref, "sh", "-c", script)
    assert r.code == 0, r.err
    assert r.out.split("\n") == ["deleted", "fresh", "fresh", "4755 0 0", "640 1000 1000", "hardlinked",
                                 "/opt/app/run.sh", "fifo", "app says hi", ""]


def test_docker_formats_are_what_was_pulled(husk_env, http_registry):
    h = husk_env
    h("pull", "-q", f"{http_registry.host}/test/docker-v2s2", check=True)
    info = json.loads(h("image", "inspect", f"{http_registry.host}/test/docker-v2s2", check=True).out)[0]
    assert info["Manifest"]["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert {layer["mediaType"] for layer in info["Layers"]} == {"application/vnd.docker.image.rootfs.diff.tar.gzip"}


@pytest.mark.parametrize("repo", ["multiarch", "docker-list"])
def test_platform_selection_from_an_index(husk_env, http_registry, repo):
    h = husk_env
    ref = f"{http_registry.host}/test/{repo}"
    h("pull", "-q", ref, check=True)
    assert h("run", "--rm", "--pull=never", ref, "cat", "/etc/arch").out == "amd64\n"
    h("pull", "-q", "--platform", "linux/arm64", ref, check=True)
    info = json.loads(h("image", "inspect", ref, check=True).out)[0]
    assert info["Architecture"] == "arm64"
    r = h("pull", "-q", "--platform", "linux/s390x", ref)
    assert r.code != 0 and "no image for platform linux/s390x" in r.err and "linux/arm64" in r.err, r.err


def test_https_with_ca_and_basic_auth_login_logout(husk_env, tls_registry, tmp_path):
    h = husk_env
    ref = f"{tls_registry.host}/private/busybox"
    certs = ["--cert-dir", tls_registry.cert_dir]
    # the CA is not trusted without --cert-dir: a TLS error, not a fallback to HTTP
    r = h("pull", "-q", ref)
    assert r.code != 0 and "certificate verify failed" in r.err, r.err
    r = h("pull", "-q", *certs, ref)
    assert r.code != 0 and "husk login" in r.err, r.err
    r = h("login", "-u", "husk", "--password-stdin", *certs, tls_registry.host, input="wrong\n")
    assert r.code != 0 and "unauthorized" in r.err.lower(), r.err
    authfile = os.path.join(h.home, ".config/husk/auth.json")
    assert not os.path.exists(authfile)
    r = h("login", "-u", registries.USER, "--password-stdin", *certs, tls_registry.host,
          input=registries.PASSWORD + "\n", check=True)
    assert "Login Succeeded" in r.out
    assert oct(os.stat(authfile).st_mode & 0o777) == "0o600"
    assert tls_registry.host in json.load(open(authfile))["auths"]
    h("pull", "-q", *certs, ref, check=True)
    assert h("run", "--rm", "--pull=never", ref, "true").code == 0
    h("logout", tls_registry.host, check=True)
    assert json.load(open(authfile))["auths"] == {}
    h("rmi", ref, check=True)
    assert h("pull", "-q", *certs, ref).code != 0


def test_credentials_from_docker_config(husk_env, tls_registry):
    h = husk_env
    os.makedirs(os.path.join(h.home, ".docker"))
    import base64

    auth = base64.b64encode(f"{registries.USER}:{registries.PASSWORD}".encode()).decode()
    with open(os.path.join(h.home, ".docker", "config.json"), "w") as f:
        json.dump({"auths": {tls_registry.host: {"auth": auth}}}, f)
    h("pull", "-q", "--cert-dir", tls_registry.cert_dir, f"{tls_registry.host}/private/busybox", check=True)


def test_podmans_tls_verify_spelling(husk_env, tls_registry):
    """podman writes --tls-verify=false; husk takes it as --no-tls-verify (and
    =true as --tls-verify), for pull and for run, and refuses a non-boolean."""
    h = husk_env
    os.makedirs(os.path.join(h.home, ".docker"))
    import base64

    auth = base64.b64encode(f"{registries.USER}:{registries.PASSWORD}".encode()).decode()
    with open(os.path.join(h.home, ".docker", "config.json"), "w") as f:
        json.dump({"auths": {tls_registry.host: {"auth": auth}}}, f)
    ref = f"{tls_registry.host}/private/busybox"
    r = h("pull", "-q", "--tls-verify=true", ref)  # the CA is not given: verification fails
    assert r.code != 0 and "certificate" in r.err, r.err
    assert h.names() == {}
    h("pull", "-q", "--tls-verify=false", ref, check=True)
    r = h("run", "--rm", "--tls-verify=false", "--pull=always", "-q", ref, "echo", "--tls-verify=false")
    assert (r.code, r.out) == (0, "--tls-verify=false\n"), r.err  # the container's own argument is left alone
    r = h("pull", "-q", "--tls-verify=maybe", ref)
    assert r.code == 2 and "'maybe' is not a boolean" in r.err and len(r.err.strip().splitlines()) <= 3, r.err


def test_bearer_token_flow(husk_env, token_registry):
    h = husk_env
    tokens = token_registry.tokens
    tokens.requests.clear()
    h("pull", "-q", f"{token_registry.host}/public/busybox", check=True)
    assert tokens.requests and tokens.requests[0]["user"] is None
    assert tokens.requests[0]["scope"] == ["repository:public/busybox:pull"]
    assert tokens.requests[0]["service"] == ["husk-registry"]
    r = h("pull", "-q", f"{token_registry.host}/private/busybox")
    assert r.code != 0 and ("husk login" in r.err or "denied" in r.err or "unauthorized" in r.err), r.err
    h("login", "-u", registries.USER, "--password-stdin", token_registry.host, input=registries.PASSWORD + "\n",
      check=True)
    tokens.requests.clear()
    h("pull", "-q", f"{token_registry.host}/private/busybox", check=True)
    assert any(q["user"] == registries.USER for q in tokens.requests)


def test_unknown_image_and_registry_down(husk_env, http_registry):
    h = husk_env
    r = h("pull", "-q", f"{http_registry.host}/test/nothing-here:latest")
    assert r.code != 0 and "not found" in r.err and "test/nothing-here" in r.err, r.err
    port = registries.free_port()
    r = h("pull", "-q", f"127.0.0.1:{port}/test/busybox")
    assert r.code != 0 and "cannot connect" in r.err and "gave up after" in r.err, r.err
    r = h("pull", "-q", "UPPER/case")
    assert r.code != 0 and "image reference" in r.err, r.err
    assert h.names() == {} and h.store_files("blobs") == []


def test_wrong_digest_from_the_registry_leaves_nothing(husk_env, tmp_path_factory, layouts):
    """A registry that serves a layer whose bytes do not match its digest."""
    h = husk_env
    reg = registries.start(str(tmp_path_factory.mktemp("registry-corrupt")))
    try:
        reg.push(layouts["layers"], "latest", "test/corrupt:latest")
        manifest = json.loads(registries.api_get(reg, "/v2/test/corrupt/manifests/latest"))
        blob = reg.blob_file(manifest["layers"][1]["digest"])
        data = bytearray(open(blob, "rb").read())
        data[50] ^= 0xFF
        open(blob, "wb").write(bytes(data))
        r = h("pull", "-q", f"{reg.host}/test/corrupt")
        assert r.code != 0 and "digest mismatch" in r.err, r.err
    finally:
        reg.stop()
    assert h.names() == {} and h.store_files("blobs") == [] and h.store_files("layers") == []


class CuttingProxy:
    """A TCP proxy in front of a registry that cuts the first N blob
    downloads short: an interrupted download, for real."""

    def __init__(self, upstream: str, cut_after: int, cuts: int) -> None:
        self.upstream = upstream.split(":")
        self.cut_after, self.cuts = cut_after, cuts
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.host = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.cut = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.pipe, args=(client,), daemon=True).start()

    def pipe(self, client):
        up = socket.create_connection((self.upstream[0], int(self.upstream[1])))
        request = client.recv(65536)
        up.sendall(request)
        is_blob = b"/blobs/sha256:" in request.split(b"\r\n", 1)[0]
        sent = 0
        cut = is_blob and self.cut < self.cuts
        if cut:
            self.cut += 1
        try:
            while True:
                data = up.recv(65536)
                if not data:
                    break
                if cut and sent + len(data) > self.cut_after:
                    client.sendall(data[:self.cut_after - sent])
                    break
                client.sendall(data)
                sent += len(data)
        except OSError:
            pass
        client.close()
        up.close()

    def close(self):
        self.sock.close()


def test_interrupted_download_is_resumed(husk_env, http_registry):
    h = husk_env
    proxy = CuttingProxy(http_registry.host, cut_after=30_000, cuts=2)
    try:
        r = h("pull", f"{proxy.host}/test/busybox")
        assert r.code == 0, r.err
        assert proxy.cut == 2
    finally:
        proxy.close()
    assert h("run", "--rm", "--pull=never", f"{proxy.host}/test/busybox", "true").code == 0


def test_interrupted_download_that_never_completes_leaves_nothing(husk_env, http_registry):
    h = husk_env
    proxy = CuttingProxy(http_registry.host, cut_after=30_000, cuts=1000)
    try:
        r = h("pull", "-q", f"{proxy.host}/test/busybox")
        assert r.code != 0 and "gave up after" in r.err, r.err
    finally:
        proxy.close()
    assert h.names() == {} and h.store_files("blobs") == [] and h.store_files("layers") == []


def test_disk_full_leaves_nothing(husk_env, http_registry, tmp_path):
    h = husk_env
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(small)], check=True)
    try:
        store = str(small / "store")
        r = h("pull", "-q", f"{http_registry.host}/test/layers", store=store)
        assert r.code != 0 and "No space left on device" in r.err, r.err
        left = []
        for sub in ("blobs", "layers", "tmp"):
            for dirpath, dirnames, filenames in os.walk(os.path.join(store, sub)):
                left += filenames + [d for d in dirnames if dirpath.endswith("tmp")]
        assert left == [] and not os.path.exists(os.path.join(store, "images.json"))
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_concurrent_pulls_of_the_same_image(husk_env, http_registry):
    h = husk_env
    ref = f"{http_registry.host}/test/layers"
    procs = [subprocess.Popen([h.husk_bin, "--storage-root", h.store, "pull", "-q", ref], env=h.env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(6)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    assert len({o[0] for o in outs}) == 1
    assert h("run", "--rm", "--pull=never", ref, "cat", "/etc/motd").out == "welcome to layer two\n"



class RateLimitingProxy(CuttingProxy):
    """Answers the first N manifest requests with 429 and Retry-After: 0,
    as Docker Hub does when a pull limit is hit, then passes through."""

    def __init__(self, upstream: str, limited: int) -> None:
        super().__init__(upstream, cut_after=0, cuts=0)
        self.limited = limited
        self.refused = 0

    def pipe(self, client):
        request = client.recv(65536)
        if b"/manifests/" in request.split(b"\r\n", 1)[0] and self.refused < self.limited:
            self.refused += 1
            body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}'
            client.sendall(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 0\r\nContent-Type: application/json\r\n"
                           b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
            client.close()
            return
        up = socket.create_connection((self.upstream[0], int(self.upstream[1])))
        up.sendall(request)
        try:
            while data := up.recv(65536):
                client.sendall(data)
        except OSError:
            pass
        client.close()
        up.close()


def test_rate_limit_is_retried_then_reported(husk_env, http_registry):
    h = husk_env
    proxy = RateLimitingProxy(http_registry.host, limited=2)
    try:
        h("pull", "-q", f"{proxy.host}/test/busybox", check=True)
        assert proxy.refused == 2
    finally:
        proxy.close()
    h("rmi", f"{proxy.host}/test/busybox", check=True)
    proxy = RateLimitingProxy(http_registry.host, limited=1000)
    try:
        r = h("pull", "-q", f"{proxy.host}/test/busybox")
        assert r.code != 0 and "rate limited" in r.err and "TOOMANYREQUESTS" in r.err, r.err
    finally:
        proxy.close()
    assert h.names() == {}
