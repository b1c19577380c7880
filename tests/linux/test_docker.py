"""Docker on husk: Debian's dockerd 20.10 with husk as its default
runtime, every check run again on a dockerd whose default is runc, the
control.  Each dockerd has its own data-root, exec-root, socket and
pidfile, and it and all it makes (docker0, its iptables rules, the
containers' namespaces, docker-proxy, the compose network) live in a
network namespace the test made, entered with `nsenter --net` only.
What each check asserts is read back from inside the containers, from
the kernel (cgroup files) or from what docker reports.

The stop, kill and rm -f times are printed for the record (`-s`), not
asserted: speed belongs in bench/."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest
from clients import HUSK, OCI_LAYOUT, cgroups_named, run, stop_daemon, until
from test_containerd import with_pty

pytestmark = [pytest.mark.root, pytest.mark.skipif(not os.path.exists("/usr/sbin/dockerd"),
                                                   reason="Debian's docker.io is not installed")]
DOCKER = "/usr/bin/docker"  # the CLI of the same release as dockerd
RUNTIMES = ("husk", "runc")
TIMES: dict[str, dict[str, float]] = {}


class Dockerd:
    def __init__(self, base: str, netns: str, runtime: str) -> None:
        self.base, self.netns, self.runtime = base, netns, runtime
        self.enter = ["nsenter", f"--net=/run/netns/{netns}"]
        self.sock = os.path.join(base, "docker.sock")
        self.exec_root = os.path.join(base, "exec")
        config = os.path.join(base, "daemon.json")
        with open(config, "w") as f:
            json.dump({"runtimes": {"husk": {"path": HUSK}}, "default-runtime": runtime,
                       "data-root": os.path.join(base, "data"), "exec-root": self.exec_root,
                       "pidfile": os.path.join(base, "docker.pid"), "hosts": [f"unix://{self.sock}"],
                       "storage-driver": "overlay2", "log-level": "warn", "cgroup-parent": f"/dockerd-test-{RUNTIMES.index(runtime)}",
                       "features": {"buildkit": False}}, f)
        self.log = open(os.path.join(base, "dockerd.log"), "w")
        self.daemon = subprocess.Popen([*self.enter, "dockerd", "--config-file", config],
                                       stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 90
        while self.docker("version").returncode != 0:
            if time.monotonic() > deadline or self.daemon.poll() is not None:
                raise RuntimeError(f"dockerd did not start: see {base}/dockerd.log")
            time.sleep(0.2)

    def env(self) -> dict:
        return dict(os.environ, DOCKER_HOST=f"unix://{self.sock}", DOCKER_BUILDKIT="0",
                    COMPOSE_PROJECT_NAME=f"huskdemo{self.runtime}", HOME=self.base)

    def docker(self, *args, **kw):
        return run([DOCKER, *args], env=self.env(), **kw)

    def ok(self, *args, **kw) -> str:
        r = self.docker(*args, **kw)
        assert r.returncode == 0, f"docker {' '.join(args)}: {r.stderr}"
        return r.stdout

    def timed(self, what: str, *args) -> None:
        start = time.monotonic()
        self.ok(*args)
        TIMES.setdefault(what, {})[self.runtime] = time.monotonic() - start

    def in_netns(self, *argv: str) -> subprocess.CompletedProcess:
        return run([*self.enter, *argv])

    def stop(self) -> None:
        for cid in self.docker("ps", "-aq").stdout.split():
            self.docker("rm", "-f", "-v", cid)
        stop_daemon(self.daemon)
        self.log.close()


@pytest.fixture(scope="module", params=RUNTIMES)
def dockerd(request, tmp_path_factory):
    runtime = request.param
    base = str(tmp_path_factory.mktemp(f"docker-{runtime}"))
    netns = f"dockerd-test-{RUNTIMES.index(runtime)}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
    d = None
    try:
        d = Dockerd(base, netns, runtime)
        for name, path in (("busybox:latest", OCI_LAYOUT),):
            archive = os.path.join(base, "busybox.tar")
            subprocess.run(["skopeo", "copy", "-q", f"oci:{path}", f"docker-archive:{archive}:{name}"], check=True)
            d.ok("load", "-q", "-i", archive)
        yield d
    finally:
        if d is not None:
            d.stop()
        for m in reversed([m.split()[1] for m in open("/proc/mounts") if m.split()[1].startswith(base + "/")]):
            subprocess.run(["umount", "-l", m], check=False)
        subprocess.run(["ip", "netns", "del", netns], check=True)
        for top in cgroups_named(f"dockerd-test-{RUNTIMES.index(runtime)}"):
            for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
                os.rmdir(dirpath)  # dockerd's cgroup parent: dockerd made it, the daemon's owner removes it
        left = [p for p in os.listdir("/run/husk")] if runtime == "husk" and os.path.isdir("/run/husk") else []
        assert not [p for p in left if p.startswith("moby")], left


def test_run_exit_codes_and_stdin(dockerd):
    d = dockerd
    assert d.ok("run", "--rm", "busybox", "echo", "hello from docker") == "hello from docker\n"
    for argv, code in ((["sh", "-c", "exit 3"], 3), (["/etc/passwd"], 126), (["/no/such/program"], 127)):
        r = d.docker("run", "--rm", "busybox", *argv)
        assert r.returncode == code, (argv, r.returncode, r.stderr)
    assert d.ok("run", "--rm", "-i", "busybox", "cat", input="typed in\n") == "typed in\n"
    code, out = with_pty([DOCKER, "-H", f"unix://{d.sock}", "run", "--rm", "-it", "busybox", "sh", "-c",
                          "tty; exit 4"])
    assert code == 4 and "/dev/pts/0" in out, out


def test_detached_logs_stop_kill_and_rm(dockerd):
    d = dockerd
    d.ok("run", "-d", "--name", "svc", "busybox", "sh", "-c",
         "trap 'echo bye; exit 0' TERM; echo up; while :; do sleep 0.1; done")
    until(lambda: "up" in d.ok("logs", "svc"), "svc up")
    d.timed("docker stop", "stop", "svc")
    assert d.ok("inspect", "-f", "{{.State.ExitCode}}", "svc").strip() == "0"
    assert "bye" in d.ok("logs", "svc")
    d.ok("start", "svc")
    d.timed("docker kill", "kill", "svc")
    assert d.ok("inspect", "-f", "{{.State.ExitCode}}", "svc").strip() == "137"
    d.ok("start", "svc")
    d.ok("run", "-d", "--name", "neighbour", "busybox", "sleep", "1000")  # shares dockerd's cgroup parent
    d.timed("docker rm -f", "rm", "-f", "svc")
    assert d.docker("inspect", "svc").returncode != 0
    assert d.ok("inspect", "-f", "{{.State.Running}}", "neighbour").strip() == "true"
    d.timed("docker rm -f (last)", "rm", "-f", "neighbour")


def test_exec_with_env_workdir_and_user(dockerd):
    d = dockerd
    d.ok("run", "-d", "--name", "ex", "busybox", "sleep", "1000")
    out = d.ok("exec", "-e", "K=from-exec", "-w", "/tmp", "-u", "nobody", "ex", "sh", "-c", "echo $K; pwd; id -un")
    assert out == "from-exec\n/tmp\nnobody\n"
    code, text = with_pty([DOCKER, "-H", f"unix://{d.sock}", "exec", "-it", "ex", "sh", "-c", "tty; exit 5"])
    assert code == 5 and "/dev/pts/" in text, text
    d.ok("rm", "-f", "ex")


def test_limits_reach_the_cgroup_and_stats_and_top_see_them(dockerd):
    from runtime.core.cgroups.layout import detect

    d = dockerd
    d.ok("run", "-d", "--name", "lim", "--memory", "64m", "--pids-limit", "50", "--cpus", "0.5", "busybox",
         "sleep", "1000")
    pid = int(d.ok("inspect", "-f", "{{.State.Pid}}", "lim"))
    layout = detect()

    def cgroup_file(controller: str, name: str) -> str:
        for line in open(f"/proc/{pid}/cgroup"):
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if layout.mode == "v2" and controllers == "":
                return open(os.path.join(layout.unified, path.lstrip("/"), name)).read().strip()
            if controller in controllers.split(","):
                return open(os.path.join(layout.v1[controller], path.lstrip("/"), name)).read().strip()
        raise AssertionError(controller)

    if layout.mode == "v2":
        assert (cgroup_file("memory", "memory.max"), cgroup_file("pids", "pids.max"),
                cgroup_file("cpu", "cpu.max")) == (str(64 << 20), "50", "50000 100000")
    else:
        assert (cgroup_file("memory", "memory.limit_in_bytes"), cgroup_file("pids", "pids.max"),
                cgroup_file("cpu", "cpu.cfs_quota_us")) == (str(64 << 20), "50", "50000")
    stats = d.ok("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", "lim")
    assert re.fullmatch(r"lim \S+ / 64MiB\n", stats), stats
    assert "sleep 1000" in d.ok("top", "lim")
    d.ok("rm", "-f", "lim")


def test_logs_follow_until_the_container_exits(dockerd):
    d = dockerd
    d.ok("run", "-d", "--name", "talk", "busybox", "sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done")
    assert d.ok("logs", "-f", "talk") == "line1\nline2\nline3\n"
    d.ok("rm", "talk")


def test_a_restart_policy_runs_the_container_again(dockerd):
    d = dockerd
    d.ok("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "echo run; exit 1")
    until(lambda: d.ok("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "flaky").split() == ["2", "exited"],
          "two restarts, then exited")
    assert d.ok("logs", "flaky").count("run") == 3
    d.ok("rm", "flaky")


COMPOSE = """\
version: "3"
services:
  db:
    image: localhost/debian-redis:latest
    command: ["sh", "-c", "redis-server --protected-mode no --dir /data & until redis-cli ping; do sleep 0.1; done;
              redis-cli set greeting 'hello from redis'; wait"]
    volumes: ["dbdata:/data"]
  web:
    build: ./web
    image: localhost/huskdemo-web:latest
    ports: ["127.0.0.1:18088:8080"]
    depends_on: [db]
    environment: {DB_HOST: db, DB_PORT: "6379", WEB_PORT: "8080"}
volumes:
  dbdata: {}
"""


@pytest.fixture(scope="module")
def debian_images(tmp_path_factory):
    """docker-archives of Debian minbase with gcc, and with redis-server
    (debootstrap, cached), for the classic builder and compose."""
    import debian_image

    base = tmp_path_factory.mktemp("debian-images")
    out = {}
    for name, make in (("localhost/debian-gcc:latest", debian_image.gcc_layout),
                       ("localhost/debian-redis:latest", debian_image.redis_layout)):
        layout = make(str(base / name.split("/")[1].split(":")[0]))
        out[name] = str(base / (name.split("/")[1].split(":")[0] + ".tar"))
        subprocess.run(["skopeo", "copy", "-q", f"oci:{layout}:latest", f"docker-archive:{out[name]}:{name}"],
                       check=True)
    return out


def test_classic_build_and_compose_up_of_a_web_service_and_its_database(dockerd, debian_images, tmp_path):
    """docker build's RUN (the classic builder) compiles the web service on
    the default runtime; compose starts it and a redis made from Debian's
    packages; the web service reaches the database by its service name and
    is reached on its published port; down -v leaves nothing."""
    from test_compose import WEB_C, WEB_DOCKERFILE

    d = dockerd
    for archive in debian_images.values():
        d.ok("load", "-q", "-i", archive)
    web = tmp_path / "web"
    web.mkdir()
    (web / "web.c").write_text(WEB_C)
    (web / "Dockerfile").write_text(WEB_DOCKERFILE)
    (tmp_path / "docker-compose.yml").write_text(COMPOSE)
    compose = ["docker-compose", "-f", str(tmp_path / "docker-compose.yml")]
    r = run([*compose, "up", "-d", "--build"], env=d.env(), timeout=600)
    assert r.returncode == 0, r.stderr
    get = [sys.executable, "-I", "-c", "import urllib.request; "
           "print(urllib.request.urlopen('http://127.0.0.1:18088/', timeout=5).read().decode(), end='')"]
    answer = until(lambda: (a := d.in_netns(*get)).returncode == 0 and a.stdout, "the web service answers")
    assert answer == "web says: hello from redis\n"
    ps = run([*compose, "ps"], env=d.env()).stdout
    assert ps.count(" Up ") == 2, ps
    assert "web: served a request, db said: hello from redis" in run([*compose, "logs", "web"], env=d.env()).stdout
    runtime = d.ok("inspect", "-f", "{{.HostConfig.Runtime}}", f"huskdemo{d.runtime}_web_1").strip()
    assert runtime == d.runtime
    r = run([*compose, "down", "-v"], env=d.env(), timeout=300)
    assert r.returncode == 0, r.stderr
    assert d.ok("ps", "-aq") == "" and "dbdata" not in d.ok("volume", "ls", "-q")
    left = os.path.join(d.exec_root, "runtime-husk", "moby")
    assert not (os.path.isdir(left) and os.listdir(left)), os.listdir(left)
    assert not [m for m in open("/proc/mounts") if m.split()[1].startswith(d.base) and "/merged" in m.split()[1]]
    parent = f"dockerd-test-{RUNTIMES.index(d.runtime)}"
    assert not [c for c in cgroups_named(parent) if os.path.basename(c) != parent]  # no container's cgroup
    assert not [p for p in ("redis-server", "/usr/local/bin/web") if run(["pgrep", "-f", p]).stdout]


def test_an_image_husk_builds_and_pushes_runs_after_docker_pull(dockerd, husk_env, layouts, tmp_path):
    """husk build -t R/app . && husk push R/app, then docker pull and run:
    the registry runs in dockerd's network namespace, and so does the push."""
    import registry as registries

    d, h = dockerd, husk_env
    workdir = tmp_path / "registry"
    workdir.mkdir()
    port = registries.free_port()
    config = workdir / "config.yml"
    config.write_text(registries.registry_config(str(workdir / "storage"), port))
    log = open(workdir / "registry.log", "w")
    reg = subprocess.Popen([*d.enter, "docker-registry", "serve", str(config)], stdout=log, stderr=log)
    try:
        until(lambda: d.in_netns(sys.executable, "-I", "-c", f"import socket; socket.create_connection("
                                 f"('127.0.0.1', {port}), 1)").returncode == 0, "the registry listens")
        h("load", "-q", "--name", "bb", "-i", layouts["busybox"], check=True)
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text('FROM bb\nRUN echo built by husk > /built\nCMD ["cat", "/built"]\n')
        image = f"127.0.0.1:{port}/app:1"
        h("build", "-q", "-t", image, str(ctx), check=True)
        r = run([*d.enter, h.husk_bin, "--root", h.state, "--storage-root", h.store, "push", image], env=h.env())
        assert r.returncode == 0 and r.stdout.startswith("1: digest: sha256:"), r.stderr
        d.ok("pull", "-q", image)
        assert d.ok("run", "--rm", image) == "built by husk\n"
        d.ok("rmi", image)
    finally:
        stop_daemon(reg)
        log.close()


def test_zz_times(dockerd):
    """The record: how long stop, kill and rm -f took (printed with -s)."""
    if dockerd.runtime == RUNTIMES[-1]:
        print("\n" + "\n".join(f"{what:22} " + "  ".join(f"{r} {t:.2f}s" for r, t in by.items())
                               for what, by in TIMES.items()), file=sys.stderr)
