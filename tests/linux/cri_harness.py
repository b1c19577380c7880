"""kubelet's part, played by a test: containerd 1.6 with its CRI plugin,
two runtime handlers of type io.containerd.runc.v2 (`husk`, whose shim
runs the installed husk, and `runc` beside it as the control), CNI's
bridge, host-local, portmap and loopback plugins, and a gRPC client of
runtime.v1 made from tests/linux/cri/runtime_v1.proto at test time.

containerd and everything it makes (the CNI bridge, its iptables rules,
the pods' network namespaces, the streaming server on 127.0.0.1) live in
a network namespace the test made, entered with `nsenter --net` only, so
every other namespace (mounts, cgroups, /sys) is the host's as for a
real node.  Its root, state, socket and each handler's runtime root are
under the test's temporary directory."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time

from clients import HUSK, OCI_LAYOUT, containerd_config, run, stop_daemon
from tarbuild import Layout, entry, layer

HERE = os.path.dirname(os.path.abspath(__file__))
BUSYBOX = "docker.io/library/busybox:latest"
PODBOX = "localhost/husk-test/podbox:1"  # busybox + pause + checker
PAUSE = "localhost/husk-test/pause:1"
HANDLERS = ("runc", "husk")
CNI_BIN = "/usr/lib/cni"
SUBNET = "10.89.0.0/24"  # inside the test's network namespace only


def proto_modules(out: str):
    """runtime_v1_pb2 and runtime_v1_pb2_grpc, compiled into OUT."""
    from grpc_tools import protoc

    src = os.path.join(HERE, "cri")
    os.makedirs(out, exist_ok=True)
    code = protoc.main(["protoc", f"-I{src}", f"--python_out={out}", f"--grpc_python_out={out}",
                        os.path.join(src, "runtime_v1.proto")])
    if code != 0:
        raise RuntimeError("protoc failed on runtime_v1.proto")
    sys.path.insert(0, out)
    try:
        return importlib.import_module("runtime_v1_pb2"), importlib.import_module("runtime_v1_pb2_grpc")
    finally:
        sys.path.remove(out)


def pod_images(base: str) -> str:
    """An OCI archive of PODBOX and PAUSE: the busybox image with the
    test's pause program (built static here) and husk-checker."""
    from conftest import CHECKER

    pause = os.path.join(base, "pause")
    subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", pause, os.path.join(HERE, "cri", "pause.c")], check=True)
    with open(os.path.join(OCI_LAYOUT, "index.json")) as f:
        mdigest = json.load(f)["manifests"][0]["digest"]

    def blob(digest: str) -> bytes:
        with open(os.path.join(OCI_LAYOUT, "blobs", "sha256", digest[7:]), "rb") as f:
            return f.read()

    import gzip

    busybox = gzip.decompress(blob(json.loads(blob(mdigest))["layers"][0]["digest"]))
    with open(pause, "rb") as p, open(CHECKER, "rb") as c:
        tools = layer([entry("pause", data=p.read(), mode=0o755), entry("checker", data=c.read(), mode=0o755)])
    lay = Layout(os.path.join(base, "layout"))
    podbox, _ = lay.image([busybox, tools])
    lay.manifests.append(dict(podbox, annotations={"org.opencontainers.image.ref.name": PODBOX}))
    sandbox, _ = lay.image([tools], config={"Cmd": ["/pause"], "Entrypoint": None})
    lay.manifests.append(dict(sandbox, annotations={"org.opencontainers.image.ref.name": PAUSE}))
    lay.save()
    archive = os.path.join(base, "images.tar")
    with tarfile.open(archive, "w") as t:
        t.add(lay.path, arcname=".")
    return archive


