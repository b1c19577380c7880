"""Every descriptor, index -> manifest -> config -> layer, is checked for
its digest and its size, and only image manifest types husk knows are
taken.  Each refusal names the field and leaves an empty store."""

from __future__ import annotations

import json
import os

import pytest
from tarbuild import Layout, entry, layer

pytestmark = pytest.mark.root


def layout_with(tmp_path, edit) -> str:
    lay = Layout(str(tmp_path / "lay"))
    mdesc, _ = lay.image([layer([entry("a", data=b"x")])])
    blobs = os.path.join(lay.path, "blobs", "sha256")
    with open(os.path.join(blobs, mdesc["digest"][7:])) as f:
        manifest = json.load(f)
    edit(manifest, mdesc)
    data = json.dumps(manifest).encode()
    mdesc.update(lay.put(data)) if "keep_size" not in mdesc else mdesc.update(digest=lay.put(data)["digest"])
    mdesc.pop("keep_size", None)
    lay.tag(mdesc, "latest")
    return lay.save()


def load(h, path):
    return h("load", "-q", "--name", "bad", "-i", path)


def refused(h, r, *words):
    assert r.code != 0 and "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1, r.err
    for w in words:
        assert w in r.err, r.err
    assert h.store_files("blobs") == [] and h.store_files("layers") == [] and h.names() == {}


@pytest.mark.parametrize("where", ["config", "layer"])
def test_a_descriptor_without_a_size_is_refused(husk_env, tmp_path, where):
    def edit(m, _):
        del (m["config"] if where == "config" else m["layers"][0])["size"]
    refused(husk_env, load(husk_env, layout_with(tmp_path, edit)), "size")


def test_a_layer_size_that_lies_is_refused(husk_env, tmp_path):
    def edit(m, _):
        m["layers"][0]["size"] -= 1
    refused(husk_env, load(husk_env, layout_with(tmp_path, edit)), "bytes")


def test_the_index_size_is_checked(husk_env, tmp_path):
    def edit(m, mdesc):
        mdesc["keep_size"] = True  # the index keeps the old size for a longer manifest
        m["annotations"] = {"padding": "x" * 100}
    refused(husk_env, load(husk_env, layout_with(tmp_path, edit)), "size")


def test_the_index_must_give_a_size(husk_env, tmp_path):
    path = layout_with(tmp_path, lambda m, d: None)
    with open(os.path.join(path, "index.json")) as f:
        index = json.load(f)
    del index["manifests"][0]["size"]
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump(index, f)
    refused(husk_env, load(husk_env, path), "manifests[0].size")


@pytest.mark.parametrize("media", ["application/vnd.example.future.manifest+json", "text/html"])
def test_an_unknown_manifest_media_type_is_refused(husk_env, tmp_path, media):
    def edit(m, mdesc):
        m["mediaType"] = media
        mdesc["mediaType"] = media
    refused(husk_env, load(husk_env, layout_with(tmp_path, edit)), "unsupported manifest media type", media)

