/* plan_dump.c - husk-init's own plan decoder (src/plan.c), reading a plan
 * from stdin and printing what it decoded as JSON.  tests/unit/test_protocol.py
 * builds it to check that the C and Python sides of the protocol agree;
 * a malformed plan makes it die as husk-init would (message on stderr).
 * SPDX-License-Identifier: GPL-3.0-or-later */
#define _GNU_SOURCE
#include "plan.h"

#include <inttypes.h>
#include <stdio.h>

static void
str (const char *key, const char *s)
{
  printf ("\"%s\":", key);
  if (s == NULL)
    {
      printf ("null,");
      return;
    }
  putchar ('"');
  for (const unsigned char *c = (const unsigned char *) s; *c; c++)
    if (*c == '"' || *c == '\\')
      printf ("\\%c", *c);
    else if (*c < 0x20)
      printf ("\\u%04x", *c);
    else
      putchar (*c);
  printf ("\",");
}

static void
num (const char *key, int64_t n)
{
  printf ("\"%s\":%" PRId64 ",", key, n);
}

static void
strs (const char *key, char **v, size_t n)
{
  printf ("\"%s\":[", key);
  for (size_t i = 0; i < n; i++)
    {
      printf ("{");
      str ("s", v[i]);
      printf ("\"_\":0}%s", i + 1 < n ? "," : "");
    }
  printf ("],");
}

int
main (void)
{
  struct plan p;
  plan_read (0, &p);
  printf ("{");
  num ("mode", p.mode);
  num ("clone_flags", p.clone_flags);
  printf ("\"joins\":[");
  for (size_t i = 0; i < p.njoins; i++)
    {
      printf ("{");
      num ("type", p.joins[i].type);
      str ("path", p.joins[i].path);
      printf ("\"_\":0}%s", i + 1 < p.njoins ? "," : "");
    }
  printf ("],");
  str ("uid_map", p.uid_map);
  str ("gid_map", p.gid_map);
  str ("rootfs", p.rootfs);
  num ("rootfs_propagation", p.rootfs_propagation);
  num ("root_readonly", p.root_readonly);
  str ("hostname", p.hostname);
  printf ("\"mounts\":[");
  for (size_t i = 0; i < p.nmounts; i++)
    {
      struct mount_entry *m = &p.mounts[i];
      printf ("{");
      str ("source", m->source);
      str ("dest", m->dest);
      str ("type", m->type);
      str ("data", m->data);
      num ("flags", m->flags);
      num ("propagation", m->propagation);
      num ("copyup", m->copyup);
      printf ("\"_\":0}%s", i + 1 < p.nmounts ? "," : "");
    }
  printf ("],");
  printf ("\"devices\":[");
  for (size_t i = 0; i < p.ndevices; i++)
    {
      struct device_entry *d = &p.devices[i];
      printf ("{");
      str ("path", d->path);
      num ("mode", d->mode);
      num ("rdev", d->rdev);
      num ("uid", d->uid);
      num ("gid", d->gid);
      printf ("\"_\":0}%s", i + 1 < p.ndevices ? "," : "");
    }
  printf ("],");
  strs ("masked", p.masked, p.nmasked);
  strs ("readonly", p.readonly, p.nreadonly);
  printf ("\"rlimits\":[");
  for (size_t i = 0; i < p.nrlimits; i++)
    printf ("[%" PRId64 ",%" PRId64 ",%" PRId64 "]%s", p.rlimits[i].type, p.rlimits[i].soft, p.rlimits[i].hard,
            i + 1 < p.nrlimits ? "," : "");
  printf ("],");
  num ("uid", p.uid);
  num ("gid", p.gid);
  printf ("\"groups\":[");
  for (size_t i = 0; i < p.ngroups; i++)
    printf ("%" PRId64 "%s", p.groups[i], i + 1 < p.ngroups ? "," : "");
  printf ("],");
  num ("umask", p.umask);
  num ("cap_bounding", p.cap_bounding);
  num ("cap_effective", p.cap_effective);
  num ("cap_ambient", p.cap_ambient);
  num ("no_new_privs", p.no_new_privs);
  strs ("args", p.args, p.nargs);
  strs ("env", p.env, p.nenv);
  str ("cwd", p.cwd);
  num ("preserve_fds", p.preserve_fds);
  printf ("\"hooks\":[");
  for (size_t i = 0; i < p.nhooks; i++)
    {
      printf ("{");
      num ("kind", p.hooks[i].kind);
      str ("path", p.hooks[i].path);
      strs ("args", p.hooks[i].args, p.hooks[i].nargs);
      num ("timeout", p.hooks[i].timeout);
      printf ("\"_\":0}%s", i + 1 < p.nhooks ? "," : "");
    }
  printf ("],");
  num ("seccomp_default", p.seccomp ? p.seccomp_default : -1);
  num ("seccomp_flags", p.seccomp_flags);
  printf ("\"seccomp_rules\":[");
  for (size_t i = 0; i < p.nseccomp_rules; i++)
    {
      struct seccomp_rule *r = &p.seccomp_rules[i];
      printf ("{");
      num ("action", r->action);
      strs ("names", r->names, r->nnames);
      printf ("\"args\":[");
      for (size_t j = 0; j < r->nargs; j++)
        printf ("[%u,%u,%" PRIu64 ",%" PRIu64 "]%s", r->args[j].index, r->args[j].op, r->args[j].value,
                r->args[j].value2, j + 1 < r->nargs ? "," : "");
      printf ("],\"_\":0}%s", i + 1 < p.nseccomp_rules ? "," : "");
    }
  printf ("],");
  str ("session_keyring", p.session_keyring);
  printf ("\"device_bpf_len\":%zu}\n", p.device_bpf_len);
  return 0;
}