class Containerd:
    def __init__(self, base: str, netns: str, handlers: dict[str, str] | None = None) -> None:
        """HANDLERS: runtime handler name -> the binary its shim runs (the
        test's: husk and runc; bench/client_bench.py adds crun)."""
        self.base = base
        self.netns = netns
        self.enter = ["nsenter", f"--net=/run/netns/{netns}"]
        self.sock = os.path.join(base, "containerd.sock")
        self.handlers = handlers or {"husk": HUSK, "runc": shutil.which("runc")}
        self.roots = {h: os.path.join(base, f"{h}-root") for h in self.handlers}
        self.config = os.path.join(base, "config.toml")
        self._write_config()
        self.pb, grpc_mod = proto_modules(os.path.join(base, "proto"))
        self.daemon = None
        self.start()
        try:
            import grpc

            self.channel = grpc.insecure_channel(f"unix://{self.sock}")
            self.rt = grpc_mod.RuntimeServiceStub(self.channel)
            run(["ctr", "-a", self.sock, "-n", "k8s.io", "images", "import", "--all-platforms",
                 pod_images(base)], check=True)
        except BaseException:
            self.stop()  # no one will close what was never returned
            raise

    def _write_config(self) -> None:
        cni = os.path.join(self.base, "cni")
        os.makedirs(cni, exist_ok=True)
        with open(os.path.join(cni, "10-husk-test.conflist"), "w") as f:
            json.dump({"cniVersion": "1.0.0", "name": "husk-cri-test", "plugins": [
                {"type": "bridge", "bridge": "cni-husk0", "isGateway": True, "ipMasq": True, "hairpinMode": True,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": SUBNET}]], "routes": [{"dst": "0.0.0.0/0"}],
                          "dataDir": os.path.join(self.base, "ipam")}},
                {"type": "portmap", "capabilities": {"portMappings": True}}]}, f)
        runtimes = "".join(f"""
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{h}]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{h}.options]
        BinaryName = "{binary}"
        Root = "{self.roots[h]}"
""" for h, binary in self.handlers.items())
        with open(self.config, "w") as f:
            f.write(containerd_config(self.base, self.sock, cri=True) + f"""[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE}"
  # Root on this machine lacks CAP_SYS_RESOURCE: oomScoreAdj below the
  # caller's own would fail every sandbox, under runc as under husk.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{cni}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
{runtimes}""")

    def start(self) -> None:
        self.log = open(os.path.join(self.base, "containerd.log"), "a")
        self.daemon = subprocess.Popen([*self.enter, "containerd", "--config", self.config],
                                       stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        while not self._serving():
            if time.monotonic() > deadline or self.daemon.poll() is not None:
                raise RuntimeError(f"containerd did not start: see {self.base}/containerd.log")
            time.sleep(0.1)

    def _serving(self) -> bool:
        return os.path.exists(self.sock) and run(["ctr", "-a", self.sock, "version"]).returncode == 0

    def stop(self) -> None:
        """Stop containerd itself (its shims and the pods stay, as on a node)."""
        stop_daemon(self.daemon)
        self.log.close()
        with contextlib.suppress(OSError):
            os.unlink(self.sock)

    def restart(self) -> None:
        self.stop()
        self.start()

    # kubelet's calls, with the shapes kubelet gives them

    def pod_config(self, name: str, *, pid: str = "CONTAINER", hostname: str | None = None):
        pb = self.pb
        uid = f"{name}-uid"
        return pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=uid, namespace="default", attempt=0),
            hostname=hostname or name, log_directory=os.path.join(self.base, "pods", uid),
            dns_config=pb.DNSConfig(servers=["127.0.0.53"]),
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=f"/husk-cri-test/pod{uid}",
                security_context=pb.LinuxSandboxSecurityContext(namespace_options=pb.NamespaceOption(
                    network=pb.POD, pid=getattr(pb, pid), ipc=pb.POD))))

    def run_pod(self, handler: str, name: str, **kw):
        config = self.pod_config(name, **kw)
        os.makedirs(config.log_directory, exist_ok=True)
        pod = self.rt.RunPodSandbox(self.pb.RunPodSandboxRequest(config=config, runtime_handler=handler),
                                    timeout=120).pod_sandbox_id
        return pod, config

    def create(self, pod: str, pod_config, name: str, args: list[str], *, image: str = PODBOX,
               resources=None, tty: bool = False, stdin: bool = False) -> str:
        pb = self.pb
        config = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=image), command=args[:1],
            args=args[1:], log_path=f"{name}.log", tty=tty, stdin=stdin,
            linux=pb.LinuxContainerConfig(
                resources=resources or pb.LinuxContainerResources(),
                security_context=pb.LinuxContainerSecurityContext(
                    namespace_options=pod_config.linux.security_context.namespace_options)))
        return self.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod, config=config,
                                                                 sandbox_config=pod_config),
                                       timeout=120).container_id

    def start_container(self, cid: str) -> None:
        self.rt.StartContainer(self.pb.StartContainerRequest(container_id=cid), timeout=120)

    def run_container(self, pod: str, pod_config, name: str, args: list[str], **kw) -> str:
        cid = self.create(pod, pod_config, name, args, **kw)
        self.start_container(cid)
        return cid

    def status(self, cid: str):
        return self.rt.ContainerStatus(self.pb.ContainerStatusRequest(container_id=cid), timeout=60).status

    def exec_sync(self, cid: str, cmd: list[str], timeout: int = 30):
        return self.rt.ExecSync(self.pb.ExecSyncRequest(container_id=cid, cmd=cmd, timeout=timeout),
                                timeout=timeout + 30)

    def remove_pod(self, pod: str, timeout: float = 120) -> None:
        self.rt.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=timeout)
        self.rt.RemovePodSandbox(self.pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=timeout)

    def shim_pid(self, cid: str) -> int:
        """The init pid of a container, as its shim's runtime recorded it."""
        return json.loads(self.rt.ContainerStatus(self.pb.ContainerStatusRequest(container_id=cid, verbose=True),
                                                  timeout=60).info["info"])["pid"]

    def close(self) -> None:
        self.channel.close()
        self.stop()


