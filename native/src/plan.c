/* plan.c - decode the plan records into struct plan.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#define _GNU_SOURCE
#include "plan.h"
#include "husk_proto.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Grow a array by one zeroed element and return a pointer to it. */
static void *
push (void **array, size_t *count, size_t size)
{
  char *grown = realloc (*array, (*count + 1) * size);
  if (grown == NULL)
    die (ENOMEM, "read plan", "out of memory");
  memset (grown + *count * size, 0, size);
  *array = grown;
  return grown + (*count)++ * size;
}

/* Append to a NULL-terminated string vector. */
static void
push_str (char ***vec, size_t *count, char *s)
{
  char **grown = realloc (*vec, (*count + 2) * sizeof (char *));
  if (grown == NULL)
    die (ENOMEM, "read plan", "out of memory");
  grown[(*count)++] = s;
  grown[*count] = NULL;
  *vec = grown;
}

#define PUSH(arr, n) ((__typeof__ (arr)) push ((void **) &(arr), &(n), sizeof *(arr)))
#define LAST(arr, n, what)                                                   \
  ((n) ? &(arr)[(n) - 1] : (die (EINVAL, "read plan", what " without its begin record"), (arr)))

void
plan_read (int fd, struct plan *p)
{
  memset (p, 0, sizeof *p);
  p->umask = -1;
  p->personality = -1;
  p->console_fd = -1;
  p->cap_bounding = p->cap_effective = p->cap_inheritable = CAP_UNSET;
  p->cap_permitted = p->cap_ambient = CAP_UNSET;

  for (int first = 1;; first = 0)
    {
      uint32_t tag, len;
      char *v;
      int64_t n = 0;

      if (recv_record (fd, &tag, &v, &len) < 0)
        die (errno ? errno : EPIPE, "read plan", "truncated plan");
      /* Every record is checked against the one table (husk_proto.def)
       * before its value is used: an int of the wrong size is an error,
       * never a silent 0. */
      const struct husk_record_info *info = husk_record_info (tag);
      if (info == NULL || tag >= MSG_PID)
        die (EINVAL, "read plan", "unknown record %u (husk and husk-init differ in version)", tag);
      const char *problem = husk_record_problem (info, v, len);
      if (problem)
        die (EINVAL, "read plan", "record %s (%u bytes) %s", info->name, len, problem);
      if (info->kind == HUSK_KIND_INT)
        memcpy (&n, v, sizeof n);
      if (first != (tag == PLAN_VERSION))
        die (EINVAL, "read plan", "%s where the plan must start with PLAN_VERSION", info->name);

      switch (tag)
        {
        case PLAN_END: free (v); return;
        case PLAN_VERSION:
          if (n != HUSK_PROTO_VERSION)
            die (EINVAL, "read plan", "plan version %lld, husk-init reads version %d (reinstall husk)",
                 (long long) n, HUSK_PROTO_VERSION);
          break;
        case PLAN_MODE: p->mode = n; break;
        case PLAN_TRACE: p->trace = n; break;
        case PLAN_CLONE_FLAGS: p->clone_flags = n; break;
        case PLAN_NS_JOIN_TYPE: PUSH (p->joins, p->njoins)->type = n; break;
        case PLAN_NS_JOIN_PATH: LAST (p->joins, p->njoins, "namespace path")->path = v; continue;
        case PLAN_UID_MAP: p->uid_map = v; continue;
        case PLAN_GID_MAP: p->gid_map = v; continue;
        case PLAN_TIMENS_OFFSETS: p->timens_offsets = v; continue;
        case PLAN_ROOTFS: p->rootfs = v; continue;
        case PLAN_ROOTFS_PROPAGATION: p->rootfs_propagation = n; break;
        case PLAN_ROOT_READONLY: p->root_readonly = n; break;
        case PLAN_NO_PIVOT: p->no_pivot = n; break;
        case PLAN_HOSTNAME: p->hostname = v; continue;
        case PLAN_DOMAINNAME: p->domainname = v; continue;
        case PLAN_APPARMOR_PROFILE: p->apparmor_profile = v; continue;
        case PLAN_MOUNT_BEGIN: PUSH (p->mounts, p->nmounts); break;
        case PLAN_MOUNT_SOURCE: LAST (p->mounts, p->nmounts, "mount")->source = v; continue;
        case PLAN_MOUNT_DEST: LAST (p->mounts, p->nmounts, "mount")->dest = v; continue;
        case PLAN_MOUNT_TYPE: LAST (p->mounts, p->nmounts, "mount")->type = v; continue;
        case PLAN_MOUNT_DATA: LAST (p->mounts, p->nmounts, "mount")->data = v; continue;
        case PLAN_MOUNT_FLAGS: LAST (p->mounts, p->nmounts, "mount")->flags = n; break;
        case PLAN_MOUNT_COPYUP: LAST (p->mounts, p->nmounts, "mount")->copyup = n; break;
        case PLAN_MOUNT_PROPAGATION: LAST (p->mounts, p->nmounts, "mount")->propagation = n; break;
        case PLAN_DEFAULT_DEVICES: p->default_devices = n; break;
        case PLAN_DEVICE_BEGIN: PUSH (p->devices, p->ndevices); break;
        case PLAN_DEVICE_PATH: LAST (p->devices, p->ndevices, "device")->path = v; continue;
        case PLAN_DEVICE_MODE: LAST (p->devices, p->ndevices, "device")->mode = n; break;
        case PLAN_DEVICE_RDEV: LAST (p->devices, p->ndevices, "device")->rdev = n; break;
        case PLAN_DEVICE_UID: LAST (p->devices, p->ndevices, "device")->uid = n; break;
        case PLAN_DEVICE_GID: LAST (p->devices, p->ndevices, "device")->gid = n; break;
        case PLAN_MASKED_PATH: push_str (&p->masked, &p->nmasked, v); continue;
        case PLAN_READONLY_PATH: push_str (&p->readonly, &p->nreadonly, v); continue;
        case PLAN_SYSCTL_KEY: PUSH (p->sysctls, p->nsysctls)->key = v; continue;
        case PLAN_SYSCTL_VALUE: LAST (p->sysctls, p->nsysctls, "sysctl")->value = v; continue;
        case PLAN_RLIMIT_TYPE: PUSH (p->rlimits, p->nrlimits)->type = n; break;
        case PLAN_RLIMIT_SOFT: LAST (p->rlimits, p->nrlimits, "rlimit")->soft = n; break;
        case PLAN_RLIMIT_HARD: LAST (p->rlimits, p->nrlimits, "rlimit")->hard = n; break;
        case PLAN_OOM_SCORE_ADJ: p->has_oom_score_adj = 1; p->oom_score_adj = n; break;
        case PLAN_UID: p->uid = n; break;
        case PLAN_GID: p->gid = n; break;
        case PLAN_ADDITIONAL_GID: *PUSH (p->groups, p->ngroups) = n; break;
        case PLAN_UMASK: p->umask = n; break;
        case PLAN_CAP_BOUNDING: p->cap_bounding = n; break;
        case PLAN_CAP_EFFECTIVE: p->cap_effective = n; break;
        case PLAN_CAP_INHERITABLE: p->cap_inheritable = n; break;
        case PLAN_CAP_PERMITTED: p->cap_permitted = n; break;
        case PLAN_CAP_AMBIENT: p->cap_ambient = n; break;
        case PLAN_NO_NEW_PRIVS: p->no_new_privs = n; break;
        case PLAN_ARG: push_str (&p->args, &p->nargs, v); continue;
        case PLAN_ENV: push_str (&p->env, &p->nenv, v); continue;
        case PLAN_CWD: p->cwd = v; continue;
        case PLAN_TERMINAL: p->console_fd = n; break;
        case PLAN_EXEC_FIFO: p->exec_fifo = v; continue;
        case PLAN_PRESERVE_FDS: p->preserve_fds = n; break;
        case PLAN_HOOK_BEGIN: PUSH (p->hooks, p->nhooks)->kind = n; break;
        case PLAN_HOOK_PATH: LAST (p->hooks, p->nhooks, "hook")->path = v; continue;
        case PLAN_HOOK_ARG:
          {
            struct hook *h = LAST (p->hooks, p->nhooks, "hook");
            push_str (&h->args, &h->nargs, v);
            continue;
          }
        case PLAN_HOOK_ENV:
          {
            struct hook *h = LAST (p->hooks, p->nhooks, "hook");
            push_str (&h->env, &h->nenv, v);
            continue;
          }
        case PLAN_HOOK_TIMEOUT: LAST (p->hooks, p->nhooks, "hook")->timeout = n; break;
        case PLAN_PERSONALITY: p->personality = n; break;
        case PLAN_SESSION_KEYRING: p->session_keyring = v; continue;
        case PLAN_SECCOMP_DEFAULT: p->seccomp = 1; p->seccomp_default = n; break;
        case PLAN_SECCOMP_ARCH: push_str (&p->seccomp_arches, &p->nseccomp_arches, v); continue;
        case PLAN_SECCOMP_FLAGS: p->seccomp_flags = n; break;
        case PLAN_SECCOMP_RULE: PUSH (p->seccomp_rules, p->nseccomp_rules)->action = n; break;
        case PLAN_SECCOMP_NAME:
          {
            struct seccomp_rule *r = LAST (p->seccomp_rules, p->nseccomp_rules, "seccomp syscall");
            push_str (&r->names, &r->nnames, v);
            continue;
          }
        case PLAN_EXEC_ROOT: p->exec_root = v; continue;
        case PLAN_DEVICE_BPF: p->device_bpf = v; p->device_bpf_len = len; continue;
        case PLAN_DEVICE_BPF_CGROUP: p->device_bpf_cgroup = v; continue;
        case PLAN_SECCOMP_ARG:
          {
            struct seccomp_rule *r = LAST (p->seccomp_rules, p->nseccomp_rules, "seccomp arg");
            struct seccomp_arg *a = PUSH (r->args, r->nargs);
            memcpy (&a->index, v, 4);
            memcpy (&a->op, v + 4, 4);
            memcpy (&a->value, v + 8, 8);
            memcpy (&a->value2, v + 16, 8);
            break;
          }
        default:
          die (EINVAL, "read plan", "record %s is not part of a plan", info->name);
        }
      free (v);
    }
}
