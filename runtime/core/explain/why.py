"""What each step --explain records protects against, or why it is there:
one line a newcomer can read, keyed by the step's stable name (the
second argument of TRACE in native/, of trace.step in Python).

A namespace step is explained by the kind of namespace its call names.
"""

from __future__ import annotations

NAMESPACES = {
    "CLONE_NEWUSER": "a new user namespace: root inside maps to an unprivileged uid outside, so its privileges "
                     "end at the namespace's edge",
    "CLONE_NEWPID": "a new PID namespace: the process is PID 1 there and cannot see or signal the host's processes",
    "CLONE_NEWNS": "a new mount namespace: mounts made from here on are the container's alone; the host's mount "
                   "table is untouched",
    "CLONE_NEWNET": "a new network namespace: its own interfaces, routes and firewall (only loopback until it is "
                    "given one); the host's network is out of reach",
    "CLONE_NEWUTS": "a new UTS namespace: its own hostname and domain name",
    "CLONE_NEWIPC": "a new IPC namespace: its own System V IPC objects and POSIX message queues, no shared memory "
                    "with the host",
    "CLONE_NEWCGROUP": "a new cgroup namespace: /proc/self/cgroup and /sys/fs/cgroup show the container's cgroup "
                       "as the root, hiding the host's tree",
    "CLONE_NEWTIME": "a new time namespace: its own offsets for the monotonic and boot-time clocks",
}

