"""husk's core: the OCI runtime.

config.json in, a running container out: `container` (create, start,
kill, delete, exec: open this first), `oci` (the spec, its defaults and
its translation into a plan), `process` (the plan's wire format and the
launch of husk-init), `cgroups` (v1, v2, hybrid), `linux` (syscalls through
cffi, seccomp, signals, rlimits), `errors`, `paths` and `state`.

Nothing here imports runtime.engine or runtime.cli (tests/unit/test_layers.py
checks it).
"""
