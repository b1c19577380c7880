"""husk's core: the OCI runtime.

config.json in, a plan out: `container` (the planner and the checks of
each verb: open this first), `oci` (the spec, its defaults and its
translation into a plan), `process` (the plan's wire format), `cgroups`
(v1, v2, hybrid), `linux` (syscalls through cffi, seccomp, signals,
rlimits), `errors` (the error kinds), `paths` (every path husk uses),
`recipe` (the C front end's plans) and `executor` (the way to the front
end, native/front, which carries out every step of the lifecycle).

Nothing here imports runtime.engine or runtime.cli (tests/unit/test_layers.py
checks it).
"""

# The modules runtime.engine and runtime.cli may import: the OCI runtime's
# verbs (container), its errors and paths, the recipe the C front end asks
# for and the way to the front end (executor), spec data, and the few
# host facts and syscalls the engine needs.  Everything else (the plan and
# its wire format, the cgroup managers and controllers, specconv,
# seccomp) is core's own.
PUBLIC = (
    "runtime.core",
    "runtime.core.container",
    "runtime.core.errors",
    "runtime.core.paths",
    "runtime.core.recipe",
    "runtime.core.executor",
    "runtime.core.oci.example",
    "runtime.core.oci.defaults",
    "runtime.core.oci.features",
    "runtime.core.oci.seccomp_profile",
    "runtime.core.oci.spec",
    "runtime.core.linux.syscalls",
    "runtime.core.linux.safeopen",
    "runtime.core.linux.signals",
    "runtime.core.linux.constants",  # the kernel's names: capabilities for `husk isolation`
    "runtime.core.cgroups.layout",
    "runtime.core.cgroups.systemd",  # is systemd the init: the engine's default cgroup manager
    "runtime.core.trace",  # --explain: the engine's own steps (the rootfs, the network)
    "runtime.core.explain",  # --explain: run a command with its steps recorded, and show them
)