STEPS = {
    # planning (Python, only when no recipe fits)
    "compile": "no plan is cached for this config's shape: the front end asks Python to plan it (--explain always "
               "plans afresh, so you see this)",
    "recipe_hit": "a plan made earlier for a config of the same shape is reused; only this container's own values "
                  "are filled in",
    "config": "the OCI bundle's config.json is the whole request: what to isolate, and how",
    "namespaces": "which namespaces the process gets of its own, and which it joins (a pod's, another container's)",
    "cgroup": "where in the cgroup tree the container's limits will live",
    "spec": "the config becomes exact syscall arguments, all checked before anything is made: a bad field fails "
            "here, with nothing to undo",
    "exec_plan": "an exec joins the container's existing namespaces and cgroup, and gets the same confinement "
                 "(capabilities, seccomp, no_new_privs) planned from its process description",
    "recipe": "the plan for this shape is kept, so the next container like it starts without Python",
    # the engine (husk run IMAGE)
    "overlay": "overlayfs stacks the image's read-only layers under a writable upper directory: containers share "
               "the layers, and every write stays in this container's own upper directory",
    "network": "a veth pair: one end becomes the container's eth0 inside its network namespace, the other joins "
               "husk's bridge on the host",
    "bundle": "the engine writes an OCI bundle (config.json) and runs it exactly as podman or containerd would",
    # the front end
    "state": "write-ahead: husk records what it is about to make before it makes it, so a crash leaves nothing "
             "`husk delete` cannot find",
    "cgroup_mkdir": "a control group of its own: the kernel accounts and limits the container's processes together, "
                    "and delete can find every one of them",
    "cgroup_write": "a limit the kernel enforces on every process in the cgroup: a runaway container cannot starve "
                    "the host",
    "systemd_unit": "systemd owns the cgroup tree here: the container's cgroup is a scope unit systemd knows, so "
                    "systemd neither moves nor kills it",
    "exec_fifo": "create and start are two steps (OCI): the process waits, fully isolated, until `husk start` opens "
                 "the exec fifo",
    "sealed_copy": "husk-init runs from a sealed in-memory copy: a container process that reaches /proc/PID/exe "
                   "cannot overwrite the runtime's binary on the host (CVE-2019-5736)",
    "spawn": "husk-init, a small static C program, does everything from clone to execve: no Python runs in a "
             "container process",
    "plan_sent": "the whole plan is decided before anything runs: husk-init only carries it out",
    "start": "`husk start` opened the exec fifo: the waiting process goes on to execve",
    "kill": "delete kills whatever is left in the container's cgroup: nothing it started outlives it",
    "cgroup_rmdir": "the container's cgroups are removed: no limit or accounting of it stays behind",
    "state_removed": "the container's state directory is removed: it is gone",
    # husk-init, stage 0 (still in the host's namespaces)
    "husk-init": "husk-init starts, from the sealed copy",
    "plan": "husk-init reads the plan and checks every record against the protocol's one table "
            "(native/include/husk_proto.def)",
    "oom_score_adj": "the OOM killer's preference for the container, set while /proc is still the host's; the "
                     "container inherits it",
    "dumpable": "non-dumpable until execve: a container process can neither ptrace husk-init nor open its "
                "/proc/PID/exe, mem or fds (CVE-2019-5736)",
    "device_program": "cgroup v2 has no devices.allow file: an eBPF program on the cgroup decides every open and "
                      "mknod of a device node",
    "setns": "joins an existing namespace (a pod's network, another container's IPC): the process shares exactly "
             "that view with its owner",
    "clone": "one clone(2) makes the process inside all its new namespaces at once; CLONE_PARENT makes it husk's "
             "child, so husk-init's first stage can exit",
    "uid_map": "only a process outside a user namespace may write its id maps: they decide which host uids the "
               "container's uids are",
    "gid_map": "the group ids' map, written (like uid_map) from outside the new user namespace",
    "go": "the container init waits on a pipe until its pid is reported and its id maps written: it never runs "
          "unaccounted for or unmapped",
    # the container init (in the new namespaces)
    "init": "the container's first process: in its new namespaces, still running husk-init's code",
    "hostname": "set inside the new UTS namespace: the host's own name does not change",
    "propagation": "the new mount namespace starts as a copy of the host's; rslave stops mounts made in the "
                   "container from propagating back to the host",
    "rootfs": "pivot_root needs the new root to be a mount point: the rootfs is bind-mounted on itself",
    "mount": "made on a detached tree and attached with move_mount onto an fd resolved inside the rootfs: a symlink "
             "planted in the image cannot redirect it onto the host",
    "remount": "a remount changes a mount's flags (read-only, nosuid, ...) in place",
    "device": "device nodes are made one by one: the container sees only the devices the config allows, not the "
              "host's /dev",
    "symlink": "the /dev links programs expect (fd, stdin, stdout, stderr, ptmx)",
    "hooks": "the runtime's hooks (prestart, createRuntime) run now, on the host, with the container's state",
    "hook": "a hook the config asked for: a program run at a fixed point of the lifecycle (network setup, GPUs, ...)",
    "sysctl": "a namespaced kernel setting, written through the container's own /proc (checked to be procfs): it "
              "changes the container's namespace only",
    "readonly": "a read-only bind over the path: the container can read it but not change the kernel through it",
    "masked": "masked: /dev/null over a file, an empty tmpfs over a directory, so kernel information there "
              "(/proc/kcore, /sys/firmware, ...) cannot be read",
    "root_readonly": "the root filesystem is read-only: the image cannot be changed from inside",
    "pivot_root": "pivot_root: the rootfs becomes /, the old root (the host's whole tree) is stacked beneath it",
    "umount_old_root": "the old root is detached: `..` and absolute paths can no longer reach the host's files",
    "chroot": "--no-pivot: the rootfs is moved to / and chrooted into; weaker than pivot_root (the host's root "
              "stays in the mount namespace)",
    "setsid": "a session of its own: the container cannot reach the caller's controlling terminal (no TIOCSTI into "
              "the host's shell)",
    "terminal": "the container's own pty, from its own devpts; the master goes to the caller over the console "
                "socket",
    "keyring": "a session keyring of its own: keys stored in the caller's keyring (credentials, tokens) are out of "
               "reach",
    "personality": "the execution domain the config asks for (linux32, ...)",
    "rlimit": "a resource limit of the process (open files, processes, core size), inherited by all it runs",
    "close_fds": "every fd above the ones the process is meant to get closes at execve: no host file, directory or "
                 "socket leaks in (CVE-2024-21626)",
    "signals": "default signal dispositions and an empty mask, whatever husk's caller had set",
    "apparmor": "the AppArmor profile the kernel switches to at execve: mandatory access control on files, mounts "
                "and capabilities",
    "cwd": "the working directory, checked to be inside the container's root: a cwd through a leaked host fd is "
           "refused (CVE-2024-21626)",
    "seccomp": "a seccomp BPF filter: the kernel checks every system call against it, and those not allowed fail or "
               "kill; far less of the kernel is reachable",
    "caps_before": "the capabilities husk-init holds before it drops them: all of root's",
    "bounding": "the bounding set caps what the process, and anything it execs, can ever gain, even through setuid "
                "binaries or file capabilities",
    "setgroups": "supplementary groups: only those the config names",
    "setgid": "the container's group id (real, effective and saved alike)",
    "setuid": "the container's user id (real, effective and saved alike)",
    "capset": "the effective, permitted and inheritable sets: what the process may use now",
    "ambient": "ambient capabilities survive execve for a program run by a non-root user",
    "caps_after": "what is left: the capabilities the container's process runs with",
    "no_new_privs": "no_new_privs: execve can never grant more privileges (setuid bits and file capabilities are "
                    "ignored)",
    "umask": "the file creation mask the process starts with",
    "ready": "everything is in place: husk-init reports READY",
    "execve": "husk-init becomes the container's program: the close-on-exec fds close, and the program runs with "
              "everything above in force",
}


def why(step: str, call: str) -> str:
    """The line for a step, or "" for one this table does not know."""
    if step == "cgroup_write" and "cgroup.procs" in call:
        return ("husk-init joins the cgroup before it forks the container: the container is born inside its "
                "limits, never a moment outside them")
    if step == "namespace":
        for flag, text in NAMESPACES.items():
            if flag in call:
                return text
    return STEPS.get(step, "")
