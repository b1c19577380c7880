"""The Dockerfile + compose workflow through the real tools, with husk as
the OCI runtime underneath: `podman build` of a web service whose RUN
compiles a C program with gcc (in a Debian image built here from Debian's
packages), then Debian's docker-compose 1.29 against `podman system
service` on a unix socket, for a web service and a database service.

What is read back: the host reaches the web service on 127.0.0.1 through
its published port; the web service reaches the database by its service
name (podman's netavark + aardvark-dns); `docker-compose logs` holds what
both wrote; `docker-compose down` leaves no container, husk state,
cgroup, process, network namespace or firewall rule of theirs.

podman, its service and docker-compose all run in a network namespace the
test makes: netavark's bridge, its iptables rules and aardvark-dns live
there and go with it, so the host's firewall is never touched (the test
checks that it is unchanged).  Traffic stays inside that namespace: its
127.0.0.1 and the compose network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest
from clients import OCI_LAYOUT, cgroups_named, husk_containers, processes_with, run

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(not (shutil.which("podman") and shutil.which("docker-compose")
                                      and os.path.exists("/usr/lib/podman/netavark")),
                                 reason="needs Debian's podman, netavark and docker-compose")]

WEB_C = r"""
/* The web service: answers every HTTP request with what the database
   holds under "greeting", asked over TCP by the database's service name
   (a line, or redis's answer to its inline GET). */
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void ask_db(const char *host, const char *port, char *out, size_t n) {
    struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *ai;
    int err = getaddrinfo(host, port, &hints, &ai);
    if (err) { snprintf(out, n, "cannot resolve %s: %s", host, gai_strerror(err)); return; }
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        snprintf(out, n, "cannot reach %s", host);
    } else {
        dprintf(fd, "GET greeting\n");  /* also redis's inline command */
        ssize_t r = read(fd, out, n - 1);
        out[r > 0 ? r : 0] = 0;
        char *text = out;
        if (text[0] == '$' && strstr(text, "\r\n"))  /* redis's bulk reply: $LENGTH, then the value */
            text = strstr(text, "\r\n") + 2;
        text[strcspn(text, "\r\n")] = 0;
        memmove(out, text, strlen(text) + 1);
    }
    freeaddrinfo(ai);
    if (fd >= 0) close(fd);
}

int main(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(getenv("WEB_PORT"))) };
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, (struct sockaddr *) &a, sizeof a) < 0 || listen(s, 16) < 0) { perror("listen"); return 1; }
    printf("web: listening on %s\n", getenv("WEB_PORT"));
    fflush(stdout);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        char req[4096], answer[256];
        if (read(c, req, sizeof req) > 0) {
            ask_db(getenv("DB_HOST"), getenv("DB_PORT"), answer, sizeof answer);
            dprintf(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nweb says: %s\n", answer);
            printf("web: served a request, db said: %s\n", answer);
            fflush(stdout);
        }
        close(c);
    }
}
"""

WEB_DOCKERFILE = """\
FROM localhost/debian-gcc:latest
WORKDIR /src
COPY web.c ./
RUN gcc -O2 -Wall -o /usr/local/bin/web web.c && rm web.c
ENV DB_HOST=db \\
    DB_PORT=6379 \\
    WEB_PORT=8080
EXPOSE 8080
CMD ["web"]
"""

# The database: busybox nc serving one key lookup per connection.
DB_SH = """\
#!/bin/sh
read verb key
case "$key" in *[!a-z]*|"") echo "(bad key)"; exit 0;; esac
cat "/data/$key" 2>/dev/null || echo "(no $key)"
echo "db: $verb $key" >&2
"""

DB_DOCKERFILE = """\
FROM localhost/busybox:latest
COPY db.sh /usr/local/bin/db.sh
RUN chmod 0755 /usr/local/bin/db.sh && mkdir /data && echo "hello from the db" > /data/greeting
EXPOSE 6379
CMD ["nc", "-ll", "-p", "6379", "-e", "/usr/local/bin/db.sh"]
"""

COMPOSE = """\
version: "3"
services:
  db:
    image: localhost/husk-db:latest
  web:
    image: localhost/husk-web:latest
    ports:
      - "127.0.0.1:{port}:8080"
    depends_on:
      - db
