"""Local image commands: load (OCI layout, oci-archive, docker-archive),
save, images, image inspect, rmi, image prune - and what each leaves in
the store."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

pytestmark = pytest.mark.root


def test_load_builtin_image_and_list(husk_env):
    h = husk_env
    r = h("load", "--name", "busybox", "-i", os.path.join(os.path.dirname(__file__), "..", "..", "rootfs", "build", "oci"),
          check=True)
    assert "Loaded image: docker.io/library/busybox:latest" in r.err
    rows = json.loads(h("images", "--format", "json", check=True).out)
    assert [(x["name"], x["tag"]) for x in rows] == [("busybox", "latest")]
    assert rows[0]["id"].startswith("sha256:") and rows[0]["size"] > 1_000_000
    table = h("images", check=True).out
    assert "busybox" in table and rows[0]["id"][7:19] in table


def test_inspect_shows_config_and_layers(husk_env, layouts):
    h = husk_env
    h("load", "-q", "--name", "example/layers", "-i", layouts["layers"], check=True)
    info = json.loads(h("image", "inspect", "example/layers", check=True).out)[0]
    assert info["RepoTags"] == ["docker.io/example/layers:latest"]
    assert len(info["Layers"]) == 2 and len(info["RootFS"]["diff_ids"]) == 2
    assert info["Config"]["Cmd"] == ["sh"] and info["Os"] == "linux"
    # inspect by ID prefix too
    assert json.loads(h("image", "inspect", info["Id"][7:19], check=True).out)[0]["Id"] == info["Id"]


def test_layers_are_shared_between_images(husk_env, layouts):
    h = husk_env
    h.load_busybox()
    h("load", "-q", "--name", "example/layers", "-i", layouts["layers"], check=True)
    # busybox's layer is the first layer of `layers`: unpacked once.
    layers = [n for n in os.listdir(os.path.join(h.store, "layers", "sha256")) if not n.endswith(".json")]
    assert len(layers) == 2
    h("rmi", "busybox", check=True)
    layers = [n for n in os.listdir(os.path.join(h.store, "layers", "sha256")) if not n.endswith(".json")]
    assert len(layers) == 2, "the shared layer must stay while example/layers uses it"
    h("rmi", "example/layers", check=True)
    assert os.listdir(os.path.join(h.store, "layers", "sha256")) == []
    assert os.listdir(os.path.join(h.store, "blobs", "sha256")) == []
    assert h.names() == {}


def test_save_and_load_round_trip(husk_env, tmp_path):
    h = husk_env
    h.load_busybox()
    before = json.loads(h("image", "inspect", "busybox", check=True).out)[0]
    archive = str(tmp_path / "bb.tar")
    h("save", "-o", archive, "busybox", check=True)
    h("rmi", "busybox", check=True)
    assert h.names() == {}
    r = h("load", "-i", archive, check=True)
    assert "docker.io/library/busybox:latest" in r.err
    after = json.loads(h("image", "inspect", "busybox", check=True).out)[0]
    assert after["Id"] == before["Id"] and after["Digest"] == before["Digest"]


@pytest.mark.parametrize("transport", ["oci-archive", "docker-archive"])
def test_load_archives_made_by_skopeo(husk_env, layouts, tmp_path, transport):
    h = husk_env
    archive = str(tmp_path / f"{transport}.tar")
    subprocess.run(["skopeo", "copy", "-q", f"oci:{layouts['layers']}:latest",
                    f"{transport}:{archive}:example/from-skopeo:v1"], check=True, capture_output=True)
    h("load", "-i", archive, check=True)
    assert "docker.io/example/from-skopeo:v1" in h.names()
    r = h("run", "--rm", "--pull=never", "example/from-skopeo:v1", "cat", "/etc/motd")
    assert (r.code, r.out) == (0, "welcome to layer two\n"), r.err


def test_prune_removes_unreferenced_content_only(husk_env):
    h = husk_env
    h.load_busybox()
    # a stray blob and a stray layer, as a crash could leave them
    stray = os.path.join(h.store, "blobs", "sha256", "ab" * 32)
    with open(stray, "w") as f:
        f.write("stray")
    os.makedirs(os.path.join(h.store, "layers", "sha256", "cd" * 32))
    os.makedirs(os.path.join(h.store, "tmp", "layer-crashed"))
    r = h("image", "prune", check=True)
    assert "Removed 1 blobs and 1 layers" in r.out
    assert not os.path.exists(stray) and os.listdir(os.path.join(h.store, "tmp")) == []
    assert h("run", "--rm", "--pull=never", "busybox", "true").code == 0


def test_rmi_refuses_while_a_container_uses_the_image(husk_env):
    h = husk_env
    h.load_busybox()
    assert h("run", "--name", "keeper", "--pull=never", "busybox", "true").code == 0
    r = h("rmi", "busybox")
    assert r.code != 0 and "keeper" in r.err and "husk rm" in r.err
    assert "docker.io/library/busybox:latest" in h.names()
    h("rm", "keeper", check=True)
    h("rmi", "busybox", check=True)
    assert os.listdir(os.path.join(h.store, "containers")) == []


def test_load_bad_inputs_leave_nothing(husk_env, layouts, tmp_path):
    from tarbuild import Layout, entry, layer

    h = husk_env
    # a blob whose content does not match its digest
    bad = str(tmp_path / "bad")
    subprocess.run(["cp", "-a", layouts["layers"], bad], check=True)
    manifest = json.load(open(os.path.join(bad, "index.json")))["manifests"][0]["digest"]
    layer_digest = json.load(open(os.path.join(bad, "blobs", "sha256", manifest[7:])))["layers"][1]["digest"]
    with open(os.path.join(bad, "blobs", "sha256", layer_digest[7:]), "r+b") as f:
        f.seek(100)
        f.write(b"tampered")
    r = h("load", "-i", bad)
    assert r.code != 0 and "digest mismatch" in r.err and layer_digest[:19] in r.err, r.err
    # a layer whose content does not match the config's diff_ids
    lay = Layout(str(tmp_path / "diffid"))
    mdesc, _ = lay.image([layer([entry("a", data=b"a")])], diff_ids=["sha256:" + "0" * 64])
    lay.tag(mdesc, "latest")
    r = h("load", "-i", lay.save())
    assert r.code != 0 and "diffID mismatch" in r.err, r.err
    # an unknown layer media type
    lay = Layout(str(tmp_path / "media"))
    mdesc, _ = lay.image([layer([entry("a", data=b"a")])], layer_media_type="application/vnd.example.mystery")
    lay.tag(mdesc, "latest")
    r = h("load", "-i", lay.save())
    assert r.code != 0 and "unknown layer media type 'application/vnd.example.mystery'" in r.err, r.err
    # a foreign layer (Windows base layers were these): refused by name
    lay = Layout(str(tmp_path / "foreign"))
    mdesc, _ = lay.image([layer([entry("a", data=b"a")])],
                         layer_media_type="application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")
    lay.tag(mdesc, "latest")
    r = h("load", "-i", lay.save())
    assert r.code != 0 and "foreign layer" in r.err, r.err
    # a hostile layer: named image, layer and entry
    lay = Layout(str(tmp_path / "hostile"))
    mdesc, _ = lay.image([layer([entry("../escape", data=b"x")])])
    lay.tag(mdesc, "latest")
    r = h("load", "-i", lay.save())
    assert r.code != 0 and "entry '../escape'" in r.err and "layer 0" in r.err, r.err
    # not an image at all
    r = h("load", "-i", "/etc/hostname")
    assert r.code != 0 and "/etc/hostname" in r.err
    assert h.names() == {}
    assert h.store_files("blobs") == [] and h.store_files("layers") == []
