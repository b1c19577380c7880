/* trace.c - the steps --explain records (trace.h): formatting, and the
 * names of flags and capabilities a reader knows them by.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#define _GNU_SOURCE
#include "trace.h"

#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

int husk_trace;
const char *husk_trace_who = "husk-init";

long long
trace_now_us (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (long long) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const char *
trace_source (const char *file, char *buf, unsigned size)
{
  const char *in = strstr (file, "native/");
  if (in)
    return in;
  snprintf (buf, size, "native/%s", file);
  return buf;
}

void
trace_step (const char *file, int line, const char *mechanism, const char *step, const char *fmt, ...)
{
  char call[2048], src[256];
  long long now = trace_now_us ();
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (call, sizeof call, fmt, ap);
  va_end (ap);
  trace_sink (now, trace_source (file, src, sizeof src), line, mechanism, step, call);
}

static char *
slot (void)
{
  static char bufs[4][1024];
  static int next;
  char *b = bufs[next++ % 4];
  b[0] = '\0';
  return b;
}

struct name
{
  unsigned long long bit;
  const char *name;
};

static const char *
join_names (unsigned long long mask, const struct name *names, size_t n, const char *none)
{
  char *b = slot ();
  size_t used = 0;
  for (size_t i = 0; i < n; i++)
    if (mask & names[i].bit)
      {
        used += snprintf (b + used, used < 1024 ? 1024 - used : 0, "%s%s", used ? "|" : "", names[i].name);
        mask &= ~names[i].bit;
      }
  if (mask && used < 1024)
    used += snprintf (b + used, 1024 - used, "%s%#llx", used ? "|" : "", mask);
  return used ? b : none;
}

#define N(flag) { flag, #flag }

const char *
trace_clone_flags (long long flags)
{
  static const struct name names[] = {
    N (CLONE_NEWUSER), N (CLONE_NEWPID), N (CLONE_NEWNS), N (CLONE_NEWNET), N (CLONE_NEWUTS),
    N (CLONE_NEWIPC), N (CLONE_NEWCGROUP), N (CLONE_NEWTIME), N (CLONE_PARENT),
  };
  return join_names (flags & ~0xffLL, names, sizeof names / sizeof *names, "0");
}

const char *
trace_mount_flags (long long flags)
{
  static const struct name names[] = {
    N (MS_RDONLY), N (MS_NOSUID), N (MS_NODEV), N (MS_NOEXEC), N (MS_SYNCHRONOUS), N (MS_REMOUNT),
    N (MS_MANDLOCK), N (MS_DIRSYNC), N (MS_NOATIME), N (MS_NODIRATIME), N (MS_BIND), N (MS_MOVE),
    N (MS_REC), N (MS_SILENT), N (MS_UNBINDABLE), N (MS_PRIVATE), N (MS_SLAVE), N (MS_SHARED),
    N (MS_RELATIME), N (MS_STRICTATIME), N (MS_LAZYTIME),
  };
  return join_names (flags, names, sizeof names / sizeof *names, "0");
}

const char *
trace_caps (unsigned long long mask)
{
  /* capability.h's numbers, by name (CAP_LAST_CAP is 40 on 6.x kernels). */
  static const char *const caps[] = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
    "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
  };
  /* As `husk isolation` shows them: "3 of 41: KILL, NET_BIND_SERVICE, ...". */
  const size_t n = sizeof caps / sizeof *caps;
  unsigned long long known = (1ULL << n) - 1;
  if ((mask & known) == known)
    return "all 41";
  char *b = slot ();
  size_t used = snprintf (b, 1024, "%d of 41", __builtin_popcountll (mask & known));
  const char *sep = ": ";
  for (size_t i = 0; i < n && used < 1024; i++)
    if (mask & (1ULL << i))
      {
        used += snprintf (b + used, 1024 - used, "%s%s", sep, caps[i] + strlen ("CAP_"));
        sep = ", ";
      }
  return b;
}

const char *
trace_escape (const char *text)
{
  char *b = slot ();
  size_t i = 0;
  for (; *text && i < 1000; text++)
    if (*text == '\n')
      {
        if (text[1])
          i += snprintf (b + i, 1024 - i, "; ");
      }
    else
      b[i++] = *text;
  b[i] = '\0';
  return b;
}
