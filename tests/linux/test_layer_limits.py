"""Hostile layers that attack husk itself rather than the host's files:
decompression bombs, huge sparse claims, absurd header fields, more
directories than husk may hold fds for.  Each is refused (or handled)
with one line naming the layer and the entry, and leaves nothing."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import zlib

import pytest
from tarbuild import Layout, entry, layer

pytestmark = pytest.mark.root


def load_layer(h, tmp_path, tar: bytes | None = None, *, gz: bytes | None = None, diff_id: str | None = None,
               env=None):
    lay = Layout(str(tmp_path / "lay"))
    if gz is None:
        mdesc, _ = lay.image([tar])
    else:
        mdesc, _ = lay.image([b""], compressed=[gz], diff_ids=[diff_id])
    lay.tag(mdesc, "latest")
    return h("load", "-q", "--name", "hostile", "-i", lay.save(), env=env)


def assert_refused(h, r, *words):
    assert r.code != 0, r.out
    line = r.err.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line, r.err
    for w in words:
        assert w in line, line
    assert h.store_files("layers") == [] and h.store_files("tmp") == [] and h.names() == {}


def zero_bomb(size: int) -> tuple[bytes, str]:
    """A gzip'd tar holding one SIZE-byte file of zeros, made in a stream."""
    info = tarfile.TarInfo("zeros")
    info.size = size
    head = info.tobuf(format=tarfile.PAX_FORMAT)
    sha = hashlib.sha256()
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [z.compress(head)]
    sha.update(head)
    block = bytes(1 << 20)
    for _ in range(size >> 20):
        out.append(z.compress(block))
        sha.update(block)
    tail = bytes(1024)  # size is a multiple of 512: no padding, then end of archive
    out.append(z.compress(tail))
    sha.update(tail)
    out.append(z.flush())
    return b"".join(out), "sha256:" + sha.hexdigest()


# A child's peak RSS starts at its parent's when it forked (Popen's vfork even
# hands it the parent's high-water mark at execve), so a pytest that grew in
# earlier tests would be measured instead of husk.  A fresh interpreter forks
# husk and reports wait4's ru_maxrss for it alone.
_PEAK_RSS_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.dup2(2, 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_rss_kib(argv: list[str], env: dict[str, str]) -> tuple[int, int]:
    """Run ARGV from a small, fresh parent; return (exit code, its peak RSS in KiB)."""
    r = subprocess.run([sys.executable, "-I", "-c", _PEAK_RSS_LAUNCHER, *argv], env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    return r.returncode, int(r.stdout)


def test_a_gzip_bomb_is_inflated_in_bounded_memory(husk_env, tmp_path):
    gz, diff_id = zero_bomb(1 << 30)  # 1 GiB of zeros in about 1 MB
    assert len(gz) < 2 << 20
    lay = Layout(str(tmp_path / "lay"))
    mdesc, _ = lay.image([b""], compressed=[gz], diff_ids=[diff_id])
    lay.tag(mdesc, "latest")
    h = husk_env
    code, peak = peak_rss_kib([h.husk_bin, "--root", h.state, "--storage-root", h.store, "load", "-q", "--name",
                               "bomb", "-i", lay.save()], h.env())
    assert code == 0
    assert peak < 300 << 10, f"husk load peaked at {peak} KiB"
    h("rmi", "bomb", check=True)
    h("image", "prune", check=True)


def test_layer_size_and_entry_limits(husk_env, tmp_path):
    tar = layer([entry(f"f{i}", data=b"x" * 1000) for i in range(20)])
    r = load_layer(husk_env, tmp_path, tar, env={"HUSK_MAX_LAYER_BYTES": "5000"})
    assert_refused(husk_env, r, "HUSK_MAX_LAYER_BYTES", "'f5'")
    r = load_layer(husk_env, tmp_path, tar, env={"HUSK_MAX_LAYER_ENTRIES": "10"})
    assert_refused(husk_env, r, "HUSK_MAX_LAYER_ENTRIES")


def _sparse_tar(claimed: int) -> bytes:
    """A GNU sparse (PAX 1.0) entry: 4 KiB of data at the end of CLAIMED bytes."""
    data = b"end".ljust(4096, b"\0")
    mapping = f"1\n{claimed - 4096}\n4096\n".encode().ljust(512, b"\0")
    info = tarfile.TarInfo("GNUSparseFile.0/big")
    info.size = len(mapping) + len(data)
    info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "big",
                        "GNU.sparse.realsize": str(claimed)}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        t.addfile(info, io.BytesIO(mapping + data))
    return buf.getvalue()


def test_a_huge_sparse_claim_costs_only_its_data(husk_env, tmp_path):
    tar = _sparse_tar(16 << 30)
    from runtime.engine.image.unpack import unpack

    dest = tmp_path / "out"
    dest.mkdir()
    unpack(io.BytesIO(tar), str(dest), "L1")
    st = os.stat(dest / "big")
    assert st.st_size == 16 << 30 and st.st_blocks * 512 < 1 << 20  # a hole, not 16 GiB written
    with open(dest / "big", "rb") as f:
        f.seek((16 << 30) - 4096)
        assert f.read(3) == b"end"
    # Over the configured limit it is refused by name before any work.
    r = load_layer(husk_env, tmp_path, tar, env={"HUSK_MAX_LAYER_BYTES": str(8 << 30)})
    assert_refused(husk_env, r, "big", "HUSK_MAX_LAYER_BYTES")


@pytest.mark.parametrize("field, value, words", [
    ("mtime", "nan", ["mtime", "'a'"]),
    ("mtime", "1e300", ["mtime", "'a'"]),
    ("uid", str(1 << 40), ["uid", "'a'"]),
    ("gid", str(1 << 33), ["gid", "'a'"]),
])
def test_absurd_header_fields_get_one_line(husk_env, tmp_path, field, value, words):
    info, data = entry("a", data=b"x")
    info.pax_headers = {field: value}
    r = load_layer(husk_env, tmp_path, layer([(info, data)]))
    assert_refused(husk_env, r, "layer", *words)


def test_a_name_too_long_for_the_filesystem(husk_env, tmp_path):
    r = load_layer(husk_env, tmp_path, layer([entry("d/" + "n" * 300, data=b"x")]))
    assert_refused(husk_env, r, "layer", "n" * 40, "File name too long")


def test_more_directories_than_the_fd_limit(husk_env, tmp_path):
    # 1100 nested-and-sibling directories, unpacked with RLIMIT_NOFILE 1024.
    entries = []
    for i in range(1100):
        entries.append(entry(f"top/d{i:04}/", "dir"))
        entries.append(entry(f"top/d{i:04}/f", data=b"x"))
    lay = Layout(str(tmp_path / "lay"))
    mdesc, _ = lay.image([layer(entries)])
    lay.tag(mdesc, "latest")
    path = lay.save()
    r = subprocess.run(["sh", "-c", 'ulimit -n 1024 && exec "$@"', "sh", husk_env.husk_bin, "--root",
                        husk_env.state, "--storage-root", husk_env.store, "load", "-q", "--name", "many", "-i", path],
                       env=husk_env.env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    husk_env("rmi", "many", check=True)
    husk_env("image", "prune", check=True)
