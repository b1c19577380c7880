"""--explain: the timeline of a real run, read against the config it ran
(every namespace, mount, masked and read-only path, limit and capability
change, in the order husk-init takes them, each at a source line that
makes it), against the JSON schema, and as an HTML page a real browser
(Debian's headless Chromium) shows without a console error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import jsonschema
import pytest

from runtime.core.explain.render import SCHEMA

pytestmark = pytest.mark.root

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECCOMP = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
           "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}


def explained(result, path) -> dict:
    assert result.code == 0, result.err
    with open(path) as f:
        timeline = json.load(f)
    jsonschema.validate(timeline, SCHEMA)
    return timeline


def steps(timeline, name) -> list[dict]:
    return [s for s in timeline["steps"] if s["step"] == name]


def first(timeline, name) -> int:
    return next(i for i, s in enumerate(timeline["steps"]) if s["step"] == name)


def last(timeline, name) -> int:
    return max(i for i, s in enumerate(timeline["steps"]) if s["step"] == name)


def assert_sources_are_trace_calls(timeline):
    """Each step names the line of the TRACE (C) or trace.step (Python)
    call that recorded it, in this tree."""
    for s in timeline["steps"]:
        path, line = s["source"].rsplit(":", 1)
        with open(os.path.join(REPO, path)) as f:
            text = f.read().splitlines()[int(line) - 1]
        assert "TRACE (" in text or "trace.step(" in text, (s["source"], text)


@pytest.fixture
def configured(bundle):
    c = bundle.config
    c["hostname"] = "explained"
    c["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "nodev", "size=1m"]})
    c["linux"]["resources"].update(memory={"limit": 64 << 20}, pids={"limit": 99})
    c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    c["linux"]["seccomp"] = SECCOMP
    c["process"]["noNewPrivileges"] = True
    return bundle


def test_run_timeline_follows_the_config(configured, tmp_path):
    b, out = configured, str(tmp_path / "run.json")
    b.config["process"]["args"] = ["echo", "from the container"]
    b.save()
    r = b.husk("run", "--explain=json", "--explain-file", out, "--bundle", b.path, "ex1")
    assert r.out == "from the container\n"  # the container's own output is untouched
    t = explained(r, out)
    assert t["exit_code"] == 0 and t["command"][-1] == "ex1"
    assert_sources_are_trace_calls(t)
    c = b.config

    # Every namespace of the config is made by clone, by its flag.
    flags = {"pid": "CLONE_NEWPID", "network": "CLONE_NEWNET", "ipc": "CLONE_NEWIPC", "uts": "CLONE_NEWUTS",
             "mount": "CLONE_NEWNS", "cgroup": "CLONE_NEWCGROUP"}
    made = {s["call"].split(":")[0] for s in steps(t, "namespace")}
    assert made == {flags[n["type"]] for n in c["linux"]["namespaces"]}
    assert all(s["why"] for s in steps(t, "namespace"))
    assert steps(t, "hostname")[0]["call"] == 'sethostname("explained")'

    # Every mount, at its destination, in the config's order.
    dests = [s["call"].split('-> "')[1].split('"')[0] for s in steps(t, "mount")]
    assert [d for d in dests if not d.startswith("/sys/fs/cgroup/")] == [m["destination"] for m in c["mounts"]]
    scratch = next(s for s in steps(t, "mount") if '"/scratch"' in s["call"])
    assert 'fsopen("tmpfs")' in scratch["call"] and "size=1m" in scratch["call"] and "MS_NOSUID" in scratch["call"]

    # The masked and read-only paths this kernel has.
    masked = {s["call"].rsplit('"', 2)[1] for s in steps(t, "masked")}
    assert masked == {p for p in c["linux"]["maskedPaths"] if os.path.exists(p)}
    readonly = {s["call"].split('"')[1] for s in steps(t, "readonly")}
    assert readonly == {p for p in c["linux"]["readonlyPaths"] if os.path.exists(p)}
    assert steps(t, "sysctl")[0]["call"] == "write /proc/sys/net/ipv4/ip_forward: 1"

    # Every limit, written to its cgroup file with its value.
    writes = [s["call"] for s in steps(t, "cgroup_write")]
    assert any(w.split(": ")[0].endswith(("/memory.limit_in_bytes", "/memory.max")) and ": 67108864" in w
               for w in writes), writes
    assert any(w.split(": ")[0].endswith("/pids.max") and ": 99" in w for w in writes), writes

    # Capabilities before and after: all of root's, then the config's.
    caps = c["process"]["capabilities"]
    before = steps(t, "caps_before")[0]["call"]
    assert "effective all 41" in before or "SYS_ADMIN" in before.split(";")[0]
    after = steps(t, "caps_after")[0]["call"]

    def names(text):  # "3 of 41: KILL, NET_BIND_SERVICE, AUDIT_WRITE"
        return {f"CAP_{n}" for n in text.split(": ", 1)[1].split(", ")}

    assert names(after.split("effective ")[1].split(";")[0]) == set(caps["effective"])
    assert names(after.split("bounding ")[1]) == set(caps["bounding"])
    assert "rlimit" in {s["step"] for s in t["steps"]} and steps(t, "no_new_privs")
    assert "SCMP_ACT_ALLOW, 1 rules, 2 architectures" in steps(t, "seccomp")[0]["call"]

    # In the order husk-init takes them: the cgroup is ready before the
    # process exists, the namespaces before the mounts, the mounts before
    # pivot_root, the identity before the filter, and execve last of all.
    pids_limit = next(i for i, s in enumerate(t["steps"]) if "/pids.max: 99" in s["call"])
    joined = max(i for i, s in enumerate(t["steps"]) if "/cgroup.procs: " in s["call"])
    order = [pids_limit, joined, first(t, "plan_sent"), first(t, "clone"), first(t, "namespace"), first(t, "mount"),
             last(t, "mount"), first(t, "device"), first(t, "readonly"), first(t, "masked"), first(t, "pivot_root"),
             first(t, "umount_old_root"), first(t, "close_fds"), first(t, "caps_before"), first(t, "bounding"),
             first(t, "setuid"), first(t, "capset"), first(t, "caps_after"), first(t, "no_new_privs"),
             first(t, "ready"), first(t, "seccomp"), first(t, "execve")]
    assert order == sorted(order), [t["steps"][i]["step"] for i in order]
    whos = [s["who"] for s in t["steps"]]
    assert whos.index("planning") < whos.index("husk-init") < whos.index("container init")
    assert t["steps"][-1]["step"] == "state_removed"  # run deletes what it made
    times = [s["t_us"] for s in t["steps"]]
    assert times == sorted(times) and times[0] == 0


def test_user_and_time_namespaces_are_shown_with_their_maps(bundle, tmp_path):
    # The container's root is host uid 100000: it must be able to reach its rootfs.
    d = bundle.path
    while d != "/":
        os.chmod(d, os.stat(d).st_mode | 0o011)
        d = os.path.dirname(d)
    os.chown(bundle.rootfs, 100000, 100000)
    c = bundle.config
    c["linux"]["namespaces"] += [{"type": "user"}, {"type": "time"}]
    c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    c["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 1000, "nanosecs": 0}}
    c["process"]["args"] = ["cat", "/proc/self/uid_map"]
    bundle.save()
    out = str(tmp_path / "userns.json")
    r = bundle.husk("run", "--explain=json", "--explain-file", out, "--bundle", bundle.path, "ex5")
    assert r.out.split() == ["0", "100000", "65536"]
    t = explained(r, out)
    assert steps(t, "uid_map")[0]["call"].endswith("/uid_map: 0 100000 65536")
    assert steps(t, "gid_map")[0]["call"].endswith("/gid_map: 0 100000 65536")
    assert "CLONE_NEWUSER" in {s["call"].split(":")[0] for s in steps(t, "namespace")}
    assert steps(t, "namespace")[0]["call"].startswith("unshare(CLONE_NEWTIME)")
    # The maps are written from outside, after clone and before the init goes on.
    assert first(t, "clone") < first(t, "uid_map") < first(t, "go") < first(t, "init")
    # In a user namespace a device is a bind of the host's node, not mknod.
    assert all("bind of the host's node" in s["call"] for s in steps(t, "device"))
    # One clock for every process, whatever the time namespace's offsets.
    times = [s["t_us"] for s in t["steps"]]
    assert times == sorted(times) and times[-1] < 60_000_000
    assert_sources_are_trace_calls(t)


def test_text_goes_to_stderr_and_create_stops_at_ready(configured, tmp_path):
    b = configured
    b.config["process"]["args"] = ["sleep", "60"]
    b.save()
    r = b.husk("create", "--explain", "--bundle", b.path, "ex2")
    assert r.code == 0 and r.out == "", r.err
    assert "husk --explain:" in r.err and "pivot_root" in r.err and "at native/src/rootfs.c:" in r.err
    assert "-> pivot_root: the rootfs becomes /" in r.err
    # create ends at READY: the rest happens at start, which is not explained.
    assert "send MSG_READY" in r.err and "becomes the program" not in r.err
    assert "The process waits for `husk start`" in r.err
    assert b.husk("start", "ex2").code == 0
    assert json.loads(b.husk("state", "ex2").out)["status"] == "running"

    # exec joins every namespace of the init's, by path, then execs.
    out = str(tmp_path / "exec.json")
    r = b.husk("exec", "--explain=json", "--explain-file", out, "ex2", "echo", "in it")
    assert r.out == "in it\n"
    t = explained(r, out)
    joined = {s["call"].split("), ")[1].split(")")[0] for s in steps(t, "setns")}
    assert joined == {"CLONE_NEWPID", "CLONE_NEWNET", "CLONE_NEWIPC", "CLONE_NEWUTS", "CLONE_NEWNS",
                      "CLONE_NEWCGROUP"}
    assert not steps(t, "namespace") and not steps(t, "pivot_root")  # an exec makes none
    assert steps(t, "exec_plan") and steps(t, "seccomp") and t["steps"][-1]["step"] == "execve"
    assert_sources_are_trace_calls(t)
    assert b.husk("delete", "--force", "ex2").code == 0


def test_an_image_run_shows_the_engines_steps(husk_env, tmp_path):
    husk_env.load_busybox()
    out = str(tmp_path / "image.json")
    r = husk_env("run", "--rm", "--pull=never", "--network", "none", "--explain=json", "--explain-file", out,
                 "busybox", "sh", "-c", "echo hi; exit 3")
    assert (r.code, r.out) == (3, "hi\n"), r.err
    with open(out) as f:
        t = json.load(f)
    jsonschema.validate(t, SCHEMA)
    assert t["exit_code"] == 3
    engine = [s["step"] for s in t["steps"] if s["who"] == "engine"]
    assert engine[:1] == ["overlay"] and "bundle" in engine
    assert steps(t, "setns") and "network" in steps(t, "setns")[0]["call"]  # --network none: a netns of its own
    assert len(steps(t, "seccomp")) == 1 and steps(t, "execve")
    assert_sources_are_trace_calls(t)


def test_explain_refuses_what_it_cannot_show(husk_env, bundle):
    r = bundle.husk("run", "--explain-file", "/tmp/x.json", "--bundle", bundle.path, "ex3")
    assert r.code == 2 and "--explain-file needs --explain" in r.err
    r = bundle.husk("run", "--explain=xml", "--bundle", bundle.path, "ex3")
    assert r.code == 2 and "xml" in r.err
    r = bundle.husk("run", "--explain", "--explain-file", "/nonexistent/dir/t.txt", "--bundle", bundle.path, "ex3")
    assert r.code == 1 and r.err.strip() == "husk: explain: --explain-file /nonexistent/dir/t.txt: No such file or " \
        "directory", r.err
    husk_env.load_busybox()
    r = husk_env("run", "-d", "--explain", "busybox", "true")
    assert r.code == 2 and "--explain" in r.err and "without -d" in r.err
    # A bad config is named in one line, as without --explain, and leaves nothing.
    bundle.config["linux"]["namespaces"].append({"type": "bogus"})
    bundle.save()
    r = bundle.husk("run", "--explain", "--bundle", bundle.path, "ex3")
    assert r.code != 0 and "linux.namespaces" in r.err


CHROMIUM = shutil.which("chromium")


def chromium_dom(page: str) -> tuple[str, str]:
    """The DOM Chromium made of PAGE, and its log.  It runs in a network
    namespace of its own: the page needs none, and nothing it does can
    leave the machine."""
    r = subprocess.run(["unshare", "--net", CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                        "--no-first-run", "--disable-extensions", "--enable-logging=stderr", "--v=0",
                        "--user-data-dir=" + os.path.dirname(page) + "/chromium", "--dump-dom", "file://" + page],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout, r.stderr


def console_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if "CONSOLE" in line and ("Error" in line or "Uncaught" in line)]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_the_html_page_in_a_real_browser(bundle, tmp_path):
    page = str(tmp_path / "explain.html")
    r = bundle.husk("run", "--explain=html", "--explain-file", page, "--bundle", bundle.path, "ex4")
    assert r.code == 0, r.err
    with open(page) as f:
        text = f.read()
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")  # self-contained
    assert "https://" not in text.replace("https://json-schema.org", "")
    data = json.loads(text.split('<script type="application/json" id="data">')[1].split("</script>")[0])
    n = len(data["steps"])
    assert n > 50
    dom, log = chromium_dom(page)
    assert not console_errors(log), console_errors(log)
    # Every step is drawn on the axis and written out in its mechanism's section.
    assert dom.count('class="step"') == n
    in_init = sum(s["who"] in ("husk-init", "container init") for s in data["steps"])
    assert dom.count("<circle") == n + in_init  # the whole run's axis, and husk-init's own
    for i, s in enumerate(data["steps"]):
        assert f'id="step-{i}"' in dom
    assert 'id="mechanism-namespaces"' in dom and 'id="mechanism-rootfs"' in dom
    # ...with the code that took it, its own line marked: the installed
    # husk carries the C sources it cites (setup.py, runtime/_source).
    assert dom.count('class="here"') == n
    assert 'TRACE ("rootfs", "pivot_root"' in dom and 'trace.step("planning", "config"' in dom
    assert f"{n} steps in" in dom

    # The check itself sees a script error when there is one.
    broken = str(tmp_path / "broken.html")
    with open(broken, "w") as f:
        f.write(text.replace('const data = JSON.parse(', 'const data = JSON.parse(undefinedName + '))
    dom, log = chromium_dom(broken)
    assert console_errors(log) and 'class="step"' not in dom