"""


def context(base: str, name: str, dockerfile: str, **files: str) -> str:
    d = os.path.join(base, name)
    os.makedirs(d)
    for fname, text in {"Dockerfile": dockerfile, **files}.items():
        with open(os.path.join(d, fname), "w") as f:
            f.write(text)
    return d


def firewall_rules() -> str:
    """The host's whole ruleset, read only (netavark writes iptables rules,
    which iptables-nft keeps in nftables)."""
    return subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout


# GET / on 127.0.0.1:PORT of the test's namespace, retried while the service starts.
HTTP_GET = """
import socket, sys, time
deadline = time.monotonic() + 60
while True:
    try:
        with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            if data:
                sys.stdout.write(data.decode())
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("nothing answered")
    time.sleep(0.2)
"""


class Compose:
    """podman (husk as its runtime, netavark networks kept in the test's
    own directories) serving docker's API on a unix socket."""

    def __init__(self, base: str, netns: str):
        from test_podman import Podman

        self.base = base
        # nsenter --net switches only the network namespace: podman's mounts
        # stay in the host's mount namespace, where every podman call sees them.
        self.enter = ["nsenter", f"--net=/run/netns/{netns}"]
        self.podman = Podman(base, extra_conf=f"""[network]
network_backend = "netavark"
network_config_dir = "{base}/networks"
""", netns="bridge", wrapper=self.enter)
        self.sock = os.path.join(base, "podman.sock")
        self.service = None
        self.project = os.path.join(base, "project")
        os.makedirs(self.project)

    def start_service(self) -> None:
        self.service = subprocess.Popen(self.podman.base + ["system", "service", "--time", "0", f"unix://{self.sock}"],
                                        env=self.podman.env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.sock):
            assert self.service.poll() is None, self.service.stderr.read().decode()
            assert time.monotonic() < deadline, "podman system service did not make its socket"
            time.sleep(0.1)

    def stop_service(self) -> None:
        if self.service is not None:
            self.service.terminate()
            try:
                self.service.wait(30)
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait()
            self.service.stderr.close()

    def __call__(self, *args: str, **kw) -> subprocess.CompletedProcess:
        env = dict(os.environ, DOCKER_HOST=f"unix://{self.sock}", COMPOSE_PROJECT_NAME="huskdemo",
                   COMPOSE_INTERACTIVE_NO_CLI="1")
        return run(self.enter + ["docker-compose", "--ansi", "never", *args], env=env, cwd=self.project, **kw)

    def http_get(self, port: int) -> str:
        r = run(self.enter + [sys.executable, "-I", "-c", HTTP_GET, str(port)], timeout=90)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def ok(self, *args: str) -> str:
        r = self(*args)
        assert r.returncode == 0, f"docker-compose {' '.join(args)}: {r.stdout}{r.stderr}"
        return r.stdout


