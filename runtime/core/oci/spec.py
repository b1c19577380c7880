"""Read and check a bundle's config.json.

Each check names the field it rejects (`process.args: must be a
non-empty list of strings`); fields husk does not know are accepted, as
the runtime-spec requires.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from runtime.core.errors import ConfigError

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


def load_config(bundle: str) -> dict[str, Any]:
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError("config.json", f"not found in bundle {bundle}") from None
    except OSError as e:
        raise ConfigError("config.json", f"cannot read {path}: {e.strerror}") from None
    try:
        config = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError("config.json", f"invalid JSON: {e}") from None
    if not isinstance(config, dict):
        raise ConfigError("config.json", "must be a JSON object")
    check_oci_version(config)
    return config


def check_oci_version(config: dict[str, Any]) -> None:
    version = config.get("ociVersion")
    if not isinstance(version, str):
        raise ConfigError("ociVersion", "missing or not a string")
    match = _SEMVER.match(version)
    if not match:
        raise ConfigError("ociVersion", f"{version!r} is not a semantic version")
    if match.group(1) != "1":
        raise ConfigError("ociVersion", f"{version!r}: husk supports runtime-spec 1.x")


def check_annotations(config: dict[str, Any]) -> dict[str, str]:
    """annotations: a map of strings to strings (the runtime-spec's)."""
    annotations = get_obj(config, "annotations", "annotations")
    for key, value in annotations.items():
        if not isinstance(value, str):
            raise ConfigError(f"annotations[{key!r}]", "must be a string")
    return annotations


# Typed accessors: each names the field path in its error.

def get_obj(parent: dict, key: str, where: str, required: bool = False) -> dict:
    value = parent.get(key)
    if value is None:
        if required:
            raise ConfigError(where, "missing")
        return {}
    if not isinstance(value, dict):
        raise ConfigError(where, "must be an object")
    return value


def get_list(parent: dict, key: str, where: str) -> list:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(where, "must be a list")
    return value


def get_str(parent: dict, key: str, where: str, required: bool = False, default: str | None = None):
    value = parent.get(key)
    if value is None:
        if required:
            raise ConfigError(where, "missing")
        return default
    if not isinstance(value, str):
        raise ConfigError(where, "must be a string")
    return value


def get_int(parent: dict, key: str, where: str, required: bool = False, default: int | None = None,
            minimum: int | None = None, maximum: int | None = None):
    value = parent.get(key)
    if value is None:
        if required:
            raise ConfigError(where, "missing")
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(where, "must be an integer")
    if minimum is not None and value < minimum:
        raise ConfigError(where, f"{value} is below {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(where, f"{value} is above {maximum}")
    return value


def get_bool(parent: dict, key: str, where: str) -> bool:
    value = parent.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(where, "must be true or false")
    return value


def get_objects(parent: dict, key: str, where: str):
    """Each entry of a list of objects, with its field path: ("mounts[2]", {...})."""
    for i, entry in enumerate(get_list(parent, key, where)):
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}[{i}]", "must be an object")
        yield f"{where}[{i}]", entry


def get_str_list(parent: dict, key: str, where: str) -> list[str]:
    values = get_list(parent, key, where)
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise ConfigError(f"{where}[{i}]", "must be a string")
    return values


def absolute_path(value: str, where: str) -> str:
    """An absolute, normalised path; '..' may not climb above '/'."""
    if not value.startswith("/"):
        raise ConfigError(where, f"{value!r} must be an absolute path")
    if "\0" in value:
        raise ConfigError(where, "contains a NUL byte")
    return os.path.normpath(value).replace("//", "/")
