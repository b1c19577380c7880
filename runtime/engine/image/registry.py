"""A client for the OCI distribution API (docker registry v2).

Scheme: HTTPS, verified with the system CAs plus a per-registry CA
directory (/etc/containers/certs.d/HOST/*.crt, /etc/docker/certs.d/HOST/,
or --cert-dir).  Plain HTTP only for localhost and 127.0.0.0/8 (when the
registry does not speak TLS) or with --tls-verify=false, as docker does
for "insecure registries".

Auth: on 401 the WWW-Authenticate challenge says what to do.  "Bearer
realm=...,service=...,scope=..." is the token flow Docker Hub uses: ask
the realm for a token (with credentials if husk has some), then retry
with it.  "Basic" means send the credentials directly.
"""

from __future__ import annotations

import base64
import glob
import http.client
import ipaddress
import json
import os
import re
import socket
import ssl
import threading
import urllib.parse

from runtime.core.errors import ImageError
from runtime.engine.image import auth
from runtime.engine.image import mediatypes as mt
from runtime.engine.image.reference import Reference
from runtime.engine.image.source import TransientError

CERT_DIRS = ("/etc/containers/certs.d", "/etc/docker/certs.d")
TIMEOUT = 30
USER_AGENT = "husk/0.1"


class RegistryError(ImageError):
    pass


# containers/image's iolimits: what husk reads of a registry's answers.
MAX_MANIFEST = 4 << 20
MAX_TOKEN = 1 << 20
MAX_ERROR_BODY = 1 << 20
# Seconds: a Retry-After of a day must not hang a pull (HUSK_MAX_RETRY_AFTER changes it).
MAX_RETRY_AFTER = float(os.environ.get("HUSK_MAX_RETRY_AFTER", "60"))


def _read_limited(resp, limit: int, what: str, host: str) -> bytes:
    """A response body of at most LIMIT bytes (a registry is a stranger)."""
    length = resp.getheader("Content-Length")
    if length and length.isdigit() and int(length) > limit:
        raise RegistryError(host, f"{what}: {length} bytes, more than the limit of {limit}")
    data = resp.read(limit + 1)
    if len(data) > limit:
        raise RegistryError(host, f"{what}: more than the limit of {limit} bytes")
    return data


def discard(resp) -> None:
    """Read a little of a body we do not want, so the connection is clean."""
    resp.read(MAX_ERROR_BODY)


def _is_local(host: str) -> bool:
    name = host.rsplit(":", 1)[0].strip("[]") if not host.startswith("[") else host[1:host.index("]")]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


