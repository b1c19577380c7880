/* apparmor.c - see apparmor.h.
 *
 * AppArmor's change_onexec: writing "exec PROFILE" to the calling
 * thread's attr/apparmor/exec file (attr/exec before 5.8) makes the next
 * execve enter PROFILE.  Done before no_new_privs is set (with it the
 * kernel only allows a switch into a stack) and before the seccomp filter,
 * so the user's program is confined from its first instruction.
 *
 * The file is reached through the container's /proc, which husk mounted
 * itself; CVE-2019-16884 was runc writing the profile into a file a
 * hostile image had put where /proc/self/attr should be (a volume on
 * /proc), so the container started unconfined.  fstatfs makes sure the
 * write lands on procfs, or nothing runs.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later */
#define _GNU_SOURCE
#include "apparmor.h"
#include "util.h"
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

static int
open_exec_attr (void)
{
  static const char *const paths[] = { "/proc/thread-self/attr/apparmor/exec", "/proc/thread-self/attr/exec" };
  int fd = -1;

  for (size_t i = 0; i < sizeof paths / sizeof *paths && fd < 0; i++)
    fd = open (paths[i], O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    die (errno, "apparmor", "open /proc/thread-self/attr/apparmor/exec");
  struct statfs fs;
  if (fstatfs (fd, &fs) < 0 || fs.f_type != PROC_SUPER_MAGIC)
    die (EPERM, "apparmor", "/proc/thread-self/attr is not on procfs: refusing to start unconfined");
  return fd;
}

void
apply_apparmor (struct plan *p)
{
  char buf[4096];

  if (p->apparmor_profile == NULL)
    return;
  int n = snprintf (buf, sizeof buf, "exec %s", p->apparmor_profile);
  if (n < 0 || (size_t) n >= sizeof buf)
    die (ENAMETOOLONG, "apparmor", "profile name");
  int fd = open_exec_attr ();
  /* The kernel checks the profile exists at this write (ENOENT). */
  if (write (fd, buf, (size_t) n) != n)
    die (errno, "apparmor", "enter profile %s at exec (is it loaded? apparmor_parser -r)", p->apparmor_profile);
  close (fd);
  TRACE ("apparmor", "apparmor", "write /proc/thread-self/attr/exec: \"%s\"", buf);
}