def clean_up(base: str, netns_before: set[str], cgroup_top: str = "husk-cri-test") -> list[str]:
    """After containerd has stopped: whatever a failed run of the test may
    have left is removed (shims and pod processes, mounts under BASE, the
    pods' network namespaces, the pod cgroups kubelet would remove);
    returns what there was, for the test to report."""
    from clients import cgroups_named, processes_with

    left = []
    for pid in processes_with(f"{base}/containerd.sock") + _pids_in_cgroups(cgroup_top):  # shims, pods
        left.append(f"process {pid}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    mounts = [m.split()[1] for m in open("/proc/mounts") if m.split()[1].startswith(base + "/")]
    for target in reversed(mounts):
        left.append(f"mount {target}")
        subprocess.run(["umount", "-l", target], check=False)
    for name in set(os.listdir("/run/netns")) - netns_before:
        if name.startswith("cni-"):
            left.append(f"netns {name}")
            subprocess.run(["umount", "-l", f"/run/netns/{name}"], check=False)
            with contextlib.suppress(OSError):
                os.unlink(f"/run/netns/{name}")
    for top in cgroups_named(cgroup_top):
        if os.path.basename(top) != cgroup_top:
            continue
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            for _ in range(50):  # the killed processes leave the cgroup as they exit
                try:
                    os.rmdir(dirpath)
                    break
                except OSError:
                    time.sleep(0.02)
    return left


def _pids_in_cgroups(top: str) -> list[int]:
    from clients import cgroups_named

    pids = set()
    for d in cgroups_named(top):
        for dirpath, _, files in os.walk(d):
            if "cgroup.procs" in files:
                with contextlib.suppress(OSError):
                    pids |= {int(p) for p in open(os.path.join(dirpath, "cgroup.procs")).read().split()}
    return sorted(pids)