class Registry:
    """One registry host; safe to share between download threads."""

    def __init__(self, host: str, *, tls_verify: bool = True, cert_dir: str | None = None,
                 authfile: str | None = None, credentials: tuple[str, str] | None = None) -> None:
        self.host = "registry-1.docker.io" if host == "docker.io" else host
        self.auth_host = host
        self.tls_verify = tls_verify
        self.cert_dir = cert_dir
        self.credentials = credentials if credentials is not None else auth.lookup(host, authfile)
        self.scheme: str | None = None
        self.tokens: dict[str, str] = {}
        self.basic = False
        self.lock = threading.Lock()
        self.local = threading.local()

    # TLS and scheme

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if not self.tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        dirs = [self.cert_dir] if self.cert_dir else [os.path.join(d, self.host) for d in CERT_DIRS]
        for d in dirs:
            for ca in sorted(glob.glob(os.path.join(d, "*.crt"))):
                try:
                    ctx.load_verify_locations(ca)
                except (OSError, ssl.SSLError) as e:
                    raise RegistryError(self.host, f"CA file {ca}: {e}") from None
            cert, key = os.path.join(d, "client.cert"), os.path.join(d, "client.key")
            if os.path.exists(cert) and os.path.exists(key):
                ctx.load_cert_chain(cert, key)
        return ctx

    def _connection(self, scheme: str, host: str) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(host, timeout=TIMEOUT, context=self._context())
        return http.client.HTTPConnection(host, timeout=TIMEOUT)

    def _pick_scheme(self) -> str:
        if self.scheme:
            return self.scheme
        insecure_ok = _is_local(self.host) or not self.tls_verify
        conn = self._connection("https", self.host)
        try:
            conn.request("GET", "/v2/", headers={"User-Agent": USER_AGENT})
            discard(conn.getresponse())
            self.scheme = "https"
        except ssl.SSLCertVerificationError as e:
            raise RegistryError(self.host, f"TLS: certificate verify failed: {e.verify_message}; put the "
                                f"registry's CA in {CERT_DIRS[0]}/{self.host}/ca.crt or pass --cert-dir") from None
        except ssl.SSLError as e:
            if not insecure_ok or "WRONG_VERSION_NUMBER" not in str(e) and "record layer" not in str(e):
                raise RegistryError(self.host, f"TLS: {e.reason or e}") from None
            self.scheme = "http"  # the registry speaks plain HTTP
        except (ConnectionResetError, http.client.BadStatusLine, http.client.RemoteDisconnected):
            if not insecure_ok:
                raise RegistryError(self.host, "TLS handshake failed") from None
            self.scheme = "http"
        except socket.gaierror as e:
            raise RegistryError(self.host, f"cannot resolve the registry's name: {e.strerror}") from None
        except OSError as e:
            raise TransientError(f"{self.host}: cannot connect: {e.strerror or e}") from None
        finally:
            conn.close()
        return self.scheme

    # Requests

    def _auth_header(self, scope: str) -> dict[str, str]:
        if scope in self.tokens:
            return {"Authorization": f"Bearer {self.tokens[scope]}"}
        if self.basic and self.credentials:
            raw = base64.b64encode(f"{self.credentials[0]}:{self.credentials[1]}".encode()).decode()
            return {"Authorization": f"Basic {raw}"}
        return {}

    def _authenticate(self, challenge: str, scope: str) -> None:
        scheme, params = _parse_challenge(challenge)
        if scheme == "basic":
            if not self.credentials:
                raise RegistryError(self.host, f"authentication required: run husk login {self.auth_host}")
            if self.basic:
                raise RegistryError(self.host, "unauthorized: the registry refused the stored credentials")
            self.basic = True
            return
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(self.host, f"unsupported authentication challenge {challenge!r}")
        query = {"service": params.get("service", "")}
        if scope or params.get("scope"):
            query["scope"] = scope or params["scope"]
        url = urllib.parse.urlsplit(params["realm"])
        if url.scheme not in ("http", "https"):
            raise RegistryError(self.host, f"token realm {params['realm']!r} is not an http(s) URL")
        if url.scheme == "http" and not _is_local(url.netloc) and self.tls_verify:
            raise RegistryError(self.host, f"refusing to send credentials to plain-HTTP realm {params['realm']}")
        headers = {"User-Agent": USER_AGENT}
        if self.credentials:
            raw = base64.b64encode(f"{self.credentials[0]}:{self.credentials[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {raw}"
        path = url.path + "?" + urllib.parse.urlencode(query) + ("&" + url.query if url.query else "")
        conn = self._connection(url.scheme, url.netloc)
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            body = _read_limited(resp, MAX_TOKEN, "token server's answer", self.host)
        except (OSError, http.client.HTTPException) as e:
            raise TransientError(f"token server {url.netloc}: {e}") from None
        finally:
            conn.close()
        if resp.status in (401, 403):
            raise RegistryError(self.host, "the token server refused the credentials"
                                + ("" if self.credentials else f": run husk login {self.auth_host}"))
        if resp.status != 200:
            raise RegistryError(self.host, f"token server answered {resp.status}")
        try:
            token = json.loads(body).get("token") or json.loads(body).get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            raise RegistryError(self.host, "the token server's answer holds no token")
        self.tokens[scope] = token

    def request(self, method: str, path: str, scope: str, headers: dict[str, str] | None = None,
                what: str = "", body=None) -> http.client.HTTPResponse:
        """Send a request, doing the auth dance and following redirects.
        The caller reads (and closes) the response.  BODY: bytes, or a
        function that opens it afresh for each try (a file, after a 401)."""
        scheme = self._pick_scheme()
        host, url_path = self.host, path
        headers = dict(headers or {}, **{"User-Agent": USER_AGENT})
        auth_tries = 0
        redirects = 0
        while True:
            send = dict(headers)
            if host == self.host:
                send.update(self._auth_header(scope))
            conn = self._connection(scheme, host)
            data = body() if callable(body) else body
            try:
                conn.request(method, url_path, body=data, headers=send)
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                raise TransientError(f"{host}: {what or path}: {e}") from None
            finally:
                if hasattr(data, "close"):
                    data.close()
            if resp.status == 401 and host == self.host and auth_tries < 2:
                challenge = resp.getheader("WWW-Authenticate", "")
                discard(resp)
                conn.close()
                auth_tries += 1
                with self.lock:
                    self._authenticate(challenge, scope)
                continue
            if resp.status in (301, 302, 303, 307, 308) and redirects < 5:
                location = resp.getheader("Location", "")
                discard(resp)
                conn.close()
                url = urllib.parse.urlsplit(urllib.parse.urljoin(f"{scheme}://{host}{url_path}", location))
                # Never from TLS to plain HTTP (the blob would travel
                # unprotected); credentials go to self.host only (above).
                if url.scheme not in ("http", "https") or scheme == "https" and url.scheme == "http":
                    raise RegistryError(self.host, f"{what or path}: refusing a redirect from {scheme}:// to "
                                        f"{location!r}")
                scheme, host = url.scheme, url.netloc
                url_path = url.path + (f"?{url.query}" if url.query else "")
                redirects += 1
                continue
            return resp

    def get(self, path: str, scope: str, headers: dict[str, str] | None = None, what: str = "",
            ok: tuple[int, ...] = (200,)) -> http.client.HTTPResponse:
        return self.send("GET", path, scope, headers, what, ok=ok)

    def send(self, method: str, path: str, scope: str, headers: dict[str, str] | None = None, what: str = "",
             body=None, ok: tuple[int, ...] = (200,)) -> http.client.HTTPResponse:
        """request(), and an error (transient for 5xx and 429) unless the
        status is one of OK; the caller reads the response."""
        resp = self.request(method, path, scope, headers, what, body)
        if resp.status in ok:
            return resp
        try:
            body = resp.read(MAX_ERROR_BODY)
        except (OSError, http.client.HTTPException):
            body = b""
        resp.close()
        raise _status_error(self.host, resp, body, what or path)

    def ping(self) -> None:
        """GET /v2/ with authentication: what `husk login` checks."""
        resp = self.get("/v2/", "", what="login")
        discard(resp)


def _status_error(host: str, resp, body: bytes, what: str) -> Exception:
    detail = ""
    try:
        errors = json.loads(body).get("errors") or []
        detail = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}" for e in errors if isinstance(e, dict))
    except (ValueError, AttributeError):
        pass
    status = resp.status
    if status == 429 or status >= 500:
        retry = resp.getheader("Retry-After")
        reason = "rate limited (429 too many requests)" if status == 429 else f"server error {status}"
        return TransientError(f"{host}: {what}: {reason}" + (f": {detail}" if detail else ""),
                              min(float(retry), MAX_RETRY_AFTER) if retry and retry.isdigit() else None)
    names = {401: "unauthorized", 403: "denied", 404: "not found"}
    return RegistryError(host, f"{what}: {status} {names.get(status, resp.reason)}" + (f": {detail}" if detail else ""))


