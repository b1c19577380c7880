/* console.c - `husk run` with process.terminal and no --console-socket:
 * husk is the console socket's other end itself, and copies bytes
 * between its own terminal and the container's pty (runc's `run -t`).
 *
 * husk-init opens the pty inside the container and sends the master
 * over the socket (SCM_RIGHTS) before READY (native/src/process.c).
 * SPDX-License-Identifier: GPL-3.0-or-later */
#define _GNU_SOURCE
#include "front.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

int
console_receive_master (int local)
{
  char byte;
  struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } control;
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                        .msg_controllen = sizeof control.buf };
  ssize_t n;
  while ((n = recvmsg (local, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
    ;
  struct cmsghdr *cmsg = n > 0 ? CMSG_FIRSTHDR (&msg) : NULL;
  if (cmsg == NULL || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS
      || cmsg->cmsg_len != CMSG_LEN (sizeof (int)))
    return -1;
  int master;
  memcpy (&master, CMSG_DATA (cmsg), sizeof master);
  struct winsize size;
  if (isatty (0) && ioctl (0, TIOCGWINSZ, &size) == 0)
    ioctl (master, TIOCSWINSZ, &size);
  return master;
}

static bool
write_all (int fd, const char *data, size_t len)
{
  while (len > 0)
    {
      ssize_t n = write (fd, data, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return false;
      data += n;
      len -= n;
    }
  return true;
}

void
console_resize (int master)
{
  struct winsize size;
  if (master >= 0 && isatty (0) && ioctl (0, TIOCGWINSZ, &size) == 0)
    ioctl (master, TIOCSWINSZ, &size);
}

void
console_pump (int master)
{
  struct termios saved, raw;
  bool restore = isatty (0) && tcgetattr (0, &saved) == 0;
  if (restore)
    {
      raw = saved;
      cfmakeraw (&raw);
      tcsetattr (0, TCSAFLUSH, &raw);
    }
  struct pollfd fds[2] = { { .fd = master, .events = POLLIN }, { .fd = 0, .events = POLLIN } };
  char buf[65536];
  for (;;)
    {
      if (poll (fds, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      if (fds[0].revents)
        {
          ssize_t n = read (master, buf, sizeof buf);
          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0 || !write_all (1, buf, n)) /* EIO: every slave fd closed, the process is gone */
            break;
        }
      if (fds[1].revents)
        {
          ssize_t n = read (0, buf, sizeof buf);
          if (n < 0 && errno == EINTR)
            continue;
          if (n > 0)
            write_all (master, buf, n);
          else
            {
              fds[1].fd = -1; /* EOF on our stdin: ^D to the pty */
              write_all (master, "\x04", 1);
            }
        }
    }
  if (restore)
    tcsetattr (0, TCSADRAIN, &saved);
}