@pytest.fixture(scope="module")
def compose(tmp_path_factory):
    import debian_image
    from test_podman import remove_conmon_cgroups

    gcc = debian_image.gcc_layout(str(tmp_path_factory.mktemp("gcc") / "layout"))
    base = tempfile.mkdtemp(prefix="hcp", dir="/tmp")  # podman wants a runroot under 50 characters
    netns = os.path.basename(base)
    subprocess.run(["ip", "netns", "add", netns], check=True)
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
    rules = firewall_rules()
    c = Compose(base, netns)
    try:
        pm = c.podman
        pm.ok("tag", pm.ok("pull", "-q", f"oci:{OCI_LAYOUT}:latest").strip(), "localhost/busybox:latest")
        pm.ok("tag", pm.ok("pull", "-q", f"oci:{gcc}:latest").strip(), "localhost/debian-gcc:latest")
        c.start_service()
        yield c
    finally:
        c("down", "--remove-orphans", "-t", "2")
        c.stop_service()
        c.podman("rm", "-a", "-f")
        c.podman("network", "prune", "-f")
        c.podman("system", "reset", "-f")
        subprocess.run(["umount", "-R", os.path.join(base, "storage")], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        remove_conmon_cgroups()
        left = processes_in_netns(netns)  # aardvark-dns, should netavark not have stopped it
        for pid in left:
            os.kill(pid, 9)
        subprocess.run(["ip", "netns", "del", netns], check=True)
        assert not left, f"left running in the test's namespace: {left}"
        assert firewall_rules() == rules, "the host's firewall changed"


def processes_in_netns(netns: str) -> list[int]:
    ns = os.stat(f"/run/netns/{netns}")
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            st = os.stat(f"/proc/{pid}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (ns.st_dev, ns.st_ino):
            pids.append(int(pid))
    return pids


def build(c: Compose, tag: str, ctx: str) -> None:
    r = c.podman("build", "-t", tag, ctx, timeout=600)
    assert r.returncode == 0, f"podman build {tag}: {r.stdout}{r.stderr}"


def test_podman_build_compiles_in_a_husk_container(compose, tmp_path):
    ctx = context(str(tmp_path), "web", WEB_DOCKERFILE, **{"web.c": WEB_C})
    build(compose, "localhost/husk-web:latest", ctx)
    cfg = json.loads(compose.podman.ok("image", "inspect", "localhost/husk-web:latest"))[0]["Config"]
    assert cfg["Cmd"] == ["web"] and cfg["WorkingDir"] == "/src" and "8080/tcp" in cfg["ExposedPorts"]
    assert {"DB_HOST=db", "DB_PORT=6379", "WEB_PORT=8080"} <= set(cfg["Env"])
    # The RUN's product is in the image: an ELF that gcc made, and the source is gone.
    r = compose.podman("run", "--rm", "--pull", "never", "--network", "none", "localhost/husk-web:latest",
                       "sh", "-c", "head -c 4 /usr/local/bin/web | od -c | head -1; ls /src | wc -l")
    assert r.returncode == 0, r.stderr
    assert "E   L   F" in r.stdout and r.stdout.split()[-1] == "0"

    ctx = context(str(tmp_path), "db", DB_DOCKERFILE, **{"db.sh": DB_SH})
    build(compose, "localhost/husk-db:latest", ctx)


def test_compose_up_reaches_web_and_db_then_down_leaves_nothing(compose):
    if compose.podman("image", "exists", "localhost/husk-web:latest").returncode != 0:
        pytest.skip("the images come from test_podman_build_compiles_in_a_husk_container")
    port = 18080  # the test's own network namespace: every port is free
    with open(os.path.join(compose.project, "docker-compose.yml"), "w") as f:
        f.write(COMPOSE.format(port=port))
    compose.ok("up", "-d")
    ids = compose.ok("ps", "-q").split()
    assert len(ids) == 2
    # Both run under husk: podman's containers are husk's, in husk's state directory.
    assert all(any(s.startswith(i[:12]) for s in husk_containers()) for i in ids)
    ps = compose.ok("ps")
    assert "huskdemo_web_1" in ps and "huskdemo_db_1" in ps and ps.count(" Up ") == 2, ps

    # Host -> web on 127.0.0.1; web -> db by its service name.
    body = compose.http_get(port)
    assert body.startswith("HTTP/1.0 200 OK") and "web says: hello from the db" in body, body
    logs = compose.ok("logs", "--no-color")
    assert "web: listening on 8080" in logs and "web: served a request, db said: hello from the db" in logs, logs
    assert "db: GET greeting" in logs, logs

    compose.ok("down", "-t", "2")
    assert compose.ok("ps", "-q").split() == []
    assert compose.podman.ok("ps", "-a", "-q").split() == []
    assert "huskdemo_default" not in compose.podman.ok("network", "ls")
    deadline = time.monotonic() + 10
    while True:
        left = ([f"husk state {s}" for s in husk_containers() if any(s.startswith(i[:12]) for i in ids)]
                + [f"cgroup {g}" for i in ids for g in cgroups_named(i)]
                + [f"process {p}" for i in ids for p in processes_with(i)])
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not left, left
