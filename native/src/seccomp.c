/* seccomp.c - linux.seccomp -> a BPF filter, through libseccomp.
 *
 * Syscall names this libseccomp does not know on these architectures are
 * skipped (a profile lists syscalls of every kernel), as runc does; a
 * rule whose action is the default adds nothing.  libseccomp compares one
 * argument once per rule, so a rule that tests one argument twice becomes
 * one rule per comparison (the comparisons are alternatives).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later */
#define _GNU_SOURCE
#include "seccomp.h"
#include "husk_proto.h"
#include "util.h"
#include "trace.h"

#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>

static void
add_rule (scmp_filter_ctx ctx, struct seccomp_rule *r, int nr, const char *name)
{
  struct scmp_arg_cmp cmp[6];
  int distinct = 1, rc = 0;

  if (r->nargs > 6)
    die (EINVAL, "seccomp", "%s: more than 6 argument comparisons", name);
  for (size_t i = 0; i < r->nargs; i++)
    {
      cmp[i] = (struct scmp_arg_cmp){ .arg = r->args[i].index, .op = r->args[i].op,
                                      .datum_a = r->args[i].value, .datum_b = r->args[i].value2 };
      for (size_t j = 0; j < i; j++)
        if (r->args[j].index == r->args[i].index)
          distinct = 0;
    }
  if (distinct)
    rc = seccomp_rule_add_array (ctx, r->action, nr, r->nargs, cmp);
  else
    for (size_t i = 0; i < r->nargs && rc == 0; i++)
      rc = seccomp_rule_add_array (ctx, r->action, nr, 1, &cmp[i]);
  if (rc < 0)
    die (-rc, "seccomp", "rule for %s", name);
}

/* A filter action as libseccomp names it, for --explain. */
static const char *
action_name (int64_t action)
{
  static char buf[64];
  switch (action & 0xffff0000U)
    {
    case SCMP_ACT_ALLOW: return "SCMP_ACT_ALLOW";
    case SCMP_ACT_LOG: return "SCMP_ACT_LOG";
    case SCMP_ACT_KILL_PROCESS: return "SCMP_ACT_KILL_PROCESS";
    case SCMP_ACT_KILL_THREAD: return "SCMP_ACT_KILL";
    case SCMP_ACT_ERRNO (0): snprintf (buf, sizeof buf, "SCMP_ACT_ERRNO(%d)", (int) (action & 0xffff)); return buf;
    case SCMP_ACT_TRACE (0): snprintf (buf, sizeof buf, "SCMP_ACT_TRACE(%d)", (int) (action & 0xffff)); return buf;
    default: snprintf (buf, sizeof buf, "%#lx", (unsigned long) action); return buf;
    }
}

void
load_seccomp (struct plan *p)
{
  if (!p->seccomp)
    return;
  scmp_filter_ctx ctx = seccomp_init (p->seccomp_default);
  if (ctx == NULL)
    die (EINVAL, "seccomp", "default action %#lx", (unsigned long) p->seccomp_default);

  for (size_t i = 0; i < p->nseccomp_arches; i++)
    {
      uint32_t arch = seccomp_arch_resolve_name (p->seccomp_arches[i]);
      int rc;
      if (arch == 0)
        die (EINVAL, "seccomp", "architecture %s unknown to libseccomp", p->seccomp_arches[i]);
      rc = seccomp_arch_add (ctx, arch);
      if (rc < 0 && rc != -EEXIST)
        die (-rc, "seccomp", "add architecture %s", p->seccomp_arches[i]);
    }
  /* libseccomp sets no_new_privs on load unless told not to: that is
   * process.noNewPrivileges' call (apply_identity), not the filter's.
   * Without it, loading needs CAP_SYS_ADMIN, which we hold here. */
  if (seccomp_attr_set (ctx, SCMP_FLTATR_CTL_NNP, 0) < 0)
    die (EINVAL, "seccomp", "SCMP_FLTATR_CTL_NNP");
  if ((p->seccomp_flags & HUSK_SECCOMP_LOG) && seccomp_attr_set (ctx, SCMP_FLTATR_CTL_LOG, 1) < 0)
    die (EINVAL, "seccomp", "SECCOMP_FILTER_FLAG_LOG");
  if ((p->seccomp_flags & HUSK_SECCOMP_SPEC_ALLOW) && seccomp_attr_set (ctx, SCMP_FLTATR_CTL_SSB, 1) < 0)
    die (EINVAL, "seccomp", "SECCOMP_FILTER_FLAG_SPEC_ALLOW");

  for (size_t i = 0; i < p->nseccomp_rules; i++)
    {
      struct seccomp_rule *r = &p->seccomp_rules[i];
      if (r->action == p->seccomp_default)
        continue;
      for (size_t n = 0; n < r->nnames; n++)
        {
          int nr = seccomp_syscall_resolve_name (r->names[n]);
          if (nr == __NR_SCMP_ERROR)
            continue;
          add_rule (ctx, r, nr, r->names[n]);
        }
    }
  /* Traced before the load: the filter may forbid the write after it. */
  TRACE ("seccomp", "seccomp", "seccomp_load(): default action %s, %zu rules, %zu architectures%s",
         action_name (p->seccomp_default), p->nseccomp_rules, p->nseccomp_arches,
         p->no_new_privs ? "" : " (before setuid: no_new_privs is not set, so this needs CAP_SYS_ADMIN)");
  int rc = seccomp_load (ctx);
  seccomp_release (ctx);
  if (rc < 0)
    die (-rc, "seccomp", "load the filter");
}
