"""Layer unpacking: every kind of entry, overlay whiteouts, and a corpus
of hostile layers, none of which may touch anything outside the layer's
directory.  Each refusal must name the layer and the entry."""

from __future__ import annotations

import io
import os
import stat

import pytest
from tarbuild import entry, layer

pytestmark = pytest.mark.root


def unpack_bytes(tar: bytes, dest: str) -> None:
    from runtime.engine.image.unpack import unpack

    os.makedirs(dest, exist_ok=True)
    unpack(io.BytesIO(tar), dest, "L1")


@pytest.fixture
def sandbox(tmp_path):
    """A layer dir with a canary beside it that no entry may reach."""
    (tmp_path / "outside").mkdir()
    canary = tmp_path / "outside" / "canary"
    canary.write_text("untouched")
    before = snapshot(tmp_path / "outside")
    yield tmp_path / "layer"
    assert snapshot(tmp_path / "outside") == before, "an entry changed something outside the layer"
    assert canary.read_text() == "untouched"


def snapshot(path) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            out[p] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def test_every_entry_kind(sandbox):
    unpack_bytes(layer([
        entry("./", "dir", mode=0o755),
        entry("etc", "dir", mode=0o755),
        entry("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n"),
        entry("bin/su", data=b"\x7fELF", mode=0o4755, uid=0, gid=0),
        entry("home/user", "dir", mode=0o700, uid=1000, gid=1000),
        entry("home/user/file", data=b"mine", uid=1000, gid=1000, mode=0o600),
        entry("link", "symlink", link="/etc/passwd"),
        entry("hard", "hardlink", link="etc/passwd"),
        entry("dev/null", "char", dev=(1, 3), mode=0o666),
        entry("dev/loop9", "block", dev=(7, 9), mode=0o660, gid=6),
        entry("run/fifo", "fifo", mode=0o600),
        entry("sparse", data=b"a" + bytes(3 << 20) + b"z"),
        entry("cap", data=b"x", xattrs={"user.note": "hello"}),
    ]), sandbox)
    st = os.lstat(sandbox / "bin/su")
    assert stat.S_IMODE(st.st_mode) == 0o4755
    st = os.lstat(sandbox / "home/user/file")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1000, 0o600)
    assert os.readlink(sandbox / "link") == "/etc/passwd"
    assert os.lstat(sandbox / "hard").st_ino == os.lstat(sandbox / "etc/passwd").st_ino
    st = os.lstat(sandbox / "dev/null")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    st = os.lstat(sandbox / "dev/loop9")
    assert stat.S_ISBLK(st.st_mode) and st.st_gid == 6 and stat.S_IMODE(st.st_mode) == 0o660
    assert stat.S_ISFIFO(os.lstat(sandbox / "run/fifo").st_mode)
    st = os.lstat(sandbox / "sparse")
    assert st.st_size == (3 << 20) + 2 and st.st_blocks * 512 < (1 << 20), "zeros should be holes"
    with open(sandbox / "sparse", "rb") as f:
        data = f.read()
    assert data[0:1] == b"a" and data[-1:] == b"z" and data.count(0) == 3 << 20
    assert os.getxattr(sandbox / "cap", "user.note") == b"hello"
    assert os.lstat(sandbox / "etc/passwd").st_mtime == 1_700_000_000
    assert os.lstat(sandbox / "etc").st_mtime == 1_700_000_000, "directory mtimes are set last"


def test_whiteouts_become_overlay_whiteouts(sandbox):
    unpack_bytes(layer([
        entry("etc/.wh.motd"),
        entry("var/cache/.wh..wh..opq"),
        entry("var/cache/new", data=b"n"),
        entry(".wh..wh.plnk", "dir"),  # aufs bookkeeping: ignored
    ]), sandbox)
    st = os.lstat(sandbox / "etc/motd")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(sandbox / "var/cache", "trusted.overlay.opaque") == b"y"
    assert not os.path.lexists(sandbox / ".wh..wh.plnk")


