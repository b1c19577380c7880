"""Real registries for the image tests: Debian's docker-registry (the CNCF
distribution server) on 127.0.0.1, in three set-ups - plain HTTP, HTTPS
with a CA made here plus htpasswd basic auth, and bearer tokens from a
small token server in this process - and skopeo to push to them."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

USER, PASSWORD = "husk", "s3cret-pass"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    storage: str
    proc: subprocess.Popen
    scheme: str = "http"
    ca: str | None = None
    cert_dir: str | None = None
    creds: tuple[str, str] | None = None
    extra: dict = field(default_factory=dict)

    def push(self, layout: str, tag: str, name: str, all_platforms: bool = False, fmt: str | None = None) -> None:
        """skopeo copy oci:LAYOUT:TAG docker://HOST/NAME"""
        cmd = ["skopeo", "copy", "-q", "--retry-times", "2"]
        if all_platforms:
            cmd.append("--all")
        if fmt:
            cmd += ["--format", fmt]
        if self.scheme == "http":
            cmd.append("--dest-tls-verify=false")
        else:
            cmd += ["--dest-cert-dir", self.cert_dir]
        if self.creds:
            cmd += ["--dest-creds", f"{self.creds[0]}:{self.creds[1]}"]
        cmd += [f"oci:{layout}:{tag}", f"docker://{self.host}/{name}"]
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)

    def blob_file(self, digest: str) -> str:
        hexd = digest.split(":", 1)[1]
        return os.path.join(self.storage, "docker/registry/v2/blobs/sha256", hexd[:2], hexd, "data")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def registry_config(storage: str, port: int, extra: str = "") -> str:
    return f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
{extra}"""


def start(workdir: str, kind: str = "http", token_realm: str | None = None) -> Registry:
    os.makedirs(workdir, exist_ok=True)
    storage = os.path.join(workdir, "storage")
    port = free_port()
    extra = ""
    reg_kw: dict = {}
    if kind == "tls":
        ca, cert, key = make_ca_and_cert(workdir)
        htpasswd = os.path.join(workdir, "htpasswd")
        with open(htpasswd, "w") as f:
            f.write(subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True, capture_output=True,
                                   text=True).stdout)
        extra = f"""  tls:
    certificate: {cert}
    key: {key}
auth:
  htpasswd:
    realm: husk-test
    path: {htpasswd}
"""
        cert_dir = os.path.join(workdir, "certs.d")
        os.makedirs(cert_dir, exist_ok=True)
        with open(ca) as src, open(os.path.join(cert_dir, "ca.crt"), "w") as dst:
            dst.write(src.read())
        reg_kw = dict(scheme="https", ca=ca, cert_dir=cert_dir, creds=(USER, PASSWORD))
    elif kind == "token":
        ca, cert, key = make_ca_and_cert(workdir)
        extra = f"""auth:
  token:
    realm: {token_realm}
    service: husk-registry
    issuer: husk-test-issuer
    rootcertbundle: {ca}
