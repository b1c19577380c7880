"""How a container's overlay rootfs is mounted, through a Recording of
the syscalls (core/linux/syscalls.py): no root, no overlay module."""

from __future__ import annotations

import errno

from runtime.core.linux import syscalls
from runtime.engine.image import rootfs


def fs_calls(calls):
    """The calls with their fds replaced by "fd" (they are real /dev/null fds)."""
    return [tuple("fd" if isinstance(a, int) and i == 1 and c[0] != "mount" else a for i, a in enumerate(c))
            for c in calls]


def test_one_lowerdir_plus_per_layer_top_first(tmp_path):
    lowers = [str(tmp_path / "layers" / n) for n in ("top", "middle", "base")]
    with syscalls.using(syscalls.Recording()) as rec:
        rootfs._mount_overlay(lowers, "/c/upper", "/c/work", "/c/rootfs", volatile=True)
    assert fs_calls(rec.calls) == [
        ("fsopen", "overlay"),
        ("fsconfig_string", "fd", "lowerdir+", lowers[0]),
        ("fsconfig_string", "fd", "lowerdir+", lowers[1]),
        ("fsconfig_string", "fd", "lowerdir+", lowers[2]),
        ("fsconfig_string", "fd", "upperdir", "/c/upper"),
        ("fsconfig_string", "fd", "workdir", "/c/work"),
        ("fsconfig_string", "fd", "source", "husk"),
        ("fsconfig_flag", "fd", "volatile"),
        ("fsconfig_create", "fd"),
        ("fsmount", "fd", 0),
        ("move_mount_to", "fd", "/c/rootfs"),
    ]


def test_before_linux_6_8_mount_2_with_paths_relative_to_the_layers(tmp_path):
    base = tmp_path / "layers"
    base.mkdir()
    lowers = [str(base / n) for n in ("top", "base")]
    # lowerdir+ is EINVAL before 6.8: the same overlay through mount(2).
    with syscalls.using(syscalls.Recording(fail={("fsconfig_string", "lowerdir+"): errno.EINVAL})) as rec:
        rootfs._mount_overlay(lowers, "/c/upper", "/c/work", "/c/rootfs", volatile=False)
    assert rec.calls[-1] == ("mount", "husk", "/c/rootfs", "overlay", 0,
                             "lowerdir=top:base,upperdir=/c/upper,workdir=/c/work")


def test_a_kernel_without_the_new_mount_api_uses_mount_2(tmp_path):
    (tmp_path / "l").mkdir()
    with syscalls.using(syscalls.Recording(fail={"fsopen": errno.ENOSYS})) as rec:
        rootfs._mount_overlay([str(tmp_path / "l")], "/u", "/w", "/t", volatile=False)
    assert [c[0] for c in rec.calls] == ["fsopen", "mount"]
