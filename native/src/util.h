/* util.h - error reporting, fd cleanup and the record channel to husk.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef HUSK_UTIL_H
#define HUSK_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

/* Close an fd when it goes out of scope (crun's cleanup_close). */
static inline void close_fdp (int *fd)
{
  if (*fd >= 0)
    close (*fd);
}
#define cleanup_close __attribute__ ((cleanup (close_fdp)))

/* The socket to husk.  Every stage reports through it. */
extern int husk_sock;
/* Where errors go once the socket is closed (the exec fifo, for start). */
extern int husk_report_fd;

/* husk-init is a one-shot helper: on any failure it sends
 * {errno, step, detail} to husk and exits.  Whatever the failed stage
 * created inside its namespaces dies with it; husk removes what it made
 * on the host (cgroups, state) and kills the process it was told about. */
__attribute__ ((noreturn, format (printf, 3, 4)))
void die (int err, const char *step, const char *fmt, ...);

int send_record (int fd, uint32_t tag, const void *value, uint32_t len);
int send_int (int fd, uint32_t tag, int64_t value);
/* Read one record; *value is malloc'd (NUL-terminated).  Returns 0, or -1 on EOF/error. */
int recv_record (int fd, uint32_t *tag, char **value, uint32_t *len);

ssize_t write_all (int fd, const void *buf, size_t len);
/* Write a whole small file (uid_map, sysctl, ...) at dirfd/path. */
int write_file_at (int dirfd, const char *path, const char *data, size_t len);

/* openat2(2) with RESOLVE_IN_ROOT: resolve path as if rootfd were "/",
 * so ".." and absolute symlinks can never climb out of the rootfs. */
int open_in_root (int rootfd, const char *path, int flags, uint64_t resolve_extra);

/* "/proc/self/fd/N" for mount(2) targets that we hold as O_PATH fds. */
const char *fd_path (int fd, char buf[static 32]);

#endif
