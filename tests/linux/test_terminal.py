"""process.terminal: the pty master goes to --console-socket (conmon,
containerd); `husk run` without one proxies the pty itself."""

import array
import os
import socket
import threading

import pytest

pytestmark = pytest.mark.root


class ConsoleListener:
    """What conmon does: listen, receive the master over SCM_RIGHTS."""

    def __init__(self, path):
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)
        self.master = None
        self.name = b""
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        conn, _ = self.server.accept()
        fds = array.array("i")
        msg, anc, _, _ = conn.recvmsg(1024, socket.CMSG_SPACE(fds.itemsize))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:fds.itemsize])
        self.name = msg
        self.master = fds[0] if fds else None
        conn.close()

    def read_all(self):
        chunks = []
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks).decode()

    def close(self):
        self.server.close()
        if self.master is not None:
            os.close(self.master)


def test_console_socket_gets_the_pty(bundle, tmp_path):
    listener = ConsoleListener(str(tmp_path / "console.sock"))
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["args"] = ["/checker", "report"]
    bundle.save()
    try:
        bundle.husk("create", "--bundle", bundle.path, "--console-socket", listener.path, "c1", check=True)
        listener.thread.join(10)
        assert listener.master is not None, "no pty master received"
        bundle.husk("start", "c1", check=True)
        out = listener.read_all()
        import json
        seen = json.loads(out[out.index("{"):])
        assert seen["tty"] == [1, 1, 1]
        assert seen["ttyname"].startswith("/dev/pts/")
        assert seen["sid"] == seen["pid"]
    finally:
        listener.close()
        bundle.husk("delete", "--force", "c1")


def test_terminal_without_console_socket_is_refused_by_create(bundle):
    bundle.config["process"]["terminal"] = True
    bundle.save()
    r = bundle.husk("create", "--bundle", bundle.path, "c1")
    assert r.code != 0 and "--console-socket" in r.err


def test_console_socket_without_terminal_is_refused(bundle, tmp_path):
    r = bundle.husk("create", "--bundle", bundle.path, "--console-socket", str(tmp_path / "x.sock"), "c1")
    assert r.code != 0 and "terminal is false" in r.err


def test_run_with_terminal_proxies_the_pty(bundle):
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["args"] = ["sh", "-c", "tty; exit 3"]
    r = bundle.run()
    assert r.code == 3, r.err
    assert r.out.strip().startswith("/dev/pts/")


def test_without_terminal_stdio_is_the_callers(bundle):
    r = bundle.run("/checker", "report")
    seen = r.json()
    assert seen["tty"] == [0, 0, 0]
    assert [f["fd"] for f in seen["fds"]] == [0, 1, 2]


def test_stdin_reaches_the_process(bundle):
    r = bundle.run("cat", input="piped input\n")
    assert r.out == "piped input\n"
