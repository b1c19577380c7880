"""Registry credentials, kept the way Docker keeps them.

husk writes `{"auths": {"HOST": {"auth": base64("user:password")}}}` to
its auth file (--authfile, $REGISTRY_AUTH_FILE, or ~/.config/husk/auth.json)
with mode 0600, and reads that file first and then Docker's
~/.docker/config.json, so `docker login` credentials work too.
"""

from __future__ import annotations

import base64
import json
import os

from runtime.core.errors import ImageError

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


def default_path() -> str:
    return os.environ.get("REGISTRY_AUTH_FILE") or os.path.expanduser("~/.config/husk/auth.json")


def _read(path: str) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise ImageError("auth file", f"{path}: {e}") from None
    return data if isinstance(data, dict) else {}


def _keys(host: str) -> tuple[str, ...]:
    return DOCKER_HUB_KEYS if host in ("docker.io", "registry-1.docker.io") else (host, f"https://{host}")


def lookup(host: str, authfile: str | None = None) -> tuple[str, str] | None:
    """(user, password) for HOST, or None."""
    for path in (authfile or default_path(), os.path.expanduser("~/.docker/config.json")):
        auths = _read(path).get("auths") or {}
        for key in _keys(host):
            entry = auths.get(key)
            if isinstance(entry, dict) and entry.get("auth"):
                try:
                    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    raise ImageError("auth file", f"{path}: auths.{key}.auth is not base64 user:password") from None
                return user, password
    return None


def store(host: str, user: str, password: str, authfile: str | None = None) -> str:
    path = authfile or default_path()
    data = _read(path)
    data.setdefault("auths", {})[_keys(host)[0] if host != "docker.io" else "docker.io"] = {
        "auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    _write(path, data)
    return path


def remove(host: str, authfile: str | None = None) -> bool:
    path = authfile or default_path()
    data = _read(path)
    auths = data.get("auths") or {}
    found = [k for k in _keys(host) if k in auths]
    for k in found:
        del auths[k]
    if found:
        _write(path, data)
    return bool(found)


def _write(path: str, data: dict) -> None:
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.rename(tmp, path)
