"""The recipe runtime/core/recipe.py compiles for the C front end: it
holds the config's shape and nothing of one container's own (id, rootfs,
hostname, args, env, bind sources, cgroupsPath), it names by field and
index where the front end fills each of those in, and it is what
native/include/husk_recipe.def declares."""

from __future__ import annotations

import json
import os
import struct

import pytest

from runtime.core import recipe
from runtime.core.oci.example import example_spec
from runtime.core.process import protocol as proto

CID = "recipe-unit-9f3e2a7c"


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "data-of-one").mkdir()
    config = example_spec(args=["/bin/echo", "arg-of-one"], terminal=False)
    # No capabilities or limits to hold: this suite runs with none (test_unit_suite).
    config["process"].pop("capabilities")
    config["process"].pop("rlimits", None)
    config["hostname"] = "hostname-of-one"
    config["process"]["env"] = ["PATH=/bin", "HOSTNAME=env-of-one"]
    config["mounts"].append({"destination": "/data", "type": "bind", "source": str(tmp_path / "data-of-one"),
                             "options": ["rbind", "ro"]})
    config["linux"]["cgroupsPath"] = f"/husk-unit/cgroup-of-{CID}"
    config["annotations"] = {"made-for": "annotation-of-one"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path, config


def compile_recipe(path) -> tuple[dict, list[tuple[int, bytes]]]:
    data = recipe.compile_create(str(path / "state"), str(path), CID, console_socket=False, no_pivot=False,
                                 preserve_fds=0, no_new_keyring=False)
    (head,) = struct.unpack_from("=I", data)
    return json.loads(data[4:4 + head]), proto.split_records(data[4 + head:])


def test_a_recipe_holds_no_value_of_one_container(bundle):
    path, _ = bundle
    data = recipe.compile_create(str(path / "state"), str(path), CID, console_socket=False, no_pivot=False,
                                 preserve_fds=0, no_new_keyring=False)
    for value in (CID, str(path), "hostname-of-one", "arg-of-one", "env-of-one", "annotation-of-one"):
        assert value.encode() not in data, value


def test_records_of_per_container_values_are_left_to_the_front_end(bundle):
    path, _ = bundle
    _, records = compile_recipe(path)
    tags = {tag for tag, _ in records}
    added = {proto.Tag(p.record) for p in recipe.PER_CONTAINER if p.how is recipe.Fill.ADDED}
    assert {proto.Tag.ROOTFS, proto.Tag.HOSTNAME, proto.Tag.ARG, proto.Tag.ENV, proto.Tag.EXEC_FIFO} <= added
    for tag in added:
        assert tag not in tags, tag.name
    assert records[0][0] == proto.Tag.VERSION and records[-1][0] == proto.Tag.END


def test_the_meta_is_what_husk_recipe_def_declares(bundle):
    path, _ = bundle
    meta, _ = compile_recipe(path)
    assert meta["version"] == recipe.VERSION
    assert set(meta) == {key for section, key in recipe.FIELDS if section == ""}
    assert set(meta["cgroup"]) == {key for section, key in recipe.FIELDS if section == "cgroup"}
    recipe.check_meta(meta)
    meta["cgroup"]["undeclared"] = 1
    with pytest.raises(AssertionError, match="undeclared"):
        recipe.check_meta(meta)


def test_each_per_container_field_is_one_the_config_has():
    """husk_recipe.def's fields name config.json fields (the front end takes
    them out of the shape by these names), and each record is a plan record."""
    config = example_spec(args=["/bin/true"], terminal=False)
    for value in recipe.PER_CONTAINER:
        if value.record:
            assert proto.RECORDS[value.record].name.startswith("PLAN_"), value
        if not value.field:
            continue
        head = value.field.split(".")[0].removesuffix("[]")
        assert head in config or head in ("hostname", "hooks", "annotations"), value


def test_each_mount_source_is_named_by_its_slot(bundle):
    path, config = bundle
    meta, records = compile_recipe(path)
    sources = [value for tag, value in records if tag == proto.Tag.MOUNT_SOURCE]
    assert len(sources) == len(meta["mount_sources"])
    data = len(config["mounts"]) - 1
    assert ["config", data, True] in meta["mount_sources"]
    for slot, source in zip(meta["mount_sources"], sources):
        if slot:  # filled in by the front end
            assert source == b""
    # proc's source is the config's too, taken as it is (not a path).
    proc = next(i for i, m in enumerate(config["mounts"]) if m["type"] == "proc")
    assert ["config", proc, False] in meta["mount_sources"]


def test_cgroup_directories_are_a_base_and_the_containers_path(bundle):
    path, _ = bundle
    meta, _ = compile_recipe(path)
    cg = meta["cgroup"]
    assert cg["default_parent"] is None  # cgroupsPath was given
    assert cg["placements"] and all(os.path.isabs(p["base"]) for p in cg["placements"])
    for write in cg["writes"] + cg["device_writes"]:
        assert isinstance(write[0], int) and 0 <= write[0] < len(cg["placements"])


def test_without_cgroups_path_the_parent_is_given_and_the_id_left_out(bundle):
    path, config = bundle
    del config["linux"]["cgroupsPath"]
    (path / "config.json").write_text(json.dumps(config))
    meta, _ = compile_recipe(path)
    assert meta["cgroup"]["default_parent"] == "/husk"


def test_a_relative_cgroups_path_lies_under_the_default_parent(bundle):
    path, config = bundle
    config["linux"]["cgroupsPath"] = "relative/path"
    (path / "config.json").write_text(json.dumps(config))
    meta, _ = compile_recipe(path)
    assert meta["cgroup"]["default_parent"] == "/husk"
