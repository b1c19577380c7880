/* plan.h - the fully resolved plan husk sends (see husk_proto.h).
 * SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef HUSK_PLAN_H
#define HUSK_PLAN_H

#include <stdint.h>
#include <stddef.h>

struct mount_entry
{
  char *source, *dest, *type, *data;
  int64_t flags, propagation;
  int copyup;
};

struct device_entry
{
  char *path;
  int64_t mode, rdev, uid, gid;
};

struct hook
{
  int kind;
  char *path;
  char **args;   /* NULL-terminated */
  size_t nargs;
  char **env;    /* NULL-terminated */
  size_t nenv;
  int64_t timeout;
};

struct ns_join
{
  int64_t type;
  char *path;
};

struct sysctl_entry
{
  char *key, *value;
};

struct rlimit_entry
{
  int64_t type, soft, hard;
};

struct seccomp_arg
{
  uint32_t index, op;
  uint64_t value, value2;
};

struct seccomp_rule
{
  int64_t action;
  char **names;  /* NULL-terminated */
  size_t nnames;
  struct seccomp_arg *args;
  size_t nargs;
};

#define CAP_UNSET (-1)

struct plan
{
  int64_t mode;
  int64_t clone_flags;
  struct ns_join *joins;
  size_t njoins;
  char *uid_map, *gid_map, *timens_offsets;
  char *rootfs;
  int64_t rootfs_propagation;
  int root_readonly, no_pivot;
  char *hostname, *domainname;
  char *apparmor_profile; /* NULL = stay in husk's own confinement */
  struct mount_entry *mounts;
  size_t nmounts;
  int default_devices;
  struct device_entry *devices;
  size_t ndevices;
  char **masked;
  size_t nmasked;
  char **readonly;
  size_t nreadonly;
  struct sysctl_entry *sysctls;
  size_t nsysctls;
  struct rlimit_entry *rlimits;
  size_t nrlimits;
  int has_oom_score_adj;
  int64_t oom_score_adj;
  int64_t uid, gid;
  int64_t *groups;
  size_t ngroups;
  int64_t umask;          /* -1 = leave */
  int64_t cap_bounding, cap_effective, cap_inheritable, cap_permitted, cap_ambient; /* CAP_UNSET = leave */
  int no_new_privs;
  char **args;            /* NULL-terminated */
  size_t nargs;
  char **env;             /* NULL-terminated */
  size_t nenv;
  char *cwd;
  int console_fd;         /* -1 = no terminal */
  char *exec_fifo;
  int64_t preserve_fds;
  struct hook *hooks;
  size_t nhooks;
  int64_t personality;    /* -1 = leave */
  char *session_keyring; /* NULL: keep the caller's (--no-new-keyring) */
  int seccomp;            /* 1 = install a filter */
  int64_t seccomp_default, seccomp_flags;
  char **seccomp_arches;
  size_t nseccomp_arches;
  struct seccomp_rule *seccomp_rules;
  size_t nseccomp_rules;
  char *exec_root;        /* exec: the container init's root, to chroot into */
  char *device_bpf;       /* instructions, or NULL */
  size_t device_bpf_len;
  char *device_bpf_cgroup;
  int64_t trace;          /* --explain: HUSK_TRACE_TO_READY or _TO_EXEC, 0 = off */
};

/* Read records from fd until PLAN_END; dies on a malformed plan. */
void plan_read (int fd, struct plan *p);

#endif