def test_whiteout_then_directory_is_opaque(sandbox):
    unpack_bytes(layer([entry(".wh.opt"), entry("opt", "dir"), entry("opt/x", data=b"x")]), sandbox)
    assert os.path.isdir(sandbox / "opt")
    assert os.getxattr(sandbox / "opt", "trusted.overlay.opaque") == b"y"


def test_whiteout_does_not_remove_this_layers_entry(sandbox):
    unpack_bytes(layer([entry("keep", data=b"k"), entry(".wh.keep")]), sandbox)
    assert (sandbox / "keep").read_bytes() == b"k"


def test_later_entry_replaces_earlier_one(sandbox):
    unpack_bytes(layer([entry("a", "symlink", link="/etc"), entry("a", data=b"file now")]), sandbox)
    assert (sandbox / "a").read_bytes() == b"file now"


HOSTILE = {
    "dotdot": [entry("../outside/canary", data=b"pwned")],
    "dotdot-inside": [entry("a/../../outside/canary", data=b"pwned")],
    "absolute": [entry("/outside/canary", data=b"pwned")],
    "whiteout-dotdot": [entry(".wh..."), ],
    "whiteout-dot": [entry("sub/.wh..")],
    "whiteout-empty": [entry(".wh.")],
    "root-as-file": [entry("./", data=b"x")],
    "hardlink-outside": [entry("h", "hardlink", link="../outside/canary")],
    "hardlink-absolute": [entry("h", "hardlink", link="/etc/passwd")],
    "hardlink-missing": [entry("h", "hardlink", link="nothing/here")],
    "forbidden-xattr": [entry("f", data=b"x", xattrs={"trusted.overlay.opaque": "y"})],
    "forbidden-xattr-redirect": [entry("d", "dir", xattrs={"trusted.overlay.redirect": "/etc"})],
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_layer_is_refused(sandbox, name):
    from runtime.core.errors import HuskError

    with pytest.raises(HuskError) as e:
        unpack_bytes(layer(HOSTILE[name]), sandbox)
    msg = str(e.value)
    assert "layer L1" in msg and "entry" in msg, msg


# Entries that are legal but must stay inside the layer: symlinks planted
# by earlier entries are followed only within the layer directory.
CONTAINED = {
    "symlink-to-root-then-write": ([entry("a", "symlink", link="/"), entry("a/outside/canary", data=b"pwned")],
                                   "outside/canary"),
    "symlink-dotdot-then-write": ([entry("a", "symlink", link="../../.."), entry("a/outside/canary", data=b"x")],
                                  "outside/canary"),
    "symlink-absolute-dir": ([entry("b", "symlink", link="/tmp/../outside"), entry("b/canary", data=b"x")],
                             "outside/canary"),
    "symlink-chain": ([entry("c1", "symlink", link="c2"), entry("c2", "symlink", link="../outside"),
                       entry("c1/canary", data=b"x")], "outside/canary"),
    "hardlink-through-symlink": ([entry("s", "symlink", link="/"), entry("h", "hardlink", link="s/etc/x")], None),
}


@pytest.mark.parametrize("name", sorted(CONTAINED))
def test_symlinks_resolve_inside_the_layer(sandbox, name):
    from runtime.core.errors import HuskError

    entries, inside = CONTAINED[name]
    try:
        unpack_bytes(layer(entries), sandbox)
    except HuskError as e:
        assert "layer L1" in str(e)
        return
    if inside:
        assert (sandbox / inside).read_bytes() in (b"pwned", b"x"), "the write should land inside the layer"


def test_symlink_final_component_is_never_followed(sandbox, tmp_path):
    victim = tmp_path / "outside" / "canary"
    unpack_bytes(layer([entry("v", "symlink", link=str(victim)), entry("v", data=b"replaced")]), sandbox)
    assert os.path.isfile(sandbox / "v") and not os.path.islink(sandbox / "v")


def test_corrupt_tar_names_the_layer(sandbox):
    from runtime.core.errors import HuskError

    data = layer([entry("f", data=b"x" * 4096)])
    with pytest.raises(HuskError) as e:
        unpack_bytes(data[:1200], sandbox)
    assert "layer L1" in str(e.value)
