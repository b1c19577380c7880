/* util.c - see util.h.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#define _GNU_SOURCE
#include "util.h"
#include "husk_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>

int husk_sock = -1;
int husk_report_fd = -1;

void
die (int err, const char *step, const char *fmt, ...)
{
  char msg[4096];
  int32_t e = err;
  size_t off = sizeof e, steplen = strlen (step);
  va_list ap;

  memcpy (msg, &e, sizeof e);
  if (steplen > 1024)
    steplen = 1024;
  memcpy (msg + off, step, steplen);
  off += steplen;
  msg[off++] = '\0';
  va_start (ap, fmt);
  off += vsnprintf (msg + off, sizeof msg - off, fmt, ap);
  va_end (ap);
  if (off >= sizeof msg)
    off = sizeof msg - 1;

  /* After READY, the exec fifo leads back to husk (start), even where
   * --explain keeps the socket open for its steps: the same MSG_ERROR
   * record goes that way, so start maps its errno (ENOEXEC -> 126,
   * ENOENT -> 127) as it would any other. */
  if (husk_report_fd >= 0 && send_record (husk_report_fd, MSG_ERROR, msg, off) == 0)
    _exit (err == ENOENT ? 127 : 126);
  if (husk_sock >= 0 && send_record (husk_sock, MSG_ERROR, msg, off) == 0)
    _exit (1);
  if (husk_report_fd < 0)
    fprintf (stderr, "husk-init: %s: %s: %s\n", step, msg + sizeof e + steplen + 1, strerror (err));
  _exit (err == ENOENT ? 127 : 126);
}

ssize_t
write_all (int fd, const void *buf, size_t len)
{
  const char *p = buf;
  size_t done = 0;
  while (done < len)
    {
      ssize_t n = write (fd, p + done, len - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -1;
      done += n;
    }
  return done;
}

static int
read_all (int fd, void *buf, size_t len)
{
  char *p = buf;
  size_t done = 0;
  while (done < len)
    {
      ssize_t n = read (fd, p + done, len - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return -1;
      done += n;
    }
  return 0;
}

int
send_record (int fd, uint32_t tag, const void *value, uint32_t len)
{
  /* One writev per record, so a record is never split by another writer. */
  uint32_t head[2] = { tag, len };
  struct iovec iov[2] = { { head, sizeof head }, { (void *) value, len } };
  ssize_t n;
  do
    n = writev (fd, iov, len ? 2 : 1);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return -1;
  if ((size_t) n < sizeof head + len)
    {
      errno = EPIPE;
      return -1;
    }
  return 0;
}

int
send_int (int fd, uint32_t tag, int64_t value)
{
  return send_record (fd, tag, &value, sizeof value);
}

int
recv_record (int fd, uint32_t *tag, char **value, uint32_t *len)
{
  uint32_t head[2];
  if (read_all (fd, head, sizeof head) < 0)
    return -1;
  *tag = head[0];
  *len = head[1];
  if (*len > (64u << 20))
    {
      errno = EMSGSIZE;
      return -1;
    }
  *value = malloc (*len + 1);
  if (*value == NULL)
    return -1;
  if (*len && read_all (fd, *value, *len) < 0)
    {
      free (*value);
      return -1;
    }
  (*value)[*len] = '\0';
  return 0;
}

int
write_file_at (int dirfd, const char *path, const char *data, size_t len)
{
  cleanup_close int fd = openat (dirfd, path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return -1;
  if (write_all (fd, data, len) < 0)
    return -1;
  return 0;
}

int
open_in_root (int rootfd, const char *path, int flags, uint64_t resolve_extra)
{
  struct open_how how = {
    .flags = flags | O_CLOEXEC,
    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | resolve_extra,
  };
  int fd;
  do
    fd = syscall (SYS_openat2, rootfd, path, &how, sizeof how);
  while (fd < 0 && errno == EAGAIN);
  return fd;
}

const char *
fd_path (int fd, char buf[static 32])
{
  snprintf (buf, 32, "/proc/self/fd/%d", fd);
  return buf;
}
