"""Image containers' security defaults: the default seccomp profile and
docker's --security-opt; an image's passwd, group and layout files
opened as host root without trusting them."""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.root

SYS_PERSONALITY = 135  # x86_64
ADDR_COMPAT_LAYOUT = 0x0200000  # a personality the profile does not allow


@pytest.fixture
def h(husk_env, layouts):
    husk_env.load_busybox()
    husk_env("load", "-q", "--name", "netbox", "-i", layouts["netbox"], check=True)
    return husk_env


def run(h, *args, **kw):
    return h("run", "--rm", "--pull=never", "--network", "none", *args, **kw)


def status(h, *opts) -> dict:
    r = run(h, *opts, "busybox", "cat", "/proc/self/status")
    assert r.code == 0, r.err
    return dict(line.split(":\t", 1) for line in r.out.splitlines() if ":\t" in line)


def test_default_profile_is_applied(h):
    st = status(h)
    assert st["Seccomp"].strip() == "2" and st["NoNewPrivs"].strip() == "0"
    r = run(h, "netbox", "/checker", "syscall", str(SYS_PERSONALITY), str(ADDR_COMPAT_LAYOUT))
    assert r.out.strip() == "ENOSYS", r.err  # the profile's default action for what it does not list
    r = run(h, "netbox", "/checker", "syscall", str(SYS_PERSONALITY), "0xffffffff")
    assert r.out.strip() == "ok"  # personality(query) is on the list


def test_unconfined_and_no_new_privileges(h):
    assert status(h, "--security-opt", "seccomp=unconfined")["Seccomp"].strip() == "0"
    assert status(h, "--security-opt", "no-new-privileges")["NoNewPrivs"].strip() == "1"
    r = run(h, "--security-opt", "seccomp=unconfined", "netbox", "/checker", "syscall", str(SYS_PERSONALITY),
            str(ADDR_COMPAT_LAYOUT))
    assert r.out.strip() == "ok"


def test_a_profile_from_a_file(h, tmp_path):
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
         "includes": {"caps": ["CAP_KILL"]}},       # docker's image caps hold KILL: applies
        {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO",
         "includes": {"caps": ["CAP_SYS_ADMIN"]}},  # they do not hold SYS_ADMIN: skipped
    ]}
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    r = run(h, "--security-opt", f"seccomp={path}", "netbox", "/checker", "syscall", str(SYS_PERSONALITY), "0")
    assert r.out.strip() == "EINVAL", r.err
    r = run(h, "--security-opt", f"seccomp={path}", "busybox", "pwd")
    assert r.out.strip() == "/"


@pytest.mark.parametrize("opt, expect", [
    ("seccomp=/no/such/profile.json", "/no/such/profile.json"),
    ("apparmor=unconfined", "apparmor=unconfined"),
    ("seccomp=PROFILE_NOT_JSON", "not JSON"),
])
def test_bad_security_opts_fail_by_name_and_leave_nothing(h, tmp_path, opt, expect):
    if "NOT_JSON" in opt:
        (tmp_path / "bad.json").write_text("{nope")
        opt = f"seccomp={tmp_path / 'bad.json'}"
    r = run(h, "--security-opt", opt, "busybox", "true")
    assert r.code == 125 and expect in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1
    assert h.store_files("containers") == []


def _image_with(tmp_path, name: str, entries) -> str:
    from imagefixtures import busybox_layer_tar
    from tarbuild import Layout, layer

    lay = Layout(str(tmp_path / name))
    mdesc, _ = lay.image([busybox_layer_tar(), layer(entries)])
    lay.tag(mdesc, "latest")
    return lay.save()


@pytest.mark.parametrize("kind", ["fifo", "symlink", "char"])
def test_hostile_passwd_does_not_hang_or_escape(h, tmp_path, kind):
    # A FIFO would block the open for ever, /dev/zero would be read for
    # ever, a symlink could point at the host's files.
    from tarbuild import entry

    e = {"fifo": entry("etc/passwd", "fifo"), "symlink": entry("etc/passwd", "symlink", link="/dev/zero"),
         "char": entry("etc/passwd", "char", dev=(1, 5))}[kind]
    h("load", "-q", "--name", "hostile", "-i", _image_with(tmp_path, kind, [e]), check=True)
    r = run(h, "-u", "nobody", "hostile", "true", timeout=60)
    assert r.code == 125 and "/etc/passwd" in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1
    assert h.store_files("containers") == []


def test_layout_index_that_is_a_symlink_to_dev_zero_is_refused(h, tmp_path):
    before = (h.store_files("blobs"), h.store_files("layers"))
    lay = tmp_path / "evil-layout"
    lay.mkdir()
    (lay / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    os.symlink("/dev/zero", lay / "index.json")
    r = h("load", "-q", "-i", str(lay), timeout=60)
    assert r.code != 0 and "index.json" in r.err and "symlink" in r.err, r.err
    fifo_lay = tmp_path / "fifo-layout"
    fifo_lay.mkdir()
    (fifo_lay / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    os.mkfifo(fifo_lay / "index.json")
    r = h("load", "-q", "-i", str(fifo_lay), timeout=60)
    assert r.code != 0 and "index.json" in r.err and "not a regular file" in r.err, r.err
    assert (h.store_files("blobs"), h.store_files("layers")) == before


def test_archive_blob_that_is_a_symlink_out_is_refused(h, tmp_path):
    # An oci-archive whose blobs dir is a symlink to the host's /: the
    # blob is resolved inside the unpacked archive, never on the host.
    import tarfile

    from tarbuild import entry, layer

    src = tmp_path / "good"
    from conftest import REPO
    from imagefixtures import copy_layout

    copy_layout(os.path.join(REPO, "rootfs", "build", "oci"), str(src))
    entries = [entry("oci-layout", data=(src / "oci-layout").read_bytes()),
               entry("index.json", data=(src / "index.json").read_bytes()),
               entry("blobs", "symlink", link="/")]
    archive = tmp_path / "evil.tar"
    archive.write_bytes(layer(entries))
    assert tarfile.is_tarfile(archive)
    before = (h.store_files("blobs"), h.store_files("layers"))
    r = h("load", "-q", "-i", str(archive), timeout=60)
    assert r.code != 0 and "is missing" in r.err, r.err  # not found inside the archive; / never read
    assert (h.store_files("blobs"), h.store_files("layers")) == before