"""
        reg_kw = dict(creds=(USER, PASSWORD), extra={"ca_key": os.path.join(workdir, "ca.key"), "ca": ca})
    path = os.path.join(workdir, "config.yml")
    with open(path, "w") as f:
        f.write(registry_config(storage, port, extra))
    log = open(os.path.join(workdir, "registry.log"), "w")
    proc = subprocess.Popen(["docker-registry", "serve", path], stdout=log, stderr=log)
    reg = Registry(f"127.0.0.1:{port}", storage, proc, **reg_kw)
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return reg
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"docker-registry did not start: {open(log.name).read()}")
        time.sleep(0.05)


def make_ca_and_cert(workdir: str) -> tuple[str, str, str]:
    """A CA, and a server certificate for 127.0.0.1 signed by it (openssl)."""
    ca, ca_key = os.path.join(workdir, "ca.crt"), os.path.join(workdir, "ca.key")
    cert, key = os.path.join(workdir, "server.crt"), os.path.join(workdir, "server.key")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=husk test CA",
        "-keyout", ca_key, "-out", ca)
    csr = os.path.join(workdir, "server.csr")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", csr)
    ext = os.path.join(workdir, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
        "-extfile", ext, "-out", cert)
    return ca, cert, key


# The bearer-token flow: a token server that signs JWTs (RS256, with the
# CA's key, the CA certificate in the x5c header) the way Docker Hub's
# auth.docker.io does, for the registry to verify against its rootcertbundle.

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    def __init__(self, workdir: str, public_repos: tuple[str, ...] = ("public/",)) -> None:
        self.workdir = workdir
        self.public = public_repos
        self.requests: list[dict] = []
        self.port = free_port()
        self.ca = self.ca_key = None
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.handle(self)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def handle(self, h) -> None:
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(h.path).query)
        auth = h.headers.get("Authorization", "")
        user = None
        if auth.startswith("Basic "):
            u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
            if (u, p) != (USER, PASSWORD):
                h.send_response(401)
                h.end_headers()
                return
            user = u
        access = []
        for scope in q.get("scope", []):
            kind, name, actions = scope.split(":")
            if user or name.startswith(self.public):
                access.append({"type": kind, "name": name,
                               "actions": actions.split(",") if user else ["pull"]})
        self.requests.append({"user": user, "scope": q.get("scope", []), "service": q.get("service")})
        token = self.sign({"iss": "husk-test-issuer", "sub": user or "", "aud": q.get("service", [""])[0],
                           "exp": int(time.time()) + 300, "nbf": int(time.time()) - 10, "iat": int(time.time()),
                           "jti": os.urandom(8).hex(), "access": access})
        body = json.dumps({"token": token}).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def sign(self, claims: dict) -> str:
        with open(self.ca) as f:
            der_b64 = "".join(line for line in f.read().splitlines() if "-----" not in line)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [der_b64]}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.ca_key], input=signing_input.encode(),
                             check=True, capture_output=True).stdout
        return f"{signing_input}.{_b64(sig)}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def api_get(reg: Registry, path: str) -> bytes:
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
    req = urllib.request.Request(f"http://{reg.host}{path}", headers={"Accept": accept})
    return urllib.request.urlopen(req, timeout=10).read()


class HostileRegistry:
    """A registry that misbehaves in one chosen way, for the limits a
    client must keep: husk reads a stranger's answers as root.

        big-manifest    a 5 MiB manifest
        retry-forever   429 with Retry-After: 86400, every time
        big-token       a bearer challenge whose token answer is 2 MiB
        big-error       404 with a 64 MiB body
        redirect:URL    every manifest request redirected to URL
        basic           /v2/ wants basic auth (so husk login stores credentials)
    Every request's headers are kept in .seen."""

    def __init__(self, behaviour: str, tls: tuple[str, str] | None = None) -> None:
        import http.server
        import ssl
        import threading

        self.behaviour = behaviour
        self.seen: list[tuple[str, dict]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                outer.seen.append((self.path, dict(self.headers)))
                outer.answer(self)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, h) -> None:
        b = self.behaviour
        if b == "basic" and "Authorization" not in h.headers:
            return self.send(h, 401, b"{}", {"WWW-Authenticate": 'Basic realm="hostile"'})
        if h.path == "/v2/":
            return self.send(h, 200, b"{}")
        if h.path.startswith("/token"):
            return self.send(h, 200, b'{"token": "' + b"t" * (2 << 20) + b'"}')
        if b == "big-manifest":
            return self.send(h, 200, b"{" + b" " * (5 << 20) + b"}",
                             {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        if b == "retry-forever":
            return self.send(h, 429, b"{}", {"Retry-After": "86400"})
        if b == "big-token":
            if "Authorization" not in h.headers:
                return self.send(h, 401, b"{}", {"WWW-Authenticate":
                                                 f'Bearer realm="http://{self.host}/token",service="hostile"'})
            return self.send(h, 404, b"{}")
        if b == "big-error":
            h.send_response(404)
            h.send_header("Content-Length", str(64 << 20))
            h.end_headers()
            chunk = b"x" * (1 << 20)
            try:
                for _ in range(64):
                    h.wfile.write(chunk)
            except OSError:
                pass  # the client stopped reading: what it should do
            return None
        if b.startswith("redirect:") or b == "basic":
            target = b.split(":", 1)[1] if b.startswith("redirect:") else self.redirect_to
            return self.send(h, 307, b"", {"Location": target + h.path})
        return self.send(h, 404, b"{}")

    redirect_to = ""

    @staticmethod
    def send(h, status: int, body: bytes, headers: dict | None = None) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        try:
            h.wfile.write(body)
        except OSError:
            pass

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
