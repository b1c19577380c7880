"""Every place on disk husk reads or writes, in one module.

Host-wide:
    /run/husk                 OCI state root (--root): <id>/state.json, the
                              exec fifo, the container's flock
    /run/husk-plans           recipes the C front end caches (native/front/create.c
                              spells the same path: it is built without Python)
    /run/husk-network         ip_forward saved before husk set it, the nft lock,
                              netns/<store key>/<id> (bind mounts that keep a
                              container's network namespace alive)
    /var/lib/husk             the image store (--storage-root)
Inside the package:
    runtime/_bin/husk-init    the C helper (built from native/ by setup.py)
    runtime/_bin/husk-monitor the parent of a detached image container (native/monitor)
    runtime/_bin/husk-checker the test checker
Inside a store (StoreLayout):
    blobs/sha256/<hex>        content-addressed blobs
    layers/sha256/<diffid>    unpacked layers (overlay lower dirs)
    containers/<id>/          container.json, config.json, rootfs, upper/work; for a
                              detached one the monitor's container.log, monitor.pid, exit.json
    gc.lock                   flock: shared while content is added, exclusive to collect
    networks/<name>.json      networks; networks/<name>/ips/<address>
    volumes/<name>/           volume.json and _data, bind-mounted into containers (-v NAME:/DIR)
    tmp/                      staging for pulls and unpacks
    images.json               names -> manifests
"""

from __future__ import annotations

import os
from dataclasses import dataclass

STATE_ROOT = "/run/husk"
PLAN_CACHE = "/run/husk-plans"
NETWORK_RUN = "/run/husk-network"
NETNS_BASE = os.path.join(NETWORK_RUN, "netns")
SAVED_IP_FORWARD = os.path.join(NETWORK_RUN, "ip_forward.saved")
NFT_LOCK = os.path.join(NETWORK_RUN, "nft.lock")
STORE_ROOT = "/var/lib/husk"
STORE_ENV = "HUSK_STORAGE_ROOT"

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELPER = os.path.join(PACKAGE, "_bin", "husk-init")
CHECKER = os.path.join(PACKAGE, "_bin", "husk-checker")
MONITOR = os.path.join(PACKAGE, "_bin", "husk-monitor")


# Inside a container's state directory (<STATE_ROOT>/<id>/).
STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"


def default_store_root() -> str:
    return os.environ.get(STORE_ENV) or STORE_ROOT


@dataclass(frozen=True)
class StoreLayout:
    """The directories and files of one image store."""

    root: str

    @property
    def blobs(self) -> str:
        return os.path.join(self.root, "blobs")

    @property
    def layers(self) -> str:
        return os.path.join(self.root, "layers")

    @property
    def containers(self) -> str:
        return os.path.join(self.root, "containers")

    @property
    def networks(self) -> str:
        return os.path.join(self.root, "networks")

    @property
    def volumes(self) -> str:
        """Named volumes: volumes/<name>/volume.json and its _data directory."""
        return os.path.join(self.root, "volumes")

    @property
    def tmp(self) -> str:
        return os.path.join(self.root, "tmp")

    @property
    def names_file(self) -> str:
        return os.path.join(self.root, "images.json")

    @property
    def gc_lock(self) -> str:
        return os.path.join(self.root, "gc.lock")

    def container(self, cid: str) -> str:
        return os.path.join(self.containers, cid)

    def container_record(self, cid: str) -> str:
        """container.json: what `husk run IMAGE` made, for rm, containers and prune."""
        return os.path.join(self.containers, cid, "container.json")

    def container_log(self, cid: str) -> str:
        """A detached container's stdout and stderr (k8s-file records); the
        monitor renames a full one to container.log.1."""
        return os.path.join(self.containers, cid, "container.log")

    def monitor_pid(self, cid: str) -> str:
        """The monitor's "PID STARTTIME", written by husk-monitor itself."""
        return os.path.join(self.containers, cid, "monitor.pid")

    def exit_file(self, cid: str) -> str:
        """{"exit_code", "finished_at"} of the container's last run, by its monitor."""
        return os.path.join(self.containers, cid, "exit.json")
