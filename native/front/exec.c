/* exec.c - another process in a running container, from a plan Python
 * made (runtime/core/container.py exec_process: the process object, the
 * container's namespaces to join, its capability bound).
 *
 * Python hands the plan over in a memfd named by HUSK_EXEC_PLAN_FD and
 * execs this program: u32 length | JSON head | plan records.  The head
 * says what only this side does: the container (locked for the launch),
 * its cgroup directories to join, the console (a socket, or our own pty
 * proxy), the pid file, and whether to wait.  The launch is create's:
 * a sealed copy of husk-init, joined to the cgroup before it gets the
 * plan, followed until the program has exec'd (the socket closes at
 * execve) or sends why it could not.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#define _GNU_SOURCE
#include "front.h"
#include "husk_proto.h"
#include "sdbus.h"
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int send_record (int fd, uint32_t tag, const void *value, uint32_t len);
int recv_record (int fd, uint32_t *tag, char **value, uint32_t *len);

static pid_t helper_pid, process_pid;

__attribute__ ((noreturn, format (printf, 2, 3))) static void
exec_fail (int code, const char *fmt, ...)
{
  if (process_pid > 0)
    kill (process_pid, SIGKILL);
  if (helper_pid > 0)
    {
      kill (helper_pid, SIGKILL);
      waitpid (helper_pid, NULL, 0);
    }
  if (process_pid > 0)
    waitpid (process_pid, NULL, 0);
  va_list ap;
  va_start (ap, fmt);
  report_v (fmt, ap);
  va_end (ap);
  exit (code);
}

static char *
read_plan (int fd, size_t *len)
{
  struct stat st;
  if (fstat (fd, &st) < 0)
    return NULL;
  char *data = malloc (st.st_size + 1);
  if (data == NULL || pread (fd, data, st.st_size, 0) != st.st_size)
    return NULL;
  close (fd);
  *len = st.st_size;
  return data;
}

void
verb_exec_plan (const char *fd_text)
{
  size_t len;
  char *data = read_plan (atoi (fd_text), &len);
  unsetenv ("HUSK_EXEC_PLAN_FD");
  uint32_t head_len;
  if (data == NULL || len < 4 || (memcpy (&head_len, data, 4), head_len > len - 4))
    fail ("exec: the plan from Python is cut short: %s", strerror (EPROTO));
  json_t *head = json_loadb (data + 4, head_len, 0, NULL);
  const char *plan = data + 4 + head_len;
  size_t plan_len = len - 4 - head_len;
  const char *id = json_string_value (json_object_get (head, "id"));
  if (id == NULL)
    fail ("exec: the plan from Python has no container: %s", strerror (EPROTO));

  struct ctr c;
  if (!ctr_open (&c, id))
    fail ("container '%s' does not exist", id);
  const char *status = ctr_status (&c);
  if (strcmp (status, "created") != 0 && strcmp (status, "running") != 0)
    fail ("exec: container '%s' is %s", id, status);

  int floor = 3 + (int) json_integer_value (json_object_get (head, "preserve_fds"));
  const char *socket_path = json_string_value (json_object_get (head, "console_socket"));
  int console = -1, local = -1;
  if (socket_path)
    console = connect_console (socket_path);
  else if (json_is_true (json_object_get (head, "proxy")))
    {
      int pair[2];
      if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
        fail ("exec %s: socketpair: %s", id, strerror (errno));
      local = pair[0];
      console = pair[1];
    }

  /* husk-init's fds: the inherited 3..floor-1, then the socket, the
   * console, the sealed copy of itself (as create lays them out). */
  int exe = sealed_helper ();
  int pair[2];
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
    fail ("exec %s: socketpair: %s", id, strerror (errno));
  int theirs = fcntl (pair[1], F_DUPFD_CLOEXEC, floor + 3);
  int exe_high = fcntl (exe, F_DUPFD_CLOEXEC, floor + 3);
  int console_high = console >= 0 ? fcntl (console, F_DUPFD_CLOEXEC, floor + 3) : -1;
  helper_pid = fork ();
  if (helper_pid < 0)
    fail ("exec %s: fork: %s", id, strerror (errno));
  if (helper_pid == 0)
    {
      char sock_arg[16], exe_arg[16], exe_path[32];
      if (dup2 (theirs, floor) < 0 || dup2 (exe_high, floor + 2) < 0
          || (console_high >= 0 && dup2 (console_high, floor + 1) < 0))
        _exit (126);
      if (console_high < 0)
        close (floor + 1); /* an inherited fd there is not the process's */
      close_range (floor + 3, ~0U, 0);
      snprintf (sock_arg, sizeof sock_arg, "%d", floor);
      snprintf (exe_arg, sizeof exe_arg, "%d", floor + 2);
      snprintf (exe_path, sizeof exe_path, "/proc/self/fd/%d", floor + 2);
      char *argv[] = { (char *) "husk-init", sock_arg, exe_arg, NULL };
      extern char **environ;
      execve (exe_path, argv, environ);
      _exit (127);
    }
  TRACE ("process", "spawn", "fork + execve(/proc/self/fd/%d = the sealed copy): husk-init, pid %d", floor + 2,
         helper_pid);
  close (theirs);
  close (pair[1]);
  close (exe);
  close (exe_high);
  if (console >= 0)
    {
      close (console);
      close (console_high);
    }
  int sock = pair[0];

  /* Joined before it gets the plan: what it forks inherits the cgroup.
   * A unit's process is added through systemd, which then knows it is
   * the unit's; then (for the v1 hierarchies systemd does not manage, and
   * a systemd without the method) through cgroupfs, as for any. */
  const char *unit = json_string_value (json_object_get (head, "systemd_unit"));
  if (unit)
    {
      struct husk_sd sd;
      if (husk_sd_connect (&sd) < 0 || husk_sd_attach (&sd, unit, helper_pid) < 0)
        exec_fail (1, "exec: join %s: %s", unit, sd.error);
      husk_sd_close (&sd);
    }
  json_t *dirs = json_object_get (head, "cgroup_dirs");
  char pid_text[32];
  snprintf (pid_text, sizeof pid_text, "%d", helper_pid);
  for (size_t i = 0; i < json_array_size (dirs); i++)
    {
      char path[PATH_MAX + 16];
      snprintf (path, sizeof path, "%s/cgroup.procs", json_string_value (json_array_get (dirs, i)));
      if (write_text (path, pid_text) < 0)
        exec_fail (1, "cgroup: write '%s' to %s: %s", pid_text, path, strerror (errno));
      TRACE ("cgroups", "cgroup_write", "write %s: %s", path, pid_text);
    }
  char *traced = NULL;
  if (husk_trace)
    {
      trace_plan (plan, plan_len, &traced, &plan_len, HUSK_TRACE_TO_EXEC);
      plan = traced;
    }
  for (size_t done = 0; done < plan_len;)
    {
      ssize_t n = write (sock, plan + done, plan_len - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        break; /* husk-init died: its record or its status says why */
      done += n;
    }
  bool ready = false;
  for (;;)
    {
      uint32_t tag, rlen;
      char *value;
      if (recv_record (sock, &tag, &value, &rlen) < 0)
        {
          if (ready)
            break; /* the socket closed at execve (CLOEXEC): it runs */
          int st = 0;
          waitpid (helper_pid, &st, 0);
          helper_pid = 0;
          exec_fail (1, "exec %s: husk-init ended before the process was ready (status %d): %s", id,
                     WIFEXITED (st) ? WEXITSTATUS (st) : -WTERMSIG (st), strerror (EPIPE));
        }
      if (tag == MSG_PID && rlen == 8)
        {
          int64_t v;
          memcpy (&v, value, 8);
          process_pid = v;
        }
      else if (tag == MSG_READY)
        ready = true;
      else if (tag == MSG_TRACE)
        trace_forward (value, rlen);
      else if (tag == MSG_ERROR && !husk_record_problem (husk_record_info (MSG_ERROR), value, rlen))
        {
          int code;
          const char *msg = helper_error (value, &code);
          exec_fail (code, "%s", msg);
        }
      else
        exec_fail (1, "exec %s: unexpected record %u from husk-init: %s", id, tag, strerror (EPROTO));
      free (value);
    }
  close (sock);
  waitpid (helper_pid, NULL, 0);
  helper_pid = 0;
  const char *pid_file = json_string_value (json_object_get (head, "pid_file"));
  if (pid_file)
    write_pid_file (pid_file, process_pid);
  ctr_close (&c);
  if (json_is_true (json_object_get (head, "detach")))
    exit (0);
  int master = -1;
  if (local >= 0)
    {
      master = console_receive_master (local);
      close (local);
      if (master < 0)
        exec_fail (1, "console: no pty master received on the console socket: %s", strerror (EPROTO));
    }
  pid_t pid = process_pid;
  process_pid = 0;
  exit (wait_in_foreground (pid, master));
}