class RegistrySource:
    resumable = True

    def __init__(self, ref: Reference, registry: Registry) -> None:
        self.ref = ref
        self.registry = registry
        self.scope = f"repository:{ref.path}:pull"
        self.description = str(ref)

    def manifest(self, reference: str) -> tuple[bytes, str]:
        resp = self.registry.get(f"/v2/{self.ref.path}/manifests/{reference}", self.scope,
                                 {"Accept": mt.ACCEPT + ", " + ", ".join(mt.DOCKER_SCHEMA1)},
                                 what=f"manifest {self.ref.path}:{reference}" if ":" not in reference
                                 else f"manifest {self.ref.path}@{reference}")
        try:
            data = _read_limited(resp, MAX_MANIFEST, f"manifest {reference}", self.registry.host)
        except (OSError, http.client.HTTPException) as e:
            raise TransientError(f"{self.registry.host}: manifest: {e}") from None
        finally:
            resp.close()
        media_type = (resp.getheader("Content-Type") or "").split(";")[0].strip()
        return data, media_type

    def blob(self, descriptor: dict, offset: int = 0):
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        resp = self.registry.get(f"/v2/{self.ref.path}/blobs/{descriptor['digest']}", self.scope, headers,
                                 what=f"blob {descriptor['digest'][:19]}", ok=(200, 206))
        if offset and resp.status != 206:
            resp.close()
            raise TransientError("the registry ignored the Range request", retry_after=0)
        return _Body(resp)


class _Body:
    """A response body whose read errors are transient (worth a resume)."""

    def __init__(self, resp) -> None:
        self.resp = resp

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.resp.read(n)
        except (TimeoutError, OSError, http.client.HTTPException) as e:
            raise TransientError(f"download interrupted: {e!r}") from None
        # http.client returns b"" when the server hangs up early on a
        # sized read; the bytes still owed (resp.length) tell.
        if not data and n and self.resp.length:
            raise TransientError(f"download interrupted: {self.resp.length} bytes missing")
        return data

    def close(self) -> None:
        self.resp.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
