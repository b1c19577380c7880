/* husk_proto.h - the wire format between husk (Python) and husk-init (C).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Python turns config.json into a fully resolved plan and writes it to
 * husk-init over a socketpair as a stream of records:
 *
 *     u32 tag | u32 length | length bytes of value
 *
 * in host byte order, ending with PLAN_END.  Integers are 8-byte signed;
 * strings carry no terminating NUL.  A record that describes one item of
 * a list (a mount, a device, a hook) starts with its *_BEGIN tag; the
 * records that follow fill that item.  runtime/process/protocol.py mirrors
 * this file: change both together.
 *
 * husk-init answers with records of the same shape (MSG_*).
 */
#ifndef HUSK_PROTO_H
#define HUSK_PROTO_H

enum husk_plan_tag
{
  PLAN_END = 0,
  PLAN_MODE = 1,             /* int: HUSK_MODE_CREATE or HUSK_MODE_EXEC */
  PLAN_CLONE_FLAGS = 2,      /* int: CLONE_NEW* for namespaces to create */
  PLAN_NS_JOIN_TYPE = 3,     /* int: CLONE_NEW* of the namespace to join... */
  PLAN_NS_JOIN_PATH = 4,     /* str: ...and its path (follows the type) */
  PLAN_UID_MAP = 5,          /* str: uid_map contents */
  PLAN_GID_MAP = 6,          /* str: gid_map contents */
  PLAN_TIMENS_OFFSETS = 7,   /* str: timens_offsets contents */
  PLAN_ROOTFS = 8,           /* str: absolute host path of the rootfs */
  PLAN_ROOTFS_PROPAGATION = 9, /* int: MS_* propagation for "/" */
  PLAN_ROOT_READONLY = 10,   /* int: 1 = remount / read-only */
  PLAN_NO_PIVOT = 11,        /* int: 1 = MS_MOVE + chroot instead of pivot_root */
  PLAN_HOSTNAME = 12,        /* str */
  PLAN_DOMAINNAME = 13,      /* str */
  PLAN_MOUNT_BEGIN = 20,     /* (empty) a new mount follows */
  PLAN_MOUNT_SOURCE = 21,    /* str */
  PLAN_MOUNT_DEST = 22,      /* str: absolute path inside the rootfs */
  PLAN_MOUNT_TYPE = 23,      /* str */
  PLAN_MOUNT_FLAGS = 24,     /* int: MS_* flags for mount(2) */
  PLAN_MOUNT_PROPAGATION = 25, /* int: MS_* propagation applied after */
  PLAN_MOUNT_DATA = 26,      /* str: filesystem options */
  PLAN_MOUNT_COPYUP = 27,    /* int: 1 = fill a new tmpfs with what the directory held (tmpcopyup) */
  PLAN_DEFAULT_DEVICES = 30, /* int: 1 = create the runtime-spec default devices */
  PLAN_DEVICE_BEGIN = 31,    /* (empty) a new device follows */
  PLAN_DEVICE_PATH = 32,     /* str */
  PLAN_DEVICE_MODE = 33,     /* int: S_IFCHR/S_IFBLK/S_IFIFO | permissions */
  PLAN_DEVICE_RDEV = 34,     /* int: makedev(major, minor) */
  PLAN_DEVICE_UID = 35,      /* int */
  PLAN_DEVICE_GID = 36,      /* int */
  PLAN_MASKED_PATH = 40,     /* str */
  PLAN_READONLY_PATH = 41,   /* str */
  PLAN_SYSCTL_KEY = 42,      /* str: e.g. net.ipv4.ip_forward... */
  PLAN_SYSCTL_VALUE = 43,    /* str: ...and its value (follows the key) */
  PLAN_RLIMIT_TYPE = 44,     /* int: RLIMIT_* ... */
  PLAN_RLIMIT_SOFT = 45,     /* int */
  PLAN_RLIMIT_HARD = 46,     /* int (follows soft) */
  PLAN_OOM_SCORE_ADJ = 47,   /* int */
  PLAN_UID = 50,             /* int */
  PLAN_GID = 51,             /* int */
  PLAN_ADDITIONAL_GID = 52,  /* int, repeated */
  PLAN_UMASK = 53,           /* int */
  PLAN_CAP_BOUNDING = 54,    /* int: bit mask; absent = leave unchanged */
  PLAN_CAP_EFFECTIVE = 55,
  PLAN_CAP_INHERITABLE = 56,
  PLAN_CAP_PERMITTED = 57,
  PLAN_CAP_AMBIENT = 58,
  PLAN_NO_NEW_PRIVS = 59,    /* int: 1 = PR_SET_NO_NEW_PRIVS */
  PLAN_ARG = 60,             /* str, repeated: argv */
  PLAN_ENV = 61,             /* str, repeated: KEY=VALUE */
  PLAN_CWD = 62,             /* str */
  PLAN_TERMINAL = 63,        /* int: fd of a connected console socket */
  PLAN_EXEC_FIFO = 64,       /* str: host path of the exec fifo (create only) */
  PLAN_PRESERVE_FDS = 65,    /* int: fds 3..3+N-1 reach the process */
  PLAN_HOOK_BEGIN = 70,      /* int: HUSK_HOOK_CREATE_CONTAINER or _START_CONTAINER */
  PLAN_HOOK_PATH = 71,       /* str */
  PLAN_HOOK_ARG = 72,        /* str, repeated */
  PLAN_HOOK_ENV = 73,        /* str, repeated */
  PLAN_HOOK_TIMEOUT = 74,    /* int: seconds, 0 = none */
  PLAN_PERSONALITY = 75,     /* int: personality(2) domain */
  PLAN_SESSION_KEYRING = 76, /* str: join a new session keyring of this name (absent: --no-new-keyring) */
  PLAN_SECCOMP_DEFAULT = 80, /* int: libseccomp action for unlisted syscalls (enables seccomp) */
  PLAN_SECCOMP_ARCH = 81,    /* str, repeated: libseccomp arch name ("x86_64") */
  PLAN_SECCOMP_FLAGS = 82,   /* int: HUSK_SECCOMP_LOG | HUSK_SECCOMP_SPEC_ALLOW */
  PLAN_SECCOMP_RULE = 83,    /* int: libseccomp action; a new rule follows */
  PLAN_SECCOMP_NAME = 84,    /* str, repeated: a syscall of the rule */
  PLAN_SECCOMP_ARG = 85,     /* raw: u32 index | u32 op (SCMP_CMP_*) | u64 value | u64 value2 */
  PLAN_EXEC_ROOT = 86,       /* str: /proc/PID/root of the container's init (exec) */
  PLAN_DEVICE_BPF = 90,      /* raw: struct bpf_insn[] of a BPF_PROG_TYPE_CGROUP_DEVICE program */
  PLAN_DEVICE_BPF_CGROUP = 91, /* str: the cgroup v2 directory to attach it to */
};

enum husk_seccomp_flags
{
  HUSK_SECCOMP_LOG = 1,        /* SECCOMP_FILTER_FLAG_LOG */
  HUSK_SECCOMP_SPEC_ALLOW = 2, /* SECCOMP_FILTER_FLAG_SPEC_ALLOW */
};

enum husk_mode
{
  HUSK_MODE_CREATE = 0,      /* a new container: stage 0 -> container init */
  HUSK_MODE_EXEC = 1,        /* a process inside an existing container */
};

enum husk_hook_kind
{
  HUSK_HOOK_CREATE_CONTAINER = 1,
  HUSK_HOOK_START_CONTAINER = 2,
};

enum husk_msg_tag
{
  MSG_PID = 100,             /* int: host pid of the new process */
  MSG_HOOKS = 101,           /* (empty) rootfs is mounted, before pivot_root:
                                run the runtime's hooks, answer MSG_STATE */
  MSG_STATE = 102,           /* str (from husk): the state JSON for hooks */
  MSG_READY = 103,           /* (empty) set up; waiting for start */
  MSG_ERROR = 104,           /* i32 errno | NUL-terminated step | detail */
  MSG_ABORT = 105,           /* (empty, from husk): give up */
};

#endif
